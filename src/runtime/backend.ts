// Backend chooser: tfjs-node-gpu, then tfjs-node, then webgpu (when an adapter exists), then wasm,
// then cpu. `STUDY_BACKEND` overrides. The report says what was picked and why, and goes into
// every run's record.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { configureWasm, errorText } from "./wasm";
import { fixWebGPUKernels } from "./webgpu-kernels";

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
/** Why probeWebGPU found no adapter (set when it returns null). */
let webgpuMissing = "";

/**
 * tfjs's cpu backend prints "Hi, looks like you are running TensorFlow.js in Node.js ... install
 * our node backend" on the first tensor of every instance (one per process at least; each test
 * file, each kernel), when its `firstUse` flag is set. The chooser's report already says whether
 * tfjs-node is installed and why it was or was not used, so that flag reads false for every cpu
 * backend, also those the engine creates later; tfjs's other warnings still print (the PROD and
 * IS_TEST flags would silence all of them).
 */
export function quietCpuNotice(): void {
  const cpu = tf.findBackend("cpu") as unknown as { firstUse?: unknown } | null;
  if (!cpu || typeof cpu.firstUse !== "boolean") return; // not the tfjs 4.x cpu backend
  // The constructor assigns `this.firstUse = true`, which this setter swallows.
  Object.defineProperty(Object.getPrototypeOf(cpu), "firstUse", { configurable: true, get: () => false, set: () => {} });
  delete cpu.firstUse;
}
quietCpuNotice();

/** Name and version in the package.json of what `require(pkg)` loads from here; null when nothing resolves. */
export function resolvedPackage(pkg: string): { name: string; version: string } | null {
  let file: string;
  try {
    file = require.resolve(`${pkg}/package.json`);
  } catch {
    return null;
  }
  const j = JSON.parse(fs.readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
  return { name: String(j.name), version: String(j.version) };
}

/**
 * Why `pkg` (tfjs-node or tfjs-node-gpu) cannot be used, found without loading it; null when the
 * real package is there. danfojs-node's dependency on tfjs-node is overridden to @tensorflow/tfjs
 * (package.json) and installed under the name @tensorflow/tfjs-node: nested under danfojs-node
 * here, but npm hoists it to the top-level node_modules wherever nothing else takes that name.
 * Its package.json keeps the name @tensorflow/tfjs.
 */
export function nativePackageProblem(pkg: string): string | null {
  const found = resolvedPackage(pkg);
  if (!found) return `${pkg} is not installed (optional dependency)`;
  if (found.name === pkg) return null;
  const whose = found.name === "@tensorflow/tfjs" ? "danfojs-node's alias to" : "an alias to";
  return `${pkg} is not installed (${whose} ${found.name}@${found.version} is in its place)`;
}

const VULKAN_LOADER = "libvulkan.so.1";

/**
 * Where the dynamic linker would find the Vulkan loader that Dawn dlopen()s on Linux
 * (LD_LIBRARY_PATH, the ld.so cache, the default directories), or null when it would not. Only
 * meaningful on Linux.
 */
export function findVulkanLoader(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.LD_LIBRARY_PATH ?? "").split(":").filter((d) => d.length > 0)) {
    if (fs.existsSync(path.join(dir, VULKAN_LOADER))) return path.join(dir, VULKAN_LOADER);
  }
  try {
    // The cache holds each library's name and path as NUL-terminated strings (what `ldconfig -p` lists).
    if (fs.readFileSync("/etc/ld.so.cache").includes(`/${VULKAN_LOADER}\0`)) return `/etc/ld.so.cache: ${VULKAN_LOADER}`;
  } catch {
    /* no cache: the default directories below */
  }
  const multiarch = process.arch === "x64" ? "x86_64-linux-gnu" : process.arch === "arm64" ? "aarch64-linux-gnu" : "";
  const dirs = ["/lib", "/usr/lib", "/lib64", "/usr/lib64", ...(multiarch ? [`/lib/${multiarch}`, `/usr/lib/${multiarch}`] : [])];
  for (const dir of dirs) if (fs.existsSync(path.join(dir, VULKAN_LOADER))) return path.join(dir, VULKAN_LOADER);
  return null;
}

