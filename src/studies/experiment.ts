// One call from a config to a finished, recorded run: the code path shared by the sweeps, the
// notebooks and `study train`. Config -> run folder (id = hash of the config) -> data, model,
// strategy -> train (resuming from the run's checkpoints), measuring target top-1 every
// `train.evalEvery` steps and retention at `retention.steps`, in-process -> results.json.
//
// Target top-1 is reported twice: at the last step, and at the best evaluation on the test split
// (the official code keeps that checkpoint: selection on test, reported as such). With
// `retention.atBest` the best checkpoint's retention is measured too.
import * as fs from "node:fs";
import * as path from "node:path";
import type { ImageModel, TrainableModel } from "../model/types";
import { createViT, ViT } from "../model/vit";
import { vitConfig } from "../model/config";
import { applyStrategy, StrategyResult } from "../adapters/strategies";
import type { LoraAdapter } from "../adapters/lora";
import { SelectiveLoraAdapter } from "../adapters/selective";
import { forwardMacs, modelForwardMacs } from "../model/flops";
import type { ImageSet } from "../data/dataset";
import type { TransformSpec } from "../data/transforms";
import { DatasetSpec, loadDataset } from "../data/datasets";
import { DataLoader } from "../data/pipeline";
import { loadStateDict, loadWeights, saveStateDict } from "../weights/load";
import { readSafetensors } from "../weights/safetensors";
import { BackendChoice, initBackend } from "../runtime/backend";
import { evaluateAccuracy, extractFeatures, featureBatches, headLogits } from "../evaluation/features";
import { knnClassify } from "../evaluation/knn";
import { assignWeights, listCheckpoints, readCheckpoint } from "../training/checkpoint";
import { train } from "../training/trainer";
import type { ProgressMode } from "../ground/progress";
import { Run, canonicalJson } from "../runs/store";
import { ExperimentConfig, validateConfig } from "./config";
import { resolveDataset, resolveInput } from "./inputs";
import { measureRetention, RetentionScores } from "./retention";
import { BestTracker } from "./best";

export interface RunOptions {
  /** Start over even when a finished or unfinished run exists. */
  force?: boolean;
  /** Run-store root (default runs/ or STUDY_RUNS_DIR). */
  root?: string;
  backend?: BackendChoice;
  /** Replaces applyStrategy (e.g. a model that is not a ViT). */
  prepare?: (model: ImageModel, strategy: ExperimentConfig["strategy"]) => TrainableModel;
  /** Extra measurements at every evaluation step. */
  evaluate?: (model: ImageModel, step: number) => Promise<Record<string, number>>;
  /** What the run is doing now (progress displays). */
  onProgress?: (p: RunProgress) => void;
  /** The trainer's own progress display (default: chosen by the environment; sweeps turn it off). */
  progress?: ProgressMode;
}

export interface RunProgress {
  step: number;
  steps: number;
  /** "train", or what is being measured at `step`. */
  phase: "train" | "target top-1" | "retention" | "retention at best" | "final k-NN";
}

export interface ExperimentResults {
  /** Target top-1 at the last step. */
  top1: number;
  testLoss: number;
  /** Best target top-1 over the evaluations at steps > 0, and its step. */
  top1Best: number;
  bestStep: number;
  /** Target-domain k-NN (config.eval.knn), at the last step. */
  knn?: Record<string, number>;
  /** Retention at the last step (when it is one of retention.steps), and at the best step. */
  retention?: RetentionScores;
  retentionBest?: RetentionScores;
  /** Images scored: the target test set (top-1) and the retention queries (k-NN); the binomial noise of each accuracy. */
  testImages?: number;
  retentionQueries?: number;
  /** Wall seconds of the attempt that finished the run (a resumed run's earlier attempts not counted). */
  trainSeconds: number;
  steps: number;
  finalTrainLoss: number;
  trainable: number;
  describe: string;
  /** The final weights, relative to the run folder. */
  weights: string;
  /** LoRA / selective LoRA: the gates at the end and the inference cost. */
  adapter?: AdapterReport;
}

