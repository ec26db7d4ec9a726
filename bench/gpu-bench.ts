// The GPU check's benchmark (phase "bench"): training-step and forward images/s, peak memory and
// achieved TFLOP/s of the ViT on the chosen backend, per model, batch and strategy; and the job
// that bench/torch_gpu.py runs for the same models and steps in PyTorch.
//
// The training step is the studies' (src/training/trainer.ts) without its bookkeeping: logits ->
// mean cross-entropy -> gradients of the trainable set -> SGD with momentum 0.9 (the project's
// Sgd, torch.optim.SGD's update) -> loss read back. Inputs stay on the device, as in the PyTorch
// script. Each (model, batch) group runs in a process of its own, cheapest first, so a device
// lost or out of memory in one leaves the others, and each group's buffer pool starts empty.
import { fork } from "node:child_process";
import * as tf from "@tensorflow/tfjs";
import { applyStrategy, StrategyResult, StrategySpec } from "../src/adapters/strategies";
import { vitConfig, VitPresetName, VIT_PRESETS } from "../src/model/config";
import { forwardMacs } from "../src/model/flops";
import { parameterShapes, ViT } from "../src/model/vit";
import { initBackend } from "../src/runtime/backend";
import { withMatMul } from "../src/runtime/webgpu-kernels";
import { crossEntropy } from "../src/training/loss";
import { Sgd } from "../src/training/optimizers";
import { checkSize, errorMessage, median, say, secondsLeft, SIZES, writeResult } from "./gpu-common";
import { StepMacs, stepMacs, tflops } from "./gpu-flops";

export interface Timing {
  /** Median seconds per call. */
  median: number;
  imgPerSec: number;
  samples: number[];
}

export interface KernelCost {
  name: string;
  ms: number;
  calls: number;
}

export interface GpuBenchRow {
  model: VitPresetName;
  batch: number;
  strategy: string;
  backend: string;
  describe?: string;
  trainable?: number;
  macs?: StepMacs;
  /** Seconds of the first training step (shader compilation included). */
  firstStepSeconds?: number;
  train?: Timing;
  forward?: Timing;
  trainTflops?: number;
  forwardTflops?: number;
  /** Peak bytes of live tensors during one training step (tf.profile), MiB. */
  peakTensorMiB?: number;
  /** Bytes the backend holds on the device after the row (webgpu: its buffer pool), MiB. */
  deviceMiB?: number;
  /** Costliest kernels of one profiled training step (when the backend times kernels). */
  kernels?: KernelCost[];
  /** A kernel variant measured against the default row of the same model, batch and strategy (webgpu). */
  variant?: VariantName;
  skipped?: string;
  error?: string;
}

/** The benchmark's strategies, by row name; block expansion p=3 spreads 3 copies over the depth. */
export function benchStrategy(name: string, depth: number): StrategySpec {
  switch (name) {
    case "full": return { kind: "full" };
    case "lora-8": return { kind: "lora", rank: 8 };
    case "block-3":
      // p=3 is the paper's placement (after every depth/3 blocks); a depth it does not divide gets
      // the same spread rounded, as the laptop preset maps it (4 blocks: after 1, 3 and 4).
      return depth % 3 === 0 ? { kind: "block-expansion", p: 3 } : { kind: "block-expansion", after: [1, 2, 3].map((j) => Math.round((depth * j) / 3)) };
    default: throw new Error(`unknown benchmark strategy '${name}' (full, lora-8, block-3)`);
  }
}

const MiB = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

async function timed(fn: () => Promise<void>, n: number, batch: number): Promise<Timing> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    samples.push((performance.now() - t0) / 1000);
  }
  const med = median(samples);
  return { median: med, imgPerSec: batch / med, samples };
}

interface Built {
  base: ViT;
  tm: StrategyResult;
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  step(): Promise<void>;
  forward(): Promise<void>;
  dispose(): void;
}

