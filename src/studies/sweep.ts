// Sweeps: a base config and a list of variants (deep patches) -> runs in the run store -> rows.
//   const rows = await sweep(base, [{ tags: { method: "LoRA r=8" }, strategy: {...} }, ...]);
// Finished runs are reused, unfinished ones resume from their last checkpoint, a failing run is
// reported in its row while the others go on, and one progress display covers the whole sweep
// (runs done / total, the current run's step, ETA by the analytic compute left). `plan` lists the
// same runs with their status and compute, without training anything. With `queue` (or
// STUDY_QUEUE) the runs go to `study worker`s on other machines instead (src/studies/queue.ts).
import type { ColumnTable } from "arquero";
import type { BackendChoice } from "../runtime/backend";
import { createProgress, formatDuration } from "../ground/progress";
import { Run, runsRoot } from "../runs/store";
import { ConfigPatch, ExperimentConfig, mergeConfig } from "./config";
import type { RunProgress } from "./experiment";
import { checkInputs } from "./inputs";
import { NO_COST } from "./plan";
import { SweepEntry, SweepRow, Tags, rowsTable } from "./rows";
import { StudyConfig, StudyOutcome, configFields, runStudy, storedOutcome, studyCost, studyRow, validateStudyConfig } from "./kinds";
import { queueSweep } from "./queue";
import { RunProcess, RunProcessExit } from "./run-process";

/** What a variant changes in the sweep's base config (a ViT experiment by default, or a CLIP run). */
export type Variant<C extends StudyConfig = ExperimentConfig> = ConfigPatch<C> & { tags?: Tags };


export interface SweepOptions {
  /** Run-store root (default runs/ or STUDY_RUNS_DIR). */
  root?: string;
  backend?: BackendChoice;
  /** Label of the progress display. */
  label?: string;
  /**
   * A Redis URL (`redis://[:password@]host:port[/db]`, `rediss://` for TLS; default STUDY_QUEUE):
   * the runs become jobs for `study worker`s on other machines (src/studies/queue.ts), and their
   * results come back into the run store here (`backend` is then each worker's --backend). `""`
   * runs here even when STUDY_QUEUE is set.
   */
  queue?: string;
  /**
   * Train in this process instead of a run process of its own (src/studies/run-process.ts). By
   * default each run trains in a forked process, reused from run to run: a run that crashes it (out
   * of memory, an abort in native code) is resumed once in a fresh one and then reported in its row,
   * and a notebook's kernel stays responsive. Same code path, same numbers.
   */
  inProcess?: boolean;
}

export type { SweepEntry, SweepRow, Tags };

/**
 * The run configs of a sweep: each variant merged into `base` (tags removed), validated. A
 * variant without its own `name` gets the base name, and `-s<seed>` is appended to every name.
 */
export function expand<C extends StudyConfig>(base: C, variants: Variant<C>[]): SweepEntry<C>[] {
  return variants.map((v, i) => {
    const { tags, ...patch } = v as Variant<C>;
    const merged = mergeConfig(base, patch as ConfigPatch<C>);
    // Validated as its kind: a CLIP base gives CLIP runs, a ViT base ViT runs.
    const config = validateStudyConfig({ ...merged, name: `${merged.name}-s${merged.seed}` }, `sweep variant ${i}${tags ? ` ${JSON.stringify(tags)}` : ""}`) as C;
    return { config, tags: (tags ?? {}) as Tags, id: Run.idOf(config) };
  });
}

/** The runs of a sweep with their status in the run store and their analytic cost. */
export function plan<C extends StudyConfig>(base: C, variants: Variant<C>[], opts: { root?: string } = {}): ColumnTable {
  const rows = expand(base, variants).map(({ config, tags, id }) => {
    const c = studyCost(config);
    const cost = c instanceof Error ? NO_COST : c;
    return {
      ...tags, ...configFields(config), id, status: c instanceof Error ? `invalid: ${c.message}` : Run.statusOf(config, opts.root ?? runsRoot()),
      trainable: cost.trainable, fwd_mmacs_per_image: cost.forwardMacs / 1e6, train_tmacs: cost.trainMacs / 1e12, eval_tmacs: cost.evalMacs / 1e12,
    };
  });
  return rowsTable(rows);
}

/** Total compute of a plan in TMACs, and how much of it the run store already holds. */
export function planTotals(p: ColumnTable): { runs: number; finished: number; tmacs: number; tmacsLeft: number } {
  const rows = p.objects() as Array<{ status: string; train_tmacs: number; eval_tmacs: number }>;
  const t = (r: (typeof rows)[number]) => r.train_tmacs + r.eval_tmacs;
  return {
    runs: rows.length, finished: rows.filter((r) => r.status === "finished").length,
    tmacs: rows.reduce((s, r) => s + t(r), 0), tmacsLeft: rows.filter((r) => r.status !== "finished").reduce((s, r) => s + t(r), 0),
  };
}

