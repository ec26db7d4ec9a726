// The GPU check's summary (phase "summary"): ours against PyTorch per benchmark row (images/s,
// ratio, achieved TFLOP/s and share of the chip's fp32 peak, peak memory), with the tests' and
// the study's verdicts, as summary.json and a markdown table in the log.
import * as fs from "node:fs";
import * as path from "node:path";
import type { GpuBenchRow, MatmulProbe, Timing } from "./gpu-bench";
import { writeResult } from "./gpu-common";
import { H200_FP32_PEAK_TFLOPS, H200_TF32_DENSE_PEAK_TFLOPS, tflops } from "./gpu-flops";

/** A row of bench/torch_gpu.py's torch.json. */
export interface TorchRow {
  model: string;
  batch: number;
  strategy: string;
  /** "fp32" (TF32 off) or "tf32" (TF32 on for matmuls and convolutions). */
  mode: string;
  train?: Timing;
  forward?: Timing;
  peak_mib?: number;
  trainable?: number;
  /** The same analytic counts as ours (from the job). */
  macs?: { forward: number; train: number };
  error?: string;
  skipped?: string;
}

export interface TorchResult {
  available: boolean;
  reason?: string;
  device?: string;
  torch?: string;
  timm?: string | null;
  model_source?: string;
  rows?: TorchRow[];
}

function read<T>(out: string, name: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(out, `${name}.json`), "utf8")) as T;
  } catch {
    return undefined;
  }
}

export interface SummaryRow {
  model: string;
  batch: number;
  strategy: string;
  ours_train_img_s: number | null;
  ours_fwd_img_s: number | null;
  torch_fp32_train_img_s: number | null;
  torch_tf32_train_img_s: number | null;
  /** ours / PyTorch, training step, TF32 off and on. */
  ratio_fp32: number | null;
  ratio_tf32: number | null;
  fwd_ratio_fp32: number | null;
  ours_train_tflops: number | null;
  torch_fp32_train_tflops: number | null;
  torch_tf32_train_tflops: number | null;
  /** Achieved / the chip's peak (fp32 for ours and PyTorch fp32, TF32 dense for PyTorch tf32); null off an H200. */
  ours_pct_fp32_peak: number | null;
  torch_fp32_pct_fp32_peak: number | null;
  torch_tf32_pct_tf32_peak: number | null;
  ours_peak_tensor_mib: number | null;
  ours_device_mib: number | null;
  torch_fp32_peak_mib: number | null;
  note: string | null;
}

/** Four significant digits (TFLOP/s of a tiny CPU run are 1e-3). */
const r3 = (x: number | null | undefined): number | null => (x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toPrecision(4)));

/** A kernel variant's row against the default row of the same model, batch and strategy (webgpu). */
export interface VariantComparison {
  variant: string;
  model: string;
  batch: number;
  strategy: string;
  default_train_img_s: number | null;
  variant_train_img_s: number | null;
  /** default / variant training images per second: above 1, the default kernels are faster. */
  default_over_variant: number | null;
}

export function variantComparison(bench: GpuBenchRow[]): VariantComparison[] {
  return bench.filter((r) => r.variant).map((v) => {
    const base = bench.find((r) => !r.variant && r.model === v.model && r.batch === v.batch && r.strategy === v.strategy);
    const a = base?.train?.imgPerSec ?? null, b = v.train?.imgPerSec ?? null;
    return { variant: v.variant!, model: v.model, batch: v.batch, strategy: v.strategy, default_train_img_s: r3(a), variant_train_img_s: r3(b), default_over_variant: r3(a !== null && b ? a / b : null) };
  });
}

