// One entry point for every fine-tuning strategy of the studies, and one definition per kind:
//   const tm = applyStrategy(vit, { kind: "lora", rank: 8 });
//   tm.trainable                           // exactly the variables the optimizer updates
//   trainableParams(config, spec).total     // the same count from the config alone
//   describeStrategy(spec)                  // one line for tables and logs
// Every variable outside the trainable set is frozen (tf.Variable.trainable = false as well, so
// tf.variableGrads / optimizer.minimize without a list also see only the trainable set).
import * as tf from "@tensorflow/tfjs";
import type { TrainableModel } from "../model/types";
import type { ViTConfig } from "../model/config";
import type { ViT } from "../model/vit";
import { backboneParams, blockParams, countParams, headParams } from "../model/params";
import type { AdapterCost } from "../model/flops";
import { Rng } from "../ground/rng";
import { describePlacement, ExpansionPlan, expandBlocks, expansionPlan } from "./expansion";
import { DEFAULT_TARGETS, LoraAdapter } from "./lora";
import { SelectiveLoraAdapter, TAPS_SCORE_INIT, TAPS_TAU } from "./selective";
import { loraSiteParams, resolveTargets } from "./targets";
import type { BlockExpansionSpec, FullSpec, HeadSpec, LinearSpec, LoraSpec, SelectiveLoraSpec, StrategyKind, StrategySpec, TopKSpec } from "./spec";

export * from "./spec";

export interface StrategyResult extends TrainableModel {
  /** The model to train: the input model, or a new expanded one for block expansion. */
  model: ViT;
  spec: StrategySpec;
  /** Trainable variables by model-side name (same set as `trainable`). */
  trainableNames: string[];
  /** The LoRA / selective-LoRA adapter, when the strategy has one. */
  adapter?: LoraAdapter | SelectiveLoraAdapter;
  /** Where the blocks of an expanded model come from. */
  expansion?: ExpansionPlan;
}

export interface TrainableCount {
  /** Trainable parameters in total. */
  total: number;
  /** By part, in display order, e.g. [["blocks 9..11", 21263616], ["head", 76900]]. */
  parts: [string, number][];
  /** Config of the model the strategy trains (class count, depth after expansion). */
  config: ViTConfig;
}

/** What a strategy kind is: the model it trains, what it trains (also counted from shapes), its line. */
interface Kind<S extends StrategySpec> {
  /** The model to train when it is not the given one (block expansion builds a deeper one). */
  build?(model: ViT, spec: S): { model: ViT; expansion: ExpansionPlan };
  /** The names of the trainable variables of the model to train (attaching adapters first). */
  apply(model: ViT, spec: S, expansion?: ExpansionPlan): { names: string[]; adapter?: LoraAdapter | SelectiveLoraAdapter; regularizer?: TrainableModel["regularizer"] };
  /** Trainable parameters by part for config `c` (the head's count is added by the caller). */
  count(c: ViTConfig, spec: S): { parts: [string, number][]; config: ViTConfig };
  describe(spec: S): string;
}

const isHead = (n: string) => n.startsWith("head.");
const blockOf = (n: string) => { const b = /^blocks\.(\d+)\./.exec(n); return b ? Number(b[1]) : -1; };
const names = (m: ViT, pick: (name: string) => boolean) => [...m.params.keys()].filter(pick);
const headLine = (s: StrategySpec) => (s.freshHead ? ` + fresh head${s.freshHead.classes !== undefined ? ` (${s.freshHead.classes} classes)` : ""}` : " + head");

function checkK(depth: number, k: number): void {
  if (!(Number.isInteger(k) && k >= 0 && k <= depth)) throw new Error(`top-k: k must be an integer in [0, ${depth}], got ${k}`);
}

function loraCount(c: ViTConfig, s: LoraSpec | SelectiveLoraSpec): [string, number][] {
  const sites = resolveTargets(c, s.targets ?? DEFAULT_TARGETS, { blocks: s.blocks });
  const parts: [string, number][] = [[`lora A,B (${sites.length} sites, r=${s.rank})`, sites.reduce((n, x) => n + loraSiteParams(x, s.rank), 0)]];
  if (s.kind === "selective-lora") parts.push(["gate scores", sites.length]);
  return parts;
}

