// Paper A's recipe (arXiv 2404.17245 and its official code, rezaakb/peft-vit), per preset, and
// its methods (Table 1's ten rows) as sweep variants.
//
//   paper   the exact recipe: DINO ViT-B/16 from the user's file, CIFAR-100 at 224 px
//           (RandomResizedCrop + flip, mean = std = 0.5), SGD momentum 0.9 without weight
//           decay, batch 128, 10,000 iterations, linear warm-up over 500 steps (100 for Linear)
//           then cosine, the per-row learning rates, validation every 500 steps, ImageNet-1k
//           20-NN retention from the user's ImageNet folder.
//   laptop  the small-scale analog: the source model of data/source-model (a 4-block ViT trained
//           on CIFAR-10 classes 0-4) in DINO's place, CIFAR-10 classes 5-9 / MNIST /
//           Fashion-MNIST as targets at 32 px with the same transform family, retention = 20-NN
//           on the source test set with the source train set as the bank. Same optimizer,
//           batch, learning rates and schedule shape; 500 iterations (warm-up 5% and 1% as the
//           paper's 500/10,000 and 100/10,000), validation every 50.
//   smoke   the laptop recipe on a few images per class for a few steps: every code path.
import type { StrategySpec } from "../../adapters/spec";
import type { DatasetSpec } from "../../data/datasets";
import { cifarEval, imagenetEval, paperEval, paperTrain } from "../../data/transforms";
import { forgettingSteps } from "../../training/schedule";
import type { ExperimentConfig, RetentionSpec } from "../config";
import type { Preset } from "../presets";
import { pick } from "../presets";
import type { Variant } from "../sweep";

/** Targets of the laptop analog, and the paper's (scatter figure). */
export type LaptopTarget = "cifar10-5to9" | "mnist" | "fashion-mnist";
export type PaperTarget = "cifar100" | "cifar10" | "dtd" | "food101" | "flowers102";
export type Target = LaptopTarget | PaperTarget;
export const LAPTOP_TARGETS: readonly LaptopTarget[] = ["cifar10-5to9", "mnist", "fashion-mnist"];
export const PAPER_TARGETS: readonly PaperTarget[] = ["cifar100", "cifar10", "dtd", "food101", "flowers102"];
/** The methods of the scatter over targets (its Block and LoRA points are single configurations: CHOICE p=3, r=8). */
export const SCATTER_METHODS: readonly string[] = ["Block p=3", "LoRA r=8", "All", "Linear"];

/** Display names; the paper's targets as its figure names them. */
export const TARGET_NAMES: Record<Target, string> = {
  "cifar10-5to9": "CIFAR-10 5-9", mnist: "MNIST", "fashion-mnist": "Fashion-MNIST",
  cifar100: "CIFAR-100", cifar10: "CIFAR-10", dtd: "DTD", food101: "Food-101", flowers102: "Flowers-102",
};

/** Where the paper preset finds the user's extracted DTD, Food-101 and Flowers-102. */
const USER_TARGET_ROOT = "$STUDY_TARGETS_DIR";

export const defaultTarget = (preset: Preset): Target => (preset === "paper" ? "cifar100" : "cifar10-5to9");