export function summarize(all: GpuBenchRow[], torch: TorchResult | undefined, onH200: boolean): SummaryRow[] {
  const bench = all.filter((r) => !r.variant);
  const t = (r: GpuBenchRow, mode: string) => torch?.rows?.find((x) => x.model === r.model && x.batch === r.batch && x.strategy === r.strategy && x.mode === mode);
  // Rows PyTorch measured and ours did not (ours at another size): listed too, ours empty.
  const key = (r: { model: string; batch: number; strategy: string }) => `${r.model}|${r.batch}|${r.strategy}`;
  const ours = new Set(bench.map(key));
  const only: GpuBenchRow[] = [];
  for (const x of torch?.rows ?? []) {
    if (ours.has(key(x))) continue;
    ours.add(key(x));
    only.push({ model: x.model as GpuBenchRow["model"], batch: x.batch, strategy: x.strategy, backend: "-", macs: x.macs ? { ...x.macs, lowestTrainable: "" } : undefined, skipped: "not run by ours at this size" });
  }
  return [...bench, ...only].map((r) => {
    const f32 = t(r, "fp32"), t32 = t(r, "tf32");
    const ours = r.train?.imgPerSec ?? null;
    const macs = r.macs ?? f32?.macs;
    const tf = (x: TorchRow | undefined) => (x?.train && macs ? tflops(macs.train, x.train.imgPerSec) : null);
    const pct = (v: number | null, peak: number) => (v !== null && onH200 ? (100 * v) / peak : null);
    const ratio = (a: number | null, b: number | undefined) => (a !== null && b ? a / b : null);
    const notes = [r.skipped && `ours skipped: ${r.skipped}`, r.error && `ours failed: ${r.error}`, f32?.error && `torch fp32 failed: ${f32.error}`, f32?.skipped && `torch fp32 skipped: ${f32.skipped}`].filter(Boolean);
    return {
      model: r.model, batch: r.batch, strategy: r.strategy,
      ours_train_img_s: r3(ours), ours_fwd_img_s: r3(r.forward?.imgPerSec),
      torch_fp32_train_img_s: r3(f32?.train?.imgPerSec), torch_tf32_train_img_s: r3(t32?.train?.imgPerSec),
      ratio_fp32: r3(ratio(ours, f32?.train?.imgPerSec)), ratio_tf32: r3(ratio(ours, t32?.train?.imgPerSec)),
      fwd_ratio_fp32: r3(ratio(r.forward?.imgPerSec ?? null, f32?.forward?.imgPerSec)),
      ours_train_tflops: r3(r.trainTflops), torch_fp32_train_tflops: r3(tf(f32)), torch_tf32_train_tflops: r3(tf(t32)),
      ours_pct_fp32_peak: r3(pct(r.trainTflops ?? null, H200_FP32_PEAK_TFLOPS)), torch_fp32_pct_fp32_peak: r3(pct(tf(f32), H200_FP32_PEAK_TFLOPS)),
      torch_tf32_pct_tf32_peak: r3(pct(tf(t32), H200_TF32_DENSE_PEAK_TFLOPS)),
      ours_peak_tensor_mib: r.peakTensorMiB ?? null, ours_device_mib: r.deviceMiB ?? null, torch_fp32_peak_mib: f32?.peak_mib ?? null,
      note: notes.length ? notes.join("; ") : null,
    };
  });
}

export function markdown(rows: SummaryRow[]): string {
  const f = (x: number | null, d = 1) => (x === null ? "-" : x !== 0 && Math.abs(x) < 0.1 ? x.toPrecision(2) : x.toFixed(d));
  const head = "| model | batch | strategy | ours train img/s | PyTorch fp32 | PyTorch TF32 | ours/fp32 | ours/TF32 | ours TFLOP/s (% fp32 peak) | PyTorch fp32 TFLOP/s (%) | ours fwd img/s | fwd ours/fp32 | peak MiB ours / PyTorch |";
  const lines = [head, "|" + "---|".repeat(13)];
  for (const r of rows) {
    lines.push(`| ${r.model} | ${r.batch} | ${r.strategy} | ${f(r.ours_train_img_s)} | ${f(r.torch_fp32_train_img_s)} | ${f(r.torch_tf32_train_img_s)} | ${f(r.ratio_fp32, 3)} | ${f(r.ratio_tf32, 3)} | ${f(r.ours_train_tflops, 2)} (${f(r.ours_pct_fp32_peak)}) | ${f(r.torch_fp32_train_tflops, 2)} (${f(r.torch_fp32_pct_fp32_peak)}) | ${f(r.ours_fwd_img_s)} | ${f(r.fwd_ratio_fp32, 3)} | ${f(r.ours_peak_tensor_mib, 0)} / ${f(r.torch_fp32_peak_mib, 0)} |`);
  }
  return lines.join("\n");
}

