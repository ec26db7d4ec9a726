// The wasm kernel fixes (runtime/wasm-kernels) other than the matmul route (wasm-matmul.test.ts):
// each keeps the semantics of the kernel it replaces.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { wasmSetup } from "../../src/runtime/wasm";

/** erf in float64: Maclaurin series below 3, Laplace continued fraction above. */
function erf64(z: number): number {
  const t = Math.abs(z);
  if (t < 3) {
    let sum = 0;
    let term = t;
    for (let k = 0; Math.abs(term) > 1e-17; ) {
      sum += term / (2 * k + 1);
      k++;
      term *= (-t * t) / k;
    }
    return (Math.sign(z) * sum * 2) / Math.sqrt(Math.PI);
  }
  let cf = 0;
  for (let k = 60; k >= 1; k--) cf = k / 2 / (t + cf);
  return Math.sign(z) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + cf));
}

test("wasm erf: within 2e-7 of float64 erf on [-7, 7], odd, NaN stays NaN", async () => {
  await initBackend({ prefer: "wasm", force: true });
  assert.ok(wasmSetup()?.kernels.includes("erf-rational"), `kernel fixes: ${wasmSetup()?.kernels}`);
  const n = 140001;
  const xs = new Float32Array(n);
  for (let i = 0; i < n; i++) xs[i] = (i - (n - 1) / 2) / 1e4; // exactly symmetric: xs[n-1-i] = -xs[i]
  const got = tf.tidy(() => tf.erf(tf.tensor1d(xs)).dataSync().slice());
  let err = 0;
  for (let i = 0; i < xs.length; i++) err = Math.max(err, Math.abs(got[i] - erf64(xs[i])));
  assert.ok(err < 2e-7, `max abs err ${err}`);
  for (let i = 0; i < n; i++) assert.ok(got[i] + got[n - 1 - i] === 0, `erf(-x) != -erf(x) at ${xs[i]}`);
  const special = tf.tidy(() => Array.from(tf.erf(tf.tensor1d([NaN, Infinity, -Infinity, 0])).dataSync()));
  assert.ok(Number.isNaN(special[0]));
  assert.deepEqual(special.slice(1), [1, -1, 0]);
});

test("wasm identity shares data: a clone outlives its source, and buffers are freed once both go", async () => {
  await initBackend({ prefer: "wasm", force: true });
  assert.ok(wasmSetup()?.kernels.includes("identity-shared"));
  const ids = tf.backend().numDataIds();
  const a = tf.tensor1d([1, 2, 3]);
  const b = tf.clone(a);
  a.dispose();
  assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3]);
  const c = tf.add(b, 1); // kernels write fresh outputs: b is unchanged
  assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3]);
  tf.dispose([b, c]);
  assert.equal(tf.backend().numDataIds(), ids);
  // A variable assigned from a tensor keeps its value when the tensor is disposed.
  const v = tf.variable(tf.zeros([2]));
  const t = tf.tensor1d([5, 6]);
  v.assign(t);
  t.dispose();
  assert.deepEqual(Array.from(v.dataSync()), [5, 6]);
  v.dispose();
});
