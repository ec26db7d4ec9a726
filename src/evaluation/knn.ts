// DINO's weighted k-NN classifier (eval_knn.py): L2-normalised features, cosine similarity of
// every query to every bank feature, the k most similar vote for their class with weight
// exp(sim / T), T = 0.07; prediction = the class with the largest summed weight. All k come from
// one pass (the top-kmax neighbours, sorted, are kept; smaller k use a prefix).
//
// The bank is streamed: it arrives in chunks (e.g. straight from feature extraction) and each
// query block keeps a running top-kmax (similarities and labels). Memory is O(Q*kmax + chunk*D),
// independent of the bank size, so a 1.28M x 768 ImageNet bank never has to exist in full.
import * as tf from "@tensorflow/tfjs";
import type { FeatureChunk } from "./features";

export const DINO_KS = [10, 20, 100, 200] as const;
export const DINO_TEMPERATURE = 0.07;

export interface KnnOptions {
  numClasses: number;
  ks?: readonly number[];
  temperature?: number;
  /** Queries compared at once against a chunk (bounds the [q, chunk] similarity matrix). */
  queryBlock?: number;
  /** Bank rows gathered before a similarity pass (default 8192; fewer, larger top-k merges). */
  chunkSize?: number;
}

export interface KnnResult {
  /** Accuracy per k (fraction in [0,1]). */
  accuracy: Record<number, number>;
  /** Predicted class per query, per k. */
  predictions: Record<number, Int32Array>;
  bankSize: number;
  queries: number;
}

/** Row-wise L2 normalisation: x / max(||x||, 1e-12) (torch's F.normalize). */
function l2normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 2, 1, true), 1e-12)));
}

/** Accumulates the running top-k of every query over bank chunks. */
export class KnnAccumulator {
  private readonly kmax: number;
  private readonly blocks: { q: tf.Tensor2D; vals?: tf.Tensor2D; labs?: tf.Tensor2D }[] = [];
  private bankSize = 0;
  private pending: { features: Float32Array; labels: Int32Array }[] = [];
  private pendingRows = 0;

  /** queries: [Q, dim] row-major. */
  constructor(queries: Float32Array, readonly dim: number, readonly opts: KnnOptions) {
    const ks = opts.ks ?? DINO_KS;
    this.kmax = Math.max(...ks);
    const Q = queries.length / dim;
    if (!Number.isInteger(Q)) throw new Error(`k-NN: ${queries.length} query values is not a multiple of dim ${dim}`);
    const qb = opts.queryBlock ?? 1024;
    for (let s = 0; s < Q; s += qb) {
      const n = Math.min(qb, Q - s);
      this.blocks.push({ q: tf.tidy(() => l2normalize(tf.tensor2d(queries.subarray(s * dim, (s + n) * dim), [n, dim]))) });
    }
  }

  /** Adds bank rows: features [n, dim], labels [n] (buffered up to chunkSize rows). */
  add(features: Float32Array, labels: Int32Array): void {
    const n = labels.length;
    if (n === 0) return;
    if (features.length !== n * this.dim) throw new Error(`k-NN: bank chunk has ${features.length} values for ${n} labels of dim ${this.dim}`);
    this.pending.push({ features, labels });
    this.pendingRows += n;
    if (this.pendingRows >= (this.opts.chunkSize ?? 8192)) this.flush();
  }

  private flush(): void {
    if (this.pendingRows === 0) return;
    const n = this.pendingRows;
    const features = new Float32Array(n * this.dim);
    const labels = new Int32Array(n);
    let off = 0;
    for (const p of this.pending) {
      features.set(p.features, off * this.dim);
      labels.set(p.labels, off);
      off += p.labels.length;
    }
    this.pending = [];
    this.pendingRows = 0;
    this.process(features, labels);
  }

