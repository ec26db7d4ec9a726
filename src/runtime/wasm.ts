// Multi-threaded tfjs-backend-wasm in Node.
//
// The package ships a threaded-SIMD build whose emscripten glue runs pthreads on worker_threads,
// but tfjs never uses it in Node: WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false there
// (tensorflow/tfjs#3830), and its init() hands the glue a Blob-URL worker and a Blob main script,
// which worker_threads cannot load. So we run the glue ourselves:
//   - the pthread worker script (shipped as a JS string) is written once to a file in the temp dir;
//   - the main script is given by path (the worker `importScripts` it with fs + eval);
//   - the XNNPACK pool size is clamped in C++ to emscripten_num_logical_cores()/2 (a guess at
//     hyper-threading), so we answer that import with 2 x the thread count we want;
//   - pool threads are worker_threads that hold the event loop open: we unref them so the
//     process exits when its work is done.
// The result is registered as tfjs's `wasm` backend (the kernels are registered under that name),
// so everything else is unchanged. A thread count of 1 keeps the stock single-threaded backend.
//
// Separately, and for any thread count, runtime/wasm-kernels replaces the stock kernels that are
// slow for a ViT (STUDY_WASM_STOCK_KERNELS=1 keeps them, for baselines).
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic } from "../ground/atomic";
import { installSimdKernels, installWasmKernels } from "./wasm-kernels";
import { wasmApi } from "./wasm-simd";

type WasmPkg = typeof import("@tensorflow/tfjs-backend-wasm");
type BackendWasmModule = ConstructorParameters<WasmPkg["BackendWasm"]>[0];

/** The part of the emscripten Module we use. */
interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  tfjs?: unknown;
  PThread: {
    runningWorkers: { unref(): void }[];
    terminateAllThreads(): void;
  };
}

interface FactoryConfig {
  locateFile(file: string, prefix: string): string;
  mainScriptUrlOrBlob: string;
  instantiateWasm(imports: { env: Record<string, unknown> }, receive: (instance: object, module: object) => void): object;
  onAbort(what: unknown): void;
  printErr(text: string): void;
}

export interface WasmSetup {
  /** Threads XNNPACK runs on (1 = single-threaded). */
  threads: number;
  /** What was asked for (STUDY_WASM_THREADS, the caller, or the core count). */
  requested: number;
  /** Which binary runs. */
  binary: "threaded-simd" | "simd" | "plain";
  /** One sentence: why this setup (including why threads are off, when they are). */
  reason: string;
  /** The kernel fixes in place (runtime/wasm-kernels; [] = stock kernels). */
  kernels: string[];
}

/** XNNPACK's pthread pool is capped at 8 in the C++ backend; the glue pre-spawns 8 workers. */
export const MAX_WASM_THREADS = 8;
const INIT_TIMEOUT_MS = 60_000;

let setup: WasmSetup | undefined;

function wasmDir(): string {
  return path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "wasm-out");
}

/** First line of an error's message (tfjs-wasm rejects with plain `{message}` objects too). */
export function errorText(e: unknown): string {
  const msg = e instanceof Error ? e.message : typeof e === "object" && e && "message" in e ? String(e.message) : String(e);
  return msg.split("\n")[0].slice(0, 200);
}

/** Logical cores available to this process. */
export function coreCount(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

/**
 * Threads to use: the argument, else STUDY_WASM_THREADS, else one per core; capped at 8.
 * A value that is not a positive integer is an error naming its source.
 */
export function requestedWasmThreads(threads?: number): number {
  const env = process.env.STUDY_WASM_THREADS;
  let n = threads;
  if (n === undefined && env !== undefined && env !== "") {
    n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`STUDY_WASM_THREADS=${env} is not a positive integer`);
  }
  if (n === undefined) n = coreCount();
  if (!Number.isInteger(n) || n < 1) throw new Error(`wasm threads must be a positive integer, got ${n}`);
  return Math.min(n, MAX_WASM_THREADS);
}

