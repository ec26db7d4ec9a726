// One table of strategies run through shared checks, on every backend: only the intended
// variables change after optimisation steps (frozen ones bit-identical), outputs stay finite,
// the untrained adapted model computes the base function, the tensor count stays flat, and the
// trainable count equals the analytic count. Adapter-specific checks (merge/unmerge, save/load,
// selective inference form) run on the cases that have an adapter.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { floats, maxAbsDiff, values } from "../support/read";
import { vitConfig, ViTConfig } from "../../src/model/config";
import { ViT } from "../../src/model/vit";
import { trainableParams } from "../../src/adapters/strategies";
import { forwardMacs, modelForwardMacs } from "../../src/model/flops";
import { applyStrategy, countTrainable, StrategyResult, StrategySpec } from "../../src/adapters/strategies";
import { SelectiveLoraAdapter } from "../../src/adapters/selective";
import { decodeAdapterInto, encodeAdapter } from "../../src/adapters/io";
import { parseSafetensors } from "../../src/weights/safetensors";

const tiny: ViTConfig = vitConfig({ imageSize: 16, patchSize: 4, width: 24, depth: 4, heads: 3, numClasses: 5 });

interface Case {
  name: string;
  spec: StrategySpec;
}

const CASES: Case[] = [
  { name: "full", spec: { kind: "full" } },
  { name: "top-2", spec: { kind: "top-k", k: 2 } },
  { name: "top-1 + final norm", spec: { kind: "top-k", k: 1, trainFinalNorm: true } },
  { name: "linear, fresh 7-class head", spec: { kind: "linear", freshHead: { classes: 7, seed: 4 } } },
  { name: "lora r2 query,value", spec: { kind: "lora", rank: 2 } },
  { name: "lora r3 alpha6 key,proj,fc1,fc2 dropout", spec: { kind: "lora", rank: 3, alpha: 6, targets: ["key", "proj", "fc1", "fc2"], dropout: 0.2, seed: 5 } },
  { name: "lora r2 fused qkv on blocks 1,3 (timm names)", spec: { kind: "lora", rank: 2, targets: ["qkv"], blocks: [1, 3] } },
  { name: "selective lora r2 lambda 0.5", spec: { kind: "selective-lora", rank: 2, lambda: 0.5, targets: ["query", "value", "fc2"] } },
  { name: "block expansion p=2", spec: { kind: "block-expansion", p: 2 } },
  { name: "block expansion split 3, fresh head", spec: { kind: "block-expansion", split: 3, freshHead: { classes: 3, init: "torch" } } },
  { name: "block expansion after blocks 1,3,4", spec: { kind: "block-expansion", after: [1, 3, 4] } },
];

async function snapshot(m: ViT): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of m.namedVariables()) out.set(k, await floats(v));
  return out;
}

function identical(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}

/** One plain SGD step on the strategy's trainable set, regularizer included. */
function sgdStep(t: StrategyResult, x: tf.Tensor4D, labels: tf.Tensor2D, step: number, lr = 0.5): void {
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => {
      const logits = t.model.logits(x, { training: true });
      const loss = tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
      const r = t.regularizer?.(step);
      return r ? tf.add(loss, r) : loss;
    }, t.trainable);
    for (const v of t.trainable) v.assign(tf.sub(v, tf.mul(grads[v.name], lr)));
  });
}

