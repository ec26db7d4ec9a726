import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { existsSync } from "node:fs";
import { detectNaming, inferViTConfig, Naming, toTimm } from "../../src/weights/names";
import { HostTensor, readSafetensors, StateDict } from "../../src/weights/safetensors";

const FIXTURES = path.resolve(__dirname, "..", "..", "..", "shared", "fixtures");

// A small random timm-named dict. Every value distinct, so a wrong slice or transpose shows.
interface Arch { D: number; depth: number; grid: number; P: number; classes: number; clip: boolean }
function randomTimm(a: Arch, seed = 1): StateDict {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const t = (...shape: number[]): HostTensor => {
    const n = shape.reduce((x, y) => x * y, 1);
    return { dtype: "float32", shape, data: Float32Array.from({ length: n }, rnd) };
  };
  const { D, P } = a;
  const d: StateDict = new Map();
  d.set("patch_embed.proj.weight", t(D, 3, P, P));
  if (!a.clip) d.set("patch_embed.proj.bias", t(D));
  d.set("cls_token", t(1, 1, D));
  d.set("pos_embed", t(1, a.grid * a.grid + 1, D));
  if (a.clip) {
    d.set("norm_pre.weight", t(D));
    d.set("norm_pre.bias", t(D));
  }
  for (let i = 0; i < a.depth; i++) {
    for (const n of ["norm1", "norm2"]) {
      d.set(`blocks.${i}.${n}.weight`, t(D));
      d.set(`blocks.${i}.${n}.bias`, t(D));
    }
    d.set(`blocks.${i}.attn.qkv.weight`, t(3 * D, D));
    d.set(`blocks.${i}.attn.qkv.bias`, t(3 * D));
    d.set(`blocks.${i}.attn.proj.weight`, t(D, D));
    d.set(`blocks.${i}.attn.proj.bias`, t(D));
    d.set(`blocks.${i}.mlp.fc1.weight`, t(4 * D, D));
    d.set(`blocks.${i}.mlp.fc1.bias`, t(4 * D));
    d.set(`blocks.${i}.mlp.fc2.weight`, t(D, 4 * D));
    d.set(`blocks.${i}.mlp.fc2.bias`, t(D));
  }
  d.set("norm.weight", t(D));
  d.set("norm.bias", t(D));
  d.set("head.weight", t(a.classes, D));
  if (!a.clip) d.set("head.bias", t(a.classes));
  return d;
}

// Independent inverses (timm -> other namings), written from the reference naming schemes.
const rows = (x: HostTensor, from: number, to: number): HostTensor => {
  const w = x.shape.slice(1).reduce((p, q) => p * q, 1);
  return { dtype: "float32", shape: [to - from, ...x.shape.slice(1)], data: (x.data as Float32Array).slice(from * w, to * w) };
};
const plain = (shape: number[], data: Float32Array): HostTensor => ({ dtype: "float32", shape, data });
const blockIndex = (k: string) => Number(/^blocks\.(\d+)\./.exec(k)![1]);

function toHfVit(d: StateDict, prefix: string): StateDict {
  const o: StateDict = new Map();
  const D = d.get("cls_token")!.shape[2];
  for (const [k, v] of d) {
    const rest = k.replace(/^blocks\.\d+\./, "");
    const L = k.startsWith("blocks.") ? `${prefix}encoder.layer.${blockIndex(k)}.` : "";
    if (k === "cls_token") o.set(`${prefix}embeddings.cls_token`, v);
    else if (k === "pos_embed") o.set(`${prefix}embeddings.position_embeddings`, v);
    else if (k.startsWith("patch_embed.proj.")) o.set(`${prefix}embeddings.patch_embeddings.projection.${k.split(".").pop()}`, v);
    else if (k.startsWith("norm.")) o.set(`${prefix}layernorm.${k.split(".").pop()}`, v);
    else if (k.startsWith("head.")) o.set(`classifier.${k.split(".").pop()}`, v);
    else if (rest.startsWith("attn.qkv.")) {
      const wb = rest.split(".").pop();
      ["query", "key", "value"].forEach((n, j) => o.set(`${L}attention.attention.${n}.${wb}`, rows(v, j * D, (j + 1) * D)));
    } else {
      const map: Record<string, string> = { norm1: "layernorm_before", norm2: "layernorm_after", "attn.proj": "attention.output.dense", "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense" };
      const mod = rest.slice(0, rest.lastIndexOf("."));
      o.set(`${L}${map[mod]}.${rest.split(".").pop()}`, v);
    }
  }
  o.set(`${prefix}pooler.dense.weight`, plain([D, D], new Float32Array(D * D)));
  return o;
}