/** Why this runtime cannot run wasm threads, or undefined when it can. */
export function threadsUnsupported(): string | undefined {
  if (typeof SharedArrayBuffer === "undefined") return "SharedArrayBuffer is not available";
  // A module with a shared memory and an atomic load: valid only where wasm threads exist.
  const threadsProbe = new Uint8Array([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0, 26, 11,
  ]);
  if (!wasmApi.validate(threadsProbe)) return "WebAssembly threads (atomics) are not supported";
  try {
    require("node:worker_threads");
  } catch {
    return "worker_threads is not available";
  }
  return undefined;
}

/**
 * The pthread worker script as a file. The package ships it as a JS string (tfjs loads it from a
 * Blob URL); its newlines inside string literals must stay escaped, as tfjs does.
 */
function workerScriptFile(): string {
  const contents = (require(path.join(wasmDir(), "tfjs-backend-wasm-threaded-simd.worker.js")) as { wasmWorkerContents: string })
    .wasmWorkerContents.replace(/\n/g, "\\n");
  const hash = crypto.createHash("sha256").update(contents).digest("hex").slice(0, 12);
  const file = path.join(os.tmpdir(), `tfjs-backend-wasm-${tf.version.tfjs}-threaded-simd-${hash}.worker.js`);
  // Atomic: concurrent processes never see a half-written file.
  if (!fs.existsSync(file)) writeFileAtomic(file, contents);
  return file;
}

/** Instantiates the threaded-SIMD module with `threads` pool threads and wraps it as a tfjs backend. */
async function createThreadedBackend(pkg: WasmPkg, threads: number): Promise<tf.KernelBackend> {
  const dir = wasmDir();
  const mainScript = path.join(dir, "tfjs-backend-wasm-threaded-simd.js");
  const wasmFile = path.join(dir, "tfjs-backend-wasm-threaded-simd.wasm");
  const workerFile = workerScriptFile();
  const factory = require(mainScript) as (cfg: FactoryConfig) => Promise<ThreadedModule>;
  let aborted: string | undefined;
  const config: FactoryConfig = {
    locateFile: (file) => (file.endsWith(".worker.js") ? workerFile : path.join(dir, file)),
    mainScriptUrlOrBlob: mainScript,
    instantiateWasm: (imports, receive) => {
      // C++ caps the pool at num_logical_cores / 2; make that cap equal `threads`.
      imports.env.emscripten_num_logical_cores = () => 2 * threads;
      wasmApi.instantiate(fs.readFileSync(wasmFile), imports).then(
        (r) => receive(r.instance, r.module),
        (e: unknown) => config.onAbort(e),
      );
      return {}; // exports arrive through `receive`
    },
    onAbort: (what) => {
      aborted = errorText(what);
    },
    printErr: (text) => {
      aborted ??= text;
      console.warn(text);
    },
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`threaded wasm did not start within ${INIT_TIMEOUT_MS / 1000} s${aborted ? `: ${aborted}` : ""}`)), INIT_TIMEOUT_MS);
    timer.unref();
  });
  let module: ThreadedModule;
  try {
    module = await Promise.race([factory(config), timeout]);
  } catch (e) {
    // The config object is the emscripten Module: stop whatever workers it started.
    (config as Partial<ThreadedModule>).PThread?.terminateAllThreads();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  module.tfjs = {
    init: module.cwrap("init", null, []),
    initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
    getThreadsCount: module.cwrap("get_threads_count", "number", []),
    registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
    disposeData: module.cwrap("dispose_data", null, ["number"]),
    dispose: module.cwrap("dispose", null, []),
  };
  pkg.setThreadsCount(threads);
  const backend = new pkg.BackendWasm(module as unknown as BackendWasmModule); // creates the pool
  // Pool threads wait on futexes forever; a ref'd worker would keep the process alive.
  for (const w of module.PThread.runningWorkers) w.unref();
  return backend;
}

/**
 * Makes `tf.setBackend("wasm")` start the threaded-SIMD build with the requested thread count
 * (see `requestedWasmThreads`), or the stock single-threaded build when one thread is asked for or
 * threads cannot run here. Call before the wasm backend is first initialised; later calls return
 * the first setup (a process has one wasm instance: its kernels bind to it).
 */
