// Loading a state dict into a model's named variables, and saving variables to safetensors.
// Loading checks everything first and assigns only when the whole load is acceptable, so a
// failed load leaves the model untouched.
import { promises as fsp } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { Converted, Naming, NAMINGS, toTimm } from "./names";
import { resamplePosEmbed } from "./posembed";
import { readPth } from "./pth";
import { F32Tensor, HostTensor, readSafetensors, StateDict, writeSafetensors } from "./safetensors";

export interface LoadOptions {
  /** Names (exact) or patterns whose problems (missing, unexpected, shape mismatch) are tolerated; e.g. [/^head\./]. */
  ignore?: (string | RegExp)[];
  /** Default true: missing or unexpected keys are errors. false tolerates them (shape mismatches still fail), like PyTorch. */
  strict?: boolean;
  /** Resize `pos_embed` (bicubic, timm's antialias) when only its grid differs. Default true. */
  resizePosEmbed?: boolean;
  /** Named in error messages. */
  file?: string;
}

export interface Mismatch {
  name: string;
  expected: number[];
  got: number[];
}

export interface LoadReport {
  /** Variables assigned from the dict. */
  loaded: string[];
  /** Model variables the dict lacks (kept as initialised). */
  missing: string[];
  /** Dict keys the model has no variable for. */
  unexpected: string[];
  /** Names whose shapes differ (not assigned). */
  mismatched: Mismatch[];
  /** Names resized to fit (pos_embed). */
  resized: string[];
}

const matches = (name: string, pats: readonly (string | RegExp)[]) => pats.some((p) => (typeof p === "string" ? p === name : p.test(name)));
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

/**
 * Copies `dict` (timm names, PyTorch layouts) into `vars`. Throws one message listing every
 * problem not covered by `ignore` (see LoadOptions.strict); otherwise assigns and reports.
 */
export function loadStateDict(vars: Map<string, tf.Variable>, dict: StateDict, opts: LoadOptions = {}): LoadReport {
  const ignore = opts.ignore ?? [];
  const strict = opts.strict ?? true;
  const report: LoadReport = { loaded: [], missing: [], unexpected: [], mismatched: [], resized: [] };
  const assign: [string, tf.Variable, HostTensor][] = [];
  const numPrefix = vars.has("cls_token") ? 1 : 0;
  for (const [name, v] of vars) {
    let t = dict.get(name);
    if (!t) {
      report.missing.push(name);
      continue;
    }
    if (!sameShape(t.shape, v.shape) && name === "pos_embed" && (opts.resizePosEmbed ?? true) && t.shape.length === 3 && v.shape.length === 3 && t.shape[2] === v.shape[2]) {
      const g = Math.round(Math.sqrt(v.shape[1] - numPrefix));
      if (g * g === v.shape[1] - numPrefix) {
        try {
          t = resamplePosEmbed(t, [g, g], { numPrefix });
          report.resized.push(name);
        } catch {
          /* not a square grid: reported as a mismatch below */
        }
      }
    }
    if (!sameShape(t.shape, v.shape)) report.mismatched.push({ name, expected: [...v.shape], got: [...t.shape] });
    else assign.push([name, v, t]);
  }
  for (const name of dict.keys()) if (!vars.has(name)) report.unexpected.push(name);

  const problems: string[] = [];
  const mis = report.mismatched.filter((m) => !matches(m.name, ignore));
  if (mis.length) problems.push(`shape mismatch: ${mis.map((m) => `${m.name} model ${fmt(m.expected)} vs file ${fmt(m.got)}`).join("; ")}`);
  if (strict) {
    const missing = report.missing.filter((n) => !matches(n, ignore));
    const unexpected = report.unexpected.filter((n) => !matches(n, ignore));
    if (missing.length) problems.push(`missing keys (${missing.length}): ${missing.join(", ")}`);
    if (unexpected.length) problems.push(`unexpected keys (${unexpected.length}): ${unexpected.join(", ")}`);
  }
  if (problems.length) {
    throw new Error(`${opts.file ?? "state dict"}: cannot load into the model (nothing was assigned):\n  ${problems.join("\n  ")}\n` +
      `  (pass ignore: [...] for keys to leave as initialised, e.g. [/^head\\./] for a new head)`);
  }
  tf.tidy(() => {
    for (const [name, v, t] of assign) {
      const data = t.dtype === "float32" && v.dtype === "float32" ? t.data : v.dtype === "int32" ? Int32Array.from(t.data) : Float32Array.from(t.data);
      v.assign(tf.tensor(data, v.shape, v.dtype));
      report.loaded.push(name);
    }
  });
  return report;
}

