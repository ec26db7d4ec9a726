// What a sweep will cost before it starts, from the configs alone (no weights, no data needed):
// per run the trainable parameters (exact, analytic), forward MACs per image (analytic, with
// unmerged LoRA), and the compute of training (~3x forward per image: forward + backward) and of
// every evaluation pass (target top-1 at each eval step, retention's bank + queries at each
// retention step), from the datasets' known split sizes.
import { vitConfig } from "../model/config";
import { forwardMacs } from "../model/flops";
import { adapterCosts, trainableParams } from "../adapters/strategies";
import type { DatasetSpec } from "../data/datasets";
import type { ExperimentConfig } from "./config";

/** Images per split of the datasets with a fixed size (torchvision's splits). */
const SPLIT_SIZES: Partial<Record<DatasetSpec["name"], { sizes: Record<string, number>; classes: number }>> = {
  "cifar10-jpeg": { sizes: { train: 50_000, test: 10_000 }, classes: 10 },
  cifar10: { sizes: { train: 50_000, test: 10_000 }, classes: 10 },
  cifar100: { sizes: { train: 50_000, test: 10_000 }, classes: 100 },
  mnist: { sizes: { train: 60_000, test: 10_000 }, classes: 10 },
  "fashion-mnist": { sizes: { train: 60_000, test: 10_000 }, classes: 10 },
  imagenet: { sizes: { train: 1_281_167, val: 50_000 }, classes: 1000 },
  dtd: { sizes: { train: 1_880, val: 1_880, test: 1_880 }, classes: 47 },
  food101: { sizes: { train: 75_750, test: 25_250 }, classes: 101 },
  flowers102: { sizes: { train: 1_020, val: 1_020, test: 6_149 }, classes: 102 },
};

/** Images in a split (class subsets scaled, as these sets are balanced or near it); NaN if unknown. */
export function splitSize(spec: DatasetSpec): number {
  const known = SPLIT_SIZES[spec.name];
  const n = known?.sizes[spec.split];
  if (!known || n === undefined) return NaN;
  const classes = spec.classes?.length ?? known.classes;
  const perClass = n / known.classes;
  return Math.round(classes * (spec.perClass !== undefined ? Math.min(spec.perClass, perClass) : perClass));
}

export interface RunCost {
  trainable: number;
  /** Forward MACs of one image through the model as it trains (unmerged adapters included). */
  forwardMacs: number;
  trainMacs: number;
  evalMacs: number;
  totalMacs: number;
  /** One pass of each kind of measurement (target top-1 on the test set; retention's bank + queries). */
  passMacs: { target: number; retention: number; knn: number };
}

/** The analytic cost of one run config. */
export function runCost(c: ExperimentConfig): RunCost {
  const vit = vitConfig(c.model.preset ?? {}, c.model.vit ?? {});
  const counted = trainableParams(vit, c.strategy);
  const fwd = forwardMacs(counted.config, adapterCosts(counted.config, c.strategy)).macs;
  const { steps, evalEvery } = c.train;
  const trainMacs = 3 * fwd * c.data.batchSize * steps;
  const targetEvals = new Set([steps, ...(evalEvery ? Array.from({ length: Math.floor(steps / evalEvery) + 1 }, (_, i) => i * evalEvery) : [])]).size;
  const r = c.retention;
  const passMacs = {
    target: fwd * splitSize(c.data.test),
    retention: r ? fwd * (splitSize(r.bank) + splitSize(r.queries)) : 0,
    knn: c.eval.knn ? fwd * (splitSize(c.data.train) + splitSize(c.data.test)) : 0,
  };
  const evalMacs = targetEvals * passMacs.target + passMacs.knn + (r ? (r.steps.length + (r.atBest ? 1 : 0)) * passMacs.retention : 0);
  return { trainable: counted.total, forwardMacs: fwd, trainMacs, evalMacs, totalMacs: trainMacs + evalMacs, passMacs };
}

/** runCost, or why it cannot be computed (an invalid strategy for the model: the run will fail). */
export function tryRunCost(c: ExperimentConfig): RunCost | Error {
  try {
    return runCost(c);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

export const NO_COST: RunCost = { trainable: NaN, forwardMacs: NaN, trainMacs: 0, evalMacs: 0, totalMacs: 0, passMacs: { target: 0, retention: 0, knn: 0 } };
