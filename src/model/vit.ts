// Vision Transformer over named tfjs variables, numerically the timm `VisionTransformer`
// (pre-norm blocks, class token, learned position embeddings, final norm, linear head).
//
// Variables are keyed by timm state-dict names and kept in PyTorch layouts (Linear [out,in],
// patch projection [D,C,P,P]), so a timm/DINO file loads by straight copy and saving is exact.
// Adapters (LoRA, selective LoRA) attach to linear layers by name through `LinearHook`s
// (src/model/module.ts); the blocks are the shared pre-norm block of src/model/transformer.ts.
import * as tf from "@tensorflow/tfjs";
import { mlpHidden, numPatches, validateConfig, ViTConfig } from "./config";
import { LinearModule } from "./module";
import { attention, mlp, residualBlock } from "./transformer";
import type { ForwardOptions, ImageModel } from "./types";
import { Rng } from "../ground/rng";

export type { LinearHook } from "./module";
export { activation } from "./transformer";

/** Outputs of one forward pass through the backbone. */
export interface BackboneOutput {
  /** Tokens after the final norm [B,T,D] (T = patches + CLS). */
  tokens: tf.Tensor3D;
  /** Residual stream after each block [B,T,D], when requested. */
  blocks: tf.Tensor3D[];
}

export interface CreateOptions {
  /** Seed of the initialisation; the same seed gives the same weights on every backend. */
  seed?: number;
}

/** Shapes of every parameter of a config, in timm names and PyTorch layouts (no allocation). */
export function parameterShapes(c: ViTConfig): Map<string, number[]> {
  validateConfig(c);
  const D = c.width;
  const H = mlpHidden(c);
  const s = new Map<string, number[]>();
  s.set("patch_embed.proj.weight", [D, c.inChannels, c.patchSize, c.patchSize]);
  if (c.patchBias) s.set("patch_embed.proj.bias", [D]);
  if (c.classToken) s.set("cls_token", [1, 1, D]);
  s.set("pos_embed", [1, numPatches(c) + (c.classToken ? 1 : 0), D]);
  if (c.preNorm) {
    s.set("norm_pre.weight", [D]);
    s.set("norm_pre.bias", [D]);
  }
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    s.set(`${b}.norm1.weight`, [D]);
    s.set(`${b}.norm1.bias`, [D]);
    s.set(`${b}.attn.qkv.weight`, [3 * D, D]);
    if (c.qkvBias) s.set(`${b}.attn.qkv.bias`, [3 * D]);
    s.set(`${b}.attn.proj.weight`, [D, D]);
    s.set(`${b}.attn.proj.bias`, [D]);
    s.set(`${b}.norm2.weight`, [D]);
    s.set(`${b}.norm2.bias`, [D]);
    s.set(`${b}.mlp.fc1.weight`, [H, D]);
    s.set(`${b}.mlp.fc1.bias`, [H]);
    s.set(`${b}.mlp.fc2.weight`, [D, H]);
    s.set(`${b}.mlp.fc2.bias`, [D]);
  }
  s.set("norm.weight", [D]);
  s.set("norm.bias", [D]);
  if (c.numClasses > 0) {
    s.set("head.weight", [c.numClasses, D]);
    if (c.headBias) s.set("head.bias", [c.numClasses]);
  }
  return s;
}

/**
 * timm initialisation: trunc-normal(0.02) weights and position embedding, zero biases, unit norms.
 * One difference: timm leaves patch_embed.proj (a Conv2d) at PyTorch's default, U(+-1/sqrt(fan_in))
 * for weight and bias; here it is initialised like the linears. Only a model trained from scratch
 * sees it (data/source-model was trained from this init, so changing it would change that model).
 */
