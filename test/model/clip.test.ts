import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { maxAbsDiff } from "../support/read";
import { CLIP_DIR, CLIP_SKIP, loadTiny, TINY_JSON, TINY_WEIGHTS, tinyJson } from "../support/clip-fixture";
import { CLIP, clipConfig, clipParameterShapes, CLIPArgs } from "../../src/model/clip";
import { initBackend } from "../../src/runtime/backend";
import { inferCLIPConfig, toCLIP } from "../../src/weights/clip-names";
import { loadCLIP, readCLIPStateDict } from "../../src/weights/clip-load";
import { readClipFixture, runClipParity } from "../../src/weights/clip-parity";
import { saveStateDict } from "../../src/weights/load";
import { readSafetensors, writeSafetensors } from "../../src/weights/safetensors";

const SKIP = CLIP_SKIP;
const NAMINGS = ["openai-clip", "hf-clip"] as const;

/** Largest |got - expected| / (abs + rel |expected|); <= 1 is within tolerance. */
async function worst(got: tf.Tensor, expected: number[][], tol: { abs: number; rel: number }): Promise<number> {
  assert.deepEqual(got.shape, [expected.length, expected[0].length]);
  const a = await got.data();
  const b = expected.flat();
  return Math.max(...b.map((v, i) => Math.abs(a[i] - v) / (tol.abs + tol.rel * Math.abs(v))));
}

// A small config for backend-agreement tests without the fixture: 16 px, patch 8, width 64;
// text width 32, 2 heads, 2 blocks, context 12, vocabulary 60.
const SMALL: CLIPArgs = { embed_dim: 16, image_resolution: 16, vision_layers: 2, vision_width: 64, vision_patch_size: 8, context_length: 12, vocab_size: 60, transformer_width: 32, transformer_heads: 2, transformer_layers: 2 };

