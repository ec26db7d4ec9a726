// Parity of a whole CLIP model and the tokenizer with a reference fixture (openai/CLIP outputs;
// ../shared/fixtures/clip-parity/README.md): config (the CLIP constructor's arguments),
// tokenizer [{text, bpe, ids}], image_input (NHWC, normalised), image_features,
// text_features (of the fixture's ids), logits_per_image, tolerance {abs, rel}.
import { existsSync, promises as fsp } from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { CLIPArgs, CLIPConfig, clipConfig } from "../model/clip";
import { BPE_FILE, loadTokenizer, resolveMergesPath } from "../model/tokenizer";
import { ClipNaming, inferCLIPConfig } from "./clip-names";
import { clipFromStateDict, readCLIPStateDict } from "./clip-load";
import { compare, Comparison } from "./parity";

type Nested = number | Nested[];

export interface TokenizerCase {
  text: string;
  /** BPE ids without the start and end tokens. */
  bpe: number[];
  /** The padded context-length sequence. */
  ids: number[];
}

export interface ClipFixture {
  args: CLIPArgs;
  config: CLIPConfig;
  tokenizer: TokenizerCase[];
  imageInput: Nested;
  imageFeatures: Nested;
  textFeatures: Nested;
  logitsPerImage: Nested;
  tolerance: { abs: number; rel: number };
}

export interface TokenizerCheck {
  passed: number;
  total: number;
  /** The cases that differ, with what the tokenizer gave. */
  failures: { text: string; expected: number[]; got: number[] | string }[];
  /** The merges file used. */
  mergesFile: string;
}

export interface ClipParityResult {
  fixture: ClipFixture;
  naming: ClipNaming;
  loaded: number;
  skipped: number;
  imageFeatures: Comparison;
  textFeatures: Comparison;
  logitsPerImage: Comparison;
  tokenizer: TokenizerCheck;
  ok: boolean;
}

const ARG_KEYS = ["embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_patch_size", "context_length", "vocab_size", "transformer_width", "transformer_heads", "transformer_layers"] as const;

/** Whether a parsed fixture is a whole-CLIP one (text tower outputs included). */
export function isClipFixture(raw: unknown): boolean {
  const r = raw as { config?: Record<string, unknown>; text_features?: unknown } | null;
  return !!r && typeof r.config === "object" && r.config !== null && "transformer_width" in r.config && Array.isArray(r.text_features);
}

