// LoRA on the ViT's linear layers, peft-style (peft/tuners/lora/layer.py): per-adapter state,
// A [r,in] Kaiming-uniform (U(+-1/sqrt(in)), peft's kaiming_uniform_(a=sqrt(5))), B [out,r] zero,
// y = x W^T + b + scale * (dropout(x) A^T) B^T with scale = alpha/r (alpha/sqrt(r) with rsLoRA).
// query/key/value are separate sites even though timm fuses qkv: a site owns a slice of the
// output rows and its update is written into those rows only.
import * as tf from "@tensorflow/tfjs";
import type { ForwardOptions } from "../model/types";
import type { LinearHook, ViT } from "../model/vit";
import { Rng } from "../ground/rng";
import { LoraSite, resolveTargets } from "./targets";

export interface LoraConfig {
  /** Rank r (> 0). */
  rank: number;
  /** Scale numerator; default r (scale 1), as Paper A. */
  alpha?: number;
  /** Dropout on the LoRA input, only when training; default 0. */
  dropout?: number;
  /** Short per-block names (query, key, value, qkv, proj, fc1, fc2) or full layer names; default query,value. */
  targets?: readonly string[];
  /** Only these blocks (peft `layers_to_transform`); default all. */
  blocks?: readonly number[];
  /** rsLoRA scale alpha/sqrt(r) instead of alpha/r. */
  rslora?: boolean;
  /** Seed of A's initialisation and of the dropout masks. */
  seed?: number;
}

export const DEFAULT_TARGETS: readonly string[] = ["query", "value"];

/** LoraConfig with every default filled in. */
export type ResolvedLoraConfig = Required<Omit<LoraConfig, "blocks">> & { blocks?: readonly number[] };

export function resolveLoraConfig(c: LoraConfig): ResolvedLoraConfig {
  if (!(Number.isInteger(c.rank) && c.rank > 0)) throw new Error(`LoRA: rank must be a positive integer, got ${c.rank}`);
  const dropout = c.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`LoRA: dropout must be in [0,1), got ${dropout}`);
  return {
    rank: c.rank,
    alpha: c.alpha ?? c.rank,
    dropout,
    targets: c.targets ?? DEFAULT_TARGETS,
    blocks: c.blocks,
    rslora: c.rslora ?? false,
    seed: c.seed ?? 0,
  };
}

/** One A,B pair on one site, for one adapter. Attached to the model as a LinearHook. */
export class LoraLayer implements LinearHook {
  readonly A: tf.Variable; // [r,in]
  readonly B: tf.Variable; // [out,r]
  readonly scale: number;
  /** Whether the update is currently folded into the frozen weight (the hook then adds nothing). */
  merged = false;
  /** A disabled layer adds nothing (peft `disable_adapter`). */
  enabled = true;
  private readonly rng: Rng;
  /** The gate merge() folded into W (null: none, plain LoRA), so that unmerge() takes out the same update. */
  private mergedGate: tf.Scalar | null = null;

  constructor(
    readonly model: ViT,
    readonly site: LoraSite,
    readonly adapterName: string,
    readonly config: ResolvedLoraConfig,
  ) {
    const { rank: r } = config;
    this.scale = config.rslora ? config.alpha / Math.sqrt(r) : config.alpha / r;
    this.rng = new Rng(config.seed).fork(`lora/${adapterName}/${site.name}`);
    const bound = 1 / Math.sqrt(site.inFeatures);
    const a = tf.tidy(() => tf.randomUniform([r, site.inFeatures], -bound, bound, "float32", this.rng.seed())); // [r,in]
    this.A = this.register("lora_A", a);
    this.B = this.register("lora_B", tf.zeros([site.outFeatures, r])); // [out,r]
  }

  /** Model-side key of this layer's A or B, peft's in-memory form: `<site>.lora_A.<adapter>.weight`. */
  key(which: "lora_A" | "lora_B" | string): string {
    return `${this.site.name}.${which}.${this.adapterName}.weight`;
  }

