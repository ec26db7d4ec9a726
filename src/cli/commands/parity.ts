// `study parity <weights.safetensors> <fixture.json>`: numerical parity of a weights file with a
// reference fixture. The last line holds both maximum absolute errors; exit 0 within tolerance.
import type { Command } from "../command";
import { opt, parseArgs } from "../command";
import { BackendChoice, initBackend } from "../../runtime/backend";
import { NAMINGS, Naming } from "../../weights/names";
import { runParity } from "../../weights/parity";

const USAGE = `usage: study parity <weights.safetensors> <fixture.json> [--naming auto|${NAMINGS.join("|")}] [--backend cpu|wasm|webgpu|...]

Loads the weights (safetensors, or a torch zip .pth read without running its pickle; timm,
Hugging Face ViT, Hugging Face CLIP or OpenAI CLIP names, detected unless --naming is given)
into a ViT with the architecture of the fixture's config, runs the fixture's
input (NHWC) and compares the logits (CLIP: image features) and CLS features with the expected
values. Exit 0 when every value is within the fixture's tolerance (|err| <= abs + rel*|expected|).`;

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
    const naming = opt(args, "naming", "auto") as Naming | "auto";
    if (naming !== "auto" && !NAMINGS.includes(naming)) {
      console.error(`study parity: --naming must be auto or one of ${NAMINGS.join(", ")}, got '${naming}'`);
      return 2;
    }
    const backend = await initBackend({ prefer: opt(args, "backend") as BackendChoice | undefined });
    const r = await runParity(weights, fixture, { naming });
    const c = r.fixture.config;
    const e = (x: number) => x.toExponential(2);
    console.log(`weights:  ${weights} (${r.naming} names, ${r.loaded} tensors loaded, ${r.skipped} skipped as not the vision model)`);
    console.log(`model:    ${r.fixture.kind} ${c.imageSize}px patch ${c.patchSize} width ${c.width} depth ${c.depth} heads ${c.heads} classes ${c.numClasses} ${c.act} eps ${c.lnEps}`);
    console.log(`backend:  ${backend.choice}`);
    console.log(`tolerance: abs ${r.fixture.tolerance.abs} rel ${r.fixture.tolerance.rel}`);
    const line = (name: string, cmp: typeof r.logits) =>
      console.log(`${name.padEnd(15)} [${cmp.shape.join(",")}] max abs err ${e(cmp.maxAbsErr)} (${e(cmp.worstRatio)} of tolerance) ${cmp.ok ? "ok" : "FAIL"}`);
    const head = r.fixture.kind === "clip" ? "image_features" : "logits";
    line(head, r.logits);
    if (r.features) line("features", r.features);
    console.log(`${r.ok ? "PASS" : "FAIL"} logits_max_abs_err=${e(r.logits.maxAbsErr)} features_max_abs_err=${r.features ? e(r.features.maxAbsErr) : "n/a"}`);
    return r.ok ? 0 : 1;
  },
};
