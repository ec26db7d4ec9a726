import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { listFolder, loadImageFolder } from "../../src/data/imagefolder";
import { selectClasses, subsetIndices } from "../../src/data/dataset";
import { tempDir } from "../support/fixtures";
import { tarBytes } from "../support/tar-writer";

const dir = tempDir("imagefolder-test");
const cache = { dir: path.join(dir, "cache") };
const decode = { size: 6, fit: "fill" as const, interpolation: "bilinear" as const };

const solid = (w: number, h: number, channels: 3 | 4, rgb: number[]) =>
  sharp({ create: { width: w, height: h, channels, background: { r: rgb[0], g: rgb[1], b: rgb[2], alpha: 0.5 } } });

async function makeTree(root: string) {
  const files: [string, Buffer][] = [
    ["train/dog/b.png", await solid(6, 6, 3, [10, 20, 30]).png().toBuffer()],
    ["train/dog/a.png", await solid(6, 6, 4, [40, 50, 60]).png().toBuffer()], // alpha: dropped
    ["train/cat/z.png", await solid(6, 6, 3, [200, 100, 0]).toColourspace("b-w").png().toBuffer()], // grayscale
    ["train/cat/odd.jpg", await solid(9, 5, 3, [0, 0, 255]).jpeg({ quality: 95 }).toBuffer()], // odd size -> resized
    ["train/cat/cmyk.jpg", await solid(6, 6, 3, [255, 0, 0]).toColourspace("cmyk").jpeg({ quality: 95 }).toBuffer()],
    ["train/cat/notes.txt", Buffer.from("not an image")],
  ];
  for (const [rel, b] of files) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), b);
  }
  return files;
}

test("folder tree: sorted classes, sorted files, RGB at the chosen size (gray, alpha, CMYK, odd sizes)", async () => {
  const root = path.join(dir, "tree");
  await makeTree(root);
  const listing = listFolder(path.join(root, "train"));
  assert.deepEqual(listing.classes, ["cat", "dog"]);
  assert.deepEqual(listing.files, ["cat/cmyk.jpg", "cat/odd.jpg", "cat/z.png", "dog/a.png", "dog/b.png"]);
  const ds = await loadImageFolder({ root, split: "train", decode, cache });
  assert.deepEqual(Array.from(ds.labels), [0, 0, 0, 1, 1]);
  const px = (i: number) => Array.from(ds.image(i).subarray(0, 3));
  assert.deepEqual(px(3), [40, 50, 60]); // RGBA PNG: alpha dropped, colour kept
  assert.deepEqual(px(4), [10, 20, 30]);
  const g = px(2);
  assert.ok(g[0] === g[1] && g[1] === g[2] && g[0] > 50, `grayscale expands to equal channels, got ${g}`);
  const red = px(0);
  assert.ok(red[0] > 200 && red[1] < 60 && red[2] < 60, `CMYK red converts to sRGB red, got ${red}`);
  const blue = px(1);
  assert.ok(blue[2] > 200 && blue[0] < 40, `resized JPEG stays blue, got ${blue}`);
  // a second load is served by the cache: it does not decode again (an image rewritten in place,
  // same name, leaves the folders' mtimes as they were and goes unnoticed)
  const file = path.join(root, "train/dog/b.png");
  const bytes = fs.readFileSync(file);
  const st = fs.statSync(path.join(root, "train/dog"));
  fs.writeFileSync(file, "not an image any more");
  fs.utimesSync(path.join(root, "train/dog"), st.atimeMs / 1000, st.mtimeMs / 1000);
  const again = await loadImageFolder({ root, split: "train", decode, cache });
  assert.equal(again.size, 5);
  assert.deepEqual(Array.from(again.image(4).subarray(0, 3)), [10, 20, 30]);
  fs.writeFileSync(file, bytes);
  fs.utimesSync(path.join(root, "train/dog"), st.atimeMs / 1000, st.mtimeMs / 1000);
});

test("tarball tree: same dataset as the folder, read as a stream", async () => {
  const root = path.join(dir, "tree");
  const entries = fs.readdirSync(path.join(root, "train"), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => {
      const abs = path.join(d.parentPath, d.name);
      return { name: `pkg/${path.relative(root, abs)}`, data: fs.readFileSync(abs) };
    });
  const tgz = path.join(dir, "tree.tar.gz");
  fs.writeFileSync(tgz, tarBytes(entries.reverse()));
  const fromTar = await loadImageFolder({ root: tgz, split: "train", decode, cache });
  const fromDir = await loadImageFolder({ root, split: "train", decode, cache });
  assert.deepEqual(Array.from(fromTar.labels), Array.from(fromDir.labels));
  for (let i = 0; i < fromDir.size; i++) assert.deepEqual(Buffer.from(fromTar.image(i)), Buffer.from(fromDir.image(i)));
});

