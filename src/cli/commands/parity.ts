// `study parity <weights.safetensors> <fixture.json>`: numerical parity of a weights file with a
// reference fixture. The last line holds the maximum absolute errors; exit 0 within tolerance.
// A ViT fixture checks logits and features; a whole-CLIP fixture (text outputs included) checks
// image features, text features, logits per image and the tokenizer.
import { promises as fsp } from "node:fs";
import type { Command } from "../command";
import { opt, parseArgs } from "../command";
import { BackendChoice, initBackend } from "../../runtime/backend";
import { CLIP_NAMINGS, ClipNaming } from "../../weights/clip-names";
import { ClipParityResult, isClipFixture, runClipParity } from "../../weights/clip-parity";
import { NAMINGS, Naming } from "../../weights/names";
import { Comparison, runParity } from "../../weights/parity";

const USAGE = `usage: study parity <weights.safetensors> <fixture.json> [--naming auto|${NAMINGS.join("|")}|clip] [--backend cpu|wasm|webgpu|...] [--bpe merges.txt.gz]

Loads the weights (safetensors, or a torch zip .pth read without running its pickle; timm,
Hugging Face ViT, Hugging Face CLIP or OpenAI CLIP names, detected unless --naming is given)
into a model with the architecture of the fixture's config, runs the fixture's inputs and
compares with the expected values. Exit 0 when every value is within the fixture's tolerance
(|err| <= abs + rel*|expected|).

ViT fixtures: logits (CLIP vision-only fixtures: image features) and CLS features.
Whole-CLIP fixtures (with text_features): image features, text features (of the fixture's
token ids), logits per image, and every tokenizer case (BPE ids and padded sequence). The BPE
merges file is the bpe_simple_vocab_16e6.txt.gz beside the fixture, else --bpe, else
$STUDY_CLIP_BPE, else data/cache/bpe_simple_vocab_16e6.txt.gz.`;

const e1 = (x: number) => x.toExponential(1);
const e2 = (x: number) => x.toExponential(2);
const line = (name: string, cmp: Comparison, pad = 15) =>
  console.log(`${name.padEnd(pad)} [${cmp.shape.join(",")}] max abs err ${e2(cmp.maxAbsErr)} (${e2(cmp.worstRatio)} of tolerance) ${cmp.ok ? "ok" : "FAIL"}`);

function reportClip(weights: string, backend: string, r: ClipParityResult): number {
  const { vision: v, text: t, embedDim } = r.fixture.config;
  console.log(`weights:  ${weights} (${r.naming} names, ${r.loaded} tensors loaded, ${r.skipped} skipped)`);
  console.log(`model:    clip vision ${v.imageSize}px patch ${v.patchSize} width ${v.width} depth ${v.depth} heads ${v.heads}; text width ${t.width} depth ${t.depth} heads ${t.heads} context ${t.contextLength} vocab ${t.vocabSize}; embed ${embedDim}`);
  console.log(`backend:  ${backend}`);
  console.log(`tolerance: abs ${r.fixture.tolerance.abs} rel ${r.fixture.tolerance.rel}`);
  console.log(`merges:   ${r.tokenizer.mergesFile}`);
  line("image_features", r.imageFeatures, 16);
  line("text_features", r.textFeatures, 16);
  line("logits_per_image", r.logitsPerImage, 16);
  for (const f of r.tokenizer.failures) console.log(`tokenizer FAIL   ${JSON.stringify(f.text)}: expected ${JSON.stringify(f.expected)}, got ${JSON.stringify(f.got)}`);
  console.log(`tokenizer        ${r.tokenizer.passed}/${r.tokenizer.total} cases ${r.tokenizer.passed === r.tokenizer.total ? "ok" : "FAIL"}`);
  console.log(`${r.ok ? "PASS" : "FAIL"} image_features=${e1(r.imageFeatures.maxAbsErr)} text_features=${e1(r.textFeatures.maxAbsErr)} logits_per_image=${e1(r.logitsPerImage.maxAbsErr)} tokenizer=${r.tokenizer.passed}/${r.tokenizer.total}`);
  return r.ok ? 0 : 1;
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fsp.readFile(file, "utf8"));
  } catch {
    return undefined; // the fixture readers report the problem
  }
}

export const command: Command = {
  summary: "check a weights file against a reference fixture (max abs error of logits and features)",
  usage: USAGE,
  async run(argv) {
    const args = parseArgs(argv);
    const [weights, fixture] = args.positional;
    if (!weights || !fixture || args.positional.length > 2) {
      console.error(USAGE);
      return 2;
    }
    const naming = opt(args, "naming", "auto") as string;
    const clip = isClipFixture(await readJson(fixture));
    const known: readonly string[] = clip ? CLIP_NAMINGS : NAMINGS;
    if (naming !== "auto" && !known.includes(naming)) {
      console.error(`study parity: --naming must be auto or one of ${known.join(", ")} for this fixture, got '${naming}'`);
      return 2;
    }
    const backend = await initBackend({ prefer: opt(args, "backend") as BackendChoice | undefined });
    if (clip) return reportClip(weights, backend.choice, await runClipParity(weights, fixture, { naming: naming as ClipNaming | "auto", merges: opt(args, "bpe") }));
    const r = await runParity(weights, fixture, { naming: naming as Naming | "auto" });
    const c = r.fixture.config;
    const e = e2;
    console.log(`weights:  ${weights} (${r.naming} names, ${r.loaded} tensors loaded, ${r.skipped} skipped as not the vision model)`);
    console.log(`model:    ${r.fixture.kind} ${c.imageSize}px patch ${c.patchSize} width ${c.width} depth ${c.depth} heads ${c.heads} classes ${c.numClasses} ${c.act} eps ${c.lnEps}`);
    console.log(`backend:  ${backend.choice}`);
    console.log(`tolerance: abs ${r.fixture.tolerance.abs} rel ${r.fixture.tolerance.rel}`);
    const head = r.fixture.kind === "clip" ? "image_features" : "logits";
    line(head, r.logits);
    if (r.features) line("features", r.features);
    console.log(`${r.ok ? "PASS" : "FAIL"} logits_max_abs_err=${e(r.logits.maxAbsErr)} features_max_abs_err=${r.features ? e(r.features.maxAbsErr) : "n/a"}`);
    return r.ok ? 0 : 1;
  },
};
