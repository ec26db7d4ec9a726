// One call from a config to a finished, recorded run: the code path shared by `study train` and
// the notebooks. Config -> run folder (id = hash of the config) -> data, model, strategy ->
// train (resuming from the run's checkpoints) -> final top-1 and k-NN -> results.json.
import * as path from "node:path";
import type { TrainableModel, ImageModel } from "../model/types";
import type { ViTConfig, PresetName } from "../model/config";
import type { ViT } from "../model/vit";
import type { StrategySpec } from "../adapters/spec";
import { BackendChoice, initBackend } from "../runtime/backend";
import { DatasetSpec, loadDataset } from "../data/datasets";
import { DataLoader } from "../data/pipeline";
import type { TransformSpec } from "../data/transforms";
import { evaluateAccuracy, extractFeatures, featureBatches } from "../evaluation/features";
import { DINO_KS, DINO_TEMPERATURE, knnClassify } from "../evaluation/knn";
import { Run } from "../runs/store";
import { listCheckpoints } from "./checkpoint";
import { TrainConfig, train } from "./trainer";

export interface ExperimentConfig {
  [key: string]: unknown;
  name: string;
  seed: number;
  data: {
    train: DatasetSpec;
    test: DatasetSpec;
    trainTransform: TransformSpec;
    evalTransform: TransformSpec;
    batchSize: number;
    evalBatchSize?: number;
  };
  model: {
    /** A preset name and/or ViT config fields. */
    preset?: PresetName;
    vit?: Partial<ViTConfig>;
    /** Initial weights (safetensors, any naming src/weights understands). */
    init?: string;
  };
  /** How the model is fine-tuned (src/adapters: full, top-k, linear, lora, selective-lora, block-expansion). */
  strategy: StrategySpec;
  train: TrainConfig;
  eval: {
    /** k-NN with bank = the train set (eval transform) and queries = the test set. */
    knn?: { ks?: number[]; temperature?: number };
  };
}

export interface RunOptions {
  /** Start over even when a finished or unfinished run exists. */
  force?: boolean;
  /** Run-store root (default runs/ or STUDY_RUNS_DIR). */
  root?: string;
  backend?: BackendChoice;
  /** Replaces applyStrategy (e.g. a model that is not a ViT). */
  prepare?: (model: ImageModel, strategy: ExperimentConfig["strategy"]) => TrainableModel;
  /** Extra measurements at every evaluation step (e.g. k-NN retention on the source domain). */
  evaluate?: (model: ImageModel, step: number) => Promise<Record<string, number>>;
  /** Called after each checkpoint/snapshot (forgetting curves: evaluate snapshot steps). */
  onCheckpoint?: (step: number, dir: string, reasons: string[]) => Promise<void> | void;
}

export interface ExperimentResults {
  [key: string]: unknown;
  top1: number;
  testLoss: number;
  knn?: Record<string, number>;
  trainSeconds: number;
  steps: number;
  finalTrainLoss: number;
  trainable: number;
  describe: string;
  weights: string;
}

/** Every variable trains (the papers' "All"). */
export function fullFineTuning(model: ImageModel): TrainableModel {
  return { model, trainable: [...model.namedVariables().values()], describe: "full: every parameter" };
}

export async function createModel(c: ExperimentConfig["model"], seed: number): Promise<ViT> {
  const { createViT } = require("../model/vit") as typeof import("../model/vit");
  const { vitConfig } = require("../model/config") as typeof import("../model/config");
  const cfg = vitConfig(c.preset ?? {}, c.vit ?? {});
  const model = createViT(cfg, { seed });
  if (c.init) {
    const { loadWeights } = require("../weights/load") as typeof import("../weights/load");
    await loadWeights(model.namedVariables(), c.init);
  }
  return model;
}

/** Runs (or reuses, or resumes) the experiment; returns its run and results. */
export async function runExperiment(config: ExperimentConfig, opts: RunOptions = {}): Promise<{ run: Run; results: ExperimentResults; reused: boolean }> {
  const backend = await initBackend(opts.backend ? { prefer: opts.backend } : {});
  const run = Run.open(config, { root: opts.root, force: opts.force });
  const done = run.results<ExperimentResults>();
  if (done && !opts.force) return { run, results: done, reused: true };

  const resumeFrom = listCheckpoints(run.checkpointDir).filter((c) => c.step <= config.train.steps).at(-1)?.step ?? 0;
  run.truncateMetrics(resumeFrom);
  run.writeRecord(config.seed, resumeFrom, { backendWhy: backend.reason });

  const trainSet = await loadDataset(config.data.train);
  const testSet = await loadDataset(config.data.test);
  const model = await createModel(config.model, config.seed);
  const { applyStrategy } = require("../adapters/strategies") as typeof import("../adapters/strategies");
  const tm = opts.prepare ? opts.prepare(model, config.strategy) : applyStrategy(model, config.strategy);
  // Block expansion trains a new (expanded) model: everything below uses the trained one.
  const trained = tm.model;
  const evalOpts = { transform: config.data.evalTransform, batchSize: config.data.evalBatchSize ?? 256 };
  const loader = new DataLoader(trainSet, { batchSize: config.data.batchSize, transform: config.data.trainTransform, seed: config.seed, shuffle: true, dropLast: true });
  const t0 = Date.now();
  let result;
  try {
    result = await train(tm, loader, config.train, {
      checkpointDir: run.checkpointDir,
      checkpointMeta: { runId: run.id },
      hooks: {
        onMetrics: (m) => run.appendMetrics(m),
        onCheckpoint: opts.onCheckpoint,
        evaluate: async (step) => {
          const a = await evaluateAccuracy(trained, testSet, evalOpts);
          return { testTop1: a.top1, testLoss: a.loss, ...(await opts.evaluate?.(trained, step)) };
        },
      },
    });
  } finally {
    await loader.close();
  }
  const acc = await evaluateAccuracy(trained, testSet, evalOpts);
  let knn: Record<string, number> | undefined;
  if (config.eval.knn) {
    const queries = await extractFeatures(trained, testSet, evalOpts);
    const r = await knnClassify(featureBatches(trained, trainSet, evalOpts), queries, {
      numClasses: trainSet.classes.length, ks: config.eval.knn.ks ?? DINO_KS, temperature: config.eval.knn.temperature ?? DINO_TEMPERATURE,
    });
    knn = Object.fromEntries(Object.entries(r.accuracy).map(([k, v]) => [`knn${k}`, v]));
  }
  const { saveStateDict } = require("../weights/load") as typeof import("../weights/load");
  const weights = path.join(run.dir, "model.safetensors");
  await saveStateDict(weights, trained.namedVariables(), { run: run.id });
  const results: ExperimentResults = {
    top1: acc.top1, testLoss: acc.loss, knn, trainSeconds: (Date.now() - t0) / 1000, steps: result.steps,
    finalTrainLoss: result.finalLoss, trainable: tm.trainable.reduce((a, v) => a + v.size, 0), describe: tm.describe, weights,
  };
  run.appendMetrics({ kind: "final", step: result.steps, top1: acc.top1, ...knn });
  run.writeResults(results);
  const stored = run.results<ExperimentResults>()!; // as a rerun will see it (with id, finishedAt)
  trained.dispose();
  if (trained !== model) model.dispose();
  return { run, results: stored, reused: false };
}
