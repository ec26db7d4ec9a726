// Which linear layers (or row slices of one) an adapter wraps, resolved from the config alone, so
// analytic parameter counts (src/model/params.ts) and real adapters see the same sites.
import { mlpHidden, ViTConfig } from "../model/config";
import { parameterShapes } from "../model/vit";

/** Short per-block target names, peft `target_modules` style. query/key/value are row slices of the fused qkv. */
export const BLOCK_TARGETS = ["query", "key", "value", "qkv", "proj", "fc1", "fc2"] as const;
export type BlockTarget = (typeof BLOCK_TARGETS)[number];

/** One LoRA site: a linear layer, or a contiguous block of its output rows. */
export interface LoraSite {
  /**
   * Timm-side name of the site: the linear layer's name (`blocks.3.attn.proj`, `head`), or for a
   * q/k/v slice of the fused layer `blocks.3.attn.qkv.query` (timm has no such module; the suffix
   * names the rows).
   */
  name: string;
  /** The frozen linear layer the site modifies, e.g. `blocks.3.attn.qkv`. */
  linear: string;
  /** Output rows [start, end) of `linear` the site writes; the whole layer when absent. */
  rows?: [number, number];
  inFeatures: number;
  /** Output features of the site (the slice). */
  outFeatures: number;
  /** Output features of the whole linear layer. */
  linearOut: number;
  /** Block index, when the site is inside a block. */
  block?: number;
}

export interface TargetOptions {
  /** Restrict per-block targets to these block indices (peft `layers_to_transform`); default all. */
  blocks?: readonly number[];
}

const SLICES: Record<string, number> = { query: 0, key: 1, value: 2 };

function blockSite(c: ViTConfig, i: number, t: BlockTarget): LoraSite {
  const D = c.width;
  const H = mlpHidden(c);
  const b = `blocks.${i}`;
  switch (t) {
    case "query":
    case "key":
    case "value": {
      const k = SLICES[t];
      return { name: `${b}.attn.qkv.${t}`, linear: `${b}.attn.qkv`, rows: [k * D, (k + 1) * D], inFeatures: D, outFeatures: D, linearOut: 3 * D, block: i };
    }
    case "qkv":
      return { name: `${b}.attn.qkv`, linear: `${b}.attn.qkv`, inFeatures: D, outFeatures: 3 * D, linearOut: 3 * D, block: i };
    case "proj":
      return { name: `${b}.attn.proj`, linear: `${b}.attn.proj`, inFeatures: D, outFeatures: D, linearOut: D, block: i };
    case "fc1":
      return { name: `${b}.mlp.fc1`, linear: `${b}.mlp.fc1`, inFeatures: D, outFeatures: H, linearOut: H, block: i };
    case "fc2":
      return { name: `${b}.mlp.fc2`, linear: `${b}.mlp.fc2`, inFeatures: H, outFeatures: D, linearOut: D, block: i };
  }
}

function isBlockTarget(t: string): t is BlockTarget {
  return (BLOCK_TARGETS as readonly string[]).includes(t);
}

/** A fully qualified target: `blocks.3.attn.qkv.query` (or `blocks.3.attn.query`), or any linear layer name. */
function namedSite(c: ViTConfig, shapes: Map<string, number[]>, target: string): LoraSite {
  const m = /^blocks\.(\d+)\.attn\.(?:qkv\.)?(query|key|value)$/.exec(target);
  if (m) {
    const i = Number(m[1]);
    if (i >= c.depth) throw new Error(`LoRA target '${target}': block ${i} does not exist (depth ${c.depth})`);
    return blockSite(c, i, m[2] as BlockTarget);
  }
  const w = shapes.get(`${target}.weight`);
  if (!w || w.length !== 2) throw new Error(`LoRA target '${target}' is not a linear layer of this ViT (try ${BLOCK_TARGETS.join(", ")}, or e.g. blocks.0.attn.proj)`);
  const bm = /^blocks\.(\d+)\./.exec(target);
  return { name: target, linear: target, inFeatures: w[1], outFeatures: w[0], linearOut: w[0], block: bm ? Number(bm[1]) : undefined };
}

/**
 * Resolves targets to sites, ordered by block, then by the order of `targets`. Short names apply
 * to every block (or `opts.blocks`); dotted names pick one layer. Overlapping sites are an error
 * (e.g. `qkv` together with `query`), since one weight row would get two updates by accident.
 */
export function resolveTargets(c: ViTConfig, targets: readonly string[], opts: TargetOptions = {}): LoraSite[] {
  if (targets.length === 0) throw new Error("LoRA: no target modules given");
  const shapes = parameterShapes(c);
  const blocks = opts.blocks ? [...opts.blocks] : Array.from({ length: c.depth }, (_, i) => i);
  for (const i of blocks) {
    if (!Number.isInteger(i) || i < 0 || i >= c.depth) throw new Error(`LoRA: block ${i} does not exist (depth ${c.depth})`);
  }
  const sites: LoraSite[] = [];
  for (const i of [...new Set(blocks)].sort((a, b) => a - b)) {
    for (const t of targets) if (isBlockTarget(t)) sites.push(blockSite(c, i, t));
  }
  for (const t of targets) if (!isBlockTarget(t)) sites.push(namedSite(c, shapes, t));
  const seen = new Map<string, [number, number][]>();
  for (const s of sites) {
    const r = s.rows ?? [0, s.linearOut];
    const prev = seen.get(s.linear) ?? [];
    if (prev.some(([a, b]) => r[0] < b && a < r[1])) throw new Error(`LoRA: target '${s.name}' overlaps another target on '${s.linear}'`);
    seen.set(s.linear, [...prev, r]);
  }
  return sites.sort((a, b) => (a.block ?? Infinity) - (b.block ?? Infinity));
}

/** Trainable parameters of one LoRA site: A [r,in] + B [out,r]. */
export function loraSiteParams(s: LoraSite, rank: number): number {
  return rank * (s.inFeatures + s.outFeatures);
}
