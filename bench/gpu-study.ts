// The GPU check's study (phase "study"): full fine-tuning vs LoRA r=8 vs block expansion p=3 of
// ViT-B/16 at 224 px, end to end through the studies layer (configs, sweep, run store, trainer,
// target top-1, k-NN retention), with Paper A's optimizer, schedule and transforms.
//
// The machine it is meant for has no pretrained weights and no network, so the backbone starts
// from RANDOM weights, and the data is MNIST, the one real data set small enough to travel with
// the bundle: target = digits 5-9, "source" for retention = digits 0-4 (bank: train images,
// queries: test images). The numbers show that the path runs at scale and what it costs, not
// Paper A's findings: a random backbone has no source knowledge to forget.
//
// Steps: as many as fit in the phase's time (a few hundred at most), estimated from the
// benchmark's images/s of the same model and batch (bench.json in the output folder).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { DatasetSpec } from "../src/data/datasets";
import { paperEval, paperTrain } from "../src/data/transforms";
import { initBackend } from "../src/runtime/backend";
import type { ExperimentConfig } from "../src/studies/config";
import { method, warmup } from "../src/studies/paper-a/recipe";
import { rowsOf } from "../src/studies/rows";
import { sweep, SweepRow, Variant } from "../src/studies/sweep";
import type { GpuBenchRow } from "./gpu-bench";
import { checkSize, say, secondsLeft, SIZES, StudySize, writeResult } from "./gpu-common";

/** Paper A's rows in the study, and the benchmark row each one's speed is estimated from. */
const METHODS: [string, string][] = [["All", "full"], ["LoRA r=8", "lora-8"], ["Block p=3", "block-3"]];

const TARGET = [5, 6, 7, 8, 9];
const SOURCE = [0, 1, 2, 3, 4];

export const RANDOM_WEIGHTS_NOTE =
  "RANDOM weights: the backbone is not pretrained (no weight file and no network on the GPU machine), and the data is MNIST " +
  "(target digits 5-9; retention = k-NN on digits 0-4). This checks that the studies layer runs end to end at ViT-B/16 scale " +
  "and what it costs; it does not reproduce Paper A's numbers (a random backbone has nothing to forget).";

function baseConfig(sz: StudySize, steps: number): ExperimentConfig {
  const S = sz.imageSize;
  const mnist = (split: "train" | "test", classes: number[], perClass: number): DatasetSpec => ({ name: "mnist", split, size: S, classes, perClass });
  const pc = sz.perClass;
  return {
    name: `gpu-check-${sz.model}-mnist`,
    seed: 0,
    data: {
      train: mnist("train", TARGET, pc.train), test: mnist("test", TARGET, pc.test),
      trainTransform: paperTrain(S), evalTransform: paperEval(S), batchSize: sz.batch, evalBatchSize: sz.evalBatch,
    },
    model: sz.model === "tiny-32"
      ? { vit: { imageSize: 32, patchSize: 8, inChannels: 3, width: 64, depth: 4, heads: 2, numClasses: 0 } }
      : { preset: sz.model, vit: { numClasses: 0 } },
    strategy: { kind: "full", freshHead: { classes: TARGET.length, seed: 0 } },
    train: {
      steps, optimizer: { name: "sgd", lr: 0.005, momentum: 0.9, weightDecay: 0 }, schedule: { kind: "cosine", warmupSteps: warmup(steps, "default") },
      evalEvery: steps, keepCheckpoints: 1, logEvery: Math.max(1, Math.round(steps / 10)),
    },
    eval: {},
    retention: {
      bank: mnist("train", SOURCE, pc.bank), queries: mnist("test", SOURCE, pc.queries), transform: paperEval(S),
      ks: [10, 20], temperature: 0.07, steps: [0, steps], atBest: false,
    },
  };
}

/** Paper A's rows (strategy, learning rate, warm-up) as variants; the paper preset's placements at 12 blocks. */
function variants(sz: StudySize, steps: number): Variant[] {
  return METHODS.map(([name]) => {
    const m = method(name);
    const spec = m.strategy(sz.model === "tiny-32" ? "laptop" : "paper");
    return {
      tags: { method: m.method },
      strategy: { ...spec, freshHead: { classes: TARGET.length, seed: 0 }, ...(spec.kind === "lora" ? { seed: 0 } : {}) },
      train: { optimizer: { name: "sgd", lr: m.lr, momentum: 0.9, weightDecay: 0 }, schedule: { kind: "cosine", warmupSteps: warmup(steps, m.warmup) } },
    };
  });
}

interface StepChoice {
  steps: number;
  how: string;
  estimatedSeconds?: number;
}

