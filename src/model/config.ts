// ViT architecture as one typed config, with the presets the studies use.

export type Activation = "gelu" | "quick_gelu";

export interface ViTConfig {
  /** Square input resolution in pixels. */
  imageSize: number;
  patchSize: number;
  inChannels: number;
  /** Embedding width D. */
  width: number;
  depth: number;
  heads: number;
  /** MLP hidden width = mlpRatio * width. */
  mlpRatio: number;
  qkvBias: boolean;
  /** Prepend a learned CLS token (the feature k-NN evaluation uses). */
  classToken: boolean;
  lnEps: number;
  /** "gelu" is exact (erf), as timm/DINO/HF ViT; "quick_gelu" is x*sigmoid(1.702x), as OpenAI CLIP. */
  act: Activation;
  /** LayerNorm before the blocks (CLIP's `ln_pre`, timm `norm_pre`). */
  preNorm: boolean;
  /** Bias on the patch projection (CLIP has none). */
  patchBias: boolean;
  /** Classes of the linear head on the CLS feature; 0 = no head. */
  numClasses: number;
  /** Bias on the head (a CLIP projection has none). */
  headBias: boolean;
}

const DEFAULTS: Omit<ViTConfig, "imageSize" | "patchSize" | "width" | "depth" | "heads"> = {
  inChannels: 3,
  mlpRatio: 4,
  qkvBias: true,
  classToken: true,
  lnEps: 1e-6,
  act: "gelu",
  preNorm: false,
  patchBias: true,
  numClasses: 1000,
  headBias: true,
};

export const VIT_PRESETS = {
  "vit-tiny-16": { imageSize: 224, patchSize: 16, width: 192, depth: 12, heads: 3 },
  "vit-small-16": { imageSize: 224, patchSize: 16, width: 384, depth: 12, heads: 6 },
  "vit-base-16": { imageSize: 224, patchSize: 16, width: 768, depth: 12, heads: 12 },
  // CIFAR-native: 32 px, patch 4 -> 64 tokens + CLS.
  "vit-cifar-micro": { imageSize: 32, patchSize: 4, width: 64, depth: 4, heads: 2 },
  "vit-cifar-tiny": { imageSize: 32, patchSize: 4, width: 128, depth: 6, heads: 4 },
  "vit-cifar-small": { imageSize: 32, patchSize: 4, width: 192, depth: 8, heads: 3 },
} as const;

export type VitPresetName = keyof typeof VIT_PRESETS;

export function isVitPreset(name: string): name is VitPresetName {
  return Object.prototype.hasOwnProperty.call(VIT_PRESETS, name);
}

/** A full config from a preset name or partial config, with overrides; validated. */
export function vitConfig(base: VitPresetName | Partial<ViTConfig>, overrides: Partial<ViTConfig> = {}): ViTConfig {
  let from: Partial<ViTConfig>;
  if (typeof base === "string") {
    if (!isVitPreset(base)) throw new Error(`unknown ViT preset '${base}'; known: ${Object.keys(VIT_PRESETS).join(", ")}`);
    from = VIT_PRESETS[base];
  } else from = base;
  const cfg = { ...DEFAULTS, ...from, ...overrides } as ViTConfig;
  validateConfig(cfg);
  return cfg;
}

export function validateConfig(c: ViTConfig): void {
  const need = ["imageSize", "patchSize", "inChannels", "width", "depth", "heads", "mlpRatio"] as const;
  for (const k of need) {
    if (!(Number.isFinite(c[k]) && c[k] > 0)) throw new Error(`ViT config: ${k} must be a positive number, got ${c[k]}`);
  }
  if (c.imageSize % c.patchSize !== 0) throw new Error(`ViT config: imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
  if (c.width % c.heads !== 0) throw new Error(`ViT config: width ${c.width} is not divisible by heads ${c.heads}`);
  if (!Number.isInteger(c.numClasses) || c.numClasses < 0) throw new Error(`ViT config: numClasses must be an integer >= 0, got ${c.numClasses}`);
  if (!Number.isInteger(c.mlpRatio * c.width)) throw new Error(`ViT config: mlpRatio * width must be an integer`);
}

/** Number of patch tokens (without the CLS token). */
export function numPatches(c: ViTConfig): number {
  return (c.imageSize / c.patchSize) ** 2;
}

/** Hidden width of the MLP. */
export function mlpHidden(c: ViTConfig): number {
  return c.mlpRatio * c.width;
}