export interface AdapterReport {
  /** Every site's final score (selective LoRA), by site name. */
  scores?: Record<string, number>;
  /** Sites whose gate is open (selective LoRA), and their share of all sites. */
  activeSites?: string[];
  activeShare?: number;
  sites: number;
  /** Forward MACs per image: with the adapter unmerged, in its inference form (merged), and of the base model. */
  macsUnmerged: number;
  macsMerged: number;
  macsBase: number;
  /**
   * The inference form against the trained (gated, unmerged) model, on the first test images:
   * the largest |logit difference|, and the largest |logit| it is relative to.
   */
  mergeMaxAbsDiff?: number;
  mergeMaxAbsLogit?: number;
}

export interface ExperimentOutcome {
  run: Run;
  results: ExperimentResults & { id: string; finishedAt: string };
  reused: boolean;
}

// Datasets stay loaded for the process: a sweep's runs share them.
const datasets = new Map<string, Promise<ImageSet>>();
export function cachedDataset(spec: DatasetSpec): Promise<ImageSet> {
  const key = canonicalJson(spec);
  let p = datasets.get(key);
  if (!p) {
    p = loadDataset(resolveDataset(spec));
    p.catch(() => datasets.delete(key));
    datasets.set(key, p);
  }
  return p;
}

/** The ViT of a config, with its initial weights. */
export async function createModel(c: ExperimentConfig["model"], seed: number): Promise<ViT> {
  const model = createViT(vitConfig(c.preset ?? {}, c.vit ?? {}), { seed });
  if (c.init) await loadWeights(model.namedVariables(), resolveInput(c.init));
  return model;
}

/** A run opened for training: its finished results, or the step it resumes from. */
export interface OpenedRun<R> {
  run: Run;
  done?: R;
  resumeFrom: number;
}

/**
 * Opens a config's run in the store (the one resume protocol of ViT and CLIP runs): finished
 * results are returned as they are unless `force`; otherwise the run resumes from its last
 * checkpoint, the metrics past it are dropped and the attempt is recorded with the backend.
 */
export async function openRun<R>(
  config: { name?: string; seed: number; train: { steps: number } },
  opts: { root?: string; force?: boolean; backend?: BackendChoice },
): Promise<OpenedRun<R>> {
  const backend = await initBackend(opts.backend ? { prefer: opts.backend } : {});
  const run = Run.open(config, { root: opts.root, force: opts.force });
  const done = run.results<R>();
  const { steps } = config.train;
  if (done && !opts.force) return { run, done, resumeFrom: steps };
  const resumeFrom = listCheckpoints(run.checkpointDir).filter((c) => c.step <= steps).at(-1)?.step ?? 0;
  // Train lines up to the checkpoint stay; evaluations of that step are redone by the trainer.
  run.keepMetrics((m) => typeof m.step !== "number" || (m.kind === "eval" ? m.step < resumeFrom : m.step <= resumeFrom));
  run.writeRecord(config.seed, resumeFrom, { backendWhy: backend.reason });
  return { run, resumeFrom };
}

