// Checkpoints: `<dir>/step-0000100/` holding `weights.safetensors` (the trained variables under
// their state-dict names, and the optimizer state under `optimizer/<name>/<slot>`; F32, written by
// src/weights/safetensors) and `state.json` (step, optimizer update count, anything else the
// trainer needs). A checkpoint is written into a temporary folder and renamed into place, so a
// folder named step-N is always complete.
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { fsyncDir, processAlive, writeJsonAtomic } from "../ground/atomic";
import { F32Tensor, readSafetensors, writeSafetensors, asFloat32 } from "../weights/safetensors";

export interface CheckpointState {
  step: number;
  optimizerUpdates: number;
  /** Why it was written: "periodic" (for resuming), "snapshot" (forgetting curves), "final". */
  reasons: string[];
  createdAt: string;
  [key: string]: unknown;
}

export interface CheckpointInfo {
  step: number;
  path: string;
}

const OPT_PREFIX = "optimizer/";
export const stepDirName = (step: number) => `step-${String(step).padStart(7, "0")}`;

/** Finished checkpoints in `dir`, by step. */
export function listCheckpoints(dir: string): CheckpointInfo[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((d) => /^step-\d+$/.test(d) && fs.existsSync(path.join(dir, d, "state.json")) && fs.existsSync(path.join(dir, d, "weights.safetensors")))
    .map((d) => ({ step: Number(d.slice(5)), path: path.join(dir, d) }))
    .sort((a, b) => a.step - b.step);
}

async function host(t: tf.Tensor): Promise<F32Tensor> {
  const d = await t.data();
  return { shape: [...t.shape], data: d instanceof Float32Array ? Float32Array.from(d) : Float32Array.from(d as ArrayLike<number>) };
}

/** Writes a checkpoint of `weights` (+ optimizer slots) atomically; returns its folder. */
export async function saveCheckpoint(
  dir: string,
  state: CheckpointState,
  weights: Map<string, tf.Tensor>,
  optimizerState: Map<string, tf.Tensor> = new Map(),
): Promise<string> {
  const final = path.join(dir, stepDirName(state.step));
  const tmp = path.join(dir, `.${stepDirName(state.step)}.${process.pid}.tmp`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const tensors = new Map<string, F32Tensor>();
  for (const [k, v] of weights) tensors.set(k, await host(v));
  for (const [k, v] of optimizerState) tensors.set(OPT_PREFIX + k, await host(v));
  await writeSafetensors(path.join(tmp, "weights.safetensors"), tensors, { format: "pt", step: String(state.step) });
  writeJsonAtomic(path.join(tmp, "state.json"), state);
  if (fs.existsSync(final)) {
    // Replace an older checkpoint of the same step: move it aside first, never leave none.
    const old = `${tmp}.old`;
    fs.renameSync(final, old);
    fs.renameSync(tmp, final);
    fs.rmSync(old, { recursive: true, force: true });
  } else fs.renameSync(tmp, final);
  // The rename is what makes the checkpoint exist: without this a power cut can undo it after
  // training went on (and pruned the previous one).
  fsyncDir(dir);
  return final;
}

export interface LoadedCheckpoint {
  state: CheckpointState;
  weights: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
  optimizer: Map<string, tf.Tensor>;
}

/** Reads a checkpoint folder; optimizer tensors are returned as tf tensors (caller disposes). */
export async function readCheckpoint(ckpt: string): Promise<LoadedCheckpoint> {
  const stateFile = path.join(ckpt, "state.json");
  if (!fs.existsSync(stateFile)) throw new Error(`${ckpt}: not a finished checkpoint (no state.json)`);
  const state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as CheckpointState;
  const { tensors } = await readSafetensors(path.join(ckpt, "weights.safetensors"));
  const weights = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  const optimizer = new Map<string, tf.Tensor>();
  for (const [k, t] of tensors) {
    const data = asFloat32(t);
    if (k.startsWith(OPT_PREFIX)) optimizer.set(k.slice(OPT_PREFIX.length), tf.tensor(data, [...t.shape]));
    else { weights.set(k, data); shapes.set(k, [...t.shape]); }
  }
  return { state, weights, shapes, optimizer };
}

/** Assigns checkpoint weights to variables by name; every variable must be present with its shape. */
export function assignWeights(vars: Map<string, tf.Variable>, ck: LoadedCheckpoint, what: string): void {
  for (const [name, v] of vars) {
    const data = ck.weights.get(name);
    const shape = ck.shapes.get(name);
    if (!data || !shape) throw new Error(`${what}: checkpoint has no tensor '${name}'`);
    if (shape.join(",") !== v.shape.join(",")) throw new Error(`${what}: '${name}' is [${shape}] in the checkpoint, [${v.shape}] in the model`);
    tf.tidy(() => v.assign(tf.tensor(data, shape)));
  }
}

/**
 * Deletes periodic checkpoints beyond the newest `keep`, sparing those in `protect`. Each is renamed
 * out of the listing first, so a process killed while deleting leaves no half checkpoint to resume from.
 */
export function pruneCheckpoints(dir: string, keep: number, protect: ReadonlySet<number>): void {
  const periodic = listCheckpoints(dir).filter((c) => !protect.has(c.step));
  for (const c of periodic.slice(0, Math.max(0, periodic.length - keep))) {
    const doomed = path.join(dir, `.${path.basename(c.path)}.${process.pid}.del`);
    fs.renameSync(c.path, doomed);
    fs.rmSync(doomed, { recursive: true, force: true });
  }
}

/**
 * Removes what writers that died left in a checkpoint folder: `.step-N.<pid>.tmp` (a checkpoint
 * being written), its `.old` (one being replaced) and `.del` (one being pruned), for pids that are
 * gone. Each can be a full copy of the weights and optimizer state.
 */
export function removeStaleCheckpointTemps(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const removed: string[] = [];
  for (const d of fs.readdirSync(dir)) {
    const m = /^\.step-\d+\.(\d+)\.(tmp|tmp\.old|del)$/.exec(d);
    if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
    fs.rmSync(path.join(dir, d), { recursive: true, force: true });
    removed.push(d);
  }
  return removed;
}
