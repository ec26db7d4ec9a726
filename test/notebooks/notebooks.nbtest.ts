// Executes the notebooks through the real Jupyter (nbclient) and the project's tslab kernel, the
// way `study run` does. Slow (a kernel start is seconds): run with `npm run test:notebooks`.
import { after, before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cell, Notebook, readNotebook, serialize, text } from "../../src/notebook/ipynb";
import { runNotebook } from "../../src/notebook/runner";
import { studyNotebooks } from "../../src/cli/commands/reproduce";
import { gitState } from "../../src/runtime/record";
import { REPO_ROOT } from "../../src/ground/root";

let tmp = "";
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nbtest-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function scratch(name: string, cells: [string, string[]?][]): string {
  const nb: Notebook = {
    cells: cells.map(([source, tags], i): Cell => ({ cell_type: "code", id: `c${i}`, metadata: tags ? { tags } : {}, source, outputs: [], execution_count: null })),
    metadata: { kernelspec: { name: "tslab-study", display_name: "TypeScript (tslab, project)", language: "typescript" } },
    nbformat: 4,
    nbformat_minor: 5,
  };
  const file = path.join(tmp, name);
  fs.writeFileSync(file, serialize(nb));
  return file;
}

function streams(nb: Notebook, index: number): string {
  return (nb.cells[index].outputs ?? []).map((o) => (o.output_type === "stream" ? text(o.text) : "")).join("");
}

function study(...args: string[]) {
  return spawnSync(process.execPath, [path.join(REPO_ROOT, "bin", "study.js"), ...args], { cwd: REPO_ROOT, encoding: "utf8" });
}

test("the kernel starts at the repository root, imports ./src, and takes injected parameters", async () => {
  const file = scratch("params.ipynb", [
    ['const steps = 10;\nconst label = "default";\nlet ranks = [4];', ["parameters"]],
    ['import { REPO_ROOT } from "./src/ground/root";\nconsole.log(JSON.stringify({ cwd: process.cwd(), root: REPO_ROOT, steps: steps, label: label, ranks: ranks }));'],
  ]);
  const out = path.join(tmp, "params-out", "params.ipynb");
  const r = await runNotebook({ notebook: file, params: { steps: 3, label: "from --set", ranks: [8, 16] }, out });
  assert.ok(r.ok, JSON.stringify(r.failure));
  const nb = readNotebook(out);
  assert.deepEqual(nb.cells[1].metadata.tags, ["injected-parameters"]);
  assert.deepEqual(nb.metadata.study, { parameters: { steps: 3, label: "from --set", ranks: [8, 16] } });
  const seen = JSON.parse(streams(nb, 2).trim());
  assert.deepEqual(seen, { cwd: REPO_ROOT, root: REPO_ROOT, steps: 3, label: "from --set", ranks: [8, 16] });
  assert.equal(readNotebook(file).cells.length, 2, "the source notebook is left alone");
});

test("a failing cell makes `study run` exit non-zero naming the cell, its source and the error", () => {
  const file = scratch("fails.ipynb", [
    ["const n = 1;", ["parameters"]],
    ['console.log("fine")'],
    ['const boom = n + 1;\nthrow new Error(`exploded with ${boom}`);'],
    ['console.log("never reached")'],
  ]);
  const out = path.join(tmp, "fails-out", "fails.ipynb");
  const r = study("run", file, "--set", "n=41", "--out", out);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /fails\.ipynb: cell 2 failed: Error: exploded with 42/);
  assert.match(r.stderr, /\| throw new Error\(`exploded with \$\{boom\}`\);/);
  const nb = readNotebook(out);
  assert.equal(streams(nb, 2), "fine\n", "cells before the failure ran");
  assert.deepEqual(nb.cells[4].outputs, [], "cells after it did not");
});

test("a kernel that dies is reported with its last output, not only 'kernel died'", async () => {
  const file = scratch("dies.ipynb", [
    ["const n = 1;", ["parameters"]],
    // What V8 prints when it runs out of heap, then the process ends as it would (tslab itself survives exceptions).
    ['require("node:fs").writeSync(2, "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\\n");\nprocess.exit(134);'],
  ]);
  const r = await runNotebook({ notebook: file, out: path.join(tmp, "dies-out", "dies.ipynb") });
  assert.ok(!r.ok);
  assert.match(r.failure!.error, /^kernel died \(the kernel process ended: exit code 134\); its last output: FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory$/);
  assert.match(r.failure!.detail, /JavaScript heap out of memory/);
});