/** As many steps as fit in the time left, from the benchmark's speed of this model and batch. */
export function chooseSteps(sz: StudySize, out: string): StepChoice {
  if (process.env.GPU_CHECK_STUDY_STEPS) return { steps: Number(process.env.GPU_CHECK_STUDY_STEPS), how: "GPU_CHECK_STUDY_STEPS" };
  if (sz.minSteps === sz.maxSteps) return { steps: sz.maxSteps, how: `fixed at the ${checkSize()} size` };
  let rows: GpuBenchRow[] = [];
  try {
    rows = (JSON.parse(fs.readFileSync(path.join(out, "bench.json"), "utf8")) as { rows: GpuBenchRow[] }).rows;
  } catch {
    /* no benchmark: the minimum */
  }
  const near = (strategy: string) =>
    rows.filter((r) => r.model === sz.model && r.strategy === strategy && r.train).sort((a, b) => Math.abs(a.batch - sz.batch) - Math.abs(b.batch - sz.batch))[0];
  const found = METHODS.map(([, s]) => near(s));
  if (found.some((r) => !r)) return { steps: sz.minSteps, how: `the minimum: bench.json has no ${sz.model} training speed for every strategy` };
  const secPerStep = found.reduce((s, r) => s + sz.batch / r!.train!.imgPerSec, 0); // all three runs
  const fwd = found.find((r) => r!.forward)?.forward?.imgPerSec ?? found[0]!.train!.imgPerSec * 3;
  const pc = sz.perClass;
  const evalImages = METHODS.length * 2 * TARGET.length * (pc.test + pc.bank + pc.queries); // at step 0 and at the end
  const evalSeconds = evalImages / fwd;
  // Data decoding, run setup and the input pipeline: a safety factor of 1.5 and 20 s.
  const budget = (secondsLeft() - 20) / 1.5 - evalSeconds;
  const steps = Math.max(sz.minSteps, Math.min(sz.maxSteps, Math.floor(budget / secPerStep)));
  return {
    steps, estimatedSeconds: Math.round(1.5 * (steps * secPerStep + evalSeconds) + 20),
    how: `fit to ${Math.round(secondsLeft())} s left at the benchmark's ${sz.model} speed (${found.map((r) => `${r!.strategy} ${r!.train!.imgPerSec.toFixed(1)} img/s at batch ${r!.batch}`).join(", ")})`,
  };
}

/** Phase "study". */
export async function studyPhase(out: string): Promise<number> {
  const report = await initBackend();
  const sz = SIZES[checkSize()].study;
  const choice = chooseSteps(sz, out);
  const root = process.env.STUDY_RUNS_DIR || fs.mkdtempSync(path.join(os.tmpdir(), "gpu-study-runs-"));
  const base = baseConfig(sz, choice.steps);
  const result: Record<string, unknown> = {
    note: RANDOM_WEIGHTS_NOTE, backend: report.choice, adapter: report.adapter ?? null, size: checkSize(),
    model: sz.model, imageSize: sz.imageSize, batch: sz.batch, steps: choice.steps, stepsChosen: choice.how,
    estimatedSeconds: choice.estimatedSeconds ?? null, runStore: root, base,
  };
  writeResult(out, "study", { ...result, status: "running" });
  say("study", RANDOM_WEIGHTS_NOTE);
  say("study", `${METHODS.map(([m]) => m).join(" vs ")}: ${sz.model} at ${sz.imageSize} px, batch ${sz.batch}, ${choice.steps} steps (${choice.how})`);
  const t0 = Date.now();
  // In this process: a run process (src/studies/run-process.ts) forks run-child.ts through tsx, which the bundle has not.
  const table = await sweep(base, variants(sz, choice.steps), { root, label: "gpu-study", inProcess: true });
  const seconds = (Date.now() - t0) / 1000;
  // train_seconds is the trainer's time, the evaluations at step 0 and at the end included.
  const rows: SweepRow[] = rowsOf(table).map((r) => ({
    ...r, img_per_sec_with_evals: typeof r.train_seconds === "number" && r.train_seconds > 0 ? (choice.steps * sz.batch) / r.train_seconds : null,
  }));
  const failed = rows.filter((r) => r.status === "failed").length;
  writeResult(out, "study", { ...result, status: failed ? `${failed} run(s) failed` : "finished", seconds, rows });
  for (const r of rows) say("study", `  ${JSON.stringify(r)}`);
  say("study", `${rows.length - failed}/${rows.length} runs finished in ${seconds.toFixed(0)} s`);
  return failed ? 1 : 0;
}
