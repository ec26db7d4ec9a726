// Sweeps over the run store: rows per variant, retention measured in-process at its steps, the
// best-on-test checkpoint and its retention, reuse on rerun, and a failing run reported while
// the others go on.
import { before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../support/fixtures";
import { toyStudy, writeToyTree } from "../support/tiny-study";
import { sweep, plan, Variant } from "../../src/studies/sweep";
import { curveRows, curveStats } from "../../src/studies/forgetting";
import { rowsOf } from "../../src/studies/rows";
import { Run } from "../../src/runs/store";
import { gitState } from "../../src/runtime/record";

const dir = tempDir("sweep-test");
process.env.STUDY_DATA_DIR = path.join(dir, "data");
const root = path.join(dir, "runs");
const tree = path.join(dir, "tree");
before(() => writeToyTree(tree));

const variants: Variant[] = [
  { tags: { method: "full" } },
  { tags: { method: "linear" }, strategy: { kind: "linear" } },
  { tags: { method: "lora" }, strategy: { kind: "lora", rank: 2 } },
  // Fails when the run starts (the model has 1 block): reported, the others go on.
  { tags: { method: "broken" }, strategy: { kind: "top-k", k: 5 } },
];

test("a sweep: rows per variant, retention at its steps, best checkpoint, failures reported, reuse", async () => {
  const base = toyStudy(tree);
  assert.deepEqual((plan(base, variants, { root }).array("status") as string[]), ["new", "new", "new", "invalid: top-k: k must be an integer in [0, 1], got 5"]);
  const rows = rowsOf(await sweep(base, variants, { root, backend: "cpu" }));
  assert.deepEqual(rows.map((r) => [r.method, r.status]), [["full", "trained"], ["linear", "trained"], ["lora", "trained"], ["broken", "failed"]]);
  assert.match(String(rows[3].error), /top-k: k must be an integer in \[0, 1\], got 5/);
  for (const r of rows.slice(0, 3)) {
    const run = Run.load(String(r.id), root);
    const evals = run.metrics().filter((m) => m.kind === "eval");
    assert.deepEqual(evals.filter((m) => "retention_knn1" in m).map((m) => m.step), [0, 1, 3, 6], `${r.method}: retention at its steps`);
    assert.deepEqual(evals.filter((m) => "testTop1" in m).map((m) => m.step), [0, 2, 4, 6], `${r.method}: target top-1 every 2 steps`);
    const best = Math.max(...evals.filter((m) => typeof m.testTop1 === "number" && (m.step as number) > 0).map((m) => m.testTop1 as number));
    assert.equal(r.target_top1_best, best);
    assert.ok([2, 4, 6].includes(Number(r.best_step)));
    const atBest = evals.find((m) => m.step === r.best_step && "retention_knn1" in m);
    if (atBest) assert.equal(r.retention_knn1_best, atBest.retention_knn1, "best at a retention step: the same number");
    assert.equal(typeof r.retention_knn1_best, "number");
    assert.equal(r.retention_knn5, evals.find((m) => m.step === 6)!.retention_knn5, "last retention = the step-6 measurement");
  }
  // Every run records the images its accuracies were scored on (the claims' binomial noise), and
  // an adapter run compares its merged inference form with the trained model.
  for (const r of rows.slice(0, 3)) assert.ok(Number(r.test_images) > 0 && Number(r.retention_queries) > 0, `${r.method}: image counts`);
  const lora = rows[2];
  assert.ok(Number(lora.merge_max_abs_logit) > 0, "the logits compared are not all zero");
  assert.ok(Number(lora.merge_max_abs_diff) / Number(lora.merge_max_abs_logit) <= 1e-4, `merged = trained: ${lora.merge_max_abs_diff} of ${lora.merge_max_abs_logit}`);
  assert.equal(rows[0].merge_max_abs_diff ?? null, null, "full fine-tuning has no inference form to check");
  // The linear probe's backbone is frozen: its retention never moves.
  const curve = curveRows(rows, { root });
  const linear = curve.filter((c) => c.method === "linear").map((c) => c.retention_knn5);
  assert.equal(new Set(linear).size, 1, `linear retention is constant: ${linear}`);
  const pts = curveStats(curve, ["method"], "retention_knn5");
  assert.deepEqual(pts.filter((p) => p.group === "full").map((p) => p.step), [0, 1, 3, 6]);
  // Step 0 is the same model for every strategy (LoRA's B and the fresh head do not touch features).
  assert.equal(new Set(curve.filter((c) => c.step === 0).map((c) => c.retention_knn5)).size, 1);

  const again = rowsOf(await sweep(base, variants, { root, backend: "cpu" }));
  assert.deepEqual(again.map((r) => r.status), ["reused", "reused", "reused", "failed"]);
  for (const k of ["target_top1_best", "target_top1_last", "retention_knn1", "retention_knn1_best"]) {
    assert.deepEqual(again.slice(0, 3).map((r) => r[k]), rows.slice(0, 3).map((r) => r[k]), `${k} reused`);
  }
  // Each row says where its numbers came from: the commit its run trained at (reused: still that one) and the backend.
  const git = gitState();
  const commit = git.commit ? `${git.commit.slice(0, 7)}${git.dirty ? "-dirty" : ""}` : null;
  assert.deepEqual([...rows, ...again].slice(0, 7).map((r) => [r.commit, r.backend]), [...Array(7)].map((_, i) => (i === 3 ? [null, null] : [commit, "cpu"])));
  assert.deepEqual((plan(base, variants, { root }).array("status") as string[]).slice(0, 3), ["finished", "finished", "finished"]);
  assert.ok(fs.existsSync(path.join(root, String(rows[0].id), "best")), "the best checkpoint is kept beside the run");
});

test("a sweep whose runs all fail still has its result columns, empty, and says why in each row", async () => {
  const failing: Variant[] = [
    { tags: { method: "broken" }, strategy: { kind: "top-k", k: 5 } },
    { tags: { method: "broken lora" }, strategy: { kind: "selective-lora", rank: 2, blocks: [5] } },
  ];
  const t = await sweep(toyStudy(tree), failing, { root: path.join(dir, "all-failed"), backend: "cpu" });
  const cols = t.columnNames();
  for (const c of ["status", "error", "target_top1_best", "target_top1_last", "train_seconds", "macs", "active_share"]) assert.ok(cols.includes(c), `${c} in [${cols}]`);
  const rows = rowsOf(t.select("method", "status", "target_top1_best", "active_share", "error"));
  assert.deepEqual(rows.map((r) => [r.method, r.status, r.target_top1_best, r.active_share]), [["broken", "failed", null, null], ["broken lora", "failed", null, null]]);
  for (const r of rows) assert.ok(String(r.error).length > 0);
});
