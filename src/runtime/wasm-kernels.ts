// Faster kernels for tfjs-backend-wasm 4.22, installed over the stock ones (same names, same
// results up to float rounding: summation order, erf within 2e-7), in two stages:
//   - installWasmKernels, before the backend starts: the matmul route, shared Identity, Erf;
//   - installSimdKernels, once it has started: kernels on the SIMD module of wasm-simd.ts, which
//     works on this backend's heap (matmuls through the route, Sum, copies, and the fused GELU and
//     LayerNorm of model/ops), split over worker threads where the heap is shared.
// Each fixes a slow path that a ViT training step hits; `study bench --cpu --profile` shows the
// per-kernel time, STUDY_WASM_STOCK_KERNELS=1 the stock kernels (the "before" of the benchmark).
import * as tf from "@tensorflow/tfjs";
import { FusedKernel } from "./fused-kernels";
import { isShared, loadSimdKernels, type SimdKernels, type WasmMemory } from "./wasm-simd";
import { type ParallelKernels, SimdPool } from "./wasm-simd-pool";

/** The internals of tfjs-backend-wasm's BackendWasm that the matmul route reaches into (4.22). */
interface WasmBackendInternals {
  wasm: {
    HEAPU8: Uint8Array;
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    /** The C kernel: ids of a, b and out, with rank-3 shapes as pointers to uint32 triples. */
    _BatchMatMul(aId: number, aShape: number, aRank: number, bId: number, bShape: number, bRank: number, transposeA: number, transposeB: number, outId: number): void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
    /** The heap: the emscripten Module keeps it here in the threaded build, as asm.memory otherwise. */
    wasmMemory?: WasmMemory;
    asm?: { memory?: WasmMemory };
  };
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/**
 * A batched product [n, M, K] x [n, K, N] as n XNNPACK products, one per slice: each slice of
 * a, b and the output is registered with the C side as a tensor that views the parent's memory
 * (no copy), multiplied by the kernel's XNNPACK path, and unregistered (which frees the packed
 * weights XNNPACK cached for it; the memory itself stays with the parent tensors).
 */
function sliceWiseMatMul(kb: WasmBackendInternals, a: tf.TensorInfo, b: tf.TensorInfo, n: number, M: number, K: number, N: number): tf.TensorInfo {
  const mod = kb.wasm;
  const out = kb.makeOutput([n, M, N], "float32");
  const aOff = kb.dataIdMap.get(a.dataId).memoryOffset;
  const bOff = kb.dataIdMap.get(b.dataId).memoryOffset;
  const oOff = kb.dataIdMap.get(out.dataId).memoryOffset;
  const shapes = mod._malloc(24) >>> 0;
  new Uint32Array(mod.HEAPU8.buffer, shapes, 6).set([1, M, K, 1, K, N]);
  try {
    for (let i = 0; i < n; i++) {
      const ia = kb.dataIdNextNumber++;
      const ib = kb.dataIdNextNumber++;
      const io = kb.dataIdNextNumber++;
      mod.tfjs.registerTensor(ia, M * K, aOff + 4 * i * M * K);
      mod.tfjs.registerTensor(ib, K * N, bOff + 4 * i * K * N);
      mod.tfjs.registerTensor(io, M * N, oOff + 4 * i * M * N);
      mod._BatchMatMul(ia, shapes, 3, ib, shapes + 12, 3, 0, 0, io);
      mod.tfjs.disposeData(ia);
      mod.tfjs.disposeData(ib);
      mod.tfjs.disposeData(io);
    }
  } finally {
    mod._free(shapes);
  }
  return out;
}

/**
 * The SIMD module's matmul and GELU kernels, on the calling thread and the pool's workers (threaded
 * build) or on the calling thread alone. Set by installSimdKernels once the module is loaded.
 */
let parallel: ParallelKernels | undefined;

/** k-block of the SIMD matmul: panels of 256 x 8 floats of b and 4 x 256 of a stay in L1/L2. */
const K_BLOCK = 256;

/**
 * tfjs-backend-wasm 4.22 sends BatchMatMul to XNNPACK (SIMD, on the thread pool) only when neither
 * operand is transposed and neither has a batch; anything else runs a scalar triple loop that is
 * 6-20x slower and single-threaded (batch_mat_mul_impl.cc). A linear layer on PyTorch-layout
 * weights (x W^T), both gradients of every matmul (dy W, x^T dy) and every attention product take
 * that path. This wraps the kernel so that every float32 product with M >= 4 and N >= 8 runs the
 * SIMD module's matmul once it is loaded (about XNNPACK's throughput on plain products, see
 * bench/matmul.ts; batched products in one call, a^T b without transposing a, b transposed first:
 * a copy of ~5% of the product's time). Otherwise (the module not loaded, or thin products) transposed operands are
 * transposed first and XNNPACK runs: one product (a's batch folded into rows when b has none; out^T
 * = b^T a^T when the output is wider than tall, so that XNNPACK packs the smaller operand) or one
 * per slice (sliceWiseMatMul). Broadcasts other than "b has no batch" keep the stock kernel.
 * Results differ from the loop only by summation order. Returns whether the route is in place.
 */
function routeMatMuls(): boolean {
  const orig = tf.getKernel("BatchMatMul", "wasm");
  const transpose = tf.getKernel("Transpose", "wasm");
  const reshape = tf.getKernel("Reshape", "wasm");
  if (!orig || !transpose || !reshape) return false;
  const size = tf.util.sizeFromShape;
  const routed: tf.KernelFunc = ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    const nA = size(batchA);
    const nB = size(batchB);
    const sameBatch = batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
    if (!(sameBatch || nB === 1) || size(a.shape) === 0 || size(b.shape) === 0) return orig.kernelFunc({ inputs, backend, attrs });
    const last = (t: tf.TensorInfo, i: number): number => t.shape[t.shape.length - i];
    const M = transposeA ? last(a, 1) : last(a, 2);
    const K = transposeA ? last(a, 2) : last(a, 1);
    const N = transposeB ? last(b, 2) : last(b, 1);
    const simd = parallel !== undefined && a.dtype === "float32" && b.dtype === "float32" && M >= 4 && N >= 8;
    if (!simd && !transposeA && !transposeB && nA === 1 && nB === 1) return orig.kernelFunc({ inputs, backend, attrs }); // XNNPACK's own path

    const kb = backend as tf.KernelBackend;
    const temps: tf.TensorInfo[] = [];
    const keep = (t: tf.TensorInfo): tf.TensorInfo => (temps.push(t), t);
    const swapLast = (t: tf.TensorInfo): tf.TensorInfo => {
      const perm = t.shape.map((_, i) => i);
      [perm[perm.length - 2], perm[perm.length - 1]] = [perm[perm.length - 1], perm[perm.length - 2]];
      return transpose.kernelFunc({ inputs: { x: t }, backend, attrs: { perm } }) as tf.TensorInfo;
    };
    const reshaped = (t: tf.TensorInfo, shape: number[]): tf.TensorInfo => keep(reshape.kernelFunc({ inputs: { x: t }, backend, attrs: { shape } }) as tf.TensorInfo);
    const outShape = [...(nA >= nB ? batchA : batchB), M, N];
    const noTranspose = { ...attrs, transposeA: false, transposeB: false };

    /** x [n, m, k] (stored [n, k, m] when xT) times y [n, k, nc] on the SIMD module: a new [n, m, nc]. */
    const simdProduct = (x: tf.TensorInfo, xT: boolean, y: tf.TensorInfo, n: number, m: number, k: number, nc: number): tf.TensorInfo => {
      const out = makeOutput(kb, [n, m, nc]);
      const kc = m % 4 === 0 && nc % 8 === 0 ? K_BLOCK : k; // k-blocks need non-overlapping output blocks
      parallel!.batchMatMul(heapOffset(kb, x), heapOffset(kb, y), heapOffset(kb, out), n, m, k, nc, xT ? 4 : 4 * k, xT ? 4 * m : 4, kc);
      return out;
    };

    try {
      let out: tf.TensorInfo;
      const bt = (): tf.TensorInfo => (transposeB ? keep(swapLast(b)) : b); // [...batch|-, K, N]
      const at = (): tf.TensorInfo => (transposeA ? keep(swapLast(a)) : a); // [...batch, M, K]
      if (simd) {
        // b without a batch: a's batch folds into rows (a untransposed, so that its rows are contiguous).
        out = nB === 1 && nA > 1 ? simdProduct(at(), false, bt(), 1, nA * M, K, N) : simdProduct(a, transposeA, bt(), nA, M, K, N);
      } else if (nA === 1 && nB === 1 && N > M) {
        // Wide output: XNNPACK packs its second operand on every call, so pack the smaller one: out^T = b^T a^T.
        const bT = transposeB ? b : keep(swapLast(b)); // [N,K]
        const aT = transposeA ? a : keep(swapLast(a)); // [K,M]
        out = swapLast(keep(orig.kernelFunc({ inputs: { a: bT, b: aT }, backend, attrs: noTranspose }) as tf.TensorInfo)); // [M,N]
      } else if (nB === 1) {
        out = orig.kernelFunc({ inputs: { a: reshaped(at(), [1, nA * M, K]), b: reshaped(bt(), [1, K, N]) }, backend, attrs: noTranspose }) as tf.TensorInfo;
      } else {
        out = sliceWiseMatMul(backend as unknown as WasmBackendInternals, at(), bt(), nA, M, K, N);
      }
      const final = reshape.kernelFunc({ inputs: { x: out }, backend, attrs: { shape: outShape } }) as tf.TensorInfo;
      kb.disposeData(out.dataId);
      return final;
    } finally {
      for (const t of temps) kb.disposeData(t.dataId);
    }
  };
  replaceKernel(orig, routed);
  return true;
}

