// Evaluation of a model on datasets, the way the papers measure it: top-1 of the head on a test
// set, and DINO's weighted k-NN with bank = train features and queries = test features (the bank
// streamed straight from feature extraction, never held in full).
import type { ImageModel } from "../model/types";
import type { ImageSet } from "../data/dataset";
import type { TransformSpec } from "../data/transforms";
import { evaluateAccuracy, extractFeatures, featureBatches } from "./features";
import { DINO_KS, DINO_TEMPERATURE, KnnResult, knnClassify } from "./knn";

export interface EvalRequest {
  model: ImageModel;
  transform: TransformSpec;
  /** Top-1 of the head on this set. */
  accuracyOn?: ImageSet;
  /** k-NN: bank and queries (labels must share one class space). */
  knn?: { bank: ImageSet; queries: ImageSet; ks?: readonly number[]; temperature?: number };
  batchSize?: number;
}

export interface EvalReport {
  top1?: number;
  loss?: number;
  /** k -> accuracy. */
  knn?: Record<number, number>;
  knnDetail?: Omit<KnnResult, "predictions">;
  seconds: number;
}

export async function evaluateModel(r: EvalRequest): Promise<EvalReport> {
  const t0 = Date.now();
  const out: EvalReport = { seconds: 0 };
  const opts = { transform: r.transform, batchSize: r.batchSize ?? 256 };
  if (r.accuracyOn) {
    const a = await evaluateAccuracy(r.model, r.accuracyOn, opts);
    out.top1 = a.top1;
    out.loss = a.loss;
  }
  if (r.knn) {
    const { bank, queries } = r.knn;
    if (bank.classes.join("\u0000") !== queries.classes.join("\u0000")) {
      throw new Error(`k-NN: bank ${bank.name} and queries ${queries.name} have different classes`);
    }
    const q = await extractFeatures(r.model, queries, opts);
    const res = await knnClassify(featureBatches(r.model, bank, opts), q, {
      numClasses: bank.classes.length, ks: r.knn.ks ?? DINO_KS, temperature: r.knn.temperature ?? DINO_TEMPERATURE,
    });
    out.knn = res.accuracy;
    out.knnDetail = { accuracy: res.accuracy, bankSize: res.bankSize, queries: res.queries };
  }
  out.seconds = (Date.now() - t0) / 1000;
  return out;
}
