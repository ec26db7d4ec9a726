import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { values } from "../support/read";
import { TinyMlp, toyImages } from "../support/linear-model";
import { memoryImageSet } from "../../src/data/dataset";
import { cifarEval } from "../../src/data/transforms";
import { evaluateAccuracy, extractFeatures, featureBatches } from "../../src/evaluation/features";
import { evaluateModel } from "../../src/evaluation/evaluate";

const S = 4;
const toy = toyImages(23, S, 3, 5);
const ds = memoryImageSet("toy", toy.pixels, S, S, toy.labels, ["a", "b", "c"]);

forEachBackend("features and accuracy", () => {
  test("batched extraction equals one big forward pass; memory returns to where it was", async () => {
    const m = new TinyMlp(S, 3, 6, 1);
    const before = tf.memory().numTensors;
    const f = await extractFeatures(m, ds, { transform: cifarEval(S), batchSize: 5, workers: 0 });
    assert.equal(tf.memory().numTensors, before);
    assert.equal(f.features.length, 23 * 6);
    const x = tf.tidy(() => tf.sub(tf.div(tf.tensor4d(toy.pixels, [23, S, S, 3], "float32"), 127.5), 1) as tf.Tensor4D);
    const ref = await values(m.features(x), { dispose: true });
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(ref[i] - f.features[i]) < 1e-5);
    const chunks: number[] = [];
    for await (const c of featureBatches(m, ds, { transform: cifarEval(S), batchSize: 10, workers: 0 })) chunks.push(c.labels.length);
    assert.deepEqual(chunks, [10, 10, 3]);
    tf.dispose(x);
    m.dispose();
  });

  test("top-1 equals argmax agreement computed directly; k-NN runs end to end", async () => {
    const m = new TinyMlp(S, 3, 6, 2);
    const a = await evaluateAccuracy(m, ds, { transform: cifarEval(S), batchSize: 7, workers: 0 });
    const x = tf.tidy(() => tf.sub(tf.div(tf.tensor4d(toy.pixels, [23, S, S, 3], "float32"), 127.5), 1) as tf.Tensor4D);
    const pred = await values(tf.tidy(() => tf.argMax(m.logits(x), 1)), { dispose: true });
    const direct = Array.from(pred).filter((p, i) => p === toy.labels[i]).length;
    assert.equal(a.correct, direct);
    assert.equal(a.n, 23);
    const r = await evaluateModel({ model: m, transform: cifarEval(S), accuracyOn: ds, knn: { bank: ds, queries: ds, ks: [1, 5] }, batchSize: 8 });
    assert.equal(r.top1, a.top1);
    assert.equal(r.knn![1], 1, "1-NN of the bank itself is exact");
    tf.dispose(x);
    m.dispose();
  });

  test("top-1 of a head with fewer classes than the set is an error naming both", async () => {
    const m = new TinyMlp(S, 2, 6, 2); // a 2-class head; the set has 3 classes
    await assert.rejects(evaluateAccuracy(m, ds, { transform: cifarEval(S), batchSize: 7, workers: 0 }), /evaluateAccuracy: toy has 3 classes, the model's head 2/);
    m.dispose();
  });
});