  protected register(which: string, init: tf.Tensor): tf.Variable {
    const key = this.key(which);
    if (this.model.adapterParams.has(key)) throw new Error(`adapter '${this.adapterName}' already has '${key}'`);
    const v = this.model.variableFrom(key, init);
    this.model.adapterParams.set(key, v);
    return v;
  }

  /** The adapter's own trainable variables. */
  variables(): tf.Variable[] {
    return [this.A, this.B];
  }

  /**
   * Factor on the update in the forward pass and when merging: null (1) for plain LoRA; selective
   * LoRA's hard gate, 0 or 1. It stays on the device: webgpu in Node cannot read a tensor synchronously.
   */
  protected gate(): tf.Scalar | null {
    return null;
  }

  /** The dropout mask's seed: from (seed, adapter, site, step) in training steps, else the layer's own stream. */
  private dropoutSeed(step: number | undefined): number {
    if (step === undefined) return this.rng.seed();
    return new Rng(this.config.seed).fork(`lora/${this.adapterName}/${this.site.name}/dropout/${step}`).seed();
  }

  /** The site's update for input x: scale * gate * (dropout(x) A^T) B^T. x: [M,in] -> [M,out_site]. */
  delta(x: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    const p = this.config.dropout;
    const xin = opts.training && p > 0 ? (tf.dropout(x, p, undefined, this.dropoutSeed(opts.step)) as tf.Tensor2D) : x; // [M,in]
    const h = tf.mul<tf.Tensor2D>(tf.matMul(xin, this.A, false, true), this.scale); // [M,r]
    const d = tf.matMul(h, this.B, false, true) as tf.Tensor2D; // [M,out_site]
    const g = this.gate();
    return g ? tf.mul<tf.Tensor2D>(d, g) : d;
  }

  /** Places a [.., out_site] tensor into the layer's full output rows (zeros elsewhere). */
  protected toLinearRows<T extends tf.Tensor2D>(t: T): T {
    const rows = this.site.rows;
    if (!rows) return t;
    return tf.pad(t, [[0, 0], [rows[0], this.site.linearOut - rows[1]]]) as T; // [M,linearOut]
  }

  apply(x: tf.Tensor2D, y: tf.Tensor2D, opts: ForwardOptions): tf.Tensor2D {
    if (this.merged || !this.enabled) return y;
    return tf.add(y, this.toLinearRows(this.delta(x, opts))); // [M,linearOut]
  }

  /**
   * The update of the frozen weight, scale * gate * B A, in the layer's layout: [linearOut,in],
   * zero outside the site's rows. `sliceOnly` gives just the site's [out_site,in].
   */
  deltaWeight(sliceOnly = false, gate: tf.Scalar | null = this.gate()): tf.Tensor2D {
    return tf.tidy(() => {
      const scaled = tf.mul<tf.Tensor2D>(tf.matMul(this.B, this.A), this.scale); // [out_site,in]
      const d = gate ? tf.mul<tf.Tensor2D>(scaled, gate) : scaled; // [out_site,in]
      if (sliceOnly) return d;
      // transpose trick: pad rows of [out_site,in] as if they were columns of a [in,out_site] matrix
      return this.toLinearRows(d.transpose() as tf.Tensor2D).transpose() as tf.Tensor2D; // [linearOut,in]
    });
  }

  private weight(): tf.Variable {
    return this.model.p(`${this.site.linear}.weight`);
  }

  /**
   * W += deltaWeight(). The hook stops adding its update. A closed gate (selective LoRA) adds
   * 0 * update, which leaves W bit for bit as it was (for a finite update).
   */
  merge(): void {
    if (this.merged) return;
    const gate = this.gate();
    this.mergedGate = gate ? tf.keep(gate) : null;
    const W = this.weight();
    tf.tidy(() => W.assign(tf.add(W, this.deltaWeight(false, this.mergedGate))));
    this.merged = true;
  }