/**
 * Identity (what the engine's clone runs, e.g. to keep every saved kernel output for the backward
 * pass: ~360 clones per ViT training step) copies the data on wasm. Tensors are immutable and
 * every wasm kernel writes a fresh output, so sharing the data with a reference count is safe; the
 * cpu backend does the same.
 */
function shareIdentity(): boolean {
  const orig = tf.getKernel("Identity", "wasm");
  if (!orig) return false;
  const shared: tf.KernelFunc = ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    if (x.dtype === "string") return orig.kernelFunc({ inputs, backend, attrs });
    (backend as tf.KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  replaceKernel(orig, shared);
  return true;
}

/** ys = erf(xs), Eigen's rational approximation; a top-level function so that V8 optimises it once. */
function erfInto(xs: Float32Array, ys: Float32Array): void {
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    const v = x > 4 ? 4 : x < -4 ? -4 : x; // NaN passes through
    const v2 = v * v;
    let p = v2 * -2.72614225801306e-10 + 2.77068142495902e-8;
    p = v2 * p - 2.10102402082508e-6;
    p = v2 * p - 5.69250639462346e-5;
    p = v2 * p - 7.34990630326855e-4;
    p = v2 * p - 2.95459980854025e-3;
    p = v2 * p - 1.60960333262415e-2;
    let q = v2 * -1.45660718464996e-5 - 2.13374055278905e-4;
    q = v2 * q - 1.68282697438203e-3;
    q = v2 * q - 7.37332916720468e-3;
    q = v2 * q - 1.42647390514189e-2;
    ys[i] = (v * p) / q;
  }
}

