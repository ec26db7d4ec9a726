// LayerNorm and GELU as single taped ops with closed-form gradients.
//
// Written as compositions of tf ops, autodiff keeps every intermediate and runs ~25 small kernels
// per LayerNorm backward and an erf gradient per GELU; here each forward saves two tensors and
// each backward is a handful of kernels, which matters on the CPU backends (where a ViT training
// step is bound by kernel count and memory traffic as much as by its matmuls). The values are the
// same formulas as before (torch.nn.LayerNorm, exact erf GELU); test/model/ops.test.ts checks
// values and gradients against plain autodiff on every backend.
import * as tf from "@tensorflow/tfjs";

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

interface CustomOpResult {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
}

/** tf.customGrad with typed inputs (its own signature types every argument `Tensor | GradSaveFunc`). */
function customOp<A extends tf.Tensor[]>(f: (...args: [...A, tf.GradSaveFunc]) => CustomOpResult): (...args: A) => tf.Tensor {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...args: A) => tf.Tensor;
}

/**
 * exp(z) for z <= 0. On wasm tf.exp is a scalar libm loop (~15x slower than its XNNPACK sigmoid),
 * so there it is sigmoid(z) / (1 - sigmoid(z)): well conditioned for z <= 0, where
 * 1 - sigmoid(z) >= 1/2.
 */
function expNonPositive(z: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== "wasm") return tf.exp(z);
  const s = tf.sigmoid(z);
  return tf.div(s, tf.sub(1, s));
}

/** GELU with the exact erf: x * Phi(x). Gradient: Phi(x) + x * phi(x), phi the normal pdf. */
export const gelu = customOp<[tf.Tensor]>((x, save) => {
  const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))); // Phi(x)
  save([x, cdf]);
  return {
    value: tf.mul(x, cdf),
    gradFunc: (dy, saved) => {
      const [xs, phi] = saved;
      const pdf = tf.mul(expNonPositive(tf.mul(tf.square(xs), -0.5)), INV_SQRT_2PI); // phi(x)
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
