// The wasm kernel fixes (runtime/wasm-kernels) other than the matmul route (wasm-matmul.test.ts)
// and the fused GELU/LayerNorm (test/model/ops.test.ts): each keeps the semantics of the kernel
// it replaces.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { FusedKernel } from "../../src/runtime/fused-kernels";
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

/** Runs f on the cpu backend and on wasm; returns both results as plain arrays (shape, values). */
async function onCpuAndWasm(f: () => tf.Tensor | tf.Tensor[]): Promise<{ cpu: [number[], number[]][]; wasm: [number[], number[]][] }> {
  const run = async (backend: "cpu" | "wasm") => {
    await initBackend({ prefer: backend, force: true });
    const ids = tf.backend().numDataIds();
    const out = tf.tidy(() => {
      const r = f();
      return (Array.isArray(r) ? r : [r]).map((t): [number[], number[]] => [t.shape, Array.from(t.dataSync())]);
    });
    assert.equal(tf.backend().numDataIds(), ids, `${backend}: buffers leaked`);
    return out;
  };
  return { cpu: await run("cpu"), wasm: await run("wasm") };
}

test("wasm SIMD kernels are installed: fused GELU/LayerNorm, Sum over leading axes, copies, batched matmul", async () => {
  await initBackend({ prefer: "wasm", force: true });
  const kernels = wasmSetup()?.kernels ?? [];
  for (const k of ["gelu-layernorm-simd", "sum-leading-simd", "pack-unpack-copy", "matmul-simd"]) assert.ok(kernels.some((name) => name.startsWith(k)), `${k} missing from ${kernels}`);
  for (const k of Object.values(FusedKernel)) assert.ok(tf.getKernel(k, "wasm"), `${k} not registered`);
});

// Sum: the replacement handles reductions over every axis but the last; the rest keep the stock kernel.
const sums: { shape: number[]; axis: number | number[]; keepDims?: boolean }[] = [
  { shape: [37, 24], axis: 0 },
  { shape: [5, 7, 16], axis: [0, 1] },
  { shape: [5, 7, 16], axis: [1, 0], keepDims: true },
  { shape: [2, 3, 5, 8], axis: [-4, -3, -2] },
  { shape: [5, 7, 6], axis: [0, 1] }, // last axis not a multiple of 4: stock
  { shape: [5, 7, 16], axis: 1 }, // not all leading axes: stock
  { shape: [5, 7, 16], axis: -1 }, // the last axis: stock
];
for (const { shape, axis, keepDims = false } of sums) {
  test(`wasm sum [${shape}] over ${JSON.stringify(axis)}${keepDims ? " keepDims" : ""} equals cpu`, async () => {
    const x = tf.randomNormal(shape, 0, 1, "float32", 7).arraySync();
    const { cpu, wasm } = await onCpuAndWasm(() => tf.sum(tf.tensor(x), axis, keepDims));
    assert.deepEqual(wasm[0][0], cpu[0][0]);
    for (let i = 0; i < cpu[0][1].length; i++) assert.ok(Math.abs(wasm[0][1][i] - cpu[0][1][i]) < 1e-4, `element ${i}: ${wasm[0][1][i]} vs ${cpu[0][1][i]}`);
  });
}

// Copies are exact: unstack, stack and concat equal cpu bit for bit, float32 and int32, any axis.
const copies: { name: string; f: () => tf.Tensor | tf.Tensor[] }[] = [
  { name: "unstack axis 0", f: () => tf.unstack(tf.randomNormal([3, 5, 4], 0, 1, "float32", 1)) },
  { name: "unstack axis 1 (qkv split)", f: () => tf.unstack(tf.randomNormal([6, 3, 8], 0, 1, "float32", 2), 1) },
  { name: "unstack last axis", f: () => tf.unstack(tf.randomNormal([4, 5, 3], 0, 1, "float32", 3), -1) },
  { name: "unstack int32", f: () => tf.unstack(tf.range(0, 24, 1, "int32").reshape([2, 3, 4]), 1) },
  { name: "stack axis 0", f: () => tf.stack([tf.randomNormal([3, 4], 0, 1, "float32", 4), tf.randomNormal([3, 4], 0, 1, "float32", 5)]) },
  { name: "stack axis 1", f: () => tf.stack([1, 2, 3].map((s) => tf.randomNormal([6, 8], 0, 1, "float32", s)), 1) },
  { name: "stack last axis", f: () => tf.stack([1, 2].map((s) => tf.randomNormal([2, 3], 0, 1, "float32", s)), -1) },
  { name: "concat axis 1, unequal widths", f: () => tf.concat([tf.randomNormal([4, 3], 0, 1, "float32", 6), tf.randomNormal([4, 5], 0, 1, "float32", 7)], 1) },
  { name: "concat axis 0 with an empty part", f: () => tf.concat([tf.zeros([0, 3]), tf.randomNormal([2, 3], 0, 1, "float32", 8), tf.randomNormal([1, 3], 0, 1, "float32", 9)], 0) },
  { name: "concat int32 on the middle axis", f: () => tf.concat([tf.range(0, 12, 1, "int32").reshape([2, 3, 2]), tf.range(12, 20, 1, "int32").reshape([2, 2, 2])], 1) },
  { name: "stack gradient (unstack) and unstack gradient (stack)", f: () => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.stack([a, b], 1), tf.range(1, 13).reshape([2, 2, 3]))))([tf.ones([2, 3]), tf.ones([2, 3])]) },
];
for (const { name, f } of copies) {
  test(`wasm ${name} equals cpu exactly`, async () => {
    const { cpu, wasm } = await onCpuAndWasm(f);
    assert.deepEqual(wasm, cpu);
  });
}
