// The training loop: cross-entropy (+ the model's regularizer) on seeded batches, own SGD/AdamW,
// warm-up + cosine per update, optional global grad-norm clipping, evaluation every N steps,
// checkpoints at chosen steps, bit-exact resume, and a NaN/Inf guard.
//
// Steps count updates: "step k" is the model after k updates (step 0 = before training). Batch k
// (the one that produces step k+1) is a pure function of (data seed, k), so resuming from the
// checkpoint of step k needs only its weights, its optimizer state and k itself.
import * as tf from "@tensorflow/tfjs";
import type { TrainableModel } from "../model/types";
import type { Batch } from "../data/pipeline";
import { crossEntropy } from "./loss";
import { CheckpointState, assignWeights, listCheckpoints, pruneCheckpoints, readCheckpoint, removeStaleCheckpointTemps, saveCheckpoint } from "./checkpoint";
import { Optimizer, OptimizerConfig, createOptimizer } from "./optimizers";
import { ScheduleConfig, learningRate } from "./schedule";
import { ProgressMode, createProgress } from "../ground/progress";
import { explainWasmTrap } from "../runtime/wasm";

export interface TrainConfig {
  /** Total updates. */
  steps: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleConfig;
  /** Max global L2 norm of the gradients (PyTorch clip_grad_norm_); off when undefined. */
  clipGradNorm?: number;
  /** Run `hooks.evaluate` every N steps (and at the end); off when undefined. */
  evalEvery?: number;
  /** Also run `hooks.evaluate` at these steps (e.g. a forgetting curve's 0, 1, 2, 5, 10, ...). */
  evalAt?: number[];
  /** Periodic checkpoints for resuming, every N steps. */
  checkpointEvery?: number;
  /** Periodic checkpoints kept (older ones pruned); snapshots are always kept. Default 2. */
  keepCheckpoints?: number;
  /** Steps whose weights are kept for later evaluation, e.g. [0,1,2,5,10,20,50,100]. */
  saveAt?: number[];
  /** A metrics line every N steps (default 10). */
  logEvery?: number;
}

/** Where batches come from: anything that yields the batches of steps [from, to). */
export interface BatchSource {
  batches(from: number, to: number): AsyncIterable<Batch>;
}

export interface StepMetrics {
  step: number;
  epoch: number;
  lr: number;
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Regularizer value (selective-LoRA penalty), when the model has one. */
  reg?: number;
  /** Training throughput over the last logging window. */
  imgPerSec: number;
  /** Wall seconds since this process started training. */
  seconds: number;
  numTensors: number;
}

export interface TrainHooks {
  /** Evaluation at evalEvery steps and at the end; the numbers go into the metrics stream. */
  evaluate?: (step: number) => Promise<Record<string, number>>;
  /** Called after a checkpoint or snapshot is written. */
  onCheckpoint?: (step: number, dir: string, reasons: string[]) => Promise<void> | void;
  /** Every metrics record (train lines and eval lines), e.g. appended to metrics.jsonl. */
  onMetrics?: (record: Record<string, unknown>) => void;
  /** After every update: the step reached and its loss (progress displays). */
  onStep?: (step: number, loss: number) => void;
}

export interface TrainOptions {
  /** Checkpoints go here; when it holds some, training resumes from the newest. */
  checkpointDir?: string;
  /** Resume from the newest checkpoint in checkpointDir (default true). */
  resume?: boolean;
  hooks?: TrainHooks;
  progress?: ProgressMode;
  /** Extra fields stored in every checkpoint's state.json (e.g. the run config hash). */
  checkpointMeta?: Record<string, unknown>;
}

export interface TrainResult {
  steps: number;
  resumedFrom: number | null;
  finalLoss: number;
  history: StepMetrics[];
  evals: Record<string, number>[];
  seconds: number;
  /** tf.memory().numTensors after each of the last steps (flat when nothing leaks). */
  numTensors: number[];
}