forEachBackend("CLIP", (backend) => {
  for (const naming of NAMINGS) {
    test(`${naming} names: image features, text features and logits match the reference; no tensors left`, { skip: SKIP }, async () => {
      const fx = tinyJson();
      const m = await loadTiny(naming);
      const x = tf.tensor4d(fx.image_input);
      const ids = tf.tensor2d(fx.tokenizer.map((t) => t.ids), undefined, "int32");
      const warm = m.forward(x, ids); // the first pass may create backend-cached constants
      tf.dispose([warm.logitsPerImage, warm.logitsPerText]);
      const before = tf.memory().numTensors;
      const img = m.encodeImage(x);
      const txt = m.encodeText(ids);
      const { logitsPerImage, logitsPerText } = m.forward(x, ids);
      const msg = `[${backend} ${naming}]`;
      assert.ok((await worst(img, fx.image_features, fx.tolerance)) <= 1, `${msg} image features`);
      assert.ok((await worst(txt, fx.text_features, fx.tolerance)) <= 1, `${msg} text features`);
      assert.ok((await worst(logitsPerImage, fx.logits_per_image, fx.tolerance)) <= 1, `${msg} logits per image`);
      const transposed = tf.transpose(logitsPerImage);
      assert.deepEqual(await logitsPerText.array(), await transposed.array());
      tf.dispose([img, txt, logitsPerImage, logitsPerText, transposed]);
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
      tf.dispose([x, ids]);
      m.dispose();
    });

    test(`${naming}: study parity's check passes with every tokenizer case`, { skip: SKIP }, async () => {
      const r = await runClipParity(TINY_WEIGHTS[naming], TINY_JSON);
      assert.equal(r.naming, naming);
      assert.ok(r.ok, `[${backend}] ${JSON.stringify({ img: r.imageFeatures, txt: r.textFeatures, logits: r.logitsPerImage, tok: r.tokenizer.failures })}`);
      assert.deepEqual([r.tokenizer.passed, r.tokenizer.total], [8, 8]);
    });
  }

  test("the text tower is causal: tokens after the end token change nothing, tokens before it do", { skip: SKIP }, async () => {
    const fx = tinyJson();
    const m = await loadTiny();
    const dog = fx.tokenizer[0].ids; // "a photo of a dog.", end token at 7
    const long = fx.tokenizer[7].ids; // end token at 16
    const junk = dog.map((v, i) => (i > 7 && i < 20 ? 320 + i : v));
    const encode = (rows: number[][]) => tf.tidy(() => m.encodeText(tf.tensor2d(rows, undefined, "int32")));
    const alone = encode([dog]);
    const batch = encode([junk, long]); // runs 17 columns
    const changed = encode([dog.map((v, i) => (i === 5 ? 2368 : v))]); // dog -> cat
    const first = batch.slice([0, 0], [1, -1]);
    assert.ok((await maxAbsDiff(alone, first)) < 1e-5);
    first.dispose();
    assert.ok((await maxAbsDiff(alone, changed)) > 1e-3);
    // Running only the columns up to the end token equals running all 77.
    const full = tf.tidy(() => {
      const tokens = m.text.forward(tf.tensor2d([dog], undefined, "int32")); // [1,77,W]
      return tf.matMul(tokens.slice([0, 7, 0], [1, 1, -1]).reshape([1, -1]), m.text.p("text_projection"));
    });
    assert.ok((await maxAbsDiff(alone, full)) < 1e-5);
    tf.dispose([alone, batch, changed, full]);
    m.dispose();
  });

  test("a fresh CLIP gives the same numbers as on the cpu backend; hooks on text linears apply", async () => {
    const cfg = clipConfig(SMALL);
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, "float32", 5) as tf.Tensor4D;
    const idsRows = [[58, 3, 7, 59, 0, 0, 0, 0, 0, 0, 0, 0], [58, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 59]];
    const run = async () => {
      const m = CLIP.create(cfg, { seed: 4 });
      const out = m.forward(tf.tensor4d(await x.array()), tf.tensor2d(idsRows, undefined, "int32"));
      const v = await out.logitsPerImage.array();
      tf.dispose([out.logitsPerImage, out.logitsPerText]);
      return { m, v };
    };
    const { m, v } = await run();
    assert.deepEqual([v.length, v[0].length], [2, 2]);
    assert.ok(v.flat().every(Number.isFinite));
    const hook = { apply: (_x: tf.Tensor2D, y: tf.Tensor2D) => tf.add(y, 0.5) as tf.Tensor2D };
    // Fresh ids for each pass, so that each is checked and cut on the host (see below for reused ones).
    const encode = () => tf.tidy(() => m.encodeText(tf.tensor2d(idsRows, undefined, "int32")));
    const plain = encode();
    m.text.addHook("blocks.1.mlp.fc1", hook);
    const hooked = encode();
    m.text.removeHook("blocks.1.mlp.fc1", hook);
    const again = encode();
    assert.ok((await maxAbsDiff(plain, hooked)) > 1e-4, "the hook changes the text features");
    assert.equal(await maxAbsDiff(plain, again), 0);
    // Ids used before: on webgpu they are on the GPU and cannot be read synchronously, so the end
    // tokens are found there (argmax) and no column is cut; the features agree to float rounding.
    const ids = tf.tensor2d(idsRows, undefined, "int32");
    const first = m.encodeText(ids);
    const reused = m.encodeText(ids);
    assert.ok((await maxAbsDiff(first, reused)) <= 1e-5, "ids used before give the same features");
    assert.ok((await maxAbsDiff(plain, reused)) <= 1e-5);
    tf.dispose([ids, first, reused]);
    assert.throws(() => m.text.addHook("blocks.9.mlp.fc1", hook), /has no linear layer 'blocks\.9\.mlp\.fc1'/);
    tf.dispose([plain, hooked, again]);
    m.dispose();
    await initBackend({ prefer: "cpu", force: true });
    const ref = await run();
    await initBackend({ prefer: backend, force: true });
    const d = Math.max(...v.flat().map((a, i) => Math.abs(a - ref.v.flat()[i])));
    assert.ok(d < 1e-4, `[${backend}] differs from cpu by ${d}`);
    ref.m.dispose();
    x.dispose();
  });
});