/**
 * Runs every variant of `base` through the run store and returns one row per variant. Inputs
 * that cannot be had (pretrained weights, user datasets) fail the whole sweep before anything
 * runs, with one message naming each.
 */
export async function sweep<C extends StudyConfig>(base: C, variants: Variant<C>[], opts: SweepOptions = {}): Promise<ColumnTable> {
  const entries = expand(base, variants);
  const root = opts.root ?? runsRoot();
  const queue = opts.queue ?? process.env.STUDY_QUEUE;
  // On a queue the inputs are the workers' to have (each resolves them when a run starts).
  if (queue) return rowsTable(await queueSweep(entries, { url: queue, root, label: opts.label ?? "sweep" }));
  checkInputs(entries.map((e) => e.config), `sweep '${opts.label ?? base.name}'`);
  // A config whose cost cannot be computed fails when it runs (and is reported there).
  const runCosts = entries.map((e) => { const c = studyCost(e.config); return c instanceof Error ? NO_COST : c; });
  const costs = runCosts.map((c) => c.totalMacs);
  const todo = entries.map((e) => Run.statusOf(e.config, root) !== "finished");
  const total = costs.reduce((s, c, i) => s + (todo[i] ? c : 0), 0);
  let doneMacs = 0;
  let finished = 0, reused = 0, failed = 0;
  let now = "";
  const label = opts.label ?? "sweep";
  const progress = createProgress(label, Math.max(total, 1), {
    unit: "MAC",
    format: (s) => {
      const head = `${label}: ${finished + reused + failed}/${entries.length} runs (${reused} reused${failed ? `, ${failed} FAILED` : ""})`;
      const time = `${formatDuration(s.elapsed)} elapsed${s.done < s.total && Number.isFinite(s.eta) ? `, ~${formatDuration(s.eta)} left` : ""}`;
      return `${head} · ${now || "done"} · ${time}`;
    },
  });
  const rows: SweepRow[] = [];
  const runIn = opts.inProcess ? undefined : runProcesses(root, opts.backend);
  try {
    for (const [i, e] of entries.entries()) {
      const name = Object.values(e.tags).join(" ") || e.config.name;
      // Progress within a run, in MACs: training by steps, each measurement pass when it ends.
      const c = runCosts[i];
      let passesDone = 0;
      let inPass: RunProgress["phase"] | undefined;
      const passCost = (ph: RunProgress["phase"]) => (ph === "target top-1" ? c.passMacs.target : ph === "final k-NN" ? c.passMacs.knn : ph === "train" ? 0 : c.passMacs.retention);
      const onProgress = (p: RunProgress) => {
        if (inPass) passesDone += passCost(inPass);
        inPass = p.phase === "train" ? undefined : p.phase;
        now = `${name} seed ${e.config.seed}: ${p.phase === "train" ? `step ${p.step}/${p.steps}` : `${p.phase} at step ${p.step}`}`;
        const within = c.trainMacs * Math.min(1, p.step / Math.max(1, p.steps)) + passesDone;
        progress.update(doneMacs + Math.min(within, 0.999 * c.totalMacs));
      };
      now = `${name} seed ${e.config.seed}: starting`;
      progress.update(doneMacs);
      try {
        // A finished run is read back here; only training goes to the run process.
        const o = await (runIn && todo[i] ? runIn.run(e, onProgress) : runStudy(e.config, { root, backend: opts.backend, progress: "off", onProgress }));
        if (o.out.reused) reused++;
        else finished++;
        rows.push(studyRow(e.tags, e.config, e.id, o));
      } catch (err) {
        failed++;
        const error = err instanceof Error ? err : new Error(String(err));
        process.stderr.write(`${label}: run ${e.id} (${name}, seed ${e.config.seed}) FAILED: ${error.message}\n`);
        rows.push(studyRow(e.tags, e.config, e.id, error));
      }
      if (todo[i]) doneMacs += costs[i];
      progress.update(doneMacs);
    }
  } finally {
    runIn?.close();
  }
  now = "";
  progress.finish();
  return rowsTable(rows);
}

/** One run process for a sweep's runs, replaced when it dies; a run it dies in is resumed once in the next. */
function runProcesses(root: string, backend: BackendChoice | undefined) {
  let proc: RunProcess | undefined;
  const fresh = () => (proc && !proc.exited ? proc : (proc = new RunProcess(backend)));
  return {
    /** Trains `e` there (or finds it finished) and reads its outcome back from the run store. */
    async run(e: SweepEntry<StudyConfig>, onProgress: (p: RunProgress) => void): Promise<StudyOutcome> {
      for (let attempt = 1; ; attempt++) {
        const p = fresh();
        try {
          await p.ready;
          const reused = await p.run(e.id, e.config, root, onProgress);
          return storedOutcome(e.config, Run.open(e.config, { root }), reused);
        } catch (err) {
          if (!(err instanceof RunProcessExit) || attempt === 2) throw err;
          process.stderr.write(`run ${e.id}: ${err.message}; resuming it in a fresh run process\n`);
        }
      }
    },
    close: () => proc?.kill(),
  };
}