function loraLine(s: LoraSpec | SelectiveLoraSpec): string {
  const sel = s.kind === "selective-lora" ? ` gated (tau=${s.tau ?? TAPS_TAU}, s0=${s.scoreInit ?? TAPS_SCORE_INIT}, lambda=${s.lambda ?? 0})` : "";
  return `${s.kind} r=${s.rank} alpha=${s.alpha ?? s.rank} on ${(s.targets ?? DEFAULT_TARGETS).join(",")}${sel}${headLine(s)}`;
}

function adapterNames(m: ViT, own: Set<tf.Variable>): string[] {
  return [...[...m.adapterParams].filter(([, v]) => own.has(v)).map(([k]) => k), ...names(m, isHead)];
}

const KINDS: { [K in StrategyKind]: Kind<Extract<StrategySpec, { kind: K }>> } = {
  full: {
    apply: (m) => ({ names: names(m, () => true) }),
    count: (c) => ({ parts: [["backbone", backboneParams(c)]], config: c }),
    describe: () => "full fine-tuning (every parameter)",
  } satisfies Kind<FullSpec>,
  "top-k": {
    apply: (m, s) => {
      checkK(m.config.depth, s.k);
      const from = m.config.depth - s.k;
      return { names: names(m, (n) => blockOf(n) >= from || isHead(n) || (s.trainFinalNorm === true && n.startsWith("norm."))) };
    },
    count: (c, s) => {
      checkK(c.depth, s.k);
      const parts: [string, number][] = [[`blocks ${c.depth - s.k}..${c.depth - 1}`, s.k * blockParams(c)]];
      if (s.trainFinalNorm) parts.push(["final norm", countParams(c, (n) => n.startsWith("norm."))]);
      return { parts, config: c };
    },
    describe: (s) => `top-${s.k}: last ${s.k} blocks${s.trainFinalNorm ? " + final norm" : ""}${headLine(s)}`,
  } satisfies Kind<TopKSpec>,
  linear: {
    apply: (m) => ({ names: names(m, isHead) }),
    count: (c) => ({ parts: [], config: c }),
    describe: (s) => `linear probe: head only${s.freshHead ? " (fresh)" : ""}`,
  } satisfies Kind<LinearSpec>,
  lora: {
    apply: (m, s) => {
      const adapter = LoraAdapter.attach(m, s);
      return { names: adapterNames(m, new Set(adapter.variables())), adapter };
    },
    count: (c, s) => ({ parts: loraCount(c, s), config: c }),
    describe: loraLine,
  } satisfies Kind<LoraSpec>,
  "selective-lora": {
    apply: (m, s) => {
      const adapter = SelectiveLoraAdapter.attachSelective(m, s);
      const lambda = s.lambda ?? 0;
      const regularizer = lambda !== 0 ? adapter.regularizer({ lambda, startStep: s.penaltyStartStep }) : undefined;
      return { names: adapterNames(m, new Set(adapter.variables())), adapter, regularizer };
    },
    count: (c, s) => ({ parts: loraCount(c, s), config: c }),
    describe: loraLine,
  } satisfies Kind<SelectiveLoraSpec>,
  "block-expansion": {
    build: (m, s) => { const e = expandBlocks(m, s); return { model: e.model, expansion: e.plan }; },
    apply: (m, _s, plan) => {
      const fresh = new Set((plan as ExpansionPlan).newBlocks);
      return { names: names(m, (n) => fresh.has(blockOf(n)) || isHead(n)) };
    },
    count: (c, s) => {
      const plan = expansionPlan(c.depth, s);
      const config = { ...c, depth: c.depth + plan.p };
      return { parts: [[`inserted blocks (p=${plan.p}, ${describePlacement(plan)})`, plan.p * blockParams(config)]], config };
    },
    describe: (s) => `block expansion ${s.p !== undefined ? `p=${s.p}` : s.split !== undefined ? `split=${s.split}` : `after blocks ${(s.after ?? []).join(",")}`}: inserted blocks${headLine(s)}`,
  } satisfies Kind<BlockExpansionSpec>,
};