export function configureWasm(opts: { threads?: number } = {}): WasmSetup {
  if (setup) return setup;
  const pkg = require("@tensorflow/tfjs-backend-wasm") as WasmPkg;
  const requested = requestedWasmThreads(opts.threads);
  const engine = tf.engine();
  const kernels = installWasmKernels();
  const fixes = kernels.length ? `; kernel fixes: ${kernels.join(", ")}` : "; stock kernels";
  const single = (why: string): WasmSetup => ({ threads: 1, requested, binary: "simd", reason: why + fixes, kernels });
  if (engine.registry["wasm"]) return (setup = single("single-threaded SIMD: the stock wasm backend was already initialised"));
  const why = requested === 1 ? "1 thread requested" : threadsUnsupported();
  const stock = engine.registryFactory["wasm"];
  const s: WasmSetup = why ? single(`single-threaded SIMD: ${why}`) : { threads: requested, requested, binary: "threaded-simd", reason: "", kernels };
  if (!why) s.reason = `threaded SIMD, ${requested} threads (${process.env.STUDY_WASM_THREADS ? "STUDY_WASM_THREADS" : opts.threads ? "caller" : `${coreCount()} cores`})${fixes}`;
  setup = s;

  const threadedOrStock = async (): Promise<tf.KernelBackend> => {
    if (why) return stock.factory() as Promise<tf.KernelBackend>;
    try {
      const backend = await createThreadedBackend(pkg, requested);
      const got = pkg.getThreadsCount();
      s.threads = got;
      if (got !== requested) s.reason += `; XNNPACK runs ${got}`;
      tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", got > 1);
      return backend;
    } catch (e) {
      // Fall back to the stock single-threaded factory, saying why.
      Object.assign(s, single(`single-threaded SIMD: threaded init failed (${errorText(e)})`));
      return stock.factory() as Promise<tf.KernelBackend>;
    }
  };
  tf.removeBackend("wasm");
  tf.registerBackend(
    "wasm",
    async () => {
      const backend = await threadedOrStock();
      // The SIMD kernels work on the heap of this backend instance, so they load after it.
      try {
        const added = await installSimdKernels(backend, s.threads);
        s.kernels = [...s.kernels, ...added];
        if (added.length) s.reason += `${s.kernels.length === added.length ? "; kernel fixes: " : ", "}${added.join(", ")}`;
      } catch (e) {
        s.reason += `; SIMD kernels not loaded (${errorText(e)})`;
      }
      return backend;
    },
    stock?.priority ?? 2,
  );
  return setup;
}

/** The wasm setup of this process, once configured. */
export function wasmSetup(): WasmSetup | undefined {
  return setup;
}

/** Bytes of the wasm backend's heap, or undefined on another backend. */
export function wasmHeapBytes(): number | undefined {
  if (tf.getBackend() !== "wasm") return undefined;
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.length;
}

/**
 * A wasm trap ("memory access out of bounds", "Aborted()") says nothing useful by itself. On this
 * backend it almost always means the heap is exhausted: wasm32 memory stops at 4 GiB, and a
 * training step keeps every activation of the tape (measured: vit-cifar-tiny at batch 128 needs
 * more). Returns an error that says so and what to do; other errors come back unchanged.
 */
export function explainWasmTrap(e: unknown, what: string): unknown {
  const msg = e instanceof Error ? e.message : String(e);
  if (tf.getBackend() !== "wasm" || !/memory access out of bounds|Aborted\(|Cannot enlarge memory|out of memory/i.test(msg)) return e;
  const heap = wasmHeapBytes();
  const gib = heap === undefined ? "unknown" : (heap / 2 ** 30).toFixed(2);
  return new Error(
    `${what}: the wasm backend trapped (${msg.split("\n")[0]}) with a ${gib} GiB heap. wasm32 memory ends at 4 GiB, ` +
      `so this is almost certainly memory exhaustion: lower the batch size, or use tfjs-node / webgpu. ` +
      `The wasm module is unusable after a trap: restart the process (or the notebook kernel).`,
  );
}
