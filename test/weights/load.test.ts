import { test } from "node:test";
import * as assert from "node:assert/strict";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { forEachBackend } from "../support/backends";
import { floats } from "../support/read";
import { ViTConfig, vitConfig } from "../../src/model/config";
import { createViT, ViT } from "../../src/model/vit";
import { loadStateDict, loadWeights, saveStateDict, toHost, trainableOnly } from "../../src/weights/load";
import { resamplePosEmbed } from "../../src/weights/posembed";
import { HostTensor, readSafetensors, StateDict } from "../../src/weights/safetensors";

const cfg = (over: Partial<ViTConfig> = {}) =>
  vitConfig({ imageSize: 8, patchSize: 4, width: 8, depth: 1, heads: 2, numClasses: 3, ...over });

/** Host snapshot of every variable (bit patterns), to prove what changed and what did not. */
async function snapshot(m: ViT): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of await toHost(m.namedVariables())) out.set(k, v.data.slice());
  return out;
}
const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

async function dictOf(m: ViT): Promise<StateDict> {
  const d: StateDict = new Map();
  for (const [k, v] of await toHost(m.namedVariables())) d.set(k, { dtype: "float32", shape: [...v.shape], data: v.data.slice() });
  return d;
}

forEachBackend("weights: save and load", () => {
  test("save all, load into a differently initialised model: every variable and the logits bit-identical", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "load-test-"));
    const file = path.join(dir, "m.safetensors");
    const a = createViT(cfg(), { seed: 1 });
    const b = createViT(cfg(), { seed: 2 });
    try {
      const { saved } = await saveStateDict(file, a.namedVariables(), { run: "test" });
      assert.equal(saved.length, a.namedVariables().size);
      assert.deepEqual((await readSafetensors(file)).metadata, { format: "pt", naming: "timm", run: "test" });
      const before = tf.memory().numTensors;
      const r = await loadWeights(b.namedVariables(), file);
      assert.equal(tf.memory().numTensors, before, "loading leaks no tensors");
      assert.equal(r.naming, "timm");
      assert.deepEqual([r.missing, r.unexpected, r.mismatched, r.resized], [[], [], [], []]);
      assert.equal(r.loaded.length, saved.length);
      const sa = await snapshot(a);
      const sb = await snapshot(b);
      for (const [k, v] of sa) assert.ok(sameBits(v, sb.get(k)!), `${k} bit-identical`);
      const x = tf.randomNormal([2, 8, 8, 3], 0, 1, "float32", 3) as tf.Tensor4D;
      const [la, lb] = [a.logits(x), b.logits(x)];
      assert.ok(sameBits(await floats(la), await floats(lb)));
      tf.dispose([x, la, lb]);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  test("save only the trainable subset; loading it non-strictly touches exactly those variables", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "load-test-"));
    const file = path.join(dir, "sub.safetensors");
    const a = createViT(cfg(), { seed: 3 });
    const b = createViT(cfg(), { seed: 4 });
    try {
      for (const [k, v] of a.namedVariables()) v.trainable = k.startsWith("head.") || k.startsWith("blocks.0.norm");
      const sub = trainableOnly(a.namedVariables());
      await saveStateDict(file, sub);
      const keys = [...(await readSafetensors(file)).tensors.keys()].sort();
      assert.deepEqual(keys, [...sub.keys()].sort());
      assert.deepEqual(keys, ["blocks.0.norm1.bias", "blocks.0.norm1.weight", "blocks.0.norm2.bias", "blocks.0.norm2.weight", "head.bias", "head.weight"]);
      const before = await snapshot(b);
      await assert.rejects(loadWeights(b.namedVariables(), file), /missing keys \(\d+\): patch_embed\.proj\.weight/);
      const r = await loadWeights(b.namedVariables(), file, { strict: false });
      assert.deepEqual(r.loaded.sort(), keys);
      assert.equal(r.missing.length, b.namedVariables().size - keys.length);
      const after = await snapshot(b);
      const sa = await snapshot(a);
      for (const [k, v] of after) {
        if (keys.includes(k)) assert.ok(sameBits(v, sa.get(k)!), `${k} loaded`);
        else assert.ok(sameBits(v, before.get(k)!), `${k} untouched`);
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  // Load problems: one table, one shared check (message names the file and the problem; model untouched).
  const PROBLEMS: { name: string; edit: (d: StateDict) => void; error: RegExp }[] = [
    { name: "shape mismatch", edit: (d) => d.set("head.weight", { dtype: "float32", shape: [5, 8], data: new Float32Array(40) }), error: /shape mismatch: head\.weight model \[3, 8\] vs file \[5, 8\]/ },
    { name: "missing key", edit: (d) => d.delete("norm.bias"), error: /missing keys \(1\): norm\.bias/ },
    { name: "unexpected key", edit: (d) => d.set("blocks.7.attn.qkv.weight", { dtype: "float32", shape: [1], data: new Float32Array(1) }), error: /unexpected keys \(1\): blocks\.7\.attn\.qkv\.weight/ },
    { name: "pos_embed of another width", edit: (d) => d.set("pos_embed", { dtype: "float32", shape: [1, 5, 4], data: new Float32Array(20) }), error: /pos_embed model \[1, 5, 8\] vs file \[1, 5, 4\]/ },
  ];
  for (const p of PROBLEMS) {
    test(`load fails clearly and assigns nothing: ${p.name}`, async () => {
      const src = createViT(cfg(), { seed: 5 });
      const dst = createViT(cfg(), { seed: 6 });
      try {
        const d = await dictOf(src);
        p.edit(d);
        const before = await snapshot(dst);
        assert.throws(() => loadStateDict(dst.namedVariables(), d, { file: "bad.safetensors" }), (e: unknown) => {
          assert.ok(e instanceof Error && e.message.startsWith("bad.safetensors: cannot load"), String(e));
          assert.match(e.message, p.error);
          return true;
        });
        const after = await snapshot(dst);
        for (const [k, v] of before) assert.ok(sameBits(v, after.get(k)!), `${k} untouched`);
      } finally {
        src.dispose();
        dst.dispose();
      }
    });
  }

  test("a new head: ignore [/^head\\./] loads the rest and keeps the head as initialised", async () => {
    const src = createViT(cfg({ numClasses: 10 }), { seed: 7 });
    const dst = createViT(cfg({ numClasses: 3 }), { seed: 8 });
    try {
      const headBefore = (await snapshot(dst)).get("head.weight")!;
      const r = loadStateDict(dst.namedVariables(), await dictOf(src), { ignore: [/^head\./] });
      assert.deepEqual(r.mismatched.map((m) => m.name), ["head.weight", "head.bias"]);
      assert.equal(r.loaded.length, dst.namedVariables().size - 2);
      const s = await snapshot(dst);
      assert.ok(sameBits(s.get("head.weight")!, headBefore));
      assert.ok(sameBits(s.get("blocks.0.attn.qkv.weight")!, (await snapshot(src)).get("blocks.0.attn.qkv.weight")!));
      // strict: false tolerates missing/unexpected but never a shape mismatch
      const srcDict = await dictOf(src); // read before assert.throws, which takes a synchronous function
      assert.throws(() => loadStateDict(dst.namedVariables(), srcDict, { strict: false }), /shape mismatch: head\.weight/);
    } finally {
      src.dispose();
      dst.dispose();
    }
  });

  test("pos_embed of another grid is resized on load (timm bicubic), or refused when told not to", async () => {
    const src = createViT(cfg({ imageSize: 8 }), { seed: 9 });
    const dst = createViT(cfg({ imageSize: 16 }), { seed: 10 });
    try {
      const d = await dictOf(src);
      assert.throws(() => loadStateDict(dst.namedVariables(), d, { resizePosEmbed: false }), /pos_embed model \[1, 17, 8\] vs file \[1, 5, 8\]/);
      const r = loadStateDict(dst.namedVariables(), d);
      assert.deepEqual(r.resized, ["pos_embed"]);
      const want = resamplePosEmbed(d.get("pos_embed") as HostTensor, [4, 4]);
      assert.ok(sameBits((await snapshot(dst)).get("pos_embed")!, want.data as Float32Array));
    } finally {
      src.dispose();
      dst.dispose();
    }
  });
});
