// Saving and loading LoRA adapters as safetensors with peft's key names, so a file interoperates
// with peft: `base_model.model.<module>.lora_A.weight` [r,in] and `...lora_B.weight` [out,r].
//
// Namings (a CHOICE, recorded in the file's metadata):
//  - "hf" (default): module paths of Hugging Face `ViTForImageClassification`, the model peft
//    wraps for `facebook/dino-vitb16`: q/k/v are real modules there, so our slices of timm's
//    fused qkv map 1:1 (`vit.encoder.layer.{i}.attention.attention.query`), proj ->
//    `attention.output.dense`, fc1 -> `intermediate.dense`, fc2 -> `output.dense`, head ->
//    `classifier`. Files from a bare `ViTModel` (no `vit.` prefix) load too. Fused-qkv LoRA has no
//    HF module: use "timm".
//  - "timm": timm module paths (`blocks.{i}.attn.proj`, `head`); a q/k/v slice of the fused qkv
//    is named `blocks.{i}.attn.qkv.query` (timm has no such module: the suffix names the rows).
// The head, when included, is saved as peft saves `modules_to_save` (`base_model.model.classifier.weight`).
// Selective-LoRA scores are saved as `<module>.lora_score` [1] (no peft equivalent).
import * as tf from "@tensorflow/tfjs";
import { asFloat32, encodeSafetensors, F32Tensor, HostTensor, parseSafetensors, readSafetensors, StateDict, writeSafetensors } from "../weights/safetensors";
import type { LoraAdapter, LoraLayer } from "./lora";

export type AdapterNaming = "hf" | "timm";

export const PEFT_PREFIX = "base_model.model.";

/** Module path of a site (or of `head`) in a naming, without the peft prefix. */
export function moduleName(site: string, naming: AdapterNaming): string {
  if (naming === "timm") return site;
  if (site === "head") return "classifier";
  const m = /^blocks\.(\d+)\.(attn\.qkv\.(query|key|value)|attn\.proj|mlp\.fc1|mlp\.fc2)$/.exec(site);
  if (!m) throw new Error(`adapter site '${site}' has no Hugging Face ViT module (fused qkv?); save with naming "timm"`);
  const layer = `vit.encoder.layer.${m[1]}`;
  if (m[3]) return `${layer}.attention.attention.${m[3]}`;
  if (m[2] === "attn.proj") return `${layer}.attention.output.dense`;
  if (m[2] === "mlp.fc1") return `${layer}.intermediate.dense`;
  return `${layer}.output.dense`;
}

/** File keys of one layer's tensors. */
function layerKeys(l: LoraLayer, naming: AdapterNaming): { A: string; B: string; score: string } {
  const mod = PEFT_PREFIX + moduleName(l.site.name, naming);
  return { A: `${mod}.lora_A.weight`, B: `${mod}.lora_B.weight`, score: `${mod}.lora_score` };
}

export interface SaveAdapterOptions {
  naming?: AdapterNaming;
  /** Also save the head (peft `modules_to_save`); default false. */
  includeHead?: boolean;
}

async function hostTensor(v: tf.Tensor): Promise<F32Tensor> {
  return { shape: [...v.shape], data: (await v.data()) as Float32Array };
}

function scoreOf(l: LoraLayer): tf.Variable | undefined {
  return (l as LoraLayer & { score?: tf.Variable }).score;
}

/** peft `adapter_config.json` fields for this adapter. */
export function peftConfig(adapter: LoraAdapter, naming: AdapterNaming = "hf"): Record<string, unknown> {
  const c = adapter.config;
  const modules = [...new Set(adapter.layers.map((l) => moduleName(l.site.name, naming).split(".").pop() as string))];
  return {
    peft_type: "LORA",
    r: c.rank,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    use_rslora: c.rslora,
    bias: "none",
    target_modules: modules,
    layers_to_transform: c.blocks ? [...c.blocks] : null,
    naming,
  };
}

/** The adapter's tensors under file keys (and the head when asked), read back from the backend. */
export async function adapterStateDict(adapter: LoraAdapter, opts: SaveAdapterOptions = {}): Promise<Map<string, F32Tensor>> {
  const naming = opts.naming ?? "hf";
  const out = new Map<string, F32Tensor>();
  for (const l of adapter.layers) {
    const k = layerKeys(l, naming);
    out.set(k.A, await hostTensor(l.A));
    out.set(k.B, await hostTensor(l.B));
    const s = scoreOf(l);
    if (s) out.set(k.score, { shape: [1], data: Float32Array.from(await s.data()) });
  }
  if (opts.includeHead) {
    for (const p of ["weight", "bias"]) {
      const v = adapter.model.params.get(`head.${p}`);
      if (v) out.set(`${PEFT_PREFIX}${moduleName("head", naming)}.${p}`, await hostTensor(v));
    }
  }
  return out;
}

