// Worker thread body: receives batch plans, returns normalised pixels (transferred, not copied).
import { parentPort, workerData } from "node:worker_threads";
import type { ImageSetHandle } from "./dataset";
import type { TransformSpec } from "./transforms";
import { BatchPlan, runPlan } from "./batch-work";

const { handle, transform } = workerData as { handle: ImageSetHandle; transform: TransformSpec };
const fd: { fd?: number } = {};

parentPort!.on("message", (m: { id: number; plan: BatchPlan }) => {
  try {
    const x = runPlan(handle, transform, m.plan, fd);
    parentPort!.postMessage({ id: m.id, x }, [x.buffer]);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
