// Feature extraction and top-1 accuracy over a dataset, batch by batch: only one batch of images
// and its outputs are on the backend at a time, so memory is bounded by the batch size.
import * as tf from "@tensorflow/tfjs";
import type { ImageModel } from "../model/types";
import type { ImageSet } from "../data/dataset";
import { DataLoader } from "../data/pipeline";
import type { TransformSpec } from "../data/transforms";

export interface PassOptions {
  /** The eval transform (deterministic), e.g. cifarEval(32) or paperEval(224). */
  transform: TransformSpec;
  batchSize?: number;
  /** Prefetch worker threads (default 1; 0 for the identity transform and small sets). */
  workers?: number;
}

export interface FeatureChunk {
  /** [n, dim] row-major. */
  features: Float32Array;
  labels: Int32Array;
  dim: number;
}

function evalLoader(ds: ImageSet, o: PassOptions): DataLoader {
  const batchSize = o.batchSize ?? 256;
  // A worker thread pays off for resampling transforms on large sets; starting one costs ~0.3 s,
  // more than normalising a small set (or any set at its own size) in-process.
  const workers = o.workers ?? (o.transform.kind === "identity" || ds.size <= 2 * batchSize ? 0 : 1);
  return new DataLoader(ds, { batchSize, transform: o.transform, seed: 0, shuffle: false, dropLast: false, workers });
}

/** CLS features of every image, one batch at a time, in dataset order. */
export async function* featureBatches(model: ImageModel, ds: ImageSet, o: PassOptions): AsyncGenerator<FeatureChunk> {
  const loader = evalLoader(ds, o);
  try {
    for await (const b of loader.epoch(0)) {
      const f = tf.tidy(() => model.features(tf.tensor4d(b.x, b.shape))); // [B,D]
      const features = (await f.data()) as Float32Array;
      f.dispose();
      yield { features, labels: b.labels, dim: model.featureDim };
    }
  } finally {
    await loader.close();
  }
}

/** All features in one array [N, dim] (fine for CIFAR-sized sets; stream the bank otherwise). */
export async function extractFeatures(model: ImageModel, ds: ImageSet, o: PassOptions): Promise<FeatureChunk> {
  const dim = model.featureDim;
  const features = new Float32Array(ds.size * dim);
  const labels = new Int32Array(ds.size);
  let n = 0;
  for await (const c of featureBatches(model, ds, o)) {
    features.set(c.features, n * dim);
    labels.set(c.labels, n);
    n += c.labels.length;
  }
  return { features, labels, dim };
}

export interface AccuracyResult {
  top1: number;
  correct: number;
  n: number;
  /** Mean cross-entropy. */
  loss: number;
}

/** Top-1 accuracy (and mean cross-entropy) of the model's head on a dataset. */
export async function evaluateAccuracy(model: ImageModel, ds: ImageSet, o: PassOptions): Promise<AccuracyResult> {
  if (model.numClasses === 0) throw new Error("evaluateAccuracy: the model has no head (numClasses = 0); use k-NN on features");
  // A label past the head would count as a miss and add nothing to the loss (its one-hot row is 0).
  if (ds.classes.length > model.numClasses) {
    throw new Error(`evaluateAccuracy: ${ds.name} has ${ds.classes.length} classes, the model's head ${model.numClasses}`);
  }
  const loader = evalLoader(ds, o);
  let correct = 0, n = 0, lossSum = 0;
  try {
    for await (const b of loader.epoch(0)) {
      const out = tf.tidy(() => {
        const logits = model.logits(tf.tensor4d(b.x, b.shape)); // [B,K]
        const y = tf.tensor1d(b.labels, "int32");
        const hit = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), "int32"));
        const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(y, logits.shape[1]))));
        return tf.stack([tf.cast(hit, "float32"), nll]);
      });
      const [h, l] = await out.data();
      out.dispose();
      correct += h;
      lossSum += l;
      n += b.labels.length;
    }
  } finally {
    await loader.close();
  }
  return { top1: correct / n, correct, n, loss: lossSum / n };
}

/** The head's logits of a set's first `n` images (in dataset order), [n, K] row-major. */
export async function headLogits(model: ImageModel, ds: ImageSet, o: PassOptions, n = 64): Promise<{ logits: Float32Array; shape: [number, number] }> {
  const loader = evalLoader(ds, { ...o, batchSize: Math.min(n, ds.size), workers: 0 });
  try {
    for await (const b of loader.epoch(0)) {
      const t = tf.tidy(() => model.logits(tf.tensor4d(b.x, b.shape))); // [n,K]
      const logits = (await t.data()) as Float32Array;
      const shape = t.shape as [number, number];
      t.dispose();
      return { logits, shape };
    }
  } finally {
    await loader.close();
  }
  throw new Error(`headLogits: ${ds.name} has no images`);
}
