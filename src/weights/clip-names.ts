// Whole-CLIP name maps: OpenAI CLIP and Hugging Face CLIPModel state dicts to the CLIP names of
// src/model/clip.ts (`visual.<timm>`, `text.<text tower>`, `logit_scale`), and the config
// they imply. The vision tower goes through the ViT maps of names.ts; the text tower and the
// top-level tensors through the table below, which also gives each CLIP name's source name
// for error messages.
//   openai-clip  token_embedding.weight, positional_embedding, transformer.resblocks.i.*,
//                ln_final.*, text_projection [W,E], logit_scale, visual.*
//   hf-clip      text_model.embeddings.*, text_model.encoder.layers.i.{self_attn.{q,k,v,out}_proj,
//                layer_norm1/2, mlp.fc1/fc2}, text_model.final_layer_norm.*, text_projection.weight
//                [E,W] (transposed), logit_scale, vision_model.*, visual_projection.weight
//   clip         this library's own names (what saveStateDict writes from CLIP.namedVariables())
import type { CLIPConfig } from "../model/clip";
import { clipVisionConfig } from "../model/clip";
import { textConfig } from "../model/clip-text";
import { catRows, detectNaming, inferViTConfig, toTimm, transpose2d } from "./names";
import { HostTensor, numel, StateDict } from "./safetensors";

export type ClipNaming = "openai-clip" | "hf-clip" | "clip";
export const CLIP_NAMINGS: readonly ClipNaming[] = ["openai-clip", "hf-clip", "clip"];

export interface ClipConverted {
  /** Tensors under CLIP names (unknown keys keep their own name, so a loader reports them). */
  dict: StateDict;
  naming: ClipNaming;
  /** Source keys left out on purpose, with why (buffers, JIT attributes). */
  skipped: { key: string; why: string }[];
  /** CLIP name -> the source key it came from (for error messages). */
  sources: Map<string, string>;
}

/** Text tower and top-level tensors: [CLIP name, source name]; {i} a block index, {p} weight|bias. */
const TEXT_NAMES: Record<"openai-clip" | "hf-clip", [string, string][]> = {
  "openai-clip": [
    ["text.token_embedding.weight", "token_embedding.weight"],
    ["text.positional_embedding", "positional_embedding"],
    ["text.blocks.{i}.norm1.{p}", "transformer.resblocks.{i}.ln_1.{p}"],
    ["text.blocks.{i}.attn.qkv.{p}", "transformer.resblocks.{i}.attn.in_proj_{p}"],
    ["text.blocks.{i}.attn.proj.{p}", "transformer.resblocks.{i}.attn.out_proj.{p}"],
    ["text.blocks.{i}.norm2.{p}", "transformer.resblocks.{i}.ln_2.{p}"],
    ["text.blocks.{i}.mlp.fc1.{p}", "transformer.resblocks.{i}.mlp.c_fc.{p}"],
    ["text.blocks.{i}.mlp.fc2.{p}", "transformer.resblocks.{i}.mlp.c_proj.{p}"],
    ["text.ln_final.{p}", "ln_final.{p}"],
    ["text.text_projection", "text_projection"],
    ["logit_scale", "logit_scale"],
  ],
  "hf-clip": [
    ["text.token_embedding.weight", "text_model.embeddings.token_embedding.weight"],
    ["text.positional_embedding", "text_model.embeddings.position_embedding.weight"],
    ["text.blocks.{i}.norm1.{p}", "text_model.encoder.layers.{i}.layer_norm1.{p}"],
    ["text.blocks.{i}.attn.qkv.{p}", "text_model.encoder.layers.{i}.self_attn.{q,k,v}_proj.{p}"],
    ["text.blocks.{i}.attn.proj.{p}", "text_model.encoder.layers.{i}.self_attn.out_proj.{p}"],
    ["text.blocks.{i}.norm2.{p}", "text_model.encoder.layers.{i}.layer_norm2.{p}"],
    ["text.blocks.{i}.mlp.fc1.{p}", "text_model.encoder.layers.{i}.mlp.fc1.{p}"],
    ["text.blocks.{i}.mlp.fc2.{p}", "text_model.encoder.layers.{i}.mlp.fc2.{p}"],
    ["text.ln_final.{p}", "text_model.final_layer_norm.{p}"],
    ["text.text_projection", "text_projection.weight"],
    ["logit_scale", "logit_scale"],
  ],
};