export interface FileLoadOptions extends LoadOptions {
  /** Naming of the file; "auto" (default): the file's `__metadata__.naming` if known, else detected from the keys. */
  naming?: Naming | "auto";
}

/**
 * Reads a safetensors file (or a torch zip checkpoint, parsed without running its pickle) and
 * converts it to timm names. Naming "auto" (default): the file's
 * `__metadata__.naming` when it is one we know, else detected from the keys.
 */
export async function readStateDict(file: string, naming: Naming | "auto" = "auto"): Promise<Converted & { metadata: Record<string, string> }> {
  const { tensors, metadata } = await readTensorFile(file);
  const declared = NAMINGS.find((n) => n === metadata.naming);
  return { ...toTimm(tensors, { naming: naming === "auto" ? declared ?? "auto" : naming, file }), metadata };
}

/** The tensors of a safetensors file or a torch zip checkpoint (parsed without running its pickle), under the file's own names. */
export async function readTensorFile(file: string): Promise<{ tensors: StateDict; metadata: Record<string, string> }> {
  return (await isZip(file)) ? { tensors: await readPth(file), metadata: {} } : readSafetensors(file);
}

/** A torch >= 1.6 checkpoint is a zip: it starts with "PK\x03\x04". */
async function isZip(file: string): Promise<boolean> {
  const fh = await fsp.open(file, "r").catch(() => undefined);
  if (!fh) return false; // the safetensors reader reports the open error
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return bytesRead === 4 && b.readUInt32LE(0) === 0x04034b50;
  } finally {
    await fh.close();
  }
}

/** Reads a weights file (any supported naming) and loads it (see loadStateDict). */
export async function loadWeights(
  vars: Map<string, tf.Variable>,
  file: string,
  opts: FileLoadOptions = {},
): Promise<LoadReport & { naming: Naming; skipped: Converted["skipped"]; metadata: Record<string, string> }> {
  const conv = await readStateDict(file, opts.naming);
  const report = loadStateDict(vars, conv.dict, { ...opts, file });
  return { ...report, naming: conv.naming, skipped: conv.skipped, metadata: conv.metadata };
}

/** Downloads variables to host float32 tensors (async, so it works on webgpu too). */
export async function toHost(vars: Map<string, tf.Tensor> | Iterable<[string, tf.Tensor]>): Promise<Map<string, F32Tensor>> {
  const out = new Map<string, F32Tensor>();
  for (const [name, v] of vars) {
    const data = await v.data();
    out.set(name, { shape: [...v.shape], data: data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>) });
  }
  return out;
}

/** The trainable variables of a map (e.g. LoRA factors and a new head), by name. */
export function trainableOnly(vars: Map<string, tf.Variable>): Map<string, tf.Variable> {
  return new Map([...vars].filter(([, v]) => v.trainable));
}

/**
 * Saves variables (all of `vars`, or those `filter` keeps) as F32 safetensors, atomically.
 * Metadata gets format=pt (what transformers/timm expect) and naming=timm unless given.
 */
export async function saveStateDict(
  file: string,
  vars: Map<string, tf.Tensor>,
  metadata: Record<string, string> = {},
  opts: { filter?: (name: string, v: tf.Tensor) => boolean } = {},
): Promise<{ saved: string[] }> {
  const chosen = [...vars].filter(([n, v]) => !opts.filter || opts.filter(n, v));
  const host = await toHost(chosen);
  await writeSafetensors(file, host, { format: "pt", naming: "timm", ...metadata });
  return { saved: [...host.keys()] };
}
