// Details of the adapters: the selective gate's straight-through gradient, LoRA slices of the
// fused qkv, block-expansion plans and identity, target resolution, peft key names, FLOP counts,
// and the paper's parameter counts through `study params`.
import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { maxAbsDiff, scalar, values } from "../support/read";
import { vitConfig, ViTConfig } from "../../src/model/config";
import { ViT } from "../../src/model/vit";
import { forwardMacs, modelForwardMacs, tokens } from "../../src/model/flops";
import { trainableParams } from "../../src/adapters/strategies";
import { addLora } from "../../src/adapters/lora";
import { addSelectiveLora, straightThroughGate } from "../../src/adapters/selective";
import { expandBlocks, expansionPlan, splitForBlocks } from "../../src/adapters/expansion";
import { resolveTargets } from "../../src/adapters/targets";
import { adapterStateDict, decodeAdapterInto, encodeAdapter, moduleName } from "../../src/adapters/io";
import { specFromArgs } from "../../src/cli/commands/params";

const tiny: ViTConfig = vitConfig({ imageSize: 16, patchSize: 4, width: 24, depth: 4, heads: 3, numClasses: 5 });

function randomizeB(layers: { B: tf.Variable }[], seed: number): void {
  tf.tidy(() => layers.forEach((l, i) => l.B.assign(tf.randomNormal(l.B.shape, 0, 0.3, "float32", seed + i))));
}