/** Thrown by the NaN/Inf guard; the weights are those of the last finite step. */
export class NonFiniteError extends Error {
  constructor(readonly step: number, readonly what: string, readonly lastCheckpoint: string | null) {
    super(
      `training stopped at update ${step + 1}: ${what} is not finite; the update was not applied, ` +
        (lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : "no checkpoint was written"),
    );
    this.name = "NonFiniteError";
  }
}

/** The state-dict name of every trainable variable (falls back to tfjs's name). */
function stateNames(tm: TrainableModel): Map<string, tf.Variable> {
  const byVar = new Map<tf.Variable, string>();
  for (const [k, v] of tm.model.namedVariables()) byVar.set(v, k);
  const out = new Map<string, tf.Variable>();
  for (const v of tm.trainable) {
    const name = byVar.get(v) ?? v.name;
    if (out.has(name)) throw new Error(`trainable variable '${name}' listed twice`);
    out.set(name, v);
  }
  return out;
}

/** Trains `tm` on `data`; see TrainConfig for what happens when. */
export async function train(tm: TrainableModel, data: BatchSource, config: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const optimizer: Optimizer = createOptimizer(config.optimizer);
  try {
    return await trainWith(optimizer, tm, data, config, opts);
  } finally {
    // Also when a step fails (non-finite loss, a trap, a bad batch): its slots are 1-2x the
    // trainable size, and a sweep or a notebook goes on in the same process.
    optimizer.dispose();
  }
}