function build(model: VitPresetName, batch: number, strategy: string, classes: number): Built {
  const base = ViT.create(vitConfig(model, { numClasses: classes }), { seed: 0 });
  const tm = applyStrategy(base, benchStrategy(strategy, base.config.depth));
  const m = tm.model;
  const S = m.config.imageSize;
  const x = tf.randomNormal([batch, S, S, m.config.inChannels], 0, 1, "float32", 1) as tf.Tensor4D;
  const y = tf.randomUniform([batch], 0, classes, "int32", 2) as tf.Tensor1D;
  const vars = new Map(tm.trainable.map((v) => [v.name, v]));
  const opt = new Sgd({ name: "sgd", lr: 1e-4, momentum: 0.9 });
  return {
    base, tm, x, y,
    async step() {
      const { value, grads } = tf.variableGrads(() => crossEntropy(m.logits(x, { training: true }), y), tm.trainable);
      opt.apply(vars, new Map(Object.entries(grads)), 1e-4);
      await value.data();
      tf.dispose([value, ...Object.values(grads)]);
    },
    async forward() {
      const logits = tf.tidy(() => m.logits(x));
      await logits.data();
      logits.dispose();
    },
    dispose() {
      tf.dispose([x, y]);
      opt.dispose();
      if (m !== base) m.dispose();
      base.dispose();
    },
  };
}

function deviceBytes(): number | undefined {
  const m = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number; numBytesInGPU?: number };
  return m.numBytesAllocatedInGPU ?? m.numBytesInGPU;
}

/** One row: warm-up (shader compilation), timed training steps and forwards, one profiled step. */
async function runRow(model: VitPresetName, batch: number, strategy: string, classes: number, rowSeconds: number, profileKernels: boolean, backend: string): Promise<GpuBenchRow> {
  const row: GpuBenchRow = { model, batch, strategy, backend };
  const b = build(model, batch, strategy, classes);
  try {
    row.describe = b.tm.describe;
    row.trainable = b.tm.trainable.reduce((s, v) => s + v.size, 0);
    row.macs = stepMacs(b.tm);
    let t0 = performance.now();
    await b.step();
    row.firstStepSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    await b.step();
    const warm = (performance.now() - t0) / 1000;
    const steps = Math.max(1, Math.min(5, Math.floor((0.6 * rowSeconds) / warm), Math.floor((secondsLeft() - 5) / (2 * warm))));
    row.train = await timed(() => b.step(), steps, batch);
    row.trainTflops = tflops(row.macs.train, row.train.imgPerSec);
    t0 = performance.now();
    await b.forward();
    const fwd = (performance.now() - t0) / 1000;
    const fsteps = Math.max(1, Math.min(5, Math.floor((0.3 * rowSeconds) / fwd)));
    if (secondsLeft() > fsteps * fwd + 2) {
      row.forward = await timed(() => b.forward(), fsteps, batch);
      row.forwardTflops = tflops(row.macs.forward, row.forward.imgPerSec);
    }
    if (secondsLeft() > 3 * row.train.median + 2) {
      const info = await tf.profile(() => b.step());
      row.peakTensorMiB = MiB(info.peakBytes);
      if (profileKernels) {
        const by = new Map<string, KernelCost>();
        for (const k of info.kernels) {
          const e = by.get(k.name) ?? { name: k.name, ms: 0, calls: 0 };
          e.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
          e.calls++;
          by.set(k.name, e);
        }
        row.kernels = [...by.values()].sort((p, q) => q.ms - p.ms).slice(0, 20).map((k) => ({ ...k, ms: Math.round(k.ms * 100) / 100 }));
      }
    }
  } catch (e) {
    row.error = errorMessage(e);
  } finally {
    b.dispose();
  }
  const dev = deviceBytes();
  if (dev !== undefined) row.deviceMiB = MiB(dev);
  return row;
}

interface GroupJob {
  model: VitPresetName;
  batch: number;
  strategies: string[];
  classes: number;
  rowSeconds: number;
  /** Strategies whose profiled step keeps its kernel table. */
  profile: string[];
  /** Run with a variant's environment (webgpu only). */
  variant?: VariantName;
}

const ROW = "GPU-BENCH-ROW ";

