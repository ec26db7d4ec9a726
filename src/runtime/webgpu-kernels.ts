// Kernels for tfjs-backend-webgpu 4.22, registered once when the webgpu backend starts:
//   - a fix found running it on a real WebGPU implementation (Dawn over Vulkan; Mesa's llvmpipe
//     here): AddN in chunks the device can bind;
//   - the fused GELU and LayerNorm of model/ops (one pass forward; GELU's backward one pass,
//     LayerNorm's three), where the compositions run 5-11 elementwise and reduction kernels each,
//     every one a pass over the activations. STUDY_WEBGPU_STOCK_KERNELS=1 leaves them out (the
//     "before" of a benchmark);
//   - BatchMatMul in 64x64 output tiles, only with STUDY_WEBGPU_MATMUL=tiled until a GPU has
//     measured it against tfjs's 32x32 kernel (bench/gpu-bench.ts measures both).
import * as tf from "@tensorflow/tfjs";
import { FusedKernel } from "./fused-kernels";

/** The parts of tfjs-backend-webgpu's WebGPUBackend these kernels use (4.22). */
interface Backend extends tf.KernelBackend {
  device: GPUDevice;
  runWebGPUProgram(program: Program, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: { type: "float32" | "int32"; data: number[] }[]): tf.TensorInfo;
}

/** tfjs-backend-webgpu's WebGPUProgram: the backend declares the inputs, output and uniforms around getUserCode(). */
interface Program {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  variableNames: string[];
  workgroupSize: [number, number, number];
  size?: boolean;
  uniforms?: string;
  getUserCode(): string;
}

interface WebGPUUtil {
  flatDispatchLayout(shape: number[]): { x: number[] };
  computeDispatch(layout: { x: number[] }, shape: number[], workgroupSize: [number, number, number]): [number, number, number];
}

const FIXED = Symbol.for("study.webgpuKernelFixes");

/**
 * AddN binds every input as a storage buffer of one shader, but a device allows only
 * `limits.maxStorageBuffersPerShaderStage` of them (8 unless asked for more; one is the output),
 * so the global gradient norm over a model's 50-odd gradients failed to compile ("The number of
 * storage buffers (57) in the Compute stage exceeds the maximum per-stage limit (8)"). Sums chunks
 * the device can bind, then the partial sums, as the backend's own Concat does.
 */
