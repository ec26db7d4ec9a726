import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { KnnAccumulator, knnClassify } from "../../src/evaluation/knn";
import { Rng } from "../../src/ground/rng";

/** DINO's k-NN written out directly: full similarity matrix, sort, vote. */
function bruteForce(bank: Float32Array, bankLabels: Int32Array, q: Float32Array, dim: number, C: number, ks: number[], T: number): Record<number, Int32Array> {
  const norm = (a: Float32Array, i: number) => { let s = 0; for (let d = 0; d < dim; d++) s += a[i * dim + d] ** 2; return Math.max(Math.sqrt(s), 1e-12); };
  const N = bankLabels.length, Q = q.length / dim;
  const out: Record<number, Int32Array> = {};
  for (const k of ks) out[k] = new Int32Array(Q);
  for (let i = 0; i < Q; i++) {
    const qi = norm(q, i);
    const sims: [number, number][] = [];
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += q[i * dim + d] * bank[j * dim + d];
      sims.push([s / (qi * norm(bank, j)), bankLabels[j]]);
    }
    sims.sort((a, b) => b[0] - a[0]);
    for (const k of ks) {
      const votes = new Float64Array(C);
      for (const [s, l] of sims.slice(0, k)) votes[l] += Math.exp(s / T);
      let best = 0;
      for (let c = 1; c < C; c++) if (votes[c] > votes[best]) best = c;
      out[k][i] = best;
    }
  }
  return out;
}

const centreCache = new Map<string, number[][]>();
function randomData(rng: Rng, n: number, dim: number, C: number) {
  // Class-dependent means (shared by bank and queries) so that k-NN beats chance.
  const ck = `${rng.initialSeed}/${dim}/${C}`;
  if (!centreCache.has(ck)) centreCache.set(ck, Array.from({ length: C }, () => Array.from({ length: dim }, () => rng.normal())));
  const centres = centreCache.get(ck)!;
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = rng.int(C);
    for (let d = 0; d < dim; d++) x[i * dim + d] = centres[y[i]][d] + 1.5 * rng.normal();
  }
  return { x, y };
}

forEachBackend("k-NN", () => {
  test("streamed k-NN (chunks, query blocks) equals brute force for every k", async () => {
    const rng = new Rng("knn-test");
    const dim = 16, C = 5, ks = [1, 10, 20, 100, 200];
    const bank = randomData(rng, 700, dim, C);
    const q = randomData(rng, 90, dim, C);
    const expect = bruteForce(bank.x, bank.y, q.x, dim, C, ks, 0.07);
    // chunks [0,130) [130,131) [131,400) [400,700): a chunk of 1 and chunks smaller than kmax
    // exercise the running merge
    const bounds = [0, 130, 131, 400, 700];
    const chunks = bounds.slice(1).map((e, i) => ({ features: bank.x.slice(bounds[i] * dim, e * dim), labels: bank.y.slice(bounds[i], e), dim }));
    const before = tf.memory().numTensors;
    const r = await knnClassify(chunks, { features: q.x, labels: q.y, dim }, { numClasses: C, ks, queryBlock: 32, chunkSize: 100 });
    assert.equal(tf.memory().numTensors, before, "k-NN leaks tensors");
    assert.equal(r.bankSize, 700);
    for (const k of ks) {
      assert.deepEqual(Array.from(r.predictions[k]), Array.from(expect[k]), `k=${k}`);
      const acc = expect[k].reduce((a, p, i) => a + (p === q.y[i] ? 1 : 0), 0) / q.y.length;
      assert.ok(Math.abs(r.accuracy[k] - acc) < 1e-12);
    }
    assert.ok(r.accuracy[20] > 0.5, `20-NN should beat chance on clustered data, got ${r.accuracy[20]}`);
  });

  test("one-chunk bank gives the same predictions as a chunked one", async () => {
    const rng = new Rng("knn-chunks");
    const dim = 8, C = 3;
    const bank = randomData(rng, 300, dim, C);
    const q = randomData(rng, 40, dim, C);
    const whole = await knnClassify([{ features: bank.x, labels: bank.y, dim }], { features: q.x, labels: q.y, dim }, { numClasses: C });
    const acc = new KnnAccumulator(q.x, dim, { numClasses: C, chunkSize: 1 });
    for (let s = 0; s < 300; s += 7) acc.add(bank.x.slice(s * dim, Math.min(300, s + 7) * dim), bank.y.slice(s, Math.min(300, s + 7)));
    const chunked = await acc.result(q.y);
    acc.dispose();
    for (const k of [10, 20, 100, 200]) assert.deepEqual(Array.from(chunked.predictions[k]), Array.from(whole.predictions[k]));
  });

  test("a mismatched chunk is a clear error", () => {
    const acc = new KnnAccumulator(new Float32Array(8), 4, { numClasses: 2 });
    assert.throws(() => acc.add(new Float32Array(7), new Int32Array(2)), /7 values for 2 labels of dim 4/);
    acc.dispose();
  });
});