/** The child process of one (model, batch) group: prints one ROW line per strategy. */
export async function benchGroup(job: GroupJob): Promise<void> {
  const report = await initBackend();
  let slowest = 0; // seconds of the slowest training step so far (full fine-tuning runs first)
  for (const s of job.strategies) {
    const left = secondsLeft();
    // A row costs about two warm-up steps, its timed steps and one profiled step.
    const need = 6 * slowest;
    if (slowest > 0 && need > left - 3) {
      console.log(ROW + JSON.stringify({ model: job.model, batch: job.batch, strategy: s, backend: report.choice, skipped: `not enough time left (~${need.toFixed(0)} s needed, ${left.toFixed(0)} s left)` }));
      continue;
    }
    const row = await runRow(job.model, job.batch, s, job.classes, job.rowSeconds, job.profile.includes(s), report.choice);
    if (job.variant) row.variant = job.variant;
    if (row.train) slowest = Math.max(slowest, row.train.median);
    console.log(ROW + JSON.stringify(row));
  }
}

/** Groups cheapest first: analytic training MACs of a full step. */
function groups(): GroupJob[] {
  const plan = SIZES[checkSize()].bench;
  const cost = (m: VitPresetName, batch: number) => {
    const p = VIT_PRESETS[m];
    return batch * p.depth * p.width * p.width * ((p.imageSize / p.patchSize) ** 2 + 1);
  };
  const out: GroupJob[] = [];
  for (const model of plan.models) {
    for (const batch of plan.batches) {
      // The kernel table of the costliest model's smaller batch (where the gap to close is measured).
      const profile = model === plan.models[plan.models.length - 1] && batch === plan.batches[0] ? ["full", "lora-8"] : [];
      out.push({ model, batch, strategies: plan.strategies, classes: plan.classes, rowSeconds: plan.rowSeconds, profile });
    }
  }
  return out.sort((a, b) => cost(a.model, a.batch) - cost(b.model, b.batch));
}

/**
 * Kernel variants of the webgpu backend, each measured on the profiled group's full fine-tuning
 * after every group and the matmul probes (so that they take only time the table does not need;
 * the before and after of a kernel, in the same call):
 *   stock-kernels  tfjs's compositions for GELU and LayerNorm instead of the fused kernels
 *   tiled-matmul   BatchMatMul in 64x64 tiles (src/runtime/webgpu-kernels.ts) instead of tfjs's 32x32
 */
export const VARIANTS = {
  "stock-kernels": { STUDY_WEBGPU_STOCK_KERNELS: "1" },
  "tiled-matmul": { STUDY_WEBGPU_MATMUL: "tiled" },
} as const;
export type VariantName = keyof typeof VARIANTS;

function variantJobs(jobs: GroupJob[], backend: string): GroupJob[] {
  const profiled = jobs.find((j) => j.profile.includes("full"));
  if (backend !== "webgpu" || !profiled) return [];
  return (Object.keys(VARIANTS) as VariantName[]).map((variant) => ({ ...profiled, strategies: ["full"], profile: ["full"], variant }));
}

function runChild(job: GroupJob, onRow: (r: GpuBenchRow) => void): Promise<string | undefined> {
  return new Promise((resolve) => {
    const env = job.variant ? { ...process.env, ...VARIANTS[job.variant] } : process.env;
    const child = fork(process.argv[1], ["bench-group", JSON.stringify(job)], { execArgv: process.execArgv, env, stdio: ["ignore", "pipe", "inherit", "ipc"] });
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith(ROW)) onRow(JSON.parse(line.slice(ROW.length)) as GpuBenchRow);
        else if (line.trim()) console.log(`  ${line}`);
      }
    });
    child.on("exit", (code, signal) => resolve(code === 0 ? undefined : `the group's process ended with ${signal ?? `exit code ${code}`}`));
  });
}

export function formatRow(r: GpuBenchRow): string {
  const head = `${r.model} b${r.batch} ${r.strategy}${r.variant ? ` (${r.variant})` : ""}`.padEnd(28);
  if (r.skipped) return `${head} skipped: ${r.skipped}`;
  if (r.error) return `${head} FAILED: ${r.error}`;
  const f = (x?: number, d = 1) => (x === undefined ? "-" : x.toFixed(d));
  const g = (x?: number) => (x === undefined ? "-" : x.toPrecision(3));
  return `${head} train ${f(r.train?.imgPerSec)} img/s (${g(r.trainTflops)} TFLOP/s, first step ${f(r.firstStepSeconds, 2)} s), forward ${f(r.forward?.imgPerSec)} img/s, peak tensors ${f(r.peakTensorMiB, 0)} MiB, device ${f(r.deviceMiB, 0)} MiB`;
}