function kindOf<S extends StrategySpec>(spec: S): Kind<S> {
  const k = KINDS[spec.kind] as unknown as Kind<S> | undefined;
  if (!k) throw new Error(`unknown strategy kind '${(spec as { kind: unknown }).kind}'; known: ${Object.keys(KINDS).join(", ")}`);
  return k;
}

/** One line, e.g. "lora r=8 alpha=8 on query,value + head". */
export function describeStrategy(spec: StrategySpec): string {
  return kindOf(spec).describe(spec);
}

/** The config a strategy trains: a fresh head may change the class count. */
export function strategyConfig(c: ViTConfig, spec: StrategySpec): ViTConfig {
  const classes = spec.freshHead?.classes;
  return classes === undefined ? c : { ...c, numClasses: classes };
}

/** Trainable parameters of `spec` applied to a model of config `c`, without building it. */
export function trainableParams(c0: ViTConfig, spec: StrategySpec): TrainableCount {
  const { parts, config } = kindOf(spec).count(strategyConfig(c0, spec), spec);
  const all: [string, number][] = [...parts, ["head", headParams(config)]];
  return { total: all.reduce((s, [, n]) => s + n, 0), parts: all, config };
}

/**
 * The extra multiply-accumulates an unmerged (selective) LoRA adds per input row of each site,
 * from the config alone (what LoraLayer.extraMacsPerRow reports on a real model); none otherwise.
 */
export function adapterCosts(c: ViTConfig, spec: StrategySpec): AdapterCost[] {
  if (spec.kind !== "lora" && spec.kind !== "selective-lora") return [];
  return resolveTargets(c, spec.targets ?? DEFAULT_TARGETS, { blocks: spec.blocks }).map((site) => ({ name: site.name, linear: site.linear, macsPerRow: spec.rank * (site.inFeatures + site.outFeatures) }));
}

/** Replaces the head with a freshly initialised one (seeded). */
export function resetHead(model: ViT, spec: HeadSpec = {}): void {
  const classes = spec.classes ?? model.config.numClasses;
  if (!(Number.isInteger(classes) && classes > 0)) throw new Error(`fresh head: classes must be a positive integer, got ${classes}`);
  const D = model.config.width;
  const rng = new Rng(spec.seed ?? 0).fork("head-init");
  const [w, b] = tf.tidy(() => {
    if (spec.init === "torch") {
      const bound = 1 / Math.sqrt(D);
      return [tf.randomUniform([classes, D], -bound, bound, "float32", rng.seed()), tf.randomUniform([classes], -bound, bound, "float32", rng.seed())];
    }
    return [tf.randomNormal([classes, D], 0, 0.02, "float32", rng.seed()), tf.zeros([classes])];
  });
  model.setHead(w, b);
  tf.dispose([w, b]);
}

/**
 * Prepares `model` for fine-tuning with `spec` and returns the exact trainable set. LoRA kinds
 * attach an adapter named "default" to `model`; block expansion returns a NEW model whose
 * unchanged weights share storage with `model` (dispose either independently).
 */
export function applyStrategy(model: ViT, spec: StrategySpec): StrategyResult {
  const kind = kindOf(spec);
  const { model: m, expansion } = kind.build?.(model, spec) ?? { model, expansion: undefined };
  if (spec.freshHead) resetHead(m, spec.freshHead);
  if (m.config.numClasses === 0 && spec.kind !== "full") throw new Error(`strategy '${spec.kind}' trains a head, but the model has none: pass freshHead: {classes}`);
  const r = kind.apply(m, spec, expansion);
  const all = m.namedVariables();
  const chosen = new Set(r.names);
  for (const [n, v] of all) v.trainable = chosen.has(n);
  return {
    model: m, trainable: r.names.map((n) => all.get(n) as tf.Variable), trainableNames: r.names,
    regularizer: r.regularizer, describe: kind.describe(spec), spec, adapter: r.adapter, expansion,
  };
}

/** Number of trainable parameters of a prepared model (what the optimizer sees). */
export function countTrainable(t: TrainableModel): number {
  return t.trainable.reduce((s, v) => s + v.size, 0);
}