describe("CLIP names and configs", () => {
  test("parameters: visual.* timm names, text.* names, logit_scale; shapes agree with clipParameterShapes", async () => {
    const cfg = clipConfig(SMALL);
    const m = CLIP.create(cfg);
    const vars = m.namedVariables();
    const shapes = clipParameterShapes(cfg);
    assert.deepEqual([...vars.keys()].sort(), [...shapes.keys()].sort());
    for (const [k, s] of shapes) assert.deepEqual(vars.get(k)!.shape, s, k);
    for (const k of ["visual.head.weight", "visual.norm_pre.weight", "text.token_embedding.weight", "text.blocks.1.attn.qkv.weight", "text.ln_final.bias", "text.text_projection", "logit_scale"]) assert.ok(vars.has(k), k);
    assert.ok(!vars.has("visual.head.bias") && !vars.has("visual.patch_embed.proj.bias"));
    assert.ok(Math.abs((await m.logitScale.data())[0] - Math.log(1 / 0.07)) < 1e-6);
    m.dispose();
  });

  test("presets: the OpenAI ViT-B/32, B/16 and L/14 shapes", () => {
    const b32 = clipConfig("ViT-B/32");
    assert.deepEqual([b32.vision.width, b32.vision.heads, b32.vision.patchSize, b32.text.width, b32.text.heads, b32.embedDim], [768, 12, 32, 512, 8, 512]);
    const l14 = clipConfig("ViT-L/14");
    assert.deepEqual([l14.vision.width, l14.vision.heads, l14.vision.depth, l14.text.width, l14.text.heads, l14.embedDim], [1024, 16, 24, 768, 12, 768]);
    assert.throws(() => clipConfig("ViT-H/14" as never), /unknown CLIP preset/);
  });

  test("the config inferred from either naming is the fixture's; heads must be given when width is not a multiple of 64", { skip: SKIP }, async () => {
    const { config } = await readClipFixture(TINY_JSON);
    for (const naming of NAMINGS) {
      const conv = await readCLIPStateDict(TINY_WEIGHTS[naming]);
      assert.equal(conv.naming, naming);
      assert.deepEqual(inferCLIPConfig(conv.dict, { textHeads: 2 }), config);
      assert.throws(() => inferCLIPConfig(conv.dict, {}, "tiny"), /tiny: the text heads are not in the weights and width 32 is not a multiple of 64/);
    }
  });

  test("both namings convert to the same tensors", { skip: SKIP }, async () => {
    const a = await readCLIPStateDict(TINY_WEIGHTS["openai-clip"]);
    const b = await readCLIPStateDict(TINY_WEIGHTS["hf-clip"]);
    assert.deepEqual([...a.dict.keys()].sort(), [...b.dict.keys()].sort());
    for (const [k, t] of a.dict) {
      const u = b.dict.get(k)!;
      assert.deepEqual(u.shape, t.shape, k);
      assert.ok(t.data.every((v, i) => v === u.data[i]), k);
    }
    assert.equal(a.sources.get("text.blocks.0.attn.qkv.weight"), "transformer.resblocks.0.attn.in_proj_weight");
    assert.equal(b.sources.get("text.text_projection"), "text_projection.weight");
  });

  test("saved under the library's names, a CLIP loads back to the same outputs", { skip: SKIP }, async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "clip-"));
    const m = await loadTiny("hf-clip");
    const file = path.join(dir, "tiny.clip.safetensors");
    await saveStateDict(file, m.namedVariables(), { naming: "clip" });
    const back = await loadCLIP(file, { textHeads: 2 });
    assert.equal(back.naming, "clip");
    const ids = tf.tensor2d([tinyJson().tokenizer[2].ids], undefined, "int32");
    const [a, b] = [m.encodeText(ids), back.model.encodeText(ids)];
    assert.equal(await maxAbsDiff(a, b), 0);
    tf.dispose([a, b, ids]);
    m.dispose();
    back.model.dispose();
    await fsp.rm(dir, { recursive: true, force: true });
  });
});

