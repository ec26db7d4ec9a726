// Name maps from the state-dict conventions we import to the canonical timm names (the model's
// variable names), with layout conversion. Supported namings:
//   timm         timm / DINO originals (identity; `module.` / `backbone.` prefixes stripped)
//   hf-vit       Hugging Face ViTModel / ViTForImageClassification (`vit.` prefix or none)
//   hf-clip      Hugging Face CLIPModel / CLIPVisionModel(WithProjection), vision tower
//   openai-clip  OpenAI CLIP `visual.*`, vision tower
// Converted dicts keep PyTorch layouts (Linear [out,in], Conv2d OIHW), like the model.
import type { ViTConfig } from "../model/config";
import { HostTensor, numel, StateDict } from "./safetensors";

export type Naming = "timm" | "hf-vit" | "hf-clip" | "openai-clip";
export const NAMINGS: readonly Naming[] = ["timm", "hf-vit", "hf-clip", "openai-clip"];

export interface Converted {
  /** Tensors under timm names (keys the map does not know keep their own name, so a loader reports them). */
  dict: StateDict;
  naming: Naming;
  /** Source keys left out on purpose, with why (text tower, pooler, non-persistent buffers). */
  skipped: { key: string; why: string }[];
}

/** Guesses the naming from the keys; throws (listing a few keys) when none fits. A file's
 *  `__metadata__.naming` (written by saveStateDict and the fixtures) takes precedence in loadWeights. */
export function detectNaming(keys: Iterable<string>, file = "state dict"): Naming {
  const ks = [...keys];
  const has = (re: RegExp) => ks.some((k) => re.test(k));
  if (has(/^visual\.(conv1\.weight|transformer\.resblocks\.)/)) return "openai-clip";
  if (has(/^(vision_model\.)?(embeddings\.patch_embedding\.weight|encoder\.layers\.\d+\.self_attn\.)/) && has(/^vision_model\./)) return "hf-clip";
  if (has(/^(vit\.)?(embeddings\.patch_embeddings\.projection\.weight|encoder\.layer\.\d+\.attention\.attention\.)/)) return "hf-vit";
  // timm: any timm-style key, so that a subset (e.g. a saved head and norms) is recognised too.
  if (has(/^((module|backbone)\.)*(patch_embed\.|blocks\.\d+\.|cls_token$|pos_embed$|norm(_pre)?\.|head\.)/)) return "timm";
  const sample = ks.slice(0, 5).map((k) => `'${k}'`).join(", ");
  throw new Error(`${file}: cannot tell the naming from the keys (${ks.length} keys: ${sample}${ks.length > 5 ? ", ..." : ""}); pass one of ${NAMINGS.join(", ")}`);
}

const reshaped = (t: HostTensor, shape: number[], key: string): HostTensor => {
  if (numel(shape) !== numel(t.shape)) throw new Error(`${key}: cannot reshape [${t.shape.join(", ")}] to [${shape.join(", ")}]`);
  return { ...t, shape } as HostTensor;
};

/** Rows of q, k, v stacked (torch.cat dim 0): the fused qkv of timm, [3D, in] or [3D]. */
export function catRows(parts: HostTensor[], key: string): HostTensor {
  const [first] = parts;
  const rest = first.shape.slice(1).join(",");
  for (const p of parts) {
    if (p.shape.slice(1).join(",") !== rest || p.dtype !== first.dtype) {
      throw new Error(`${key}: q/k/v shapes differ ([${parts.map((q) => q.shape.join("x")).join("], [")}])`);
    }
  }
  const n = parts.reduce((s, p) => s + p.data.length, 0);
  const data = first.dtype === "float32" ? new Float32Array(n) : new Int32Array(n);
  let o = 0;
  for (const p of parts) {
    data.set(p.data, o);
    o += p.data.length;
  }
  return { dtype: first.dtype, shape: [parts.reduce((s, p) => s + p.shape[0], 0), ...first.shape.slice(1)], data } as HostTensor;
}

/** 2-D transpose (OpenAI's `proj` is [D,E]; timm's head.weight is [E,D]). */
export function transpose2d(t: HostTensor, key: string): HostTensor {
  if (t.shape.length !== 2) throw new Error(`${key}: expected a matrix, got shape [${t.shape.join(", ")}]`);
  const [r, c] = t.shape;
  const out = t.dtype === "float32" ? new Float32Array(r * c) : new Int32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { dtype: t.dtype, shape: [c, r], data: out } as HostTensor;
}

type Rule = [RegExp, string];

