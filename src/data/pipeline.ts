// Seeded batches, produced ahead of the model. Every random choice is a pure function of
// (seed, step): epoch e's order is Rng(`${seed}/order/${e}`).shuffle(0..N-1) and step s's
// augmentation draws from Rng(`${seed}/augment/${s}`). So the same seed gives the same batches bit
// for bit, and resuming at step s needs nothing but s. The pixel work (crop, resize, normalise)
// runs in worker threads when available, in-process otherwise: same bytes either way.
import * as fs from "node:fs";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { Rng } from "../ground/rng";
import { ImageSet, ImageSetHandle } from "./dataset";
import { SampleParams, TransformSpec, sampleParams } from "./transforms";
import { BatchPlan, runPlan } from "./batch-work";

export interface LoaderConfig {
  batchSize: number;
  transform: TransformSpec;
  seed: number | string;
  /** Reshuffle every epoch (train); false = dataset order (eval). */
  shuffle: boolean;
  /** Drop the last incomplete batch of an epoch (train); false keeps it (eval). */
  dropLast: boolean;
  /** Batches prepared ahead of the consumer (default 2). */
  prefetch?: number;
  /** Worker threads for the pixel work (default 1; 0 = in-process). */
  workers?: number;
}

export interface Batch {
  /** Global step (batch number since the start of training). */
  step: number;
  epoch: number;
  /** Normalised pixels [B,S,S,3], float32. */
  x: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  /** Dataset indices of the images. */
  indices: Int32Array;
}

export class DataLoader {
  readonly batchesPerEpoch: number;
  private orderCache: { epoch: number; order: Int32Array } | undefined;
  private pool: WorkerPool | undefined;
  private poolFailed: string | undefined;
  private cachedHandle: ImageSetHandle | undefined;

  constructor(readonly dataset: ImageSet, readonly config: LoaderConfig) {
    if (!(config.batchSize >= 1)) throw new Error(`batchSize must be >= 1, got ${config.batchSize}`);
    const n = dataset.size;
    this.batchesPerEpoch = config.dropLast ? Math.floor(n / config.batchSize) : Math.ceil(n / config.batchSize);
    if (this.batchesPerEpoch < 1) throw new Error(`${dataset.name}: ${n} images cannot fill one batch of ${config.batchSize} (dropLast)`);
  }

  private readonly fd: { fd?: number } = {};
  private handle(): ImageSetHandle {
    return (this.cachedHandle ??= this.dataset.handle());
  }

  /** Dataset order of an epoch. */
  order(epoch: number): Int32Array {
    if (this.orderCache?.epoch === epoch) return this.orderCache.order;
    const order = Int32Array.from({ length: this.dataset.size }, (_, i) => i);
    if (this.config.shuffle) new Rng(`${this.config.seed}/order/${epoch}`).shuffle(order);
    this.orderCache = { epoch, order };
    return order;
  }

  /** Everything random about batch `step`, decided without touching pixels. */
  plan(step: number): BatchPlan {
    const epoch = Math.floor(step / this.batchesPerEpoch);
    const pos = step % this.batchesPerEpoch;
    const order = this.order(epoch);
    const b = this.config.batchSize;
    const indices = order.slice(pos * b, Math.min((pos + 1) * b, order.length));
    const rng = new Rng(`${this.config.seed}/augment/${step}`);
    const { height: h, width: w } = this.dataset;
    const params: SampleParams[] = Array.from(indices, () => sampleParams(this.config.transform, rng, h, w));
    return { step, epoch, indices, params };
  }

  private async produce(plan: BatchPlan): Promise<Batch> {
    const labels = Int32Array.from(plan.indices, (i) => this.dataset.labels[i]);
    const s = this.config.transform.size;
    const shape: [number, number, number, number] = [plan.indices.length, s, s, 3];
    const workers = this.config.workers ?? 1;
    if (workers > 0 && !this.poolFailed) {
      try {
        this.pool ??= new WorkerPool(workers, this.handle(), this.config.transform);
        const x = await this.pool.run(plan);
        return { step: plan.step, epoch: plan.epoch, x, shape, labels, indices: plan.indices };
      } catch (e) {
        // A batch the worker could not make (a truncated cache file, a bad record) fails here as
        // it would in-process; only a pool that cannot work (no TypeScript loader inside the
        // worker, a worker that died) falls back: same bytes, one thread.
        if (e instanceof BatchError) throw e;
        this.poolFailed = e instanceof Error ? e.message : String(e);
        await this.pool?.close();
        this.pool = undefined;
      }
    }
    const x = runPlan(this.handle(), this.config.transform, plan, this.fd);
    return { step: plan.step, epoch: plan.epoch, x, shape, labels, indices: plan.indices };
  }