test("an exception no cell catches (tslab's file watcher throws one when files change) leaves the kernel alive after the wasm backend loads", async () => {
  const file = scratch("stray.ipynb", [
    ['const preset = "smoke";', ["parameters"]],
    ['import { notebook } from "./src/notebook";\nconst nb = await notebook("stray", preset, { prewarm: false });\nconsole.log(nb.backend?.choice);'],
    ['setTimeout(() => { throw new Error("thrown from a timer, outside any cell"); }, 0);\nawait new Promise((r) => setTimeout(r, 500));'],
    ['console.log("still alive");'],
  ]);
  const out = path.join(tmp, "stray-out", "stray.ipynb");
  const r = await runNotebook({ notebook: file, out });
  assert.ok(r.ok, r.failure?.error);
  const nb = readNotebook(out);
  const lines = streams(nb, 1).trim().split("\n");
  assert.match(lines[0], /^commit [0-9a-f]{40}( with uncommitted changes)? · backend wasm · node /, "notebook() prints where the numbers come from");
  assert.equal(lines.at(-1), "wasm", "the wasm backend (whose emscripten module rethrows) is loaded");
  assert.equal(streams(nb, 3), "still alive\n");
});

test("a package installed (or a hard-linked checkout made) during a cell does not fail the next; an edited source file is still seen", async () => {
  // Module resolution's watchers scheduled a second rebuild timer, which tslab refuses in the next
  // cell ("Unexpected pending rebuildTimer"): the kernel preloads environment/jupyter/tslab-watch.cjs.
  const types = `node_modules/@types/zz-watch-${process.pid}`;
  const mod = `scratch-watch-${process.pid}`;
  const file = scratch("watch.ipynb", [
    [`import * as fs from "fs";\nfs.mkdirSync("${mod}");\nfs.writeFileSync("${mod}/m.ts", "export const v: number = 1;\\n");\nimport { mean } from "./src/studies/stats";`],
    [`import { v } from "./${mod}/m";\nfs.mkdirSync("${types}"); fs.rmdirSync("${types}");\nfs.linkSync("node_modules/arquero/package.json", "node_modules/arquero/package.json.lnk"); fs.unlinkSync("node_modules/arquero/package.json.lnk");\nfs.writeFileSync("${mod}/m.ts", "export const v: string = \\"two\\";\\n");\nawait new Promise((r) => setTimeout(r, 1500));`],
    [`import { v as w } from "./${mod}/m";\nconsole.log(mean([3, 5]), w);`],
  ]);
  const out = path.join(tmp, "watch-out", "watch.ipynb");
  try {
    const r = await runNotebook({ notebook: file, out });
    assert.ok(r.ok, r.failure ? `cell ${r.failure.index}: ${r.failure.error}` : "");
    const nb = readNotebook(out);
    assert.equal(streams(nb, 2), "4 two\n", "the next cell compiles, and sees m.ts as edited");
    assert.doesNotMatch(JSON.stringify(nb), /rebuildTimer/, "no stray exception either");
  } finally {
    fs.rmSync(path.join(REPO_ROOT, mod), { recursive: true, force: true });
    fs.rmSync(path.join(REPO_ROOT, types), { recursive: true, force: true });
    fs.rmSync(path.join(REPO_ROOT, "node_modules/arquero/package.json.lnk"), { force: true });
  }
});