test("a corrupt image is an error naming the file", async () => {
  const root = path.join(dir, "bad");
  fs.mkdirSync(path.join(root, "train", "x"), { recursive: true });
  fs.writeFileSync(path.join(root, "train", "x", "broken.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
  await assert.rejects(loadImageFolder({ root, split: "train", decode, cache }), /broken\.jpg: cannot decode image/);
  assert.throws(() => listFolder(path.join(dir, "nowhere")), /no such folder/);
});

test("a class folder without images is an error naming it, as in torchvision (labels would shift otherwise)", async () => {
  const root = path.join(dir, "empty-class");
  for (const c of ["ant", "bee", "cat"]) fs.mkdirSync(path.join(root, "val", c), { recursive: true });
  for (const c of ["ant", "cat"]) fs.writeFileSync(path.join(root, "val", c, "a.png"), await solid(6, 6, 3, [1, 2, 3]).png().toBuffer());
  fs.writeFileSync(path.join(root, "val", "bee", "readme.txt"), "no images here");
  assert.throws(() => listFolder(path.join(root, "val")), /val: class folder 'bee' holds no images/);
  // With the classes given (e.g. the 1000 ImageNet wnids over a subset), absent ones are allowed.
  assert.deepEqual(listFolder(path.join(root, "val"), ["ant", "bee", "cat"]).labels, [0, 2]);
});

test("a folder tree whose images changed is decoded again, not served from the old cache", async () => {
  const root = path.join(dir, "changing");
  const png = await solid(6, 6, 3, [9, 9, 9]).png().toBuffer();
  for (const c of ["a", "b"]) { fs.mkdirSync(path.join(root, "train", c), { recursive: true }); fs.writeFileSync(path.join(root, "train", c, "1.png"), png); }
  assert.equal((await loadImageFolder({ root, split: "train", decode, cache })).size, 2);
  assert.equal((await loadImageFolder({ root, split: "train", decode, cache })).size, 2);
  // Directory mtimes have a resolution of the file system's clock: move them on explicitly.
  const later = new Date(Date.now() + 5000);
  fs.writeFileSync(path.join(root, "train", "b", "2.png"), png);
  fs.utimesSync(path.join(root, "train", "b"), later, later);
  const grown = await loadImageFolder({ root, split: "train", decode, cache });
  assert.deepEqual(Array.from(grown.labels), [0, 1, 1]);
});

test("class subsets relabel in the order given (split CIFAR-10 style)", async () => {
  const ds = await loadImageFolder({ root: path.join(dir, "tree"), split: "train", decode, cache });
  const dogs = selectClasses(ds, ["dog"]);
  assert.deepEqual(Array.from(dogs.labels), [0, 0]);
  assert.deepEqual(dogs.classes, ["dog"]);
  assert.deepEqual(Buffer.from(dogs.image(1)), Buffer.from(ds.image(4)));
  const swapped = selectClasses(ds, [1, 0]);
  assert.deepEqual(Array.from(swapped.labels), [1, 1, 1, 0, 0]);
  const sub = subsetIndices(swapped, [4, 0]);
  assert.deepEqual(Array.from(sub.handle().indices!), [4, 0]);
  assert.throws(() => selectClasses(ds, ["horse"]), /unknown class "horse"/);
});

test("decoding equals Pillow's (JPEG colour and grayscale, RGBA PNG -> RGB)", async () => {
  const { decodeImage } = await import("../../src/data/decode");
  const { fixture, npyBytes } = await import("../support/fixtures");
  for (const name of ["synthetic-q75.jpg", "synthetic-gray.jpg", "synthetic-rgba.png"]) {
    const d = await decodeImage(fixture(name), name);
    const ref = npyBytes(fixture(`${name}.rgb.npy`));
    assert.equal(d.data.length, ref.length, name);
    assert.ok(Buffer.from(d.data).equals(Buffer.from(ref)), `${name}: decoded pixels differ from Pillow's`);
  }
});
