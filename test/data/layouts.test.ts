import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import sharp from "sharp";
import { matVar, readMat } from "../../src/data/mat";
import { dtdFiles, flowers102Files, food101Files, loadLayout } from "../../src/data/layouts";
import { fixture, tempDir } from "../support/fixtures";

const dir = tempDir("layouts-test");
process.env.STUDY_DATA_DIR = path.join(dir, "data");

test("MAT v5: compressed and plain numeric variables (scipy.io.savemat files)", () => {
  const labels = matVar(readMat(fixture("imagelabels.mat"), "imagelabels.mat"), "labels", "imagelabels.mat");
  assert.deepEqual(labels.dims, [1, 12]);
  assert.deepEqual(Array.from(labels.data), [1, 2, 3, 1, 2, 3, 1, 2, 3, 102, 2, 3]);
  const set = readMat(fixture("setid.mat"), "setid.mat");
  assert.deepEqual(Array.from(matVar(set, "tstid", "setid.mat").data), [9, 10, 11, 12]);
  assert.throws(() => matVar(set, "nope", "setid.mat"), /no variable 'nope' \(has trnid, valid, tstid\)/);
});

test("MAT v5: truncated, corrupt and non-MAT files are clear errors", () => {
  const f = fixture("imagelabels.mat");
  assert.throws(() => readMat(f.subarray(0, 150), "cut.mat"), /cut\.mat: truncated MAT file/);
  const bad = Buffer.from(f);
  bad[bad.length - 5] ^= 0xff;
  assert.throws(() => readMat(bad, "bad.mat"), /bad\.mat: corrupt compressed element/);
  assert.throws(() => readMat(Buffer.alloc(200), "zero.mat"), /zero\.mat: not a MAT v5 file/);
});

test("MAT v5: a cell array is refused naming the variable", () => {
  // header + one uncompressed miMATRIX of class cell (1) named 'c'
  const head = Buffer.alloc(128, 0x20);
  head.write("MATLAB 5.0 MAT-file", 0);
  head.writeUInt16LE(0x0100, 124);
  head.write("IM", 126);
  const sub = Buffer.concat([
    Buffer.from([6, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]), // flags: class 1 (cell)
    Buffer.from([5, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]), // dims [1,1]
    Buffer.from([1, 0, 1, 0, 0x63, 0, 0, 0]), // small element: name 'c'
  ]);
  const el = Buffer.concat([Buffer.from([14, 0, 0, 0, sub.length, 0, 0, 0]), sub]);
  const z = zlib.deflateSync(el);
  const comp = Buffer.concat([Buffer.from([15, 0, 0, 0]), Buffer.from([z.length & 0xff, z.length >> 8, 0, 0]), z]);
  assert.throws(() => readMat(Buffer.concat([head, comp]), "cell.mat"), /cell\.mat: variable 'c' is a cell; only numeric matrices/);
});

const png = (v: number) => sharp({ create: { width: 5, height: 4, channels: 3, background: { r: v, g: v, b: v } } }).png().toBuffer();

test("DTD, Food-101 and Flowers-102 layouts: torchvision's file lists, labels and class order", async () => {
  const dtd = path.join(dir, "dtd", "dtd");
  for (const [cls, f] of [["banded", "banded_0002.jpg"], ["zigzagged", "zigzagged_0001.jpg"], ["banded", "banded_0001.jpg"]]) {
    fs.mkdirSync(path.join(dtd, "images", cls), { recursive: true });
    fs.writeFileSync(path.join(dtd, "images", cls, f), await png(cls === "banded" ? 10 : 200));
  }
  fs.mkdirSync(path.join(dtd, "labels"), { recursive: true });
  fs.writeFileSync(path.join(dtd, "labels", "train1.txt"), "zigzagged/zigzagged_0001.jpg\nbanded/banded_0002.jpg\n");
  fs.writeFileSync(path.join(dtd, "labels", "test1.txt"), "banded/banded_0001.jpg\n");
  const d = dtdFiles(path.join(dir, "dtd"), "train", 1);
  assert.deepEqual(d.classes, ["banded", "zigzagged"]);
  assert.deepEqual(d.labels, [1, 0]);
  assert.throws(() => dtdFiles(path.join(dir, "dtd"), "val", 1), /val1\.txt: split file is missing/);

  const food = path.join(dir, "food-101");
  fs.mkdirSync(path.join(food, "meta"), { recursive: true });
  for (const [cls, id] of [["apple_pie", "1005649"], ["waffles", "42"]]) {
    fs.mkdirSync(path.join(food, "images", cls), { recursive: true });
    fs.writeFileSync(path.join(food, "images", cls, `${id}.jpg`), await png(50));
  }
  fs.writeFileSync(path.join(food, "meta", "classes.txt"), "apple_pie\nwaffles\n");
  fs.writeFileSync(path.join(food, "meta", "train.txt"), "waffles/42\napple_pie/1005649\n");
  const fd = food101Files(dir, "train");
  assert.deepEqual(fd.labels, [1, 0]);
  assert.equal(path.basename(fd.files[0]), "42.jpg");

  const fl = path.join(dir, "flowers-102");
  fs.mkdirSync(path.join(fl, "jpg"), { recursive: true });
  for (let i = 1; i <= 12; i++) fs.writeFileSync(path.join(fl, "jpg", `image_${String(i).padStart(5, "0")}.jpg`), await png(i * 10));
  fs.writeFileSync(path.join(fl, "imagelabels.mat"), fixture("imagelabels.mat"));
  fs.writeFileSync(path.join(fl, "setid.mat"), fixture("setid.mat"));
  const test = flowers102Files(dir, "test");
  assert.deepEqual(test.labels, [2, 101, 1, 2]); // labels - 1 of images 9..12
  assert.equal(path.basename(test.files[1]), "image_00010.jpg");
  const ds = await loadLayout({ name: "flowers102", root: dir, split: "test", size: 8 });
  assert.equal(ds.size, 4);
  assert.equal(ds.image(0)[0], 90); // image_00009 is a flat grey 90 (PNG bytes, lossless)
  assert.deepEqual(Array.from(ds.labels), [2, 101, 1, 2]);
});
