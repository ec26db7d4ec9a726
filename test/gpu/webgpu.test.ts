// What the webgpu backend does differently in Node, on a real WebGPU adapter: Dawn over the GPU's
// Vulkan driver, or over Mesa's software one (environment/webgpu-sw.sh, added by test/support/backends).
// Skipped with the reason where Dawn finds no adapter at all.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "../support/backends";
import { AdapterInfo, initBackend, isSoftwareAdapter, probeWebGPU, readableSync } from "../../src/runtime/backend";
import { withMatMul } from "../../src/runtime/webgpu-kernels";
import { maxAbsDiff, scalar } from "../support/read";

const adapter = probeWebGPU();

test("software adapters are told apart from GPUs by what Dawn reports", () => {
  const cases: [Partial<AdapterInfo>, boolean][] = [
    [{ vendor: "mesa", architecture: "software", description: "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)" }, true],
    [{ vendor: "google", architecture: "swiftshader", description: "SwiftShader Device (Subzero)" }, true],
    [{ vendor: "microsoft", description: "Microsoft Basic Render Driver" }, true],
    [{ vendor: "nvidia", architecture: "hopper", description: "NVIDIA H200" }, false],
    [{ vendor: "amd", architecture: "rdna-3", description: "AMD Radeon RX 7900 XTX (RADV NAVI31)" }, false],
    [{ vendor: "intel", architecture: "gen-12lp", description: "Intel(R) UHD Graphics 770 (ADL-S GT1)" }, false],
  ];
  for (const [info, software] of cases) {
    const a: AdapterInfo = { vendor: "", architecture: "", device: "", description: "", ...info };
    assert.equal(isSoftwareAdapter(a), software, JSON.stringify(a));
  }
});

test("webgpu in Node", { concurrency: false }, async (t) => {
  const info = await adapter;
  if (!info) {
    t.skip("Dawn finds no WebGPU adapter here");
    return;
  }
  await t.test("the chooser passes a software adapter by unless asked for webgpu by name", async () => {
    const saved = process.env.STUDY_BACKEND;
    delete process.env.STUDY_BACKEND;
    try {
      const r = await initBackend({ force: true });
      const webgpu = r.attempts.find((a) => a.name === "webgpu")!;
      if (isSoftwareAdapter(info)) {
        assert.notEqual(r.choice, "webgpu");
        assert.equal(webgpu.ok, false);
        assert.match(webgpu.detail, /only a software adapter .*STUDY_BACKEND=webgpu uses it/);
      } else {
        assert.ok(webgpu.ok || r.choice !== "webgpu", JSON.stringify(r.attempts));
      }
      assert.equal((await initBackend({ prefer: "webgpu", force: true })).choice, "webgpu");
    } finally {
      if (saved !== undefined) process.env.STUDY_BACKEND = saved;
    }
  });

  await t.test("a tensor on the GPU cannot be read synchronously: the error names the remedy; host values still read", async () => {
    await initBackend({ prefer: "webgpu", force: true });
    const host = tf.tensor1d(Array.from({ length: 4096 }, (_, i) => i));
    assert.equal(readableSync(host), true);
    assert.equal(host.dataSync()[4095], 4095); // made from host values, not yet used on the GPU
    const onGpu = tf.mul(host, 2); // 4096 elements: above the size tfjs-webgpu hands to its CPU kernels
    assert.equal(readableSync(onGpu), false);
    assert.throws(() => onGpu.dataSync(), /cannot be read synchronously .*await t\.data\(\)/);
    assert.equal((await onGpu.data())[4095], 8190);
    tf.dispose([host, onGpu]);
  });

  await t.test("AddN over more tensors than a shader can bind sums in chunks, equal to a running sum", async () => {
    await initBackend({ prefer: "webgpu", force: true });
    const xs = Array.from({ length: 57 }, (_, i) => tf.fill([4096], i + 0.25)); // the gradient norm's 57 sums
    const sum = tf.addN(xs);
    const running = xs.reduce((a, b) => tf.add(a, b));
    assert.equal(await maxAbsDiff(sum, running), 0);
    assert.equal(await scalar(tf.max(sum)), 57 * 56 / 2 + 57 * 0.25);
    tf.dispose([...xs, sum, running]);
  });

  await t.test("a device error makes the next read throw (the results would read as zeros) and is reported once", async () => {
    await initBackend({ prefer: "webgpu", force: true });
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    device.createBuffer({ size: 4, usage: 0 }); // invalid: a buffer needs a usage
    const x = tf.mul(tf.ones([4096]), 3);
    await assert.rejects(x.data(), /webgpu device error \(1 since the last read; the results are not valid\)/);
    assert.equal((await x.data())[0], 3, "the error is reported once; the next read is fine");
    x.dispose();
  });
});

// The tiled matmul (STUDY_WEBGPU_MATMUL=tiled) against tfjs's own kernel: every transpose, edges
// that do not fill a tile, batch broadcasting, and what it leaves to tfjs (under 64 outputs a side).
test("webgpu: the tiled matmul equals tfjs's kernel for every transpose, partial tiles and broadcast batches", async (t) => {
  if (!(await adapter)) {
    t.skip("Dawn finds no WebGPU adapter here");
    return;
  }
  await initBackend({ prefer: "webgpu", force: true });
  const cases: { a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [];
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    const [M, K, N] = [70, 33, 129];
    cases.push({ a: ta ? [3, K, M] : [3, M, K], b: tb ? [3, N, K] : [3, K, N], ta, tb });
  }
  cases.push({ a: [64, 16], b: [16, 64], ta: false, tb: false }); // one whole tile, rank 2
  cases.push({ a: [130, 48], b: [2, 48, 65], ta: false, tb: false }); // a broadcast over b's batch
  cases.push({ a: [1, 66, 20], b: [3, 20, 64], ta: false, tb: false }); // a batch of 1 against 3
  cases.push({ a: [2, 3, 65, 40], b: [2, 3, 40, 66], ta: false, tb: false }); // two batch axes
  cases.push({ a: [10, 8], b: [8, 100], ta: false, tb: false }); // under 64 rows: tfjs's kernel
  for (const [i, c] of cases.entries()) {
    const a = tf.randomNormal(c.a, 0, 1, "float32", 10 + i);
    const b = tf.randomNormal(c.b, 0, 1, "float32", 20 + i);
    const stock = await withMatMul("stock", () => tf.matMul(a, b, c.ta, c.tb));
    const tiled = await withMatMul("tiled", () => tf.matMul(a, b, c.ta, c.tb));
    assert.deepEqual(tiled.shape, stock.shape, JSON.stringify(c));
    const err = await maxAbsDiff(tiled, stock);
    assert.ok(err <= 2e-5, `${JSON.stringify(c)}: max |tiled - stock| = ${err}`);
    tf.dispose([a, b, stock, tiled]);
  }
  // The tiled kernel ran (its pipelines are cached under its own key), and not for the small product.
  const keys = Object.keys((tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache).filter((k) => k.startsWith("studyMatMul64_"));
  for (const k of ["3x70x33x129_00", "3x70x33x129_01", "3x70x33x129_10", "3x70x33x129_11", "1x64x16x64_00", "2x130x48x65_00_1_2", "3x66x20x64_00_1_3", "6x65x40x66_00"]) {
    assert.ok(keys.some((key) => key.startsWith(`studyMatMul64_${k}`)), `${k} in ${keys}`);
  }
  assert.ok(!keys.some((key) => key.startsWith("studyMatMul64_1x10x8x100")), "under 64 rows tfjs's kernel runs");
});
