// Loading a whole CLIP model (both towers and logit_scale) from a weights file in OpenAI, Hugging
// Face or this library's names. Everything is checked before any tensor is created, and problems
// are reported together, by the file's own tensor names.
import * as tf from "@tensorflow/tfjs";
import { CLIP, CLIPConfig, clipParameterShapes } from "../model/clip";
import { ClipConverted, ClipHints, ClipNaming, CLIP_NAMINGS, inferCLIPConfig, sourceName, toCLIP } from "./clip-names";
import { readTensorFile } from "./load";

export interface ClipLoadOptions extends ClipHints {
  /** Default "auto": the file's `__metadata__.naming` when it is a CLIP naming, else detected from the keys. */
  naming?: ClipNaming | "auto";
  /** The architecture; default inferred from the weights (heads from the hints or width / 64). */
  config?: CLIPConfig;
}

export interface ClipLoad {
  model: CLIP;
  config: CLIPConfig;
  naming: ClipNaming;
  /** Tensors loaded. */
  loaded: number;
  skipped: ClipConverted["skipped"];
  metadata: Record<string, string>;
}

/** Reads a weights file and converts it to CLIP names. */
export async function readCLIPStateDict(file: string, naming: ClipNaming | "auto" = "auto"): Promise<ClipConverted & { metadata: Record<string, string> }> {
  const { tensors, metadata } = await readTensorFile(file);
  const declared = CLIP_NAMINGS.find((n) => n === metadata.naming);
  return { ...toCLIP(tensors, { naming: naming === "auto" ? declared ?? "auto" : naming, file }), metadata };
}

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

/** Throws one message listing every missing, mis-shaped and unexpected tensor, named as in the file. */
export function checkCLIPStateDict(conv: ClipConverted, config: CLIPConfig, file: string): void {
  const want = clipParameterShapes(config);
  const named = (ours: string) => {
    const theirs = conv.sources.get(ours) ?? sourceName(ours, conv.naming);
    return theirs && theirs !== ours ? `'${theirs}' (${ours})` : `'${ours}'`;
  };
  const problems: string[] = [];
  for (const [name, shape] of want) {
    const t = conv.dict.get(name);
    if (!t) problems.push(`missing ${named(name)}`);
    else if (!tf.util.arraysEqual(t.shape, shape)) problems.push(`${named(name)} has shape ${fmt(t.shape)}, expected ${fmt(shape)}`);
  }
  for (const name of conv.dict.keys()) if (!want.has(name)) problems.push(`unexpected ${named(name)}`);
  if (problems.length) {
    throw new Error(`${file}: cannot load as CLIP (${conv.naming} names; nothing was loaded):\n  ${problems.join("\n  ")}`);
  }
}

/** A CLIP model from a converted dict (checked first, see checkCLIPStateDict). */
export function clipFromStateDict(conv: ClipConverted, config: CLIPConfig, file = "state dict"): CLIP {
  checkCLIPStateDict(conv, config, file);
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const [name, t] of conv.dict) tensors.set(name, tf.tensor(t.data, t.shape, t.dtype));
    return CLIP.fromTensors(config, tensors);
  } finally {
    tf.dispose([...tensors.values()]); // the variables hold their own references
  }
}

/** Reads a CLIP weights file (any CLIP naming) into a new model. */
export async function loadCLIP(file: string, opts: ClipLoadOptions = {}): Promise<ClipLoad> {
  const conv = await readCLIPStateDict(file, opts.naming);
  const config = opts.config ?? inferCLIPConfig(conv.dict, { ...opts, naming: conv.naming }, file);
  const model = clipFromStateDict(conv, config, file);
  return { model, config, naming: conv.naming, loaded: conv.dict.size, skipped: conv.skipped, metadata: conv.metadata };
}
