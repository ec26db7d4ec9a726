// Retention: what the fine-tuned backbone still knows of the source domain, measured as Paper A
// does (Paper A's protocol, after DINO's eval_knn.py): DINO's weighted k-NN on the CLS feature after the final norm, with
// the source train set as the bank and the source test set as queries. Column names are
// `retention_knn<k>` (fractions in [0, 1]).
import type { ImageModel } from "../model/types";
import type { ImageSet } from "../data/dataset";
import { evaluateModel } from "../evaluation/evaluate";
import type { RetentionSpec } from "./config";

export type RetentionScores = Record<string, number>;

export const retentionKey = (k: number) => `retention_knn${k}`;

/** k-NN accuracies of `model`'s features on the retention bank and queries. */
export async function measureRetention(model: ImageModel, spec: RetentionSpec, sets: { bank: ImageSet; queries: ImageSet }, batchSize = 500): Promise<RetentionScores> {
  const r = await evaluateModel({
    model, transform: spec.transform, batchSize,
    knn: { bank: sets.bank, queries: sets.queries, ks: spec.ks, temperature: spec.temperature },
  });
  return Object.fromEntries(spec.ks.map((k) => [retentionKey(k), (r.knn as Record<number, number>)[k]]));
}
