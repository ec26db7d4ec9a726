// Numerical parity of a weights file against a reference fixture (inputs and expected outputs
// from the reference implementation). Two fixture kinds are read:
//   timm ViT:  config {img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio, num_classes},
//              input, logits, features (CLS after the final norm), tolerance {abs, rel}
//   CLIP:      config {embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size},
//              image_input, image_features (vision tower output after the projection), tolerance
import { promises as fsp } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { ViTConfig, vitConfig } from "../model/config";
import { createViT } from "../model/vit";
import { clipVisionConfig } from "../model/clip";
import { loadStateDict, readStateDict } from "./load";
import { inferViTConfig, Naming } from "./names";

type Nested = number | Nested[];

export interface ParityFixture {
  kind: "timm-vit" | "clip";
  config: ViTConfig;
  input: Nested;
  /** Expected head output: logits (ViT) or image features (CLIP, head = projection). */
  logits: Nested;
  /** Expected CLS feature after the final norm, when the fixture has it. */
  features?: Nested;
  tolerance: { abs: number; rel: number };
}

export interface Comparison {
  shape: number[];
  maxAbsErr: number;
  /** Largest |err| / (abs + rel*|expected|); <= 1 passes (numpy.allclose). */
  worstRatio: number;
  ok: boolean;
}

export interface ParityResult {
  fixture: ParityFixture;
  naming: Naming;
  loaded: number;
  skipped: number;
  logits: Comparison;
  features?: Comparison;
  ok: boolean;
}

function num(cfg: Record<string, unknown>, key: string, file: string): number {
  const v = cfg[key];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`${file}: config.${key} is missing or not a number`);
  return v;
}

/** Reads a fixture and turns its config into a ViTConfig (biases etc. checked against the weights later). */
export async function readParityFixture(file: string): Promise<ParityFixture> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await fsp.readFile(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: cannot read the fixture (${e instanceof Error ? e.message : String(e)})`);
  }
  const cfg = raw.config as Record<string, unknown> | undefined;
  if (!cfg || typeof cfg !== "object") throw new Error(`${file}: no 'config' object`);
  const tol = raw.tolerance as { abs?: unknown; rel?: unknown } | undefined;
  const tolerance = {
    abs: typeof tol?.abs === "number" ? tol.abs : 1e-4,
    rel: typeof tol?.rel === "number" ? tol.rel : 1e-4,
  };
  const need = (k: string): Nested => {
    if (!Array.isArray(raw[k])) throw new Error(`${file}: '${k}' is missing or not an array`);
    return raw[k] as Nested;
  };
  if ("vision_width" in cfg) {
    const width = num(cfg, "vision_width", file);
    const config = clipVisionConfig(num(cfg, "image_resolution", file), num(cfg, "vision_patch_size", file), width, num(cfg, "vision_layers", file), num(cfg, "embed_dim", file));
    return { kind: "clip", config, input: need("image_input"), logits: need("image_features"), tolerance };
  }
  const config = vitConfig({
    imageSize: num(cfg, "img_size", file),
    patchSize: num(cfg, "patch_size", file),
    width: num(cfg, "embed_dim", file),
    depth: num(cfg, "depth", file),
    heads: num(cfg, "num_heads", file),
    mlpRatio: typeof cfg.mlp_ratio === "number" ? cfg.mlp_ratio : 4,
    numClasses: num(cfg, "num_classes", file),
    lnEps: 1e-6,
    act: "gelu",
  });
  return { kind: "timm-vit", config, input: need("input"), logits: need("logits"), features: need("features"), tolerance };
}

/** Compares a result with the expected values, numpy.allclose style. */
export async function compare(got: tf.Tensor, expected: Nested, tol: { abs: number; rel: number }, what: string): Promise<Comparison> {
  const exp = tf.tensor(expected as number[]);
  try {
    if (!tf.util.arraysEqual(got.shape, exp.shape)) {
      throw new Error(`${what}: shape [${got.shape}] but the fixture expects [${exp.shape}]`);
    }
    const a = await got.data();
    const b = await exp.data();
    let maxAbsErr = 0;
    let worstRatio = 0;
    for (let i = 0; i < a.length; i++) {
      const err = Math.abs(a[i] - b[i]);
      if (!(err <= maxAbsErr)) maxAbsErr = err; // NaN propagates
      const r = err / (tol.abs + tol.rel * Math.abs(b[i]));
      if (!(r <= worstRatio)) worstRatio = r;
    }
    return { shape: [...got.shape], maxAbsErr, worstRatio, ok: worstRatio <= 1 };
  } finally {
    exp.dispose();
  }
}

/**
 * Loads `weightsFile` (any supported naming) into a ViT built from the fixture's config, runs the
 * fixture input and compares. Architecture flags the fixture does not state (qkv/patch/head bias,
 * pre-norm) are checked against the weights, so a mismatch is reported rather than guessed around.
 */
export async function runParity(weightsFile: string, fixtureFile: string, opts: { naming?: Naming | "auto" } = {}): Promise<ParityResult> {
  const fixture = await readParityFixture(fixtureFile);
  const conv = await readStateDict(weightsFile, opts.naming);
  let inferred: ViTConfig;
  try {
    inferred = inferViTConfig(conv.dict, { naming: conv.naming }).config;
  } catch (e) {
    throw new Error(`${weightsFile} (read as ${conv.naming} names): ${e instanceof Error ? e.message : String(e)}`);
  }
  const c = fixture.config;
  const keys = ["imageSize", "patchSize", "inChannels", "width", "depth", "mlpRatio", "qkvBias", "classToken", "preNorm", "patchBias", "numClasses", "headBias"] as const;
  const diff = keys.filter((k) => inferred[k] !== c[k]).map((k) => `${k}: fixture ${c[k]}, weights ${inferred[k]}`);
  if (diff.length) throw new Error(`${weightsFile} does not fit ${fixtureFile}: ${diff.join("; ")}`);
  const model = createViT(c);
  try {
    const report = loadStateDict(model.namedVariables(), conv.dict, { file: weightsFile });
    const x = tf.tensor(fixture.input as number[]) as tf.Tensor4D;
    try {
      const logits = model.logits(x);
      const lc = await compare(logits, fixture.logits, fixture.tolerance, fixture.kind === "clip" ? "image_features" : "logits");
      logits.dispose();
      let fc: Comparison | undefined;
      if (fixture.features) {
        const feats = model.features(x);
        fc = await compare(feats, fixture.features, fixture.tolerance, "features");
        feats.dispose();
      }
      return { fixture, naming: conv.naming, loaded: report.loaded.length, skipped: conv.skipped.length, logits: lc, features: fc, ok: lc.ok && (fc?.ok ?? true) };
    } finally {
      x.dispose();
    }
  } finally {
    model.dispose();
  }
}
