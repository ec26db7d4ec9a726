// The GPU bundle and its one script, on the CPU: environment/gpu-bundle.sh builds .gpu/ (or
// refreshes it: the compressed binaries are kept while unchanged), and environment/gpu-check.sh
// runs from it at the tiny size on wasm, as the GPU machine would run it at full size: unpacked
// into a temp folder, with no node on PATH. Its JSON results must be there and sane.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../../src/ground/root";
import { SOFTWARE_ICD } from "../support/backends";
import { tempDir } from "../support/fixtures";

const SYSTEM_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
const NODE_NAMES = new Set(["node", "nodejs", "npm", "npx", "corepack"]);
const BUNDLE = path.join(REPO_ROOT, ".gpu");

/** A PATH of one folder that links every system command except Node's. */
function pathWithoutNode(dir: string): string {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  for (const d of SYSTEM_DIRS) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (NODE_NAMES.has(n) || fs.existsSync(path.join(bin, n))) continue;
      fs.symlinkSync(path.join(d, n), path.join(bin, n));
    }
  }
  return bin;
}

const missing = ["bash", "xz", "tar", "sha256sum"].filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);

const skip = missing.length ? `missing ${missing.join(", ")}` : false;
let built: { mib: string; seconds: number; withVulkan: boolean } | undefined;

/** Builds (or refreshes) .gpu/ once for the tests below. */
function buildBundle(): NonNullable<typeof built> {
  if (built) return built;
  const t0 = Date.now();
  const build = spawnSync("bash", [path.join(REPO_ROOT, "environment", "gpu-bundle.sh")], {
    cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, GPU_BUNDLE_XZ_LEVEL: "0", GPU_BUNDLE_XZ_THREADS: "2" },
  });
  assert.equal(build.status, 0, `gpu-bundle.sh failed:\n${build.stdout}\n${build.stderr}`);
  const total = /total\s+([\d.]+) MiB/.exec(build.stdout);
  assert.ok(total && Number(total[1]) < 64, `bundle size line missing or too big:\n${build.stdout}`);
  for (const f of ["node.xz", "dawn.node.xz", "app.tar.xz", "MANIFEST.sha256"]) assert.ok(fs.existsSync(path.join(BUNDLE, f)), f);
  const withVulkan = fs.existsSync(path.join(BUNDLE, "vulkan")) && fs.readdirSync(path.join(BUNDLE, "vulkan")).some((f) => f.endsWith(".deb"));
  built = { mib: total![1], seconds: (Date.now() - t0) / 1000, withVulkan };
  return built;
}