export async function readClipFixture(file: string): Promise<ClipFixture> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await fsp.readFile(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: cannot read the fixture (${e instanceof Error ? e.message : String(e)})`);
  }
  const cfg = (raw.config ?? {}) as Record<string, unknown>;
  const args = {} as Record<(typeof ARG_KEYS)[number], number>;
  for (const k of ARG_KEYS) {
    const v = cfg[k];
    if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`${file}: config.${k} is missing or not a number`);
    args[k] = v;
  }
  const need = (k: string): Nested => {
    if (!Array.isArray(raw[k])) throw new Error(`${file}: '${k}' is missing or not an array`);
    return raw[k] as Nested;
  };
  const cases = need("tokenizer") as unknown[];
  const tokenizer = cases.map((c, i) => {
    const t = c as Partial<TokenizerCase>;
    if (typeof t.text !== "string" || !Array.isArray(t.bpe) || !Array.isArray(t.ids)) throw new Error(`${file}: tokenizer[${i}] needs text, bpe and ids`);
    return { text: t.text, bpe: t.bpe, ids: t.ids };
  });
  const tol = raw.tolerance as { abs?: unknown; rel?: unknown } | undefined;
  return {
    args,
    config: clipConfig(args),
    tokenizer,
    imageInput: need("image_input"),
    imageFeatures: need("image_features"),
    textFeatures: need("text_features"),
    logitsPerImage: need("logits_per_image"),
    tolerance: { abs: typeof tol?.abs === "number" ? tol.abs : 1e-4, rel: typeof tol?.rel === "number" ? tol.rel : 1e-4 },
  };
}

/**
 * The merges file for a fixture: `bpe_simple_vocab_16e6.txt.gz` beside it when present, else
 * the tokenizer's lookup (explicit path, $STUDY_CLIP_BPE, data/cache).
 */
export function fixtureMergesFile(fixtureFile: string, explicit?: string): string {
  const beside = path.join(path.dirname(fixtureFile), BPE_FILE);
  return existsSync(beside) ? beside : resolveMergesPath(explicit);
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Every tokenizer case: the BPE ids and the padded sequence must both match. */
export function checkTokenizer(cases: readonly TokenizerCase[], mergesFile: string, contextLength: number): TokenizerCheck {
  const tok = loadTokenizer(mergesFile);
  const failures: TokenizerCheck["failures"] = [];
  for (const c of cases) {
    try {
      const bpe = tok.encode(c.text);
      const seq = Array.from(tok.tokenize(c.text, { contextLength }).ids);
      if (!same(bpe, c.bpe)) failures.push({ text: c.text, expected: c.bpe, got: bpe });
      else if (!same(seq, c.ids)) failures.push({ text: c.text, expected: c.ids, got: seq });
    } catch (e) {
      failures.push({ text: c.text, expected: c.ids, got: e instanceof Error ? e.message : String(e) });
    }
  }
  return { passed: cases.length - failures.length, total: cases.length, failures, mergesFile };
}

/**
 * Loads `weightsFile` (any CLIP naming) with the fixture's architecture (the weights must imply
 * the same; heads come from the fixture), runs the image input and the fixture's token ids, and
 * compares features and logits; checks the tokenizer on every case.
 */
export async function runClipParity(weightsFile: string, fixtureFile: string, opts: { naming?: ClipNaming | "auto"; merges?: string } = {}): Promise<ClipParityResult> {
  const fixture = await readClipFixture(fixtureFile);
  const c = fixture.config;
  const conv = await readCLIPStateDict(weightsFile, opts.naming);
  const inferred = inferCLIPConfig(conv.dict, { visionHeads: c.vision.heads, textHeads: c.text.heads, naming: conv.naming }, weightsFile);
  const diff: string[] = [];
  for (const k of ["imageSize", "patchSize", "width", "depth", "mlpRatio", "numClasses"] as const) if (inferred.vision[k] !== c.vision[k]) diff.push(`vision ${k}: fixture ${c.vision[k]}, weights ${inferred.vision[k]}`);
  for (const k of ["contextLength", "vocabSize", "width", "depth", "mlpRatio", "embedDim"] as const) if (inferred.text[k] !== c.text[k]) diff.push(`text ${k}: fixture ${c.text[k]}, weights ${inferred.text[k]}`);
  if (diff.length) throw new Error(`${weightsFile} does not fit ${fixtureFile}: ${diff.join("; ")}`);
  const tokenizer = checkTokenizer(fixture.tokenizer, fixtureMergesFile(fixtureFile, opts.merges), c.text.contextLength);

  const model = clipFromStateDict(conv, c, weightsFile);
  const x = tf.tensor(fixture.imageInput as number[]) as tf.Tensor4D;
  const ids = tf.tensor2d(fixture.tokenizer.map((t) => t.ids), undefined, "int32");
  try {
    const [img, txt, logits] = tf.tidy(() => {
      const i = model.encodeImage(x); // [Bi,E]
      const t = model.encodeText(ids); // [Bt,E]
      return [i, t, model.similarity(i, t).logitsPerImage]; // [Bi,Bt]
    });
    const tol = fixture.tolerance;
    const imageFeatures = await compare(img, fixture.imageFeatures, tol, "image_features");
    const textFeatures = await compare(txt, fixture.textFeatures, tol, "text_features");
    const logitsPerImage = await compare(logits, fixture.logitsPerImage, tol, "logits_per_image");
    tf.dispose([img, txt, logits]);
    const ok = imageFeatures.ok && textFeatures.ok && logitsPerImage.ok && tokenizer.passed === tokenizer.total;
    return { fixture, naming: conv.naming, loaded: conv.dict.size, skipped: conv.skipped.length, imageFeatures, textFeatures, logitsPerImage, tokenizer, ok };
  } finally {
    tf.dispose([x, ids]);
    model.dispose();
  }
}
