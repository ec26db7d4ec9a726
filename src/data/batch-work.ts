// The pixel half of batch production: a pure function of (dataset, transform, plan), shared by
// the in-process path and the worker threads.
import { ImageSetHandle, readRecord } from "./dataset";
import { SampleParams, TransformSpec, applyTransform } from "./transforms";

export interface BatchPlan {
  step: number;
  epoch: number;
  indices: Int32Array;
  params: SampleParams[];
}

/** Pixels of a planned batch: float32 [B,S,S,3]. */
export function runPlan(handle: ImageSetHandle, spec: TransformSpec, plan: BatchPlan, fd: { fd?: number } = {}): Float32Array {
  const { height: h, width: w } = handle;
  const rec = h * w * 3;
  const s = spec.size;
  const out = new Float32Array(plan.indices.length * s * s * 3);
  const scratch = handle.storage.kind === "file" ? new Uint8Array(rec) : undefined;
  for (let b = 0; b < plan.indices.length; b++) {
    const i = plan.indices[b];
    const r = handle.indices ? handle.indices[i] : i;
    const img = readRecord(handle.storage, rec, r, fd, scratch);
    applyTransform(spec, img, h, w, plan.params[b], out, b * s * s * 3);
  }
  return out;
}
