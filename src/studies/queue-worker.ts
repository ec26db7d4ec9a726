// `study worker`'s engine: takes runs from a sweep's queue (src/studies/queue.ts) and runs each with
// runStudy, the code path of a local sweep, in a run process of its own (src/studies/run-process.ts)
// against this machine's run store; the job's value is the finished run's record, metrics and
// results. One log line per job start, finish and failure. A job that cannot work anywhere
// (unknown keys, a config that does not validate, another commit) is failed with its reason and
// not retried, and the worker goes on.
import * as os from "node:os";
import type { Job } from "bullmq";
import type { BackendChoice } from "../runtime/backend";
import { gitState } from "../runtime/record";
import { Run, runsRoot } from "../runs/store";
import type { RunProgress } from "./experiment";
import { RunProcess } from "./run-process";
import { StudyConfig, studyCost, validateStudyConfig } from "./kinds";
import type { Tags } from "./rows";
import { JobProgressInfo, JobResult, QUEUE_NAME, checkQueueUrl, connectionOptions, errorNotes, reachQueue, redactUrl, redactor } from "./queue";

export interface QueueWorkerOptions {
  /** redis:// or rediss:// URL of the queue. */
  url: string;
  /** Runs at once in this process (default 1). */
  concurrency?: number;
  backend?: BackendChoice;
  /** Run store for checkpoints and runs (default runs/ or STUDY_RUNS_DIR). */
  root?: string;
  /** Job lock (default 30 s): a dead worker's job is taken up again one to two locks later. */
  lockSeconds?: number;
  /** In logs and on each job (default host:pid). */
  name?: string;
  /** Where log lines go (default stdout); they come already redacted. */
  log?: (line: string) => void;
}

export interface QueueWorker {
  readonly name: string;
  /** Stops taking jobs, hands runs in progress back to the queue, closes the connections. */
  stop(): Promise<void>;
}

const JOB_KEYS = ["config", "commit", "tags"];
const short = (commit: string) => commit.slice(0, 12);
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
const seconds = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

/**
 * A job's data, checked: exactly { config, commit, tags }, made at this worker's commit (when both
 * sides are git checkouts; `note` says when not), a config that validates, and the job id its
 * config's run id. Throws the reason otherwise.
 */
export function checkJob(id: string | undefined, data: unknown, commit: string | null): { config: StudyConfig; tags: Tags; note?: string } {
  const what = `job ${id ?? "(without id)"}`;
  if (!data || typeof data !== "object" || Array.isArray(data)) throw new Error(`${what}: its data is not { config, commit, tags }`);
  const d = data as Record<string, unknown>;
  const unknown = Object.keys(d).filter((k) => !JOB_KEYS.includes(k));
  if (unknown.length) throw new Error(`${what}: unknown key${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `'${k}'`).join(", ")} (a job carries { config, commit, tags } and nothing else)`);
  if (d.commit !== null && typeof d.commit !== "string") throw new Error(`${what}: commit must be a git commit or null`);
  const made = typeof d.commit === "string" && d.commit ? d.commit : null;
  const tags = d.tags ?? {};
  if (typeof tags !== "object" || tags === null || Array.isArray(tags) || Object.values(tags).some((v) => typeof v !== "string" && typeof v !== "number")) {
    throw new Error(`${what}: tags must map names to strings or numbers`);
  }
  // The commit before the config: a config from other code may not validate here, and that is why.
  if (made && commit && made !== commit) {
    throw new Error(`${what} was enqueued at commit ${short(made)}, this worker runs ${short(commit)}: its numbers would come from other code; check out ${short(made)} on this worker (or enqueue from ${short(commit)})`);
  }
  const config = validateStudyConfig(d.config, `${what}: config`);
  const runId = Run.idOf(config);
  if (id !== runId) throw new Error(`${what}: the id is not its config's run id ${runId}`);
  const note = !made || !commit ? `commit not checked (${commit ? "the sweep" : "this worker"} is not a git checkout)` : undefined;
  return { config, tags: tags as Tags, note };
}

