// Kernels for tfjs-backend-webgpu 4.22, registered once when the webgpu backend starts:
//   - a fix found running it on a real WebGPU implementation (Dawn over Vulkan; Mesa's llvmpipe
//     here): AddN in chunks the device can bind;
//   - the fused GELU and LayerNorm of model/ops (one pass forward; GELU's backward one pass,
//     LayerNorm's three), where the compositions run 5-11 elementwise and reduction kernels each,
//     every one a pass over the activations. STUDY_WEBGPU_STOCK_KERNELS=1 leaves them out (the
//     "before" of a benchmark).
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
      const x2 = { ...x, shape: rows(x) };
      const y = be.runWebGPUProgram(layerNormRowProgram(rows(x), "forward"), [x2, weight, bias], "float32", [{ type: "float32", data: [eps as number] }]);
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
  const addN = tf.getKernel("AddN", "webgpu");
  if (addN) {
    tf.unregisterKernel("AddN", "webgpu");
    tf.registerKernel({ kernelName: "AddN", backendName: "webgpu", kernelFunc: chunkedAddN(addN.kernelFunc) });
    names.push("addn-chunked");
  }
  if (process.env.STUDY_WEBGPU_STOCK_KERNELS !== "1") {
    const util = (require("@tensorflow/tfjs-backend-webgpu") as { webgpu_util: WebGPUUtil }).webgpu_util;
    for (const k of fusedKernels(util)) tf.registerKernel(k);
    names.push("gelu-layernorm-fused");
  }
  fixed[FIXED] = names;
  return names;
}
