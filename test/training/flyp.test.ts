import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { floats, scalar } from "../support/read";
import { CLIP_SKIP, loadTiny, MERGES, tinyJson } from "../support/clip-fixture";
import { loadTokenizer } from "../../src/model/tokenizer";
import { initBackend } from "../../src/runtime/backend";
import { Rng } from "../../src/ground/rng";
import { clampLogitScale, clipContrastiveLoss, flypLoss, flypPromptIds, flypPrompts } from "../../src/training/flyp";

/** CLIP's symmetric contrastive loss in float64, written out from its definition. */
function referenceLoss(img: number[][], txt: number[][], logitScale: number): number {
  const unit = (v: number[]) => {
    const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return v.map((x) => x / n);
  };
  const I = img.map(unit);
  const T = txt.map(unit);
  const s = Math.exp(logitScale);
  const L = I.map((a) => T.map((b) => s * a.reduce((acc, x, k) => acc + x * b[k], 0))); // L[i][j]
  /** Mean over rows of -log softmax(row)[target = row index]. */
  const ce = (rows: number[][]) =>
    rows.reduce((acc, r, i) => {
      const m = Math.max(...r);
      return acc - (r[i] - m - Math.log(r.reduce((z, v) => z + Math.exp(v - m), 0)));
    }, 0) / rows.length;
  const Lt = L[0].map((_, j) => L.map((row) => row[j]));
  return (ce(L) + ce(Lt)) / 2;
}

function randomMatrix(rng: Rng, rows: number, cols: number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => rng.normal()));
}

// [what, batch, width, logit scale, how the text features are made]
const CASES: [string, number, number, number, "random" | "duplicate" | "aligned"][] = [
  ["one pair (loss 0)", 1, 3, 0, "random"],
  ["CLIP's initial scale", 5, 4, Math.log(1 / 0.07), "random"],
  ["the clamp's maximum scale", 8, 16, Math.log(100), "random"],
  ["two pairs with the same prompt (a class seen twice)", 6, 8, 2, "duplicate"],
  ["texts close to their images", 4, 8, Math.log(1 / 0.07), "aligned"],
];