/**
 * Erf is a scalar libm loop on wasm (~10 ns per element; GELU runs it on every MLP activation).
 * This is Eigen's / XLA's float rational approximation (absolute error < 2e-7, erf(|x| >= 4) = +-1
 * in float32) as a JS loop over the wasm heap, evaluated in float64: 2.5-5x faster.
 */
function fastErf(): boolean {
  const orig = tf.getKernel("Erf", "wasm");
  if (!orig) return false;
  const erf: tf.KernelFunc = ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    if (x.dtype !== "float32") return orig.kernelFunc({ inputs, backend, attrs });
    const be = backend as tf.KernelBackend;
    const out = makeOutput(be, x.shape);
    const n = tf.util.sizeFromShape(x.shape);
    // Views after makeOutput: its malloc may have grown (and replaced) the heap's buffer.
    const buf = (backend as unknown as WasmBackendInternals).wasm.HEAPU8.buffer;
    const xs = new Float32Array(buf, heapOffset(be, x), n);
    const ys = new Float32Array(buf, heapOffset(be, out), n);
    erfInto(xs, ys);
    return out;
  };
  replaceKernel(orig, erf);
  return true;
}

/** Byte offset of a tensor's data in the wasm heap. */
function heapOffset(backend: tf.KernelBackend, t: tf.TensorInfo): number {
  return (backend as unknown as WasmBackendInternals).dataIdMap.get(t.dataId).memoryOffset;
}

