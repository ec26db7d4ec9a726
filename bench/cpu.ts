// One backend per process (a process holds one wasm instance, with its thread count fixed at
// start): times forward and training-step throughput for the cases given as JSON in argv[2],
// printing one JSON line per case. Driven by `study bench --cpu` (src/cli/commands/bench.ts).
//
// The training step, as bench/torch_cpu.py's: logits -> mean cross-entropy -> gradients of the
// trainable set -> Adam (tfjs's, the update of torch.optim.Adam) -> loss read back.
import * as tf from "@tensorflow/tfjs";
import { applyStrategy, StrategySpec } from "../src/adapters/strategies";
import { vitConfig, VitPresetName } from "../src/model/config";
import { ViT } from "../src/model/vit";
import { BackendChoice, initBackend } from "../src/runtime/backend";
import { explainWasmTrap, wasmHeapBytes, wasmSetup } from "../src/runtime/wasm";

export interface BenchCase {
  model: VitPresetName;
  batch: number;
  strategy: string;
  classes: number;
  warmup: number;
  steps: number;
  /** Time the forward pass too. */
  forward: boolean;
}

export interface BenchJob {
  backend: BackendChoice;
  cases: BenchCase[];
  /** Print a per-kernel profile of one training step of each case. */
  profile?: boolean;
}

export interface Timing {
  /** Median seconds per call. */
  median: number;
  /** Images per second at the median. */
  imgPerSec: number;
  samples: number[];
}

export interface BenchRow extends BenchCase {
  backend: string;
  /** The benchmark target that ran it (wasm-stock, wasm-1, wasm, cpu; set by the driver). */
  target?: string;
  threads: number;
  detail: string;
  trainable: number;
  forwardTiming?: Timing;
  trainTiming?: Timing;
  profile?: KernelCost[];
  /** Size of the wasm heap after the case, MiB (it only grows: the process's peak so far). */
  heapMiB?: number;
  error?: string;
}

export interface KernelCost {
  name: string;
  ms: number;
  calls: number;
}

/** The strategies the benchmark knows, in the papers' settings. */
export const BENCH_STRATEGIES: Record<string, StrategySpec> = {
  full: { kind: "full" },
  "top-3": { kind: "top-k", k: 3 },
  linear: { kind: "linear" },
  "lora-8": { kind: "lora", rank: 8 },
  "selective-lora-8": { kind: "selective-lora", rank: 8 },
  "block-expansion-1": { kind: "block-expansion", p: 1 },
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function time(fn: () => Promise<void>, warmup: number, steps: number, batch: number): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await fn();
    samples.push((performance.now() - t0) / 1000);
  }
  const med = median(samples);
  return { median: med, imgPerSec: batch / med, samples };
}

async function runCase(c: BenchCase, profile: boolean): Promise<Omit<BenchRow, "backend" | "threads" | "detail">> {
  const spec = BENCH_STRATEGIES[c.strategy];
  if (!spec) throw new Error(`unknown strategy '${c.strategy}'; known: ${Object.keys(BENCH_STRATEGIES).join(", ")}`);
  const base = ViT.create(vitConfig(c.model, { numClasses: c.classes }), { seed: 0 });
  const tm = applyStrategy(base, spec);
  const model = tm.model;
  const { imageSize: S, inChannels: C } = model.config;
  const x = tf.randomNormal([c.batch, S, S, C], 0, 1, "float32", 1) as tf.Tensor4D;
  const y = tf.randomUniform([c.batch], 0, c.classes, "int32", 2) as tf.Tensor1D;
  const onehot = tf.oneHot(y, c.classes);
  const optimizer = tf.train.adam(1e-4);
  const loss = (): tf.Scalar => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(model.logits(x, { training: true })), onehot), -1))) as tf.Scalar;

  const step = async (): Promise<void> => {
    const { value, grads } = tf.variableGrads(loss, tm.trainable);
    optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
    await value.data();
    tf.dispose([value, ...Object.values(grads)]);
  };
  const forward = async (): Promise<void> => {
    const logits = model.logits(x);
    await logits.data();
    logits.dispose();
  };

  const out: Omit<BenchRow, "backend" | "threads" | "detail"> = { ...c, trainable: tm.trainable.reduce((s, v) => s + v.size, 0) };
  if (c.forward) out.forwardTiming = await time(forward, Math.max(1, c.warmup), c.steps, c.batch);
  out.trainTiming = await time(step, c.warmup, c.steps, c.batch);
  if (profile) {
    const info = await tf.profile(step);
    const byKernel = new Map<string, KernelCost>();
    for (const k of info.kernels) {
      const e = byKernel.get(k.name) ?? { name: k.name, ms: 0, calls: 0 };
      e.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
      e.calls++;
      byKernel.set(k.name, e);
    }
    out.profile = [...byKernel.values()].sort((a, b) => b.ms - a.ms);
  }
  tf.dispose([x, y, onehot]);
  optimizer.dispose();
  if (model !== base) model.dispose();
  base.dispose();
  return out;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as BenchJob;
  const report = await initBackend({ prefer: job.backend, force: true });
  const threads = job.backend === "wasm" ? (wasmSetup()?.threads ?? 1) : 1;
  for (const c of job.cases) {
    const head = { backend: report.choice, threads, detail: report.reason };
    try {
      const r = await runCase(c, job.profile === true);
      const heap = wasmHeapBytes();
      console.log(JSON.stringify({ ...head, ...r, heapMiB: heap === undefined ? undefined : Math.round(heap / 2 ** 20) }));
    } catch (err) {
      const e = explainWasmTrap(err, `${c.model} batch ${c.batch}`);
      console.log(JSON.stringify({ ...head, ...c, trainable: 0, error: e instanceof Error ? e.message : String(e) }));
    }
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
