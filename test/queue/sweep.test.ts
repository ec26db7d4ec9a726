// Sweeps across machines through a real Redis (Debian's redis-server, with a password) and three
// real `study worker` processes on the cpu backend: the table of the in-process sweep, number for
// number; each config run once however often it is enqueued; 100 small jobs, timed; malformed jobs
// refused with their reason, not retried, and the workers go on. The password is never printed.
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "node:path";
import type { ColumnTable } from "arquero";
import { tempDir } from "../support/fixtures";
import { toyStudy, writeToyTree } from "../support/tiny-study";
import { RedisServer, SKIP_REDIS, startRedis } from "../support/redis";
import { WorkerProcess, linesMatching, startWorkers, stopWorkers } from "../support/workers";
import { sweep, Variant } from "../../src/studies/sweep";
import { rowsOf, SweepRow } from "../../src/studies/rows";
import { Run } from "../../src/runs/store";
import { gitState } from "../../src/runtime/record";
import type { ExperimentConfig } from "../../src/studies/config";
import { JOB_NAME, JobData, openQueue, reachQueue, redactUrl, redactor } from "../../src/studies/queue";
import { checkJob } from "../../src/studies/queue-worker";

const dir = tempDir("queue-sweep-test");
process.env.STUDY_DATA_DIR = path.join(dir, "data");
process.env.STUDY_PROGRESS = "plain";
const tree = path.join(dir, "tree");
const PASSWORD = "s3cret-Pw_42";
let redis: RedisServer | undefined;
let workers: WorkerProcess[] = [];
const workerRoot = (i: number) => path.join(dir, `worker${i + 1}`);

before(async () => {
  if (SKIP_REDIS) return;
  await writeToyTree(tree);
  redis = await startRedis({ password: PASSWORD });
  workers = await startWorkers(3, redis.url, { root: workerRoot });
}, { timeout: 180_000 });

after(async () => {
  const exits = await stopWorkers(workers);
  await redis?.stop();
  // SIGTERM: each worker closes its connections and exits 0.
  assert.deepEqual(exits.map((e) => e.code), workers.map(() => 0), workers.map((w) => w.output()).join("\n"));
});

/** Runs `fn` with what it writes to stderr also collected (the sweep's progress lines). */
async function withStderr<T>(fn: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const write = process.stderr.write.bind(process.stderr);
  let stderr = "";
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    stderr += chunk.toString();
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), stderr };
  } finally {
    process.stderr.write = write;
  }
}

const withoutTime = (rows: SweepRow[]) => rows.map(({ train_seconds: _t, ...r }) => r);
const starts = (id: string) => linesMatching(workers, new RegExp(` start ${id} `));

test("passwords are redacted from URLs and messages", () => {
  assert.equal(redactUrl("redis://:pw@host:6379/2"), "redis://:***@host:6379/2");
  assert.equal(redactUrl("rediss://alice:p%40ss@host:6380"), "rediss://alice:***@host:6380");
  assert.equal(redactUrl("redis://host:6379"), "redis://host:6379");
  const r = redactor("redis://:p%40ss@host:6379");
  assert.equal(r("connect to redis://:p%40ss@host:6379 failed; AUTH p@ss refused"), "connect to redis://:***@host:6379 failed; AUTH *** refused");
});

test("a job is checked: only { config, commit, tags }, the worker's commit, a valid config under its run id", () => {
  const config = { ...toyStudy("/nowhere"), name: "toy-s0" };
  const id = Run.idOf(config);
  assert.equal(checkJob(id, { config, commit: "abc", tags: { m: "full" } }, "abc").config.name, "toy-s0");
  assert.throws(() => checkJob(id, { config, commit: "abc", tags: {}, code: "x" }, "abc"), /unknown key 'code'/);
  assert.throws(() => checkJob(id, { config, commit: "abc", tags: {} }, "def"), /enqueued at commit abc, this worker runs def/);
  assert.throws(() => checkJob(id, { config: { ...config, bogus: 1 }, commit: "abc", tags: {} }, "abc"), /bogus: unknown key/);
  assert.throws(() => checkJob("other-id", { config, commit: "abc", tags: {} }, "abc"), new RegExp(`not its config's run id ${id}`));
  assert.match(checkJob(id, { config, commit: null, tags: {} }, "abc").note ?? "", /commit not checked \(the sweep is not a git checkout\)/);
  assert.match(checkJob(id, { config, commit: "abc", tags: {} }, null).note ?? "", /commit not checked \(this worker is not a git checkout\)/);
});