// Per-block renames (after the prefix and the block index are matched); `$1` is the block index.
const HF_VIT_RULES: Rule[] = [
  [/^embeddings\.cls_token$/, "cls_token"],
  [/^embeddings\.position_embeddings$/, "pos_embed"],
  [/^embeddings\.patch_embeddings\.projection\.(weight|bias)$/, "patch_embed.proj.$1"],
  [/^encoder\.layer\.(\d+)\.layernorm_before\.(weight|bias)$/, "blocks.$1.norm1.$2"],
  [/^encoder\.layer\.(\d+)\.layernorm_after\.(weight|bias)$/, "blocks.$1.norm2.$2"],
  [/^encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$/, "blocks.$1.attn.proj.$2"],
  [/^encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$/, "blocks.$1.mlp.fc1.$2"],
  [/^encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$/, "blocks.$1.mlp.fc2.$2"],
  [/^layernorm\.(weight|bias)$/, "norm.$1"],
  [/^classifier\.(weight|bias)$/, "head.$1"],
];
const HF_VIT_QKV = /^encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$/;

const HF_CLIP_RULES: Rule[] = [
  [/^embeddings\.patch_embedding\.(weight|bias)$/, "patch_embed.proj.$1"],
  [/^pre_layrnorm\.(weight|bias)$/, "norm_pre.$1"],
  [/^encoder\.layers\.(\d+)\.layer_norm1\.(weight|bias)$/, "blocks.$1.norm1.$2"],
  [/^encoder\.layers\.(\d+)\.layer_norm2\.(weight|bias)$/, "blocks.$1.norm2.$2"],
  [/^encoder\.layers\.(\d+)\.self_attn\.out_proj\.(weight|bias)$/, "blocks.$1.attn.proj.$2"],
  [/^encoder\.layers\.(\d+)\.mlp\.fc([12])\.(weight|bias)$/, "blocks.$1.mlp.fc$2.$3"],
  [/^post_layernorm\.(weight|bias)$/, "norm.$1"],
];
const HF_CLIP_QKV = /^encoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.(weight|bias)$/;

const OPENAI_RULES: Rule[] = [
  [/^conv1\.(weight|bias)$/, "patch_embed.proj.$1"],
  [/^ln_pre\.(weight|bias)$/, "norm_pre.$1"],
  [/^transformer\.resblocks\.(\d+)\.ln_1\.(weight|bias)$/, "blocks.$1.norm1.$2"],
  [/^transformer\.resblocks\.(\d+)\.ln_2\.(weight|bias)$/, "blocks.$1.norm2.$2"],
  [/^transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$/, "blocks.$1.attn.qkv.$2"],
  [/^transformer\.resblocks\.(\d+)\.attn\.out_proj\.(weight|bias)$/, "blocks.$1.attn.proj.$2"],
  [/^transformer\.resblocks\.(\d+)\.mlp\.c_fc\.(weight|bias)$/, "blocks.$1.mlp.fc1.$2"],
  [/^transformer\.resblocks\.(\d+)\.mlp\.c_proj\.(weight|bias)$/, "blocks.$1.mlp.fc2.$2"],
  [/^ln_post\.(weight|bias)$/, "norm.$1"],
];

function applyRules(rules: Rule[], key: string): string | undefined {
  for (const [re, to] of rules) if (re.test(key)) return key.replace(re, to);
  return undefined;
}

/**
 * Converts a state dict to timm names and layouts. `naming` "auto" (default) detects it.
 * Parts that are not the image model (CLIP text tower, HF pooler, buffers) are listed in `skipped`.
 */
export function toTimm(src: StateDict, opts: { naming?: Naming | "auto"; file?: string } = {}): Converted {
  const file = opts.file ?? "state dict";
  const naming = !opts.naming || opts.naming === "auto" ? detectNaming(src.keys(), file) : opts.naming;
  const dict: StateDict = new Map();
  const skipped: Converted["skipped"] = [];
  const put = (name: string, t: HostTensor, from: string) => {
    if (dict.has(name)) throw new Error(`${file}: both '${from}' and another key map to '${name}'`);
    dict.set(name, t);
  };
  // q/k/v parts waiting to be fused, by target name: [q, k, v].
  const qkv = new Map<string, (HostTensor | undefined)[]>();
  const part = (target: string, idx: number, t: HostTensor) => {
    const slot = qkv.get(target) ?? [undefined, undefined, undefined];
    slot[idx] = t;
    qkv.set(target, slot);
  };

  for (const [key, t] of src) {
    switch (naming) {
      case "timm": {
        const k = key.replace(/^((module|backbone)\.)+/, "");
        put(k, t, key);
        break;
      }
      case "hf-vit": {
        const k = key.replace(/^vit\./, "");
        if (/^pooler\./.test(k)) skipped.push({ key, why: "HF pooler (not part of timm's ViT)" });
        else if (k === "embeddings.mask_token") skipped.push({ key, why: "mask token (masked image modelling only)" });
        else if (HF_VIT_QKV.test(k)) {
          const [, i, which, wb] = HF_VIT_QKV.exec(k)!;
          part(`blocks.${i}.attn.qkv.${wb}`, ["query", "key", "value"].indexOf(which), t);
        } else put(applyRules(HF_VIT_RULES, k) ?? key, t, key);
        break;
      }
      case "hf-clip": {
        if (key === "visual_projection.weight") {
          put("head.weight", t, key); // [E, D]: already Linear layout
          break;
        }
        if (!key.startsWith("vision_model.")) {
          skipped.push({ key, why: "not the vision tower" });
          break;
        }
        const k = key.slice("vision_model.".length);
        if (k === "embeddings.position_ids") skipped.push({ key, why: "non-persistent buffer" });
        else if (k === "embeddings.class_embedding") put("cls_token", reshaped(t, [1, 1, numel(t.shape)], key), key);
        else if (k === "embeddings.position_embedding.weight") put("pos_embed", reshaped(t, [1, ...t.shape], key), key);
        else if (HF_CLIP_QKV.test(k)) {
          const [, i, which, wb] = HF_CLIP_QKV.exec(k)!;
          part(`blocks.${i}.attn.qkv.${wb}`, ["q", "k", "v"].indexOf(which), t);
        } else put(applyRules(HF_CLIP_RULES, k) ?? key, t, key);
        break;
      }
      case "openai-clip": {
        if (!key.startsWith("visual.")) {
          skipped.push({ key, why: "not the vision tower" });
          break;
        }
        const k = key.slice("visual.".length);
        if (k === "class_embedding") put("cls_token", reshaped(t, [1, 1, numel(t.shape)], key), key);
        else if (k === "positional_embedding") put("pos_embed", reshaped(t, [1, ...t.shape], key), key);
        else if (k === "proj") put("head.weight", transpose2d(t, key), key); // x @ proj == x @ head.weight^T
        else put(applyRules(OPENAI_RULES, k) ?? key, t, key);
        break;
      }
    }
  }
  for (const [target, [q, k, v]] of qkv) {
    if (!q || !k || !v) {
      const missing = ["q", "k", "v"].filter((_, i) => ![q, k, v][i]).join(", ");
      throw new Error(`${file}: ${target} cannot be fused: ${missing} missing`);
    }
    put(target, catRows([q, k, v], target), target);
  }
  return { dict, naming, skipped };
}

