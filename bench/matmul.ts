// Matmul throughput on wasm: the SIMD module's kernel against XNNPACK (tfjs-backend-wasm's own,
// what STUDY_WASM_STOCK_KERNELS=1 runs for a plain product), on one thread and on one per core,
// for the linear-layer shapes of the CIFAR-native presets at batch 128, plus the two products
// XNNPACK cannot run directly (a transposed operand, a batch) that the SIMD kernel takes as they
// are. Each configuration runs in its own process (a process holds one wasm instance); the table
// prints GMAC/s (best of the timed calls) and SIMD / XNNPACK.
//
//   node --import tsx bench/matmul.ts [--threads N] [--reps N]
import { execFileSync } from "node:child_process";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/runtime/backend";
import { coreCount } from "../src/runtime/wasm";

interface Shape {
  name: string;
  a: number[];
  b: number[];
  transposeA?: boolean;
}

/** [rows, k] x [k, n]: ViT-micro (width 64, MLP 256) and ViT-tiny (128, 512) at 128 x 65 tokens. */
const SHAPES: Shape[] = [
  { name: "micro fc1 [8320,64]x[64,256]", a: [8320, 64], b: [64, 256] },
  { name: "micro fc2 [8320,256]x[256,64]", a: [8320, 256], b: [256, 64] },
  { name: "micro qkv [8320,64]x[64,192]", a: [8320, 64], b: [64, 192] },
  { name: "tiny fc1 [8320,128]x[128,512]", a: [8320, 128], b: [128, 512] },
  { name: "micro fc1 weight grad x^T dy", a: [8320, 64], b: [8320, 256], transposeA: true },
  { name: "micro attention [256,65,65]x[256,65,32]", a: [256, 65, 65], b: [256, 65, 32] },
];

const macs = (s: Shape): number => {
  const batch = s.a.length === 3 ? s.a[0] : 1;
  const [m, k] = s.transposeA ? [s.a[s.a.length - 1], s.a[s.a.length - 2]] : s.a.slice(-2);
  return batch * m * k * s.b[s.b.length - 1];
};

/** In the child: GMAC/s per shape, best of `reps` timed calls after two untimed ones. */
async function child(reps: number): Promise<void> {
  await initBackend({ prefer: "wasm", force: true });
  const out: number[] = [];
  for (const s of SHAPES) {
    const a = tf.randomNormal(s.a, 0, 1, "float32", 1);
    const b = tf.randomNormal(s.b, 0, 1, "float32", 2);
    const run = (): void => tf.matMul(a, b, s.transposeA ?? false, false).dispose();
    run();
    run();
    let best = Infinity;
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      run();
      best = Math.min(best, performance.now() - t0);
    }
    out.push(macs(s) / best / 1e6);
    tf.dispose([a, b]);
  }
  console.log(JSON.stringify(out));
}

function main(): void {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const reps = opt("reps", 8);
  if (args.includes("--child")) {
    void child(reps);
    return;
  }
  const threads = opt("threads", coreCount());
  const measure = (stock: boolean, t: number): number[] => {
    const env = { ...process.env, STUDY_BACKEND: "", STUDY_WASM_THREADS: String(t), STUDY_WASM_STOCK_KERNELS: stock ? "1" : "" };
    const stdout = execFileSync(process.execPath, ["--import", "tsx", __filename, "--child", "--reps", String(reps)], { env, encoding: "utf8" });
    return JSON.parse(stdout.trim().split("\n").pop() ?? "[]") as number[];
  };
  const counts = threads > 1 ? [1, threads] : [1];
  const head = ["shape", ...counts.flatMap((t) => [`XNNPACK ${t}thr`, `SIMD ${t}thr`, "SIMD/XNNPACK"])];
  const rows: string[][] = SHAPES.map((s) => [s.name]);
  for (const t of counts) {
    // Alternate the two so that a drift of the machine's speed hits both alike.
    const x = measure(true, t);
    const y = measure(false, t);
    SHAPES.forEach((_, i) => rows[i].push(x[i].toFixed(1), y[i].toFixed(1), (y[i] / x[i]).toFixed(2)));
  }
  console.log(`GMAC/s (best of ${reps} calls), wasm, ${coreCount()} cores; XNNPACK = STUDY_WASM_STOCK_KERNELS=1 (stock kernels: a transposed or batched product runs its scalar loop)`);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  console.log([line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n"));
}

main();