test("a sweep through 3 workers gives the in-process sweep's table; enqueued again, nothing runs twice", { skip: SKIP_REDIS, timeout: 240_000 }, async () => {
  const url = redis!.url;
  const base = toyStudy(tree);
  const variants: Variant[] = [
    { tags: { method: "full" } },
    { tags: { method: "linear" }, strategy: { kind: "linear" } },
    { tags: { method: "lora" }, strategy: { kind: "lora", rank: 2 } },
    { tags: { method: "broken" }, strategy: { kind: "top-k", k: 5 } }, // fails when it starts, anywhere
  ];
  const local = await sweep(base, variants, { root: path.join(dir, "local"), backend: "cpu", queue: "" });
  const localRows = rowsOf(local);
  assert.deepEqual(localRows.map((r) => r.status), ["trained", "trained", "trained", "failed"]);

  // Two notebooks enqueue the same sweep at once: one job per config.
  const rootA = path.join(dir, "a"), rootB = path.join(dir, "b");
  const { value: [a, b], stderr } = await withStderr(() => Promise.all([sweep(base, variants, { root: rootA, queue: url }), sweep(base, variants, { root: rootB, queue: url })]));
  for (const t of [a, b] as ColumnTable[]) {
    assert.deepEqual(t.columnNames(), local.columnNames(), "the same columns");
    assert.deepEqual(withoutTime(rowsOf(t)), withoutTime(localRows), "the same rows, number for number (train_seconds aside)");
  }
  const ids = localRows.map((r) => String(r.id));
  for (const id of ids) assert.equal(starts(id).length, 1, `${id} started once on all workers together`);
  assert.match(linesMatching(workers, new RegExp(`FAILED ${ids[3]}`))[0].line.text, /not retried: the config cannot run anywhere/);
  assert.match(stderr, new RegExp(`4/4 runs \\(0 reused, 1 FAILED\\) on redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis!.port}`), "the progress display follows the queue");

  // The runs came back into the local store with the run store's files, as the workers wrote them.
  for (const id of ids.slice(0, 3)) {
    const ranOn = linesMatching(workers, new RegExp(` finished ${id} `))[0].worker;
    const there = Run.load(id, workerRoot(Number(ranOn.slice(1)) - 1));
    for (const root of [rootA, rootB]) {
      const here = Run.load(id, root);
      assert.equal(here.status, "finished");
      assert.deepEqual(here.config, there.config);
      assert.deepEqual(here.record(), there.record());
      assert.deepEqual(here.metrics(), there.metrics());
      assert.deepEqual(here.results(), there.results());
      assert.equal(here.record()!.machine.hostname, there.record()!.machine.hostname);
    }
  }

  // Enqueued again from a fresh store: the completed jobs' results, nothing trained again; the
  // failed config is tried again, as a local sweep retries failed runs.
  const c = rowsOf(await sweep(base, variants, { root: path.join(dir, "c"), queue: url }));
  assert.deepEqual(c.map((r) => r.status), ["reused", "reused", "reused", "failed"]);
  assert.deepEqual(withoutTime(c).map(({ status: _s, ...r }) => r), withoutTime(localRows).map(({ status: _s, ...r }) => r));
  for (const id of ids.slice(0, 3)) assert.equal(starts(id).length, 1, `${id} not run again`);
  assert.equal(starts(ids[3]).length, 2);
  // From the store that holds them: not even enqueued.
  const again = rowsOf(await sweep(base, variants.slice(0, 3), { root: rootA, queue: url }));
  assert.deepEqual(again.map((r) => r.status), ["reused", "reused", "reused"]);

  // STUDY_QUEUE sends a sweep to the queue; the option overrides it ("" runs here).
  process.env.STUDY_QUEUE = url;
  try {
    const viaEnv = rowsOf(await sweep(base, variants.slice(0, 1), { root: path.join(dir, "d") }));
    assert.equal(viaEnv[0].status, "reused", "the completed job's results");
    const here = rowsOf(await sweep(base, variants.slice(0, 1), { root: path.join(dir, "e"), backend: "cpu", queue: "" }));
    assert.equal(here[0].status, "trained", "run here");
    assert.equal(starts(ids[0]).length, 1);
  } finally {
    delete process.env.STUDY_QUEUE;
  }

  for (const w of workers) {
    assert.ok(!w.output().includes(PASSWORD), `${w.name} never prints the password`);
    assert.match(w.output(), new RegExp(`taking runs from redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis!.port} `));
  }
  assert.ok(!stderr.includes(PASSWORD), "the sweep never prints the password");
});