/** Runs (or reuses, or resumes) the experiment; returns its run and results. */
export async function runExperiment(input: ExperimentConfig, opts: RunOptions = {}): Promise<ExperimentOutcome> {
  const config = validateConfig(input, `run config '${input?.name}'`);
  const opened = await openRun<ExperimentOutcome["results"]>(config, opts);
  if (opened.done) return { run: opened.run, results: opened.done, reused: true };
  const { run, resumeFrom } = opened;

  const { steps } = config.train;

  const trainSet = await cachedDataset(config.data.train);
  const testSet = await cachedDataset(config.data.test);
  const ret = config.retention;
  const retSets = ret ? { bank: await cachedDataset(ret.bank), queries: await cachedDataset(ret.queries) } : undefined;
  const model = await createModel(config.model, config.seed);
  const tm = opts.prepare ? opts.prepare(model, config.strategy) : applyStrategy(model as ViT, config.strategy);
  const trained = tm.model; // block expansion trains a new (expanded) model
  const evalOpts = { transform: config.data.evalTransform, batchSize: config.data.evalBatchSize ?? 256 };
  const retentionSteps = new Set(ret?.steps ?? []);
  const isTargetEval = (s: number) => s === steps || (config.train.evalEvery !== undefined && s % config.train.evalEvery === 0);
  const best = new BestTracker(ret?.atBest ? path.join(run.dir, "best") : undefined);
  best.restore(run.metrics(), resumeFrom);
  const trainableVars = new Map([...trained.namedVariables()].filter(([, v]) => tm.trainable.includes(v)));
  const report = (step: number, phase: RunProgress["phase"]) => opts.onProgress?.({ step, steps, phase });
  let last: { top1: number; loss: number; retention?: RetentionScores } | undefined;

  // In-process batches for tiny sets (a worker thread costs more to start than it saves there).
  const workers = trainSet.size < 20 * config.data.batchSize ? 0 : 1;
  const loader = new DataLoader(trainSet, { batchSize: config.data.batchSize, transform: config.data.trainTransform, seed: config.seed, shuffle: true, dropLast: true, workers });
  const t0 = Date.now();
  let result;
  try {
    result = await train(tm, loader, { ...config.train, evalAt: [...new Set([...(config.train.evalAt ?? []), ...retentionSteps])] }, {
      checkpointDir: run.checkpointDir,
      checkpointMeta: { runId: run.id },
      progress: opts.progress,
      hooks: {
        onMetrics: (m) => run.appendMetrics(m),
        onStep: (s) => report(s, "train"),
        evaluate: async (step) => {
          const out: Record<string, number> = {};
          if (isTargetEval(step)) {
            report(step, "target top-1");
            const a = await evaluateAccuracy(trained, testSet, evalOpts);
            Object.assign(out, { testTop1: a.top1, testLoss: a.loss });
            if (step > 0 && best.offer(step, a.top1)) await best.save(step, trainableVars);
          }
          if (ret && retSets && retentionSteps.has(step)) {
            report(step, "retention");
            Object.assign(out, await measureRetention(trained, ret, retSets, evalOpts.batchSize));
          }
          Object.assign(out, await opts.evaluate?.(trained, step));
          if (step === steps) last = { top1: out.testTop1, loss: out.testLoss, retention: pickRetention(out) };
          return out;
        },
      },
    });
  } finally {
    await loader.close();
  }
  if (!last) throw new Error(`${run.id}: the trainer did not evaluate the final step ${steps}`);
  const final = last;

  let knn: Record<string, number> | undefined;
  if (config.eval.knn) {
    report(steps, "final k-NN");
    const queries = await extractFeatures(trained, testSet, evalOpts);
    const r = await knnClassify(featureBatches(trained, trainSet, evalOpts), queries, {
      numClasses: trainSet.classes.length, ks: config.eval.knn.ks, temperature: config.eval.knn.temperature,
    });
    knn = Object.fromEntries(Object.entries(r.accuracy).map(([k, v]) => [`knn${k}`, v]));
  }
  const weights = "model.safetensors";
  await saveStateDict(path.join(run.dir, weights), trained.namedVariables(), { run: run.id });
  // LoRA and selective LoRA: the gates and unmerged cost now, the inference form last (it merges).
  const adapted = "adapter" in tm ? (tm as StrategyResult) : undefined;
  const gates = adapted?.adapter ? await adapterGates(adapted.adapter, adapted.model) : undefined;

  // Retention of the best checkpoint (its trainable weights over the same initial weights).
  let retentionBest: RetentionScores | undefined;
  if (ret?.atBest && retSets && best.step > 0) {
    if (best.step === steps && final.retention) retentionBest = final.retention;
    else {
      report(best.step, "retention at best");
      const ck = listCheckpoints(path.join(run.dir, "best")).find((c) => c.step === best.step);
      if (!ck) throw new Error(`${run.dir}: the best checkpoint (step ${best.step}) is missing from best/; delete the run folder to redo it`);
      const loaded = await readCheckpoint(ck.path);
      assignWeights(trainableVars, loaded, ck.path);
      retentionBest = await measureRetention(trained, ret, retSets, evalOpts.batchSize);
    }
  }
  const results: ExperimentResults = {
    top1: final.top1, testLoss: final.loss, top1Best: best.step > 0 ? best.top1 : final.top1, bestStep: best.step > 0 ? best.step : steps,
    knn, retention: final.retention, retentionBest, trainSeconds: (Date.now() - t0) / 1000, steps: result.steps,
    finalTrainLoss: result.finalLoss, trainable: tm.trainable.reduce((a, v) => a + v.size, 0), describe: tm.describe, weights,
    testImages: testSet.size, retentionQueries: retSets?.queries.size,
    adapter: adapted?.adapter && gates ? { ...gates, ...(await inferenceForm(adapted.adapter, adapted.model, testSet, evalOpts.transform)) } : undefined,
  };
  run.appendMetrics({ kind: "final", step: result.steps, top1: final.top1, ...knn });
  run.writeResults(results as unknown as Record<string, unknown>);
  const stored = run.results<ExperimentOutcome["results"]>()!; // as a rerun will see it (with id, finishedAt)
  trained.dispose();
  if (trained !== model) model.dispose();
  return { run, results: stored, reused: false };
}

