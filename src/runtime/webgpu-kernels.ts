// Fixes for tfjs-backend-webgpu 4.22, found running it on a real WebGPU implementation (Dawn over
// Vulkan; Mesa's llvmpipe here). Each one is registered once, when the webgpu backend starts.
import * as tf from "@tensorflow/tfjs";

type WebGPULimits = { device: { limits: { maxStorageBuffersPerShaderStage: number } } };
type Backend = tf.KernelBackend & WebGPULimits & { disposeData(dataId: object): void };

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
  fixed[FIXED] = names;
  return names;
}