/** Train/test sets and class count of a target at a preset. */
export function targetData(preset: Preset, target: Target): { train: DatasetSpec; test: DatasetSpec; classes: number } {
  // Notebook parameters reach here unchecked (a cell's `as Target`): name the choices.
  if (!(target in TARGET_NAMES)) throw new Error(`target '${String(target)}': use one of ${Object.keys(TARGET_NAMES).join(", ")}`);
  const small = preset === "smoke" ? { train: { perClass: 16 }, test: { perClass: 8 } } : { train: {}, test: {} };
  const size = preset === "paper" ? 224 : 32;
  switch (target) {
    case "cifar10-5to9": {
      const classes = [5, 6, 7, 8, 9];
      return { train: { name: "cifar10-jpeg", split: "train", classes, ...small.train }, test: { name: "cifar10-jpeg", split: "test", classes, ...small.test }, classes: 5 };
    }
    case "mnist":
    case "fashion-mnist":
      return { train: { name: target, split: "train", size, ...small.train }, test: { name: target, split: "test", size, ...small.test }, classes: 10 };
    case "cifar100":
    case "cifar10":
      return { train: { name: target, split: "train", size: 32 }, test: { name: target, split: "test", size: 32 }, classes: target === "cifar100" ? 100 : 10 };
    case "dtd":
      return { train: { name: "dtd", root: `${USER_TARGET_ROOT}/dtd`, split: "train", size: 256 }, test: { name: "dtd", root: `${USER_TARGET_ROOT}/dtd`, split: "test", size: 256 }, classes: 47 };
    case "food101":
      return { train: { name: "food101", root: `${USER_TARGET_ROOT}/food-101`, split: "train", size: 256 }, test: { name: "food101", root: `${USER_TARGET_ROOT}/food-101`, split: "test", size: 256 }, classes: 101 };
    case "flowers102":
      return { train: { name: "flowers102", root: `${USER_TARGET_ROOT}/flowers-102`, split: "train", size: 256 }, test: { name: "flowers102", root: `${USER_TARGET_ROOT}/flowers-102`, split: "test", size: 256 }, classes: 102 };
  }
}

/** Iterations per preset; the forgetting curve's retention steps go up to this. */
export const stepsFor = (preset: Preset) => pick(preset, { smoke: 6, laptop: 500, paper: 10_000 });

/** Retention of the source domain: ImageNet-1k (paper) or CIFAR-10 classes 0-4 (laptop). */
export function retentionSpec(preset: Preset, steps: number[]): RetentionSpec {
  const common = { ks: [10, 20, 100, 200], temperature: 0.07, steps, atBest: true };
  if (preset === "paper") {
    return {
      ...common, transform: imagenetEval(224),
      bank: { name: "imagenet", root: "$STUDY_IMAGENET_DIR", split: "train" }, queries: { name: "imagenet", root: "$STUDY_IMAGENET_DIR", split: "val" },
    };
  }
  const source = [0, 1, 2, 3, 4];
  const small = preset === "smoke" ? { bank: { perClass: 16 }, queries: { perClass: 8 } } : { bank: {}, queries: {} };
  return {
    ...common, transform: cifarEval(32),
    bank: { name: "cifar10-jpeg", split: "train", classes: source, ...small.bank },
    queries: { name: "cifar10-jpeg", split: "test", classes: source, ...small.queries },
  };
}

export interface RecipeOptions {
  target?: Target;
  /** Where retention is measured: at the end (Table 1) or along the forgetting curve. */
  retention?: "final" | "curve";
}

/** The full run config of Paper A's recipe at a preset (full fine-tuning, seed 0). */
export function recipe(preset: Preset, opts: RecipeOptions = {}): ExperimentConfig {
  const target = opts.target ?? defaultTarget(preset);
  const data = targetData(preset, target);
  const steps = stepsFor(preset);
  const paper = preset === "paper";
  return {
    name: `a-${preset}-${target}${opts.retention === "curve" ? "-curve" : ""}`,
    seed: 0,
    data: {
      train: data.train, test: data.test,
      trainTransform: paperTrain(paper ? 224 : 32), evalTransform: paper ? paperEval(224) : cifarEval(32),
      batchSize: pick(preset, { smoke: 16, laptop: 128, paper: 128 }),
      evalBatchSize: pick(preset, { smoke: 64, laptop: 500, paper: 256 }),
    },
    model: paper
      ? { preset: "vit-base-16", vit: { numClasses: 0 }, init: "$STUDY_DINO_WEIGHTS" }
      : { vit: { imageSize: 32, patchSize: 8, inChannels: 3, width: 64, depth: 4, heads: 2, numClasses: 5 }, init: "data/source-model/model.safetensors" },
    strategy: { kind: "full", freshHead: { classes: data.classes, seed: 0 } },
    train: {
      steps,
      optimizer: { name: "sgd", lr: 0.005, momentum: 0.9, weightDecay: 0 },
      schedule: { kind: "cosine", warmupSteps: warmup(steps, "default") },
      evalEvery: pick(preset, { smoke: 2, laptop: 50, paper: 500 }),
      checkpointEvery: pick(preset, { smoke: 2, laptop: 50, paper: 500 }),
      keepCheckpoints: 1,
      logEvery: pick(preset, { smoke: 1, laptop: 10, paper: 50 }),
    },
    eval: {},
    retention: retentionSpec(preset, opts.retention === "curve" ? forgettingSteps(steps) : [steps]),
  };
}

