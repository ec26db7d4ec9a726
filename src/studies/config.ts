// The run config of a study: everything that determines a run's numbers, as plain JSON, so that
// its hash is the run's id (src/runs/store.ts). Retention (the forgetting measure) is part of it:
// bank, queries, ks and the steps at which it is measured, so a rerun finds its numbers cached.
// `validateConfig` checks it strictly: an unknown key or a misspelled kind is an error naming it.
import type { VitPresetName, ViTConfig } from "../model/config";
import { VIT_PRESETS } from "../model/config";
import type { BlockExpansionSpec, FullSpec, HeadSpec, LinearSpec, LoraSpec, SelectiveLoraSpec, StrategySpec, TopKSpec } from "../adapters/spec";
import type { DatasetSpec } from "../data/datasets";
import type { TransformSpec } from "../data/transforms";
import type { AdamWConfig, SgdConfig } from "../training/optimizers";
import type { ScheduleConfig } from "../training/schedule";
import type { TrainConfig } from "../training/trainer";
import {
  Check, ConfigError, Fields, anyOf, arrayOf, bool, fields, int, nonNegInt, num, oneOf, opt, posInt, positive, req, str, tagged,
} from "./schema";

/** DINO's weighted k-NN on frozen CLS features (Paper A's protocol, after DINO's eval_knn.py). */
export interface KnnSpec {
  ks: number[];
  temperature: number;
}

/**
 * How much of the source domain the fine-tuned backbone still knows: k-NN with the source
 * train set as the bank and the source test set as queries, at chosen steps.
 */
export interface RetentionSpec extends KnnSpec {
  bank: DatasetSpec;
  queries: DatasetSpec;
  transform: TransformSpec;
  /** Steps at which it is measured (0 = the untouched source model). */
  steps: number[];
  /** Also at the checkpoint of the best target test top-1 (the official code's selection). */
  atBest?: boolean;
}

/** What a run trains and tests on (ViT and CLIP runs alike). */
export interface DataConfig {
  train: DatasetSpec;
  test: DatasetSpec;
  trainTransform: TransformSpec;
  evalTransform: TransformSpec;
  batchSize: number;
  evalBatchSize?: number;
}

export interface ExperimentConfig {
  name: string;
  seed: number;
  data: DataConfig;
  model: {
    /** A ViT size preset and/or ViT config fields. */
    preset?: VitPresetName;
    vit?: Partial<ViTConfig>;
    /** Initial weights (safetensors or .pth, any naming src/weights understands). */
    init?: string;
  };
  /** How the model is fine-tuned (src/adapters). */
  strategy: StrategySpec;
  train: TrainConfig;
  eval: {
    /** k-NN on the target domain: bank = the train set (eval transform), queries = the test set. */
    knn?: KnnSpec;
  };
  retention?: RetentionSpec;
}

// ---- the schema of every part -------------------------------------------------------------

const triple = arrayOf(num, { length: 3 });
const pair = arrayOf(num, { length: 2 });
const classList = arrayOf(anyOf(nonNegInt, str));
const interpolation = oneOf("bilinear", "bicubic", "nearest");
const common = { classes: opt(classList), perClass: opt(posInt) };