forEachBackend("adapters", () => {
  test("selective gate: hard forward, straight-through gradient dL/ds = sum(dL/dy * delta)", async () => {
    const m = ViT.create(tiny, { seed: 1 });
    const sel = addSelectiveLora(m, { rank: 2, targets: ["value"], blocks: [0] });
    const l = sel.layers[0];
    randomizeB([l], 3);
    const x = tf.randomNormal([6, 24], 0, 1, "float32", 4) as tf.Tensor2D; // [M,in]
    const y = tf.randomNormal([6, 72], 0, 1, "float32", 5) as tf.Tensor2D; // [M,3D]
    const w = tf.randomNormal([6, 72], 0, 1, "float32", 6) as tf.Tensor2D; // dL/dy
    for (const s of [0.15, 0.05]) {
      tf.tidy(() => l.score.assign(tf.scalar(s)));
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(l.apply(x, y, {}), w)) as tf.Scalar, [l.score]);
      // definition: the ungated update in the value rows, dotted with dL/dy there
      const want = await scalar(tf.tidy(() => {
        const delta = tf.mul(tf.matMul(tf.matMul(x, l.A, false, true), l.B, false, true), l.scale); // [M,D]
        return tf.sum(tf.mul(delta, w.slice([0, 48], [6, 24])));
      }));
      const got = (await grads[l.score.name].data())[0];
      assert.ok(Math.abs(got - want) <= 1e-4 * Math.max(1, Math.abs(want)), `s=${s}: dL/ds ${got} vs ${want}`);
      assert.ok(Math.abs(want) > 1e-3, "degenerate check");
      // forward: gate open adds the update, closed leaves y exactly
      const out = l.apply(x, y, {});
      if (s < sel.tau) assert.equal(await maxAbsDiff(out, y), 0);
      else assert.ok((await maxAbsDiff(out, y)) > 1e-3);
      tf.dispose([value, out, ...Object.values(grads)]);
    }
    const g = tf.variableGrads(() => straightThroughGate(l.score as tf.Scalar, 0.1).mul(3) as tf.Scalar, [l.score]);
    assert.equal((await g.grads[l.score.name].data())[0], 3, "d gate/ds must be 1");
    assert.equal((await g.value.data())[0], 0, "gate closed at s=0.05");
    tf.dispose([x, y, w, g.value, ...Object.values(g.grads)]);
    m.dispose();
  });

  test("selective penalty: lambda * mean|s|, off before its start step", async () => {
    const m = ViT.create(tiny, { seed: 1 });
    const sel = addSelectiveLora(m, { rank: 1, targets: ["query", "value"] });
    tf.tidy(() => sel.layers.forEach((l, i) => l.score.assign(tf.scalar(i % 3 === 0 ? -0.2 : 0.3))));
    const reg = sel.regularizer({ lambda: 0.5, startStep: 10 });
    assert.equal(reg(9), undefined);
    const p = reg(10) as tf.Scalar;
    const gates = await sel.gates();
    const mean = gates.scores.reduce((a, s) => a + Math.abs(s), 0) / sel.layers.length;
    assert.ok(Math.abs((await p.data())[0] - 0.5 * mean) < 1e-6);
    assert.equal(gates.share, gates.scores.filter((s) => s >= 0.1).length / 8);
    p.dispose();
    m.dispose();
  });

  test("LoRA on a q/k/v slice writes only its rows; deltaWeight and merge agree with the hook", async () => {
    const m = ViT.create(tiny, { seed: 1 });
    const lora = addLora(m, { rank: 3, alpha: 6, targets: ["key"], blocks: [2] });
    const l = lora.layers[0];
    assert.deepEqual(l.site.rows, [24, 48]);
    randomizeB([l], 8);
    const x = tf.randomNormal([5, 24], 0, 1, "float32", 2) as tf.Tensor2D;
    const y = tf.zeros([5, 72]) as tf.Tensor2D;
    const out = l.apply(x, y, {}); // [5,72]
    assert.equal(await maxAbsDiff(out.slice([0, 0], [5, 24]), tf.zeros([5, 24])), 0);
    assert.equal(await maxAbsDiff(out.slice([0, 48], [5, 24]), tf.zeros([5, 24])), 0);
    const dW = l.deltaWeight(); // [72,24]
    assert.deepEqual(dW.shape, [72, 24]);
    assert.deepEqual(l.deltaWeight(true).shape, [24, 24]);
    assert.ok((await maxAbsDiff(out, tf.matMul(x, dW, false, true))) < 1e-5, "x dW^T equals the hook's update");
    assert.equal(l.scale, 2);
    const img = tf.randomNormal([2, 16, 16, 3], 0, 1, "float32", 3) as tf.Tensor4D;
    const a = m.logits(img);
    lora.merge();
    assert.ok((await maxAbsDiff(m.logits(img), a)) <= 1e-5);
    lora.unmerge();
    lora.setEnabled(false);
    lora.mergeAndUnload();
    assert.equal(m.hooks.size, 0);
    tf.dispose([x, y, out, dW, img, a]);
    m.dispose();
  });

  test("LoRA dropout is seeded and only active when training", async () => {
    const run = async (training: boolean) => {
      const m = ViT.create(tiny, { seed: 1 });
      const lora = addLora(m, { rank: 2, dropout: 0.5, seed: 7 });
      randomizeB(lora.layers, 1);
      const img = tf.randomNormal([2, 16, 16, 3], 0, 1, "float32", 3) as tf.Tensor4D;
      const out = await m.logits(img, { training }).array();
      lora.setEnabled(true);
      const plain = await m.logits(img).array();
      img.dispose();
      m.dispose();
      return { out: tf.tensor(out), plain: tf.tensor(plain) };
    };
    const t1 = await run(true);
    const t2 = await run(true);
    const e = await run(false);
    assert.equal(await maxAbsDiff(t1.out, t2.out), 0, "same seed, same masks");
    assert.ok((await maxAbsDiff(t1.out, t1.plain)) > 1e-4, "dropout changed nothing while training");
    assert.equal(await maxAbsDiff(e.out, e.plain), 0, "dropout at evaluation");
    tf.dispose([t1.out, t1.plain, t2.out, t2.plain, e.out, e.plain]);
  });

  test("block expansion: identity to 1e-6, official numbering, copies of the group's top block", async () => {
    const m = ViT.create(vitConfig(tiny, { depth: 6 }), { seed: 5 });
    const img = tf.randomNormal([2, 16, 16, 3], 0, 1, "float32", 3) as tf.Tensor4D;
    for (const split of [1, 2, 3, 5, 6]) {
      const { model: e, newBlocks, plan } = expandBlocks(m, { split });
      assert.equal(e.config.depth, 6 + Math.floor(6 / split));
      assert.deepEqual(newBlocks, plan.newBlocks);
      assert.ok((await maxAbsDiff(e.logits(img), m.logits(img))) <= 1e-6, `logits, split ${split}`);
      assert.ok((await maxAbsDiff(e.features(img), m.features(img))) <= 1e-6, `features, split ${split}`);
      for (const nb of newBlocks) {
        const src = plan.source[nb];
        assert.equal(plan.source[nb - 1], src, "a copy follows its source block");
        assert.equal(await maxAbsDiff(e.p(`blocks.${nb}.attn.qkv.weight`), m.p(`blocks.${src}.attn.qkv.weight`)), 0);
        assert.equal(await maxAbsDiff(e.p(`blocks.${nb}.mlp.fc1.weight`), m.p(`blocks.${src}.mlp.fc1.weight`)), 0);
        for (const z of ["attn.proj.weight", "attn.proj.bias", "mlp.fc2.weight", "mlp.fc2.bias"]) {
          assert.equal(await scalar(tf.tidy(() => tf.max(tf.abs(e.p(`blocks.${nb}.${z}`))))), 0, z);
        }
      }
      e.dispose();
    }
    // the source model still works after the expanded one is gone
    assert.ok(Array.from(await values(m.logits(img), { dispose: true })).every(Number.isFinite));
    img.dispose();
    m.dispose();
  });

  test("adapter files: HF ViT names for q/k/v, timm names otherwise, clear errors", async () => {
    const m = ViT.create(tiny, { seed: 1 });
    const lora = addLora(m, { rank: 2 });
    const keys = [...(await adapterStateDict(lora, { includeHead: true })).keys()];
    assert.ok(keys.includes("base_model.model.vit.encoder.layer.0.attention.attention.query.lora_A.weight"));
    assert.ok(keys.includes("base_model.model.vit.encoder.layer.3.attention.attention.value.lora_B.weight"));
    assert.ok(keys.includes("base_model.model.classifier.weight"));
    assert.deepEqual((await adapterStateDict(lora)).get("base_model.model.vit.encoder.layer.1.attention.attention.value.lora_B.weight")?.shape, [24, 2]);
    const timmKeys = [...(await adapterStateDict(lora, { naming: "timm" })).keys()];
    assert.ok(timmKeys.includes("base_model.model.blocks.0.attn.qkv.query.lora_A.weight"));
    assert.equal(moduleName("blocks.4.mlp.fc1", "hf"), "vit.encoder.layer.4.intermediate.dense");
    assert.equal(moduleName("blocks.4.mlp.fc2", "hf"), "vit.encoder.layer.4.output.dense");
    assert.equal(moduleName("blocks.4.attn.proj", "hf"), "vit.encoder.layer.4.attention.output.dense");
    assert.throws(() => moduleName("blocks.0.attn.qkv", "hf"), /naming "timm"/);
    // a rank mismatch and a missing module are named
    const other = ViT.create(tiny, { seed: 1 });
    const r4 = addLora(other, { rank: 4 });
    const bytes = await encodeAdapter(lora);
    assert.throws(() => decodeAdapterInto(r4, bytes), /shape \[2,24\], expected \[4,24\]/);
    const more = addLora(other, { rank: 2, targets: ["fc1"] }, "more");
    assert.throws(() => decodeAdapterInto(more, bytes), /neither naming/);
    const fewer = addLora(other, { rank: 2, targets: ["query"] }, "fewer");
    assert.throws(() => decodeAdapterInto(fewer, bytes), /LoRA tensors this adapter lacks/);
    m.dispose();
    other.dispose();
  });

  test("FLOPs: LoRA adds r*(in+out) MACs per token per site until merged", () => {
    const m = ViT.create(tiny, { seed: 1 });
    const base = forwardMacs(tiny).macs;
    assert.equal(modelForwardMacs(m).macs, base);
    const lora = addLora(m, { rank: 2, targets: ["query", "fc1"] });
    const T = tokens(tiny);
    const perBlock = T * 2 * (24 + 24) + T * 2 * (24 + 96);
    assert.equal(modelForwardMacs(m).macs, base + 4 * perBlock);
    lora.merge();
    assert.equal(modelForwardMacs(m).macs, base);
    m.dispose();
  });
});

