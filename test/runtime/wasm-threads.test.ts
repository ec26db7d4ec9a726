// Threaded wasm gives the single-threaded numbers (within float tolerance), the same numbers on
// every run, and lets the process exit. Each thread count needs its own process: a process has one
// wasm instance, fixed at its first initialisation.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { requestedWasmThreads, threadsUnsupported } from "../../src/runtime/wasm";

interface ChildResult {
  reason: string;
  setup: { threads: number; binary: string; reason: string };
  out: Record<string, string>;
}

const CHILD = path.join(__dirname, "wasm-child.ts");

function runChild(threads: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", CHILD],
      // The timeout also catches a child that computes but never exits (a ref'd pool thread).
      { env: { ...process.env, STUDY_WASM_THREADS: String(threads), STUDY_BACKEND: "" }, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`child (threads=${threads}) failed: ${err.message}\n${stderr}`));
        const line = stdout.trim().split("\n").pop() ?? "";
        resolve(JSON.parse(line) as ChildResult);
      },
    );
  });
}

const floats = (b64: string): Float32Array => {
  const buf = Buffer.from(b64, "base64");
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
};

test("STUDY_WASM_THREADS is parsed and checked", () => {
  const saved = process.env.STUDY_WASM_THREADS;
  try {
    process.env.STUDY_WASM_THREADS = "3";
    assert.equal(requestedWasmThreads(), 3);
    assert.equal(requestedWasmThreads(2), 2, "the caller wins over the environment");
    process.env.STUDY_WASM_THREADS = "64";
    assert.equal(requestedWasmThreads(), 8, "capped at XNNPACK's pool size");
    process.env.STUDY_WASM_THREADS = "two";
    assert.throws(() => requestedWasmThreads(), /STUDY_WASM_THREADS=two/);
    delete process.env.STUDY_WASM_THREADS;
    assert.ok(requestedWasmThreads() >= 1);
  } finally {
    if (saved === undefined) delete process.env.STUDY_WASM_THREADS;
    else process.env.STUDY_WASM_THREADS = saved;
  }
});

test("threaded wasm: same forward and gradients as single-threaded, deterministic, exits cleanly", { skip: threadsUnsupported() }, async () => {
  const [single, a, b] = await Promise.all([runChild(1), runChild(2), runChild(2)]);
  assert.equal(single.setup.threads, 1);
  assert.equal(single.setup.binary, "simd");
  for (const r of [a, b]) {
    assert.equal(r.setup.binary, "threaded-simd", r.setup.reason);
    assert.equal(r.setup.threads, 2, r.setup.reason);
    assert.match(r.reason, /threads=2/);
  }
  assert.deepEqual(Object.keys(a.out), Object.keys(single.out));
  assert.ok(Object.keys(a.out).length > 10);
  for (const key of Object.keys(single.out)) {
    assert.equal(a.out[key], b.out[key], `${key}: two threaded runs differ`);
    if (key.startsWith("exact:")) assert.equal(a.out[key], single.out[key], `${key}: the threaded SIMD pool differs from single-threaded`);
    const s = floats(single.out[key]);
    const t = floats(a.out[key]);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < s.length; i++) {
      scale = Math.max(scale, Math.abs(s[i]));
      diff = Math.max(diff, Math.abs(s[i] - t[i]));
    }
    assert.ok(diff <= 1e-5 * Math.max(scale, 1e-3), `${key}: threaded differs from single-threaded by ${diff} (scale ${scale})`);
  }
});