/** A copy of a fixture weights file with `edit` applied to its tensors. */
async function edited(naming: keyof typeof TINY_WEIGHTS, edit: (t: Map<string, { shape: number[]; data: Float32Array }>) => void): Promise<string> {
  const { tensors, metadata } = await readSafetensors(TINY_WEIGHTS[naming]);
  const host = new Map([...tensors].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));
  edit(host);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "clip-bad-"));
  const file = path.join(dir, `bad.${naming}.safetensors`);
  await writeSafetensors(file, host, metadata);
  return file;
}

// Each broken file must be refused with the file and the offending tensor, in the file's names.
const BROKEN: [what: string, naming: keyof typeof TINY_WEIGHTS, edit: (t: Map<string, { shape: number[]; data: Float32Array }>) => void, message: RegExp][] = [
  ["a missing text block norm", "openai-clip", (t) => t.delete("transformer.resblocks.1.ln_1.weight"), /missing 'transformer\.resblocks\.1\.ln_1\.weight' \(text\.blocks\.1\.norm1\.weight\)/],
  ["a mis-shaped final norm", "openai-clip", (t) => t.set("ln_final.weight", { shape: [31], data: new Float32Array(31) }), /'ln_final\.weight' \(text\.ln_final\.weight\) has shape \[31\], expected \[32\]/],
  ["an extra tensor", "openai-clip", (t) => t.set("transformer.resblocks.0.attn.bias_k", { shape: [32], data: new Float32Array(32) }), /unexpected 'transformer\.resblocks\.0\.attn\.bias_k'/],
  ["a missing key projection", "hf-clip", (t) => t.delete("text_model.encoder.layers.0.self_attn.k_proj.weight"), /text_model\.encoder\.layers\.0\.self_attn\.\{q,k,v\}_proj\.weight cannot be fused into text\.blocks\.0\.attn\.qkv\.weight: k missing/],
  ["no text projection", "hf-clip", (t) => t.delete("text_projection.weight"), /'text_projection\.weight' \(text\.text_projection\) is missing/],
  ["a mis-shaped logit scale", "hf-clip", (t) => t.set("logit_scale", { shape: [2], data: new Float32Array(2) }), /'logit_scale' has shape \[2\], expected a scalar/],
];

describe("loading a broken CLIP file names the file and the tensor", { skip: SKIP }, () => {
  for (const [what, naming, edit, message] of BROKEN) {
    test(`${naming}: ${what}`, async () => {
      const file = await edited(naming, edit);
      const { config } = await readClipFixture(TINY_JSON);
      await assert.rejects(loadCLIP(file, { textHeads: 2, visionHeads: 2 }), (e: Error) => {
        assert.ok(e.message.includes(file), e.message);
        assert.match(e.message, message);
        return true;
      });
      if (what.startsWith("a mis-shaped final")) await assert.rejects(loadCLIP(file, { config }), message); // given config: same check
      await fsp.rm(path.dirname(file), { recursive: true, force: true });
    });
  }

  test("a ViT file is not a CLIP model", async () => {
    await assert.rejects(loadCLIP(path.join(CLIP_DIR, "..", "vit-parity", "micro.timm.safetensors")), /has timm names, not a CLIP model/);
    const textOnly = toCLIP(new Map([["text.blocks.0.norm1.weight", { dtype: "float32" as const, shape: [2], data: new Float32Array(2) }]]));
    assert.equal(textOnly.naming, "clip");
    assert.throws(() => inferCLIPConfig(textOnly.dict, {}, "text-only"), /text-only: vision tower: cannot infer the ViT config: 'patch_embed\.proj\.weight' is missing/);
  });
});
