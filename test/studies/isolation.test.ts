// Runs of a local sweep train in a run process of their own: one killed mid-run is resumed once in a
// fresh process from its checkpoint (same numbers as a sweep left alone), one killed twice is
// reported in its row while the other runs go on, and finished runs are read back without a process.
import { before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../support/fixtures";
import { toyStudy, writeToyTree } from "../support/tiny-study";
import { expand, sweep, Variant } from "../../src/studies/sweep";
import { rowsOf, SweepRow } from "../../src/studies/rows";
import { Run } from "../../src/runs/store";
import { listCheckpoints } from "../../src/training/checkpoint";

const dir = tempDir("isolation-test");
process.env.STUDY_DATA_DIR = path.join(dir, "data");
process.env.STUDY_PROGRESS = "off";
const tree = path.join(dir, "tree");
before(() => writeToyTree(tree));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const withoutTime = (rows: SweepRow[]) => rows.map(({ train_seconds: _t, ...r }) => r);
const checkpointStep = (root: string, id: string) => listCheckpoints(path.join(root, id, "checkpoints")).at(-1)?.step ?? 0;

/** This process's run processes (children running run-child.ts). */
function runProcesses(): number[] {
  return fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      return ppid === process.pid && fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("run-child.ts");
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** SIGKILLs the run process once run `id` has a checkpoint at step >= `atStep`; resolves to that step. */
async function killAt(root: string, id: string, atStep: number): Promise<number> {
  for (let i = 0; i < 6000; i++) {
    const step = checkpointStep(root, id);
    if (step >= atStep && !fs.existsSync(path.join(root, id, "results.json"))) {
      const pids = runProcesses();
      assert.equal(pids.length, 1, "one run process");
      process.kill(pids[0], "SIGKILL");
      return step;
    }
    await sleep(5);
  }
  throw new Error(`run ${id} never reached step ${atStep}`);
}

const variants: Variant[] = [{ tags: { method: "full" } }, { tags: { method: "lora" }, strategy: { kind: "lora", rank: 2 } }];

test("a run whose process is killed is resumed once in a fresh one, with the numbers of an undisturbed sweep", { timeout: 300_000 }, async () => {
  const base = toyStudy(tree, 40);
  const expected = rowsOf(await sweep(base, variants, { root: path.join(dir, "alone"), backend: "cpu", inProcess: true }));
  const root = path.join(dir, "killed-once");
  const id = String(expected[1].id);
  const pending = sweep(base, variants, { root, backend: "cpu" });
  const step = await killAt(root, id, 10);
  const rows = rowsOf(await pending);
  assert.deepEqual(withoutTime(rows), withoutTime(expected), "the in-process numbers");
  assert.deepEqual(rows.map((r) => r.status), ["trained", "trained"]);
  const attempts = Run.load(id, root).record()!.attempts;
  assert.equal(attempts.length, 2);
  assert.ok(attempts[1].fromStep >= 10 && attempts[1].fromStep <= step, `resumed from its checkpoint (${JSON.stringify(attempts)})`);
  assert.equal(Run.load(String(rows[0].id), root).record()!.attempts.length, 1, "the other run ran once");
  assert.deepEqual(runProcesses(), [], "the sweep's run process is gone when it returns");

  // Rerun: every run finished, read back here; no run process starts.
  const again = sweep(base, variants, { root, backend: "cpu" });
  const seen = runProcesses().length;
  assert.deepEqual(rowsOf(await again).map((r) => r.status), ["reused", "reused"]);
  assert.equal(seen, 0);
});

test("a run whose process dies twice is reported in its row; the sweep goes on", { timeout: 300_000 }, async () => {
  const base = toyStudy(tree, 40);
  const root = path.join(dir, "killed-twice");
  const order: Variant[] = [variants[1], variants[0]];
  const id = expand(base, order)[0].id;
  const pending = sweep(base, order, { root, backend: "cpu" });
  await killAt(root, id, 4);
  await sleep(50);
  await killAt(root, id, 14);
  const rows = rowsOf(await pending);
  assert.deepEqual(rows.map((r) => [r.method, r.status]), [["lora", "failed"], ["full", "trained"]]);
  assert.match(String(rows[0].error), /its run process exited \(SIGKILL, e\.g\. the kernel's OOM killer\)/);
  assert.equal(String(rows[0].id), id);
});