/** A selective LoRA adapter's final gates as the report keeps them (nothing for plain LoRA). */
export async function gateFields(a: LoraAdapter): Promise<Pick<AdapterReport, "scores" | "activeSites" | "activeShare">> {
  if (!(a instanceof SelectiveLoraAdapter)) return {};
  const g = await a.gates();
  return { scores: Object.fromEntries(a.layers.map((l, i) => [l.site.name, g.scores[i]])), activeSites: g.active, activeShare: g.share };
}

/** The final gates of a (selective) LoRA adapter on `model`, and its unmerged cost, before anything is merged. */
export async function adapterGates(a: LoraAdapter, model: ViT): Promise<Omit<AdapterReport, "macsMerged" | "macsBase">> {
  return { sites: a.layers.length, macsUnmerged: modelForwardMacs(model).macs, ...(await gateFields(a)) };
}

/**
 * The inference form, built and checked on the real model: merging folds selective LoRA's open
 * gates into W and drops the closed ones (its toInference), plain LoRA's every update. Its cost is
 * counted, and its outputs (the head's logits; CLIP's image tower: its embeddings) are compared
 * with the unmerged model's on the first test images (with the weights it holds: after retention
 * at best, the best checkpoint's), so a merge that changed what the model computes shows in the
 * results. The adapter is gone afterwards: call this last.
 */
export async function inferenceForm(adapter: LoraAdapter, model: ViT, testSet: ImageSet, transform: TransformSpec): Promise<Pick<AdapterReport, "macsMerged" | "macsBase" | "mergeMaxAbsDiff" | "mergeMaxAbsLogit">> {
  const gated = await headLogits(model, testSet, { transform });
  adapter.mergeAndUnload();
  const merged = await headLogits(model, testSet, { transform });
  let diff = 0, top = 0;
  gated.logits.forEach((g, i) => {
    diff = Math.max(diff, Math.abs(g - merged.logits[i]));
    top = Math.max(top, Math.abs(g));
  });
  return { macsMerged: modelForwardMacs(model).macs, macsBase: forwardMacs(model.config).macs, mergeMaxAbsDiff: diff, mergeMaxAbsLogit: top };
}

function pickRetention(m: Record<string, number>): RetentionScores | undefined {
  const r = Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith("retention_")));
  return Object.keys(r).length ? r : undefined;
}

/**
 * The model of a run: "final" (its model.safetensors), a checkpoint step, or "init" (the
 * config's initial weights with its strategy's fresh variables, nothing loaded). Checkpoints hold
 * only the trained variables, so they go over the initial weights. The caller disposes it
 * (`dispose()` also frees the base of an expanded model).
 */
export async function loadRunModel(run: Run, at: number | "final" | "init" = "final"): Promise<ViT> {
  const config = validateConfig(run.config, `${run.dir}/config.json`);
  const base = await createModel(config.model, config.seed);
  const model = applyStrategy(base, config.strategy).model;
  const step = at;
  try {
    if (step === "init") {
      /* as created */
    } else if (step === "final") {
      const file = path.join(run.dir, "model.safetensors");
      if (!fs.existsSync(file)) throw new Error(`${run.dir}: the run has no model.safetensors yet (unfinished?); give a checkpoint step`);
      loadStateDict(model.namedVariables(), (await readSafetensors(file)).tensors, { file });
    } else {
      const all = listCheckpoints(run.checkpointDir);
      const ck = all.find((c) => c.step === step);
      if (!ck) throw new Error(`${run.dir}: no checkpoint of step ${step} (have ${all.map((c) => c.step).join(", ") || "none"})`);
      const loaded = await readCheckpoint(ck.path);
      loaded.optimizer.forEach((t) => t.dispose());
      assignWeights(new Map([...model.namedVariables()].filter(([k]) => loaded.weights.has(k))), loaded, ck.path);
    }
  } catch (e) {
    model.dispose();
    if (model !== base) base.dispose();
    throw e;
  }
  if (model !== base) {
    // The expanded model shares storage with its base; free the base's own variables with it.
    const dispose = model.dispose.bind(model);
    model.dispose = () => { dispose(); base.dispose(); };
  }
  return model;
}
