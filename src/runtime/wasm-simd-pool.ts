// The SIMD module's batched matmul on several threads.
//
// Worker threads instantiate the same compiled module on the same shared heap and wait on a
// control block there; a product is split into one part per thread (by slices, or by row blocks
// of an unbatched product), the calling thread computes the last part and waits for the others.
// Each output element is computed by exactly one thread, in the same order as single-threaded,
// so results do not depend on the thread count. Used only with the threaded build, whose heap is
// a SharedArrayBuffer; its XNNPACK pool sleeps while these run (the kernels are synchronous).
import { Worker } from "node:worker_threads";
import type { SimdKernels, WasmMemory } from "./wasm-simd";

/** Int32 slots of a worker's control block: a request sequence number, the last one done, the arguments. */
const SEQ = 0;
const DONE = 1;
const FAILED = 2;
const ARGS = 3; // a, b, out, n, m, k, nc, aRow, aK, kc
const SLOTS = 16;
const WAIT_MS = 60_000;

// Runs in each worker: wait for a new sequence number, multiply, publish it as done. A negative
// sequence number stops the worker.
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, ctrl } = workerData;
const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
const c = new Int32Array(memory.buffer, ctrl, ${SLOTS});
let seen = 0;
for (;;) {
  Atomics.wait(c, ${SEQ}, seen);
  seen = Atomics.load(c, ${SEQ});
  if (seen < 0) break;
  try {
    k.batchMatMul(...c.subarray(${ARGS}, ${ARGS + 10}));
  } catch (e) {
    Atomics.store(c, ${FAILED}, 1);
  }
  Atomics.store(c, ${DONE}, seen);
  Atomics.notify(c, ${DONE});
}`;

type Part = [a: number, b: number, out: number, n: number, m: number, k: number, nc: number, aRow: number, aK: number, kc: number];

export class SimdMatMulPool {
  private readonly controls: Int32Array[];
  private readonly workers: Worker[];
  private seq = 0;

  /**
   * `helpers` worker threads beside the calling one; `controlBlock` is the byte offset of
   * helpers * 64 bytes of the heap reserved for their control blocks.
   */
  constructor(
    private readonly kernels: SimdKernels,
    module: object,
    private readonly memory: WasmMemory,
    controlBlock: number,
    helpers: number,
  ) {
    this.controls = Array.from({ length: helpers }, (_, i) => new Int32Array(memory.buffer, controlBlock + 4 * SLOTS * i, SLOTS));
    for (const c of this.controls) c.fill(0);
    this.workers = this.controls.map((_, i) => {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, ctrl: controlBlock + 4 * SLOTS * i } });
      w.unref(); // an idle pool must not keep the process alive
      return w;
    });
  }

  /** Bytes of heap the control blocks of `helpers` workers take. */
  static controlBytes(helpers: number): number {
    return 4 * SLOTS * helpers;
  }

  /** Threads a product is split over (helpers + the calling thread). */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** SimdKernels.batchMatMul, split over the threads. */
  batchMatMul(a: number, b: number, out: number, n: number, m: number, k: number, nc: number, aRow: number, aK: number, kc: number): void {
    const parts = this.split([a, b, out, n, m, k, nc, aRow, aK, kc]);
    const seq = ++this.seq;
    for (let i = 0; i < parts.length - 1; i++) {
      const c = this.controls[i];
      c.set(parts[i], ARGS);
      Atomics.store(c, SEQ, seq);
      Atomics.notify(c, SEQ);
    }
    this.kernels.batchMatMul(...parts[parts.length - 1]);
    for (let i = 0; i < parts.length - 1; i++) {
      const c = this.controls[i];
      const start = Date.now();
      while (Atomics.load(c, DONE) !== seq) {
        if (Date.now() - start > WAIT_MS) throw new Error(`SIMD matmul worker ${i} did not answer within ${WAIT_MS / 1000} s`);
        Atomics.wait(c, DONE, Atomics.load(c, DONE), 1000);
      }
      if (Atomics.load(c, FAILED)) throw new Error(`SIMD matmul worker ${i} failed on a [${n},${m},${k}] x [${n},${k},${nc}] product`);
    }
  }

  /** Up to `threads` parts: whole slices when there are enough of them, else blocks of rows. */
  private split(whole: Part): Part[] {
    const [a, b, out, n, m, k, nc, aRow, aK, kc] = whole;
    const t = this.threads;
    if (t === 1) return [whole];
    if (n >= t) {
      const parts: Part[] = [];
      for (let i = 0, s0 = 0; i < t; i++) {
        const s1 = Math.round((n * (i + 1)) / t);
        if (s1 > s0) parts.push([a + 4 * s0 * m * k, b + 4 * s0 * k * nc, out + 4 * s0 * m * nc, s1 - s0, m, k, nc, aRow, aK, kc]);
        s0 = s1;
      }
      return parts;
    }
    // Blocks of 4 rows (the kernel's), at least one per part; slices one at a time.
    const blocks = Math.floor(m / 4);
    const rowParts = Math.min(t, blocks);
    const parts: Part[] = [];
    for (let s = 0; s < n; s++) {
      for (let i = 0; i < rowParts; i++) {
        const r0 = 4 * Math.floor((blocks * i) / rowParts);
        const r1 = i === rowParts - 1 ? m : 4 * Math.floor((blocks * (i + 1)) / rowParts);
        parts.push([a + 4 * s * m * k + r0 * aRow, b + 4 * s * k * nc, out + 4 * (s * m + r0) * nc, 1, r1 - r0, k, nc, aRow, aK, kc]);
      }
    }
    return parts.length <= t ? parts : [whole];
  }

  /** Stops the workers. */
  dispose(): void {
    for (const c of this.controls) {
      Atomics.store(c, SEQ, -1);
      Atomics.notify(c, SEQ);
    }
  }
}
