// Sweeps across machines: a sweep's runs as jobs on a Redis queue (BullMQ), taken by `study worker`s
// on other machines (src/studies/queue-worker.ts), which run them with runStudy as a local sweep
// does and return the run's record, metrics and results. The sweep imports those into the local
// run store and builds its rows from there, so the table is the one a local sweep gives.
//   const rows = await sweep(base, variants, { queue: "redis://gpu-box:6379" }); // or STUDY_QUEUE
// A job carries a config, never code: { config, commit, tags }. Its id is the run id, so a config
// is one job however often, and from however many notebooks, it is enqueued.
import type { ConnectionOptions, Job, JobsOptions, Queue } from "bullmq";
import { createProgress, formatDuration } from "../ground/progress";
import { FinishedRunFiles, Run } from "../runs/store";
import { gitState } from "../runtime/record";
import type { RunProgress } from "./experiment";
import { NO_COST } from "./plan";
import type { SweepRow } from "./rows";
import type { SweepEntry, Tags } from "./rows";
import { StudyConfig, StudyOutcome, studyCost, storedOutcome, studyRow } from "./kinds";

export const QUEUE_NAME = "study-runs";
export const JOB_NAME = "run";

/** What a job carries: a run config (never code), the commit it was enqueued at, the variant's tags (for logs). */
export interface JobData {
  config: StudyConfig;
  commit: string | null;
  tags: Tags;
}

/** What a worker returns: the finished run's files, whether its store already held the run, and who ran it. */
export interface JobResult extends FinishedRunFiles {
  reused: boolean;
  worker: string;
}

/** A job's progress updates: the run's step or measurement, and the worker running it. */
export interface JobProgressInfo extends RunProgress {
  worker: string;
}

/**
 * Job options, chosen for faults:
 * - attempts 3, exponential backoff from 10 s: a transient failure (a GPU out of memory, a network
 *   file system hiccup, a worker without an input) is retried, by any worker; where the run store
 *   is shared the retry resumes from the run's last checkpoint. A job that cannot work anywhere (a
 *   bad config, another commit) is failed at once with UnrecoverableError, not retried.
 * - removeOnComplete keeps the last 10 000: a completed job holds its run's results, so a sweep
 *   enqueued again (from another notebook, or after its local run store was lost) gets them without
 *   running anything; the count bounds Redis memory.
 * - removeOnFail keeps them too, with their reason; a sweep that enqueues a failed config again
 *   replaces it (as a local sweep retries failed runs).
 * What a worker's death does is in the worker's options (lock, stalled checks): src/studies/queue-worker.ts.
 */
export const JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: "exponential", delay: 10_000 },
  removeOnComplete: { count: 10_000 },
  removeOnFail: { count: 10_000 },
};

const bullmq = () => require("bullmq") as typeof import("bullmq");
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The URL as given, after a check of its scheme (ioredis reads password, db and TLS from it). */
export function checkQueueUrl(url: string): string {
  if (!/^rediss?:\/\/\S+$/.test(url)) throw new Error(`queue '${redactUrl(url)}' is not a Redis URL: redis://[[user]:password@]host[:port][/db], or rediss://... for TLS`);
  return url;
}

// scheme://userinfo@ — userinfo runs to the last '@' before the path, as URL parsers read it.
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#]*)@/gi;

function passwordOf(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^\s/?#]*)@/i.exec(url);
  const i = m ? m[1].indexOf(":") : -1;
  return m && i >= 0 ? m[1].slice(i + 1) : "";
}

/** The URL with its password replaced by `***` (user names and hosts stay). */
export function redactUrl(url: string): string {
  return url.replace(USERINFO, (_all, scheme: string, info: string) => {
    const i = info.indexOf(":");
    return `${scheme}${i < 0 ? info : `${info.slice(0, i)}:***`}@`;
  });
}

/** A function that removes the queue's password from any text: in URLs, and the password itself. */
export function redactor(url: string): (text: string) => string {
  const raw = passwordOf(url);
  let decoded = raw;
  try { decoded = decodeURIComponent(raw); } catch { /* not percent-encoded */ }
  const secrets = [...new Set([raw, decoded])].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  return (text) => secrets.reduce((t, s) => t.split(s).join("***"), redactUrl(text));
}

/**
 * Connection options: the URL goes to ioredis as it is (user, password, db; rediss:// turns TLS
 * on). Commands wait out a lost connection instead of failing (`maxRetriesPerRequest: null`, which
 * BullMQ's workers require), and reconnects come at most 2 s apart, so a restarted Redis is found
 * again within seconds and a sweep or worker goes on where it was.
 */
export function connectionOptions(url: string): ConnectionOptions {
  return { url, maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(200 * times, 2000) };
}

export function openQueue(url: string): Queue<JobData, JobResult> {
  return new (bullmq().Queue)<JobData, JobResult>(QUEUE_NAME, { connection: connectionOptions(url), defaultJobOptions: JOB_OPTIONS });
}

