// Analytic parameter counts of a ViT config and of what a fine-tuning strategy trains, from
// shapes only (no tensor is allocated), so `study params` can count ViT-B/16 instantly.
import type { ViTConfig } from "./config";
import { parameterShapes } from "./vit";
import type { StrategySpec } from "../adapters/spec";
import { describePlacement, expansionPlan } from "../adapters/expansion";
import { loraSiteParams, resolveTargets } from "../adapters/targets";

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Parameters whose name satisfies `pick` (all by default). */
export function countParams(c: ViTConfig, pick: (name: string) => boolean = () => true): number {
  let n = 0;
  for (const [name, shape] of parameterShapes(c)) if (pick(name)) n += numel(shape);
  return n;
}

/** Parameters of one transformer block. */
export function blockParams(c: ViTConfig): number {
  return countParams(c, (n) => n.startsWith("blocks.0."));
}

/** Parameters of the head (0 without one). */
export function headParams(c: ViTConfig): number {
  return countParams(c, (n) => n.startsWith("head."));
}

/** Everything but the head. */
export function backboneParams(c: ViTConfig): number {
  return countParams(c, (n) => !n.startsWith("head."));
}

export interface TrainableCount {
  /** Trainable parameters in total. */
  total: number;
  /** By part, in display order, e.g. [["blocks", 21263616], ["head", 76900]]. */
  parts: [string, number][];
  /** Config of the model the strategy trains (class count, depth after expansion). */
  config: ViTConfig;
}

/** The config a strategy trains: a fresh head may change the class count. */
export function strategyConfig(c: ViTConfig, spec: StrategySpec): ViTConfig {
  const classes = spec.freshHead?.classes;
  return classes === undefined ? c : { ...c, numClasses: classes };
}

/** Trainable parameters of `spec` applied to a model of config `c`, without building it. */
export function trainableParams(c0: ViTConfig, spec: StrategySpec): TrainableCount {
  let c = strategyConfig(c0, spec);
  const head = headParams(c);
  const parts: [string, number][] = [];
  switch (spec.kind) {
    case "full":
      parts.push(["backbone", backboneParams(c)], ["head", head]);
      break;
    case "top-k": {
      if (!(Number.isInteger(spec.k) && spec.k >= 0 && spec.k <= c.depth)) throw new Error(`top-k: k must be an integer in [0, ${c.depth}], got ${spec.k}`);
      parts.push([`blocks ${c.depth - spec.k}..${c.depth - 1}`, spec.k * blockParams(c)]);
      if (spec.trainFinalNorm) parts.push(["final norm", countParams(c, (n) => n.startsWith("norm."))]);
      parts.push(["head", head]);
      break;
    }
    case "linear":
      parts.push(["head", head]);
      break;
    case "lora":
    case "selective-lora": {
      const sites = resolveTargets(c, spec.targets ?? ["query", "value"], { blocks: spec.blocks });
      parts.push([`lora A,B (${sites.length} sites, r=${spec.rank})`, sites.reduce((s, x) => s + loraSiteParams(x, spec.rank), 0)]);
      if (spec.kind === "selective-lora") parts.push(["gate scores", sites.length]);
      parts.push(["head", head]);
      break;
    }
    case "block-expansion": {
      const plan = expansionPlan(c.depth, { p: spec.p, split: spec.split, after: spec.after });
      c = { ...c, depth: c.depth + plan.p };
      parts.push([`inserted blocks (p=${plan.p}, ${describePlacement(plan)})`, plan.p * blockParams(c)]);
      parts.push(["head", head]);
      break;
    }
  }
  return { total: parts.reduce((s, [, n]) => s + n, 0), parts, config: c };
}