/** A new output tensor on the wasm heap (uninitialised). */
function makeOutput(backend: tf.KernelBackend, shape: number[], dtype: tf.DataType = "float32"): tf.TensorInfo {
  return (backend as unknown as WasmBackendInternals).makeOutput(shape, dtype);
}

/**
 * The fused GELU and LayerNorm kernels of model/ops (forward and backward) on the SIMD module.
 * model/ops only calls them for float32 inputs whose last axis is a multiple of 4.
 */
function fusedKernels(simd: SimdKernels, threaded: ParallelKernels): tf.KernelConfig[] {
  const rowsOf = (x: tf.TensorInfo): [number, number] => {
    const d = x.shape[x.shape.length - 1];
    return [tf.util.sizeFromShape(x.shape) / d, d];
  };
  type Inputs = Record<string, tf.TensorInfo>;
  const kernel = (kernelName: string, run: (inputs: Inputs, backend: tf.KernelBackend, attrs: tf.NamedAttrMap) => tf.TensorInfo | tf.TensorInfo[]): tf.KernelConfig => ({
    kernelName,
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => run(inputs as Inputs, backend as tf.KernelBackend, attrs ?? {}),
  });
  return [
    kernel(FusedKernel.gelu, ({ x }, be) => {
      const y = makeOutput(be, x.shape);
      threaded.gelu(heapOffset(be, x), heapOffset(be, y), tf.util.sizeFromShape(x.shape));
      return y;
    }),
    kernel(FusedKernel.geluGrad, ({ x, dy }, be) => {
      const dx = makeOutput(be, x.shape);
      threaded.geluGrad(heapOffset(be, x), heapOffset(be, dy), heapOffset(be, dx), tf.util.sizeFromShape(x.shape));
      return dx;
    }),
    kernel(FusedKernel.layerNorm, ({ x, weight, bias }, be, { eps }) => {
      const y = makeOutput(be, x.shape);
      simd.layerNorm(heapOffset(be, x), heapOffset(be, weight), heapOffset(be, bias), heapOffset(be, y), ...rowsOf(x), eps as number);
      return y;
    }),
    kernel(FusedKernel.layerNormGrad, ({ dy, x, weight }, be, { eps }) => {
      const [rows, d] = rowsOf(x);
      const dx = makeOutput(be, x.shape);
      const dweight = makeOutput(be, [d]);
      const dbias = makeOutput(be, [d]);
      simd.layerNormGrad(heapOffset(be, dy), heapOffset(be, x), heapOffset(be, weight), heapOffset(be, dx), heapOffset(be, dweight), heapOffset(be, dbias), rows, d, eps as number);
      return [dx, dweight, dbias];
    }),
  ];
}

