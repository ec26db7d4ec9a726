import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { Notebook } from "../../src/notebook/ipynb";
import { defaultOutput, figuresDirFor, kernelFiguresDir } from "../../src/notebook/layout";
import { describeFailure, formatFailure, runPreset } from "../../src/notebook/runner";

test("default outputs: figures/<name>/ for reference runs, runs/smoke/<name>/ at smoke", () => {
  const root = "/repo";
  assert.equal(defaultOutput("notebooks/01-lora.ipynb", "laptop", root), "/repo/figures/01-lora/01-lora.ipynb");
  assert.equal(defaultOutput("notebooks/01-lora.ipynb", undefined, root), "/repo/figures/01-lora/01-lora.ipynb");
  assert.equal(defaultOutput("/x/notebooks/01-lora.ipynb", "smoke", root), "/repo/runs/smoke/01-lora/01-lora.ipynb");
  assert.equal(figuresDirFor("/tmp/out/x.ipynb"), "/tmp/out");
});

test("the preset of a run, given as --preset or as --set preset=...; both pick the smoke output", () => {
  assert.equal(runPreset({ preset: "smoke" }), "smoke");
  assert.equal(runPreset({ params: { preset: "smoke" } }), "smoke");
  assert.equal(defaultOutput("notebooks/02-table1.ipynb", runPreset({ params: { preset: "smoke", seeds: [0] } }), "/repo"), "/repo/runs/smoke/02-table1/02-table1.ipynb");
  assert.equal(runPreset({ params: { seeds: [0] } }), undefined);
  assert.throws(() => runPreset({ params: { preset: "smok" } }), /unknown preset 'smok' \(smoke, laptop, paper\)/);
});

test("the kernel's figures directory: the runner's choice, else by preset", () => {
  assert.equal(kernelFiguresDir("01-lora", "laptop", { STUDY_FIGURES_DIR: "/tmp/o" }, "/repo"), "/tmp/o");
  assert.equal(kernelFiguresDir("01-lora", "laptop", {}, "/repo"), path.join("/repo", "figures", "01-lora"));
  assert.equal(kernelFiguresDir("01-lora", "smoke", {}, "/repo"), path.join("/repo", "runs", "smoke", "01-lora"));
});

function failed(outputs: Notebook["cells"][number]["outputs"]): Notebook {
  return { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ cell_type: "code", metadata: {}, source: "throw new Error('boom')", outputs }] };
}

test("a tslab runtime error (stderr text, no ename) is found in the cell's output", () => {
  const nb = failed([
    { output_type: "stream", name: "stdout", text: "partial\n" },
    { output_type: "stream", name: "stderr", text: "evalmachine.<anonymous>:2\nthrow new Error('boom');\n^\n\nError: boom\n    at evalmachine.<anonymous>:2:7\n" },
  ]);
  const f = describeFailure(nb, 0, "");
  assert.equal(f.error, "Error: boom");
  assert.match(f.detail, /at evalmachine/);
  assert.doesNotMatch(f.detail, /partial/);
});

test("type errors and Jupyter error outputs are recognised too", () => {
  assert.equal(describeFailure(failed([{ output_type: "stream", name: "stderr", text: "1:5 - Type 'string' is not assignable to type 'number'.\n" }]), 0, "").error, "1:5 - Type 'string' is not assignable to type 'number'.");
  assert.equal(describeFailure(failed([{ output_type: "error", ename: "RangeError", evalue: "bad", traceback: ["\x1b[31mRangeError\x1b[0m: bad"] }]), 0, "").error, "RangeError: bad");
  assert.equal(describeFailure(failed([]), 0, "kernel died: gone").error, "kernel died: gone");
});

test("formatFailure names the file, the cell, its source and the error", () => {
  const s = formatFailure({
    ok: false,
    notebook: path.resolve("notebooks/x.ipynb"),
    out: "/tmp/x.ipynb",
    figuresDir: "/tmp",
    seconds: 1,
    failure: { index: 3, source: "const a = 1;\nthrow new Error('boom')", error: "Error: boom", detail: "Error: boom\n    at x" },
  });
  assert.match(s, /^notebooks\/x\.ipynb: cell 3 failed: Error: boom$/m);
  assert.match(s, /^  \| throw new Error\('boom'\)$/m);
  assert.match(s, /partial output notebook: \/tmp\/x\.ipynb/);
});