function initTensor(name: string, shape: number[], rng: Rng): tf.Tensor {
  const last = name.slice(name.lastIndexOf(".") + 1);
  if (name === "cls_token") return tf.randomNormal(shape, 0, 1e-6, "float32", rng.seed());
  // timm's trunc_normal_(std=.02) truncates at +-2 absolute (100 sigma): a plain normal.
  if (name === "pos_embed") return tf.randomNormal(shape, 0, 0.02, "float32", rng.seed());
  if (last === "bias") return tf.zeros(shape);
  if (/norm[^.]*\.weight$/.test(name)) return tf.ones(shape);
  return tf.randomNormal(shape, 0, 0.02, "float32", rng.seed());
}

/** Base parameters (`params`) are in timm names and PyTorch layouts. */
export class ViT extends LinearModule implements ImageModel {
  readonly config: ViTConfig;

  private constructor(config: ViTConfig) {
    validateConfig(config);
    super("ViT", "vit");
    this.config = { ...config };
  }

  protected get lnEps(): number {
    return this.config.lnEps;
  }

  /** A freshly initialised model (timm init). */
  static create(config: ViTConfig, opts: CreateOptions = {}): ViT {
    const m = new ViT(config);
    const rng = new Rng(opts.seed ?? 0).fork("vit-init");
    for (const [name, shape] of parameterShapes(config)) {
      m.params.set(name, m.variableFrom(name, tf.tidy(() => initTensor(name, shape, rng))));
    }
    return m;
  }

  /** A model whose parameters are copies of the given tensors (every parameter must be present). */
  static fromTensors(config: ViTConfig, tensors: Map<string, tf.Tensor>): ViT {
    const m = new ViT(config);
    for (const [name, shape] of parameterShapes(config)) {
      const t = tensors.get(name);
      if (!t) throw new Error(`ViT.fromTensors: missing parameter '${name}'`);
      if (!tf.util.arraysEqual(t.shape, shape)) throw new Error(`ViT.fromTensors: '${name}' has shape [${t.shape}], expected [${shape}]`);
      m.params.set(name, m.newVariable(name, t));
    }
    return m;
  }

  get imageSize(): number {
    return this.config.imageSize;
  }
  get inChannels(): number {
    return this.config.inChannels;
  }
  get numClasses(): number {
    return this.config.numClasses;
  }
  get featureDim(): number {
    return this.config.width;
  }

  /**
   * Replaces the head with copies of `weight` [classes,D] and `bias` [classes] (or none), e.g. a
   * fresh head for a new class count; the config's numClasses and headBias follow.
   */
  setHead(weight: tf.Tensor, bias: tf.Tensor | null): void {
    const [n, d] = weight.shape;
    if (weight.rank !== 2 || d !== this.config.width) throw new Error(`head weight must be [classes,${this.config.width}], got [${weight.shape}]`);
    if (bias && !tf.util.arraysEqual(bias.shape, [n])) throw new Error(`head bias must be [${n}], got [${bias.shape}]`);
    if (this.hooks.has("head")) throw new Error("detach the adapters on 'head' before replacing it");
    for (const k of ["head.weight", "head.bias"]) {
      this.params.get(k)?.dispose();
      this.params.delete(k);
    }
    this.params.set("head.weight", this.newVariable("head.weight", weight));
    if (bias) this.params.set("head.bias", this.newVariable("head.bias", bias));
    this.config.numClasses = n;
    this.config.headBias = bias !== null;
  }

  // ---- layers ----------------------------------------------------------------------------