/**
 * Sum over every axis but the last (bias and LayerNorm-parameter gradients: [B, T, D] -> [D]):
 * the stock kernel transposes the input and then reduces each column; this adds rows into one
 * accumulator row with SIMD. Other reductions keep the stock kernel.
 */
function sumLeadingAxes(simd: SimdKernels): boolean {
  const orig = tf.getKernel("Sum", "wasm");
  if (!orig) return false;
  const sum: tf.KernelFunc = ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = attrs as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const d = x.shape[rank - 1];
    const axes = [...tf.util.parseAxisParam(axis, x.shape)].sort((p, q) => p - q);
    const leading = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== "float32" || d % 4 !== 0 || d === 0) return orig.kernelFunc({ inputs, backend, attrs });
    const be = backend as tf.KernelBackend;
    const out = makeOutput(be, keepDims ? [...x.shape.slice(0, -1).map(() => 1), d] : [d]);
    simd.sumRows(heapOffset(be, x), heapOffset(be, out), tf.util.sizeFromShape(x.shape) / d, d);
    return out;
  };
  replaceKernel(orig, sum);
  return true;
}

/**
 * Unpack, Pack and Concat as block copies inside the heap. The stock Unpack slices each output
 * through readSync, which copies the whole input every time (13 ms to split a ViT-micro qkv
 * tensor in three), and Concat/Pack copy one typed-array subarray per block from JS (one per row
 * when stacking along axis 1). Other dtypes keep the stock kernels.
 */
function copyKernels(simd: SimdKernels): boolean {
  const unpack = tf.getKernel("Unpack", "wasm");
  const pack = tf.getKernel("Pack", "wasm");
  const concat = tf.getKernel("Concat", "wasm");
  if (!unpack || !pack || !concat) return false;
  const size = tf.util.sizeFromShape;
  const is32 = (t: tf.TensorInfo): boolean => t.dtype === "float32" || t.dtype === "int32";

  replaceKernel(unpack, ({ inputs, backend, attrs }) => {
    const { value } = inputs as { value: tf.TensorInfo };
    if (!is32(value)) return unpack.kernelFunc({ inputs, backend, attrs });
    const be = backend as tf.KernelBackend;
    const axis = tf.util.parseAxisParam((attrs as { axis: number }).axis, value.shape)[0];
    const n = value.shape[axis];
    const outer = size(value.shape.slice(0, axis));
    const inner = size(value.shape.slice(axis + 1));
    const outShape = value.shape.filter((_, i) => i !== axis);
    const src = heapOffset(be, value);
    return Array.from({ length: n }, (_, i) => {
      const out = makeOutput(be, outShape, value.dtype);
      if (inner > 0 && outer > 0) simd.copyBlocks(src + 4 * i * inner, 4 * n * inner, heapOffset(be, out), 4 * inner, outer, 4 * inner);
      return out;
    });
  });

  /** Concatenation along `axis` of same-rank tensors (shapes checked by the op). */
  const concatAlong = (xs: tf.TensorInfo[], axis: number, be: tf.KernelBackend, outShape: number[]): tf.TensorInfo => {
    const out = makeOutput(be, outShape, xs[0].dtype);
    const outer = size(outShape.slice(0, axis));
    const rowBytes = 4 * size(outShape.slice(axis));
    let offset = heapOffset(be, out);
    for (const x of xs) {
      const bytes = 4 * size(x.shape.slice(axis));
      if (bytes > 0 && outer > 0) simd.copyBlocks(heapOffset(be, x), bytes, offset, rowBytes, outer, bytes);
      offset += bytes;
    }
    return out;
  };

  replaceKernel(concat, ({ inputs, backend, attrs }) => {
    const xs = inputs as unknown as tf.TensorInfo[];
    if (xs.length < 2 || !xs.every((x) => x.dtype === xs[0].dtype && is32(x))) return concat.kernelFunc({ inputs, backend, attrs });
    const axis = tf.util.parseAxisParam((attrs as { axis: number }).axis, xs[0].shape)[0];
    const outShape = tf.backend_util.computeOutShape(xs.map((x) => x.shape), axis);
    return concatAlong(xs, axis, backend as tf.KernelBackend, outShape);
  });

  replaceKernel(pack, ({ inputs, backend, attrs }) => {
    const xs = inputs as unknown as tf.TensorInfo[];
    if (xs.length < 2 || !xs.every((x) => x.dtype === xs[0].dtype && is32(x))) return pack.kernelFunc({ inputs, backend, attrs });
    const rank = xs[0].shape.length + 1;
    const axis = tf.util.parseAxisParam((attrs as { axis: number }).axis, new Array<number>(rank).fill(1))[0];
    // Stacking is concatenation of [..., 1, ...]-expanded inputs: only the shapes change.
    const expanded = xs.map((x) => ({ ...x, shape: [...x.shape.slice(0, axis), 1, ...x.shape.slice(axis)] }));
    const outShape = [...xs[0].shape.slice(0, axis), xs.length, ...xs[0].shape.slice(axis)];
    return concatAlong(expanded, axis, backend as tf.KernelBackend, outShape);
  });
  return true;
}

