// The tiny CLIP reference fixture beside the checkout (../shared/fixtures/clip-parity): paths,
// the skip reason when it is absent, and the model loaded with the fixture's architecture.
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import type { CLIP } from "../../src/model/clip";
import { loadCLIP } from "../../src/weights/clip-load";
import { readClipFixture } from "../../src/weights/clip-parity";

export const REPO = path.resolve(__dirname, "..", "..");
export const CLIP_DIR = path.resolve(REPO, "..", "shared", "fixtures", "clip-parity");
export const TINY_JSON = path.join(CLIP_DIR, "tiny.json");
export const TINY_WEIGHTS = { "openai-clip": path.join(CLIP_DIR, "tiny.openai.safetensors"), "hf-clip": path.join(CLIP_DIR, "tiny.hf.safetensors") } as const;
export const MERGES = path.join(CLIP_DIR, "bpe_simple_vocab_16e6.txt.gz");

/** A skip reason for node:test when the fixture is absent, else false. */
export const CLIP_SKIP: string | false = existsSync(TINY_JSON) && existsSync(MERGES)
  ? false
  : `CLIP parity fixtures not found at ${CLIP_DIR} (they live beside the repo in ../shared)`;

export interface TinyJson {
  tokenizer: { text: string; bpe: number[]; ids: number[] }[];
  image_input: number[][][][];
  image_features: number[][];
  text_features: number[][];
  logits_per_image: number[][];
  tolerance: { abs: number; rel: number };
}

export function tinyJson(): TinyJson {
  return JSON.parse(readFileSync(TINY_JSON, "utf8")) as TinyJson;
}

/** The fixture model (its config, heads included, from tiny.json). */
export async function loadTiny(naming: keyof typeof TINY_WEIGHTS = "openai-clip"): Promise<CLIP> {
  const { config } = await readClipFixture(TINY_JSON);
  return (await loadCLIP(TINY_WEIGHTS[naming], { config })).model;
}
