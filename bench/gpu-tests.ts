// The GPU check's model tests (phase "tests"), on the chosen backend:
//   parity      the timm reference fixtures (timm and Hugging Face names) within their tolerance;
//   numerics    logits, CLS features and every parameter's gradient of one loss against the
//               reference backend (wasm; cpu when wasm is the one tested), within 1e-3;
//   strategies  a few training steps of every strategy kind through the trainer, with the
//               tensor count after each step flat (no leak per step).
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { applyStrategy, StrategySpec } from "../src/adapters/strategies";
import { Rng } from "../src/ground/rng";
import { REPO_ROOT } from "../src/ground/root";
import { vitConfig, VitPresetName } from "../src/model/config";
import { ViT } from "../src/model/vit";
import { BackendChoice, initBackend } from "../src/runtime/backend";
import { withMatMul } from "../src/runtime/webgpu-kernels";
import { crossEntropy } from "../src/training/loss";
import { BatchSource, train } from "../src/training/trainer";
import { runParity } from "../src/weights/parity";
import { benchStrategy } from "./gpu-bench";
import { checkSize, errorMessage, say, SIZES, writeResult } from "./gpu-common";

/** The parity fixtures: GPU_CHECK_FIXTURES (the bundle's copy), else ../shared beside the checkout. */
export function fixturesDir(): string {
  return process.env.GPU_CHECK_FIXTURES || path.resolve(REPO_ROOT, "..", "shared", "fixtures", "vit-parity");
}

interface ParityRow {
  fixture: string;
  naming: string;
  logitsMaxAbsErr?: number;
  featuresMaxAbsErr?: number;
  /** Largest |err| / (abs + rel |expected|): <= 1 passes. */
  worstRatio?: number;
  tolerance?: { abs: number; rel: number };
  ok: boolean;
  error?: string;
}

async function parity(names: string[]): Promise<ParityRow[]> {
  const dir = fixturesDir();
  const rows: ParityRow[] = [];
  for (const name of names) {
    for (const naming of ["timm", "hf"]) {
      const weights = path.join(dir, `${name}.${naming}.safetensors`);
      const fixture = path.join(dir, `${name}.json`);
      try {
        if (!fs.existsSync(weights) || !fs.existsSync(fixture)) throw new Error(`fixture files missing: ${weights}, ${fixture}`);
        const r = await runParity(weights, fixture);
        rows.push({
          fixture: name, naming: r.naming, logitsMaxAbsErr: r.logits.maxAbsErr, featuresMaxAbsErr: r.features?.maxAbsErr,
          worstRatio: Math.max(r.logits.worstRatio, r.features?.worstRatio ?? 0), tolerance: r.fixture.tolerance, ok: r.ok,
        });
      } catch (e) {
        rows.push({ fixture: name, naming, ok: false, error: errorMessage(e) });
      }
    }
  }
  return rows;
}

interface Outputs {
  logits: Float32Array;
  features: Float32Array;
  loss: number;
  grads: Map<string, Float32Array>;
}

/** Logits, features, loss and gradients of every parameter, on `backend`, with the given weights. */
async function outputsOn(backend: BackendChoice, model: VitPresetName, batch: number, weights?: Map<string, Float32Array>): Promise<{ out: Outputs; weights: Map<string, Float32Array> }> {
  await initBackend({ prefer: backend, force: true });
  const vit = ViT.create(vitConfig(model, { numClasses: 10 }), { seed: 0 });
  const named = vit.namedVariables();
  const w = new Map<string, Float32Array>();
  for (const [k, v] of named) {
    if (weights) v.assign(tf.tensor(weights.get(k) as Float32Array, v.shape));
    w.set(k, (await v.data()) as Float32Array);
  }
  const S = vit.config.imageSize;
  const rng = new Rng(7);
  const xs = new Float32Array(batch * S * S * 3).map(() => rng.normal());
  const x = tf.tensor4d(xs, [batch, S, S, 3]);
  const y = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), "int32");
  const logits = tf.tidy(() => vit.logits(x));
  const features = tf.tidy(() => vit.features(x));
  const vars = [...named.values()];
  const { value, grads } = tf.variableGrads(() => crossEntropy(vit.logits(x, { training: true }), y), vars);
  const byName = new Map([...named].map(([k, v]) => [v.name, k]));
  const g = new Map<string, Float32Array>();
  for (const [k, t] of Object.entries(grads)) g.set(byName.get(k) ?? k, (await t.data()) as Float32Array);
  const out = { logits: (await logits.data()) as Float32Array, features: (await features.data()) as Float32Array, loss: (await value.data())[0], grads: g };
  tf.dispose([x, y, logits, features, value, ...Object.values(grads)]);
  vit.dispose();
  return { out, weights: w };
}

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

