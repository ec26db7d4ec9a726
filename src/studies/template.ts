// The config a run starts from when only flags are given (`study train --train ... --test ...`):
// CIFAR-native transforms at 32 px, a small ViT, AdamW with warm-up and cosine, target k-NN.
import { cifarEval, cifarTrain } from "../data/transforms";
import type { ExperimentConfig } from "./config";

export function templateConfig(): ExperimentConfig {
  return {
    name: "run", seed: 0,
    data: {
      train: { name: "cifar10-jpeg", split: "train" }, test: { name: "cifar10-jpeg", split: "test" },
      trainTransform: cifarTrain(32), evalTransform: cifarEval(32), batchSize: 128,
    },
    model: { preset: "vit-cifar-micro", vit: {} },
    strategy: { kind: "full" },
    train: { steps: 1000, optimizer: { name: "adamw", lr: 1e-3, weightDecay: 0.05 }, schedule: { kind: "cosine", warmupSteps: 100 }, checkpointEvery: 100, evalEvery: 500 },
    eval: { knn: { ks: [10, 20, 100, 200], temperature: 0.07 } },
  };
}