/** Linear warm-up length: 5% of the iterations (500 of 10,000), 1% for Linear (100 of 10,000). */
export function warmup(steps: number, kind: "default" | "linear"): number {
  return Math.round(steps * (kind === "linear" ? 0.01 : 0.05));
}

// ---- the methods ---------------------------------------------------------------------------

export interface Method {
  /** Table 1's row name. */
  method: string;
  /** Learning rate of the row (the official code's; CHOICE where the paper gives none). */
  lr: number;
  warmup: "default" | "linear";
  /** The strategy at a preset (the laptop's 4-block model maps Top-3 and the block placements). */
  strategy: (preset: Preset) => StrategySpec;
  /** How the laptop maps the row onto the 4-block model, when it differs from the paper's. */
  laptopNote?: string;
}

const small = (preset: Preset) => preset !== "paper";

/** Table 1's ten rows. */
export const METHODS: readonly Method[] = [
  { method: "All", lr: 0.005, warmup: "default", strategy: () => ({ kind: "full" }) },
  {
    method: "Top-3", lr: 0.005, warmup: "default", strategy: (p) => ({ kind: "top-k", k: small(p) ? 1 : 3 }),
    laptopNote: "Top-1 of 4 blocks (the paper's top 3 of 12: the last quarter)",
  },
  { method: "Linear", lr: 0.005, warmup: "linear", strategy: () => ({ kind: "linear" }) },
  { method: "LoRA r=4", lr: 0.05, warmup: "default", strategy: () => ({ kind: "lora", rank: 4 }) },
  { method: "LoRA r=8", lr: 0.005, warmup: "default", strategy: () => ({ kind: "lora", rank: 8 }) },
  { method: "LoRA r=16", lr: 0.05, warmup: "default", strategy: () => ({ kind: "lora", rank: 16 }) },
  // The paper gives no learning rate for block expansion: CHOICE 0.005, the rate of the rows that
  // also train whole blocks (All, Top-3).
  {
    method: "Block p=1", lr: 0.005, warmup: "default", strategy: () => ({ kind: "block-expansion", p: 1 }),
    laptopNote: "1 copy, of block 3 before block 4 (the official split 11 of 12: the second-to-last block)",
  },
  { method: "Block p=2", lr: 0.005, warmup: "default", strategy: () => ({ kind: "block-expansion", p: 2 }), laptopNote: "2 copies: after blocks 2 and 4 (split 2)" },
  {
    method: "Block p=3", lr: 0.005, warmup: "default", strategy: (p) => (small(p) ? { kind: "block-expansion", after: [1, 3, 4] } : { kind: "block-expansion", p: 3 }),
    laptopNote: "3 copies: after blocks 1, 3 and 4 (the official 4, 8, 12 of 12 scaled to 4 and rounded)",
  },
  { method: "Block p=4", lr: 0.005, warmup: "default", strategy: () => ({ kind: "block-expansion", p: 4 }), laptopNote: "4 copies: after every block (split 1)" },
];

export function method(name: string): Method {
  const m = METHODS.find((x) => x.method === name);
  if (!m) throw new Error(`Paper A has no method '${name}'; its rows are ${METHODS.map((x) => x.method).join(", ")}`);
  return m;
}