/** Progress for the sweep's display: at most one Redis write a second, besides each change of phase. */
function progressUpdates(job: Job<unknown, JobResult>, worker: string): (p: RunProgress) => void {
  let last = 0;
  let phase = "";
  return (p) => {
    const now = Date.now();
    if (p.phase === phase && now - last < 1000) return;
    last = now;
    phase = p.phase;
    const info: JobProgressInfo = { ...p, worker };
    job.updateProgress(info).catch(() => undefined); // a lost connection: the next update tries again
  };
}

/**
 * Starts a worker on the queue at `opts.url` and resolves once it takes jobs.
 *
 * Its options are chosen for faults:
 * - the job lock (`lockDuration`, --lock-seconds, 30 s by default) is renewed every half of it while
 *   a run goes on. A worker that dies (kill -9, a machine lost) stops renewing; every live worker
 *   checks for stalled jobs every `stalledInterval` (= the lock) and puts a job whose lock has
 *   expired back to wait, for the next free worker. So a dead worker's job is taken up again one
 *   to two locks later, and where the run store is shared it resumes from its last checkpoint.
 *   Runs train in run processes, so a step that keeps the CPU busy for long never stalls a job.
 *   Its run process notices that the worker is gone at its next step and stops.
 * - a worker that loses a lock anyway (Redis says it is not its own any more: the job was taken up
 *   elsewhere) stops that run at once, so two runs of one config never share a run store.
 * - `maxStalledCount` 2: a job is taken up again after two dead workers; one whose third worker
 *   dies too is failed (it is likely the job that kills them, e.g. out of host memory).
 * Attempts, backoff and how long jobs are kept are the enqueuer's (JOB_OPTIONS in queue.ts).
 */