// One check per dataset name; `Fields<Extract<...>>` keeps each in step with DatasetSpec.
type DS<N extends string> = DatasetSpec extends infer D ? (D extends { name: infer M } ? (N extends M ? D : never) : never) : never;
const split2 = oneOf("train", "test");
export const datasetCheck = tagged("name", {
  "cifar10-jpeg": fields<DS<"cifar10-jpeg">>({ name: req(str), split: req(split2), size: opt(posInt), ...common }),
  cifar10: fields<DS<"cifar10">>({ name: req(str), split: req(split2), format: opt(oneOf("python", "binary")), size: opt(posInt), labelKind: opt(oneOf("fine", "coarse")), ...common }),
  cifar100: fields<DS<"cifar100">>({ name: req(str), split: req(split2), format: opt(oneOf("python", "binary")), size: opt(posInt), labelKind: opt(oneOf("fine", "coarse")), ...common }),
  mnist: fields<DS<"mnist">>({ name: req(str), split: req(split2), size: opt(posInt), ...common }),
  "fashion-mnist": fields<DS<"fashion-mnist">>({ name: req(str), split: req(split2), size: opt(posInt), ...common }),
  imagefolder: fields<DS<"imagefolder">>({ name: req(str), root: req(str), split: req(str), size: req(posInt), fit: opt(oneOf("fill", "shorter-center-crop")), interpolation: opt(interpolation), ...common }),
  imagenet: fields<DS<"imagenet">>({ name: req(str), root: req(str), split: req(oneOf("train", "val")), size: opt(posInt), ...common }),
  dtd: fields<DS<"dtd">>({ name: req(str), root: req(str), split: req(oneOf("train", "val", "test")), partition: opt(posInt), size: req(posInt), ...common }),
  food101: fields<DS<"food101">>({ name: req(str), root: req(str), split: req(split2), size: req(posInt), ...common }),
  flowers102: fields<DS<"flowers102">>({ name: req(str), root: req(str), split: req(oneOf("train", "val", "test")), size: req(posInt), ...common }),
});

type TS<K extends TransformSpec["kind"]> = Extract<TransformSpec, { kind: K }>;
const norm = { mean: req(triple), std: req(triple) };
export const transformCheck = tagged("kind", {
  "random-resized-crop": fields<TS<"random-resized-crop">>({ kind: req(str), size: req(posInt), scale: req(pair), ratio: req(pair), interpolation: req(interpolation), flip: req(bool), ...norm }),
  resize: fields<TS<"resize">>({ kind: req(str), size: req(posInt), interpolation: req(interpolation), ...norm }),
  "resize-center-crop": fields<TS<"resize-center-crop">>({ kind: req(str), resize: req(posInt), size: req(posInt), interpolation: req(interpolation), ...norm }),
  "pad-crop": fields<TS<"pad-crop">>({ kind: req(str), size: req(posInt), padding: req(nonNegInt), flip: req(bool), ...norm }),
  identity: fields<TS<"identity">>({ kind: req(str), size: req(posInt), ...norm }),
});

const head = fields<HeadSpec>({ classes: opt(posInt), seed: opt(int), init: opt(oneOf("timm", "torch")) });
const loraFields = {
  rank: req(posInt), alpha: opt(positive), targets: opt(arrayOf(str, { nonEmpty: true })), dropout: opt(num),
  blocks: opt(arrayOf(nonNegInt)), rslora: opt(bool), seed: opt(int), freshHead: opt(head),
};
const strategy = tagged("kind", {
  full: fields<FullSpec>({ kind: req(str), freshHead: opt(head) }),
  "top-k": fields<TopKSpec>({ kind: req(str), k: req(nonNegInt), trainFinalNorm: opt(bool), freshHead: opt(head) }),
  linear: fields<LinearSpec>({ kind: req(str), freshHead: opt(head) }),
  lora: fields<LoraSpec>({ kind: req(str), ...loraFields }),
  "selective-lora": fields<SelectiveLoraSpec>({
    kind: req(str), ...loraFields, tau: opt(num), scoreInit: opt(num), lambda: opt(num), penaltyStartStep: opt(nonNegInt),
  }),
  "block-expansion": fields<BlockExpansionSpec>({ kind: req(str), p: opt(posInt), split: opt(posInt), after: opt(arrayOf(posInt, { nonEmpty: true })), freshHead: opt(head) }),
});

const optimizer = tagged("name", {
  sgd: fields<SgdConfig>({ name: req(str), lr: req(positive), momentum: req(num), weightDecay: opt(num), nesterov: opt(bool) }),
  adamw: fields<AdamWConfig>({ name: req(str), lr: req(positive), betas: opt(pair), eps: opt(positive), weightDecay: opt(num) }),
});
const schedule = fields<ScheduleConfig>({ kind: req(oneOf("cosine", "constant")), warmupSteps: req(nonNegInt) });
const steps = arrayOf(nonNegInt);
export const trainCheck = fields<TrainConfig>({
  steps: req(nonNegInt), optimizer: req(optimizer), schedule: req(schedule), clipGradNorm: opt(positive), evalEvery: opt(posInt),
  evalAt: opt(steps), checkpointEvery: opt(posInt), keepCheckpoints: opt(posInt), saveAt: opt(steps), logEvery: opt(posInt),
});

