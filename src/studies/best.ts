// The best-on-test evaluation of a run and its weights: the official code keeps the checkpoint of
// the best test accuracy, so the studies report it (as such) beside the last step. The trainable
// variables of the best step are kept under <run>/best/, and a resumed run recovers the best so
// far from its metrics.
import type * as tf from "@tensorflow/tfjs";
import { pruneCheckpoints, saveCheckpoint } from "../training/checkpoint";

/** Keeps the best target top-1 and its weights (a checkpoint of the trainable set under best/). */
export class BestTracker {
  top1 = -1;
  step = -1;
  constructor(private readonly dir: string | undefined) {}
  /** Restores the best of the eval lines up to `upTo` (a resumed run). */
  restore(lines: Record<string, unknown>[], upTo: number): void {
    for (const m of lines) {
      if (m.kind === "eval" && typeof m.testTop1 === "number" && typeof m.step === "number" && m.step > 0 && m.step < upTo) this.offer(m.step, m.testTop1);
    }
  }
  /** True when this is a new best (the earliest step wins ties). */
  offer(step: number, top1: number): boolean {
    if (top1 <= this.top1) return false;
    this.top1 = top1;
    this.step = step;
    return true;
  }
  async save(step: number, vars: Map<string, tf.Variable>): Promise<void> {
    if (!this.dir) return;
    await saveCheckpoint(this.dir, { step, optimizerUpdates: 0, reasons: ["best"], createdAt: new Date().toISOString() }, vars);
    pruneCheckpoints(this.dir, 0, new Set([step]));
  }
}

