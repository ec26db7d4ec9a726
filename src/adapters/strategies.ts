// One entry point for every fine-tuning strategy of the studies:
//   const tm = applyStrategy(vit, { kind: "lora", rank: 8 });
//   tm.trainable   // exactly the variables the optimizer updates
//   tm.regularizer // selective LoRA's gate penalty, when configured
// Every other variable of the model is frozen (tf.Variable.trainable = false as well, so
// tf.variableGrads / optimizer.minimize without a list also see only the trainable set).
import * as tf from "@tensorflow/tfjs";
import type { TrainableModel } from "../model/types";
import type { ViT } from "../model/vit";
import { Rng } from "../runtime/rng";
import { ExpansionPlan, expandBlocks } from "./expansion";
import { LoraAdapter } from "./lora";
import { SelectiveLoraAdapter } from "./selective";
import { describeSpec, HeadSpec, StrategySpec } from "./spec";

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

function baseNames(model: ViT, pick: (name: string) => boolean): string[] {
  return [...model.params.keys()].filter(pick);
}

/**
 * Prepares `model` for fine-tuning with `spec` and returns the exact trainable set. LoRA kinds
 * attach an adapter named "default" to `model`; block expansion returns a NEW model whose
 * unchanged weights share storage with `model` (dispose either independently).
 */
export function applyStrategy(model: ViT, spec: StrategySpec): StrategyResult {
  let m = model;
  let adapter: LoraAdapter | SelectiveLoraAdapter | undefined;
  let expansion: ExpansionPlan | undefined;
  let regularizer: TrainableModel["regularizer"];
  let names: string[];
  const isHead = (n: string) => n.startsWith("head.");
  if (spec.kind === "block-expansion") {
    const e = expandBlocks(model, { p: spec.p, split: spec.split, after: spec.after });
    m = e.model;
    expansion = e.plan;
  }
  if (spec.freshHead) resetHead(m, spec.freshHead);
  if (m.config.numClasses === 0 && spec.kind !== "full") throw new Error(`strategy '${spec.kind}' trains a head, but the model has none: pass freshHead: {classes}`);
  switch (spec.kind) {
    case "full":
      names = baseNames(m, () => true);
      break;
    case "top-k": {
      const { depth } = m.config;
      if (!(Number.isInteger(spec.k) && spec.k >= 0 && spec.k <= depth)) throw new Error(`top-k: k must be an integer in [0, ${depth}], got ${spec.k}`);
      const top = new Set(Array.from({ length: spec.k }, (_, j) => depth - spec.k + j));
      names = baseNames(m, (n) => {
        const b = /^blocks\.(\d+)\./.exec(n);
        return (b !== null && top.has(Number(b[1]))) || isHead(n) || (spec.trainFinalNorm === true && n.startsWith("norm."));
      });
      break;
    }
    case "linear":
      names = baseNames(m, isHead);
      break;
    case "lora":
    case "selective-lora": {
      const cfg = { rank: spec.rank, alpha: spec.alpha, dropout: spec.dropout, targets: spec.targets, blocks: spec.blocks, rslora: spec.rslora, seed: spec.seed };
      if (spec.kind === "lora") adapter = LoraAdapter.attach(m, cfg);
      else {
        const sel = SelectiveLoraAdapter.attachSelective(m, { ...cfg, tau: spec.tau, scoreInit: spec.scoreInit });
        adapter = sel;
        const lambda = spec.lambda ?? 0;
        if (lambda !== 0) regularizer = sel.regularizer({ lambda, startStep: spec.penaltyStartStep });
      }
      const own = new Set(adapter.variables());
      names = [...[...m.adapterParams].filter(([, v]) => own.has(v)).map(([k]) => k), ...baseNames(m, isHead)];
      break;
    }
    case "block-expansion": {
      const fresh = new Set((expansion as ExpansionPlan).newBlocks);
      names = baseNames(m, (n) => {
        const b = /^blocks\.(\d+)\./.exec(n);
        return (b !== null && fresh.has(Number(b[1]))) || isHead(n);
      });
      break;
    }
  }
  const all = m.namedVariables();
  const chosen = new Set(names);
  for (const [n, v] of all) v.trainable = chosen.has(n);
  const trainable = names.map((n) => all.get(n) as tf.Variable);
  return {
    model: m,
    trainable,
    trainableNames: names,
    regularizer,
    describe: describeSpec(spec),
    spec,
    adapter,
    expansion,
  };
}

/** Number of trainable parameters of a prepared model (what the optimizer sees). */
export function countTrainable(t: TrainableModel): number {
  return t.trainable.reduce((s, v) => s + v.size, 0);
}
