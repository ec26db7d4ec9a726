import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { NdArray, PyDict, unpickle } from "../../src/data/pickle";
import { chwToHwc, loadCifar, readCifarArchive } from "../../src/data/cifar";
import { fixture, npyBytes, tempDir } from "../support/fixtures";
import { tarBytes } from "../support/tar-writer";

const dir = tempDir("cifar-test");
const cache = { dir: path.join(dir, "cache") };
const expectedData = npyBytes(fixture("cifar10-batch-data.npy"));

test("reads numpy pickles of protocols 2 and 4 (CIFAR batch dicts)", () => {
  for (const f of ["cifar10-batch-p2.pkl", "cifar10-batch-p4.pkl"]) {
    const d = unpickle(fixture(f), f);
    assert.ok(d instanceof PyDict);
    assert.deepEqual(d.map.get("labels"), [3, 0, 9, 1]);
    const arr = d.map.get("data");
    assert.ok(arr instanceof NdArray);
    assert.equal(arr.dtype, "u1");
    assert.deepEqual(arr.shape, [4, 3072]);
    assert.deepEqual(Buffer.from(arr.data), Buffer.from(expectedData));
    assert.equal(Buffer.from(d.map.get("batch_label") as Uint8Array).toString(), "training batch 1 of 5");
  }
});

test("refuses globals outside the allow-list, naming them, without running anything", () => {
  assert.throws(() => unpickle(fixture("evil.pkl"), "evil.pkl"), /evil\.pkl: refusing global '(posix|os)\.system'/);
});

test("truncated and corrupt pickles are clear errors", () => {
  const p = fixture("cifar10-batch-p2.pkl");
  assert.throws(() => unpickle(p.subarray(0, 5000), "cut.pkl"), /cut\.pkl: truncated pickle/);
  assert.throws(() => unpickle(Buffer.from([0x80, 0x02, 0xff]), "junk.pkl"), /junk\.pkl: unsupported pickle opcode 0xff/);
});

/** Python-2 style batch (what the official CIFAR files contain): str -> SHORT_BINSTRING/BINSTRING. */
function py2Batch(labels: number[], data: Uint8Array, labelKey = "labels"): Buffer {
  const parts: Buffer[] = [Buffer.from([0x80, 0x02, 0x7d, 0x28])]; // PROTO 2, EMPTY_DICT, MARK
  const sstr = (s: string) => Buffer.concat([Buffer.from([0x55, s.length]), Buffer.from(s, "latin1")]);
  const glob = (m: string, n: string) => Buffer.from(`c${m}\n${n}\n`, "latin1");
  parts.push(sstr("data"));
  // numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), 'b') + BUILD (1, shape, dtype, False, raw)
  parts.push(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), Buffer.from([0x4b, 0, 0x85]), sstr("b"), Buffer.from([0x87, 0x52]));
  parts.push(Buffer.from([0x28, 0x4b, 1]), Buffer.from([0x4d, labels.length & 0xff, labels.length >> 8]), Buffer.from([0x4d, 0x00, 0x0c]), Buffer.from([0x86]));
  parts.push(glob("numpy", "dtype"), sstr("u1"), Buffer.from([0x4b, 0, 0x4b, 1, 0x87, 0x52]));
  parts.push(Buffer.from([0x28, 0x4b, 3]), sstr("|"), Buffer.from([0x4e, 0x4e, 0x4e, 0x4a]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b, 0, 0x74, 0x62]));
  const raw = Buffer.alloc(5);
  raw[0] = 0x54;
  raw.writeInt32LE(data.length, 1);
  parts.push(Buffer.from([0x89]), raw, Buffer.from(data), Buffer.from([0x74, 0x62]));
  parts.push(sstr(labelKey), Buffer.from([0x5d, 0x28]), ...labels.map((l) => Buffer.from([0x4b, l])), Buffer.from([0x65]));
  parts.push(Buffer.from([0x75, 0x2e])); // SETITEMS, STOP
  return Buffer.concat(parts);
}

function py2Meta(names: string[]): Buffer {
  const sstr = (s: string) => Buffer.concat([Buffer.from([0x55, s.length]), Buffer.from(s, "latin1")]);
  return Buffer.concat([Buffer.from([0x80, 0x02, 0x7d]), sstr("label_names"), Buffer.from([0x5d, 0x28]), ...names.map(sstr), Buffer.from([0x65, 0x73, 0x2e])]);
}

const CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
const imgs = (n: number, seed: number) => Uint8Array.from({ length: n * 3072 }, (_, i) => (i * 31 + seed * 7) % 251);