async function trainWith(optimizer: Optimizer, tm: TrainableModel, data: BatchSource, config: TrainConfig, opts: TrainOptions): Promise<TrainResult> {
  const vars = stateNames(tm);
  const varList = [...vars.values()];
  const tfName = new Map([...vars].map(([k, v]) => [v.name, k]));
  const dir = opts.checkpointDir;
  const saveAt = new Set(config.saveAt ?? []);
  const evalAt = new Set(config.evalAt ?? []);
  const isEvalStep = (step: number) => (config.evalEvery !== undefined && step % config.evalEvery === 0) || evalAt.has(step) || step === config.steps;
  const logEvery = Math.max(1, config.logEvery ?? 10);
  const hooks = opts.hooks ?? {};
  const history: StepMetrics[] = [];
  const evals: Record<string, number>[] = [];
  const numTensors: number[] = [];
  let lastCheckpoint: string | null = null;

  let start = 0;
  let resumedFrom: number | null = null;
  if (dir) removeStaleCheckpointTemps(dir);
  if (dir && opts.resume !== false) {
    const latest = listCheckpoints(dir).filter((c) => c.step <= config.steps).at(-1);
    if (latest) {
      const ck = await readCheckpoint(latest.path);
      assignWeights(vars, ck, latest.path);
      optimizer.load(ck.optimizer, ck.state.optimizerUpdates);
      tf.dispose([...ck.optimizer.values()]);
      start = resumedFrom = ck.state.step;
      lastCheckpoint = latest.path;
    }
  }

  const checkpoint = async (step: number, reasons: string[]) => {
    if (!dir) return;
    const state: CheckpointState = { step, optimizerUpdates: optimizer.updates, reasons, createdAt: new Date().toISOString(), ...opts.checkpointMeta };
    lastCheckpoint = await saveCheckpoint(dir, state, vars, optimizer.state());
    if (config.checkpointEvery) pruneCheckpoints(dir, config.keepCheckpoints ?? 2, new Set([...saveAt, config.steps]));
    await hooks.onCheckpoint?.(step, lastCheckpoint, reasons);
  };
  const evaluate = async (step: number) => {
    if (!hooks.evaluate) return;
    const r = await hooks.evaluate(step);
    evals.push({ step, ...r });
    hooks.onMetrics?.({ kind: "eval", step, ...r });
  };

  if (start === 0 && saveAt.has(0)) await checkpoint(0, ["snapshot"]);
  // A resumed run evaluates its first step again: the process may have died between writing that
  // step's checkpoint and its evaluation (the numbers are the same, the weights being the same).
  if (isEvalStep(start)) await evaluate(start);

  const progress = createProgress("train", config.steps, { mode: opts.progress, unit: "step", start });
  const t0 = Date.now();
  let windowStart = Date.now(), windowImages = 0;
  let lossSum = 0, lossN = 0;
  let finalLoss = NaN;

  for await (const batch of data.batches(start, config.steps)) {
    const t = batch.step;
    const lr = learningRate(config.optimizer.lr, config.schedule, t, config.steps);
    const x = tf.tensor4d(batch.x, batch.shape); // [B,S,S,3]
    const y = tf.tensor1d(batch.labels, "int32"); // [B]
    let regT: tf.Scalar | undefined;
    let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
    try {
      result = tf.variableGrads(() => {
        const ce = tm.loss ? tm.loss(x, batch.labels, t) : crossEntropy(tm.model.logits(x, { training: true, step: t }), y);
        const reg = tm.regularizer?.(t);
        if (!reg) return ce;
        regT = tf.keep(reg.clone());
        return tf.add(ce, reg) as tf.Scalar;
      }, varList);
    } catch (e) {
      tf.dispose([x, y]);
      regT?.dispose();
      throw explainWasmTrap(e, `training step ${t} (batch ${batch.labels.length})`);
    }
    const { value, grads } = result;
    const named = new Map<string, tf.Tensor>();
    for (const [k, g] of Object.entries(grads)) named.set(tfName.get(k) ?? k, g);
    const norm = tf.tidy(() => tf.sqrt(tf.addN([...named.values()].map((g) => tf.sum(tf.square(g))))));
    const packed = tf.tidy(() => tf.stack([value, norm, regT ?? tf.scalar(0)])); // [3]: one read per step
    const [lossV, normV, regV] = Array.from(await packed.data());
    packed.dispose();
    if (!Number.isFinite(lossV) || !Number.isFinite(normV)) {
      tf.dispose([x, y, value, norm, ...named.values()]);
      if (regT) regT.dispose();
      progress.finish("stopped: non-finite");
      throw new NonFiniteError(t, !Number.isFinite(lossV) ? `the loss (${lossV})` : `the gradient norm (${normV})`, lastCheckpoint);
    }
    if (config.clipGradNorm !== undefined) {
      const coef = config.clipGradNorm / (normV + 1e-6);
      if (coef < 1) for (const [k, g] of named) { named.set(k, tf.mul(g, coef)); g.dispose(); }
    }
    optimizer.apply(vars, named, lr);
    tm.afterStep?.();
    tf.dispose([x, y, value, norm, ...named.values()]);
    if (regT) regT.dispose();

    const step = t + 1;
    finalLoss = lossV;
    lossSum += lossV;
    lossN++;
    windowImages += batch.labels.length;
    numTensors.push(tf.memory().numTensors);
    if (numTensors.length > 20) numTensors.shift();
    if (step % logEvery === 0 || step === config.steps) {
      const now = Date.now();
      const m: StepMetrics = {
        step, epoch: batch.epoch, lr, loss: lossSum / lossN, gradNorm: normV,
        imgPerSec: windowImages / Math.max(1e-3, (now - windowStart) / 1000), seconds: (now - t0) / 1000, numTensors: tf.memory().numTensors,
      };
      if (tm.regularizer) m.reg = regV;
      history.push(m);
      hooks.onMetrics?.({ kind: "train", ...m });
      windowStart = now; windowImages = 0; lossSum = 0; lossN = 0;
    }
    progress.update(step, `loss ${lossV.toFixed(4)} lr ${lr.toExponential(2)}`);
    hooks.onStep?.(step, lossV);
    const reasons: string[] = [];
    if (saveAt.has(step)) reasons.push("snapshot");
    if (config.checkpointEvery && step % config.checkpointEvery === 0) reasons.push("periodic");
    if (step === config.steps) reasons.push("final");
    if (reasons.length) await checkpoint(step, reasons);
    if (isEvalStep(step)) await evaluate(step);
  }
  progress.finish(Number.isFinite(finalLoss) ? `loss ${finalLoss.toFixed(4)}` : undefined);
  return { steps: config.steps, resumedFrom, finalLoss, history, evals, seconds: (Date.now() - t0) / 1000, numTensors };
}