export const dataCheck = fields<DataConfig>({
  train: req(datasetCheck), test: req(datasetCheck), trainTransform: req(transformCheck), evalTransform: req(transformCheck),
  batchSize: req(posInt), evalBatchSize: opt(posInt),
});

const vitFields: Fields<ViTConfig> = {
  imageSize: req(posInt), patchSize: req(posInt), inChannels: req(posInt), width: req(posInt), depth: req(posInt), heads: req(posInt),
  mlpRatio: req(positive), qkvBias: req(bool), classToken: req(bool), lnEps: req(positive), act: req(oneOf("gelu", "quick_gelu")),
  preNorm: req(bool), patchBias: req(bool), numClasses: req(nonNegInt), headBias: req(bool),
};
// Partial<ViTConfig>: every field optional.
const vitPartial = fields<Partial<ViTConfig>>(Object.fromEntries(Object.entries(vitFields).map(([k, f]) => [k, opt(f.check)])) as Fields<Partial<ViTConfig>>);

const knn = fields<KnnSpec>({ ks: req(arrayOf(posInt, { nonEmpty: true })), temperature: req(positive) });
const retention = fields<RetentionSpec>({
  bank: req(datasetCheck), queries: req(datasetCheck), transform: req(transformCheck), ks: req(arrayOf(posInt, { nonEmpty: true })),
  temperature: req(positive), steps: req(steps), atBest: opt(bool),
});

const experiment: Check = fields<ExperimentConfig>({
  name: req(str),
  seed: req(int),
  data: req(dataCheck),
  model: req(fields<ExperimentConfig["model"]>({ preset: opt(oneOf(...Object.keys(VIT_PRESETS))), vit: opt(vitPartial), init: opt(str) })),
  strategy: req(strategy),
  train: req(trainCheck),
  eval: req(fields<ExperimentConfig["eval"]>({ knn: opt(knn) })),
  retention: opt(retention),
});

/**
 * Checks a config against the types above and the rules between fields; returns it typed.
 * `what` names where it came from (a file, a job) in the error.
 */
export function validateConfig(config: unknown, what = "config"): ExperimentConfig {
  try {
    experiment(config, "");
    const c = config as ExperimentConfig;
    const beyond = (name: string, list: number[] | undefined) => {
      const bad = (list ?? []).filter((s) => s > c.train.steps);
      if (bad.length) throw new ConfigError(`${name}: step${bad.length > 1 ? "s" : ""} ${bad.join(", ")} beyond train.steps ${c.train.steps}`);
    };
    beyond("retention.steps", c.retention?.steps);
    beyond("train.evalAt", c.train.evalAt);
    beyond("train.saveAt", c.train.saveAt);
    return c;
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${what}: ${e.message}`);
    throw e;
  }
}

// ---- variants ------------------------------------------------------------------------------

/** A deep-partial config: what a variant of a sweep changes. Arrays replace, objects merge. */
export type ConfigPatch<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: ConfigPatch<T[K]> } : T;

const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/**
 * `base` with `patch` applied: objects merge key by key, everything else (arrays included)
 * replaces. Below the top level, a patch that switches a tagged union (strategy.kind,
 * optimizer.name, a dataset's name) replaces that object whole, so no key of the old kind
 * survives into the new one.
 */
export function mergeConfig<T extends object>(base: T, patch: ConfigPatch<T> | undefined): T {
  if (patch === undefined) return base;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) if (v !== undefined) out[k] = mergeValue(out[k], v);
  return out as T;
}

function mergeValue(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(patch)) return structuredClone(patch);
  const switches = ["kind", "name"].some((k) => typeof patch[k] === "string" && patch[k] !== base[k]);
  if (switches) return structuredClone(patch);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) out[k] = mergeValue(base[k], v);
  return out;
}