/**
 * Resolves once the queue answers PING; rejects after `seconds` with the queue (its password
 * redacted) and the reason (refused, wrong password, TLS). A client of its own that gives up:
 * BullMQ's wait for Redis forever, which is right once a sweep or a worker is under way.
 */
export async function reachQueue(url: string, seconds = 15): Promise<void> {
  const Redis = (require("ioredis") as typeof import("ioredis")).default;
  const redact = redactor(url);
  const t0 = Date.now();
  let why = "";
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 5000 });
    let seen = ""; // the first error says why (refused, WRONGPASS); "Connection is closed" follows it
    client.on("error", (e: Error) => { seen ||= e.message; });
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (e) {
      why = redact(seen || (e instanceof Error ? e.message : String(e)));
    } finally {
      client.disconnect();
    }
    if (Date.now() - t0 > seconds * 1000) throw new Error(`cannot reach the queue at ${redactUrl(url)} within ${seconds} s (${why}): is redis-server running there, and are the URL and its password right?`);
    await sleep(500);
  }
}

/**
 * Says each kind of error once per 10 s: a lost connection (a restarting Redis, a network hiccup;
 * commands are retried meanwhile) would otherwise print a line per reconnect.
 */
export function errorNotes(say: (line: string) => void, redact: (s: string) => string): (e: Error) => void {
  const noted = new Map<string, number>();
  return (e) => {
    const text = redact(e.message);
    if (Date.now() - (noted.get(text) ?? 0) < 10_000) return;
    noted.set(text, Date.now());
    say(text);
  };
}

/**
 * Puts runs on the queue, each under its id, in one batch. Returns the ids the queue already holds
 * completed (their results are there). A failed job is replaced (a sweep retries failed runs); a
 * waiting one from another commit gets this sweep's data (up-to-date workers would refuse it).
 */
async function enqueue(queue: Queue<JobData, JobResult>, jobs: Map<string, JobData>): Promise<Set<string>> {
  const ids = [...jobs.keys()];
  const states = await Promise.all(ids.map((id) => queue.getJobState(id)));
  const completed = new Set<string>();
  const add: string[] = [];
  await Promise.all(ids.map(async (id, k) => {
    const state = states[k];
    if (state === "completed") completed.add(id);
    else if (state === "unknown") add.push(id);
    else if (state === "failed") {
      const removed = await (await queue.getJob(id))?.remove().then(() => true, () => false); // false: taken by another sweep meanwhile
      if (removed) add.push(id);
    } else if (state !== "active") {
      const job = await queue.getJob(id);
      if (job && job.data.commit !== jobs.get(id)!.commit) await job.updateData(jobs.get(id)!).catch(() => undefined);
    }
  }));
  // A job with one of these ids that appeared meanwhile (another sweep) is kept: adding does not replace it.
  if (add.length) await queue.addBulk(add.map((id) => ({ name: JOB_NAME, data: jobs.get(id)!, opts: { jobId: id } })));
  return completed;
}

function progressOf(p: unknown): JobProgressInfo | undefined {
  const o = p as Partial<JobProgressInfo> | null;
  return o && typeof o === "object" && typeof o.step === "number" && typeof o.steps === "number" && typeof o.phase === "string" ? (o as JobProgressInfo) : undefined;
}

function isJobResult(r: unknown): r is JobResult {
  const o = r as Partial<JobResult> | null;
  return !!o && typeof o === "object" && !!o.record && !!o.results && Array.isArray(o.metrics);
}

const POLL_MS = 250;

/**
 * The queue half of `sweep`: enqueues the runs this store does not hold finished, follows their
 * jobs in one progress display, imports each finished run, and returns the rows (in the order of
 * `entries`) that the local sweep would. A failed job is a failed row with its reason.
 */
