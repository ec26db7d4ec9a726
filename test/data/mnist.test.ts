import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { loadMnistFiles, parseIdx } from "../../src/data/mnist";
import { tempDir } from "../support/fixtures";

const dir = tempDir("mnist-test");
const cache = { dir: path.join(dir, "cache") };

function idx(dims: number[], data: Uint8Array): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h[2] = 0x08;
  h[3] = dims.length;
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([h, Buffer.from(data)]);
}

const N = 3;
const pixels = Uint8Array.from({ length: N * 28 * 28 }, (_, i) => (i * 13) % 256);
const labels = Uint8Array.from([7, 0, 9]);

test("idx files (gz and raw) load as RGB digits with labels", async () => {
  const img = path.join(dir, "imgs-idx3-ubyte.gz");
  const lab = path.join(dir, "labs-idx1-ubyte");
  fs.writeFileSync(img, zlib.gzipSync(idx([N, 28, 28], pixels)));
  fs.writeFileSync(lab, idx([N], labels));
  const ds = await loadMnistFiles(img, lab, { name: "mnist-t", cache });
  assert.equal(ds.size, N);
  assert.deepEqual(Array.from(ds.labels), [7, 0, 9]);
  const im = ds.image(1);
  const g = pixels[28 * 28 + 5];
  assert.deepEqual([im[15], im[16], im[17]], [g, g, g]);
  const big = await loadMnistFiles(img, lab, { name: "mnist-t", size: 32, cache });
  assert.equal(big.height, 32);
  assert.equal(big.image(0).length, 32 * 32 * 3);
});

test("bad idx files are clear errors naming the file", async () => {
  const full = idx([N, 28, 28], pixels);
  assert.throws(() => parseIdx(full.subarray(0, 1000), "cut-idx"), /cut-idx: idx file has 984 data bytes, header \[3,28,28\] needs 2352/);
  assert.throws(() => parseIdx(Buffer.from([1, 2, 3, 4, 5]), "junk"), /junk: not an idx file/);
  const gz = zlib.gzipSync(full);
  assert.throws(() => parseIdx(gz.subarray(0, gz.length - 20), "cut.gz"), /cut\.gz: corrupt or truncated gzip data/);
  const img = path.join(dir, "a-idx3"), lab = path.join(dir, "b-idx1");
  fs.writeFileSync(img, full);
  fs.writeFileSync(lab, idx([2], labels.subarray(0, 2)));
  await assert.rejects(loadMnistFiles(img, lab, { name: "mismatch", cache }), /has 3 images but .*b-idx1 has 2 labels/);
});
