import { test, after } from "node:test";
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { AddressInfo } from "node:net";
import { ensureFile, MissingDataError, verifyFile } from "../../src/data/download";
import { RegistryFile, REGISTRY } from "../../src/data/registry";
import { tempDir } from "../support/fixtures";

const dir = tempDir("download-test");
const payload = crypto.randomBytes(300_000);
const md5 = (b: Buffer) => crypto.createHash("md5").update(b).digest("hex");
let cutNext = false;
const requests: (string | undefined)[] = [];

const server = http.createServer((req, res) => {
  requests.push(req.headers.range);
  const body = req.url === "/other.bin" ? Buffer.from("something else") : payload;
  const m = /bytes=(\d+)-/.exec(req.headers.range ?? "");
  const start = m ? Number(m[1]) : 0;
  const part = body.subarray(start);
  res.writeHead(m ? 206 : 200, { "Content-Length": part.length, ...(m ? { "Content-Range": `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
  if (cutNext) {
    // Interrupt mid-way: send 100 kB, then drop the connection.
    cutNext = false;
    res.write(part.subarray(0, 100_000), () => setTimeout(() => res.socket?.destroy(), 20));
  } else res.end(part);
});
const ready = new Promise<string>((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
after(() => server.close());

const entry = (over: Partial<RegistryFile> = {}): RegistryFile => ({ file: "blob.bin", md5: md5(payload), description: "test blob", ...over });

test("interrupted download resumes with a Range request and is verified", async () => {
  const base = await ready;
  const data = path.join(dir, "data1");
  cutNext = true;
  requests.length = 0;
  await assert.rejects(ensureFile(entry({ url: `${base}/blob.bin` }), { dataDir: data, mirror: null }), (e: unknown) => e instanceof MissingDataError && /blob\.bin.*could not be obtained.*resume by running again/s.test((e as Error).message));
  const partSize = fs.statSync(path.join(data, "blob.bin.part")).size;
  assert.ok(partSize > 0 && partSize < payload.length, `partial file of ${partSize} bytes`);
  assert.ok(!fs.existsSync(path.join(data, "blob.bin")), "nothing placed before completion");
  const got = await ensureFile(entry({ url: `${base}/blob.bin` }), { dataDir: data, mirror: null });
  assert.equal(got, path.join(data, "blob.bin"));
  assert.deepEqual(requests, [undefined, `bytes=${partSize}-`]);
  assert.ok(fs.readFileSync(got).equals(payload));
  assert.ok(!fs.existsSync(path.join(data, "blob.bin.part")));
});

test("a download with the wrong checksum is rejected and not kept", async () => {
  const base = await ready;
  const data = path.join(dir, "data2");
  await assert.rejects(ensureFile(entry({ url: `${base}/other.bin` }), { dataDir: data, mirror: null }), /blob\.bin: checksum mismatch for blob\.bin: md5 [0-9a-f]{32} \(14 bytes\); expected md5/);
  assert.ok(!fs.existsSync(path.join(data, "blob.bin")));
});

test("the mirror is used in place (sub-folders too); a corrupt copy there is an error", async () => {
  const mirror = path.join(dir, "mirror");
  fs.mkdirSync(path.join(mirror, "sub"), { recursive: true });
  fs.writeFileSync(path.join(mirror, "sub", "blob.bin"), payload);
  const got = await ensureFile(entry({ mirrorPaths: ["sub/"] }), { dataDir: path.join(dir, "data3"), mirror, offline: true });
  assert.equal(got, path.join(mirror, "sub", "blob.bin"));
  fs.writeFileSync(path.join(mirror, "blob.bin"), payload.subarray(0, 1000));
  await assert.rejects(ensureFile(entry(), { dataDir: path.join(dir, "data3"), mirror, offline: true }), /mirror\/blob\.bin: checksum mismatch.*1000 bytes/);
});

test("a .gz whose decompressed content matches is accepted (re-compressed MNIST case)", async () => {
  const raw = crypto.randomBytes(5000);
  const f = path.join(dir, "x-idx3-ubyte.gz");
  fs.writeFileSync(f, zlib.gzipSync(raw, { level: 1 }));
  const e = entry({ file: "x-idx3-ubyte.gz", md5: "0".repeat(32), decompressedMd5: md5(raw) });
  assert.equal(await verifyFile(f, e), "decompressed-md5");
  await assert.rejects(verifyFile(f, { ...e, decompressedMd5: "1".repeat(32) }), /checksum mismatch.*decompressed md5/);
});

test("offline and missing: the message names the file, its URL and where to put it", async () => {
  const data = path.join(dir, "data4");
  await assert.rejects(ensureFile("cifar-100-python.tar.gz", { dataDir: data, mirror: null, offline: true }), (e: unknown) => {
    const m = (e as Error).message;
    return m.includes("cifar-100-python.tar.gz") && m.includes(REGISTRY["cifar-100-python.tar.gz"].url!) && m.includes(path.join(data, "cifar-100-python.tar.gz")) && m.includes("offline");
  });
});

test("the real MNIST copy in the shared mirror verifies (one file by md5, one by decompressed md5)", { skip: !fs.existsSync(path.resolve(__dirname, "../../../shared/data/mnist")) }, async () => {
  const mirror = path.resolve(__dirname, "../../../shared/data");
  const labels = await ensureFile("t10k-labels-idx1-ubyte.gz", { dataDir: path.join(dir, "none"), mirror, offline: true });
  assert.equal(await verifyFile(labels, REGISTRY["t10k-labels-idx1-ubyte.gz"]), "md5");
  const images = await ensureFile("train-images-idx3-ubyte.gz", { dataDir: path.join(dir, "none"), mirror, offline: true });
  assert.equal(await verifyFile(images, REGISTRY["train-images-idx3-ubyte.gz"]), "decompressed-md5");
});
