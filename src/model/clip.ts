// CLIP (openai/CLIP `clip/model.py`, ViT image encoder): the vision tower is the ViT of
// src/model/vit.ts (pre-norm, QuickGELU, LayerNorm eps 1e-5, no patch bias, head = the visual
// projection without bias), the text tower src/model/clip-text.ts, and `logit_scale`.
//
// Variable names: `visual.<timm name>` (visual.blocks.0.attn.qkv.weight, visual.head.weight),
// `text.<text tower name>` (text.blocks.0.mlp.fc1.weight, text.text_projection) and
// `logit_scale` (a scalar). src/weights/clip-names.ts maps OpenAI and Hugging Face names to them.
import * as tf from "@tensorflow/tfjs";
import { vitConfig, ViTConfig } from "./config";
import { TextConfig, textConfig, textParameterShapes, TextTransformer } from "./clip-text";
import type { ForwardOptions } from "./types";
import { parameterShapes, ViT } from "./vit";

export interface CLIPConfig {
  /** Width of the joint embedding (both projections' output). */
  embedDim: number;
  /** numClasses = embedDim: the head is the visual projection. */
  vision: ViTConfig;
  text: TextConfig;
}

/** The reference CLIP constructor's arguments (also the `config` of the parity fixtures). */
export interface CLIPArgs {
  embed_dim: number;
  image_resolution: number;
  vision_layers: number;
  vision_width: number;
  vision_patch_size: number;
  context_length: number;
  vocab_size: number;
  transformer_width: number;
  transformer_heads: number;
  transformer_layers: number;
}

/** The OpenAI ViT models, as the reference's build_model reads them from the released weights. */
export const CLIP_PRESETS: Readonly<Record<"ViT-B/32" | "ViT-B/16" | "ViT-L/14", CLIPArgs>> = {
  "ViT-B/32": { embed_dim: 512, image_resolution: 224, vision_layers: 12, vision_width: 768, vision_patch_size: 32, context_length: 77, vocab_size: 49408, transformer_width: 512, transformer_heads: 8, transformer_layers: 12 },
  "ViT-B/16": { embed_dim: 512, image_resolution: 224, vision_layers: 12, vision_width: 768, vision_patch_size: 16, context_length: 77, vocab_size: 49408, transformer_width: 512, transformer_heads: 8, transformer_layers: 12 },
  "ViT-L/14": { embed_dim: 768, image_resolution: 224, vision_layers: 24, vision_width: 1024, vision_patch_size: 14, context_length: 77, vocab_size: 49408, transformer_width: 768, transformer_heads: 12, transformer_layers: 12 },
};
export type CLIPPreset = keyof typeof CLIP_PRESETS;

/** The vision tower's ViTConfig for CLIP: heads = width / 64 (as the reference), quick_gelu, eps 1e-5, ln_pre. */
export function clipVisionConfig(imageSize: number, patchSize: number, width: number, depth: number, embedDim: number, heads = width / 64): ViTConfig {
  return vitConfig({
    imageSize, patchSize, width, depth, heads, numClasses: embedDim,
    mlpRatio: 4, qkvBias: true, classToken: true, lnEps: 1e-5, act: "quick_gelu", preNorm: true, patchBias: false, headBias: false,
  });
}

/** A CLIPConfig from the reference's constructor arguments or a preset name. */
export function clipConfig(args: CLIPArgs | CLIPPreset): CLIPConfig {
  const a = typeof args === "string" ? CLIP_PRESETS[args] : args;
  if (!a) throw new Error(`unknown CLIP preset '${String(args)}'; known: ${Object.keys(CLIP_PRESETS).join(", ")}`);
  return {
    embedDim: a.embed_dim,
    vision: clipVisionConfig(a.image_resolution, a.vision_patch_size, a.vision_width, a.vision_layers, a.embed_dim),
    text: textConfig({ contextLength: a.context_length, vocabSize: a.vocab_size, width: a.transformer_width, heads: a.transformer_heads, depth: a.transformer_layers, embedDim: a.embed_dim }),
  };
}

export function validateCLIPConfig(c: CLIPConfig): void {
  if (c.vision.numClasses !== c.embedDim || c.text.embedDim !== c.embedDim) {
    throw new Error(`CLIP config: embedDim ${c.embedDim}, but the visual projection gives ${c.vision.numClasses} and the text projection ${c.text.embedDim}`);
  }
  if (c.vision.headBias) throw new Error("CLIP config: the visual projection has no bias (headBias must be false)");
}

