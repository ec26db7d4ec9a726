// GELU and LayerNorm (src/model/ops) against the plain compositions they replace, values and
// gradients of every input, on every backend. The references are autodiff through tf ops, the
// formulas of torch.nn.LayerNorm and the exact erf GELU.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { maxAbsDiff } from "../support/read";
import { gelu, layerNorm } from "../../src/model/ops";

function refGelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

function refLayerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), w), b);
}

/** Values and gradients of sum(f(inputs) * r) for a fixed random r, so every output element counts. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], r: tf.Tensor): tf.Tensor[] {
  const value = f(...inputs);
  const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r)))(inputs);
  return [value, ...grads];
}

interface Case {
  name: string;
  shape: number[];
  /** Scale of the input (large values reach GELU's tails, where the pdf underflows). */
  scale: number;
}

// Last axes that are multiples of 4 run the fused kernels where the backend has them (wasm);
// the [4,3,6] case runs the tf.customGrad compositions there too.
const cases: Case[] = [
  { name: "[2,5,8]", shape: [2, 5, 8], scale: 1 },
  { name: "[7,64] wide range", shape: [7, 64], scale: 6 },
  { name: "[3,17,24] offset-free", shape: [3, 17, 24], scale: 0.1 },
  { name: "[4,3,6] composition", shape: [4, 3, 6], scale: 1 },
];

forEachBackend("ops", () => {
  for (const c of cases) {
    test(`gelu ${c.name}: value and gradient equal the erf composition`, async () => {
      const { got, want } = tf.tidy(() => {
        const x = tf.mul(tf.randomNormal(c.shape, 0, 1, "float32", 1), c.scale);
        const r = tf.randomNormal(c.shape, 0, 1, "float32", 2);
        return { got: valueAndGrads(gelu, [x], r), want: valueAndGrads(refGelu, [x], r) };
      });
      try {
        for (let i = 0; i < got.length; i++) {
          const err = await maxAbsDiff(got[i], want[i]);
          assert.ok(err < 2e-5 * Math.max(1, c.scale), `${i === 0 ? "value" : "gradient"}: max abs err ${err}`);
        }
      } finally {
        tf.dispose([...got, ...want]);
      }
    });

    test(`layerNorm ${c.name}: value and the gradients of x, weight and bias equal autodiff`, async () => {
      const { got, want } = tf.tidy(() => {
        const D = c.shape[c.shape.length - 1];
        // A per-row offset: LayerNorm must remove it (and its gradient must sum to zero per row).
        const x = tf.add(tf.mul(tf.randomNormal(c.shape, 0, 1, "float32", 3), c.scale), 3);
        const w = tf.randomNormal([D], 1, 0.2, "float32", 4);
        const b = tf.randomNormal([D], 0, 0.2, "float32", 5);
        const r = tf.randomNormal(c.shape, 0, 1, "float32", 6);
        const eps = 1e-6;
        return {
          got: valueAndGrads((xi, wi, bi) => layerNorm(xi, wi as tf.Tensor1D, bi as tf.Tensor1D, eps), [x, w, b], r),
          want: valueAndGrads((xi, wi, bi) => refLayerNorm(xi, wi, bi, eps), [x, w, b], r),
        };
      });
      try {
        const names = ["value", "d/dx", "d/dweight", "d/dbias"];
        // The rows have mean 3 and spread `scale`: float32 subtraction of the mean loses about
        // log10(3 / scale) digits in both implementations, and d/dx scales as 1/std of the row.
        const tol = [1e-5 * Math.max(1, 0.3 / c.scale), 2e-5 / c.scale, 1e-4, 1e-4];
        for (let i = 0; i < got.length; i++) {
          assert.deepEqual(got[i].shape, want[i].shape, names[i]);
          const err = await maxAbsDiff(got[i], want[i]);
          assert.ok(err < tol[i], `${names[i]}: max abs err ${err} (tolerance ${tol[i]})`);
        }
      } finally {
        tf.dispose([...got, ...want]);
      }
    });
  }

  test("gelu and layerNorm gradients leak no tensors", () => {
    const x = tf.randomNormal([4, 6], 0, 1, "float32", 9);
    const before = tf.memory().numTensors + 2; // + w and b
    const w = tf.ones([6]) as tf.Tensor1D;
    const b = tf.zeros([6]) as tf.Tensor1D;
    const gs = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => tf.sum(layerNorm(gelu(xi), wi as tf.Tensor1D, bi as tf.Tensor1D, 1e-6)))([x, w, b]);
    assert.deepEqual(gs.map((g) => g.shape), [[4, 6], [6], [6]]);
    tf.dispose(gs);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, w, b]);
  });
});
