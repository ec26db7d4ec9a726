import { test } from "node:test";
import * as assert from "node:assert/strict";
import { resize, resizeBox } from "../../src/data/resample";
import {
  applyTransform, cifarTrain, imagenetEval, paperEval, paperTrain, randomResizedCropBox, sampleParams,
} from "../../src/data/transforms";
import { Rng } from "../../src/ground/rng";
import { fixture } from "../support/fixtures";

interface Golden { src: [number, number]; cases: { filter: "bilinear" | "bicubic"; out: [number, number]; box: [number, number, number, number] | null; data: number[] }[] }

function pattern(h: number, w: number): Uint8Array {
  const a = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) a[(y * w + x) * 3 + c] = (x * 37 + y * 91 + c * 53 + x * y * 7) % 256;
  return a;
}

test("resampling equals Pillow 12 Image.resize bit for bit (bilinear, bicubic; down, up, boxes)", () => {
  const g = JSON.parse(fixture("resample-golden.json").toString()) as Golden;
  const [h, w] = g.src;
  const src = pattern(h, w);
  for (const c of g.cases) {
    const out = resizeBox(src, h, w, 3, c.box ?? [0, 0, w, h], c.out[0], c.out[1], c.filter);
    assert.deepEqual(Array.from(out), c.data, `${c.filter} -> ${c.out} box ${c.box}`);
  }
});

test("RandomResizedCrop boxes follow torchvision's rules", () => {
  const rng = new Rng("rrc");
  for (let i = 0; i < 500; i++) {
    const b = randomResizedCropBox(rng, 40, 60, [0.08, 1], [3 / 4, 4 / 3]);
    assert.ok(b.w >= 1 && b.h >= 1 && b.x >= 0 && b.y >= 0 && b.x + b.w <= 60 && b.y + b.h <= 40);
  }
  // impossible scale forces the centre-crop fallback: whole image clipped to the ratio range
  const fb = randomResizedCropBox(new Rng(1), 10, 100, [5, 6], [3 / 4, 4 / 3]);
  assert.deepEqual(fb, { x: Math.floor((100 - 13) / 2), y: 0, w: 13, h: 10 });
  const sq = randomResizedCropBox(new Rng(1), 20, 20, [5, 6], [3 / 4, 4 / 3]);
  assert.deepEqual(sq, { x: 0, y: 0, w: 20, h: 20 });
});

test("CIFAR pad-crop: zero padding, exact shift, flip; normalised with mean=std=0.5", () => {
  const img = pattern(8, 8);
  const spec = { ...cifarTrain(8, 2) };
  const out = new Float32Array(8 * 8 * 3);
  applyTransform(spec, img, 8, 8, { x: -2, y: 1, w: 8, h: 8, flip: false }, out, 0);
  const v = (x: number, y: number, c: number) => out[(y * 8 + x) * 3 + c];
  assert.equal(v(0, 0, 0), -1); // padding is black: (0/255 - 0.5)/0.5
  // output (2,0) is source (0,1): ToTensor then Normalize, in float32
  assert.equal(v(2, 0, 1), Math.fround((Math.fround(img[(1 * 8 + 0) * 3 + 1] / 255) - 0.5) / 0.5));
  assert.equal(v(0, 7, 0), -1); // row 8 of the source is padding
  const flipped = new Float32Array(8 * 8 * 3);
  applyTransform(spec, img, 8, 8, { x: -2, y: 1, w: 8, h: 8, flip: true }, flipped, 0);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) assert.equal(flipped[(y * 8 + x) * 3], out[(y * 8 + 7 - x) * 3]);
});

