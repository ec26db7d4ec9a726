// Asynchronous reads for tests that run on every backend. The webgpu backend in Node cannot read
// a tensor on the GPU synchronously (dataSync, arraySync, bufferSync throw there), so tests read
// with these instead. Each helper says whether it disposes the tensor it is given.
import * as tf from "@tensorflow/tfjs";

export type HostValues = Float32Array | Int32Array | Uint8Array;

/** Element 0 of `t` (a scalar, or the first value). Always disposes `t`: pass a temporary. */
export async function scalar(t: tf.Tensor): Promise<number> {
  try {
    return (await t.data())[0];
  } finally {
    t.dispose();
  }
}

/**
 * A host copy of `t`'s values (its own buffer, safe to keep). Never disposes `t` unless asked with
 * `{ dispose: true }`, so it can read variables and tensors still in use.
 */
export async function values(t: tf.Tensor, opts: { dispose?: boolean } = {}): Promise<HostValues> {
  try {
    return (await t.data()).slice();
  } finally {
    if (opts.dispose) t.dispose();
  }
}

/** values() of a float32 tensor, typed as such; throws on any other dtype. Same disposal rule. */
export async function floats(t: tf.Tensor, opts: { dispose?: boolean } = {}): Promise<Float32Array> {
  if (t.dtype !== "float32") throw new Error(`floats(): expected a float32 tensor, got ${t.dtype}`);
  return (await values(t, opts)) as Float32Array;
}

/** max |a - b| over all elements, read asynchronously. Disposes neither input, only its temporary. */
export async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  return scalar(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b)))));
}
