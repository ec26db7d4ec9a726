// Backend chooser: tfjs-node-gpu, then tfjs-node, then webgpu (when an adapter exists), then wasm,
// then cpu. `STUDY_BACKEND` overrides. The report says what was picked and why, and goes into
// every run's record.
import * as tf from "@tensorflow/tfjs";
import { configureWasm, errorText } from "./wasm";

export type BackendChoice = "tfjs-node-gpu" | "tfjs-node" | "webgpu" | "wasm" | "cpu";
export const BACKEND_ORDER: readonly BackendChoice[] = ["tfjs-node-gpu", "tfjs-node", "webgpu", "wasm", "cpu"];

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

export interface BackendAttempt {
  name: BackendChoice;
  ok: boolean;
  detail: string;
}

export interface BackendReport {
  /** What the chooser picked. */
  choice: BackendChoice;
  /** tfjs's own name for the active backend (`tensorflow` for tfjs-node). */
  tfBackend: string;
  /** One sentence: why this backend. */
  reason: string;
  /** Every backend considered, in order, with why it was or was not usable. */
  attempts: BackendAttempt[];
  adapter?: AdapterInfo;
  tfjsVersion: string;
}

let current: BackendReport | undefined;
let webgpuAdapter: AdapterInfo | null | undefined;

function isChoice(s: string): s is BackendChoice {
  return (BACKEND_ORDER as readonly string[]).includes(s);
}

/** Installs Dawn's `navigator.gpu` (once) and asks it for an adapter; null when there is none. */
export async function probeWebGPU(): Promise<AdapterInfo | null> {
  if (webgpuAdapter !== undefined) return webgpuAdapter;
  // Dawn options (e.g. "backend=vulkan") can be passed through STUDY_DAWN_OPTIONS, comma-separated.
  const dawnOptions = (process.env.STUDY_DAWN_OPTIONS ?? "").split(",").filter((s) => s.length > 0);
  try {
    // `webgpu` is ESM-only; Node >= 20.19 loads it through require(esm).
    const webgpu = require("webgpu") as { create(opts: string[]): GPU; globals: object };
    const g = globalThis as unknown as { navigator?: { gpu?: GPU } };
    if (!g.navigator?.gpu) {
      Object.assign(globalThis, webgpu.globals);
      const gpu = webgpu.create(dawnOptions);
      if (g.navigator) Object.defineProperty(g.navigator, "gpu", { value: gpu, configurable: true });
      else (globalThis as unknown as { navigator: { gpu: GPU } }).navigator = { gpu };
    }
    const adapter = await g.navigator!.gpu!.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) {
      releaseWebGPU();
      webgpuAdapter = null;
      return null;
    }
    const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
    webgpuAdapter = {
      vendor: info?.vendor ?? "",
      architecture: info?.architecture ?? "",
      device: info?.device ?? "",
      description: info?.description ?? "",
    };
    return webgpuAdapter;
  } catch (e) {
    releaseWebGPU();
    webgpuAdapter = null;
    return null;
  }
}

/** Drops the reference to Dawn so that the process can exit (the `webgpu` package keeps it alive). */
export function releaseWebGPU(): void {
  const g = globalThis as unknown as { navigator?: { gpu?: unknown } };
  if (g.navigator && "gpu" in g.navigator) {
    try {
      delete g.navigator.gpu;
    } catch {
      /* defined non-configurable by someone else: leave it */
    }
  }
}

