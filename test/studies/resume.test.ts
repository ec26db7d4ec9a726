// Killing a sweep with SIGKILL in the middle of a run and starting it again: the finished runs are
// reused untouched, the killed one resumes from its last checkpoint, and the table is the one an
// uninterrupted sweep gives, number for number (smoke preset, real data from ../shared).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../support/fixtures";
import { REPO_ROOT } from "../../src/ground/root";
import { SIBLING_MIRROR } from "../../src/data/paths";
import { listCheckpoints } from "../../src/training/checkpoint";
import { Run } from "../../src/runs/store";
import { expand } from "../../src/studies/sweep";
import { resumeStudy } from "../support/sweep-child";

const SKIP = fs.existsSync(SIBLING_MIRROR) || process.env.STUDY_DATA_MIRROR ? false : `no data mirror (${SIBLING_MIRROR}) for the smoke preset's CIFAR-10`;
const dir = tempDir("resume-test");
const child = path.join(REPO_ROOT, "test", "support", "sweep-child.ts");

function start(root: string, out: string) {
  const p = spawn(process.execPath, ["--import", "tsx", child, out], {
    cwd: REPO_ROOT, env: { ...process.env, STUDY_RUNS_DIR: root, STUDY_PROGRESS: "off" }, stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => p.on("exit", (code, signal) => resolve({ code, signal })));
  return { p, done, stderr: () => stderr };
}

type Row = Record<string, unknown>;
const NUMBERS = ["target_top1_best", "target_top1_last", "best_step", "retention_knn20", "retention_knn20_best", "trainable"];

test("kill -9 in the middle of a sweep, start again: same numbers, only the unfinished run recomputed", { skip: SKIP, timeout: 240_000 }, async () => {
  const { base, variants } = resumeStudy();
  const [source, all, lora, linear] = expand(base, variants).map((e) => e.id);

  const ref = start(path.join(dir, "reference"), path.join(dir, "reference.json"));
  assert.equal((await ref.done).code, 0, ref.stderr());
  const expected = JSON.parse(fs.readFileSync(path.join(dir, "reference.json"), "utf8")) as Row[];

  const root = path.join(dir, "killed");
  const first = start(root, path.join(dir, "first.json"));
  // Kill when the long LoRA run has a checkpoint past step 10 and has not finished.
  let killedAt = -1;
  while (killedAt < 0) {
    const exited = await Promise.race([first.done.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10))]);
    assert.ok(!exited, `the sweep ended before it could be killed: ${first.stderr()}`);
    const cks = listCheckpoints(path.join(root, lora, "checkpoints"));
    const step = cks.at(-1)?.step ?? 0;
    if (step >= 10 && step < 30 && !fs.existsSync(path.join(root, lora, "results.json"))) {
      first.p.kill("SIGKILL");
      killedAt = step;
    }
  }
  assert.equal((await first.done).signal, "SIGKILL");
  const before = Object.fromEntries([source, all].map((id) => [id, fs.readFileSync(path.join(root, id, "results.json"), "utf8")]));
  assert.ok(!fs.existsSync(path.join(root, linear)), "the run after the killed one had not started");

  const second = start(root, path.join(dir, "second.json"));
  assert.equal((await second.done).code, 0, second.stderr());
  const rows = JSON.parse(fs.readFileSync(path.join(dir, "second.json"), "utf8")) as Row[];
  assert.deepEqual(rows.map((r) => r.status), ["reused", "reused", "trained", "trained"]);
  for (const k of NUMBERS) assert.deepEqual(rows.map((r) => r[k]), expected.map((r) => r[k]), `${k}: as the uninterrupted sweep`);
  for (const id of [source, all]) {
    assert.equal(fs.readFileSync(path.join(root, id, "results.json"), "utf8"), before[id], `${id} was not recomputed`);
    assert.equal(Run.load(id, root).record()!.attempts.length, 1);
  }
  const attempts = Run.load(lora, root).record()!.attempts;
  assert.equal(attempts.length, 2);
  assert.ok(attempts[1].fromStep >= 10 && attempts[1].fromStep <= killedAt, `resumed from its checkpoint (step ${attempts[1].fromStep}, killed at ${killedAt})`);
  const evalSteps = Run.load(lora, root).metrics().filter((m) => m.kind === "eval" && "retention_knn20" in m).map((m) => m.step);
  assert.deepEqual(evalSteps, [0, 10, 30], "each retention step measured once in the kept metrics");
});