export type Schedule = "warm-up + cosine" | "constant";
export const SCHEDULES: readonly Schedule[] = ["warm-up + cosine", "constant"];

export interface VariantOptions {
  target?: Target;
  schedule?: Schedule;
  /** Replaces the row's learning rate. */
  lr?: number;
  retention?: "final" | "curve";
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");

/**
 * One run of a method at a preset and seed, as a complete variant of `recipe(preset)`: the
 * target's data and head, the strategy, its learning rate and warm-up, the seeds of the head and
 * LoRA initialisation, and the retention steps.
 */
export function variant(preset: Preset, m: Method | string, seed: number, opts: VariantOptions = {}): Variant {
  const row = typeof m === "string" ? method(m) : m;
  const target = opts.target ?? defaultTarget(preset);
  const base = recipe(preset, { target, retention: opts.retention });
  const data = targetData(preset, target);
  const steps = base.train.steps;
  const schedule = opts.schedule ?? "warm-up + cosine";
  const spec = row.strategy(preset);
  const strategy: StrategySpec = { ...spec, freshHead: { classes: data.classes, seed }, ...(spec.kind === "lora" || spec.kind === "selective-lora" ? { seed } : {}) };
  const lr = opts.lr ?? row.lr;
  return {
    tags: { method: row.method, schedule, target: TARGET_NAMES[target] },
    name: `${base.name}-${slug(row.method)}${schedule === "constant" ? "-const" : ""}${opts.lr !== undefined ? `-lr${lr}` : ""}`,
    seed,
    data: { ...base.data },
    strategy,
    train: {
      optimizer: { name: "sgd", lr, momentum: 0.9, weightDecay: 0 },
      schedule: schedule === "constant" ? { kind: "constant", warmupSteps: 0 } : { kind: "cosine", warmupSteps: warmup(steps, row.warmup) },
    },
    retention: base.retention,
  };
}

/** Every (method, seed) pair as variants. */
export function variantsOf(preset: Preset, methods: readonly (Method | string)[], seeds: readonly number[], opts: VariantOptions = {}): Variant[] {
  return methods.flatMap((m) => seeds.map((s) => variant(preset, m, s, opts)));
}

/** The untouched source model as a run of 0 steps: its retention is the reference line. */
export function sourceVariant(preset: Preset, opts: { target?: Target } = {}): Variant {
  const base = recipe(preset, { target: opts.target });
  const data = targetData(preset, opts.target ?? defaultTarget(preset));
  return {
    tags: { method: "Source model", schedule: "none", target: TARGET_NAMES[opts.target ?? defaultTarget(preset)] },
    name: `${base.name}-source`, seed: 0,
    strategy: { kind: "linear", freshHead: { classes: data.classes, seed: 0 } },
    train: { steps: 0, evalEvery: undefined },
    retention: { ...(base.retention as RetentionSpec), steps: [0], atBest: false },
  };
}

// ---- the three studies of Paper A as (base, variants) --------------------------------------

export interface Study {
  base: ExperimentConfig;
  variants: Variant[];
}

/** The smoke preset runs one seed (every code path, in seconds); the others run all given. */
export function seedsFor(preset: Preset, seeds: readonly number[]): number[] {
  if (seeds.length === 0) throw new Error("seeds: give at least one seed");
  return preset === "smoke" ? seeds.slice(0, 1) : [...seeds];
}

export interface StudyOptions {
  methods?: readonly string[];
  seeds?: readonly number[];
  target?: Target;
  lr?: number;
}

/**
 * The forgetting curve: retention at 0, 1, 2, 5, 10, ... iterations; full fine-tuning under both
 * readings (the Table-1 schedule with warm-up, a constant rate without), the other methods with
 * the Table-1 schedule.
 */
export function curveStudy(preset: Preset, o: StudyOptions = {}): Study {
  const methods = o.methods ?? ["All", "LoRA r=8", "Block p=2", "Linear"];
  const seeds = seedsFor(preset, o.seeds ?? [0, 1, 2]);
  const opts = { target: o.target, lr: o.lr, retention: "curve" as const };
  const variants = methods.flatMap((m) =>
    (m === "All" ? SCHEDULES : (["warm-up + cosine"] as const)).flatMap((schedule) => variantsOf(preset, [m], seeds, { ...opts, schedule })),
  );
  return { base: recipe(preset, { target: o.target, retention: "curve" }), variants };
}

/** Table 1: the ten rows (or those given) and the untouched source model as a 0-step run. */
export function table1Study(preset: Preset, o: StudyOptions = {}): Study {
  const methods = o.methods ?? METHODS.map((m) => m.method);
  const seeds = seedsFor(preset, o.seeds ?? [0, 1, 2]);
  return { base: recipe(preset, { target: o.target }), variants: [sourceVariant(preset, { target: o.target }), ...variantsOf(preset, methods, seeds, { target: o.target, lr: o.lr })] };
}

/**
 * The scatter over targets: each target's runs of the scatter's methods, and its source model.
 * No targets (or an empty list) means the preset's: the paper's five at paper, the laptop's three otherwise.
 */
export function targetsStudy(preset: Preset, o: StudyOptions & { targets?: readonly Target[] } = {}): Study {
  const targets = o.targets?.length ? o.targets : preset === "paper" ? PAPER_TARGETS : LAPTOP_TARGETS;
  const methods = o.methods ?? SCATTER_METHODS;
  const seeds = seedsFor(preset, o.seeds ?? [0]);
  return {
    base: recipe(preset, { target: targets[0] }),
    variants: targets.flatMap((t) => [sourceVariant(preset, { target: t }), ...variantsOf(preset, methods, seeds, { target: t, lr: o.lr })]),
  };
}


/** The recipe of a preset as a table (from the config itself, so it cannot drift from what runs). */
export function recipeTable(preset: Preset, target?: Target, lr?: number): { setting: string; value: string }[] {
  const c = recipe(preset, { target });
  const o = c.train.optimizer;
  const ds = (d: DatasetSpec) => `${d.name} ${d.split}${d.classes ? ` classes ${d.classes.join(",")}` : ""}${d.perClass ? `, first ${d.perClass} per class` : ""}`;
  const t = c.data.trainTransform;
  const r = c.retention as RetentionSpec;
  return [
    { setting: "initial weights", value: c.model.init ?? "random" },
    { setting: "target (train / test)", value: `${ds(c.data.train)} / ${ds(c.data.test)}` },
    { setting: "train transform", value: t.kind === "random-resized-crop" ? `RandomResizedCrop(${t.size}, scale ${t.scale.join("-")}, ratio ${t.ratio.map((x) => x.toFixed(2)).join("-")}, ${t.interpolation}) + flip, mean = std = 0.5` : t.kind },
    { setting: "optimizer", value: o.name === "sgd" ? `SGD, momentum ${o.momentum}, weight decay ${o.weightDecay ?? 0}, no Nesterov` : o.name },
    { setting: "learning rate", value: lr ? `${lr} for every row (replaces the Table-1 rates)` : `per row: ${METHODS.map((m) => `${m.method} ${m.lr}`).join(", ")}` },
    { setting: "schedule", value: `linear warm-up ${warmup(c.train.steps, "default")} steps (Linear ${warmup(c.train.steps, "linear")}), then cosine to 0, per iteration` },
    { setting: "iterations, batch", value: `${c.train.steps}, ${c.data.batchSize}` },
    { setting: "validation (target top-1)", value: `every ${c.train.evalEvery} iterations; best-on-test and last are both reported` },
    { setting: "retention", value: `${r.ks.includes(20) ? "20" : r.ks[0]}-NN (DINO weighted k-NN, T = ${r.temperature}), bank ${ds(r.bank)}, queries ${ds(r.queries)}` },
  ];
}