  /** One similarity pass of every query block against n bank rows, merged into the running top-k. */
  private process(features: Float32Array, labels: Int32Array): void {
    const n = labels.length;
    this.bankSize += n;
    const bank = tf.tidy(() => l2normalize(tf.tensor2d(features, [n, this.dim]))); // [n,D]
    const bankLabels = tf.tensor1d(labels, "int32");
    const k = Math.min(this.kmax, n);
    for (const blk of this.blocks) {
      const [vals, labs] = tf.tidy(() => {
        const sims = tf.matMul(blk.q, bank, false, true); // [q,n]
        const top = tf.topk(sims, k); // [q,k], sorted descending
        const topLabels = tf.reshape(tf.gather(bankLabels, tf.reshape(top.indices, [-1])), [blk.q.shape[0], k]) as tf.Tensor2D; // [q,k]
        if (!blk.vals || !blk.labs) return [top.values as tf.Tensor2D, topLabels];
        const allV = tf.concat([blk.vals, top.values as tf.Tensor2D], 1); // [q,k_old+k]
        const allL = tf.concat([blk.labs, topLabels], 1);
        const merged = tf.topk(allV, Math.min(this.kmax, allV.shape[1]));
        // Row-wise gather as a flat gather (batchDims=1 gather is broken on the wasm backend).
        const [q, w] = allL.shape as [number, number];
        const kk = merged.indices.shape[1]!;
        const flat = tf.add(merged.indices, tf.mul(tf.range(0, q, 1, "int32").reshape([q, 1]), tf.scalar(w, "int32"))); // [q,kk]
        return [merged.values as tf.Tensor2D, tf.reshape(tf.gather(tf.reshape(allL, [-1]), tf.reshape(flat, [-1])), [q, kk]) as tf.Tensor2D];
      });
      tf.dispose([blk.vals, blk.labs]);
      blk.vals = vals;
      blk.labs = labs;
    }
    tf.dispose([bank, bankLabels]);
  }

  /** Votes for every k and scores against the query labels. */
  async result(queryLabels: Int32Array): Promise<KnnResult> {
    this.flush();
    const ks = this.opts.ks ?? DINO_KS;
    const T = this.opts.temperature ?? DINO_TEMPERATURE;
    const C = this.opts.numClasses;
    const predictions: Record<number, Int32Array> = {};
    for (const k of ks) predictions[k] = new Int32Array(queryLabels.length);
    let row = 0;
    for (const blk of this.blocks) {
      if (!blk.vals || !blk.labs) throw new Error("k-NN: the bank is empty");
      const kk = blk.vals.shape[1];
      const vals = await blk.vals.data();
      const labs = await blk.labs.data();
      const votes = new Float64Array(C);
      for (let i = 0; i < blk.q.shape[0]; i++, row++) {
        for (const k of ks) {
          votes.fill(0);
          for (let j = 0; j < Math.min(k, kk); j++) votes[labs[i * kk + j]] += Math.exp(vals[i * kk + j] / T);
          let best = 0;
          for (let c = 1; c < C; c++) if (votes[c] > votes[best]) best = c;
          predictions[k][row] = best;
        }
      }
    }
    if (row !== queryLabels.length) throw new Error(`k-NN: ${queryLabels.length} query labels for ${row} queries`);
    const accuracy: Record<number, number> = {};
    for (const k of ks) {
      let hit = 0;
      for (let i = 0; i < row; i++) if (predictions[k][i] === queryLabels[i]) hit++;
      accuracy[k] = hit / row;
    }
    return { accuracy, predictions, bankSize: this.bankSize, queries: row };
  }

  dispose(): void {
    for (const b of this.blocks) tf.dispose([b.q, b.vals, b.labs]);
    this.blocks.length = 0;
  }
}

/**
 * Weighted k-NN accuracy of `queries` against a bank that is streamed chunk by chunk
 * (an array of chunks, or an async generator such as featureBatches(model, trainSet, ...)).
 */
export async function knnClassify(
  bank: AsyncIterable<FeatureChunk> | Iterable<FeatureChunk>,
  queries: FeatureChunk,
  opts: KnnOptions,
): Promise<KnnResult> {
  const acc = new KnnAccumulator(queries.features, queries.dim, opts);
  try {
    for await (const chunk of bank) acc.add(chunk.features, chunk.labels);
    return await acc.result(queries.labels);
  } finally {
    acc.dispose();
  }
}