/** Canonical form of a file key: peft prefix and HF's `vit.` wrapper removed. */
function canonical(key: string): string {
  const k = key.startsWith(PEFT_PREFIX) ? key.slice(PEFT_PREFIX.length) : key;
  return k.startsWith("vit.") ? k.slice(4) : k;
}

export interface LoadAdapterOptions {
  /** Default: detected from the keys. */
  naming?: AdapterNaming;
  /** Load the head when the file has one; default true. */
  head?: boolean;
}

function detectNaming(adapter: LoraAdapter, keys: Set<string>): AdapterNaming {
  for (const naming of ["hf", "timm"] as const) {
    try {
      if (adapter.layers.every((l) => keys.has(canonical(layerKeys(l, naming).A)))) return naming;
    } catch {
      // a site without an HF module: not this naming
    }
  }
  const sample = adapter.layers.length ? layerKeys(adapter.layers[0], "timm").A : "";
  throw new Error(`adapter file matches neither naming: expected e.g. '${sample}' (timm) or its Hugging Face ViT module name`);
}

/** Copies file tensors into the adapter (and head); every adapter key must be present with its exact shape. */
export function loadAdapterStateDict(adapter: LoraAdapter, dict: StateDict, opts: LoadAdapterOptions = {}): void {
  const byCanon = new Map<string, string>();
  for (const k of dict.keys()) byCanon.set(canonical(k), k);
  const naming = opts.naming ?? detectNaming(adapter, new Set(byCanon.keys()));
  const assignments: [tf.Variable, string][] = [];
  const used = new Set<string>();
  const want = (key: string, v: tf.Variable | undefined, optional = false) => {
    if (!v) return;
    const fileKey = byCanon.get(canonical(key));
    if (fileKey === undefined) {
      if (optional) return;
      throw new Error(`adapter file is missing '${key}'`);
    }
    const t = dict.get(fileKey);
    const shape = v.rank === 0 ? [1] : v.shape;
    if (!t || !tf.util.arraysEqual(t.shape, shape)) throw new Error(`adapter tensor '${fileKey}' has shape [${t?.shape}], expected [${shape}]`);
    assignments.push([v, fileKey]);
    used.add(fileKey);
  };
  for (const l of adapter.layers) {
    const k = layerKeys(l, naming);
    want(k.A, l.A);
    want(k.B, l.B);
    want(k.score, scoreOf(l));
  }
  if (opts.head ?? true) {
    for (const p of ["weight", "bias"]) want(`${PEFT_PREFIX}${moduleName("head", naming)}.${p}`, adapter.model.params.get(`head.${p}`), true);
  }
  const unexpected = [...dict.keys()].filter((k) => !used.has(k) && /lora_/.test(k));
  if (unexpected.length) throw new Error(`adapter file has LoRA tensors this adapter lacks: ${unexpected.slice(0, 5).join(", ")}${unexpected.length > 5 ? ", ..." : ""}`);
  if (adapter.layers.some((l) => l.merged)) throw new Error("unmerge the adapter before loading weights into it");
  for (const [v, key] of assignments) {
    const t = dict.get(key) as HostTensor;
    tf.tidy(() => v.assign(tf.tensor(asFloat32(t), v.shape, "float32")));
  }
}

function metadata(adapter: LoraAdapter, naming: AdapterNaming): Record<string, string> {
  return { format: "pt", peft_config: JSON.stringify(peftConfig(adapter, naming)) };
}

/** The adapter as safetensors bytes. */
export async function encodeAdapter(adapter: LoraAdapter, opts: SaveAdapterOptions = {}): Promise<Buffer> {
  return encodeSafetensors(await adapterStateDict(adapter, opts), metadata(adapter, opts.naming ?? "hf"));
}

export function decodeAdapterInto(adapter: LoraAdapter, bytes: Uint8Array, opts: LoadAdapterOptions = {}): void {
  loadAdapterStateDict(adapter, parseSafetensors(bytes).tensors, opts);
}

/** Writes `file` (e.g. `adapter_model.safetensors`) atomically. */
export async function saveAdapter(file: string, adapter: LoraAdapter, opts: SaveAdapterOptions = {}): Promise<void> {
  await writeSafetensors(file, await adapterStateDict(adapter, opts), metadata(adapter, opts.naming ?? "hf"));
}

export async function loadAdapter(file: string, adapter: LoraAdapter, opts: LoadAdapterOptions = {}): Promise<void> {
  const { tensors } = await readSafetensors(file);
  loadAdapterStateDict(adapter, tensors, opts);
}