test("nb.skip ends a headless run early without an error; the later cells do not run", async () => {
  const file = scratch("skips.ipynb", [
    ['const preset = "smoke";', ["parameters"]],
    ['import { notebook } from "./src/notebook";\nconst nb = await notebook("skips", preset, { backend: false, prewarm: false });\nnb.skip("the weights are not on this machine\\n  (where to get them)");'],
    ['throw new Error("must not run");'],
  ]);
  const out = path.join(tmp, "skips-out", "skips.ipynb");
  const r = await runNotebook({ notebook: file, out });
  assert.ok(r.ok, r.failure?.error);
  assert.equal(r.skipped, "the weights are not on this machine");
  const nb = readNotebook(out);
  const shown = nb.cells[1].outputs?.find((o) => o.output_type === "display_data");
  assert.ok(shown && shown.output_type === "display_data" && text(shown.data["text/plain"] as string).includes("(where to get them)"), "the reason is shown");
  assert.deepEqual(nb.cells[2].outputs, [], "the cell after the skip was not executed");
  const cli = study("run", file, "--out", out);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /^skipped {2}.*skips\.ipynb -> .*: the weights are not on this machine$/m);
});

test("an unknown --set is refused before anything runs", () => {
  const file = scratch("typo.ipynb", [["const lr = 0.1;", ["parameters"]]]);
  const r = study("run", file, "--set", "lrr=1", "--out", path.join(tmp, "typo-out", "typo.ipynb"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /typo\.ipynb: unknown parameter lrr; the parameters cell declares lr/);
});

/** What each study notebook must leave beside its executed copy: a table with these columns. */
const OUTPUT_TABLES: Record<string, [string, string[]]> = {
  "01-forgetting-curve": ["curve.csv", ["method", "schedule", "seed", "step", "retention_knn20"]],
  "02-table1": ["table1.csv", ["method", "trainable", "target_top1_best", "target_top1_last", "retention_knn20", "mean", "target_top1_best_std", "retention_knn20_std"]],
  "03-targets": ["targets.csv", ["target", "method", "target_top1_best", "retention_knn20"]],
  "04-selective-lora": ["lambda_sweep.csv", ["lambda", "seed", "active_share", "target_top1", "retention_knn20", "macs"]],
  "05-clip": ["clip.csv", ["method", "id_top1", "ood_mean", "zeroshot_mean", "forgetting", "forgetting_se", "test_images"]],
};

/** How many checks of the implementation each study's checks.csv holds. */
const CHECKS: Record<string, number> = { "01-forgetting-curve": 1, "02-table1": 2, "04-selective-lora": 3, "05-clip": 2 };

function inlinePngs(nb: Notebook): number {
  return nb.cells.flatMap((c) => (c.outputs ?? []).filter((o) => o.output_type === "display_data" && "image/png" in o.data)).length;
}

describe("every notebook runs at the smoke preset", { concurrency: 1 }, () => {
  // A run store of its own: every run of every study really trains here.
  const runs = () => path.join(tmp, "smoke-runs");
  for (const file of studyNotebooks()) {
    const stem = path.basename(file, ".ipynb");
    test(stem, async () => {
      const out = path.join(tmp, "smoke", stem, `${stem}.ipynb`);
      const r = await runNotebook({ notebook: file, preset: "smoke", out, env: { STUDY_RUNS_DIR: runs() } });
      assert.ok(r.ok, r.failure ? `cell ${r.failure.index}: ${r.failure.error}\n${r.failure.detail}` : "");
      const nb = readNotebook(out);
      assert.match(text(nb.cells.find((c) => c.metadata.tags?.includes("injected-parameters"))?.source), /const preset = "smoke";/);
      if (stem === "00-environment") return;
      assert.ok(inlinePngs(nb) >= 1, "at least one figure inline as PNG");
      const tables = nb.cells.flatMap((c) => (c.outputs ?? []).filter((o) => o.output_type === "display_data" && "text/markdown" in o.data));
      assert.ok(tables.length > 0 && tables.every((o) => o.output_type === "display_data" && "text/plain" in o.data), "tables carry a text/plain form (untrusted notebooks hide markdown)");
      const spec = OUTPUT_TABLES[stem];
      if (spec) {
        const header = fs.readFileSync(path.join(path.dirname(out), spec[0]), "utf8").split("\n")[0].split(",");
        for (const col of spec[1]) assert.ok(header.includes(col), `${spec[0]} has column ${col} (has ${header.join(", ")})`);
      }
      // Every study but 03 carries checks of the implementation: each one there, each passes, none unmeasured.
      const expected = CHECKS[stem];
      if (expected !== undefined) {
        const passes = fs.readFileSync(path.join(path.dirname(out), "checks.csv"), "utf8").trim().split("\n").slice(1).map((l) => l.split(",").at(-1));
        assert.ok(passes.length === expected && passes.every((p) => p === "yes"), `${stem}: ${expected} checks expected, got ${passes.join(", ")}`);
      }
      assert.doesNotMatch(fs.readFileSync(out, "utf8"), new RegExp(REPO_ROOT.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), "no machine-specific paths in the outputs");
    });
  }
});

test("the paper preset without its inputs fails in seconds naming each, after printing the plan", async () => {
  const file = path.join(REPO_ROOT, "notebooks", "02-table1.ipynb");
  const out = path.join(tmp, "paper", "02-table1.ipynb");
  const missing = path.join(tmp, "nothing-here");
  const env = { STUDY_RUNS_DIR: path.join(tmp, "paper-runs"), STUDY_DINO_WEIGHTS: path.join(missing, "dino.pth"), STUDY_IMAGENET_DIR: path.join(missing, "imagenet"), STUDY_DATA_DIR: path.join(missing, "data"), STUDY_DATA_MIRROR: "" };
  const r = await runNotebook({ notebook: file, preset: "paper", out, env });
  assert.equal(r.ok, false);
  assert.ok(r.seconds < 60, `failed fast (${r.seconds.toFixed(1)} s, kernel start included)`);
  assert.match(r.failure!.error + r.failure!.detail, /cannot start: 3 inputs are missing on this machine/);
  for (const s of ["STUDY_DINO_WEIGHTS", "STUDY_IMAGENET_DIR", "dino_vitbase16_pretrain.pth", "cifar-100-python.tar.gz"]) assert.ok((r.failure!.error + r.failure!.detail).includes(s), s);
  const plan = fs.readFileSync(path.join(tmp, "paper", "plan.csv"), "utf8");
  assert.match(plan, /^method,seed,lr,warmup,steps,status,trainable,train_tmacs,eval_tmacs\n/);
  assert.match(plan, /\nAll,0,0\.005,500,10000,new,85875556,/, "the plan lists the paper's runs with their exact trainable counts");
});

test("00-environment: inline PNG, the three figure files beside the output, byte-identical rerun", async () => {
  const src = path.join(REPO_ROOT, "notebooks", "00-environment.ipynb");
  const out = path.join(tmp, "env", "00-environment.ipynb");
  const figureFiles = ["gelu.png", "gelu.svg", "gelu.html"];
  // The notebook records the git commit and dirty flag: if the checkout changes between the two
  // runs (someone commits), the inputs differ and the pair is run again.
  for (let attempt = 0; ; attempt++) {
    const git0 = JSON.stringify(gitState());
    const cli = study("run", src, "--preset", "smoke", "--out", out);
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /^ok {2}.*00-environment\.ipynb -> /m);
    const first = fs.readFileSync(out);
    const firstFigures = figureFiles.map((f) => fs.readFileSync(path.join(tmp, "env", f)));
    const r = await runNotebook({ notebook: src, preset: "smoke", out });
    assert.ok(r.ok, r.failure?.error);
    if (JSON.stringify(gitState()) !== git0 && attempt < 2) continue;

    const nb = readNotebook(out);
    const pngs = nb.cells.flatMap((c) => (c.outputs ?? []).filter((o) => o.output_type === "display_data" && "image/png" in o.data));
    assert.equal(pngs.length, 1, "one inline PNG");
    for (const f of figureFiles) assert.ok(fs.statSync(path.join(tmp, "env", f)).size > 1000, `${f} beside the output`);
    for (const f of ["backend-attempts", "versions", "gelu-differences"]) {
      assert.ok(fs.existsSync(path.join(tmp, "env", `${f}.csv`)) && fs.existsSync(path.join(tmp, "env", `${f}.md`)), `${f} table files`);
    }
    const again = fs.readFileSync(out);
    assert.ok(first.equals(again), "the rerun gives a byte-identical notebook");
    figureFiles.forEach((f, i) => assert.ok(firstFigures[i].equals(fs.readFileSync(path.join(tmp, "env", f))), `${f} is byte-identical`));
    assert.doesNotMatch(again.toString("utf8"), /"execution":|iopub\.|shell\.execute_reply|"transient"/, "no timing metadata");
    break;
  }
});
