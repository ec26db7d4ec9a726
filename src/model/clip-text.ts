// The CLIP text tower, numerically openai/CLIP `clip/model.py` `CLIP.encode_text`: token
// embedding + learned positional embedding, pre-norm residual blocks under a causal mask
// (QuickGELU, LayerNorm eps 1e-5), `ln_final`, the feature at the end token (the highest id of
// each sequence, as the reference's argmax), then x @ text_projection [width, embed].
//
// Names are the ViT's timm-style ones (`blocks.i.attn.qkv`, `blocks.i.mlp.fc1`, ...), plus the
// reference's own for what a ViT lacks (`token_embedding.weight`, `positional_embedding`,
// `ln_final`, `text_projection`); layouts are PyTorch's. The linear layers take LinearHooks.
import * as tf from "@tensorflow/tfjs";
import type { Activation } from "./config";
import { LinearModule } from "./module";
import { causalMask, gatherRows, residualBlock } from "./transformer";
import type { ForwardOptions } from "./types";
import { Rng } from "../ground/rng";
import { readableSync } from "../runtime/backend";

export interface TextConfig {
  /** Positions of the positional embedding (77 for every OpenAI model). */
  contextLength: number;
  vocabSize: number;
  width: number;
  depth: number;
  heads: number;
  /** MLP hidden width = mlpRatio * width. */
  mlpRatio: number;
  lnEps: number;
  act: Activation;
  /** Output width of text_projection (the joint embedding). */
  embedDim: number;
}

/** OpenAI CLIP's fixed text settings; width, depth, heads and embedDim vary per model. */
export const TEXT_DEFAULTS = { contextLength: 77, vocabSize: 49408, mlpRatio: 4, lnEps: 1e-5, act: "quick_gelu" } as const;

export function textConfig(c: Pick<TextConfig, "width" | "depth" | "heads" | "embedDim"> & Partial<TextConfig>): TextConfig {
  const cfg: TextConfig = { ...TEXT_DEFAULTS, ...c };
  validateTextConfig(cfg);
  return cfg;
}

export function validateTextConfig(c: TextConfig): void {
  for (const k of ["contextLength", "vocabSize", "width", "depth", "heads", "mlpRatio", "embedDim"] as const) {
    if (!(Number.isFinite(c[k]) && c[k] > 0)) throw new Error(`CLIP text config: ${k} must be a positive number, got ${c[k]}`);
  }
  if (c.width % c.heads !== 0) throw new Error(`CLIP text config: width ${c.width} is not divisible by heads ${c.heads}`);
  if (!Number.isInteger(c.mlpRatio * c.width)) throw new Error("CLIP text config: mlpRatio * width must be an integer");
}

/** Shapes of every parameter, by name, PyTorch layouts (no allocation). */
export function textParameterShapes(c: TextConfig): Map<string, number[]> {
  validateTextConfig(c);
  const W = c.width;
  const H = c.mlpRatio * W;
  const s = new Map<string, number[]>();
  s.set("token_embedding.weight", [c.vocabSize, W]);
  s.set("positional_embedding", [c.contextLength, W]);
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    s.set(`${b}.norm1.weight`, [W]);
    s.set(`${b}.norm1.bias`, [W]);
    s.set(`${b}.attn.qkv.weight`, [3 * W, W]);
    s.set(`${b}.attn.qkv.bias`, [3 * W]);
    s.set(`${b}.attn.proj.weight`, [W, W]);
    s.set(`${b}.attn.proj.bias`, [W]);
    s.set(`${b}.norm2.weight`, [W]);
    s.set(`${b}.norm2.bias`, [W]);
    s.set(`${b}.mlp.fc1.weight`, [H, W]);
    s.set(`${b}.mlp.fc1.bias`, [H]);
    s.set(`${b}.mlp.fc2.weight`, [W, H]);
    s.set(`${b}.mlp.fc2.bias`, [W]);
  }
  s.set("ln_final.weight", [W]);
  s.set("ln_final.bias", [W]);
  s.set("text_projection", [W, c.embedDim]);
  return s;
}

/**
 * The reference's `initialize_parameters`: normal with std 0.02 (token embedding), 0.01
 * (positions), W^-1/2 (qkv, text_projection), (2W)^-1/2 (fc1), W^-1/2 (2 depth)^-1/2 (proj, fc2).
 * Biases start at zero (PyTorch draws nn.Linear biases uniformly; CLIP is fine-tuned from
 * pretrained weights anyway), norms at one.
 */
function initTensor(name: string, shape: number[], c: TextConfig, rng: Rng): tf.Tensor {
  const W = c.width;
  const normal = (std: number) => tf.randomNormal(shape, 0, std, "float32", rng.seed());
  if (name === "token_embedding.weight") return normal(0.02);
  if (name === "positional_embedding") return normal(0.01);
  if (name === "text_projection" || name.endsWith("attn.qkv.weight")) return normal(W ** -0.5);
  if (name.endsWith("mlp.fc1.weight")) return normal((2 * W) ** -0.5);
  if (name.endsWith("attn.proj.weight") || name.endsWith("mlp.fc2.weight")) return normal(W ** -0.5 * (2 * c.depth) ** -0.5);
  if (name.endsWith(".bias")) return tf.zeros(shape);
  return tf.ones(shape); // norm weights
}

