// LayerNorm and GELU as single taped ops with closed-form gradients.
//
// Written as compositions of tf ops, autodiff keeps every intermediate and runs ~25 small kernels
// per LayerNorm backward and an erf gradient per GELU. Here each is one op either way:
//   - a fused kernel, where the backend registers one (wasm: one or two SIMD passes per op,
//     runtime/wasm-kernels.ts; webgpu: one to three shader passes, runtime/webgpu-kernels.ts),
//     with the gradients registered below;
//   - otherwise a tf.customGrad composition that saves two tensors and runs a handful of kernels
//     in its closed-form backward.
// The values are the formulas of torch.nn.LayerNorm and the exact erf GELU; test/model/ops.test.ts
// checks values and gradients of both routes against plain autodiff on every backend.
import * as tf from "@tensorflow/tfjs";
import { FusedKernel } from "../runtime/fused-kernels";

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

// Kernels a backend may provide for these ops: src/runtime/fused-kernels.ts.
export { FusedKernel };

tf.registerGradient({
  kernelName: FusedKernel.gelu,
  inputsToSave: ["x"],
  gradFunc: (dy, saved) => ({ x: () => tf.engine().runKernel(FusedKernel.geluGrad, { x: saved[0], dy: dy as tf.Tensor }) as tf.Tensor }),
});

tf.registerGradient({
  kernelName: FusedKernel.layerNorm,
  inputsToSave: ["x", "weight"],
  gradFunc: (dy, saved, attrs) => {
    const [dx, dweight, dbias] = tf.engine().runKernel(FusedKernel.layerNormGrad, { dy: dy as tf.Tensor, x: saved[0], weight: saved[1] }, attrs) as tf.Tensor[];
    return { x: () => dx, weight: () => dweight, bias: () => dbias };
  },
});

/** Whether the active backend has `kernel` and x fits the fused kernels' contract. */
function fusable(kernel: string, x: tf.Tensor): boolean {
  const d = x.shape[x.rank - 1];
  return x.dtype === "float32" && x.rank > 0 && d > 0 && d % 4 === 0 && tf.getKernel(kernel, tf.getBackend()) !== undefined;
}

interface CustomOpResult {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
}

/** tf.customGrad with typed inputs (its own signature types every argument `Tensor | GradSaveFunc`). */
export function customOp<A extends tf.Tensor[]>(f: (...args: [...A, tf.GradSaveFunc]) => CustomOpResult): (...args: A) => tf.Tensor {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...args: A) => tf.Tensor;
}

/** GELU with the exact erf: x * Phi(x). Gradient: Phi(x) + x * phi(x), phi the normal pdf. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return fusable(FusedKernel.gelu, x) ? (tf.engine().runKernel(FusedKernel.gelu, { x }) as tf.Tensor) : geluComposite(x);
}

/** GELU as a composition of tf ops (backends without the fused kernel). */
export const geluComposite = customOp<[tf.Tensor]>((x, save) => {
  const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))); // Phi(x)
  save([x, cdf]);
  return {
    value: tf.mul(x, cdf),
    gradFunc: (dy, saved) => {
      const [xs, phi] = saved;
      const pdf = tf.mul(tf.exp(tf.mul(tf.square(xs), -0.5)), INV_SQRT_2PI); // phi(x)
      return [tf.mul(dy, tf.add(phi, tf.mul(xs, pdf)))];
    },
  };
});

/** Sums over every axis but the last: [..., D] -> [D]. */
function sumLeading(t: tf.Tensor): tf.Tensor1D {
  const d = t.shape[t.rank - 1];
  return tf.sum(t.reshape([-1, d]), 0) as tf.Tensor1D;
}

/**
 * LayerNorm over the last axis with biased variance (torch.nn.LayerNorm): x [..., D], weight and
 * bias [D]. With xhat = (x - mean) * rstd and g = dy * weight, the input gradient is
 * rstd * (g - mean(g) - xhat * mean(g * xhat)).
 */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor {
  if (fusable(FusedKernel.layerNorm, x)) return tf.engine().runKernel(FusedKernel.layerNorm, { x, weight, bias }, { eps }) as tf.Tensor;
  return layerNormComposite(x, weight, bias, eps);
}

/** LayerNorm as a composition of tf ops (backends without the fused kernel). */
export function layerNormComposite(x: tf.Tensor, weight: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor {
  const op = customOp<[tf.Tensor, tf.Tensor, tf.Tensor]>((xi, w, b, save) => {
    const mean = tf.mean(xi, -1, true); // [...,1]
    const xc = tf.sub(xi, mean); // [...,D]
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps)); // [...,1]
    const xhat = tf.mul(xc, rstd); // [...,D]
    save([xhat, rstd, w]);
    return {
      value: tf.add(tf.mul(xhat, w), b),
      gradFunc: (dy, saved) => {
        const [xh, rs, ws] = saved;
        const g = tf.mul(dy, ws); // [...,D]
        const dx = tf.mul(rs, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))));
        return [dx, sumLeading(tf.mul(dy, xh)), sumLeading(dy)];
      },
    };
  });
  return op(x, weight, bias);
}