  /**
   * W -= deltaWeight(), as peft. Restores W up to float32 rounding of (W + d) - d (at most half an
   * ulp of |W + d| per element, far below 1e-6 for ViT weights); bit-exact only when d is 0.
   */
  unmerge(): void {
    if (!this.merged) return;
    const W = this.weight();
    tf.tidy(() => W.assign(tf.sub(W, this.deltaWeight(false, this.mergedGate))));
    this.mergedGate?.dispose();
    this.mergedGate = null;
    this.merged = false;
  }

  /** Detaches the hook and disposes this layer's variables (merged updates stay in W). */
  detach(): void {
    this.model.removeHook(this.site.linear, this);
    this.mergedGate?.dispose();
    this.mergedGate = null;
    for (const which of ["lora_A", "lora_B", ...this.extraKeys()]) {
      const k = this.key(which);
      this.model.adapterParams.get(k)?.dispose();
      this.model.adapterParams.delete(k);
    }
  }

  /** Keys of variables a subclass registered besides A and B. */
  protected extraKeys(): string[] {
    return [];
  }

  /** Extra multiply-accumulates per input row while unmerged (for the FLOP counter). */
  extraMacsPerRow(): number {
    if (this.merged || !this.enabled) return 0;
    return this.config.rank * (this.site.inFeatures + this.site.outFeatures);
  }
}

/** One named adapter: its config and its layers across the model (peft's per-adapter state). */
export class LoraAdapter<L extends LoraLayer = LoraLayer> {
  constructor(
    readonly model: ViT,
    readonly name: string,
    readonly config: ResolvedLoraConfig,
    readonly layers: L[],
  ) {}

  /** Builds the layers for every resolved site and attaches them as hooks. */
  protected static build<L extends LoraLayer>(
    model: ViT,
    config: LoraConfig,
    name: string,
    make: (site: LoraSite, cfg: ResolvedLoraConfig) => L,
  ): { cfg: ResolvedLoraConfig; layers: L[] } {
    if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`adapter name '${name}' must be [A-Za-z0-9_-]+`);
    const cfg = resolveLoraConfig(config);
    const sites = resolveTargets(model.config, cfg.targets, { blocks: cfg.blocks });
    const layers: L[] = [];
    try {
      for (const s of sites) layers.push(make(s, cfg));
    } catch (e) {
      for (const l of layers) l.detach();
      throw e;
    }
    for (const l of layers) model.addHook(l.site.linear, l);
    return { cfg, layers };
  }

  /** Adds a LoRA adapter to `model` (hooks on every target site). */
  static attach(model: ViT, config: LoraConfig, name = "default"): LoraAdapter {
    const { cfg, layers } = LoraAdapter.build(model, config, name, (s, c) => new LoraLayer(model, s, name, c));
    return new LoraAdapter(model, name, cfg, layers);
  }

  variables(): tf.Variable[] {
    return this.layers.flatMap((l) => l.variables());
  }

  /** Number of trainable adapter parameters. */
  numParams(): number {
    return this.variables().reduce((s, v) => s + v.size, 0);
  }

  layer(siteName: string): L {
    const l = this.layers.find((x) => x.site.name === siteName);
    if (!l) throw new Error(`adapter '${this.name}' has no layer '${siteName}'`);
    return l;
  }

  merge(): void {
    for (const l of this.layers) l.merge();
  }

  unmerge(): void {
    for (const l of this.layers) l.unmerge();
  }

  get merged(): boolean {
    return this.layers.length > 0 && this.layers.every((l) => l.merged);
  }

  setEnabled(on: boolean): void {
    for (const l of this.layers) l.enabled = on;
  }

  /** peft `merge_and_unload`: folds the updates into W and removes the adapter. */
  mergeAndUnload(): void {
    this.merge();
    this.unload();
  }

  /** peft `unload`: removes the adapter; updates already merged stay in W. */
  unload(): void {
    for (const l of this.layers) l.detach();
    this.layers.length = 0;
  }
}

/** Shorthand: `addLora(model, {rank: 8})` = LoRA on query and value of every block. */
export function addLora(model: ViT, config: LoraConfig, name = "default"): LoraAdapter {
  return LoraAdapter.attach(model, config, name);
}
