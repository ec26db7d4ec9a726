// `study bench --cpu`: forward and training-step throughput on the CPU backends, next to PyTorch
// measured in the same run on the same machine. Each backend runs in its own process (bench/cpu.ts;
// a process has one wasm instance), one after the other so that they never share the cores.
import { execFileSync, spawn } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import type { BenchCase, BenchJob, BenchRow } from "../../../bench/cpu";
import { Command, numOpt, opt, parseArgs } from "../command";
import { VitPresetName } from "../../model/config";
import { REPO_ROOT } from "../../ground/root";
import { coreCount } from "../../runtime/wasm";
import { writeFileAtomic } from "../../ground/atomic";

const ALL_STRATEGIES = ["full", "top-3", "linear", "lora-8", "selective-lora-8", "block-expansion-1"];
const TORCH_PYTHON = process.env.STUDY_TORCH_PYTHON ?? "/usr/bin/python3";

interface Target {
  name: string;
  backend: "wasm" | "cpu";
  env: Record<string, string>;
}

const USAGE = `usage: study bench --cpu [options]

Forward and training-step throughput (images/s, median of the timed steps) of the ViT on the CPU
backends, and of the same model and step in PyTorch (bench/torch_cpu.py, when torch imports),
printing ours / PyTorch per row. PyTorch runs before and after ours; the final table's ratios are
against the faster of its two runs (the speed of a shared machine drifts). Training step:
cross-entropy, backward over the strategy's trainable set, Adam, loss read back. The BLAS under
PyTorch's matmuls is printed with its single-thread sgemm speed; Debian's python3-torch uses the
system's libblas.so.3, which is the unoptimised reference BLAS unless an optimised one is installed
(apt-get install libopenblas0-pthread): the benchmark warns then, as its ratios would flatter ours.

Default plan: vit-cifar-micro and vit-cifar-tiny at batch 128, vit-tiny-16 and vit-small-16 at
batch 8; every strategy on vit-cifar-micro, full on the others; stock wasm (the "before", CIFAR
presets), wasm single-threaded, wasm with one thread per core, and the pure-JS cpu backend on
vit-cifar-micro full only (it is far slower). The last column is each row's training speed over
stock wasm's.

options:
  --quick              vit-cifar-micro only, full and lora-8, stock and threaded wasm (a quick check)
  --models a,b         presets to run (batch 128 for vit-cifar-*, --small-batch otherwise)
  --strategies a,b|all ${ALL_STRATEGIES.join(", ")}
  --backends a,b       wasm-stock (tfjs-wasm as shipped: one thread, stock kernels; the "before"),
                       wasm-1 (single thread), wasm (STUDY_WASM_THREADS or one per core), cpu
  --small-batch N      batch of the 224 px presets (default 8)
  --warmup N           untimed steps first (default 1)
  --steps N            timed steps (default 2)
  --threads N          threads of the threaded wasm and of PyTorch (default: cores)
  --no-torch           skip the PyTorch reference
  --profile            per-kernel time of one training step (tf.profile), per backend and case
  --json FILE          also write every row as JSON

environment: STUDY_WASM_STOCK_KERNELS=1 keeps wasm's stock kernels (the "before" baseline);
STUDY_TORCH_PYTHON picks the python that has torch (default /usr/bin/python3).`;

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The cases of the default plan (or of --models/--strategies). */
function plan(args: ReturnType<typeof parseArgs>): { cases: BenchCase[]; notes: string[] } {
  const quick = opt(args, "quick") === "true";
  const warmup = numOpt(args, "warmup", 1) as number;
  const steps = numOpt(args, "steps", 2) as number;
  const smallBatch = numOpt(args, "small-batch", 8) as number;
  const models = (list(opt(args, "models")) ?? (quick ? ["vit-cifar-micro"] : ["vit-cifar-micro", "vit-cifar-tiny", "vit-tiny-16", "vit-small-16"])) as VitPresetName[];
  const wanted = list(opt(args, "strategies"));
  const notes: string[] = [];
  const cases: BenchCase[] = [];
  for (const model of models) {
    const cifar = model.startsWith("vit-cifar-");
    let strategies: string[];
    if (wanted) strategies = wanted.includes("all") ? ALL_STRATEGIES : wanted;
    else if (quick) strategies = ["full", "lora-8"];
    else strategies = model === "vit-cifar-micro" ? ALL_STRATEGIES : ["full"];
    for (const strategy of strategies) {
      cases.push({ model, batch: cifar ? 128 : smallBatch, strategy, classes: 100, warmup, steps, forward: true });
    }
  }
  if (!wanted && !quick) notes.push("strategies other than full run on vit-cifar-micro only (--strategies all for every model)");
  return { cases, notes };
}