test("eval transforms are deterministic; ImageNet eval = shorter side + centre crop", () => {
  const img = pattern(30, 40);
  const a = new Float32Array(16 * 16 * 3), b = new Float32Array(16 * 16 * 3);
  const spec = imagenetEval(16, 20); // shorter side 20 -> 20x26, crop 16 at (2, 5)
  const p = sampleParams(spec, undefined, 30, 40);
  assert.deepEqual(p, { x: 5, y: 2, w: 26, h: 20, flip: false });
  applyTransform(spec, img, 30, 40, p, a, 0);
  applyTransform(spec, img, 30, 40, sampleParams(spec, undefined, 30, 40), b, 0);
  assert.deepEqual(a, b);
  const resized = resizeBox(img, 30, 40, 3, [0, 0, 40, 30], 20, 26, "bicubic");
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  assert.ok(Math.abs(a[0] - (resized[(2 * 26 + 5) * 3] / 255 - mean[0]) / std[0]) < 1e-5);
  assert.throws(() => sampleParams(paperTrain(16), undefined, 30, 40), /random and needs an Rng/);
  const e = new Float32Array(16 * 16 * 3);
  applyTransform(paperEval(16), img, 30, 40, sampleParams(paperEval(16), undefined, 30, 40), e, 0);
  assert.ok(e.every((x) => x >= -1 && x <= 1));
});

test("same seed, same random transform output; different seed differs", () => {
  const img = pattern(32, 32);
  const run = (seed: string) => {
    const rng = new Rng(seed);
    const out = new Float32Array(5 * 24 * 24 * 3);
    for (let i = 0; i < 5; i++) applyTransform(paperTrain(24), img, 32, 32, sampleParams(paperTrain(24), rng, 32, 32), out, i * 24 * 24 * 3);
    return out;
  };
  assert.deepEqual(run("s"), run("s"));
  assert.notDeepEqual(run("s"), run("t"));
});

test("crop arithmetic rounds like Python (half to even), as torchvision's CenterCrop/RandomResizedCrop", async () => {
  const { pyRound } = await import("../../src/data/transforms");
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, 2.4, 2.6, 3].map(pyRound), [0, 2, 2, -0, 2, 3, 3]);
  // 225x301: shorter side -> 224 gives 224x299 (int(224*301/225)); crop 222: top = round(1.0) = 1,
  // left = round(38.5) = 38 in Python (Math.round would say 39)
  const p = sampleParams(imagenetEval(222, 224), undefined, 225, 301);
  assert.deepEqual(p, { x: 38, y: 1, w: 299, h: 224, flip: false });
});

test("normalisation is float32 arithmetic step by step (ToTensor then Normalize with float32 mean/std)", () => {
  const img = pattern(2, 2);
  const out = new Float32Array(2 * 2 * 3);
  const spec = { kind: "identity" as const, size: 2, mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] };
  applyTransform(spec, img, 2, 2, { x: 0, y: 0, w: 2, h: 2, flip: false }, out, 0);
  const f = Math.fround;
  for (let i = 0; i < 12; i++) {
    const c = i % 3;
    const x = f(img[i] / 255), d = f(x - f(spec.mean[c]));
    assert.equal(out[i], f(d / f(spec.std[c])));
  }
});

test("nearest is Pillow's NEAREST: one source pixel per output, no averaging when downscaling", () => {
  // Expected rows: Pillow 9.4 `Image.resize((w, 1), Image.NEAREST)` (and box=(1, 0, 6, 1)) on this row.
  const row = [0, 100, 200, 250, 30, 60, 90];
  const src = Uint8Array.from(row.flatMap((v) => [v, v, v]));
  const red = (x: Uint8Array) => Array.from(x).filter((_, i) => i % 3 === 0);
  const cases: [number, number[]][] = [[2, [100, 60]], [3, [100, 250, 60]], [5, [0, 200, 250, 30, 90]], [11, [0, 0, 100, 200, 200, 250, 30, 30, 60, 90, 90]]];
  for (const [w, want] of cases) assert.deepEqual(red(resize(src, 1, 7, 3, 1, w, "nearest")), want, `width ${w}`);
  assert.deepEqual(red(resizeBox(src, 1, 7, 3, [1, 0, 6, 1], 1, 3, "nearest")), [100, 250, 60]);
});

test("resize-center-crop with a resize below the crop size is an error naming both", () => {
  assert.throws(() => sampleParams(imagenetEval(32, 24), new Rng(0), 40, 40), /resize-center-crop: resize 24 is smaller than the crop size 32/);
});