/** Keys that are not parameters, by naming. */
const NOT_PARAMETERS: Record<"openai-clip" | "hf-clip", [RegExp, string][]> = {
  // The reference's build_model deletes these JIT-archive attributes before loading.
  "openai-clip": [[/^(input_resolution|context_length|vocab_size)$/, "model attribute, not a parameter (deleted by the reference's build_model)"]],
  "hf-clip": [[/^(text_model|vision_model)\.embeddings\.position_ids$/, "non-persistent buffer"]],
};

const escape = (s: string) => s.replace(/[.*+?^$()|[\]\\]/g, "\\$&");

/** A template as a regex with groups for {i} and {p} (and q|k|v for {q,k,v}). */
function templateRegex(t: string): RegExp {
  return new RegExp(`^${escape(t).replace("{q,k,v}", "(q|k|v)").replace("{i}", "(\\d+)").replace("{p}", "(weight|bias)")}$`);
}

const fill = (t: string, i?: string, p?: string, qkv?: string) =>
  t.replace("{i}", i ?? "").replace("{p}", p ?? "").replace("{q,k,v}", qkv ?? "{q,k,v}");

/** The source key a CLIP name is read from in a naming (q/k/v parts shown as `{q,k,v}`), when it is a text or top-level tensor. */
export function sourceName(clipName: string, naming: ClipNaming): string | undefined {
  if (naming === "clip") return clipName;
  for (const [ours, theirs] of TEXT_NAMES[naming]) {
    const m = templateRegex(ours).exec(clipName);
    if (m) return fill(theirs, ...(ours.includes("{i}") ? [m[1], m[2]] : [undefined, m[1]]));
  }
  return undefined;
}

/** Guesses a whole-CLIP naming from the keys; throws when the file is not a CLIP model with both towers. */
export function detectClipNaming(keys: Iterable<string>, file = "state dict"): ClipNaming {
  const ks = [...keys];
  if (ks.some((k) => /^(visual|text)\.blocks\.\d+\./.test(k))) return "clip";
  const naming = detectNaming(ks, file);
  if (naming !== "openai-clip" && naming !== "hf-clip") throw new Error(`${file}: has ${naming} names, not a CLIP model (no text tower)`);
  return naming;
}

/** Converts a whole CLIP state dict to the CLIP names and layouts. */
export function toCLIP(src: StateDict, opts: { naming?: ClipNaming | "auto"; file?: string } = {}): ClipConverted {
  const file = opts.file ?? "state dict";
  const naming = !opts.naming || opts.naming === "auto" ? detectClipNaming(src.keys(), file) : opts.naming;
  const dict: StateDict = new Map();
  const sources = new Map<string, string>();
  const skipped: ClipConverted["skipped"] = [];
  const put = (name: string, t: HostTensor, from: string) => {
    if (dict.has(name)) throw new Error(`${file}: both '${from}' and '${sources.get(name)}' map to '${name}'`);
    dict.set(name, t);
    sources.set(name, from);
  };
  if (naming === "clip") {
    for (const [k, t] of src) put(k, t, k);
    return { dict, naming, skipped, sources };
  }

  const isVision = naming === "openai-clip" ? (k: string) => k.startsWith("visual.") : (k: string) => k.startsWith("vision_model.") || k === "visual_projection.weight";
  const vision: StateDict = new Map([...src].filter(([k]) => isVision(k)));
  const vis = toTimm(vision, { naming, file });
  for (const [k, t] of vis.dict) put(`visual.${k}`, t, k);
  skipped.push(...vis.skipped);

  const rules = TEXT_NAMES[naming].map(([ours, theirs]) => ({ ours, theirs, re: templateRegex(theirs) }));
  const qkv = new Map<string, (HostTensor | undefined)[]>(); // HF q/k/v parts by CLIP name
  for (const [key, t] of src) {
    if (isVision(key)) continue;
    const why = NOT_PARAMETERS[naming].find(([re]) => re.test(key));
    if (why) {
      skipped.push({ key, why: why[1] });
      continue;
    }
    const rule = rules.find((r) => r.re.test(key));
    if (!rule) {
      put(key, t, key); // unknown: reported by the loader as unexpected
      continue;
    }
    const m = rule.re.exec(key)!;
    const g = m.slice(1);
    if (rule.theirs.includes("{q,k,v}")) {
      const [i, which, p] = g; // groups in template order: {i}, {q,k,v}, {p}
      const name = fill(rule.ours, i, p);
      const slot = qkv.get(name) ?? [undefined, undefined, undefined];
      slot["qkv".indexOf(which)] = t;
      qkv.set(name, slot);
      continue;
    }
    const name = rule.ours.includes("{i}") ? fill(rule.ours, g[0], g[1]) : fill(rule.ours, undefined, g[0]);
    if (name === "text.text_projection" && naming === "hf-clip") put(name, transpose2d(t, key), key); // [E,W] -> [W,E]
    else if (name === "logit_scale") {
      if (numel(t.shape) !== 1) throw new Error(`${file}: '${key}' has shape [${t.shape.join(", ")}], expected a scalar`);
      put(name, { ...t, shape: [] } as HostTensor, key);
    } else put(name, t, key);
  }
  for (const [name, [q, k, v]] of qkv) {
    const from = sourceName(name, naming)!;
    if (!q || !k || !v) throw new Error(`${file}: ${from} cannot be fused into ${name}: ${["q", "k", "v"].filter((_, j) => ![q, k, v][j]).join(", ")} missing`);
    put(name, catRows([q, k, v], from), from);
  }
  return { dict, naming, skipped, sources };
}