forEachBackend("FLYP loss", (backend) => {
  for (const [what, B, E, scale, kind] of CASES) {
    test(`${what}: equals the float64 reference, and so does its gradient in logit_scale`, async () => {
      const rng = new Rng(`flyp/${what}`);
      const img = randomMatrix(rng, B, E);
      let txt = randomMatrix(rng, B, E);
      if (kind === "duplicate") txt[1] = [...txt[0]];
      if (kind === "aligned") txt = img.map((r) => r.map((x) => x + 0.1 * rng.normal()));
      const want = referenceLoss(img, txt, scale);
      const it = tf.tensor2d(img);
      const tt = tf.tensor2d(txt);
      const s = tf.scalar(scale);
      const before = tf.memory().numTensors;
      const loss = clipContrastiveLoss(it, tt, s);
      const got = (await loss.data())[0];
      assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `[${backend}] ${got} vs ${want}`);
      if (B === 1) assert.ok(Math.abs(got) < 1e-6);
      const g = tf.grad((x: tf.Tensor) => clipContrastiveLoss(it, tt, x))(s);
      const h = 1e-4;
      const numeric = (referenceLoss(img, txt, scale + h) - referenceLoss(img, txt, scale - h)) / (2 * h);
      const dds = (await g.data())[0];
      assert.ok(Math.abs(dds - numeric) <= 1e-3 * Math.max(1, Math.abs(numeric)), `[${backend}] d/ds ${dds} vs ${numeric}`);
      tf.dispose([loss, g]);
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
      tf.dispose([it, tt, s]);
    });
  }

  test("flypLoss on the tiny CLIP: the loss of its features; gradients reach every variable, as on cpu", { skip: CLIP_SKIP }, async () => {
    const fx = tinyJson();
    const tok = loadTokenizer(MERGES);
    const labels = [1, 0];
    const ids = flypPromptIds(tok, labels, ["dog", "cat"], ["a photo of a {}."]);
    const run = async () => {
      const clip = await loadTiny();
      const x = tf.tensor4d(fx.image_input);
      const t = tf.tensor2d(ids.ids, ids.shape, "int32");
      const direct = await scalar(tf.tidy(() => clipContrastiveLoss(clip.encodeImage(x), clip.encodeText(t), clip.logitScale)));
      const vars = [...clip.namedVariables()];
      const before = tf.memory().numTensors;
      const { value, grads } = tf.variableGrads(() => flypLoss(clip, x, t), vars.map(([, v]) => v));
      const hostGrads = new Map<string, Float32Array>();
      for (const [k, v] of vars) hostGrads.set(k, await floats(grads[v.name]));
      const out = { loss: (await value.data())[0], direct, grads: hostGrads };
      tf.dispose([value, ...Object.values(grads)]);
      const leaked = tf.memory().numTensors - before;
      tf.dispose([x, t]);
      clip.dispose();
      return { ...out, leaked };
    };
    const got = await run();
    assert.equal(got.leaked, 0, "tensors leaked");
    assert.ok(Math.abs(got.loss - got.direct) < 1e-6);
    assert.equal(got.grads.size, 62, "every tensor of the file is a variable");
    for (const [k, g] of got.grads) assert.ok(g.every(Number.isFinite), `${k}: non-finite gradient`);
    // Only the rows of the prompts' tokens get a token-embedding gradient (the lookup's scatter).
    const emb = got.grads.get("text.token_embedding.weight")!;
    const used = new Set(Array.from(ids.ids.subarray(0, 8)).concat(Array.from(ids.ids.subarray(77, 85))));
    const rowNorm = (r: number) => emb.subarray(r * 32, (r + 1) * 32).reduce((s, v) => s + Math.abs(v), 0);
    for (const r of used) assert.ok(rowNorm(r) > 0, `row ${r} has no gradient`);
    assert.equal(rowNorm(1000), 0);
    await initBackend({ prefer: "cpu", force: true });
    const ref = await run();
    await initBackend({ prefer: backend, force: true });
    assert.ok(Math.abs(got.loss - ref.loss) < 1e-5);
    for (const [k, g] of got.grads) {
      const r = ref.grads.get(k)!;
      let scale = 1e-3, d = 0;
      for (let i = 0; i < r.length; i++) {
        scale = Math.max(scale, Math.abs(r[i]));
        d = Math.max(d, Math.abs(g[i] - r[i]));
      }
      assert.ok(d <= 1e-3 * scale, `[${backend}] ${k}: gradient differs from cpu by ${d} (scale ${scale})`);
    }
  });
});

describe("FLYP prompts and logit scale", () => {
  test("one prompt per image from its class; a seeded template choice; the first template without a generator", () => {
    const classes = ["dog", "cat", "truck"];
    const templates = ["a photo of a {}.", "a sketch of a {}.", "art of the {}."];
    assert.deepEqual(flypPrompts([2, 0], classes, templates), ["a photo of a truck.", "a photo of a dog."]);
    const a = flypPrompts([0, 1, 2, 0, 1, 2, 0, 1], classes, templates, new Rng(3));
    assert.deepEqual(a, flypPrompts([0, 1, 2, 0, 1, 2, 0, 1], classes, templates, new Rng(3)));
    a.forEach((p, i) => assert.ok(p.endsWith(`${classes[[0, 1, 2, 0, 1, 2, 0, 1][i]]}.`), p));
    assert.ok(new Set(a.map((p) => p.split(" ")[1])).size > 1, "more than one template drawn");
    assert.throws(() => flypPrompts([5], classes, templates), /label 5 has no class name/);
  });

  test("clampLogitScale keeps it in [0, ln 100]", { skip: CLIP_SKIP }, async () => {
    const clip = await loadTiny();
    tf.tidy(() => clip.logitScale.assign(tf.scalar(7)));
    clampLogitScale(clip);
    assert.ok(Math.abs((await clip.logitScale.data())[0] - Math.log(100)) < 1e-6);
    tf.tidy(() => clip.logitScale.assign(tf.scalar(-1)));
    clampLogitScale(clip);
    assert.equal((await clip.logitScale.data())[0], 0);
    clip.dispose();
  });
});