  /** Why batches are made in-process (undefined while workers are in use). */
  get workerFallback(): string | undefined {
    return this.poolFailed;
  }

  /** Batches for steps [from, to), `prefetch` of them in flight ahead of the consumer. */
  async *batches(from = 0, to = Infinity): AsyncGenerator<Batch> {
    const ahead = Math.max(1, this.config.prefetch ?? 2);
    const inflight: Promise<Batch>[] = [];
    let next = from;
    const top = () => { while (inflight.length < ahead && next < to) inflight.push(this.produce(this.plan(next++))); };
    try {
      top();
      while (inflight.length) {
        const b = await inflight.shift()!;
        top();
        yield b;
      }
    } finally {
      // Let abandoned work settle so no rejection goes unhandled.
      await Promise.allSettled(inflight);
    }
  }

  /** One pass over the dataset in order (eval): steps 0..batchesPerEpoch-1 of epoch 0. */
  epoch(e = 0): AsyncGenerator<Batch> {
    return this.batches(e * this.batchesPerEpoch, (e + 1) * this.batchesPerEpoch);
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
    if (this.fd.fd !== undefined) fs.closeSync(this.fd.fd);
    this.fd.fd = undefined;
  }
}

/** An error the batch worker reported for one batch: the data's fault, not the pool's. */
class BatchError extends Error {}

/** Worker threads that turn batch plans into pixels. */
class WorkerPool {
  private workers: Worker[] = [];
  private nextWorker = 0;
  private pending = new Map<number, { resolve: (x: Float32Array) => void; reject: (e: Error) => void }>();
  private ids = 0;
  private closing = false;

  constructor(n: number, handle: ImageSetHandle, transform: TransformSpec) {
    // The worker runs batch-worker.ts through tsx's loader (tests, CLI, and tslab kernels, whose
    // in-memory modules a worker cannot see), or a compiled batch-worker.js when there is one.
    const ts = path.join(__dirname, "batch-worker.ts");
    const script = fs.existsSync(ts) ? ts : path.join(__dirname, "batch-worker.js");
    const code = (script.endsWith(".ts") ? `require("tsx/cjs");\n` : "") + `require(${JSON.stringify(script)});`;
    for (let i = 0; i < n; i++) {
      const w = new Worker(code, { eval: true, workerData: { handle, transform } });
      w.on("message", (m: { id: number; x?: Float32Array; error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        this.refresh();
        if (m.error !== undefined || !m.x) p.reject(new BatchError(m.error ?? "worker returned no pixels"));
        else p.resolve(m.x);
      });
      w.on("error", (e) => this.failAll(e));
      w.on("exit", (code) => { if (code !== 0 && !this.closing) this.failAll(new Error(`batch worker exited with code ${code}`)); });
      w.unref();
      this.workers.push(w);
    }
  }

  /** Idle workers must not keep the process alive; busy ones must (or Node exits mid-batch). */
  private refresh(): void {
    if (this.closing) return;
    const busy = this.pending.size > 0;
    for (const w of this.workers) busy ? w.ref() : w.unref();
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.refresh();
  }

  run(plan: BatchPlan): Promise<Float32Array> {
    const id = this.ids++;
    const w = this.workers[this.nextWorker++ % this.workers.length];
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.refresh();
      w.postMessage({ id, plan });
    });
  }

  async close(): Promise<void> {
    // Batches still in a worker would never settle once it is gone (and whoever awaits them would
    // wait forever, or Node would exit quietly under them): they fail, and fall back in-process.
    this.closing = true;
    this.failAll(new Error("the batch workers were closed"));
    // Ref first: an unref'd worker's exit may never be awaited (the event loop ends before it).
    await Promise.all(this.workers.map((w) => { w.ref(); return w.terminate(); }));
    this.workers = [];
  }
}