/** Where each sequence's end token is: the first position of its highest id (torch argmax). */
export function eotPositions(ids: Int32Array | ArrayLike<number>, batch: number, length: number): Int32Array {
  const pos = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    let best = 0;
    for (let t = 1; t < length; t++) if (ids[b * length + t] > ids[b * length + best]) best = t;
    pos[b] = best;
  }
  return pos;
}

export class TextTransformer extends LinearModule {
  readonly config: TextConfig;

  private constructor(config: TextConfig) {
    validateTextConfig(config);
    super("CLIP text transformer", "cliptext");
    this.config = { ...config };
  }

  protected get lnEps(): number {
    return this.config.lnEps;
  }

  /** A freshly initialised tower (the reference's initialisation), same numbers on every backend for a seed. */
  static create(config: TextConfig, opts: { seed?: number } = {}): TextTransformer {
    const m = new TextTransformer(config);
    const rng = new Rng(opts.seed ?? 0).fork("clip-text-init");
    for (const [name, shape] of textParameterShapes(config)) {
      m.params.set(name, m.variableFrom(name, tf.tidy(() => initTensor(name, shape, m.config, rng))));
    }
    return m;
  }

  /** A tower whose parameters are copies of the given tensors (every parameter must be present). */
  static fromTensors(config: TextConfig, tensors: Map<string, tf.Tensor>): TextTransformer {
    const m = new TextTransformer(config);
    for (const [name, shape] of textParameterShapes(config)) {
      const t = tensors.get(name);
      if (!t) throw new Error(`TextTransformer.fromTensors: missing parameter '${name}'`);
      if (!tf.util.arraysEqual(t.shape, shape)) throw new Error(`TextTransformer.fromTensors: '${name}' has shape [${t.shape}], expected [${shape}]`);
      m.params.set(name, m.newVariable(name, t));
    }
    return m;
  }

  /**
   * Tokens after ln_final [B,L,W]. ids: int32 [B,L], L <= contextLength (positions past L are
   * never needed: the mask is causal). Call inside tf.tidy.
   */
  forward(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    this.checkIds(ids);
    return this.tokens(ids, opts);
  }

  /**
   * Text features [B,embedDim] (unnormalised, as `encode_text`). ids: int32 [B,L]. Only the
   * columns up to the last end token are run (causal mask: the features are the same).
   */
  encode(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const [B, L] = ids.shape;
      if (B === 0) return tf.zeros([0, this.config.embedDim]) as tf.Tensor2D;
      const host = this.checkIds(ids);
      const eot = host ? eotPositions(host, B, L) : null;
      const used = eot ? eot.reduce((m, t) => Math.max(m, t + 1), 1) : L;
      // Cut on the host: a tensor made from host values stays readable on every backend.
      const x = host && used < L ? tf.tensor2d(Int32Array.from({ length: B * used }, (_, i) => host[Math.floor(i / used) * L + (i % used)]), [B, used], "int32") : ids; // [B,used]
      // The row of each end token in the flattened [B*used] tokens; ids already on a GPU that cannot
      // read synchronously keep every column and have their end tokens found there.
      const rows = eot
        ? tf.tensor1d(Int32Array.from(eot, (t, b) => b * used + t), "int32") // [B]
        : (tf.add(tf.argMax(ids, 1), tf.mul(tf.range(0, B, 1, "int32"), tf.scalar(L, "int32"))) as tf.Tensor1D); // [B]
      const tokens = this.tokens(x, opts); // [B,used,W]
      const pooled = gatherRows(tokens.reshape([B * used, this.config.width]) as tf.Tensor2D, rows); // [B,W]
      return tf.matMul(pooled, this.p("text_projection")); // [B,E]
    });
  }

  /**
   * Checks the ids (int32 [B,L], 1 <= L <= contextLength) and returns them on the host with every
   * id checked against the vocabulary, or null where they cannot be read synchronously (webgpu in
   * Node, once they are on the GPU; ids made from the tokenizer's output and used first here can).
   */
  private checkIds(ids: tf.Tensor2D): Int32Array | null {
    const [, L] = ids.shape;
    const { contextLength, vocabSize } = this.config;
    if (ids.rank !== 2 || L > contextLength || L < 1) throw new Error(`CLIP text tower expects token ids [B,L] with 1 <= L <= ${contextLength}, got [${ids.shape}]`);
    if (ids.dtype !== "int32") throw new Error(`CLIP text tower expects int32 token ids, got ${ids.dtype}`);
    if (!readableSync(ids)) return null;
    const host = ids.dataSync() as Int32Array;
    for (const id of host) if (!(id >= 0 && id < vocabSize)) throw new Error(`CLIP text tower: token id ${id} is outside the vocabulary [0, ${vocabSize})`);
    return host;
  }

  /** forward() without the check of the ids. */
  private tokens(ids: tf.Tensor2D, opts: ForwardOptions): tf.Tensor3D {
    const [B, L] = ids.shape;
    const { width: W, depth, heads, act } = this.config;
    const tok = gatherRows(this.p("token_embedding.weight") as tf.Tensor2D, ids.reshape([B * L]) as tf.Tensor1D).reshape([B, L, W]); // [B,L,W]
    const pos = this.p("positional_embedding").slice([0, 0], [L, W]); // [L,W]
    let h = tf.add(tok, pos) as tf.Tensor3D; // [B,L,W]
    const mask = causalMask(L); // [L,L]
    for (let i = 0; i < depth; i++) h = residualBlock(this, `blocks.${i}`, h, { heads, act, mask }, opts); // [B,L,W]
    return this.layerNorm("ln_final", h) as tf.Tensor3D; // [B,L,W]
  }
}