/** Runs environment/gpu-check.sh from the bundle at the tiny size on `backend` and checks every JSON it writes. */
function checkFromBundle(backend: "wasm" | "webgpu", extraEnv: NodeJS.ProcessEnv = {}): void {
  const { mib, seconds, withVulkan } = buildBundle();
  const t0 = Date.now();
  const dir = tempDir("gpu-check");
  const out = path.join(dir, "out");
  const env: NodeJS.ProcessEnv = { HOME: process.env.HOME, LANG: "C.UTF-8", TMPDIR: dir, PATH: pathWithoutNode(dir), STUDY_BACKEND: backend, GPU_CHECK_SIZE: "tiny", ...extraEnv };
  assert.notEqual(spawnSync("sh", ["-c", "command -v node"], { env }).status, 0, "node must not be on the check's PATH");
  const run = spawnSync("bash", [path.join(REPO_ROOT, "environment", "gpu-check.sh"), out], { cwd: REPO_ROOT, encoding: "utf8", env });
  const log = `${run.stdout}\n${run.stderr}`;
  assert.equal(run.status, 0, `gpu-check.sh failed:\n${log.slice(-6000)}`);
  const checked = (Date.now() - t0) / 1000;
  const read = (name: string) => JSON.parse(fs.readFileSync(path.join(out, `${name}.json`), "utf8"));

  // At most 8 flat files: the JSON of each phase and the log.
  const files = fs.readdirSync(out).sort();
  assert.deepEqual(files, ["backend.json", "bench.json", "check.log", "study.json", "summary.json", "tests.json", "torch.json"]);
  assert.ok(fs.readFileSync(path.join(out, "check.log"), "utf8").includes("unpacked into"), "the log has the run");

  const report = read("backend");
  assert.equal(report.choice, backend);
  assert.equal(typeof report.webgpu, "string");
  // With the bundle's Vulkan loader Dawn starts; without it, it is not started.
  if (withVulkan) {
    assert.match(String(report.vulkanLoader), /vulkan/);
    assert.ok(!/no Vulkan loader/.test(report.webgpu), `Dawn should have started: ${report.webgpu}`);
  }

  const tests = read("tests");
  assert.equal(tests.ok, true, JSON.stringify(tests));
  assert.equal(tests.parity.length, 4);
  for (const p of tests.parity) assert.ok(p.ok && p.worstRatio <= 1, JSON.stringify(p));
  assert.ok(tests.numerics.ok && tests.numerics.gradWorstRelErr <= 1e-3 && tests.numerics.logitsMaxAbsErr <= 1e-3, JSON.stringify(tests.numerics));
  assert.deepEqual(tests.strategies.map((s: { strategy: string }) => s.strategy), ["full", "top-k", "linear", "lora", "selective-lora", "block-expansion"]);
  for (const s of tests.strategies) assert.ok(s.flat && s.leftAfterDispose === 0 && s.numTensors.length === 3, JSON.stringify(s));
  if (backend === "webgpu") {
    assert.equal(tests.tiledMatMul.length, 4, JSON.stringify(tests.tiledMatMul));
    for (const r of tests.tiledMatMul) assert.ok(r.ok && r.relErr <= 1e-5, JSON.stringify(r));
  } else assert.equal(tests.tiledMatMul, undefined);

  const bench = read("bench");
  // On webgpu the profiled group's full fine-tuning runs once more per kernel variant.
  const variants = backend === "webgpu" ? ["stock-kernels", "tiled-matmul"] : [];
  assert.equal(bench.rows.length, 6 + variants.length);
  assert.deepEqual(bench.rows.filter((r: { variant?: string }) => r.variant).map((r: { variant?: string }) => r.variant), variants);
  // The step's main matrix products alone, each with its throughput.
  assert.equal(bench.matmuls.products.length, 6, JSON.stringify(bench.matmuls));
  for (const m of bench.matmuls.products) {
    assert.ok(m.ms > 0 && m.tflops > 0, JSON.stringify(m));
    if (backend === "webgpu") assert.ok(m.tiledMs > 0 && m.tiledTflops > 0, JSON.stringify(m));
  }
  for (const r of bench.rows) {
    assert.ok(r.train?.imgPerSec > 0 && r.forward?.imgPerSec > 0 && r.trainTflops > 0 && r.macs.train > r.macs.forward, JSON.stringify(r));
  }

  const torch = read("torch");
  if (torch.available) {
    assert.equal(torch.rows.length, 6);
    for (const r of torch.rows) assert.ok(r.train?.imgPerSec > 0 && r.trainable_matches_ours, JSON.stringify(r));
  } else {
    assert.ok(typeof torch.reason === "string" && torch.reason.length > 0, "torch.json says why PyTorch did not run");
  }

  const study = read("study");
  assert.equal(study.status, "finished", JSON.stringify(study).slice(0, 2000));
  assert.match(study.note, /RANDOM weights/);
  assert.deepEqual(study.rows.map((r: { method: string }) => r.method), ["All", "LoRA r=8", "Block p=3"]);
  for (const r of study.rows) assert.ok(r.status === "trained" && r.target_top1_last >= 0 && r.retention_knn20 >= 0, JSON.stringify(r));

  const summary = read("summary");
  assert.equal(summary.rows.length, 6);
  assert.equal(summary.tests_ok, true);
  assert.deepEqual(summary.variants.map((c: { variant: string }) => c.variant), variants);
  for (const c of summary.variants) assert.ok(c.default_over_variant > 0 && c.default_train_img_s > 0 && c.variant_train_img_s > 0, JSON.stringify(c));
  if (torch.available) for (const r of summary.rows) assert.ok(r.ratio_fp32 > 0, JSON.stringify(r));
  console.log(`# bundle ${mib} MiB built in ${seconds.toFixed(0)} s; tiny check on ${backend} ${checked.toFixed(0)} s`);
}

test("the GPU bundle builds under 64 MiB and its check runs from it on wasm at the tiny size, without node on PATH", { skip, timeout: 600_000 }, () => {
  checkFromBundle("wasm");
});

// The same script on a real WebGPU: Dawn over Mesa's software Vulkan driver (environment/webgpu-sw.sh),
// what the GPU machine runs over NVIDIA's, at the tiny size.
test("the GPU check runs from the bundle on webgpu (Dawn over Mesa's software Vulkan) at the tiny size", { skip: skip || (fs.existsSync(SOFTWARE_ICD) ? false : "no software Vulkan driver in .webgpu-sw (environment/webgpu-sw.sh)"), timeout: 600_000 }, () => {
  checkFromBundle("webgpu", { VK_ADD_DRIVER_FILES: SOFTWARE_ICD });
});
