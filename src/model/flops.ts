// Analytic multiply-accumulate (MAC) count of one forward pass of one image, per layer: patch
// embedding, qkv, the two attention matmuls, proj, fc1, fc2, head, plus unmerged LoRA updates.
// Only matrix products are counted (LayerNorm, softmax, GELU, residual adds are O(T*D) and left
// out, as fvcore/ptflops do); FLOPs = 2 * MACs. Shows that selective LoRA's inference form
// (active blocks merged, inactive dropped) costs exactly the base model, and unmerged LoRA more.
import { mlpHidden, numPatches, ViTConfig } from "./config";
import type { LinearHook, ViT } from "./vit";

export interface LayerMacs {
  /** e.g. "patch_embed", "blocks.3.attn.qkv", "blocks.3.attn.scores", "lora:blocks.3.attn.qkv.query". */
  name: string;
  macs: number;
}

export interface FlopReport {
  layers: LayerMacs[];
  /** Base model MACs. */
  baseMacs: number;
  /** Extra MACs of unmerged adapters. */
  adapterMacs: number;
  macs: number;
  /** 2 * macs. */
  flops: number;
}

/** An adapter cost on one linear layer: extra MACs per input row (token). */
export interface AdapterCost {
  name: string;
  /** Linear layer it hooks, e.g. `blocks.3.attn.qkv` or `head`. */
  linear: string;
  macsPerRow: number;
}

/** Tokens through the blocks: patches + CLS. */
export function tokens(c: ViTConfig): number {
  return numPatches(c) + (c.classToken ? 1 : 0);
}

/** Rows each linear layer sees per image: T for block layers, 1 for the head (CLS only). */
function rowsOf(c: ViTConfig, linear: string): number {
  return linear === "head" ? 1 : tokens(c);
}

/** MACs of one forward pass of one image through config `c`, plus adapter costs. */
export function forwardMacs(c: ViTConfig, adapters: readonly AdapterCost[] = []): FlopReport {
  const T = tokens(c);
  const D = c.width;
  const Hm = mlpHidden(c);
  const layers: LayerMacs[] = [{ name: "patch_embed", macs: numPatches(c) * c.patchSize * c.patchSize * c.inChannels * D }];
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    layers.push(
      { name: `${b}.attn.qkv`, macs: T * D * 3 * D },
      { name: `${b}.attn.scores`, macs: T * T * D }, // q k^T over all heads: H * T*T*hd
      { name: `${b}.attn.values`, macs: T * T * D }, // softmax(.) v
      { name: `${b}.attn.proj`, macs: T * D * D },
      { name: `${b}.mlp.fc1`, macs: T * D * Hm },
      { name: `${b}.mlp.fc2`, macs: T * Hm * D },
    );
  }
  if (c.numClasses > 0) layers.push({ name: "head", macs: D * c.numClasses });
  const baseMacs = layers.reduce((s, l) => s + l.macs, 0);
  let adapterMacs = 0;
  for (const a of adapters) {
    const macs = rowsOf(c, a.linear) * a.macsPerRow;
    if (macs === 0) continue;
    layers.push({ name: `lora:${a.name}`, macs });
    adapterMacs += macs;
  }
  const macs = baseMacs + adapterMacs;
  return { layers, baseMacs, adapterMacs, macs, flops: 2 * macs };
}

interface CostedHook extends LinearHook {
  extraMacsPerRow(): number;
  site?: { name: string };
}

function isCosted(h: LinearHook): h is CostedHook {
  return typeof (h as Partial<CostedHook>).extraMacsPerRow === "function";
}

/** MACs of one forward pass of `model` as it is now: its config plus every attached, unmerged adapter. */
export function modelForwardMacs(model: ViT): FlopReport {
  const costs: AdapterCost[] = [];
  for (const [linear, hooks] of model.hooks) {
    for (const h of hooks) {
      if (!isCosted(h)) throw new Error(`modelForwardMacs: the hook on '${linear}' does not report its cost (extraMacsPerRow)`);
      costs.push({ name: h.site?.name ?? linear, linear, macsPerRow: h.extraMacsPerRow() });
    }
  }
  return forwardMacs(model.config, costs);
}
