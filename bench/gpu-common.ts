// What the phases of the GPU check share (bench/gpu-check.ts runs them; environment/gpu-check.sh
// calls it once per phase): the two sizes, the time left, where results go, one log line format.
//
//   full  the GPU visit: ViT-S/16 and ViT-B/16 at 224 px, batch 32 and 128, a ViT-B/16 study
//   tiny  the same code paths on a CPU backend in about a minute (GPU_CHECK_SIZE=tiny)
import * as path from "node:path";
import type { VitPresetName } from "../src/model/config";
import { writeJsonAtomic } from "../src/ground/atomic";

export type CheckSize = "full" | "tiny";

export interface SizePlan {
  /** Parity fixtures: NAME.json with NAME.timm.safetensors and NAME.hf.safetensors beside it. */
  parity: string[];
  /** Model, batch and tolerance of the comparison with the reference backend. */
  numerics: { model: VitPresetName; batch: number; tolerance: number };
  /** Model and batch of the one-step-per-strategy test. */
  strategies: { model: VitPresetName; batch: number; steps: number };
  /** rowSeconds: the time a row's timed steps aim at, ours and PyTorch's (whose steps are shorter). */
  bench: { models: VitPresetName[]; batches: number[]; strategies: string[]; classes: number; rowSeconds: number; torchRowSeconds: number };
  study: StudySize;
}

export interface StudySize {
  model: VitPresetName | "tiny-32";
  imageSize: number;
  batch: number;
  evalBatch: number;
  /** Steps when the time allows (fewer otherwise; never fewer than minSteps). */
  maxSteps: number;
  minSteps: number;
  perClass: { train: number; test: number; bank: number; queries: number };
}

export const SIZES: Record<CheckSize, SizePlan> = {
  full: {
    parity: ["micro", "small16"],
    numerics: { model: "vit-small-16", batch: 2, tolerance: 1e-3 },
    // Batch 2, as the numerics: shaders compiled there are reused (the first step of a shape compiles).
    strategies: { model: "vit-small-16", batch: 2, steps: 3 },
    bench: { models: ["vit-small-16", "vit-base-16"], batches: [32, 128], strategies: ["full", "lora-8", "block-3"], classes: 100, rowSeconds: 10, torchRowSeconds: 2.5 },
    study: {
      model: "vit-base-16", imageSize: 224, batch: 16, evalBatch: 125, maxSteps: 300, minSteps: 20,
      perClass: { train: 200, test: 20, bank: 50, queries: 20 },
    },
  },
  tiny: {
    parity: ["micro", "small16"],
    numerics: { model: "vit-cifar-micro", batch: 2, tolerance: 1e-3 },
    strategies: { model: "vit-cifar-micro", batch: 4, steps: 3 },
    bench: { models: ["vit-cifar-micro"], batches: [4, 8], strategies: ["full", "lora-8", "block-3"], classes: 10, rowSeconds: 1, torchRowSeconds: 0.5 },
    study: {
      model: "tiny-32", imageSize: 32, batch: 4, evalBatch: 50, maxSteps: 6, minSteps: 6,
      perClass: { train: 16, test: 4, bank: 8, queries: 4 },
    },
  },
};

export function checkSize(): CheckSize {
  const s = process.env.GPU_CHECK_SIZE ?? "full";
  if (s !== "full" && s !== "tiny") throw new Error(`GPU_CHECK_SIZE=${s}: use full or tiny`);
  return s;
}

/** The phase's deadline (GPU_CHECK_DEADLINE, epoch seconds), or an hour from now when unset. */
export function deadline(): number {
  const d = Number(process.env.GPU_CHECK_DEADLINE);
  return Number.isFinite(d) && d > 0 ? d * 1000 : Date.now() + 3600_000;
}

export const secondsLeft = (): number => (deadline() - Date.now()) / 1000;

/** Writes `<out>/<name>.json` (atomically: a phase killed mid-write leaves the previous version). */
export function writeResult(out: string, name: string, value: unknown): string {
  const file = path.join(out, `${name}.json`);
  writeJsonAtomic(file, value);
  return file;
}

/** One log line, prefixed with the phase and the seconds left. */
export function say(phase: string, text: string): void {
  console.log(`[${phase} ${Math.max(0, secondsLeft()).toFixed(0)}s left] ${text}`);
}

export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 400);

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