interface Verdicts {
  tests?: { ok?: boolean };
  study?: { status?: string; steps?: number };
}

/** Phase "summary". */
export function summaryPhase(out: string): number {
  const bench = read<{ backend: string; adapter: { description?: string; vendor?: string; architecture?: string } | null; rows: GpuBenchRow[]; matmuls?: { model: string; batch: number; products: MatmulProbe[] } }>(out, "bench");
  const torch = read<TorchResult>(out, "torch");
  const tests = read<Verdicts["tests"]>(out, "tests");
  const study = read<Verdicts["study"]>(out, "study");
  const device = [bench?.adapter?.description, torch?.device].filter(Boolean).join(" / ");
  const onH200 = /H200/i.test(device);
  const rows = summarize(bench?.rows ?? [], torch, onH200);
  const goal = rows.filter((r) => r.model === "vit-base-16" && r.ratio_fp32 !== null);
  const table = markdown(rows);
  const variants = variantComparison(bench?.rows ?? []);
  const summary = {
    backend: bench?.backend ?? null, device: device || null,
    peak: {
      fp32_tflops: H200_FP32_PEAK_TFLOPS, tf32_dense_tflops: H200_TF32_DENSE_PEAK_TFLOPS,
      source: "NVIDIA H200 Tensor Core GPU datasheet (SXM: FP32 67 TFLOPS; TF32 Tensor Core 989 TFLOPS with sparsity, half of it dense)",
      applied: onH200 ? "yes" : `no: the device (${device || "unknown"}) is not an H200, so no share of its peak is given`,
    },
    flops: "analytic matmul MACs per image (bench/gpu-flops.ts), FLOP = 2 MAC, the same count for ours and PyTorch",
    torch: torch ? { available: torch.available, reason: torch.reason ?? null, device: torch.device ?? null, torch: torch.torch ?? null, timm: torch.timm ?? null, model_source: torch.model_source ?? null } : { available: false, reason: "no torch.json" },
    tests_ok: tests?.ok ?? null,
    study: study ? { status: study.status ?? null, steps: study.steps ?? null } : null,
    goal: goal.length
      ? goal.map((r) => `vit-base-16 b${r.batch} ${r.strategy}: ours/PyTorch fp32 = ${r.ratio_fp32} (goal >= 0.30 for training)`)
      : "not measured (no vit-base-16 row with both sides)",
    variants,
    // The step's main products alone: how far the backend's matmul kernel is from the chip's peak.
    matmuls: bench?.matmuls ? { ...bench.matmuls, products: bench.matmuls.products.map((m) => ({ ...m, pct_fp32_peak: onH200 ? r3((100 * m.tflops) / H200_FP32_PEAK_TFLOPS) : null, tiled_pct_fp32_peak: onH200 && m.tiledTflops ? r3((100 * m.tiledTflops) / H200_FP32_PEAK_TFLOPS) : null })) } : null,
    rows, table,
  };
  writeResult(out, "summary", summary);
  console.log(table);
  for (const c of variants) console.log(`${c.model} b${c.batch} ${c.strategy}: default kernels ${c.default_train_img_s ?? "-"} train img/s, ${c.variant} ${c.variant_train_img_s ?? "-"} (default/variant x${c.default_over_variant ?? "-"})`);
  if (Array.isArray(summary.goal)) for (const g of summary.goal) console.log(g);
  else console.log(`goal: ${summary.goal}`);
  console.log(`tests: ${tests?.ok === undefined ? "not run" : tests.ok ? "passed" : "FAILED"}; study: ${study?.status ?? "not run"}; torch: ${torch?.available ? `${torch.torch} on ${torch.device} (${torch.model_source})` : `not run (${torch?.reason ?? "no torch.json"})`}`);
  return 0;
}