export async function queueSweep(entries: SweepEntry[], opts: { url: string; root: string; label: string }): Promise<SweepRow[]> {
  const url = checkQueueUrl(opts.url);
  const { root, label } = opts;
  const where = redactUrl(url);
  const redact = redactor(url);
  const rows: SweepRow[] = new Array<SweepRow>(entries.length);
  let trained = 0, reused = 0, failed = 0;
  // Runs finished here are reused, as a local sweep reuses them; the same config twice is one job.
  const byId = new Map<string, number[]>();
  for (const [i, e] of entries.entries()) {
    if (Run.statusOf(e.config, root) === "finished") {
      rows[i] = studyRow(e.tags, e.config, e.id, storedOutcome(e.config, Run.open(e.config, { root }), true));
      reused++;
    } else byId.set(e.id, [...(byId.get(e.id) ?? []), i]);
  }
  if (byId.size === 0) return rows;

  await reachQueue(url);
  const queue = openQueue(url);
  queue.on("error", errorNotes((line) => process.stderr.write(`${label}: queue ${where}: ${line}\n`), redact));
  try {
    const { commit, dirty } = gitState();
    // Workers check the commit, not the working tree: one on another checkout of this commit
    // runs without these changes (its run's record.json says which code it ran).
    if (dirty) process.stderr.write(`${label}: this checkout has uncommitted changes; only workers on this checkout run them, workers elsewhere run commit ${commit?.slice(0, 12)} as committed\n`);
    const dataOf = (id: string): JobData => {
      const e = entries[byId.get(id)![0]];
      return { config: e.config, commit, tags: e.tags };
    };
    const done = await enqueue(queue, new Map([...byId.keys()].map((id) => [id, dataOf(id)])));

    const cost = (id: string) => { const c = studyCost(entries[byId.get(id)![0]].config); return c instanceof Error ? NO_COST : c; };
    const costs = new Map([...byId.keys()].map((id) => [id, cost(id)]));
    const total = [...costs.values()].reduce((s, c) => s + c.totalMacs, 0);
    let doneMacs = 0;
    let now = "";
    const progress = createProgress(label, Math.max(total, 1), {
      unit: "MAC",
      format: (s) => {
        const head = `${label}: ${trained + reused + failed}/${entries.length} runs (${reused} reused${failed ? `, ${failed} FAILED` : ""}) on ${where}`;
        const time = `${formatDuration(s.elapsed)} elapsed${s.done < s.total && Number.isFinite(s.eta) ? `, ~${formatDuration(s.eta)} left` : ""}`;
        return `${head} · ${now || "done"} · ${time}`;
      },
    });
    const nameOf = (id: string, sep = "") => { const e = entries[byId.get(id)![0]]; return `${Object.values(e.tags).join(" ") || e.config.name}${sep} seed ${e.config.seed}`; };

    // Settles every entry of a finished job: imported into this store, or failed with its reason.
    const settle = (id: string, r: JobResult | Error, wasDone: boolean) => {
      for (const [k, i] of byId.get(id)!.entries()) {
        const e = entries[i];
        let o: StudyOutcome | Error = r instanceof Error ? r : new Error(`job ${id}: its return value is not a finished run`);
        if (isJobResult(r)) {
          try {
            // A repeated config in the sweep is the same run: reused after its first row, as locally.
            o = storedOutcome(e.config, Run.importFinished(e.config, r, root), wasDone || r.reused || k > 0);
          } catch (err) {
            o = err instanceof Error ? err : new Error(String(err));
          }
        }
        rows[i] = studyRow(e.tags, e.config, e.id, o);
        if (o instanceof Error) {
          failed++;
          process.stderr.write(`${label}: run ${e.id} (${nameOf(id, ",")}) FAILED: ${redact(o.message)}\n`);
        } else if (o.out.reused) reused++;
        else trained++;
      }
      doneMacs += costs.get(id)!.totalMacs;
    };

    const open = new Set(byId.keys());
    while (open.size) {
      const ids = [...open];
      const states = await Promise.all(ids.map((id) => queue.getJobState(id)));
      const running: string[] = [];
      const lost = new Map<string, JobData>();
      let runningMacs = 0, waiting = 0;
      for (const [k, id] of ids.entries()) {
        const state = states[k];
        if (state === "unknown") {
          lost.set(id, dataOf(id));
          waiting++;
          continue;
        }
        if (state !== "completed" && state !== "failed" && state !== "active") {
          waiting++;
          continue;
        }
        const job: Job<JobData, JobResult> | undefined = await queue.getJob(id);
        if (!job) continue; // removed in between: seen as lost on the next pass
        if (state === "active") {
          const p = progressOf(job.progress);
          running.push(`${nameOf(id)}: ${!p ? "starting" : p.phase === "train" ? `step ${p.step}/${p.steps}` : `${p.phase} at step ${p.step}`}${p ? ` (${p.worker})` : ""}`);
          if (p) runningMacs += 0.999 * costs.get(id)!.trainMacs * Math.min(1, p.step / Math.max(1, p.steps));
          continue;
        }
        open.delete(id);
        settle(id, state === "completed" ? job.returnvalue : new Error(job.failedReason || `job ${id} failed`), done.has(id));
      }
      // Lost jobs (evicted, removed, or a Redis that lost its data) go on the queue again.
      if (lost.size) await enqueue(queue, lost);
      const shown = running.slice(0, 3).join(", ") + (running.length > 3 ? `, +${running.length - 3} more` : "");
      now = open.size === 0 ? "" : `${running.length ? `${running.length} running: ${shown}` : "no run in progress"}${waiting ? ` · ${waiting} waiting for a worker` : ""}`;
      progress.update(Math.min(doneMacs + runningMacs, total));
      if (open.size) await sleep(POLL_MS);
    }
    now = "";
    progress.finish();
    return rows;
  } finally {
    await queue.close().catch(() => undefined);
  }
}