/**
 * Assembles the SIMD module on the initialised wasm backend's heap and registers the kernels
 * that use it: the fused ops of model/ops, Sum over leading axes, copies and (through the matmul
 * route) matmuls, the latter split over `threads` threads when the heap is shared. Returns their
 * names ([] with STUDY_WASM_STOCK_KERNELS=1). Throws when the module cannot be built (the caller
 * says so, and the ops keep their compositions).
 */
export async function installSimdKernels(backend: tf.KernelBackend, threads: number): Promise<string[]> {
  if (process.env.STUDY_WASM_STOCK_KERNELS === "1") return [];
  const mod = (backend as unknown as WasmBackendInternals).wasm;
  const memory = mod.wasmMemory ?? mod.asm?.memory;
  if (!memory) throw new Error("the wasm backend exposes no WebAssembly.Memory");
  const { kernels, module } = await loadSimdKernels(memory);
  const names = ["gelu-layernorm-simd"];
  let threaded: ParallelKernels = kernels;
  if (isShared(memory) && threads > 1) {
    // Control blocks live in the heap (the workers see only it); never freed, like the pool.
    threaded = new SimdPool(kernels, module, memory, mod._malloc(SimdPool.controlBytes(threads - 1)) >>> 0, threads - 1);
    names.push(`simd-pool-${threads}-threads`);
  }
  for (const k of fusedKernels(kernels, threaded)) {
    if (tf.getKernel(k.kernelName, "wasm")) tf.unregisterKernel(k.kernelName, "wasm");
    tf.registerKernel(k);
  }
  if (sumLeadingAxes(kernels)) names.push("sum-leading-simd");
  if (copyKernels(kernels)) names.push("pack-unpack-copy");
  if (installed?.includes("matmul-route")) names.push("matmul-simd");
  parallel = threaded;
  return names;
}

function replaceKernel(orig: tf.KernelConfig, kernelFunc: tf.KernelFunc): void {
  tf.unregisterKernel(orig.kernelName, orig.backendName);
  tf.registerKernel({ ...orig, kernelFunc });
}

/** The fixes, by name; each returns whether it is in place. */
const FIXES: Record<string, () => boolean> = {
  "matmul-route": routeMatMuls,
  "identity-shared": shareIdentity,
  "erf-rational": fastErf,
};

let installed: string[] | undefined;

/**
 * Installs the kernel fixes over the wasm backend's kernels (before or after it initialises) and
 * returns their names; STUDY_WASM_STOCK_KERNELS=1 keeps the stock kernels and returns []. Call
 * once per process: later calls return the first answer.
 */
export function installWasmKernels(): string[] {
  if (installed) return installed;
  if (process.env.STUDY_WASM_STOCK_KERNELS === "1") return (installed = []);
  return (installed = Object.entries(FIXES)
    .filter(([, install]) => install())
    .map(([name]) => name));
}
