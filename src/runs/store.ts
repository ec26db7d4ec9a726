// The run store: every run lives in `runs/<id>/` with
//   config.json     the run's config (canonical JSON; its hash is the id)
//   record.json     seed, backend and why, versions, git commit + dirty flag, machine
//   metrics.jsonl   one JSON object per line (train lines, eval lines)
//   results.json    final numbers; its presence marks the run finished
//   checkpoints/    see src/training/checkpoint.ts
// The id is `<name>-<first 12 hex of sha256(canonical config)>`, so rerunning a config finds the
// finished run (reused unless forced) or the unfinished one (resumed from its checkpoints).
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { RunEnvironment, runEnvironment } from "../runtime/record";
import { REPO_ROOT } from "../ground/root";
import { removeStaleTemps, writeFileAtomic, writeJsonAtomic } from "../ground/atomic";

/** JSON with object keys sorted at every level and no whitespace. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
    }
    if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`config holds a non-finite number (${v})`);
    return v;
  });
}

export function configHash(config: unknown): string {
  return crypto.createHash("sha256").update(canonicalJson(config)).digest("hex");
}

/** `<name>-<hash12>`; the name is the config's `name` field, slugged. */
export function runId<C extends { name?: string }>(config: C): string {
  const slug = (config.name ?? "run").toLowerCase().replace(/[^a-z0-9.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 48) || "run";
  return `${slug}-${configHash(config).slice(0, 12)}`;
}

export function runsRoot(): string {
  const env = process.env.STUDY_RUNS_DIR;
  return env ? path.resolve(REPO_ROOT, env) : path.join(REPO_ROOT, "runs");
}

export type RunStatus = "new" | "unfinished" | "finished";

export interface RunRecord extends RunEnvironment {
  id: string;
  seed: number | string | null;
  startedAt: string;
  /**
   * Each (re)start of the run: when, from which step, and its environment (commit, versions,
   * machine, backend), since a resumed run's numbers come from every attempt. The top-level
   * environment is the latest attempt's. (Records written before this have no per-attempt one.)
   */
  attempts: ({ startedAt: string; fromStep: number } & Partial<RunEnvironment>)[];
  [key: string]: unknown;
}

export class Run {
  readonly dir: string;
  readonly id: string;

  private constructor(readonly config: Record<string, unknown> & { name?: string }, root: string) {
    this.id = runId(config);
    this.dir = path.join(root, this.id);
  }

  /**
   * Opens the run of `config` (creating it when new). `force` discards a previous result and
   * checkpoints so the run starts over.
   */
  static open<C extends { name?: string }>(config: C, opts: { root?: string; force?: boolean } = {}): Run {
    const run = new Run(config as Record<string, unknown> & { name?: string }, opts.root ?? runsRoot());
    const cfgFile = path.join(run.dir, "config.json");
    if (fs.existsSync(cfgFile)) {
      const stored = JSON.parse(fs.readFileSync(cfgFile, "utf8")) as unknown;
      if (canonicalJson(stored) !== canonicalJson(config)) throw new Error(`${cfgFile}: holds a different config than id ${run.id} (hash collision or edited file)`);
    }
    if (opts.force && fs.existsSync(run.dir)) {
      for (const f of ["results.json", "metrics.jsonl", "record.json"]) fs.rmSync(path.join(run.dir, f), { force: true });
      fs.rmSync(path.join(run.dir, "checkpoints"), { recursive: true, force: true });
    }
    fs.mkdirSync(run.dir, { recursive: true });
    removeStaleTemps(run.dir);
    if (!fs.existsSync(cfgFile)) writeJsonAtomic(cfgFile, JSON.parse(canonicalJson(config)));
    return run;
  }

  /** The id a config's run has (without creating anything). */
  static idOf<C extends { name?: string }>(config: C): string {
    return runId(config);
  }

  /** The status of a config's run in `root`, without creating its folder. */
  static statusOf<C extends { name?: string }>(config: C, root = runsRoot()): RunStatus {
    const dir = path.join(root, runId(config));
    if (fs.existsSync(path.join(dir, "results.json"))) return "finished";
    if (fs.existsSync(path.join(dir, "record.json"))) return "unfinished";
    return "new";
  }

  /** Opens an existing run folder by id (for evaluation and tables). */
  static load(id: string, root = runsRoot()): Run {
    const cfgFile = path.join(root, id, "config.json");
    if (!fs.existsSync(cfgFile)) throw new Error(`${path.join(root, id)}: no such run (no config.json)`);
    return new Run(JSON.parse(fs.readFileSync(cfgFile, "utf8")) as Record<string, unknown>, root);
  }

  get status(): RunStatus {
    if (fs.existsSync(path.join(this.dir, "results.json"))) return "finished";
    if (fs.existsSync(path.join(this.dir, "record.json"))) return "unfinished";
    return "new";
  }

  get checkpointDir(): string {
    return path.join(this.dir, "checkpoints");
  }

  /** Writes record.json (environment + seed + extras), keeping the history of attempts. */
  writeRecord(seed: number | string | null, fromStep = 0, extra: Record<string, unknown> = {}): RunRecord {
    const file = path.join(this.dir, "record.json");
    const prev = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as RunRecord) : undefined;
    const now = new Date().toISOString();
    const env = runEnvironment();
    const rec: RunRecord = {
      id: this.id, seed, startedAt: prev?.startedAt ?? now,
      attempts: [...(prev?.attempts ?? []), { startedAt: now, fromStep, ...env }],
      ...env, ...extra,
    };
    writeJsonAtomic(file, rec);
    return rec;
  }

  record(): RunRecord | undefined {
    const file = path.join(this.dir, "record.json");
    return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as RunRecord) : undefined;
  }

  /** Appends one metrics line (a single write; a torn last line is skipped by readers). */
  appendMetrics(record: Record<string, unknown>): void {
    fs.appendFileSync(path.join(this.dir, "metrics.jsonl"), JSON.stringify(record) + "\n");
  }

  /** Every complete metrics line. */
  metrics(): Record<string, unknown>[] {
    const file = path.join(this.dir, "metrics.jsonl");
    if (!fs.existsSync(file)) return [];
    const out: Record<string, unknown>[] = [];
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      try { out.push(JSON.parse(line) as Record<string, unknown>); } catch { /* torn line of a killed writer */ }
    }
    return out;
  }

  /** Drops metrics lines past `step` (before resuming from that step's checkpoint). */
  truncateMetrics(step: number): void {
    this.keepMetrics((m) => typeof m.step !== "number" || m.step <= step);
  }

  /** Keeps only the metrics lines `keep` accepts (rewritten atomically). */
  keepMetrics(keep: (m: Record<string, unknown>) => boolean): void {
    const file = path.join(this.dir, "metrics.jsonl");
    if (fs.existsSync(file)) writeJsonLines(file, this.metrics().filter(keep));
  }

  writeResults(results: Record<string, unknown>): void {
    writeJsonAtomic(path.join(this.dir, "results.json"), { id: this.id, finishedAt: new Date().toISOString(), ...results });
  }

  results<T = Record<string, unknown>>(): T | undefined {
    const file = path.join(this.dir, "results.json");
    return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as T) : undefined;
  }

  /** What another store needs of a finished run (a queue worker returns it): record, metrics, results. */
  finishedFiles(): FinishedRunFiles {
    const record = this.record();
    const results = this.results();
    if (!record || !results) throw new Error(`${this.dir}: not a finished run (no ${record ? "results" : "record"}.json)`);
    return { record, metrics: this.metrics(), results };
  }

  /**
   * Writes a run finished elsewhere (by a queue worker) into this store: config.json, record.json,
   * metrics.jsonl, and results.json last, each atomically, so a crash in between leaves an
   * unfinished run, never a finished one with missing files. A run already finished here is kept.
   * Weights and checkpoints stay where the run ran.
   */
  static importFinished<C extends { name?: string }>(config: C, files: FinishedRunFiles, root = runsRoot()): Run {
    const run = Run.open(config, { root });
    if (files.results.id !== run.id) throw new Error(`importing run ${run.id}: its results are those of '${String(files.results.id)}'`);
    if (run.status === "finished") return run;
    writeJsonAtomic(path.join(run.dir, "record.json"), files.record);
    writeJsonLines(path.join(run.dir, "metrics.jsonl"), files.metrics);
    writeJsonAtomic(path.join(run.dir, "results.json"), files.results);
    return run;
  }
}

/** The files of a finished run that carry its numbers (src/studies/queue.ts moves them between stores). */
export interface FinishedRunFiles {
  record: RunRecord;
  metrics: Record<string, unknown>[];
  results: Record<string, unknown>;
}

function writeJsonLines(file: string, rows: unknown[]): void {
  writeFileAtomic(file, rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : ""));
}

/** Every run folder under the root. */
export function listRuns(root = runsRoot()): Run[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((d) => fs.existsSync(path.join(root, d, "config.json")))
    .sort()
    .map((d) => Run.load(d, root));
}
