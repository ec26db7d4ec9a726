// Faults in a sweep across machines, with a real Redis and real `study worker` processes: a worker
// killed with SIGKILL in the middle of a run (its job is taken up again once its lock expires and
// resumes from the last checkpoint in the shared run store: same numbers, the run finished once),
// a worker stopped with SIGTERM (it hands its run back at once and exits 0), and Redis restarted
// in the middle of a sweep (persistence on: no job lost, same numbers).
import { after, before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../support/fixtures";
import { toyStudy, writeToyTree } from "../support/tiny-study";
import { RedisServer, SKIP_REDIS, startRedis } from "../support/redis";
import { WorkerProcess, linesMatching, startWorkers, stopWorkers } from "../support/workers";
import { sweep, Variant } from "../../src/studies/sweep";
import { rowsOf, SweepRow } from "../../src/studies/rows";
import { Run } from "../../src/runs/store";
import { listCheckpoints } from "../../src/training/checkpoint";
import { openQueue } from "../../src/studies/queue";

const dir = tempDir("queue-faults-test");
process.env.STUDY_DATA_DIR = path.join(dir, "data");
process.env.STUDY_PROGRESS = "off";
const tree = path.join(dir, "tree");
let treeWritten: Promise<void> | undefined;
const toyTree = () => (treeWritten ??= writeToyTree(tree));

const withoutTime = (rows: SweepRow[]) => rows.map(({ train_seconds: _t, ...r }) => r);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const checkpointStep = (root: string, id: string) => listCheckpoints(path.join(root, id, "checkpoints")).at(-1)?.step ?? 0;

describe("workers that die or are stopped, on a shared run store", { skip: SKIP_REDIS }, () => {
  const LOCK = 3;
  const shared = path.join(dir, "shared-runs"); // one run store for all workers, as on a network file system
  let redis: RedisServer;
  let workers: WorkerProcess[] = [];
  let killed: WorkerProcess | undefined;
  before(async () => {
    await toyTree();
    redis = await startRedis();
    workers = await startWorkers(3, redis.url, { root: () => shared, lockSeconds: LOCK, prefix: "k" });
  }, { timeout: 120_000 });
  after(async () => {
    const exits = await stopWorkers(workers);
    await redis?.stop();
    for (const [i, w] of workers.entries()) if (w !== killed) assert.equal(exits[i].code, 0, w.output());
  });
  const base = toyStudy(tree, 40);

  test("a worker killed with SIGKILL mid-run: its job is taken up again, resumes, and finishes once", { timeout: 180_000 }, async (t) => {
    const variants: Variant[] = [{ tags: { method: "full" } }, { tags: { method: "lora" }, strategy: { kind: "lora", rank: 2 } }];
    const expected = rowsOf(await sweep(base, variants, { root: path.join(dir, "kill-local"), backend: "cpu", queue: "" }));

    const pending = sweep(base, variants, { root: path.join(dir, "kill-notebook"), queue: redis.url });
    // Kill the worker of the first run that has a checkpoint past step 10 and has not finished.
    let victim: { id: string; step: number; at: number } | undefined;
    for (let i = 0; !victim; i++) {
      assert.ok(i < 3000, "no run reached step 10");
      for (const { worker, line } of linesMatching(workers, / start \S+ /)) {
        const id = / start (\S+) /.exec(line.text)![1];
        const step = checkpointStep(shared, id);
        if (step >= 10 && !fs.existsSync(path.join(shared, id, "results.json"))) {
          killed = workers.find((x) => x.name === worker)!;
          killed.proc.kill("SIGKILL");
          victim = { id, step, at: Date.now() };
          break;
        }
      }
      await sleep(10);
    }
    assert.equal((await killed!.exited).signal, "SIGKILL");
    const rows = rowsOf(await pending);
    assert.deepEqual(withoutTime(rows), withoutTime(expected), "the numbers of the in-process sweep");

    const again = linesMatching(workers, new RegExp(` start ${victim.id} .*after 1 stalled`));
    assert.equal(again.length, 1, "taken up again by one other worker");
    assert.notEqual(again[0].worker, killed!.name);
    const pickup = again[0].line.at - victim.at;
    assert.ok(pickup < 4 * LOCK * 1000, `taken up ${s(pickup)} after the kill`);
    // Finished once: one 'finished' line, one final metrics line, two attempts, the second from its checkpoint.
    const logs = workers.map((w) => w.output()).join("\n");
    assert.equal(linesMatching(workers, new RegExp(` finished ${victim.id} `)).length, 1, logs);
    const run = Run.load(victim.id, shared);
    assert.equal(run.metrics().filter((m) => m.kind === "final").length, 1);
    const attempts = run.record()!.attempts;
    assert.equal(attempts.length, 2, `${JSON.stringify(attempts)}\n${logs}`);
    assert.ok(attempts[1].fromStep >= 10, `resumed from its checkpoint (step ${attempts[1].fromStep}; killed at a checkpoint of step ${victim.step})`);
    assert.deepEqual(Run.load(victim.id, path.join(dir, "kill-notebook")).record()!.attempts, attempts, "the imported record says so too");
    const other = rows.map((r) => String(r.id)).find((id) => id !== victim!.id)!;
    assert.equal(Run.load(other, shared).record()!.attempts.length, 1, `the other run ran once\n${logs}`);
    const queue = openQueue(redis.url);
    const job = (await queue.getJob(victim.id))!;
    await queue.close();
    assert.equal(job.stalledCounter, 1);
    t.diagnostic(`lock ${LOCK} s: killed at a checkpoint of step ${victim.step}; taken up again by ${again[0].worker} ${s(pickup)} after the SIGKILL, resumed from step ${attempts[1].fromStep}`);
  });

  test("a worker that loses its job's lock stops its run; the job is taken up again and finishes once", { timeout: 180_000 }, async (t) => {
    const variants: Variant[] = [{ tags: { method: "lora r4" }, strategy: { kind: "lora", rank: 4 } }];
    // Long enough that the holder renews its lock (every LOCK/2 s) before the run ends: with the 40
    // steps of the other tests, a fast run could finish first, and its worker then only learns of
    // the lost lock when it reports the run (which the next attempt finds finished in the store).
    const long = toyStudy(tree, 200);
    const expected = rowsOf(await sweep(long, variants, { root: path.join(dir, "lock-local"), backend: "cpu", queue: "" }));
    const id = String(expected[0].id);
    const alive = workers.filter((w) => w !== killed);
    const pending = sweep(long, variants, { root: path.join(dir, "lock-notebook"), queue: redis.url });
    const holder = await Promise.race(alive.map((w) => w.waitFor(new RegExp(` start ${id} `), 60_000).then(() => w)));
    while (checkpointStep(shared, id) < 10) await sleep(10);
    // What a lock that expired looks like to its holder (its worker was cut off from Redis too long).
    const Redis = (require("ioredis") as typeof import("ioredis")).default;
    const client = new Redis(redis.url);
    const cutAt = checkpointStep(shared, id);
    assert.equal(await client.del(`bull:study-runs:${id}:lock`), 1);
    client.disconnect();
    const cut = Date.now();
    const stopped = await holder.waitFor(new RegExp(`lost the lock of ${id} .*its run here stopped`));
    const rows = rowsOf(await pending);
    assert.deepEqual(withoutTime(rows), withoutTime(expected));
    const logs = workers.map((w) => w.output()).join("\n");
    const again = linesMatching(workers, new RegExp(` start ${id} .*after 1 stalled`));
    assert.equal(again.length, 1, logs);
    assert.equal(linesMatching(workers, new RegExp(` finished ${id} `)).length, 1, logs);
    const attempts = Run.load(id, shared).record()!.attempts;
    assert.equal(attempts.length, 2, logs);
    assert.ok(attempts[1].fromStep >= 10, `resumed from step ${attempts[1].fromStep}`);
    assert.equal(Run.load(id, shared).metrics().filter((m) => m.kind === "final").length, 1);
    assert.ok(!logs.includes("FAILED"), "a lost lock is not a failure of the run");
    t.diagnostic(`lock deleted at a checkpoint of step ${cutAt}: ${holder.name} stopped its run ${s(stopped.at - cut)} later; ${again[0].worker} took the job up ${s(again[0].line.at - cut)} after the lock went, from step ${attempts[1].fromStep}`);
  });

  test("SIGTERM mid-run: the worker exits 0 at once and its run goes to another worker, not after the lock", { timeout: 180_000 }, async (t) => {
    const variants: Variant[] = [{ tags: { method: "linear" }, strategy: { kind: "linear" } }];
    const expected = rowsOf(await sweep(base, variants, { root: path.join(dir, "term-local"), backend: "cpu", queue: "" }));
    const id = String(expected[0].id);
    const alive = workers.filter((w) => w !== killed);
    const pending = sweep(base, variants, { root: path.join(dir, "term-notebook"), queue: redis.url });
    const first = await Promise.race(alive.map((w) => w.waitFor(new RegExp(` start ${id} `), 60_000).then(() => w)));
    while (checkpointStep(shared, id) < 10) await sleep(10);
    const term = Date.now();
    first.proc.kill("SIGTERM");
    assert.equal((await first.exited).code, 0, first.output());
    const exitedAfter = Date.now() - term;
    assert.match(first.output(), new RegExp(`left ${id} to the queue`));
    const rows = rowsOf(await pending);
    assert.deepEqual(withoutTime(rows), withoutTime(expected));
    const other = alive.find((w) => w !== first)!;
    const again = await other.waitFor(new RegExp(` start ${id} `));
    assert.doesNotMatch(again.text, /stalled/, "handed back, not found stalled");
    assert.ok(again.at - term < 1000 * LOCK, `taken up ${s(again.at - term)} after SIGTERM, before its lock could expire`);
    const attempts = Run.load(id, shared).record()!.attempts;
    assert.equal(attempts.length, 2);
    assert.ok(attempts[1].fromStep >= 10, `resumed from step ${attempts[1].fromStep}`);
    assert.equal(linesMatching(workers, new RegExp(` finished ${id} `)).length, 1);
    t.diagnostic(`SIGTERM: the worker exited after ${s(exitedAfter)}; ${other.name} took the run up ${s(again.at - term)} after the signal, from step ${attempts[1].fromStep}`);
  });
});

test("Redis restarted in the middle of a sweep (persistence on): no job lost, the sweep completes", { skip: SKIP_REDIS, timeout: 180_000 }, async (t) => {
  await toyTree();
  const redis = await startRedis();
  const workers = await startWorkers(2, redis.url, { root: (i) => path.join(dir, `restart-worker${i + 1}`), lockSeconds: 10, prefix: "r" });
  try {
    const base = toyStudy(tree, 10);
    // Eight short runs on two workers: while Redis is down no job can be fetched, so however fast the
    // runs are, at most the first finisher's next job and the two in flight were taken before it went.
    const variants: Variant[] = [0, 1, 2, 3].flatMap((seed) => [
      { tags: { method: "full" }, seed },
      { tags: { method: "lora" }, strategy: { kind: "lora" as const, rank: 2 }, seed },
    ]);
    const expected = rowsOf(await sweep(base, variants, { root: path.join(dir, "restart-local"), backend: "cpu", queue: "" }));

    const t0 = Date.now();
    const pending = sweep(base, variants, { root: path.join(dir, "restart-notebook"), queue: redis.url });
    await Promise.race(workers.map((w) => w.waitFor(/ finished /, 120_000)));
    const finishedBefore = linesMatching(workers, / finished /).length;
    const startedBefore = linesMatching(workers, / start /).length;
    const down = Date.now();
    await redis.restart(1000);
    const up = Date.now();
    const rows = rowsOf(await pending);
    const end = Date.now();
    assert.ok(finishedBefore < variants.length && startedBefore < variants.length, "the restart came in the middle of the sweep");
    assert.deepEqual(withoutTime(rows), withoutTime(expected), "the numbers of the in-process sweep");
    const queue = openQueue(redis.url);
    const states = await Promise.all(rows.map((r) => queue.getJobState(String(r.id))));
    await queue.close();
    assert.deepEqual(states, rows.map(() => "completed"), "every job is in Redis, completed");
    const logs = workers.map((w) => w.output()).join("\n");
    for (const r of rows) assert.equal(linesMatching(workers, new RegExp(` finished ${r.id} `)).length, 1, `${r.id} finished once\n${logs}`);
    const startedAfter = linesMatching(workers, / start /).filter((l) => l.line.at >= up).length;
    assert.ok(startedAfter > 0, "runs were taken from the restarted Redis");
    t.diagnostic(`${finishedBefore} finished and ${startedBefore} started of ${variants.length} runs when Redis went down for ${s(up - down)} (${s(down - t0)} into the sweep); ` +
      `${startedAfter} runs were taken after it came back, and the sweep completed ${s(end - up)} after that`);
  } finally {
    const exits = await stopWorkers(workers);
    await redis.stop();
    assert.deepEqual(exits.map((e) => e.code), [0, 0], workers.map((w) => w.output()).join("\n"));
  }
});