test("CIFAR-10 python tarball (Python-2 pickles): batches in order, CHW -> HWC, meta names", async () => {
  const entries = [
    { name: "cifar-10-batches-py/", type: "5" as const },
    { name: "cifar-10-batches-py/batches.meta", data: py2Meta(CLASSES) },
    ...[2, 1, 3, 5, 4].map((b) => ({ name: `cifar-10-batches-py/data_batch_${b}`, data: py2Batch([b, b + 1], imgs(2, b)) })),
    { name: "cifar-10-batches-py/test_batch", data: py2Batch([9, 8, 7], imgs(3, 0)) },
  ];
  const file = path.join(dir, "cifar-10-python.tar.gz");
  fs.writeFileSync(file, tarBytes(entries));
  const r = await readCifarArchive(file, { dataset: "cifar10", format: "python", split: "train" });
  assert.deepEqual(r.labels, [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
  assert.deepEqual(r.classes, CLASSES);
  const ds = await loadCifar(file, { dataset: "cifar10", format: "python", split: "test", cache });
  assert.equal(ds.size, 3);
  assert.deepEqual(Array.from(ds.labels), [9, 8, 7]);
  const planes = imgs(3, 0).subarray(3072, 6144);
  const img = ds.image(1);
  assert.deepEqual([img[0], img[1], img[2]], [planes[0], planes[1024], planes[2048]]);
  assert.deepEqual(Buffer.from(img), Buffer.from(chwToHwc(planes)));
});

test("CIFAR-10 and CIFAR-100 binary tarballs", async () => {
  const rec10 = (labels: number[], seed: number) => Buffer.concat(labels.map((l, i) => Buffer.concat([Buffer.from([l]), Buffer.from(imgs(1, seed + i))])));
  const f10 = path.join(dir, "cifar-10-binary.tar.gz");
  fs.writeFileSync(f10, tarBytes([
    { name: "cifar-10-batches-bin/batches.meta.txt", data: CLASSES.join("\n") + "\n\n" },
    ...[1, 2, 3, 4, 5].map((b) => ({ name: `cifar-10-batches-bin/data_batch_${b}.bin`, data: rec10([b], b) })),
    { name: "cifar-10-batches-bin/test_batch.bin", data: rec10([0, 9], 10) },
  ]));
  const test10 = await loadCifar(f10, { dataset: "cifar10", format: "binary", split: "test", cache });
  assert.deepEqual(Array.from(test10.labels), [0, 9]);
  assert.deepEqual(Buffer.from(test10.image(1)), Buffer.from(chwToHwc(imgs(1, 11))));
  const rec100 = Buffer.concat([Buffer.from([4, 77]), Buffer.from(imgs(1, 3)), Buffer.from([19, 5]), Buffer.from(imgs(1, 4))]);
  const f100 = path.join(dir, "cifar-100-binary.tar.gz");
  const names = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}${i}`).join("\n");
  fs.writeFileSync(f100, tarBytes([
    { name: "cifar-100-binary/fine_label_names.txt", data: names("f", 100) },
    { name: "cifar-100-binary/coarse_label_names.txt", data: names("c", 20) },
    { name: "cifar-100-binary/train.bin", data: rec100 },
    { name: "cifar-100-binary/test.bin", data: rec100 },
  ]));
  const fine = await readCifarArchive(f100, { dataset: "cifar100", format: "binary", split: "train" });
  assert.deepEqual(fine.labels, [77, 5]);
  assert.equal(fine.classes[77], "f77");
  const coarse = await readCifarArchive(f100, { dataset: "cifar100", format: "binary", split: "train", labelKind: "coarse" });
  assert.deepEqual(coarse.labels, [4, 19]);
  assert.equal(coarse.classes.length, 20);
  // truncated record file
  const bad = path.join(dir, "bad-binary.tar.gz");
  fs.writeFileSync(bad, tarBytes([{ name: "cifar-100-binary/fine_label_names.txt", data: names("f", 100) }, { name: "cifar-100-binary/test.bin", data: rec100.subarray(0, 4000) }]));
  await assert.rejects(readCifarArchive(bad, { dataset: "cifar100", format: "binary", split: "test" }), /test\.bin: 4000 bytes is not a whole number of 3074-byte records/);
});

test("CIFAR-100 python meta (Python-3 protocol 2) gives fine and coarse names", async () => {
  const d = unpickle(fixture("cifar100-meta-p2.pkl"), "meta");
  assert.ok(d instanceof PyDict);
  assert.equal((d.map.get("fine_label_names") as string[])[42], "fine42");
  assert.equal((d.map.get("coarse_label_names") as string[]).length, 20);
});

test("a CIFAR tarball missing batches names what it expected", async () => {
  const file = path.join(dir, "partial.tar.gz");
  fs.writeFileSync(file, tarBytes([{ name: "cifar-10-batches-py/batches.meta", data: py2Meta(CLASSES) }, { name: "cifar-10-batches-py/data_batch_1", data: py2Batch([1], imgs(1, 1)) }]));
  await assert.rejects(readCifarArchive(file, { dataset: "cifar10", format: "python", split: "train" }), /partial\.tar\.gz: found 1 train batch file\(s\), expected 5/);
});