/** Architecture fields that are not in the weights and must be given when the reference's rule does not apply. */
export interface ClipHints {
  /** Vision heads; default width / 64 (the reference). */
  visionHeads?: number;
  /** Text heads; default width / 64 (the reference's build_model). */
  textHeads?: number;
}

/**
 * The CLIPConfig a converted dict implies (as the reference's build_model infers it): widths,
 * depths, patch, resolution, context, vocabulary, MLP ratio and embedding width from shapes;
 * heads = width / 64 unless given (an error when width is not a multiple of 64).
 */
export function inferCLIPConfig(dict: StateDict, hints: ClipHints & { naming?: ClipNaming } = {}, file = "state dict"): CLIPConfig {
  const named = (k: string) => {
    const theirs = hints.naming ? sourceName(k, hints.naming) : undefined;
    return theirs && theirs !== k ? `'${theirs}' (${k})` : `'${k}'`;
  };
  const shape = (k: string): number[] => {
    const t = dict.get(k);
    if (!t) throw new Error(`${file}: cannot infer the CLIP config: ${named(k)} is missing`);
    return t.shape;
  };
  const heads = (width: number, given: number | undefined, what: string): number => {
    if (given !== undefined) return given;
    if (width % 64 !== 0) throw new Error(`${file}: the ${what} heads are not in the weights and width ${width} is not a multiple of 64 (the reference's heads = width / 64); give them`);
    return width / 64;
  };
  const vision: StateDict = new Map([...dict].filter(([k]) => k.startsWith("visual.")).map(([k, v]) => [k.slice("visual.".length), v]));
  const v = (() => {
    try {
      return inferViTConfig(vision, { naming: "openai-clip" }).config;
    } catch (e) {
      throw new Error(`${file}: vision tower: ${e instanceof Error ? e.message : String(e)}`);
    }
  })();
  if (!vision.has("head.weight")) throw new Error(`${file}: cannot infer the CLIP config: the visual projection ('visual.head.weight') is missing`);
  const [V, W] = shape("text.token_embedding.weight");
  const [L] = shape("text.positional_embedding");
  const [W2, E] = shape("text.text_projection");
  // Depth from the highest block index, so a block with a tensor missing is reported as such.
  const depth = Math.max(0, ...[...dict.keys()].map((k) => /^text\.blocks\.(\d+)\./.exec(k)).map((m) => (m ? Number(m[1]) + 1 : 0)));
  if (depth === 0) throw new Error(`${file}: cannot infer the CLIP config: no text blocks (${named("text.blocks.0.norm1.weight")} is missing)`);
  if (W2 !== W) throw new Error(`${file}: ${named("text.text_projection")} has ${W2} rows but ${named("text.token_embedding.weight")} is ${W} wide`);
  if (E !== v.numClasses) throw new Error(`${file}: the visual projection gives ${v.numClasses} features but ${named("text.text_projection")} ${E}`);
  const [H] = shape("text.blocks.0.mlp.fc1.weight");
  return {
    embedDim: E,
    vision: clipVisionConfig(v.imageSize, v.patchSize, v.width, v.depth, E, heads(v.width, hints.visionHeads, "vision")),
    text: textConfig({ contextLength: L, vocabSize: V, width: W, depth, heads: heads(W, hints.textHeads, "text"), mlpRatio: H / W, embedDim: E }),
  };
}