/**
 * The Vulkan driver manifests (ICD json files) the loader would read on Linux, searched as it
 * searches: VK_DRIVER_FILES (or the older VK_ICD_FILENAMES) replaces the search, VK_ADD_DRIVER_FILES
 * adds to it, else the vulkan/icd.d folders of XDG_CONFIG_DIRS, /etc, XDG_DATA_HOME and XDG_DATA_DIRS.
 */
export function findVulkanDrivers(env: NodeJS.ProcessEnv = process.env): string[] {
  const list = (v: string | undefined) => (v ?? "").split(":").filter((d) => d.length > 0);
  const manifests = (p: string): string[] => {
    try {
      if (!fs.statSync(p).isDirectory()) return [p];
      return fs.readdirSync(p).filter((f) => f.endsWith(".json")).map((f) => path.join(p, f));
    } catch {
      return [];
    }
  };
  const added = list(env.VK_ADD_DRIVER_FILES).flatMap(manifests);
  const explicit = list(env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES);
  if (explicit.length > 0) return [...explicit.flatMap(manifests), ...added];
  const dataHome = env.XDG_DATA_HOME || (env.HOME ? path.join(env.HOME, ".local", "share") : "");
  const dirs = [
    ...list(env.XDG_CONFIG_DIRS || "/etc/xdg"), "/etc", ...(dataHome ? [dataHome] : []), ...list(env.XDG_DATA_DIRS || "/usr/local/share:/usr/share"),
  ].map((d) => path.join(d, "vulkan", "icd.d"));
  return [...dirs.flatMap(manifests), ...added];
}

function isChoice(s: string): s is BackendChoice {
  return (BACKEND_ORDER as readonly string[]).includes(s);
}

/**
 * requestDevice's descriptor with `requiredFeatures` flat. tfjs-backend-webgpu 4.22 asks for
 * 'bgra8unorm-storage' as `['bgra8unorm-storage']`, an array inside the list: a browser's WebIDL
 * layer turns it into its string, but Dawn's Node bindings accept only strings there ("value is
 * not a string"), so the device request would fail on every adapter that has that feature.
 */
export function flatFeatures<D extends { requiredFeatures?: Iterable<unknown> }>(descriptor: D | undefined): D | undefined {
  if (!descriptor?.requiredFeatures) return descriptor;
  const flat = [...descriptor.requiredFeatures].flat().map((f) => String(f));
  return { ...descriptor, requiredFeatures: [...new Set(flat)] };
}

const FLAT_FEATURES = Symbol.for("study.flatFeatureRequests");

/**
 * Makes GPUAdapter.requestDevice pass `flatFeatures(descriptor)` (once per prototype), and ask
 * for the adapter's own storage-buffer limit per shader stage (tfjs asks for none, so it gets the
 * default 8, and its AddN and Concat split their inputs into chunks of 7).
 */
function flattenFeatureRequests(proto: (GPUAdapter & { [FLAT_FEATURES]?: boolean }) | undefined): void {
  if (!proto || proto[FLAT_FEATURES] || typeof proto.requestDevice !== "function") return;
  const requestDevice = proto.requestDevice;
  proto.requestDevice = function (this: GPUAdapter, descriptor?: GPUDeviceDescriptor) {
    const d = flatFeatures(descriptor) ?? {};
    const storage = this.limits?.maxStorageBuffersPerShaderStage;
    return requestDevice.call(this, storage ? { ...d, requiredLimits: { ...d.requiredLimits, maxStorageBuffersPerShaderStage: storage } } : d);
  };
  proto[FLAT_FEATURES] = true;
}

/**
 * Mesa's Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not set in the environment"
 * (twice, into a notebook's output) when they start without it, looking for a Wayland display that
 * is never used here; for as long as Dawn enumerates adapters it is the temp folder.
 */
async function withRuntimeDir<T>(f: () => Promise<T>): Promise<T> {
  if (process.platform !== "linux" || process.env.XDG_RUNTIME_DIR) return f();
  process.env.XDG_RUNTIME_DIR = os.tmpdir();
  try {
    return await f();
  } finally {
    delete process.env.XDG_RUNTIME_DIR;
  }
}