/** Runs a child that prints one JSON row per line; rows stream to `onRow`, stderr passes through. */
function runChild(cmd: string, argv: string[], env: Record<string, string>, onRow: (r: BenchRow) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    let buf = "";
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line.startsWith("{")) onRow(JSON.parse(line) as BenchRow);
      }
    });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(argv[argv.length - 2] ?? cmd)} exited with ${code}`))));
  });
}

/** What `bench/torch_cpu.py --info` says about the PyTorch reference: its version and its BLAS. */
interface TorchInfo {
  version: string;
  blas: { info: string; libraries: string[]; reference: boolean; gemmGflops: number };
}

function torchInfo(): TorchInfo | undefined {
  try {
    const out = execFileSync(TORCH_PYTHON, [path.join(REPO_ROOT, "bench", "torch_cpu.py"), "--info"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return JSON.parse(out) as TorchInfo;
  } catch {
    return undefined;
  }
}

/** One line on the reference's BLAS, and a warning when it is the unoptimised reference BLAS. */
export function describeBlas(b: TorchInfo["blas"]): { line: string; warning?: string } {
  const libs = b.libraries.map((l) => path.basename(path.dirname(l)) + "/" + path.basename(l)).join(", ");
  const line = `BLAS ${b.info === "generic" ? libs || "generic" : b.info}, single-thread sgemm ${b.gemmGflops} GFLOP/s`;
  if (!b.reference) return { line };
  return {
    line,
    warning: `PyTorch's matmuls run on the reference BLAS (Debian's libblas3, ${b.gemmGflops} GFLOP/s): the PyTorch numbers are far ` +
      "below this machine's and every ratio flatters ours. For a fair reference: apt-get install libopenblas0-pthread",
  };
}

const fmt = (x: number | undefined, d = 1): string => (x === undefined ? "-" : x.toFixed(d));

/** A case's identity across targets and the PyTorch reference. */
const key = (r: BenchCase): string => `${r.model}|${r.batch}|${r.strategy}`;

function table(rows: BenchRow[], torch: Map<string, BenchRow>): string {
  const stock = new Map(rows.filter((r) => r.target === "wasm-stock").map((r) => [key(r), r]));
  const head = ["model", "batch", "strategy", "backend", "thr", "fwd img/s", "train img/s", "torch fwd", "torch train", "fwd ratio", "train ratio", "train vs stock"];
  const body: string[][] = [];
  for (const r of rows) {
    const t = torch.get(key(r));
    const before = stock.get(key(r))?.trainTiming?.imgPerSec;
    const f = r.forwardTiming?.imgPerSec;
    const s = r.trainTiming?.imgPerSec;
    const tf = t?.forwardTiming?.imgPerSec;
    const ts = t?.trainTiming?.imgPerSec;
    body.push([
      r.model,
      String(r.batch),
      r.strategy,
      r.error ? `${r.target} (error: ${r.error.slice(0, 60)})` : (r.target ?? r.backend),
      String(r.threads),
      fmt(f),
      fmt(s),
      fmt(tf),
      fmt(ts),
      f && tf ? fmt(f / tf, 2) : "-",
      s && ts ? fmt(s / ts, 2) : "-",
      s && before ? `${fmt(s / before, 2)}x` : "-",
    ]);
  }
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 4 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...body.map(line)].join("\n");
}

export const command: Command = {
  summary: "CPU throughput (wasm threaded / single, cpu) against PyTorch on the same machine",
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, ["cpu", "quick", "no-torch", "profile"]);
    if (opt(args, "cpu") !== "true") {
      console.error("study bench: only --cpu exists so far\n\n" + USAGE);
      return 2;
    }
    const threads = numOpt(args, "threads", coreCount()) as number;
    const { cases, notes } = plan(args);
    const backends = list(opt(args, "backends")) ?? (opt(args, "quick") === "true" ? ["wasm-stock", "wasm"] : ["wasm-stock", "wasm-1", "wasm", "cpu"]);
    const targets: Target[] = [];
    for (const b of backends) {
      if (b === "wasm-stock") targets.push({ name: b, backend: "wasm", env: { STUDY_WASM_THREADS: "1", STUDY_WASM_STOCK_KERNELS: "1" } });
      else if (b === "wasm-1") targets.push({ name: b, backend: "wasm", env: { STUDY_WASM_THREADS: "1" } });
      else if (b === "wasm") targets.push({ name: b, backend: "wasm", env: { STUDY_WASM_THREADS: String(threads) } });
      else if (b === "cpu") targets.push({ name: b, backend: "cpu", env: {} });
      else throw new Error(`--backends: unknown '${b}' (wasm-stock, wasm-1, wasm, cpu)`);
    }
    if (threads === 1 && backends.includes("wasm") && backends.includes("wasm-1")) targets.splice(targets.findIndex((t) => t.name === "wasm"), 1);
    const profile = opt(args, "profile") === "true";
    const named = list(opt(args, "backends")) ?? [];

    console.log(`study bench --cpu: ${os.cpus()[0]?.model ?? "cpu"}, ${coreCount()} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    for (const n of notes) console.log(`note: ${n}`);
    const rows: BenchRow[] = [];
    const torchRows = new Map<string, BenchRow>();

    const jsonFile = opt(args, "json");
    const saveJson = (): void => {
      if (jsonFile) writeFileAtomic(jsonFile, JSON.stringify({ machine: { cpu: os.cpus()[0]?.model, cores: coreCount() }, torchInfo: ti, torch: [...torchRows.values()], torchPasses, rows }, null, 2));
    };

    const ti = opt(args, "no-torch") === "true" ? undefined : torchInfo();
    const tv = ti?.version;
    const blas = ti ? describeBlas(ti.blas) : undefined;
    const torchPasses: BenchRow[] = [];
    // PyTorch runs before and after ours, and each ratio is against the faster of its two runs:
    // on a shared machine the speed drifts over a long benchmark, and this keeps the ratio honest.
    const torchPass = async (label: string): Promise<void> => {
      console.log(`PyTorch ${tv}, ${threads} threads${label} (${blas?.line}) ...`);
      await runChild(TORCH_PYTHON, [path.join(REPO_ROOT, "bench", "torch_cpu.py"), JSON.stringify({ threads, cases })], {}, (r) => {
        torchPasses.push(r);
        const prev = torchRows.get(key(r));
        if (!prev?.trainTiming || (r.trainTiming && r.trainTiming.imgPerSec > prev.trainTiming.imgPerSec)) torchRows.set(key(r), r);
        if (r.error) console.log(`  torch ${key(r)}: error ${r.error}`);
      });
    };
    if (opt(args, "no-torch") === "true") console.log("PyTorch: skipped (--no-torch)");
    else if (!tv) console.log(`PyTorch: skipped (no torch in ${TORCH_PYTHON}; Debian: apt-get install python3-torch libopenblas0-pthread)`);
    else {
      if (blas?.warning) console.log(`note: ${blas.warning}`);
      await torchPass("");
    }
    for (const t of targets) {
      // Pure-JS cpu and stock wasm are far slower: the CIFAR-native cases only (cpu: micro full),
      // unless named in --backends.
      const slow = (t.name === "cpu" || t.name === "wasm-stock") && !named.includes(t.name);
      const mine = !slow ? cases : cases.filter((c) => (t.name === "cpu" ? c.model === "vit-cifar-micro" && c.strategy === "full" : c.model.startsWith("vit-cifar-")));
      if (mine.length < cases.length) console.log(`note: ${t.name} runs ${mine.length} of the ${cases.length} cases (it is far slower; --backends ${t.name} runs every case)`);
      if (!mine.length) continue;
      console.log(`${t.name} (${mine.length} cases) ...`);
      const job: BenchJob = { backend: t.backend, cases: mine, profile };
      await runChild(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "bench", "cpu.ts"), JSON.stringify(job)], t.env, (r) => {
        r.target = t.name;
        rows.push(r);
        const ref = torchRows.get(key(r))?.trainTiming?.imgPerSec;
        const s = r.trainTiming
          ? `${r.trainTiming.imgPerSec.toFixed(1)} img/s train${ref ? ` (PyTorch ${ref.toFixed(1)}, ratio ${(r.trainTiming.imgPerSec / ref).toFixed(2)})` : ""}${r.heapMiB ? `, wasm heap ${r.heapMiB} MiB` : ""}`
          : `error: ${r.error}`;
        console.log(`  ${t.name} ${key(r)}: ${s}`);
        saveJson(); // after every row: an interrupted run keeps what it measured
        if (r.profile) {
          const total = r.profile.reduce((a, k) => a + k.ms, 0);
          console.log(`  profile (one training step, ${total.toFixed(0)} ms in kernels):`);
          for (const k of r.profile.slice(0, 10)) console.log(`    ${k.name.padEnd(20)} ${k.ms.toFixed(1).padStart(9)} ms ${String(k.calls).padStart(5)} calls`);
        }
      });
    }
    if (tv) {
      await torchPass(" again (the ratios below use the faster of its two runs)");
      saveJson();
    }
    if (rows[0]) console.log(`\nwasm: ${rows.find((r) => r.backend === "wasm" && r.threads > 1)?.detail ?? rows[0].detail}`);
    console.log("");
    console.log(table(rows, torchRows));
    if (blas?.warning && torchRows.size > 0) console.log(`\nnote: ${blas.warning}`);
    if (jsonFile) console.log(`\nrows written to ${jsonFile}`);
    return rows.some((r) => r.error) ? 1 : 0;
  },
};
