// Streams a synthetic bank through the k-NN accumulator and reports speed and the peak memory the
// backend holds, to show that memory does not grow with the bank.
//   node --import tsx bench/knn.ts [bankRows=200000] [queries=2000] [dim=768]
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/runtime/backend";
import { Rng } from "../src/ground/rng";
import { KnnAccumulator } from "../src/evaluation/knn";

export async function knnBench(bankRows: number, queries: number, dim: number, feed = 4096): Promise<{ seconds: number; peakMiB: number; perRowMiB: number; rowsPerSec: number }> {
  const rng = new Rng("knn-bench");
  const q = Float32Array.from({ length: queries * dim }, () => rng.normal());
  const acc = new KnnAccumulator(q, dim, { numClasses: 1000 });
  const t0 = Date.now();
  // tf.profile tracks the backend's peak bytes, transient similarity matrices included.
  const info = await tf.profile(async () => {
    for (let s = 0; s < bankRows; s += feed) {
      const n = Math.min(feed, bankRows - s);
      const f = Float32Array.from({ length: n * dim }, () => rng.normal());
      const l = Int32Array.from({ length: n }, () => rng.int(1000));
      acc.add(f, l);
    }
    await acc.result(Int32Array.from({ length: queries }, () => 0));
  });
  const peak = info.peakBytes;
  const seconds = (Date.now() - t0) / 1000;
  acc.dispose();
  return { seconds, peakMiB: peak / 2 ** 20, perRowMiB: (dim * 4) / 2 ** 20, rowsPerSec: bankRows / seconds };
}

if (require.main === module) {
  (async () => {
    const [rows = 200_000, queries = 2000, dim = 768] = process.argv.slice(2).map(Number);
    const b = await initBackend();
    const r = await knnBench(rows, queries, dim);
    console.log(`${b.choice}: bank ${rows} x ${dim} streamed against ${queries} queries in ${r.seconds.toFixed(1)} s (${r.rowsPerSec.toFixed(0)} rows/s); ` +
      `peak backend memory ${r.peakMiB.toFixed(1)} MiB (the whole bank would be ${((rows * r.perRowMiB)).toFixed(0)} MiB)`);
  })().catch((e) => { console.error(e); process.exit(1); });
}
