// Entry of the GPU check: one phase per call, run by environment/gpu-check.sh from the bundle
// that environment/gpu-bundle.sh makes (esbuild bundles this file), or here through tsx:
//   node --import tsx bench/gpu-check.ts <phase> <out-dir>
// Phases: backend, tests, bench, torch-job, study, summary (and bench-group, bench's child).
// Results go to <out-dir>/<phase>.json. Environment: STUDY_BACKEND (the backend tested),
// GPU_CHECK_SIZE=full|tiny, GPU_CHECK_DEADLINE (epoch seconds by which the phase should end).
import * as fs from "node:fs";
import * as os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { findVulkanLoader, initBackend, probeWebGPU } from "../src/runtime/backend";
import { benchGroup, benchPhase, torchJob } from "./gpu-bench";
import { checkSize, errorMessage, say, writeResult } from "./gpu-common";
import { summaryPhase } from "./gpu-report";
import { studyPhase } from "./gpu-study";
import { testsPhase } from "./gpu-tests";

const ENV_SHOWN = [
  "STUDY_BACKEND", "STUDY_DAWN_OPTIONS", "STUDY_WASM_THREADS", "GPU_CHECK_SIZE", "LD_LIBRARY_PATH", "VK_DRIVER_FILES", "VK_ICD_FILENAMES",
  "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "CUDA_VISIBLE_DEVICES",
];

/** Phase "backend": what the chooser finds (every backend and why), the adapter and its limits. */
async function backendPhase(out: string): Promise<number> {
  // Dawn is probed whatever STUDY_BACKEND says, so that the report always tells about the GPU.
  const adapter = await probeWebGPU();
  let limits: Record<string, number> | null = null;
  let features: string[] | null = null;
  if (adapter) {
    try {
      const gpu = (globalThis as unknown as { navigator: { gpu: GPU } }).navigator.gpu;
      const a = await gpu.requestAdapter({ powerPreference: "high-performance" });
      if (a) {
        limits = {};
        for (const k of ["maxBufferSize", "maxStorageBufferBindingSize", "maxComputeWorkgroupStorageSize", "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX", "maxComputeWorkgroupsPerDimension"]) {
          const v = (a.limits as unknown as Record<string, unknown>)[k];
          if (typeof v === "number") limits[k] = v;
        }
        features = [...(a.features as unknown as Iterable<string>)].sort();
      }
    } catch (e) {
      say("backend", `adapter limits not read: ${errorMessage(e)}`);
    }
  }
  // webgpu's own attempt (its detail says why not), whatever backend is tested.
  let webgpu: string;
  try {
    webgpu = (await initBackend({ prefer: "webgpu", force: true })).attempts[0].detail;
  } catch (e) {
    webgpu = errorMessage(e).replace(/^.*?webgpu: /, "");
  }
  const report = await initBackend({ force: true });
  say("backend", `webgpu: ${webgpu}`);
  for (const a of report.attempts) say("backend", `${a.ok ? "ok  " : "no  "} ${a.name.padEnd(14)} ${a.detail}`);
  say("backend", `backend: ${report.choice} (${report.reason})`);
  if (adapter) say("backend", `adapter: vendor ${adapter.vendor || "?"}, architecture ${adapter.architecture || "?"}, device ${adapter.device || "?"}, ${adapter.description || ""}`);
  else say("backend", "no WebGPU adapter");
  const env = Object.fromEntries(ENV_SHOWN.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
  writeResult(out, "backend", {
    choice: report.choice, reason: report.reason, attempts: report.attempts, webgpu, adapter, limits, features, vulkanLoader: findVulkanLoader(),
    tfjs: tf.version.tfjs, node: process.version, platform: `${os.platform()} ${os.release()} ${os.arch()}`, cpus: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30), size: checkSize(), env,
  });
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [phase, arg] = argv;
  if (phase === "bench-group") {
    await benchGroup(JSON.parse(arg));
    return 0;
  }
  if (phase === "torch-job") {
    // Shapes only: the models are built on the cpu backend, the device stays free for PyTorch.
    await initBackend({ prefer: "cpu", force: true });
    console.log(JSON.stringify(torchJob()));
    return 0;
  }
  const phases: Record<string, (out: string) => Promise<number> | number> = {
    backend: backendPhase, tests: testsPhase, bench: benchPhase, study: studyPhase, summary: summaryPhase,
  };
  const run = phases[phase];
  if (!run || !arg) {
    console.error(`usage: gpu-check <${Object.keys(phases).join("|")}|torch-job> <out-dir>`);
    return 2;
  }
  fs.mkdirSync(arg, { recursive: true });
  return run(arg);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Dawn keeps the event loop alive: exit once the phase is done.
    setImmediate(() => process.exit(code));
  },
  (e: unknown) => {
    console.error(`gpu-check: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