/** Installs Dawn's `navigator.gpu` (once) and asks it for an adapter; null when there is none. */
export async function probeWebGPU(): Promise<AdapterInfo | null> {
  if (webgpuAdapter !== undefined) return webgpuAdapter;
  // Dawn options (e.g. "backend=vulkan") can be passed through STUDY_DAWN_OPTIONS, comma-separated.
  const dawnOptions = (process.env.STUDY_DAWN_OPTIONS ?? "").split(",").filter((s) => s.length > 0);
  // On Linux Dawn's adapters come from Vulkan (OpenGL ES only when asked for). Without the loader
  // it finds none and prints "Couldn't load Vulkan" on every start, so it is not started at all,
  // unless STUDY_DAWN_OPTIONS picks another Dawn backend.
  const otherBackend = dawnOptions.some((o) => o.startsWith("backend=") && o !== "backend=vulkan");
  if (process.platform === "linux" && !otherBackend && !findVulkanLoader()) {
    webgpuMissing = `no Vulkan loader (${VULKAN_LOADER} not in LD_LIBRARY_PATH, the ld.so cache or /usr/lib): Dawn not started`;
    webgpuAdapter = null;
    return null;
  }
  // A loader without a driver: Dawn would find no adapter and print "vkCreateInstance: Found no drivers!".
  if (process.platform === "linux" && !otherBackend && findVulkanDrivers().length === 0) {
    webgpuMissing = "a Vulkan loader but no Vulkan driver (no ICD manifest in /etc/vulkan/icd.d, /usr/share/vulkan/icd.d or VK_DRIVER_FILES): Dawn not started";
    webgpuAdapter = null;
    return null;
  }
  webgpuMissing = "no WebGPU adapter (Dawn found no Vulkan/Metal/D3D device)";
  try {
    // `webgpu` is ESM-only; Node >= 20.19 loads it through require(esm).
    const webgpu = require("webgpu") as { create(opts: string[]): GPU; globals: object };
    const g = globalThis as unknown as { navigator?: { gpu?: GPU } };
    if (!g.navigator?.gpu) {
      Object.assign(globalThis, webgpu.globals);
      flattenFeatureRequests((webgpu.globals as { GPUAdapter?: { prototype: GPUAdapter } }).GPUAdapter?.prototype);
      const gpu = webgpu.create(dawnOptions);
      if (g.navigator) Object.defineProperty(g.navigator, "gpu", { value: gpu, configurable: true });
      else (globalThis as unknown as { navigator: { gpu: GPU } }).navigator = { gpu };
    }
    const adapter = await withRuntimeDir(() => g.navigator!.gpu!.requestAdapter({ powerPreference: "high-performance" }));
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
    webgpuMissing = `Dawn failed to start: ${errorText(e)}`;
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

const SYNC_READS = Symbol.for("study.webgpuSyncReads");

/** tfjs-backend-webgpu's record of a tensor: `values` while they are still on the host. */
type HostValues = { tensorMap?: { get(id: object): { values?: unknown } | undefined } };
const hasOffscreenCanvas = () => typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas !== "undefined";
const onHost = (b: HostValues, dataId: object) => b.tensorMap?.get(dataId)?.values != null;

/**
 * tfjs-backend-webgpu reads a tensor synchronously (dataSync, arraySync, print) through an
 * OffscreenCanvas, which Node does not have, and WebGPU itself has no blocking read: in Node that
 * read fails with "OffscreenCanvas is not defined". This names the problem and the remedy instead.
 * Tensors whose values are still on the host (made from data, not yet used on the GPU) read as before.
 */
export function explainSyncReads(backend: tf.KernelBackend): void {
  if (hasOffscreenCanvas()) return;
  type Reader = HostValues & { readSync(dataId: object): unknown; [SYNC_READS]?: boolean };
  const proto = Object.getPrototypeOf(backend) as Reader;
  if (proto[SYNC_READS]) return;
  const readSync = proto.readSync;
  proto.readSync = function (this: Reader, dataId: object) {
    if (!onHost(this, dataId)) {
      throw new Error("webgpu backend in Node: a tensor on the GPU cannot be read synchronously (dataSync, arraySync, bufferSync, print); read it with `await t.data()` or `await t.array()`");
    }
    return readSync.call(this, dataId);
  };
  proto[SYNC_READS] = true;
}

/**
 * A WebGPU adapter that runs on the CPU (Mesa's llvmpipe/lavapipe, SwiftShader, WARP): real
 * WebGPU, so the tests use it, but slower than the wasm backend, so the chooser passes it by
 * unless asked for it by name.
 */
export function isSoftwareAdapter(a: AdapterInfo): boolean {
  return /\b(software|cpu|swiftshader|llvmpipe|lavapipe)\b|basic render driver/i.test([a.vendor, a.architecture, a.device, a.description].join(" "));
}

/**
 * Whether `t` can be read synchronously now: always, except on webgpu in Node once its data is
 * on the GPU (a tensor made from host values reads synchronously until its first use there).
 */
export function readableSync(t: tf.Tensor): boolean {
  return tf.getBackend() !== "webgpu" || hasOffscreenCanvas() || onHost(tf.backend() as unknown as HostValues, t.dataId);
}

const DEVICE_ERRORS = Symbol.for("study.webgpuDeviceErrors");

/**
 * A WebGPU validation or out-of-memory error does not throw where it happens: the command is
 * dropped, Dawn prints the message, and the tensors read as zeros (a buffer over the device's
 * maxStorageBufferBindingSize, 128 MiB on some adapters, is one way to get there). This records the
 * device's uncaptured errors and makes the next read of any tensor (`await t.data()`) throw with
 * the first of them, so that a benchmark or a training run stops instead of reporting zeros.
 */
export function failReadsOnDeviceErrors(backend: tf.KernelBackend): void {
  type Reader = { read(dataId: object): Promise<unknown>; device?: GPUDevice; [DEVICE_ERRORS]?: string[] };
  const b = backend as unknown as Reader;
  if (!b.device || b[DEVICE_ERRORS]) return;
  const errors: string[] = [];
  b[DEVICE_ERRORS] = errors;
  b.device.addEventListener("uncapturederror", (e) => errors.push((e as GPUUncapturedErrorEvent).error.message.trim()));
  const read = b.read.bind(backend);
  b.read = async (dataId: object) => {
    const values = await read(dataId);
    if (errors.length) {
      const all = errors.splice(0);
      throw new Error(`webgpu device error (${all.length} since the last read; the results are not valid): ${all[0].split("\n")[0]}`);
    }
    return values;
  };
}

async function tryBackend(name: BackendChoice, explicit: boolean): Promise<BackendAttempt & { adapter?: AdapterInfo }> {
  try {
    switch (name) {
      case "tfjs-node-gpu":
      case "tfjs-node": {
        const pkg = name === "tfjs-node-gpu" ? "@tensorflow/tfjs-node-gpu" : "@tensorflow/tfjs-node";
        const problem = nativePackageProblem(pkg);
        if (problem) return { name, ok: false, detail: problem };
        require(pkg);
        // The real package registers the native backend as "tensorflow" when it loads.
        if (!tf.findBackendFactory("tensorflow")) return { name, ok: false, detail: `${pkg} loaded but registered no "tensorflow" backend` };
        const ok = await tf.setBackend("tensorflow");
        return { name, ok, detail: ok ? `${pkg} loaded` : `${pkg} failed to initialise` };
      }
      case "webgpu": {
        const adapter = await probeWebGPU();
        if (!adapter) return { name, ok: false, detail: webgpuMissing };
        const who = [adapter.vendor, adapter.architecture, adapter.description].filter((s) => s).join(" / ");
        if (!explicit && isSoftwareAdapter(adapter)) return { name, ok: false, detail: `only a software adapter (${who}), slower than wasm: STUDY_BACKEND=webgpu uses it` };
        require("@tensorflow/tfjs-backend-webgpu");
        const fixes = fixWebGPUKernels();
        const ok = await tf.setBackend("webgpu");
        if (ok) {
          explainSyncReads(tf.backend());
          failReadsOnDeviceErrors(tf.backend());
        }
        return { name, ok, detail: ok ? `adapter ${who || "(no info)"}; kernel fixes: ${fixes.join(", ") || "none"}` : "webgpu backend failed to initialise", adapter };
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
    const a = await tryBackend(name, Boolean(requested));
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
    if (name === "tfjs-node" && nativePackageProblem("@tensorflow/tfjs-node")) continue;
    out.push(name);
  }
  return out;
}
