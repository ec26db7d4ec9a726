// Disposing a model or an optimizer gives back every tensor it made: tf.variable shares the data
// of the tensor it is made from, so an initial value left undisposed kept each parameter's (and
// each optimizer slot's) memory alive after dispose().
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { applyStrategy } from "../../src/adapters/strategies";
import { vitConfig } from "../../src/model/config";
import { CLIP, clipConfig } from "../../src/model/clip";
import { TextTransformer, textConfig } from "../../src/model/clip-text";
import { ViT } from "../../src/model/vit";
import { initBackend } from "../../src/runtime/backend";
import { AdamW, Sgd } from "../../src/training/optimizers";

test("ViT.create + dispose, with and without a strategy, leaves no tensor", async () => {
  await initBackend({ prefer: "cpu", force: true });
  const before = tf.memory().numTensors;
  ViT.create(vitConfig("vit-cifar-micro", { numClasses: 10 }), { seed: 0 }).dispose();
  assert.equal(tf.memory().numTensors, before);
  for (const spec of [{ kind: "lora", rank: 4 }, { kind: "block-expansion", p: 2 }] as const) {
    const base = ViT.create(vitConfig("vit-cifar-micro", { numClasses: 10 }), { seed: 0 });
    const tm = applyStrategy(base, spec);
    if (tm.model !== base) tm.model.dispose();
    base.dispose();
    assert.equal(tf.memory().numTensors, before, spec.kind);
  }
});

test("the text tower's create + dispose leaves no tensor", async () => {
  await initBackend({ prefer: "cpu", force: true });
  const before = tf.memory().numTensors;
  TextTransformer.create(textConfig({ contextLength: 8, vocabSize: 32, width: 16, heads: 2, depth: 1, embedDim: 8 }), { seed: 0 }).dispose();
  assert.equal(tf.memory().numTensors, before);
});

test("CLIP.create and CLIP.fromTensors + dispose leave no tensor", async () => {
  await initBackend({ prefer: "cpu", force: true });
  const config = clipConfig({ embed_dim: 8, image_resolution: 8, vision_layers: 1, vision_width: 64, vision_patch_size: 4, context_length: 8, vocab_size: 32, transformer_width: 16, transformer_heads: 2, transformer_layers: 1 });
  const before = tf.memory().numTensors;
  const made = CLIP.create(config, { seed: 0 });
  const copy = CLIP.fromTensors(config, made.namedVariables());
  made.dispose();
  copy.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test("optimizer slots are given back by dispose, also after load", async () => {
  await initBackend({ prefer: "cpu", force: true });
  const p = tf.variable(tf.tensor1d([1, 2, 3]));
  const g = tf.tensor1d([0.1, 0.2, 0.3]);
  const before = tf.memory().numTensors;
  for (const opt of [new Sgd({ name: "sgd", lr: 0.1, momentum: 0.9 }), new AdamW({ name: "adamw", lr: 0.1 })]) {
    opt.apply(new Map([["p", p]]), new Map([["p", g]]), 0.1);
    const state = new Map([...opt.state()].map(([k, v]) => [k, v.clone()]));
    opt.dispose();
    opt.load(state, 1);
    tf.dispose([...state.values()]);
    opt.dispose();
    assert.equal(tf.memory().numTensors, before, opt.config.name);
  }
  tf.dispose([p, g]);
});
