// A tiny real study for engine tests: PNG images in an ImageFolder tree (3 learnable classes,
// 8x8), a 1-block ViT, SGD; retention measured on the same tree's train/test (as a stand-in
// source domain). Seconds per run on the cpu backend.
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import type { ExperimentConfig } from "../../src/studies/config";
import { toyImages } from "./linear-model";

export async function writeToyTree(root: string, sizes: { train: number; test: number } = { train: 24, test: 12 }): Promise<void> {
  const S = 8;
  for (const [split, n, seed] of [["train", sizes.train, 1], ["test", sizes.test, 2]] as const) {
    const { pixels, labels } = toyImages(n, S, 3, seed);
    for (let i = 0; i < n; i++) {
      const f = path.join(root, split, `c${labels[i]}`, `${String(i).padStart(3, "0")}.png`);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      await sharp(Buffer.from(pixels.subarray(i * S * S * 3, (i + 1) * S * S * 3)), { raw: { width: S, height: S, channels: 3 } }).png().toFile(f);
    }
  }
}

const norm = { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] };

export function toyStudy(root: string, steps = 6): ExperimentConfig {
  const train = { name: "imagefolder" as const, root, split: "train", size: 8 };
  const test = { name: "imagefolder" as const, root, split: "test", size: 8 };
  return {
    name: "toy", seed: 0,
    data: { train, test, trainTransform: { kind: "pad-crop", size: 8, padding: 1, flip: true, ...norm }, evalTransform: { kind: "identity", size: 8, ...norm }, batchSize: 6 },
    model: { vit: { imageSize: 8, patchSize: 4, inChannels: 3, width: 16, depth: 1, heads: 2, numClasses: 3 } },
    strategy: { kind: "full" },
    train: { steps, optimizer: { name: "sgd", lr: 0.05, momentum: 0.9 }, schedule: { kind: "cosine", warmupSteps: 1 }, evalEvery: 2, checkpointEvery: 2, keepCheckpoints: 1, logEvery: 2 },
    eval: {},
    retention: { bank: train, queries: test, transform: { kind: "identity", size: 8, ...norm }, ks: [1, 5], temperature: 0.07, steps: [0, 1, 3, steps], atBest: true },
  };
}