/** Every parameter's shape under the CLIP names (no allocation). */
export function clipParameterShapes(c: CLIPConfig): Map<string, number[]> {
  validateCLIPConfig(c);
  const s = new Map<string, number[]>();
  for (const [k, v] of parameterShapes(c.vision)) s.set(`visual.${k}`, v);
  for (const [k, v] of textParameterShapes(c.text)) s.set(`text.${k}`, v);
  s.set("logit_scale", []);
  return s;
}

/** x / ||x|| over the last axis. [B,E] -> [B,E]. */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.norm(x, "euclidean", -1, true)); // [B,E]
}

// A type alias, not an interface: tf.tidy returns only index-signature-compatible objects.
export type CLIPLogits = {
  /** exp(logit_scale) * cos(image i, text j). [images, texts] */
  logitsPerImage: tf.Tensor2D;
  /** Its transpose. [texts, images] */
  logitsPerText: tf.Tensor2D;
};

export class CLIP {
  readonly config: CLIPConfig;

  private constructor(config: CLIPConfig, readonly visual: ViT, readonly text: TextTransformer, readonly logitScale: tf.Variable) {
    this.config = config;
  }

  /** Fresh weights: timm's init for the vision tower, the reference's for the text tower, logit_scale = ln(1/0.07). */
  static create(config: CLIPConfig, opts: { seed?: number } = {}): CLIP {
    validateCLIPConfig(config);
    const seed = opts.seed ?? 0;
    const visual = ViT.create(config.vision, { seed });
    const text = TextTransformer.create(config.text, { seed });
    return new CLIP(config, visual, text, text.variableFrom("logit_scale", tf.scalar(Math.log(1 / 0.07))));
  }

  /** A model whose parameters are copies of tensors under the CLIP names (every one must be present). */
  static fromTensors(config: CLIPConfig, tensors: Map<string, tf.Tensor>): CLIP {
    validateCLIPConfig(config);
    const part = (prefix: string) => new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    const scale = tensors.get("logit_scale");
    if (!scale || scale.size !== 1) throw new Error(`CLIP.fromTensors: 'logit_scale' is ${scale ? `shape [${scale.shape}]` : "missing"}, expected a scalar`);
    const visual = ViT.fromTensors(config.vision, part("visual."));
    const text = TextTransformer.fromTensors(config.text, part("text."));
    return new CLIP(config, visual, text, text.variableFrom("logit_scale", tf.tidy(() => scale.reshape([]))));
  }

  /** Image features [B,embedDim], unnormalised (encode_image). x: NHWC [B,H,W,3], normalised. */
  encodeImage(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor2D {
    return this.visual.logits(x, opts);
  }

  /** Text features [B,embedDim], unnormalised (encode_text). ids: int32 [B,L] from the tokenizer. */
  encodeText(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    return this.text.encode(ids, opts);
  }

  /** Logits from features (normalised here), exp(logit_scale) * cosine similarity. */
  similarity(imageFeatures: tf.Tensor2D, textFeatures: tf.Tensor2D): CLIPLogits {
    return tf.tidy(() => {
      const img = l2Normalize(imageFeatures); // [Bi,E]
      const txt = l2Normalize(textFeatures); // [Bt,E]
      const logitsPerImage = tf.mul(tf.exp(this.logitScale), tf.matMul(img, txt, false, true)) as tf.Tensor2D; // [Bi,Bt]
      return { logitsPerImage, logitsPerText: tf.transpose(logitsPerImage) as tf.Tensor2D }; // [Bt,Bi]
    });
  }

  /** CLIP.forward: logits of every image against every text. */
  forward(images: tf.Tensor4D, ids: tf.Tensor2D, opts: ForwardOptions = {}): CLIPLogits {
    return tf.tidy(() => this.similarity(this.encodeImage(images, opts), this.encodeText(ids, opts)));
  }

  /** Every variable under the CLIP names (adapters included, under their tower's prefix). */
  namedVariables(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [k, v] of this.visual.namedVariables()) out.set(`visual.${k}`, v);
    for (const [k, v] of this.text.namedVariables()) out.set(`text.${k}`, v);
    out.set("logit_scale", this.logitScale);
    return out;
  }

  dispose(): void {
    this.visual.dispose();
    this.text.dispose();
    this.logitScale.dispose();
  }
}