/** One matrix product of a ViT training step, timed alone. */
export interface MatmulProbe {
  what: string;
  /** [batch, M, K] x [batch, K, N] as computed (transposes folded in). */
  shape: [number, number, number, number];
  transposeA: boolean;
  transposeB: boolean;
  /** tfjs's kernel. */
  ms: number;
  tflops: number;
  /** The 64x64-tiled kernel (STUDY_WEBGPU_MATMUL=tiled), on webgpu. */
  tiledMs?: number;
  tiledTflops?: number;
}

/**
 * The step's main products for `model` at `batch`, each timed alone (warmed up, then 5 calls
 * between two reads of one element): where matmul throughput against the chip's peak says how much
 * of a step's time the backend's matmul kernel can explain.
 */
async function matmulProbes(model: VitPresetName, batch: number): Promise<MatmulProbe[]> {
  const c = vitConfig(model, {});
  const T = batch * ((c.imageSize / c.patchSize) ** 2 + 1); // tokens
  const W = c.width, H = c.mlpRatio * c.width, N = T / batch, hd = c.width / c.heads;
  const cases: [string, number, number, number, number, boolean, boolean][] = [
    // what, batch, M, K, N, transposeA, transposeB; linears are x W^T (PyTorch's [out, in] weights)
    ["qkv forward", 1, T, W, 3 * W, false, true],
    ["fc1 forward", 1, T, W, H, false, true],
    ["fc2 forward", 1, T, H, W, false, true],
    ["fc1 input gradient (dy W)", 1, T, H, W, false, false],
    ["fc1 weight gradient (dy^T x)", 1, H, T, W, true, false],
    ["attention scores (q k^T)", batch * c.heads, N, hd, N, false, true],
  ];
  const out: MatmulProbe[] = [];
  for (const [what, n, M, K, Nn, ta, tb] of cases) {
    if (secondsLeft() < 5) break;
    const a = tf.randomNormal(ta ? [n, K, M] : [n, M, K], 0, 1, "float32", 1);
    const b = tf.randomNormal(tb ? [n, Nn, K] : [n, K, Nn], 0, 1, "float32", 2);
    const time = async (): Promise<number> => {
      await once(1); // compile
      const t0 = performance.now();
      await once(5);
      return (performance.now() - t0) / 5;
    };
    const once = async (calls: number) => {
      let last: tf.Tensor | undefined;
      for (let i = 0; i < calls; i++) {
        last?.dispose();
        last = tf.matMul(a, b, ta, tb);
      }
      const corner = tf.slice(last!, [0, 0, 0], [1, 1, 1]);
      await corner.data();
      tf.dispose([corner, last!]);
    };
    const rate = (ms: number) => Number(((2 * n * M * K * Nn) / (ms * 1e9)).toPrecision(4));
    try {
      const ms = await withMatMul("stock", time);
      const row: MatmulProbe = { what, shape: [n, M, K, Nn], transposeA: ta, transposeB: tb, ms: Math.round(ms * 1000) / 1000, tflops: rate(ms) };
      if (tf.getBackend() === "webgpu") {
        const tiled = await withMatMul("tiled", time);
        Object.assign(row, { tiledMs: Math.round(tiled * 1000) / 1000, tiledTflops: rate(tiled) });
      }
      out.push(row);
    } catch (e) {
      say("bench", `  matmul ${what}: ${errorMessage(e)}`);
    } finally {
      tf.dispose([a, b]);
    }
  }
  return out;
}

