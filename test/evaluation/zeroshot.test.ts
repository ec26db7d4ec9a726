import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { values } from "../support/read";
import { CLIP_SKIP, loadTiny, MERGES } from "../support/clip-fixture";
import { memoryImageSet } from "../../src/data/dataset";
import { cifarEval } from "../../src/data/transforms";
import type { CLIP } from "../../src/model/clip";
import { loadTokenizer } from "../../src/model/tokenizer";
import { DEFAULT_TEMPLATE, IMAGENET_CLASSNAMES, IMAGENET_TEMPLATES } from "../../src/evaluation/imagenet-prompts";
import { clipEval, fillTemplate, zeroShotAccuracy, zeroShotClassifier, zeroShotEvaluate, ZeroShotModel } from "../../src/evaluation/zeroshot";
import { Rng } from "../../src/ground/rng";

const SKIP = CLIP_SKIP;
const CLASSES = ["dog", "cat", "truck", "frog"];
const TEMPLATES = ["a photo of a {}.", "a sketch of the {}.", "itap of my {}."];

// ---- an independent float64 computation, one text and one image at a time ---------------------

const unit = (v: number[]) => {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / n);
};

/** The notebook's zeroshot_classifier, in plain JS: per class, mean of unit prompt features, renormalised. [K][E] */
async function referenceWeights(clip: CLIP, classes: string[], templates: string[]): Promise<number[][]> {
  const tok = loadTokenizer(MERGES);
  const out: number[][] = [];
  for (const c of classes) {
    const feats: number[][] = [];
    for (const t of templates) {
      const f = tf.tidy(() => clip.encodeText(tf.tensor2d(tok.tokenize(fillTemplate(t, c)).ids, [1, 77], "int32")));
      feats.push(unit(Array.from(await values(f, { dispose: true }))));
    }
    out.push(unit(feats[0].map((_, e) => feats.reduce((s, f) => s + f[e], 0) / feats.length)));
  }
  return out;
}

/** Unit image features of uint8 HWC images normalised as cifarEval ((x/255 - 0.5) / 0.5). [N][E] */
async function referenceImageFeatures(clip: CLIP, pixels: Uint8Array, n: number, size: number): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const px = Float32Array.from(pixels.subarray(i * size * size * 3, (i + 1) * size * size * 3), (p) => (p / 255 - 0.5) / 0.5);
    const f = tf.tidy(() => clip.encodeImage(tf.tensor4d(px, [1, size, size, 3])));
    out.push(unit(Array.from(await values(f, { dispose: true }))));
  }
  return out;
}

function randomImages(n: number, size: number, seed: number): Uint8Array {
  const rng = new Rng(`zeroshot/${seed}`);
  return Uint8Array.from({ length: n * size * size * 3 }, () => rng.int(256));
}

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);

