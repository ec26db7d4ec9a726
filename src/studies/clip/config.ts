// The run config of a CLIP fine-tuning study (Paper B's Figure 1 path): a pretrained CLIP, a
// fine-tuning set with its class names and prompt templates, a strategy (zero-shot = no training,
// full = FLYP, LoRA and selective LoRA on the image tower), and the sets it is evaluated on:
// in-distribution, out-of-distribution (the same classes, other images) and zero-shot retention
// (other classification tasks, each with its own class names).
import type { LoraSpec, SelectiveLoraSpec } from "../../adapters/spec";
import { CLIPArgs, CLIPPreset, CLIP_PRESETS } from "../../model/clip";
import type { DatasetSpec } from "../../data/datasets";
import type { TrainConfig } from "../../training/trainer";
import type { DataConfig, ExperimentConfig } from "../config";
import { Check, ConfigError, anyOf, arrayOf, bool, fields, int, nonNegInt, num, oneOf, opt, posInt, positive, req, str, tagged } from "../schema";
import { dataCheck, datasetCheck, trainCheck } from "../config";

/** Class names in the prompts: the reference's ImageNet names, the dataset's own, or a list. */
export type ClassNames = "imagenet" | "dataset" | string[];
/** Prompt templates: the reference's 80 ImageNet templates, "a photo of a {}.", or a list. */
export type Templates = "imagenet" | "default" | string[];

export interface EvalSet {
  label: string;
  dataset: DatasetSpec;
  /** Zero-shot sets: their class names (default "dataset"); OOD sets use the fine-tuning set's. */
  classnames?: ClassNames;
  templates?: Templates;
}

export type ClipStrategy = { kind: "zero-shot" } | { kind: "full" } | Omit<LoraSpec, "freshHead"> | Omit<SelectiveLoraSpec, "freshHead">;

export interface ClipExperimentConfig {
  kind: "clip";
  name: string;
  seed: number;
  model: {
    /** The architecture (a preset or the reference's constructor arguments): plans cost it, loading checks it. */
    arch: CLIPPreset | CLIPArgs;
    /** Weights (OpenAI or Hugging Face CLIP names; "$STUDY_CLIP_WEIGHTS" for the user's file). */
    init: string;
    /** The BPE merges file (default: the tokenizer's lookup). */
    bpe?: string;
  };
  data: DataConfig;
  prompts: { classnames: ClassNames; templates: Templates };
  /** LoRA kinds adapt the image tower's linear layers; full fine-tuning trains both towers and the logit scale. */
  strategy: ClipStrategy;
  train: TrainConfig;
  eval: { ood: EvalSet[]; zeroShot: EvalSet[] };
}

/** Any run config of the studies: a ViT experiment, or a CLIP one (told apart by `kind`). */
export type StudyConfig = ExperimentConfig | ClipExperimentConfig;

export const isClip = (c: StudyConfig | unknown): c is ClipExperimentConfig => !!c && typeof c === "object" && (c as { kind?: unknown }).kind === "clip";

const clipArgs = fields<CLIPArgs>({
  embed_dim: req(posInt), image_resolution: req(posInt), vision_layers: req(posInt), vision_width: req(posInt), vision_patch_size: req(posInt),
  context_length: req(posInt), vocab_size: req(posInt), transformer_width: req(posInt), transformer_heads: req(posInt), transformer_layers: req(posInt),
});
const names: Check = anyOf(oneOf("imagenet", "dataset"), arrayOf(str, { nonEmpty: true }));
const templates: Check = anyOf(oneOf("imagenet", "default"), arrayOf(str, { nonEmpty: true }));
const evalSet = fields<EvalSet>({ label: req(str), dataset: req(datasetCheck), classnames: opt(names), templates: opt(templates) });
const loraFields = {
  kind: req(str), rank: req(posInt), alpha: opt(positive), targets: opt(arrayOf(str, { nonEmpty: true })), dropout: opt(num),
  blocks: opt(arrayOf(nonNegInt)), rslora: opt(bool), seed: opt(int),
};
const strategy = tagged("kind", {
  "zero-shot": fields<{ kind: "zero-shot" }>({ kind: req(str) }),
  full: fields<{ kind: "full" }>({ kind: req(str) }),
  lora: fields<Omit<LoraSpec, "freshHead">>(loraFields),
  "selective-lora": fields<Omit<SelectiveLoraSpec, "freshHead">>({ ...loraFields, tau: opt(num), scoreInit: opt(num), lambda: opt(num), penaltyStartStep: opt(nonNegInt) }),
});

const clip: Check = fields<ClipExperimentConfig>({
  kind: req(oneOf("clip")),
  name: req(str),
  seed: req(int),
  model: req(fields<ClipExperimentConfig["model"]>({ arch: req(anyOf(oneOf(...Object.keys(CLIP_PRESETS)), clipArgs)), init: req(str), bpe: opt(str) })),
  data: req(dataCheck),
  prompts: req(fields<ClipExperimentConfig["prompts"]>({ classnames: req(names), templates: req(templates) })),
  strategy: req(strategy),
  train: req(trainCheck),
  eval: req(fields<ClipExperimentConfig["eval"]>({ ood: req(arrayOf(evalSet)), zeroShot: req(arrayOf(evalSet)) })),
});

export function validateClipConfig(config: unknown, what = "config"): ClipExperimentConfig {
  try {
    clip(config, "");
    const c = config as ClipExperimentConfig;
    if (c.strategy.kind === "zero-shot" && c.train.steps !== 0) throw new ConfigError(`strategy.kind: 'zero-shot' trains nothing, so train.steps must be 0 (got ${c.train.steps})`);
    return c;
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${what}: ${e.message}`);
    throw e;
  }
}