/** What a state dict says about the architecture; `guessed` names fields not stored in weights. */
export interface InferredConfig {
  config: ViTConfig;
  guessed: (keyof ViTConfig)[];
}

/**
 * Infers a ViTConfig from a timm-named dict: width, depth, patch, channels, MLP ratio, biases,
 * class token, pre-norm, classes, and the image size from pos_embed (square grid). Heads are not
 * in the weights: the default assumes head width 64 (every standard ViT/CLIP); LN eps and the
 * activation follow the naming (CLIP: 1e-5, quick_gelu; HF ViT: 1e-12; timm: 1e-6) unless given.
 */
export function inferViTConfig(dict: StateDict, hints: Partial<ViTConfig> & { naming?: Naming } = {}): InferredConfig {
  const shape = (k: string): number[] => {
    const t = dict.get(k);
    if (!t) throw new Error(`cannot infer the ViT config: '${k}' is missing`);
    return t.shape;
  };
  const pw = shape("patch_embed.proj.weight");
  if (pw.length !== 4 || pw[2] !== pw[3]) throw new Error(`cannot infer the ViT config: patch_embed.proj.weight has shape [${pw.join(", ")}], expected [D,C,P,P]`);
  const [width, inChannels, patchSize] = pw;
  let depth = 0;
  while (dict.has(`blocks.${depth}.norm1.weight`)) depth++;
  if (depth === 0) throw new Error("cannot infer the ViT config: no blocks.0.norm1.weight");
  const classToken = dict.has("cls_token");
  const pe = shape("pos_embed");
  const grid = Math.round(Math.sqrt(pe[pe.length - 2] - (classToken ? 1 : 0)));
  if (grid * grid !== pe[pe.length - 2] - (classToken ? 1 : 0)) {
    throw new Error(`cannot infer the ViT config: pos_embed [${pe.join(", ")}] is not a square grid${classToken ? " plus the class token" : ""}`);
  }
  const fc1 = shape("blocks.0.mlp.fc1.weight");
  const clip = hints.naming === "hf-clip" || hints.naming === "openai-clip";
  const guessed: (keyof ViTConfig)[] = [];
  const guess = <K extends keyof ViTConfig>(k: K, v: ViTConfig[K]): ViTConfig[K] => {
    if (hints[k] !== undefined) return hints[k] as ViTConfig[K];
    guessed.push(k);
    return v;
  };
  const head = dict.get("head.weight");
  const config: ViTConfig = {
    imageSize: hints.imageSize ?? grid * patchSize,
    patchSize,
    inChannels,
    width,
    depth,
    heads: guess("heads", width % 64 === 0 ? width / 64 : 1),
    mlpRatio: fc1[0] / width,
    qkvBias: dict.has("blocks.0.attn.qkv.bias"),
    classToken,
    lnEps: guess("lnEps", clip ? 1e-5 : hints.naming === "hf-vit" ? 1e-12 : 1e-6),
    act: guess("act", clip ? "quick_gelu" : "gelu"),
    preNorm: dict.has("norm_pre.weight"),
    patchBias: dict.has("patch_embed.proj.bias"),
    numClasses: head ? head.shape[0] : 0,
    headBias: dict.has("head.bias"),
  };
  return { config, guessed };
}