forEachBackend("CLIP zero-shot", () => {
  test("the classifier is the normalised mean of the normalised prompt features, whatever the text batch", { skip: SKIP }, async () => {
    const clip = await loadTiny();
    const tok = loadTokenizer(MERGES);
    const ref = await referenceWeights(clip, CLASSES, TEMPLATES);
    for (const textBatchSize of [256, 1, 7]) {
      const c = zeroShotClassifier(clip, tok, CLASSES, TEMPLATES, { textBatchSize });
      assert.deepEqual(c.weights.shape, [32, CLASSES.length]);
      const w = await c.weights.array(); // [E,K]
      for (let k = 0; k < CLASSES.length; k++) for (let e = 0; e < 32; e++) assert.ok(Math.abs(w[e][k] - ref[k][e]) < 1e-5, `batch ${textBatchSize}: class ${k} dim ${e}`);
      c.weights.dispose();
    }
    clip.dispose();
  });

  test("top-1 over an ImageSet equals an independent computation; no tensors left", { skip: SKIP }, async () => {
    const clip = await loadTiny("hf-clip");
    const tok = loadTokenizer(MERGES);
    const N = 9, S = 32;
    const pixels = randomImages(N, S, 1);
    const w = await referenceWeights(clip, CLASSES, TEMPLATES);
    const scale = Math.exp((await clip.logitScale.data())[0]);
    const logits = (await referenceImageFeatures(clip, pixels, N, S)).map((f) => w.map((wk) => scale * dot(f, wk)));
    const pred = logits.map((l) => l.indexOf(Math.max(...l)));
    // Labels that agree with the prediction on even images only: the accuracy is known by construction.
    const labels = Int32Array.from(pred, (p, i) => (i % 2 === 0 ? p : (p + 1) % CLASSES.length));
    const expectedCorrect = pred.filter((p, i) => p === labels[i]).length;
    assert.equal(expectedCorrect, Math.ceil(N / 2));
    const expectedLoss = logits.reduce((s, l, i) => {
      const m = Math.max(...l);
      return s - (l[labels[i]] - m - Math.log(l.reduce((a, v) => a + Math.exp(v - m), 0)));
    }, 0) / N;
    const ds = memoryImageSet("random", pixels, S, S, labels, CLASSES);

    const c = zeroShotClassifier(clip, tok, CLASSES, TEMPLATES);
    const before = tf.memory().numTensors;
    const r = await zeroShotAccuracy(clip, c, ds, { transform: cifarEval(S), batchSize: 4, workers: 0 });
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
    assert.deepEqual([r.correct, r.n], [expectedCorrect, N]);
    assert.equal(r.top1, expectedCorrect / N);
    assert.ok(Math.abs(r.loss - expectedLoss) < 1e-3 * Math.max(1, expectedLoss), `loss ${r.loss} vs ${expectedLoss}`);
    c.weights.dispose();

    // The convenience form builds, evaluates and frees its own classifier.
    const n0 = tf.memory().numTensors;
    const r2 = await zeroShotEvaluate(clip, tok, ds, { templates: TEMPLATES, transform: cifarEval(S), batchSize: 5, workers: 0 });
    assert.equal(tf.memory().numTensors, n0);
    assert.equal(r2.correct, expectedCorrect);
    clip.dispose();
  });

  test("the default is the single template 'a photo of a {}.'", { skip: SKIP }, async () => {
    const clip = await loadTiny();
    const tok = loadTokenizer(MERGES);
    const a = zeroShotClassifier(clip, tok, CLASSES);
    assert.deepEqual(a.templates, [DEFAULT_TEMPLATE]);
    const ref = await referenceWeights(clip, CLASSES, ["a photo of a {}."]);
    const w = await a.weights.array();
    for (let k = 0; k < CLASSES.length; k++) for (let e = 0; e < 32; e++) assert.ok(Math.abs(w[e][k] - ref[k][e]) < 1e-5);
    const m = new ZeroShotModel(clip, a);
    assert.deepEqual([m.numClasses, m.featureDim, m.imageSize], [CLASSES.length, 32, 32]);
    m.dispose();
    assert.ok(a.weights.isDisposed);
    assert.ok(!clip.logitScale.isDisposed, "the wrapper does not own the CLIP model");
    clip.dispose();
  });
});

describe("CLIP zero-shot: prompts and checks", () => {
  test("the reference's 80 ImageNet templates and 1000 class names", () => {
    assert.equal(IMAGENET_TEMPLATES.length, 80);
    assert.equal(IMAGENET_CLASSNAMES.length, 1000);
    assert.ok(IMAGENET_TEMPLATES.every((t) => t.split("{}").length === 2));
    assert.deepEqual([IMAGENET_CLASSNAMES[0], IMAGENET_CLASSNAMES[1], IMAGENET_CLASSNAMES[999]], ["tench", "goldfish", "toilet paper"]);
    assert.equal(IMAGENET_TEMPLATES[0], "a bad photo of a {}.");
    assert.equal(IMAGENET_TEMPLATES[79], "a tattoo of the {}.");
    assert.equal(new Set(IMAGENET_TEMPLATES).size, 80);
  });

  test("templates are filled as str.format with one '{}'", () => {
    assert.equal(fillTemplate("a photo of a {}.", "great white shark"), "a photo of a great white shark.");
    assert.equal(fillTemplate("{} in a video game", "$&"), "$& in a video game", "no replacement patterns");
    assert.throws(() => fillTemplate("a photo", "dog"), /must contain '\{\}' exactly once/);
    assert.throws(() => fillTemplate("{} and {}", "dog"), /exactly once/);
  });

  test("the reference's eval transform", () => {
    assert.deepEqual(clipEval(224), { kind: "resize-center-crop", resize: 224, size: 224, interpolation: "bicubic", mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] });
  });

  test("a classifier for other classes than the dataset's is refused", { skip: SKIP }, async () => {
    const clip = await loadTiny();
    const c = zeroShotClassifier(clip, loadTokenizer(MERGES), ["dog", "cat"]);
    const ds = memoryImageSet("three", new Uint8Array(3 * 32 * 32 * 3), 32, 32, Int32Array.from([0, 1, 2]), ["a", "b", "c"]);
    await assert.rejects(zeroShotAccuracy(clip, c, ds, { transform: cifarEval(32), workers: 0 }), /the classifier has 2 classes, three has 3/);
    c.weights.dispose();
    clip.dispose();
  });
});