/** Phase "bench": every group, rows written to bench.json as they come. */
export async function benchPhase(out: string): Promise<number> {
  const report = await initBackend();
  const rows: GpuBenchRow[] = [];
  const plan = SIZES[checkSize()].bench;
  // The matmuls alone are timed for the costliest model at its smaller batch (the profiled group).
  const probe = { model: plan.models[plan.models.length - 1], batch: plan.batches[0] };
  const result = { backend: report.choice, adapter: report.adapter ?? null, size: checkSize(), optimizer: "SGD momentum 0.9 (src/training/optimizers.ts)", rows, matmuls: { ...probe, products: [] as MatmulProbe[] } };
  const save = () => writeResult(out, "bench", result);
  save();
  let rate: number | undefined; // training MACs per second of the slowest row so far
  const runJob = async (job: GroupJob): Promise<void> => {
    // The group's first step (full fine-tuning: about 3x the forward MACs) at the rate seen so far,
    // times the steps a row takes.
    const need = rate ? (6 * 3 * forwardMacs(vitConfig(job.model, { numClasses: job.classes })).macs * job.batch) / rate : 0;
    const left = secondsLeft();
    if (left < 10 || need > left - 5) {
      const why = left < 10 ? "no time left for this group" : `not enough time left (~${need.toFixed(0)} s needed at the rate of the groups before, ${left.toFixed(0)} s left)`;
      for (const s of job.strategies) rows.push({ model: job.model, batch: job.batch, strategy: s, backend: report.choice, skipped: why, ...(job.variant ? { variant: job.variant } : {}) });
      say("bench", `${job.model} batch ${job.batch}${job.variant ? ` (${job.variant})` : ""}: skipped (${why})`);
      save();
      return;
    }
    say("bench", `${job.model} batch ${job.batch}${job.variant ? ` (${job.variant})` : ""}: ${job.strategies.join(", ")}`);
    const seen = new Set<string>();
    const failure = await runChild(job, (r) => {
      seen.add(r.strategy);
      rows.push(r);
      if (r.train && r.macs) rate = Math.min(rate ?? Infinity, (r.macs.train * r.batch) / r.train.median);
      console.log(`  ${formatRow(r)}`);
      save();
    });
    for (const s of job.strategies) {
      if (!seen.has(s)) rows.push({ model: job.model, batch: job.batch, strategy: s, backend: report.choice, error: failure ?? "no result", ...(job.variant ? { variant: job.variant } : {}) });
    }
    save();
  };
  // The table first; then the matmuls alone; then the kernel variants, with what time is left.
  const jobs = groups();
  for (const job of jobs) await runJob(job);
  result.matmuls.products = await matmulProbes(probe.model, probe.batch);
  for (const m of result.matmuls.products) say("bench", `  matmul ${probe.model} b${probe.batch} ${m.what} [${m.shape.join("x")}]: ${m.ms} ms, ${m.tflops} TFLOP/s${m.tiledMs !== undefined ? `; tiled ${m.tiledMs} ms, ${m.tiledTflops} TFLOP/s` : ""}`);
  save();
  for (const job of variantJobs(jobs, report.choice)) await runJob(job);
  const ok = rows.filter((r) => r.train).length;
  say("bench", `${ok}/${rows.length} rows measured`);
  return ok > 0 ? 0 : 1;
}

/** The job of bench/torch_gpu.py: the same models, batches and strategies as plain shapes. */
export function torchJob(): object {
  const plan = SIZES[checkSize()].bench;
  const timmNames: Partial<Record<VitPresetName, string>> = { "vit-tiny-16": "vit_tiny_patch16_224", "vit-small-16": "vit_small_patch16_224", "vit-base-16": "vit_base_patch16_224" };
  const cases = [];
  for (const g of groups()) {
    for (const s of g.strategies) {
      const c = vitConfig(g.model, { numClasses: plan.classes });
      const spec = benchStrategy(s, c.depth);
      // The expanded model's depth and which of its blocks train, from the same plan ours uses
      // (zero weights: only the shapes matter, and a random initialisation of ViT-B takes seconds).
      const zeros = new Map([...parameterShapes(c)].map(([k, shape]) => [k, tf.zeros(shape)]));
      const base = ViT.fromTensors(c, zeros);
      tf.dispose([...zeros.values()]);
      const tm = applyStrategy(base, spec);
      const trainBlocks = tm.expansion ? tm.expansion.newBlocks : null;
      const depth = tm.model.config.depth;
      const macs = stepMacs(tm);
      const trainable = tm.trainable.reduce((n, v) => n + v.size, 0);
      if (tm.model !== base) tm.model.dispose();
      base.dispose();
      cases.push({
        model: g.model, timm: timmNames[g.model] ?? null, batch: g.batch, strategy: s, classes: plan.classes,
        dims: { image: c.imageSize, patch: c.patchSize, width: c.width, depth, heads: c.heads },
        lora_rank: spec.kind === "lora" ? spec.rank : null, train_blocks: trainBlocks, trainable, macs,
      });
    }
  }
  return { size: checkSize(), row_seconds: plan.torchRowSeconds, cases };
}