interface NumericsResult {
  backend: string;
  reference: string;
  model: string;
  batch: number;
  tolerance: number;
  logitsMaxAbsErr: number;
  featuresMaxAbsErr: number;
  lossAbsErr: number;
  /** Worst over parameters of max|g - g_ref| / max|g_ref|. */
  gradWorstRelErr: number;
  gradWorstParam: string;
  ok: boolean;
}

async function numerics(backend: BackendChoice): Promise<NumericsResult> {
  const { model, batch, tolerance } = SIZES[checkSize()].numerics;
  const reference: BackendChoice = backend === "wasm" ? "cpu" : "wasm";
  const ref = await outputsOn(reference, model, batch);
  const got = await outputsOn(backend, model, batch, ref.weights);
  await initBackend({ prefer: backend, force: true });
  let worst = 0, worstParam = "";
  for (const [k, g] of ref.out.grads) {
    const mine = got.out.grads.get(k);
    const rel = mine ? maxAbsDiff(mine, g) / Math.max(maxAbs(g), 1e-12) : Infinity;
    if (rel > worst) { worst = rel; worstParam = k; }
  }
  const r = {
    backend, reference, model, batch, tolerance,
    logitsMaxAbsErr: maxAbsDiff(got.out.logits, ref.out.logits), featuresMaxAbsErr: maxAbsDiff(got.out.features, ref.out.features),
    lossAbsErr: Math.abs(got.out.loss - ref.out.loss), gradWorstRelErr: worst, gradWorstParam: worstParam,
  };
  return { ...r, ok: r.logitsMaxAbsErr <= tolerance && r.featuresMaxAbsErr <= tolerance && r.lossAbsErr <= tolerance && worst <= tolerance };
}

interface StrategyRow {
  strategy: string;
  describe?: string;
  trainable?: number;
  losses?: number[];
  /** tf.memory().numTensors after each step. */
  numTensors?: number[];
  flat: boolean;
  /** Tensors left once the model is disposed, beyond those before it was built. */
  leftAfterDispose?: number;
  ok: boolean;
  error?: string;
}

/** Every strategy kind of src/adapters/strategies.ts, in the settings the studies use. */
export function strategySpecs(depth: number): [string, StrategySpec][] {
  return [
    ["full", { kind: "full" }],
    ["top-k", { kind: "top-k", k: Math.min(3, depth) }],
    ["linear", { kind: "linear" }],
    ["lora", { kind: "lora", rank: 8 }],
    ["selective-lora", { kind: "selective-lora", rank: 8, lambda: 0.01 }],
    ["block-expansion", benchStrategy("block-3", depth)],
  ];
}

async function strategies(): Promise<StrategyRow[]> {
  const { model, batch, steps } = SIZES[checkSize()].strategies;
  const c = vitConfig(model, { numClasses: 10 });
  const rows: StrategyRow[] = [];
  for (const [name, spec] of strategySpecs(c.depth)) {
    const before = tf.memory().numTensors;
    let base: ViT | undefined;
    try {
      base = ViT.create(c, { seed: 0 });
      const tm = applyStrategy(base, spec);
      const S = c.imageSize;
      const rng = new Rng(3);
      const source: BatchSource = {
        async *batches(from: number, to: number) {
          for (let step = from; step < to; step++) {
            yield {
              step, epoch: 0, shape: [batch, S, S, 3] as [number, number, number, number],
              x: new Float32Array(batch * S * S * 3).map(() => rng.normal()),
              labels: Int32Array.from({ length: batch }, (_, i) => (i + step) % 10), indices: new Int32Array(batch),
            };
          }
        },
      };
      const r = await train(tm, source, { steps, optimizer: { name: "sgd", lr: 0.01, momentum: 0.9 }, schedule: { kind: "constant", warmupSteps: 0 }, logEvery: 1 }, { progress: "off" });
      const flat = r.numTensors.length > 1 && r.numTensors.slice(1).every((n) => n === r.numTensors[1]);
      const losses = r.history.map((h) => h.loss);
      if (tm.model !== base) tm.model.dispose();
      base.dispose();
      base = undefined;
      const left = tf.memory().numTensors - before;
      rows.push({ strategy: name, describe: tm.describe, trainable: tm.trainable.reduce((s, v) => s + v.size, 0), losses, numTensors: r.numTensors, flat, leftAfterDispose: left, ok: flat && left === 0 && losses.every(Number.isFinite) });
    } catch (e) {
      base?.dispose();
      rows.push({ strategy: name, flat: false, ok: false, error: errorMessage(e) });
    }
  }
  return rows;
}

export interface TiledMatMulRow {
  /** [batch, M, K, N] with the transposes of A and B. */
  shape: [number, number, number, number];
  transposeA: boolean;
  transposeB: boolean;
  /** max |tiled - tfjs| / max |tfjs|. */
  relErr?: number;
  ok: boolean;
  error?: string;
}

/**
 * The tiled matmul (STUDY_WEBGPU_MATMUL=tiled) against tfjs's kernel on this device: every
 * transpose with partial tiles, and at the full size two of ViT-B/16's products (b16 qkv forward,
 * fc1 weight gradient), within 1e-5 of the result's largest value (the summation order differs).
 */
