import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../support/fixtures";
import { writeToyTree } from "../support/tiny-study";
import type { ExperimentConfig } from "../../src/studies/config";
import { runExperiment } from "../../src/studies/experiment";
import { resultsTable } from "../../src/runs/tables";
import { listRuns } from "../../src/runs/store";
import { resolveTrainConfig } from "../../src/cli/commands/train";
import { parseDatasetArg } from "../../src/cli/commands/dataset-args";

const dir = tempDir("experiment-test");
process.env.STUDY_DATA_DIR = path.join(dir, "data");
const runs = path.join(dir, "runs");

const norm = { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] };
const config = (root: string, strategy: ExperimentConfig["strategy"]): ExperimentConfig => ({
  name: `tiny-${strategy.kind}`, seed: 3,
  data: {
    train: { name: "imagefolder", root, split: "train", size: 8 }, test: { name: "imagefolder", root, split: "test", size: 8 },
    trainTransform: { kind: "pad-crop", size: 8, padding: 1, flip: true, ...norm }, evalTransform: { kind: "identity", size: 8, ...norm }, batchSize: 6,
  },
  model: { vit: { imageSize: 8, patchSize: 4, inChannels: 3, width: 16, depth: 1, heads: 2, numClasses: 3 } },
  strategy,
  train: { steps: 6, optimizer: { name: "adamw", lr: 3e-3 }, schedule: { kind: "cosine", warmupSteps: 2 }, checkpointEvery: 3, evalEvery: 3, logEvery: 2 },
  eval: { knn: { ks: [1, 5], temperature: 0.07 } },
});

test("a config runs end to end into the run store, is reused on rerun, and loads into a table", async () => {
  const root = path.join(dir, "tree");
  await writeToyTree(root);
  const cfg = config(root, { kind: "full" });
  const first = await runExperiment(cfg, { root: runs, backend: "cpu" });
  assert.equal(first.reused, false);
  for (const f of ["config.json", "record.json", "metrics.jsonl", "results.json", "model.safetensors"]) assert.ok(fs.existsSync(path.join(first.run.dir, f)), f);
  const rec = first.run.record()!;
  assert.equal(rec.seed, 3);
  assert.equal(rec.backend?.choice, "cpu");
  assert.ok(first.results.top1 >= 0 && first.results.top1 <= 1 && first.results.knn!.knn1 >= 0);
  assert.equal(first.run.metrics().filter((m) => m.kind === "eval").length, 3); // steps 0, 3, 6
  const again = await runExperiment(cfg, { root: runs, backend: "cpu" });
  assert.equal(again.reused, true);
  assert.deepEqual(again.results, first.results);
  const lora = await runExperiment(config(root, { kind: "lora", rank: 2 }), { root: runs, backend: "cpu" });
  assert.ok(lora.results.trainable < first.results.trainable, `lora trains fewer parameters (${lora.results.trainable} vs ${first.results.trainable})`);
  // `study eval --step 6` rebuilds the LoRA model from the run's config and its step-6 checkpoint
  // (adapter + head only): the same top-1 as the run's final weights.
  const { command } = await import("../../src/cli/commands/eval");
  process.env.STUDY_RUNS_DIR = runs;
  const printed: string[] = [];
  const log = console.log;
  console.log = (s: string) => printed.push(s);
  try {
    assert.equal(await command.run([lora.run.id, "--step", "6", "--accuracy", "--json", "--backend", "cpu"]), 0);
  } finally {
    console.log = log;
  }
  const report = JSON.parse(printed.join("\n")) as { top1: number; weights: string };
  assert.match(report.weights, /step 6$/);
  assert.equal(report.top1, lora.results.top1);
  const t = resultsTable(listRuns(runs));
  assert.equal(t.numRows(), 2);
  assert.deepEqual(t.array("config.strategy.kind").slice().sort(), ["full", "lora"]);
});

test("the train command resolves configs and flags; dataset shorthands parse", () => {
  assert.deepEqual(parseDatasetArg("cifar10-jpeg:test:0-2,7"), { name: "cifar10-jpeg", split: "test", classes: [0, 1, 2, 7] });
  assert.throws(() => parseDatasetArg("mnist"), /expected name:split/);
  const file = path.join(dir, "cfg.json");
  fs.writeFileSync(file, JSON.stringify(config("/x", { kind: "full" })));
  const { config: c } = resolveTrainConfig([file, "--steps", "99", "--set", "train.schedule.warmupSteps=7", "--set", "model.vit.depth=2", "--name", "renamed"]);
  assert.equal(c.train.steps, 99);
  assert.equal(c.train.schedule.warmupSteps, 7);
  assert.equal(c.model.vit!.depth, 2);
  assert.equal(c.name, "renamed");
  const { config: f } = resolveTrainConfig(["--train", "mnist:train", "--test", "mnist:test", "--optimizer", "sgd", "--lr", "0.05"]);
  assert.deepEqual(f.train.optimizer, { name: "sgd", lr: 0.05, momentum: 0.9 });
  assert.throws(() => resolveTrainConfig([path.join(dir, "missing.json")]), /missing\.json: no such config file/);
});