  /** Patch + position embedding. x: [B,H,W,C] -> [B,T,D]. */
  embed(x: tf.Tensor4D): tf.Tensor3D {
    const { patchSize: P, width: D, inChannels: C, imageSize } = this.config;
    const [B, Hh, Ww, Cx] = x.shape;
    if (Hh !== imageSize || Ww !== imageSize || Cx !== C) {
      throw new Error(`ViT expects input [B,${imageSize},${imageSize},${C}], got [${x.shape}]`);
    }
    const g = imageSize / P;
    // Patch embedding as reshape + matMul (the wasm backend has no Conv2D filter gradient).
    const patches = x
      .reshape([B, g, P, g, P, C]) // [B,gh,P,gw,P,C]
      .transpose([0, 1, 3, 2, 4, 5]) // [B,gh,gw,P,P,C]
      .reshape([B * g * g, P * P * C]); // [B*N,PPC]
    const w = this.p("patch_embed.proj.weight").transpose([0, 2, 3, 1]).reshape([D, P * P * C]); // [D,PPC] from OIHW
    const bias = this.params.get("patch_embed.proj.bias");
    let t = tf.matMul(patches, w, false, true).reshape([B, g * g, D]) as tf.Tensor3D; // [B,N,D]
    if (bias) t = tf.add(t, bias);
    if (this.config.classToken) {
      const cls = tf.tile(this.p("cls_token"), [B, 1, 1]) as tf.Tensor3D; // [B,1,D]
      t = tf.concat([cls, t], 1); // [B,T,D]
    }
    return tf.add(t, this.p("pos_embed")) as tf.Tensor3D; // [B,T,D]
  }

  /** Multi-head self-attention of block i with its output projection. x: [B,T,D] -> [B,T,D]. */
  attention(i: number, x: tf.Tensor3D, opts: ForwardOptions): tf.Tensor3D {
    return attention(this, `blocks.${i}`, x, this.config.heads, opts);
  }

  /** fc1 -> activation -> fc2 of block i. x: [B,T,D] -> [B,T,D]. */
  mlp(i: number, x: tf.Tensor3D, opts: ForwardOptions): tf.Tensor3D {
    return mlp(this, `blocks.${i}`, x, this.config.act, opts);
  }

  /** One pre-norm block: two residual lines. x: [B,T,D] -> [B,T,D]. */
  block(i: number, x: tf.Tensor3D, opts: ForwardOptions = {}): tf.Tensor3D {
    return residualBlock(this, `blocks.${i}`, x, { heads: this.config.heads, act: this.config.act }, opts);
  }

  /** The backbone: embeddings, blocks, final norm. Call inside tf.tidy. */
  forward(x: tf.Tensor4D, opts: ForwardOptions & { collectBlocks?: boolean } = {}): BackboneOutput {
    let h = this.embed(x); // [B,T,D]
    if (this.config.preNorm) h = this.layerNorm("norm_pre", h) as tf.Tensor3D;
    const blocks: tf.Tensor3D[] = [];
    for (let i = 0; i < this.config.depth; i++) {
      h = this.block(i, h, opts);
      if (opts.collectBlocks) blocks.push(h);
    }
    return { tokens: this.layerNorm("norm", h) as tf.Tensor3D, blocks };
  }

  /** Pooled feature: CLS token after the final norm (mean of patch tokens without a CLS token). [B,D] */
  pool(tokens: tf.Tensor3D): tf.Tensor2D {
    const [B, , D] = tokens.shape;
    if (this.config.classToken) return tokens.slice([0, 0, 0], [B, 1, D]).reshape([B, D]);
    return tf.mean(tokens, 1) as tf.Tensor2D;
  }

  features(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.pool(this.forward(x, opts).tokens));
  }

  /** Head on a pooled feature. f: [B,D] -> [B,classes]. */
  head(f: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    if (this.config.numClasses === 0) throw new Error("this ViT has no head (numClasses = 0); use features()");
    return this.linear("head", f, opts);
  }

  logits(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.head(this.pool(this.forward(x, opts).tokens), opts));
  }

  /** Residual stream after every block, [B,T,D] each. */
  blockOutputs(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor3D[] {
    return tf.tidy(() => this.forward(x, { ...opts, collectBlocks: true }).blocks);
  }

}

/** Shorthand: a freshly initialised ViT. */
export function createViT(config: ViTConfig, opts: CreateOptions = {}): ViT {
  return ViT.create(config, opts);
}