describe("counts and plans (no tensors)", () => {
  test("PAPERS.md section 2: the ten Table-1 rows through study params", () => {
    const rows: [string, number][] = [
      ["--strategy all", 85_875_556],
      ["--strategy top-k --k 3", 21_340_516],
      ["--strategy linear", 76_900],
      ["--strategy lora --rank 4", 36_864 * 4 + 76_900],
      ["--strategy lora --rank 8", 36_864 * 8 + 76_900],
      ["--strategy lora --rank 16", 36_864 * 16 + 76_900],
      ["--strategy block --blocks 1", 7_164_772],
      ["--strategy block --blocks 2", 14_252_644],
      ["--strategy block --blocks 3", 21_340_516],
      ["--strategy block --blocks 4", 28_428_388],
    ];
    for (const [args, want] of rows) {
      const { config, spec } = specFromArgs(["--model", "vit-base-16", "--classes", "100", ...args.split(" ")]);
      assert.equal(trainableParams(config, spec).total, want, args);
    }
  });

  test("ViT-B/16 section 1 counts: backbone, block, head", () => {
    const c = vitConfig("vit-base-16", { numClasses: 100 });
    const full = trainableParams(c, { kind: "full" });
    assert.deepEqual(full.parts, [["backbone", 85_798_656], ["head", 76_900]]);
    assert.equal(trainableParams(c, { kind: "block-expansion", p: 1 }).total - 76_900, 7_087_872);
  });

  test("expansion plans: official splits and numbering", () => {
    assert.deepEqual(expansionPlan(12, { split: 3 }).newBlocks, [3, 7, 11, 15]);
    assert.deepEqual(expansionPlan(12, { split: 4 }).newBlocks, [4, 9, 14]);
    assert.deepEqual(expansionPlan(12, { split: 6 }).newBlocks, [6, 13]);
    const p1 = expansionPlan(12, { split: 11 });
    assert.deepEqual(p1.newBlocks, [11]);
    assert.deepEqual(p1.source, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 11]);
    assert.deepEqual([4, 3, 2, 1].map((p) => splitForBlocks(12, p)), [3, 4, 6, 11]);
    assert.throws(() => expansionPlan(12, { p: 5 }), /does not divide/);
    assert.throws(() => expansionPlan(12, {}), /give split, p or after/);
    assert.throws(() => expansionPlan(12, { p: 2, split: 6 }), /not split and p/);
    // Explicit placement: 3 copies in a 4-block model (no split gives that).
    const a = expansionPlan(4, { after: [1, 3, 4] });
    assert.deepEqual([a.p, a.split, a.source, a.newBlocks], [3, undefined, [0, 0, 1, 2, 2, 3, 3], [1, 4, 6]]);
    assert.deepEqual(expansionPlan(12, { split: 4 }).after, [4, 8, 12]);
    assert.throws(() => expansionPlan(4, { after: [3, 1] }), /increasing block numbers in \[1, 4\]/);
    assert.throws(() => expansionPlan(4, { after: [5] }), /increasing/);
  });

  test("LoRA targets: per-block names, full names, overlaps and unknown names rejected", () => {
    const sites = resolveTargets(tiny, ["query", "value", "blocks.2.mlp.fc2"], { blocks: [1, 2] });
    assert.deepEqual(sites.map((s) => s.name), ["blocks.1.attn.qkv.query", "blocks.1.attn.qkv.value", "blocks.2.attn.qkv.query", "blocks.2.attn.qkv.value", "blocks.2.mlp.fc2"]);
    assert.deepEqual(resolveTargets(tiny, ["blocks.0.attn.key"])[0].rows, [24, 48]);
    assert.throws(() => resolveTargets(tiny, ["qkv", "query"]), /overlaps/);
    assert.throws(() => resolveTargets(tiny, ["attn"]), /not a linear layer/);
    assert.throws(() => resolveTargets(tiny, ["query"], { blocks: [4] }), /does not exist/);
  });

  test("selective LoRA count adds one score per block", () => {
    const c = vitConfig("vit-base-16", { numClasses: 100 });
    const lora = trainableParams(c, { kind: "lora", rank: 8 }).total;
    assert.equal(trainableParams(c, { kind: "selective-lora", rank: 8 }).total, lora + 24);
  });
});
