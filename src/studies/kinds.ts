// The kinds of run a sweep can hold: ViT experiments (Paper A, Paper B's DINO path) and CLIP runs
// (Paper B's Figure 1). Each kind has its validator, its analytic cost, its runner, and the fields
// its rows carry; sweeps and plans go through here, so they take either kind (or both).
import { datasetLabel } from "../data/datasets";
import type { BackendChoice } from "../runtime/backend";
import type { ProgressMode } from "../ground/progress";
import { ExperimentConfig, validateConfig } from "./config";
import { AdapterReport, ExperimentOutcome, RunProgress, runExperiment } from "./experiment";
import { RunCost, tryRunCost } from "./plan";
import { ClipExperimentConfig, StudyConfig, isClip, validateClipConfig } from "./clip/config";
import { ClipOutcome, runClipExperiment } from "./clip/experiment";
import { clipRunCost } from "./clip/plan";
import type { Run } from "../runs/store";

export type { StudyConfig };

/** A row's value: what arquero tables and CSV files hold. */
export type Cell = string | number | null;

export function validateStudyConfig(config: unknown, what: string): StudyConfig {
  return isClip(config) ? validateClipConfig(config, what) : validateConfig(config, what);
}

/** The analytic cost, or why it cannot be computed (the run will fail when it starts). */
export function studyCost(c: StudyConfig): RunCost | Error {
  if (!isClip(c)) return tryRunCost(c);
  try {
    return clipRunCost(c);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

export interface StudyRunOptions {
  root?: string;
  backend?: BackendChoice;
  onProgress?: (p: RunProgress) => void;
  progress?: ProgressMode;
}

export type StudyOutcome = { kind: "vit"; out: ExperimentOutcome } | { kind: "clip"; out: ClipOutcome };

export async function runStudy(c: StudyConfig, opts: StudyRunOptions): Promise<StudyOutcome> {
  return isClip(c) ? { kind: "clip", out: await runClipExperiment(c, opts) } : { kind: "vit", out: await runExperiment(c, opts) };
}

/** Config fields every row carries. */
export function configFields(c: StudyConfig): Record<string, Cell> {
  const o = c.train.optimizer;
  return {
    seed: c.seed, train_set: datasetLabel(c.data.train), strategy: c.strategy.kind, optimizer: o.name, lr: o.lr,
    lr_schedule: c.train.schedule.kind, warmup: c.train.schedule.warmupSteps, steps: c.train.steps, batch: c.data.batchSize,
  };
}

const num = (x: number | undefined): Cell => (x === undefined ? null : x);

function vitResults(r: ExperimentOutcome["results"]): Record<string, Cell> {
  const out: Record<string, Cell> = {
    trainable: r.trainable, target_top1_last: r.top1, target_top1_best: r.top1Best, best_step: r.bestStep, train_seconds: r.trainSeconds, describe: r.describe,
  };
  for (const [k, v] of Object.entries(r.retention ?? {})) out[k] = num(v);
  for (const [k, v] of Object.entries(r.retentionBest ?? {})) out[`${k}_best`] = num(v);
  for (const [k, v] of Object.entries(r.knn ?? {})) out[`target_${k}`] = num(v);
  Object.assign(out, { test_images: num(r.testImages), retention_queries: num(r.retentionQueries) });
  adapterFields(out, r.adapter);
  return out;
}

function clipResults(r: ClipOutcome["results"]): Record<string, Cell> {
  const out: Record<string, Cell> = {
    trainable: r.trainable, target_top1_last: r.top1, target_top1_best: r.top1Best, best_step: r.bestStep, train_seconds: r.trainSeconds, describe: r.describe,
  };
  for (const [k, v] of Object.entries(r.ood)) out[`ood:${k}`] = v;
  for (const [k, v] of Object.entries(r.zeroShot)) out[`zeroshot:${k}`] = v;
  // Image counts beside the accuracies they score (absent in runs stored before they were recorded).
  out.test_images = num(r.testImages);
  for (const [k, v] of Object.entries(r.images?.ood ?? {})) out[`ood_images:${k}`] = v;
  for (const [k, v] of Object.entries(r.images?.zeroShot ?? {})) out[`zeroshot_images:${k}`] = v;
  adapterFields(out, r.adapter);
  return out;
}

function adapterFields(out: Record<string, Cell>, a: AdapterReport | undefined): void {
  if (!a) return;
  Object.assign(out, { sites: a.sites, macs: a.macsMerged, macs_unmerged: a.macsUnmerged, macs_base: a.macsBase });
  if (a.mergeMaxAbsDiff !== undefined) Object.assign(out, { merge_max_abs_diff: a.mergeMaxAbsDiff, merge_max_abs_logit: num(a.mergeMaxAbsLogit) });
  if (a.activeShare !== undefined) Object.assign(out, { active_share: a.activeShare, active_sites: (a.activeSites ?? []).join(" ") });
}

export function resultFields(o: StudyOutcome): Record<string, Cell> {
  return { ...(o.kind === "clip" ? clipResults(o.out.results) : vitResults(o.out.results)), ...provenanceFields(o.out.run) };
}

/**
 * Where a run's numbers come from, from its record: the commit of each attempt (short; "-dirty"
 * with uncommitted changes) and the backend it trained on, in order, each once (a resumed run
 * can have several).
 */
function provenanceFields(run: Run): Record<string, Cell> {
  const attempts = run.record()?.attempts ?? [];
  const distinct = (xs: readonly (string | null | undefined)[]) => [...new Set(xs.filter((x): x is string => !!x))].join(" ") || null;
  return {
    commit: distinct(attempts.map((a) => a.git?.commit && `${a.git.commit.slice(0, 7)}${a.git.dirty ? "-dirty" : ""}`)),
    backend: distinct(attempts.map((a) => a.backend?.tfBackend)),
  };
}

/**
 * The result columns a run of this config always has, empty: a failed run's row carries them, so
 * that a table whose runs all failed still has its columns (and shows why in its error column).
 */
function emptyResults(c: StudyConfig): Record<string, Cell> {
  const out: Record<string, Cell> = { trainable: null, target_top1_last: null, target_top1_best: null, best_step: null, train_seconds: null, describe: null, commit: null, backend: null };
  const k = c.strategy.kind;
  if (k === "lora" || k === "selective-lora") Object.assign(out, { sites: null, macs: null, macs_unmerged: null, macs_base: null });
  if (k === "selective-lora") Object.assign(out, { active_share: null, active_sites: null });
  return out;
}

/** A sweep's row of one run: its tags and config fields, then its results, or why it failed. */
export function studyRow(tags: Record<string, Cell>, c: StudyConfig, id: string, o: StudyOutcome | Error): Record<string, Cell> {
  const head = { ...tags, ...configFields(c), id };
  return o instanceof Error
    ? { ...head, status: "failed", error: o.message, ...emptyResults(c) }
    : { ...head, status: o.out.reused ? "reused" : "trained", error: null, ...resultFields(o) };
}

/** The outcome of a run the store holds finished (a queue worker's, imported), as runStudy returns it. */
export function storedOutcome(c: StudyConfig, run: Run, reused: boolean): StudyOutcome {
  const results = run.results();
  if (!results) throw new Error(`${run.dir}: no results.json`);
  return isClip(c)
    ? { kind: "clip", out: { run, reused, results: results as unknown as ClipOutcome["results"] } }
    : { kind: "vit", out: { run, reused, results: results as unknown as ExperimentOutcome["results"] } };
}

export type { ExperimentConfig, ClipExperimentConfig };
