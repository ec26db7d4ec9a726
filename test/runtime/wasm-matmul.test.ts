// The wasm BatchMatMul route (runtime/wasm-kernels): every transpose combination, unbatched,
// batched and broadcast, gives the cpu backend's numbers, and the route is in place.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/runtime/backend";
import { wasmSetup } from "../../src/runtime/wasm";

// Shapes as for transposeA = transposeB = false; the test flips the last two axes for the others.
const cases: { a: number[]; b: number[] }[] = [
  { a: [37, 19], b: [19, 23] }, // unbatched, tall output: XNNPACK after explicit transposes
  { a: [11, 19], b: [19, 40] }, // unbatched, wide output: computed as (b^T a^T)^T
  { a: [1, 37, 19], b: [1, 19, 23] }, // batch of one: the same route
  { a: [3, 37, 19], b: [3, 19, 23] }, // batched: the SIMD module's batched product
  { a: [2, 3, 17, 8], b: [2, 3, 8, 17] }, // 4-D batch (attention's [B,H,T,d])
  { a: [3, 6, 1], b: [3, 1, 9] }, // batched, inner size 1
  { a: [3, 37, 19], b: [3, 19, 5] }, // batched, fewer than 8 columns: one XNNPACK product per slice
  { a: [4, 3, 9], b: [4, 9, 12] }, // batched, fewer than 4 rows: the same
  { a: [3, 37, 19], b: [19, 23] }, // only a batched: folded into one product
  { a: [1, 37, 19], b: [3, 19, 23] }, // a broadcast over b's batch: the stock kernel
];

test("wasm matMul equals cpu for every transpose combination", async () => {
  const saved = process.env.STUDY_WASM_STOCK_KERNELS;
  delete process.env.STUDY_WASM_STOCK_KERNELS;
  try {
    for (const { a, b } of cases) {
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        const flip = (s: number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
        const sa = ta ? flip(a) : a;
        const sb = tb ? flip(b) : b;
        const xa = tf.randomNormal(sa, 0, 1, "float32", 1).arraySync();
        const xb = tf.randomNormal(sb, 0, 1, "float32", 2).arraySync();
        const run = async (backend: "cpu" | "wasm") => {
          await initBackend({ prefer: backend, force: true });
          const ids = tf.backend().numDataIds();
          const out = tf.tidy(() => tf.matMul(tf.tensor(xa), tf.tensor(xb), ta, tb).dataSync().slice());
          // The route's temporaries (transposes, reshapes, views) are all released.
          assert.equal(tf.backend().numDataIds(), ids, `${backend}: buffers leaked`);
          return out;
        };
        const want = await run("cpu");
        const got = await run("wasm");
        assert.equal(got.length, want.length);
        let err = 0;
        for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
        assert.ok(err < 1e-4, `a=[${sa}] b=[${sb}] transposeA=${ta} transposeB=${tb}: max err ${err}`);
      }
    }
    assert.ok(wasmSetup()?.kernels.includes("matmul-route"));
    assert.ok(wasmSetup()?.kernels.includes("matmul-simd"), `kernel fixes: ${wasmSetup()?.kernels}`);
  } finally {
    if (saved !== undefined) process.env.STUDY_WASM_STOCK_KERNELS = saved;
  }
});