async function tryBackend(name: BackendChoice): Promise<BackendAttempt & { adapter?: AdapterInfo }> {
  try {
    switch (name) {
      case "tfjs-node-gpu":
      case "tfjs-node": {
        const pkg = name === "tfjs-node-gpu" ? "@tensorflow/tfjs-node-gpu" : "@tensorflow/tfjs-node";
        try {
          require.resolve(pkg);
        } catch {
          return { name, ok: false, detail: `${pkg} is not installed (optional dependency)` };
        }
        require(pkg);
        const ok = await tf.setBackend("tensorflow");
        return { name, ok, detail: ok ? `${pkg} loaded` : `${pkg} failed to initialise` };
      }
      case "webgpu": {
        const adapter = await probeWebGPU();
        if (!adapter) return { name, ok: false, detail: "no WebGPU adapter (Dawn found no Vulkan/Metal/D3D device)" };
        require("@tensorflow/tfjs-backend-webgpu");
        const ok = await tf.setBackend("webgpu");
        const who = [adapter.vendor, adapter.architecture, adapter.description].filter((s) => s).join(" / ");
        return { name, ok, detail: ok ? `adapter ${who || "(no info)"}` : "webgpu backend failed to initialise", adapter };
      }
      case "wasm": {
        // Threaded SIMD by default (STUDY_WASM_THREADS, default one per core); see runtime/wasm.
        const setup = configureWasm();
        const ok = await tf.setBackend("wasm");
        const simd = ok ? await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT") : false;
        return { name, ok, detail: ok ? `simd=${simd} threads=${setup.threads}: ${setup.reason}` : "wasm backend failed to initialise" };
      }
      case "cpu": {
        const ok = await tf.setBackend("cpu");
        return { name, ok, detail: ok ? "pure JavaScript kernels" : "cpu backend failed" };
      }
    }
  } catch (e) {
    return { name, ok: false, detail: errorText(e) };
  }
}

/**
 * Selects the backend (once per process unless `force`): the one named by `prefer` or
 * `STUDY_BACKEND`, else the first usable one in BACKEND_ORDER.
 */
export async function initBackend(opts: { prefer?: BackendChoice; force?: boolean } = {}): Promise<BackendReport> {
  const requested = opts.prefer ?? process.env.STUDY_BACKEND;
  if (current && !opts.force && (!requested || requested === current.choice)) return current;
  if (requested !== undefined && requested !== "" && !isChoice(requested)) {
    throw new Error(`STUDY_BACKEND=${requested} is not a backend; use one of ${BACKEND_ORDER.join(", ")}`);
  }
  const attempts: BackendAttempt[] = [];
  let adapter: AdapterInfo | undefined;
  const candidates = requested ? [requested as BackendChoice] : BACKEND_ORDER;
  for (const name of candidates) {
    const a = await tryBackend(name);
    attempts.push({ name: a.name, ok: a.ok, detail: a.detail });
    if (a.adapter) adapter = a.adapter;
    if (a.ok) {
      await tf.ready();
      const skipped = attempts.filter((t) => !t.ok).map((t) => `${t.name}: ${t.detail}`);
      const reason = requested
        ? `requested by ${opts.prefer ? "the caller" : "STUDY_BACKEND"}; ${a.detail}`
        : `first usable in ${BACKEND_ORDER.join(" > ")}; ${a.detail}` + (skipped.length ? `; skipped ${skipped.join("; ")}` : "");
      current = { choice: name, tfBackend: tf.getBackend(), reason, attempts, adapter, tfjsVersion: tf.version.tfjs };
      return current;
    }
  }
  const tried = attempts.map((t) => `${t.name}: ${t.detail}`).join("; ");
  throw new Error(`no usable TensorFlow.js backend${requested ? ` (requested ${requested})` : ""}: ${tried}`);
}

/** The report of the backend in use, or undefined before initBackend. */
export function backendReport(): BackendReport | undefined {
  return current;
}

/**
 * Backends the tests run on: cpu and wasm always, webgpu when an adapter exists, tfjs-node when
 * installed. `STUDY_TEST_BACKENDS=cpu,wasm` narrows the list.
 */
export async function availableBackends(): Promise<BackendChoice[]> {
  const wanted = process.env.STUDY_TEST_BACKENDS?.split(",").filter(isChoice);
  const out: BackendChoice[] = [];
  for (const name of ["cpu", "wasm", "webgpu", "tfjs-node"] as BackendChoice[]) {
    if (wanted && !wanted.includes(name)) continue;
    if (name === "webgpu" && !(await probeWebGPU())) continue;
    if (name === "tfjs-node") {
      try {
        require.resolve("@tensorflow/tfjs-node");
      } catch {
        continue;
      }
    }
    out.push(name);
  }
  return out;
}
