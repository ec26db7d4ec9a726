import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { maxAbsDiff, scalar, values } from "../support/read";
import { vitConfig, ViTConfig } from "../../src/model/config";
import { parameterShapes, ViT } from "../../src/model/vit";
import { initBackend } from "../../src/runtime/backend";

const tiny: ViTConfig = vitConfig({ imageSize: 16, patchSize: 4, width: 24, depth: 2, heads: 3, numClasses: 5 });

// Variants that change the computation; each must run and agree across backends.
const variants: Record<string, Partial<ViTConfig>> = {
  base: {},
  quickGeluPreNormNoBias: { act: "quick_gelu", preNorm: true, patchBias: false, headBias: false, lnEps: 1e-5 },
  noClassToken: { classToken: false },
  noQkvBias: { qkvBias: false },
};

forEachBackend("ViT", (backend) => {
  for (const [name, over] of Object.entries(variants)) {
    test(`${name}: shapes, finite outputs, and the same numbers as the cpu backend`, async () => {
      const cfg = vitConfig(tiny, over);
      const x = tf.randomNormal([2, 16, 16, 3], 0, 1, "float32", 7) as tf.Tensor4D;
      const m = ViT.create(cfg, { seed: 3 });
      const logits = m.logits(x);
      const feats = m.features(x);
      const blocks = m.blockOutputs(x);
      assert.deepEqual(logits.shape, [2, 5]);
      assert.deepEqual(feats.shape, [2, 24]);
      assert.equal(blocks.length, 2);
      assert.deepEqual(blocks[0].shape, [2, cfg.classToken ? 17 : 16, 24]);
      assert.ok(Array.from(await values(logits)).every(Number.isFinite));
      const got = await logits.array();
      const xHost = await x.array();
      // reference: same seed, same input, on cpu
      const before = tf.getBackend();
      await initBackend({ prefer: "cpu", force: true });
      const mc = ViT.create(cfg, { seed: 3 });
      const ref = mc.logits(tf.tensor4d(xHost));
      await initBackend({ prefer: backend, force: true });
      assert.equal(tf.getBackend(), before);
      assert.ok((await maxAbsDiff(tf.tensor2d(got), tf.tensor2d(await ref.array()))) < 1e-4, "backend differs from cpu");
      tf.dispose([x, logits, feats, ...blocks, ref]);
      m.dispose();
      mc.dispose();
    });
  }

  test("initialisation is timm's and depends only on the seed", async () => {
    const a = ViT.create(tiny, { seed: 11 });
    const b = ViT.create(tiny, { seed: 11 });
    const c = ViT.create(tiny, { seed: 12 });
    for (const [name, v] of a.params) assert.equal(await maxAbsDiff(v, b.p(name)), 0, name);
    assert.ok((await maxAbsDiff(a.p("blocks.0.attn.qkv.weight"), c.p("blocks.0.attn.qkv.weight"))) > 0);
    const w = await values(a.p("blocks.1.mlp.fc1.weight"));
    const std = Math.sqrt(Array.from(w).reduce((s, x) => s + x * x, 0) / w.length);
    assert.ok(Math.abs(std - 0.02) < 0.003, `fc1 std ${std}`);
    assert.equal(await scalar(tf.tidy(() => tf.max(tf.abs(a.p("blocks.0.attn.proj.bias"))))), 0);
    assert.deepEqual(Array.from(await values(a.p("norm.weight"))), new Array(24).fill(1));
    a.dispose();
    b.dispose();
    c.dispose();
  });

  test("parameters follow timm names and PyTorch layouts", () => {
    const m = ViT.create(tiny);
    const shapes = parameterShapes(tiny);
    assert.deepEqual([...m.params.keys()], [...shapes.keys()]);
    assert.deepEqual(m.p("patch_embed.proj.weight").shape, [24, 3, 4, 4]);
    assert.deepEqual(m.p("blocks.1.attn.qkv.weight").shape, [72, 24]);
    assert.deepEqual(m.p("head.weight").shape, [5, 24]);
    const total = [...shapes.values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
    assert.equal(total, [...m.params.values()].reduce((s, v) => s + v.size, 0));
    m.dispose();
  });

  test("a forward pass leaves no tensors behind", () => {
    const m = ViT.create(tiny);
    const x = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
    m.logits(x).dispose();
    const n = tf.memory().numTensors;
    m.logits(x).dispose();
    m.features(x).dispose();
    assert.equal(tf.memory().numTensors, n);
    x.dispose();
    m.dispose();
  });

  test("wrong input size is a clear error", () => {
    const m = ViT.create(tiny);
    assert.throws(() => m.logits(tf.zeros([1, 32, 32, 3]) as tf.Tensor4D), /expects input \[B,16,16,3\]/);
    m.dispose();
  });
});

test("config validation names the problem", () => {
  assert.throws(() => vitConfig(tiny, { patchSize: 5 }), /not a multiple of patchSize/);
  assert.throws(() => vitConfig(tiny, { heads: 5 }), /not divisible by heads/);
  assert.throws(() => vitConfig("vit-huge" as never), /unknown ViT preset/);
  assert.equal(vitConfig("vit-base-16").width, 768);
});