async function tiledMatMul(): Promise<TiledMatMulRow[]> {
  const cases: [number, number, number, number, boolean, boolean][] = [
    [3, 70, 33, 129, false, false], [3, 70, 33, 129, false, true], [3, 70, 33, 129, true, false], [3, 70, 33, 129, true, true],
    ...(checkSize() === "full" ? ([[1, 3152, 768, 2304, false, true], [1, 3072, 3152, 768, true, false]] as [number, number, number, number, boolean, boolean][]) : []),
  ];
  const rows: TiledMatMulRow[] = [];
  for (const [n, M, K, N, ta, tb] of cases) {
    const row: TiledMatMulRow = { shape: [n, M, K, N], transposeA: ta, transposeB: tb, ok: false };
    const a = tf.randomNormal(ta ? [n, K, M] : [n, M, K], 0, 1, "float32", 1);
    const b = tf.randomNormal(tb ? [n, N, K] : [n, K, N], 0, 1, "float32", 2);
    try {
      const stock = await withMatMul("stock", () => tf.matMul(a, b, ta, tb));
      const tiled = await withMatMul("tiled", () => tf.matMul(a, b, ta, tb));
      const [d, m] = tf.tidy(() => [tf.max(tf.abs(tf.sub(tiled, stock))), tf.max(tf.abs(stock))]);
      const [dv, mv] = [(await d.data())[0], (await m.data())[0]];
      tf.dispose([stock, tiled, d, m]);
      row.relErr = dv / mv;
      row.ok = row.relErr <= 1e-5;
    } catch (e) {
      row.error = errorMessage(e);
    } finally {
      tf.dispose([a, b]);
    }
    rows.push(row);
  }
  return rows;
}

/** Phase "tests": exit 0 when every test passes. */
export async function testsPhase(out: string): Promise<number> {
  const report = await initBackend();
  const backend = report.choice;
  const result: Record<string, unknown> = { backend, adapter: report.adapter ?? null, size: checkSize() };
  const save = () => writeResult(out, "tests", result);
  const sz = SIZES[checkSize()];

  say("tests", `parity fixtures ${sz.parity.join(", ")} (timm and hf names) on ${backend}`);
  const p = await parity(sz.parity);
  result.parity = p;
  for (const r of p) say("tests", `  ${r.fixture}.${r.naming}: ${r.error ?? `logits ${r.logitsMaxAbsErr?.toExponential(2)} features ${r.featuresMaxAbsErr?.toExponential(2)} (${r.worstRatio?.toFixed(3)} of tolerance)`} ${r.ok ? "ok" : "FAIL"}`);
  save();

  say("tests", `numerics of ${sz.numerics.model} (batch ${sz.numerics.batch}) against ${backend === "wasm" ? "cpu" : "wasm"}`);
  try {
    const n = await numerics(backend);
    result.numerics = n;
    say("tests", `  logits ${n.logitsMaxAbsErr.toExponential(2)} features ${n.featuresMaxAbsErr.toExponential(2)} loss ${n.lossAbsErr.toExponential(2)} gradients ${n.gradWorstRelErr.toExponential(2)} (worst ${n.gradWorstParam}) ${n.ok ? "ok" : "FAIL"}`);
  } catch (e) {
    result.numerics = { ok: false, error: errorMessage(e) };
    say("tests", `  FAILED: ${errorMessage(e)}`);
    await initBackend({ prefer: backend, force: true });
  }
  save();

  say("tests", `${sz.strategies.steps} training steps of every strategy on ${sz.strategies.model} (batch ${sz.strategies.batch})`);
  const s = await strategies();
  result.strategies = s;
  for (const r of s) say("tests", `  ${r.strategy.padEnd(16)} ${r.error ?? `tensors ${r.numTensors?.join(",")} ${r.flat ? "flat" : "NOT FLAT"}, loss ${r.losses?.map((l) => l.toFixed(3)).join(",")}`} ${r.ok ? "ok" : "FAIL"}`);
  save();

  let tiled: TiledMatMulRow[] = [];
  if (backend === "webgpu") {
    say("tests", "the tiled matmul (STUDY_WEBGPU_MATMUL=tiled) against tfjs's kernel");
    tiled = await tiledMatMul();
    result.tiledMatMul = tiled;
    for (const r of tiled) say("tests", `  [${r.shape.join("x")}]${r.transposeA ? " A^T" : ""}${r.transposeB ? " B^T" : ""}: ${r.error ?? `relative error ${r.relErr?.toExponential(2)}`} ${r.ok ? "ok" : "FAIL"}`);
  }
  const ok = p.every((r) => r.ok) && (result.numerics as { ok: boolean }).ok && s.every((r) => r.ok) && tiled.every((r) => r.ok);
  result.ok = ok;
  save();
  say("tests", ok ? "all passed" : "FAILED (see above)");
  return ok ? 0 : 1;
}