export async function startWorker(opts: QueueWorkerOptions): Promise<QueueWorker> {
  const url = checkQueueUrl(opts.url);
  const where = redactUrl(url);
  const redact = redactor(url);
  const name = opts.name ?? `${os.hostname()}:${process.pid}`;
  const out = opts.log ?? ((line: string) => void process.stdout.write(line + "\n"));
  const log = (line: string) => out(redact(`${new Date().toISOString()} ${name} ${line}`));
  const root = opts.root ?? runsRoot();
  const concurrency = opts.concurrency ?? 1;
  const lockMs = Math.round((opts.lockSeconds ?? 30) * 1000);
  await reachQueue(url); // before the run processes start: a wrong URL or password is said at once
  const git = gitState();
  const { Worker, UnrecoverableError, WaitingError } = require("bullmq") as typeof import("bullmq");
  const slots = Array.from({ length: concurrency }, () => new RunProcess(opts.backend));
  const stopSlots = () => slots.forEach((p) => p.kill());
  let backend: string;
  try {
    backend = (await Promise.all(slots.map((p) => p.ready)))[0];
  } catch (e) {
    stopSlots();
    throw e;
  }
  // A run process that died (out of memory, killed) is replaced for the next job.
  const takeSlot = async (): Promise<RunProcess> => {
    const i = slots.findIndex((p) => !p.busy);
    if (i < 0) throw new Error(`more jobs at once than --concurrency ${concurrency}`);
    if (slots[i].exited) slots[i] = new RunProcess(opts.backend);
    slots[i].busy = true;
    try {
      await slots[i].ready;
    } catch (e) {
      slots[i].busy = false;
      throw e;
    }
    return slots[i];
  };
  const active = new Map<string, { job: Job<unknown, JobResult>; token: string | undefined; slot: RunProcess }>();
  const lost = new Set<string>();
  let stopping: Promise<void> | undefined;

  const processor = async (job: Job<unknown, JobResult>, token?: string): Promise<JobResult> => {
    if (stopping) {
      await job.moveToWait(token); // fetched while stopping: left for another worker at once
      throw new WaitingError();
    }
    const t0 = Date.now();
    let checked: ReturnType<typeof checkJob>;
    try {
      checked = checkJob(job.id, job.data, git.commit);
    } catch (e) {
      log(`REFUSED ${job.id}: ${message(e)} (not retried)`);
      throw new UnrecoverableError(message(e));
    }
    const { config, tags, note } = checked;
    const id = Run.idOf(config);
    const again = [job.attemptsStarted > 1 ? `attempt ${job.attemptsStarted}` : "", job.stalledCounter > 0 ? `after ${job.stalledCounter} stalled` : ""].filter(Boolean).join(", ");
    log(`start ${id} (${Object.values(tags).join(" ") || config.name} seed ${config.seed})${again ? ` ${again}` : ""}${note ? ` · ${note}` : ""}`);
    const slot = await takeSlot();
    active.set(id, { job, token, slot });
    try {
      const reused = await slot.run(id, config, root, progressUpdates(job, name));
      const files = Run.open(config, { root }).finishedFiles();
      log(`finished ${id} in ${seconds(t0)} (${reused ? "reused from the run store" : "trained"})`);
      return { ...files, reused, worker: name };
    } catch (e) {
      if (stopping) throw new WaitingError(); // handed back to the queue by stop()
      if (lost.has(id)) throw new Error(`${name} lost the lock of ${id}`); // the job is another worker's
      // A config whose cost cannot be computed cannot run anywhere: another attempt only delays the sweep.
      const permanent = studyCost(config) instanceof Error;
      const left = (job.opts.attempts ?? 1) - job.attemptsMade - 1;
      log(`FAILED ${id} after ${seconds(t0)}: ${message(e)} (${permanent ? "not retried: the config cannot run anywhere" : left > 0 ? `${left} more attempt${left > 1 ? "s" : ""} left` : "no attempts left"})`);
      if (permanent) throw new UnrecoverableError(message(e));
      throw e instanceof Error ? e : new Error(message(e));
    } finally {
      active.delete(id);
      lost.delete(id);
      slot.busy = false;
    }
  };

  const worker = new Worker<unknown, JobResult>(QUEUE_NAME, processor, {
    connection: connectionOptions(url), concurrency, name, autorun: false,
    lockDuration: lockMs, stalledInterval: lockMs, maxStalledCount: 2,
  });
  worker.on("error", errorNotes((line) => log(`queue ${where}: ${line}`), redact));
  worker.on("stalled", (jobId) => log(`${jobId} stalled (its worker stopped renewing the lock): back to the queue`));
  worker.on("lockRenewalFailed", (ids) => {
    for (const id of ids) {
      const a = active.get(id);
      if (!a) continue;
      lost.add(id);
      a.slot.kill();
      log(`lost the lock of ${id} (Redis no longer holds it for this worker; the job goes to the next free worker): its run here stopped`);
    }
  });
  const commit = git.commit ? `${short(git.commit)}${git.dirty ? " with uncommitted changes" : ""}` : "none (not a git checkout: jobs' commits are not checked)";
  log(`taking runs from ${where} (queue ${QUEUE_NAME}) · backend ${backend} · commit ${commit} · concurrency ${concurrency} · lock ${lockMs / 1000} s · run store ${root}`);
  worker.run().catch((e: unknown) => log(`worker stopped: ${message(e)}`));

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const handing = [...active];
      log(`stopping${handing.length ? `: ${handing.length} run${handing.length > 1 ? "s" : ""} in progress go back to the queue` : ""}`);
      await worker.pause(true);
      // Handed back now rather than when their locks expire; a shared run store resumes them from
      // their last checkpoint.
      for (const [id, { job, token, slot }] of handing) {
        slot.kill();
        const handed = await Promise.race([job.moveToWait(token).then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5000))]).catch(() => false);
        log(handed ? `left ${id} to the queue` : `could not hand ${id} back: another worker takes it once its lock expires`);
      }
      stopSlots();
      await worker.close(true);
      log("stopped");
    })();
    return stopping;
  };
  return { name, stop };
}