forEachBackend("strategies", () => {
  for (const c of CASES) {
    test(`${c.name}: trains exactly its variables, flat memory, analytic count`, async () => {
      const base = ViT.create(tiny, { seed: 2 });
      const x = tf.randomNormal([2, 16, 16, 3], 0, 1, "float32", 9) as tf.Tensor4D;
      const baseLogits = base.logits(x);
      const t = applyStrategy(base, c.spec);
      const m = t.model;
      const classes = m.config.numClasses;
      const labels = tf.oneHot(tf.tensor1d([1, 2], "int32"), classes).toFloat() as tf.Tensor2D;

      // the count the optimizer sees is the analytic one, and the flags match the list
      assert.equal(countTrainable(t), trainableParams(tiny, c.spec).total);
      assert.deepEqual(t.trainable.map((v) => v.name), t.trainableNames.map((n) => m.namedVariables().get(n)?.name));
      for (const [n, v] of m.namedVariables()) assert.equal(v.trainable, t.trainableNames.includes(n), n);

      // before training the adapted model is the base function (LoRA B = 0, identity blocks)
      if (!c.spec.freshHead) assert.ok((await maxAbsDiff(m.logits(x), baseLogits)) <= 1e-6, "untrained adapted model differs from the base");

      const before = await snapshot(m);
      const n0 = tf.memory().numTensors;
      for (let step = 0; step < 2; step++) {
        sgdStep(t, x, labels, step);
        assert.equal(tf.memory().numTensors, n0, `tensor count after step ${step + 1}`);
      }
      const after = await snapshot(m);
      const trainable = new Set(t.trainableNames);
      for (const [name, v] of before) {
        const same = identical(v, after.get(name) as Float32Array);
        if (trainable.has(name)) assert.ok(!same, `trainable '${name}' did not change`);
        else assert.ok(same, `frozen '${name}' changed`);
      }
      const out = m.logits(x);
      assert.deepEqual(out.shape, [2, classes]);
      assert.ok(Array.from(await values(out)).every(Number.isFinite), "non-finite logits");

      if (t.adapter) {
        // merge / unmerge
        const unmerged = m.logits(x);
        const macsUnmerged = modelForwardMacs(m).macs;
        assert.ok(macsUnmerged > forwardMacs(m.config).macs, "unmerged LoRA should cost more than the base");
        const W = await snapshot(m);
        t.adapter.merge();
        assert.equal(modelForwardMacs(m).macs, forwardMacs(m.config).macs, "merged LoRA costs the base model");
        const merged = m.logits(x);
        const mergedDiff = await maxAbsDiff(merged, unmerged);
        assert.ok(mergedDiff <= 1e-5, `merged differs by ${mergedDiff}`);
        t.adapter.unmerge();
        for (const [name, w] of W) {
          const now = m.namedVariables().get(name) as tf.Variable;
          assert.ok((await maxAbsDiff(now, tf.tensor(w, now.shape))) <= 1e-6, `unmerge did not restore '${name}'`);
        }
        assert.ok((await maxAbsDiff(m.logits(x), unmerged)) <= 1e-5);

        // save / load round trip into a fresh model with a differently seeded adapter
        const naming = (c.spec.kind === "lora" || c.spec.kind === "selective-lora") && (c.spec.targets ?? []).includes("qkv") ? "timm" : "hf";
        const bytes = await encodeAdapter(t.adapter, { naming, includeHead: true });
        const keys = [...parseSafetensors(bytes).tensors.keys()];
        assert.ok(keys.every((k) => k.startsWith("base_model.model.")), "peft prefix");
        assert.ok(keys.some((k) => k.endsWith(".lora_A.weight")) && keys.some((k) => k.endsWith(".lora_B.weight")));
        const other = ViT.create(tiny, { seed: 2 });
        const seededDifferently = { ...c.spec, seed: 99 } as StrategySpec;
        const t2 = applyStrategy(other, seededDifferently);
        assert.ok(t2.adapter);
        decodeAdapterInto(t2.adapter, bytes);
        assert.equal(await maxAbsDiff(t2.model.logits(x), unmerged), 0, "loaded adapter gives different logits");
        other.dispose();
      }

      if (t.adapter instanceof SelectiveLoraAdapter) {
        const sel = t.adapter;
        // close half of the gates, then the inference form must keep the training-form output
        const nBlocks = sel.layers.length;
        tf.tidy(() => sel.layers.forEach((l, i) => l.score.assign(tf.scalar(i % 2 === 0 ? 0.05 : 0.5))));
        assert.equal((await sel.gates()).share, Math.floor(nBlocks / 2) / nBlocks);
        const gated = m.logits(x);
        const merged = await sel.toInference();
        assert.equal(merged.length, Math.floor(nBlocks / 2));
        assert.equal(m.hooks.size, 0, "inference form keeps hooks");
        assert.deepEqual([...m.adapterParams.keys()], [], "inference form keeps adapter variables");
        assert.equal(modelForwardMacs(m).macs, forwardMacs(m.config).macs);
        assert.ok((await maxAbsDiff(m.logits(x), gated)) <= 1e-5);
      }
      tf.dispose([x, labels, baseLogits]);
      if (m !== base) m.dispose();
      base.dispose();
    });
  }
});
