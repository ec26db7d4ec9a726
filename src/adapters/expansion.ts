// Block expansion (Paper A, arXiv 2404.17245, and its official code): the N blocks are grouped in sets of `split`;
// after each full set a copy of that set's top block is inserted with attn.proj and mlp.fc2
// weights and biases zeroed. Both residual branches of the copy then add exactly 0, so the
// expanded model computes the original function. Blocks are renumbered as the official code's
// nn.Sequential would number them (originals and copies interleaved).
import * as tf from "@tensorflow/tfjs";
import type { ViTConfig } from "../model/config";
import { ViT } from "../model/vit";

export interface ExpansionOptions {
  /** Blocks per group; a copy goes after every full group. */
  split?: number;
  /** Number of inserted blocks; mapped to the official split (see `splitForBlocks`). */
  p?: number;
  /**
   * Explicit placement: a copy of block b goes right after block b, for each b (1-based, as the
   * paper counts). For depths where no split gives the wanted p (3 copies in 4 blocks).
   */
  after?: number[];
}

/** Where each block of the expanded model comes from. */
export interface ExpansionPlan {
  /** Blocks per group, when the copies follow a split (undefined for explicit placements). */
  split?: number;
  /** Number of inserted blocks (p). */
  p: number;
  /** Original blocks (1-based) each followed by its copy. */
  after: number[];
  /** For each new index: the original block it is (or copies). */
  source: number[];
  /** New indices of the inserted (identity-initialised, trainable) blocks. */
  newBlocks: number[];
}

/**
 * The split giving p inserted blocks in a model of `depth` blocks. The official code used
 * split 3/4/6/11 for p = 4/3/2/1 at depth 12: for p > 1 the split is depth/p (must divide);
 * for p = 1 it is depth - 1, i.e. one copy of the second-to-last block placed before the last.
 */
export function splitForBlocks(depth: number, p: number): number {
  if (!(Number.isInteger(p) && p >= 1 && p <= depth)) throw new Error(`block expansion: p must be an integer in [1, ${depth}], got ${p}`);
  if (p === 1) return depth > 1 ? depth - 1 : 1;
  if (depth % p !== 0) throw new Error(`block expansion: p=${p} does not divide depth ${depth}; give split or after instead`);
  return depth / p;
}

/** The placement of a split: after blocks split, 2*split, ... (1-based). */
function afterForSplit(depth: number, split: number): number[] {
  if (!(Number.isInteger(split) && split >= 1 && split <= depth)) throw new Error(`block expansion: split must be an integer in [1, ${depth}], got ${split}`);
  return Array.from({ length: Math.floor(depth / split) }, (_, j) => (j + 1) * split);
}

export function expansionPlan(depth: number, opts: ExpansionOptions): ExpansionPlan {
  const given = (["split", "p", "after"] as const).filter((k) => opts[k] !== undefined);
  if (given.length > 1) throw new Error(`block expansion: give one of split, p or after, not ${given.join(" and ")}`);
  if (given.length === 0) throw new Error("block expansion: give split, p or after");
  const split = opts.split ?? (opts.p !== undefined ? splitForBlocks(depth, opts.p) : undefined);
  let after: number[];
  if (split !== undefined) after = afterForSplit(depth, split);
  else {
    after = opts.after as number[];
    const ok = after.length > 0 && after.every((b, j) => Number.isInteger(b) && b >= 1 && b <= depth && (j === 0 || b > after[j - 1]));
    if (!ok) throw new Error(`block expansion: after must be increasing block numbers in [1, ${depth}], got [${after.join(", ")}]`);
  }
  const copies = new Set(after);
  const source: number[] = [];
  const newBlocks: number[] = [];
  for (let i = 0; i < depth; i++) {
    source.push(i);
    if (copies.has(i + 1)) {
      newBlocks.push(source.length);
      source.push(i);
    }
  }
  return { split, p: newBlocks.length, after: [...after], source, newBlocks };
}

/** "split 3" or "after blocks 1,3,4": how the copies are placed. */
export function describePlacement(plan: ExpansionPlan): string {
  return plan.split !== undefined ? `split=${plan.split}` : `after blocks ${plan.after.join(",")}`;
}

/** Config of the expanded model. */
export function expandedConfig(c: ViTConfig, plan: ExpansionPlan): ViTConfig {
  return { ...c, depth: c.depth + plan.p };
}

export interface ExpandedViT {
  /** A new model; its unchanged weights share storage with the source model's variables. */
  model: ViT;
  plan: ExpansionPlan;
  /** New indices of the inserted blocks (= plan.newBlocks). */
  newBlocks: number[];
}

const ZEROED = ["attn.proj.weight", "attn.proj.bias", "mlp.fc2.weight", "mlp.fc2.bias"];

/**
 * Expands a base model (no adapters attached). The source stays valid and unchanged; disposing
 * it is safe (shared tensors are reference-counted).
 */
export function expandBlocks(model: ViT, opts: ExpansionOptions): ExpandedViT {
  if (model.hooks.size > 0 || model.adapterParams.size > 0) throw new Error("block expansion: expand the base model before attaching adapters");
  const c = model.config;
  const plan = expansionPlan(c.depth, opts);
  const tensors = new Map<string, tf.Tensor>();
  const zeros: tf.Tensor[] = [];
  for (const [name, v] of model.params) {
    if (!name.startsWith("blocks.")) tensors.set(name, v);
  }
  const isNew = new Set(plan.newBlocks);
  plan.source.forEach((from, to) => {
    const prefix = `blocks.${from}.`;
    for (const [name, v] of model.params) {
      if (!name.startsWith(prefix)) continue;
      const rest = name.slice(prefix.length);
      let t: tf.Tensor = v;
      if (isNew.has(to) && ZEROED.includes(rest)) {
        t = tf.zerosLike(v);
        zeros.push(t);
      }
      tensors.set(`blocks.${to}.${rest}`, t);
    }
  });
  try {
    const expanded = ViT.fromTensors(expandedConfig(c, plan), tensors);
    return { model: expanded, plan, newBlocks: [...plan.newBlocks] };
  } finally {
    tf.dispose(zeros);
  }
}
