import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Run, canonicalJson, listRuns, runId } from "../../src/runs/store";
import { metricsTable, resultsTable } from "../../src/runs/tables";
import { tempDir } from "../support/fixtures";

const root = tempDir("runs-test");

test("id = name + hash of the canonical config (key order and undefined do not matter)", () => {
  const a = { name: "Source CIFAR/5", lr: 0.1, nested: { b: 1, a: [1, 2] } };
  const b = { nested: { a: [1, 2], b: 1 }, lr: 0.1, name: "Source CIFAR/5", extra: undefined };
  assert.equal(canonicalJson(a), canonicalJson(b));
  assert.equal(runId(a), runId(b));
  assert.match(runId(a), /^source-cifar-5-[0-9a-f]{12}$/);
  assert.notEqual(runId(a), runId({ ...a, lr: 0.01 }));
  assert.throws(() => canonicalJson({ x: NaN }), /non-finite/);
});

test("each attempt of a run keeps its own environment; the top level is the latest attempt's", () => {
  const run = Run.open({ name: "attempts", seed: 2 }, { root });
  run.writeRecord(2, 0, { backendWhy: "first" });
  // An older record, written before attempts carried their environment, resumed now.
  const file = path.join(run.dir, "record.json");
  const old = JSON.parse(fs.readFileSync(file, "utf8"));
  old.attempts = [{ startedAt: old.attempts[0].startedAt, fromStep: 0 }];
  old.git = { commit: "0123abc", dirty: false };
  fs.writeFileSync(file, JSON.stringify(old));
  const rec = run.writeRecord(2, 50, { backendWhy: "resumed" });
  assert.deepEqual(rec.attempts.map((a) => [a.fromStep, a.git?.commit]), [[0, undefined], [50, rec.git.commit]]);
  assert.notEqual(rec.git.commit, "0123abc", "the top level is the resuming attempt's");
  assert.ok(rec.attempts[1].versions?.tfjs && rec.attempts[1].machine!.cpus > 0);
  assert.equal(rec.backendWhy, "resumed");
});

test("a rerun finds the finished run; force starts over; results load into arquero", () => {
  const cfg = { name: "demo", seed: 1, lr: 0.5 };
  const run = Run.open(cfg, { root });
  assert.equal(run.status, "new");
  const rec = run.writeRecord(1, 0);
  assert.ok(rec.versions.tfjs && rec.machine.cpus > 0 && "dirty" in rec.git);
  assert.equal(run.status, "unfinished");
  run.appendMetrics({ kind: "train", step: 10, loss: 1.5 });
  run.appendMetrics({ kind: "train", step: 20, loss: 1.0 });
  run.appendMetrics({ kind: "eval", step: 20, top1: 0.5 });
  run.writeResults({ top1: 0.75, knn: { knn20: 0.7 } });
  const again = Run.open(cfg, { root });
  assert.equal(again.status, "finished");
  assert.equal(again.results<{ top1: number }>()!.top1, 0.75);
  assert.equal(again.record()!.attempts.length, 1);
  const t = resultsTable(listRuns(root));
  assert.equal(t.numRows(), 1);
  assert.equal(t.get("knn.knn20", 0), 0.7);
  assert.equal(t.get("config.lr", 0), 0.5);
  assert.deepEqual(metricsTable(again, "train").array("loss"), [1.5, 1.0]);
  again.truncateMetrics(10);
  assert.equal(again.metrics().length, 1);
  const forced = Run.open(cfg, { root, force: true });
  assert.equal(forced.status, "new");
});

test("a torn metrics line (killed writer) is skipped by readers", () => {
  const run = Run.open({ name: "torn" }, { root });
  run.appendMetrics({ step: 1 });
  fs.appendFileSync(path.join(run.dir, "metrics.jsonl"), '{"step": 2, "lo');
  assert.deepEqual(run.metrics(), [{ step: 1 }]);
});

test("a write killed mid-way leaves the previous results intact", async () => {
  const run = Run.open({ name: "killed" }, { root });
  run.writeResults({ top1: 0.42 });
  const target = path.join(run.dir, "results.json");
  const before = fs.readFileSync(target, "utf8");
  // The child streams a large new results.json slowly through the atomic writer and is killed
  // (SIGKILL: no cleanup) after it has written part of it.
  const atomic = path.resolve(__dirname, "../../src/ground/atomic.ts");
  const code = `
    const { writeChunksAtomic } = require(${JSON.stringify(atomic)});
    async function* chunks() {
      yield Buffer.from('{"top1": 0.99, "pad": "');
      for (let i = 0; i < 1000; i++) { yield Buffer.alloc(4096, 97); if (i === 3) process.stdout.write("midway\\n"); await new Promise((r) => setTimeout(r, 20)); }
      yield Buffer.from('"}');
    }
    writeChunksAtomic(${JSON.stringify(target)}, chunks());`;
  const child = spawn(process.execPath, ["--import", "tsx", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => { if (d.toString().includes("midway")) { child.kill("SIGKILL"); resolve(); } });
    child.on("exit", () => reject(new Error("child exited before it was killed")));
  });
  await new Promise((r) => child.once("exit", r));
  assert.equal(fs.readFileSync(target, "utf8"), before);
  assert.equal(run.results<{ top1: number }>()!.top1, 0.42);
  const temps = fs.readdirSync(run.dir).filter((f) => f.endsWith(".tmp"));
  assert.equal(temps.length, 1, "the dead writer's temp file is there, beside the intact target");
  Run.open({ name: "killed" }, { root }); // reopening cleans temps of dead writers
  assert.equal(fs.readdirSync(run.dir).filter((f) => f.endsWith(".tmp")).length, 0);
});

test("a different config under an existing id is refused", () => {
  const run = Run.open({ name: "clash", v: 1 }, { root });
  fs.writeFileSync(path.join(run.dir, "config.json"), JSON.stringify({ name: "clash", v: 2 }));
  assert.throws(() => Run.open({ name: "clash", v: 1 }, { root }), /holds a different config/);
});

test("a run finished in another store is imported with its files; a finished run here is kept", () => {
  const cfg = { name: "elsewhere", seed: 3 };
  const there = Run.open(cfg, { root: path.join(root, "worker") });
  there.writeRecord(3, 0);
  there.appendMetrics({ kind: "train", step: 1, loss: 0.5 });
  assert.throws(() => there.finishedFiles(), /not a finished run \(no results\.json\)/);
  there.writeResults({ top1: 0.5 });
  const files = there.finishedFiles();
  const here = Run.importFinished(cfg, JSON.parse(JSON.stringify(files)), root);
  assert.equal(here.status, "finished");
  assert.deepEqual([here.record(), here.metrics(), here.results()], [there.record(), there.metrics(), there.results()]);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(here.dir, "config.json"), "utf8")), cfg);
  const kept = fs.readFileSync(path.join(here.dir, "results.json"), "utf8");
  Run.importFinished(cfg, { ...files, results: { ...files.results, top1: 0.9 } }, root);
  assert.equal(fs.readFileSync(path.join(here.dir, "results.json"), "utf8"), kept);
  assert.throws(() => Run.importFinished({ name: "other" }, files, root), /importing run other-[0-9a-f]{12}: its results are those of 'elsewhere-/);
});