function chunkedAddN(addN: tf.KernelFunc): tf.KernelFunc {
  const run: tf.KernelFunc = (args) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const backend = args.backend as Backend;
    const max = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
    if (inputs.length <= max) return addN(args);
    const partials: tf.TensorInfo[] = [];
    for (let i = 0; i < inputs.length; i += max) {
      const chunk = inputs.slice(i, i + max);
      partials.push(chunk.length === 1 ? chunk[0] : (addN({ ...args, inputs: chunk as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo));
    }
    const out = run({ ...args, inputs: partials as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
    for (const p of partials) if (!inputs.includes(p)) backend.disposeData(p.dataId);
    return out;
  };
  return run;
}

// Erf as tfjs-webgpu's own Erf kernel computes it (Abramowitz and Stegun 7.1.26, |error| < 1.5e-7),
// so that the fused GELU and the composition agree to float rounding.
const ERF_WGSL = `
fn erfAS(a : f32) -> f32 {
  let t = 1.0 / (1.0 + ${tf.backend_util.ERF_P} * abs(a));
  let poly = ((((${tf.backend_util.ERF_A5} * t + ${tf.backend_util.ERF_A4}) * t + ${tf.backend_util.ERF_A3}) * t + ${tf.backend_util.ERF_A2}) * t + ${tf.backend_util.ERF_A1}) * t;
  return sign(a) * (1.0 - poly * exp(-a * a));
}`;

/** GELU (y = x Phi(x)) or its gradient (dx = dy (Phi(x) + x phi(x))), one thread per element. */
function geluProgram(util: WebGPUUtil, shape: number[], grad: boolean): Program {
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const layout = util.flatDispatchLayout(shape);
  return {
    outputShape: shape,
    shaderKey: grad ? "studyGeluGrad" : "studyGelu",
    dispatchLayout: layout,
    dispatch: util.computeDispatch(layout, shape, workgroupSize),
    variableNames: grad ? ["x", "dy"] : ["x"],
    workgroupSize,
    size: true,
    getUserCode: () => `${ERF_WGSL}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let x = getXByOutputIndex(index);
          let cdf = 0.5 * (1.0 + erfAS(x * ${Math.SQRT1_2}));
          ${grad
            ? `setOutputAtIndex(index, getDyByOutputIndex(index) * (cdf + x * exp(-0.5 * x * x) * ${1 / Math.sqrt(2 * Math.PI)}));`
            : "setOutputAtIndex(index, x * cdf);"}
        }
      }`,
  };
}

/**
 * One workgroup per row of x [R,D] (the softmax kernel's layout), with a tree reduction in
 * workgroup memory for each row sum. `kind`:
 *   forward  (x, weight, bias) -> y [R,D]
 *   stats    (x) -> [R,2]: mean and 1/sqrt(var + eps) (biased variance, as torch)
 *   inputGrad (dy, x, weight, stats) -> dx [R,D] = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w
 */
function layerNormRowProgram(shape: [number, number], kind: "forward" | "stats" | "inputGrad"): Program {
  const [R, D] = shape;
  const wg = D >= 2048 ? 256 : 64;
  const vars = { forward: ["x", "weight", "bias"], stats: ["x"], inputGrad: ["dy", "x", "weight", "stats"] }[kind];
  const reduce = (into: string) => `
        buf[tid] = ${into};
        workgroupBarrier();
        for (var half = ${wg / 2}; half > 0; half = half >> 1) {
          if (tid < half) { buf[tid] = buf[tid] + buf[tid + half]; }
          workgroupBarrier();
        }
        let ${into}Total = buf[0];
        workgroupBarrier();`;
  const meanAndRstd = `
        var s = 0.0;
        for (var col = tid; col < cols; col += ${wg}) { s += getX(row, col); }${reduce("s")}
        let mean = sTotal / f32(cols);
        var v = 0.0;
        for (var col = tid; col < cols; col += ${wg}) { let d = getX(row, col) - mean; v += d * d; }${reduce("v")}
        let rstd = inverseSqrt(vTotal / f32(cols) + uniforms.eps);`;
  const body = {
    forward: `${meanAndRstd}
        for (var col = tid; col < cols; col += ${wg}) {
          setOutputAtCoords(row, col, (getX(row, col) - mean) * rstd * getWeight(col) + getBias(col));
        }`,
    stats: `${meanAndRstd}
        if (tid == 0) { setOutputAtCoords(row, 0, mean); setOutputAtCoords(row, 1, rstd); }`,
    inputGrad: `
        let mean = getStats(row, 0);
        let rstd = getStats(row, 1);
        var g = 0.0;
        for (var col = tid; col < cols; col += ${wg}) { g += getDy(row, col) * getWeight(col); }${reduce("g")}
        var gx = 0.0;
        for (var col = tid; col < cols; col += ${wg}) { gx += getDy(row, col) * getWeight(col) * (getX(row, col) - mean) * rstd; }${reduce("gx")}
        let meanG = gTotal / f32(cols);
        let meanGx = gxTotal / f32(cols);
        for (var col = tid; col < cols; col += ${wg}) {
          let xhat = (getX(row, col) - mean) * rstd;
          setOutputAtCoords(row, col, rstd * (getDy(row, col) * getWeight(col) - meanG - xhat * meanGx));
        }`,
  }[kind];
  return {
    outputShape: kind === "stats" ? [R, 2] : [R, D],
    shaderKey: `studyLayerNorm_${kind}_${R}x${D}`, // the sizes are written into the code: the backend keys its cache by ranks only
    dispatchLayout: { x: [0] },
    dispatch: [R, 1, 1],
    variableNames: vars,
    workgroupSize: [wg, 1, 1],
    uniforms: kind === "inputGrad" ? undefined : "eps : f32,",
    getUserCode: () => `
      var<workgroup> buf : array<f32, ${wg}>;
      fn main(index : i32) {
        let row = index / ${wg};
        let tid = i32(localId.x);
        let cols = ${D};${body}
      }`,
  };
}

const PARAM_GRAD_ROWS = 256; // rows per thread in the weight and bias gradients

/**
 * Partial weight and bias gradients of LayerNorm: out [C, 2D] with C = ceil(R / 256) chunks of
 * rows; out[c, d] = sum over the chunk's rows of dy xhat, out[c, D + d] = sum of dy. One thread per
 * (chunk, column), so reads along a row are coalesced; the chunks are summed by tf.sum afterwards.
 */
function layerNormParamGradProgram(util: WebGPUUtil, shape: [number, number]): Program {
  const [R, D] = shape;
  const chunks = Math.ceil(R / PARAM_GRAD_ROWS);
  const outputShape = [chunks, 2 * D];
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const layout = util.flatDispatchLayout([chunks, D]);
  return {
    outputShape,
    shaderKey: `studyLayerNorm_paramGrad_${R}x${D}`,
    dispatchLayout: layout,
    dispatch: util.computeDispatch(layout, [chunks, D], workgroupSize),
    variableNames: ["dy", "x", "stats"],
    workgroupSize,
    getUserCode: () => `
      fn main(index : i32) {
        if (index >= ${chunks * D}) { return; }
        let chunk = index / ${D};
        let col = index % ${D};
        var dw = 0.0;
        var db = 0.0;
        for (var row = chunk * ${PARAM_GRAD_ROWS}; row < min((chunk + 1) * ${PARAM_GRAD_ROWS}, ${R}); row++) {
          let dy = getDy(row, col);
          dw += dy * (getX(row, col) - getStats(row, 0)) * getStats(row, 1);
          db += dy;
        }
        setOutputAtCoords(chunk, col, dw);
        setOutputAtCoords(chunk, ${D} + col, db);
      }`,
  };
}

/**
 * C[b] = op(A[b]) op(B[b]) in 64x64 output tiles: 256 threads, 4x4 outputs each (rows ty + 16i,
 * columns tx + 16j), K in steps of 16 through workgroup memory, loads laid out along whichever axis
 * is contiguous in memory (so a transposed operand is read as coalesced as a plain one). tfjs's own
 * kernel for large products tiles 32x32 with 64 threads; this one does four times the arithmetic
 * per value loaded. Sizes, batch strides and transposes are written into the code.
 */
function tiledMatMulProgram(batch: number, M: number, K: number, N: number, ta: boolean, tb: boolean, batchA: number, batchB: number): Program {
  const aLoad = ta
    ? "let k = e / 64; let m = e % 64; As[k][m] = select(0.0, A[aOff + (k0 + k) * M + row0 + m], row0 + m < M && k0 + k < K);"
    : "let m = e / 16; let k = e % 16; As[k][m] = select(0.0, A[aOff + (row0 + m) * K + k0 + k], row0 + m < M && k0 + k < K);";
  const bLoad = tb
    ? "let n = e / 16; let k = e % 16; Bs[k][n] = select(0.0, B[bOff + (col0 + n) * K + k0 + k], col0 + n < N && k0 + k < K);"
    : "let k = e / 64; let n = e % 64; Bs[k][n] = select(0.0, B[bOff + (k0 + k) * N + col0 + n], col0 + n < N && k0 + k < K);";
  return {
    outputShape: [batch, M, N],
    shaderKey: `studyMatMul64_${batch}x${M}x${K}x${N}_${ta ? 1 : 0}${tb ? 1 : 0}_${batchA}_${batchB}`,
    dispatchLayout: { x: [2], y: [1], z: [0] },
    dispatch: [Math.ceil(N / 64), Math.ceil(M / 64), batch],
    variableNames: ["A", "B"],
    workgroupSize: [16, 16, 1],
    getUserCode: () => `
      const M = ${M};
      const K = ${K};
      const N = ${N};
      var<workgroup> As : array<array<f32, 64>, 16>;
      var<workgroup> Bs : array<array<f32, 64>, 16>;
      fn main() {
        // The backend binds its uniforms to every program; a shader that reads none gets a layout without them.
        if (uniforms.outShape[1] != M) { return; }
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let tid = ty * 16 + tx;
        let col0 = i32(workgroupId.x) * 64;
        let row0 = i32(workgroupId.y) * 64;
        let b = i32(workgroupId.z);
        let aOff = ${batchA === 1 ? "0" : "b * M * K"};
        let bOff = ${batchB === 1 ? "0" : "b * K * N"};
        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        var acc2 = vec4<f32>(0.0);
        var acc3 = vec4<f32>(0.0);
        for (var k0 = 0; k0 < K; k0 += 16) {
          for (var i = 0; i < 4; i++) {
            let e = tid + 256 * i;
            { ${aLoad} }
            { ${bLoad} }
          }
          workgroupBarrier();
          for (var kk = 0; kk < 16; kk++) {
            let av = vec4<f32>(As[kk][ty], As[kk][ty + 16], As[kk][ty + 32], As[kk][ty + 48]);
            let bv = vec4<f32>(Bs[kk][tx], Bs[kk][tx + 16], Bs[kk][tx + 32], Bs[kk][tx + 48]);
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
          }
          workgroupBarrier();
        }
        var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
        for (var i = 0; i < 4; i++) {
          let row = row0 + ty + 16 * i;
          if (row >= M) { continue; }
          for (var j = 0; j < 4; j++) {
            let col = col0 + tx + 16 * j;
            if (col < N) { setOutputAtIndex((b * M + row) * N + col, accs[i][j]); }
          }
        }
      }`,
  };
}

/**
 * BatchMatMul through tiledMatMulProgram when STUDY_WEBGPU_MATMUL=tiled (read at every call, so a
 * benchmark can compare both in one process), for float32 products of at least 64x64 outputs whose
 * batch dimensions are equal or 1; tfjs's kernel otherwise (and by default, until a GPU has
 * measured which is faster).
 */
function tiledBatchMatMul(stockKernel: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as unknown as Infos;
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const be = args.backend as Backend;
    if (process.env.STUDY_WEBGPU_MATMUL !== "tiled" || a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length < 2 || b.shape.length < 2) return stockKernel(args);
    const [ra, rb] = [a.shape.length, b.shape.length];
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    // The batch axes of the result: the batched operand's, or the longer ones when neither is.
    const outer = (batchA === 1 && batchB !== 1 ? b : batchB === 1 && batchA !== 1 ? a : ra >= rb ? a : b).shape.slice(0, -2);
    const sameBatch = batchA === batchB && tf.util.arraysEqual(a.shape.slice(0, -2), b.shape.slice(0, -2));
    if (M < 64 || N < 64 || !(sameBatch || batchA === 1 || batchB === 1)) return stockKernel(args);
    const batch = Math.max(batchA, batchB);
    const out = be.runWebGPUProgram(tiledMatMulProgram(batch, M, K, N, transposeA, transposeB, batchA, batchB), [a, b], "float32");
    return { ...out, shape: [...outer, M, N] };
  };
}

/**
 * Runs `f` with BatchMatMul on one route: tfjs's kernel ("stock") or the tiled one, by setting
 * STUDY_WEBGPU_MATMUL for its duration (the kernel reads it at every call); for comparing both.
 */
export async function withMatMul<T>(route: "stock" | "tiled", f: () => T | Promise<T>): Promise<T> {
  const saved = process.env.STUDY_WEBGPU_MATMUL;
  if (route === "tiled") process.env.STUDY_WEBGPU_MATMUL = "tiled";
  else delete process.env.STUDY_WEBGPU_MATMUL;
  try {
    return await f();
  } finally {
    if (saved === undefined) delete process.env.STUDY_WEBGPU_MATMUL;
    else process.env.STUDY_WEBGPU_MATMUL = saved;
  }
}

type Infos = Record<string, tf.TensorInfo>;

/** The four fused kernels; inputs are viewed as [R,D] (x's leading axes flattened), results get x's shape back. */
function fusedKernels(util: WebGPUUtil): tf.KernelConfig[] {
  const rows = (x: tf.TensorInfo): [number, number] => {
    const D = x.shape[x.shape.length - 1];
    return [tf.util.sizeFromShape(x.shape) / D, D];
  };
  // The backend's own kernels, called as functions (engine.runKernel would track their outputs twice).
  const stock = (name: string, be: Backend, inputs: Infos, attrs: Record<string, unknown>) =>
    tf.getKernel(name, "webgpu")!.kernelFunc({ inputs: inputs as unknown as tf.NamedTensorInfoMap, backend: be, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  const cfg = (kernelName: string, kernelFunc: (inputs: Infos, be: Backend, attrs: Record<string, unknown>) => tf.TensorInfo | tf.TensorInfo[]): tf.KernelConfig => ({
    kernelName,
    backendName: "webgpu",
    kernelFunc: ({ inputs, backend, attrs }) => kernelFunc(inputs as unknown as Infos, backend as Backend, (attrs ?? {}) as Record<string, unknown>),
  });
  return [
    cfg(FusedKernel.gelu, ({ x }, be) => be.runWebGPUProgram(geluProgram(util, [...x.shape], false), [x], "float32")),
    cfg(FusedKernel.geluGrad, ({ x, dy }, be) => be.runWebGPUProgram(geluProgram(util, [...x.shape], true), [x, dy], "float32")),
    cfg(FusedKernel.layerNorm, ({ x, weight, bias }, be, { eps }) => {
      const shape = rows(x);
      const y = be.runWebGPUProgram(layerNormRowProgram(shape, "forward"), [{ ...x, shape }, weight, bias], "float32", [{ type: "float32", data: [eps as number] }]);
      return { ...y, shape: [...x.shape] };
    }),
    cfg(FusedKernel.layerNormGrad, ({ dy, x, weight }, be, { eps }) => {
      const shape = rows(x);
      const x2 = { ...x, shape };
      const dy2 = { ...dy, shape };
      const stats = be.runWebGPUProgram(layerNormRowProgram(shape, "stats"), [x2], "float32", [{ type: "float32", data: [eps as number] }]); // [R,2]
      const dx = be.runWebGPUProgram(layerNormRowProgram(shape, "inputGrad"), [dy2, x2, weight, stats], "float32"); // [R,D]
      const partial = be.runWebGPUProgram(layerNormParamGradProgram(util, shape), [dy2, x2, stats], "float32"); // [C,2D]
      be.disposeData(stats.dataId);
      const summed = stock("Sum", be, { x: partial }, { axis: [0], keepDims: false }); // [2D]
      be.disposeData(partial.dataId);
      const D = shape[1];
      const dweight = stock("Slice", be, { x: summed }, { begin: [0], size: [D] }); // [D]
      const dbias = stock("Slice", be, { x: summed }, { begin: [D], size: [D] }); // [D]
      be.disposeData(summed.dataId);
      return [{ ...dx, shape: [...x.shape] }, dweight, dbias];
    }),
  ];
}

/** Registers the fixes over the webgpu backend's own kernels (once per process); returns their names. */
export function fixWebGPUKernels(): string[] {
  const fixed = globalThis as { [FIXED]?: string[] };
  if (fixed[FIXED]) return fixed[FIXED];
  const names: string[] = [];
  // Replaces the backend's kernel `name` by `wrap` of it.
  const over = (name: string, wrap: (stock: tf.KernelFunc) => tf.KernelFunc, label: string) => {
    const k = tf.getKernel(name, "webgpu");
    if (!k) return;
    tf.unregisterKernel(name, "webgpu");
    tf.registerKernel({ kernelName: name, backendName: "webgpu", kernelFunc: wrap(k.kernelFunc) });
    names.push(label);
  };
  over("AddN", chunkedAddN, "addn-chunked");
  over("BatchMatMul", tiledBatchMatMul, "matmul-tiled-64 (STUDY_WEBGPU_MATMUL=tiled)");
  if (process.env.STUDY_WEBGPU_STOCK_KERNELS !== "1") {
    const util = (require("@tensorflow/tfjs-backend-webgpu") as { webgpu_util: WebGPUUtil }).webgpu_util;
    for (const k of fusedKernels(util)) tf.registerKernel(k);
    names.push("gelu-layernorm-fused");
  }
  fixed[FIXED] = names;
  return names;
}