function toHfClip(d: StateDict): StateDict {
  const o: StateDict = new Map();
  const D = d.get("cls_token")!.shape[2];
  const V = "vision_model.";
  for (const [k, v] of d) {
    const rest = k.replace(/^blocks\.\d+\./, "");
    const L = k.startsWith("blocks.") ? `${V}encoder.layers.${blockIndex(k)}.` : "";
    if (k === "cls_token") o.set(`${V}embeddings.class_embedding`, plain([D], v.data as Float32Array));
    else if (k === "pos_embed") o.set(`${V}embeddings.position_embedding.weight`, plain(v.shape.slice(1), v.data as Float32Array));
    else if (k === "patch_embed.proj.weight") o.set(`${V}embeddings.patch_embedding.weight`, v);
    else if (k.startsWith("norm_pre.")) o.set(`${V}pre_layrnorm.${k.split(".").pop()}`, v);
    else if (k.startsWith("norm.")) o.set(`${V}post_layernorm.${k.split(".").pop()}`, v);
    else if (k === "head.weight") o.set("visual_projection.weight", v);
    else if (rest.startsWith("attn.qkv.")) {
      const wb = rest.split(".").pop();
      ["q", "k", "v"].forEach((n, j) => o.set(`${L}self_attn.${n}_proj.${wb}`, rows(v, j * D, (j + 1) * D)));
    } else {
      const map: Record<string, string> = { norm1: "layer_norm1", norm2: "layer_norm2", "attn.proj": "self_attn.out_proj", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2" };
      o.set(`${L}${map[rest.slice(0, rest.lastIndexOf("."))]}.${rest.split(".").pop()}`, v);
    }
  }
  o.set("text_model.embeddings.token_embedding.weight", plain([4, 2], new Float32Array(8)));
  o.set("logit_scale", plain([], new Float32Array([2.6])));
  o.set(`${V}embeddings.position_ids`, { dtype: "int32", shape: [1, 5], data: new Int32Array(5) });
  return o;
}

function toOpenAI(d: StateDict): StateDict {
  const o: StateDict = new Map();
  const D = d.get("cls_token")!.shape[2];
  for (const [k, v] of d) {
    const rest = k.replace(/^blocks\.\d+\./, "");
    const L = k.startsWith("blocks.") ? `visual.transformer.resblocks.${blockIndex(k)}.` : "";
    if (k === "cls_token") o.set("visual.class_embedding", plain([D], v.data as Float32Array));
    else if (k === "pos_embed") o.set("visual.positional_embedding", plain(v.shape.slice(1), v.data as Float32Array));
    else if (k === "patch_embed.proj.weight") o.set("visual.conv1.weight", v);
    else if (k.startsWith("norm_pre.")) o.set(`visual.ln_pre.${k.split(".").pop()}`, v);
    else if (k.startsWith("norm.")) o.set(`visual.ln_post.${k.split(".").pop()}`, v);
    else if (k === "head.weight") {
      const [E] = v.shape;
      const p = new Float32Array(D * E);
      for (let e = 0; e < E; e++) for (let j = 0; j < D; j++) p[j * E + e] = v.data[e * D + j];
      o.set("visual.proj", plain([D, E], p));
    } else if (rest === "attn.qkv.weight") o.set(`${L}attn.in_proj_weight`, v);
    else if (rest === "attn.qkv.bias") o.set(`${L}attn.in_proj_bias`, v);
    else {
      const map: Record<string, string> = { norm1: "ln_1", norm2: "ln_2", "attn.proj": "attn.out_proj", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj" };
      o.set(`${L}${map[rest.slice(0, rest.lastIndexOf("."))]}.${rest.split(".").pop()}`, v);
    }
  }
  o.set("transformer.resblocks.0.attn.in_proj_weight", plain([6, 2], new Float32Array(12)));
  o.set("text_projection", plain([2, 2], new Float32Array(4)));
  return o;
}

function assertSameDict(got: StateDict, want: StateDict, what: string) {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${what}: keys`);
  for (const [k, w] of want) {
    const g = got.get(k)!;
    assert.deepEqual(g.shape, w.shape, `${what}: shape of ${k}`);
    assert.ok(g.data.length === w.data.length && g.data.every((x, i) => Object.is(x, w.data[i])), `${what}: values of ${k}`);
  }
}

const VIT: Arch = { D: 8, depth: 2, grid: 3, P: 2, classes: 5, clip: false };
const CLIP: Arch = { D: 8, depth: 2, grid: 2, P: 4, classes: 6, clip: true };

describe("name maps: random timm dict -> other naming (independent inverse) -> timm", () => {
  const cases: { naming: Naming; arch: Arch; to: (d: StateDict) => StateDict; skipped: number }[] = [
    { naming: "hf-vit", arch: VIT, to: (d) => toHfVit(d, "vit."), skipped: 1 },
    { naming: "hf-vit", arch: VIT, to: (d) => toHfVit(d, ""), skipped: 1 },
    { naming: "hf-clip", arch: CLIP, to: toHfClip, skipped: 3 },
    { naming: "openai-clip", arch: CLIP, to: toOpenAI, skipped: 2 },
    { naming: "timm", arch: VIT, to: (d) => new Map([...d].map(([k, v]) => [`module.backbone.${k}`, v])), skipped: 0 },
  ];
  for (const c of cases) {
    test(`${c.naming}${c.naming === "hf-vit" ? ` (${[...c.to(randomTimm(c.arch)).keys()][0].split(".")[0]} prefix)` : ""}`, () => {
      const timm = randomTimm(c.arch, 7);
      const other = c.to(timm);
      assert.equal(detectNaming(other.keys()), c.naming);
      const conv = toTimm(other);
      assert.equal(conv.naming, c.naming);
      assert.equal(conv.skipped.length, c.skipped, JSON.stringify(conv.skipped));
      assertSameDict(conv.dict, timm, c.naming);
      const explicit = toTimm(other, { naming: c.naming });
      assertSameDict(explicit.dict, timm, `${c.naming} (explicit)`);
    });
  }

  test("unknown naming and incomplete q/k/v are clear errors", () => {
    assert.throws(() => detectNaming(["foo.weight", "bar.bias"], "x.safetensors"), /x\.safetensors: cannot tell the naming from the keys \(2 keys: 'foo\.weight', 'bar\.bias'\); pass one of timm, hf-vit/);
    const hf = toHfVit(randomTimm(VIT), "vit.");
    hf.delete("vit.encoder.layer.1.attention.attention.key.weight");
    assert.throws(() => toTimm(hf, { file: "y.safetensors" }), /y\.safetensors: blocks\.1\.attn\.qkv\.weight cannot be fused: k missing/);
  });

  test("inferViTConfig reads the architecture back", () => {
    const { config, guessed } = inferViTConfig(randomTimm(VIT), { heads: 2 });
    assert.deepEqual(
      { ...config },
      { imageSize: 6, patchSize: 2, inChannels: 3, width: 8, depth: 2, heads: 2, mlpRatio: 4, qkvBias: true, classToken: true, lnEps: 1e-6, act: "gelu", preNorm: false, patchBias: true, numClasses: 5, headBias: true },
    );
    assert.deepEqual(guessed.sort(), ["act", "lnEps"]);
    const clip = inferViTConfig(toTimm(toOpenAI(randomTimm(CLIP))).dict, { naming: "openai-clip" }).config;
    assert.equal(clip.preNorm, true);
    assert.equal(clip.patchBias, false);
    assert.equal(clip.headBias, false);
    assert.equal(clip.act, "quick_gelu");
    assert.equal(clip.lnEps, 1e-5);
    assert.equal(clip.imageSize, 8);
    assert.equal(clip.numClasses, 6);
  });
});

describe("name maps on the reference fixtures (same weights under two namings)", () => {
  const pairs: [string, string, Naming][] = [
    ["vit-parity/micro.hf.safetensors", "vit-parity/micro.timm.safetensors", "hf-vit"],
    ["vit-parity/small16.hf.safetensors", "vit-parity/small16.timm.safetensors", "hf-vit"],
    ["clip-parity/tiny.hf.safetensors", "clip-parity/tiny.openai.safetensors", "hf-clip"],
  ];
  for (const [a, b, naming] of pairs) {
    test(`${a} == ${b} after conversion`, async (t) => {
      if (!existsSync(FIXTURES)) return t.skip(`fixtures folder absent: ${FIXTURES}`);
      const A = toTimm((await readSafetensors(path.join(FIXTURES, a))).tensors);
      const B = toTimm((await readSafetensors(path.join(FIXTURES, b))).tensors);
      assert.equal(A.naming, naming);
      assertSameDict(A.dict, B.dict, `${a} vs ${b}`);
    });
  }
});