test("a queue that cannot be reached, or refuses the password, is a clear error with the password redacted", { skip: SKIP_REDIS }, async () => {
  const port = redis!.port;
  const cases: [string, RegExp][] = [
    [`redis://:wrong-${PASSWORD}@127.0.0.1:${port}`, /redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ within 1 s \(WRONGPASS/],
    [`redis://127.0.0.1:${port}`, /within 1 s \(NOAUTH Authentication required/],
    [`redis://:${PASSWORD}@127.0.0.1:1`, /redis:\/\/:\*\*\*@127\.0\.0\.1:1 within 1 s \(connect ECONNREFUSED/],
  ];
  for (const [url, re] of cases) {
    const e = await reachQueue(url, 1).then(() => undefined, (err: Error) => err);
    assert.ok(e, `${redactUrl(url)} is not reachable`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes(PASSWORD));
  }
  await reachQueue(redis!.url, 1);
  await assert.rejects(sweep(toyStudy(tree), [{}], { queue: "http://127.0.0.1:1" }), /queue 'http:\/\/127\.0\.0\.1:1' is not a Redis URL/);
});

test("100 small jobs through 3 workers: each done exactly once, none lost (timed)", { skip: SKIP_REDIS, timeout: 240_000 }, async (t) => {
  const small: ExperimentConfig = { ...toyStudy(tree, 2), name: "small" };
  delete small.retention;
  const variants: Variant[] = Array.from({ length: 100 }, (_, i) => ({ tags: { job: i }, seed: i }));
  const monitor = openQueue(redis!.url);
  const counts = async () => {
    const c = await monitor.getJobCounts("completed", "failed", "active", "waiting", "delayed", "prioritized");
    return { completed: c.completed, failed: c.failed, all: Object.values(c).reduce((s, n) => s + n, 0) };
  };
  try {
    const base = await counts();
    const t0 = Date.now();
    let enqueued = NaN, first = NaN, last = NaN;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const n = await counts();
        const at = Date.now() - t0;
        if (Number.isNaN(enqueued) && n.all - base.all >= 100) enqueued = at;
        if (Number.isNaN(first) && n.completed > base.completed) first = at;
        if (Number.isNaN(last) && n.completed - base.completed >= 100) last = at;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const rows = rowsOf(await sweep(small, variants, { root: path.join(dir, "hundred"), queue: redis!.url }));
    const returned = Date.now() - t0;
    watching = false;
    await watch;
    assert.equal(rows.length, 100);
    assert.deepEqual([...new Set(rows.map((r) => r.status))], ["trained"]);
    const ids = rows.map((r) => String(r.id));
    assert.equal(new Set(ids).size, 100);
    const end = await counts();
    assert.equal(end.completed - base.completed, 100, "100 more completed jobs in Redis");
    assert.equal(end.failed, base.failed, "none failed");
    for (const id of ids) {
      assert.equal(starts(id).length, 1, `${id} started once`);
      assert.equal(linesMatching(workers, new RegExp(` finished ${id} `)).length, 1, `${id} finished once`);
    }
    const perWorker = workers.map((w) => `${w.name} ${w.lines.filter((l) => / finished small-s/.test(l.text)).length}`);
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    t.diagnostic(`100 jobs, 3 workers: all enqueued after ${s(enqueued)}, first result ${s(first)}, last result ${s(last)}, sweep returned ${s(returned)}; ` +
      `${(100 / (last / 1000)).toFixed(1)} jobs/s overall, ${(99 / ((last - first) / 1000)).toFixed(1)} jobs/s between first and last; per worker: ${perWorker.join(", ")}`);
  } finally {
    await monitor.close();
  }
});

test("a malformed job is refused with its reason, not retried, and the workers go on", { skip: SKIP_REDIS, timeout: 120_000 }, async () => {
  const queue = openQueue(redis!.url);
  try {
    const commit = gitState().commit;
    const valid = (seed: number): ExperimentConfig => ({ ...toyStudy(tree), name: `odd-s${seed}`, seed });
    const add = (id: string, data: unknown) => queue.add(JOB_NAME, data as JobData, { jobId: id, attempts: 3, backoff: { type: "fixed", delay: 100 } });
    const bogus = { ...valid(101), bogus: 1 };
    const bad: { id: string; reason: RegExp }[] = [];
    bad.push({ id: Run.idOf(bogus), reason: /bogus: unknown key/ });
    await add(Run.idOf(bogus), { config: bogus, commit, tags: { case: "unknown config key" } });
    const other = valid(102);
    bad.push({ id: Run.idOf(other), reason: /enqueued at commit 0123456789ab, this worker runs/ });
    await add(Run.idOf(other), { config: other, commit: "0123456789abcdef0123456789abcdef01234567", tags: { case: "other commit" } });
    const code = valid(103);
    bad.push({ id: Run.idOf(code), reason: /unknown key 'code'/ });
    await add(Run.idOf(code), { config: code, commit, tags: {}, code: "require('child_process').execSync('touch /tmp/pwned')" });
    bad.push({ id: "not-its-run-id", reason: /the id is not its config's run id/ });
    await add("not-its-run-id", { config: valid(104), commit, tags: {} });
    const good = [105, 106, 107, 108, 109, 110].map(valid);
    for (const g of good) await add(Run.idOf(g), { config: g, commit, tags: { case: "good" } });

    const settled = async (id: string) => {
      for (let i = 0; i < 1200; i++) {
        const s = await queue.getJobState(id);
        if (s === "completed" || s === "failed") return s;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`job ${id} did not finish`);
    };
    for (const b of bad) {
      assert.equal(await settled(b.id), "failed", b.id);
      const job = (await queue.getJob(b.id))!;
      assert.match(job.failedReason, b.reason);
      assert.equal(job.attemptsStarted, 1, `${b.id}: not retried (attempts 3 allowed)`);
      assert.equal(linesMatching(workers, new RegExp(`REFUSED ${b.id}: .*\\(not retried\\)`)).length, 1);
    }
    for (const g of good) assert.equal(await settled(Run.idOf(g)), "completed");
    await new Promise((r) => setTimeout(r, 500)); // a retry would have come by now (backoff 100 ms)
    for (const b of bad) assert.equal((await queue.getJob(b.id))!.attemptsStarted, 1);
    for (const w of workers) assert.equal(w.proc.exitCode, null, `${w.name} still runs`);
    // The bad jobs came first (the queue is FIFO): a worker that refused one took a good one next.
    const wentOn = workers.filter((w) => {
      const refused = w.lines.findIndex((l) => / REFUSED /.test(l.text));
      return refused >= 0 && w.lines.slice(refused + 1).some((l) => / finished odd-s1(0[5-9]|10)-/.test(l.text));
    });
    assert.ok(wentOn.length > 0, workers.map((w) => w.output()).join("\n"));
  } finally {
    await queue.close();
  }
});
