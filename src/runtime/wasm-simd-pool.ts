// The SIMD module's heavy kernels (matmul, GELU and its gradient) on several threads.
//
// Worker threads instantiate the same compiled module on the same shared heap and wait on a
// control block there; a call is split into one part per thread (a product by slices, or by row
// blocks of an unbatched product; an elementwise kernel by ranges), the calling thread computes
// the last part and waits for the others. Each output element is computed by exactly one thread,
// in the same order as single-threaded, so results do not depend on the thread count. Used only
// with the threaded build, whose heap is a SharedArrayBuffer; its XNNPACK pool sleeps while these
// run (the kernels are synchronous).
import { Worker } from "node:worker_threads";
import type { SimdKernels, WasmMemory } from "./wasm-simd";

/** The kernels the pool splits, by their index in the control block. */
const KERNELS = ["batchMatMul", "gelu", "geluGrad"] as const;
type PoolKernel = (typeof KERNELS)[number];
export type ParallelKernels = Pick<SimdKernels, PoolKernel>;

/** Int32 slots of a worker's control block. */
const SEQ = 0; // request sequence number (negative: stop)
const DONE = 1; // the last request done
const FAILED = 2; // 1 once a request threw
const KERNEL = 3; // index into KERNELS
const COUNT = 4; // number of arguments
const ARGS = 5; // the arguments (at most 10)
const SLOTS = 16;
const WAIT_MS = 60_000;

// Runs in each worker: wait for a new sequence number, run the kernel, publish it as done.
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, ctrl } = workerData;
const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
const kernels = ${JSON.stringify(KERNELS)}.map((name) => exports[name]);
const c = new Int32Array(memory.buffer, ctrl, ${SLOTS});
let seen = 0;
for (;;) {
  Atomics.wait(c, ${SEQ}, seen);
  seen = Atomics.load(c, ${SEQ});
  if (seen < 0) break;
  try {
    kernels[c[${KERNEL}]](...c.subarray(${ARGS}, ${ARGS} + c[${COUNT}]));
  } catch (e) {
    Atomics.store(c, ${FAILED}, 1);
  }
  Atomics.store(c, ${DONE}, seen);
  Atomics.notify(c, ${DONE});
}`;

type MatMulArgs = Parameters<SimdKernels["batchMatMul"]>;

export class SimdPool implements ParallelKernels {
  private readonly controls: Int32Array[];
  private readonly workers: Worker[];
  private seq = 0;

  /** Bytes of heap the control blocks of `helpers` workers take. */
  static controlBytes(helpers: number): number {
    return 4 * SLOTS * helpers;
  }

  /**
   * `helpers` worker threads beside the calling one, on `memory` (the heap `kernels` run on);
   * `controlBlock` is the byte offset of controlBytes(helpers) bytes of that heap.
   */
  constructor(
    private readonly kernels: SimdKernels,
    module: object,
    memory: WasmMemory,
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

  /** Threads a call is split over (helpers + the calling thread). */
  get threads(): number {
    return this.workers.length + 1;
  }

  batchMatMul(...args: MatMulArgs): void {
    this.run("batchMatMul", this.splitMatMul(args));
  }

  gelu(x: number, y: number, n: number): void {
    this.run("gelu", this.splitRange(n).map(([start, len]) => [x + 4 * start, y + 4 * start, len]));
  }

  geluGrad(x: number, dy: number, dx: number, n: number): void {
    this.run("geluGrad", this.splitRange(n).map(([start, len]) => [x + 4 * start, dy + 4 * start, dx + 4 * start, len]));
  }

  /** Runs parts[i] on helper i and the last part here; returns once all are done. */
  private run(kernel: PoolKernel, parts: number[][]): void {
    const seq = ++this.seq;
    const index = KERNELS.indexOf(kernel);
    for (let i = 0; i < parts.length - 1; i++) {
      const c = this.controls[i];
      c[KERNEL] = index;
      c[COUNT] = parts[i].length;
      c.set(parts[i], ARGS);
      Atomics.store(c, SEQ, seq); // publishes the slots above to the worker
      Atomics.notify(c, SEQ);
    }
    (this.kernels[kernel] as (...a: number[]) => void)(...parts[parts.length - 1]);
    for (let i = 0; i < parts.length - 1; i++) {
      const c = this.controls[i];
      const start = Date.now();
      while (Atomics.load(c, DONE) !== seq) {
        if (Date.now() - start > WAIT_MS) throw new Error(`SIMD pool worker ${i} did not answer within ${WAIT_MS / 1000} s (${kernel})`);
        Atomics.wait(c, DONE, Atomics.load(c, DONE), 1000);
      }
      if (Atomics.load(c, FAILED)) throw new Error(`SIMD pool worker ${i} failed in ${kernel}(${parts[i].join(", ")})`);
    }
  }

  /** [start, length] ranges of n elements, multiples of 4 and at least 4 long (the kernels' vectors). */
  private splitRange(n: number): [number, number][] {
    const vectors = Math.floor(n / 4);
    const parts = Math.max(1, Math.min(this.threads, vectors));
    return Array.from({ length: parts }, (_, i) => {
      const start = 4 * Math.floor((vectors * i) / parts);
      const end = i === parts - 1 ? n : 4 * Math.floor((vectors * (i + 1)) / parts);
      return [start, end - start];
    });
  }

  /** Up to `threads` parts: whole slices when there are enough of them, else blocks of rows. */
  private splitMatMul(whole: MatMulArgs): MatMulArgs[] {
    const [a, b, out, n, m, k, nc, aRow, aK, kc] = whole;
    const t = this.threads;
    if (n >= t) {
      const parts: MatMulArgs[] = [];
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
    const parts: MatMulArgs[] = [];
    for (let s = 0; s < n; s++) {
      for (let i = 0; i < rowParts; i++) {
        const r0 = 4 * Math.floor((blocks * i) / rowParts);
        const r1 = i === rowParts - 1 ? m : 4 * Math.floor((blocks * (i + 1)) / rowParts);
        parts.push([a + 4 * s * m * k + r0 * aRow, b + 4 * s * k * nc, out + 4 * (s * m + r0) * nc, 1, r1 - r0, k, nc, aRow, aK, kc]);
      }
    }
    return parts.length <= t ? parts : [whole];
  }
}
