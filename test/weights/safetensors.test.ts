import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  encodeSafetensors,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsFile,
  writeSafetensors,
} from "../../src/weights/safetensors";

// An independent encoder: header object + raw bytes, exactly as the format describes it (no padding).
function build(header: unknown, data: Uint8Array = new Uint8Array(0), headerLen?: bigint): Buffer {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(json.length));
  return Buffer.concat([len, json, Buffer.from(data)]);
}

const tmpDir = () => fsp.mkdtemp(path.join(os.tmpdir(), "st-test-"));

/** Raw little-endian bytes of a typed array. */
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe("safetensors reading: every dtype in", () => {
  test("F16: known bit patterns and every finite half against the arithmetic definition", () => {
    const known: [number, number][] = [
      [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0001, 2 ** -24], [0x0400, 2 ** -14],
      [0x3555, 0.333251953125], [0x7c00, Infinity], [0xfc00, -Infinity], [0x0000, 0],
    ];
    const all = new Uint16Array(65536).map((_, i) => i);
    const file = build({ k: { dtype: "F16", shape: [known.length], data_offsets: [0, known.length * 2] }, all: { dtype: "F16", shape: [256, 256], data_offsets: [known.length * 2, known.length * 2 + 131072] } },
      Buffer.concat([bytesOf(Uint16Array.from(known.map(([h]) => h))), bytesOf(all)]));
    const { tensors } = parseSafetensors(file, "f16.safetensors");
    const k = tensors.get("k")!;
    assert.equal(k.dtype, "float32");
    assert.deepEqual([...k.data], known.map(([, v]) => v));
    const a = tensors.get("all")!.data;
    assert.deepEqual(tensors.get("all")!.shape, [256, 256]);
    assert.ok(Object.is(a[0x8000], -0), "negative zero keeps its sign");
    assert.ok(Number.isNaN(a[0x7e00]) && Number.isNaN(a[0xfe01]));
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 31;
      const m = h & 1023;
      if (e === 31) continue;
      const want = e === 0 ? s * m * 2 ** -24 : s * 2 ** (e - 15) * (1 + m / 1024);
      if (a[h] !== want) assert.fail(`half 0x${h.toString(16)}: got ${a[h]}, want ${want}`);
    }
  });

  test("BF16 is the top half of a float32; F64 rounds to float32; F32 is exact", () => {
    const f = new Float32Array([1, -3, Math.PI, 1e-30, -65504.5, 3.4e38]);
    const dv = new DataView(f.buffer);
    const bf = new Uint16Array(f.length).map((_, i) => dv.getUint32(i * 4, true) >>> 16);
    const truncated = Array.from(f, (_, i) => {
      const b = new DataView(new ArrayBuffer(4));
      b.setUint32(0, (dv.getUint32(i * 4, true) & 0xffff0000) >>> 0);
      return b.getFloat32(0);
    });
    const d = new Float64Array([0.1, -1 / 3, 1e300]);
    const file = build({
      bf: { dtype: "BF16", shape: [6], data_offsets: [0, 12] },
      d: { dtype: "F64", shape: [3], data_offsets: [16, 40] },
      f: { dtype: "F32", shape: [2, 3], data_offsets: [40, 64] },
    }, Buffer.concat([bytesOf(bf), Buffer.alloc(4), bytesOf(d), bytesOf(f)]));
    const { tensors } = parseSafetensors(file);
    assert.deepEqual([...tensors.get("bf")!.data], truncated);
    assert.equal(tensors.get("bf")!.data[0], 1);
    assert.equal(tensors.get("bf")!.data[1], -3);
    assert.deepEqual([...tensors.get("d")!.data], [Math.fround(0.1), Math.fround(-1 / 3), Infinity]);
    assert.deepEqual(tensors.get("f")!.data, f);
    assert.deepEqual(tensors.get("f")!.shape, [2, 3]);
  });

  test("integers come back as int32; I64 outside int32 is an error naming the tensor", () => {
    const i64 = new BigInt64Array([-5n, 0n, 2147483647n]);
    const u8 = new Uint8Array([0, 255, 7]);
    const i32 = new Int32Array([-2147483648, 3]);
    const file = build({
      a: { dtype: "I64", shape: [3], data_offsets: [0, 24] },
      b: { dtype: "U8", shape: [3], data_offsets: [24, 27] },
      c: { dtype: "I32", shape: [2], data_offsets: [28, 36] },
      e: { dtype: "BOOL", shape: [0], data_offsets: [36, 36] },
    }, Buffer.concat([bytesOf(i64), bytesOf(u8), Buffer.alloc(1), bytesOf(i32)]));
    const { tensors } = parseSafetensors(file);
    assert.equal(tensors.get("a")!.dtype, "int32");
    assert.deepEqual([...tensors.get("a")!.data], [-5, 0, 2147483647]);
    assert.deepEqual([...tensors.get("b")!.data], [0, 255, 7]);
    assert.deepEqual([...tensors.get("c")!.data], [-2147483648, 3]);
    assert.deepEqual(tensors.get("e")!.shape, [0]);
    const big = build({ pos_ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, bytesOf(new BigInt64Array([1n << 40n])));
    assert.throws(() => parseSafetensors(big, "ids.safetensors"), /ids\.safetensors: tensor 'pos_ids': I64 value 1099511627776 does not fit in int32/);
  });
});

describe("safetensors writing", () => {
  test("F32 round trip through a file is exact, with metadata, sorted names and an 8-aligned header", async () => {
    const dir = await tmpDir();
    const file = path.join(dir, "w.safetensors");
    const odd = new Float32Array([NaN, -0, Infinity, 1.401298464324817e-45, 3.4028234663852886e38, -1.5]);
    const tensors = new Map([
      ["z.weight", { shape: [2, 3], data: odd }],
      ["a.bias", { shape: [1], data: new Float32Array([0.1]) }],
      ["empty", { shape: [0, 4], data: new Float32Array(0) }],
    ]);
    await writeSafetensors(file, tensors, { format: "pt", note: "ünïcode" });
    const header = await readSafetensorsHeader(file);
    assert.equal(header.dataStart % 8, 0);
    assert.deepEqual(header.tensors.map((t) => t.name), ["a.bias", "empty", "z.weight"]);
    assert.deepEqual(header.metadata, { format: "pt", note: "ünïcode" });
    const { tensors: back, metadata } = await readSafetensors(file);
    assert.deepEqual(metadata, { format: "pt", note: "ünïcode" });
    for (const [name, t] of tensors) {
      const b = back.get(name)!;
      assert.deepEqual(b.shape, t.shape);
      assert.deepEqual(bytesOf(b.data), bytesOf(t.data), `${name} bit-exact`);
    }
    assert.deepEqual(await fsp.readdir(dir), ["w.safetensors"], "no temp file left behind");
    // the writer's bytes parse identically in memory
    assert.deepEqual(parseSafetensors(encodeSafetensors(tensors, { format: "pt", note: "ünïcode" })).tensors.get("z.weight")!.shape, [2, 3]);
  });

  test("re-writing a reference file reproduces its tensors bit for bit", async (t) => {
    const ref = path.resolve(__dirname, "..", "..", "..", "shared", "fixtures", "vit-parity", "micro.timm.safetensors");
    try {
      await fsp.access(ref);
    } catch {
      t.skip(`fixture folder absent: ${ref}`);
      return;
    }
    const { tensors } = await readSafetensors(ref);
    const host = new Map([...tensors].map(([k, v]) => [k, { shape: v.shape, data: v.data as Float32Array }]));
    const again = parseSafetensors(encodeSafetensors(host)).tensors;
    const orig = await fsp.readFile(ref);
    const hdr = await readSafetensorsHeader(ref);
    for (const info of hdr.tensors) {
      const raw = orig.subarray(hdr.dataStart + info.begin, hdr.dataStart + info.end);
      assert.deepEqual(bytesOf(again.get(info.name)!.data), new Uint8Array(raw), info.name);
    }
  });

  test("a failed write leaves the previous file intact", async () => {
    const dir = await tmpDir();
    const file = path.join(dir, "keep.safetensors");
    await writeSafetensors(file, { a: { shape: [1], data: new Float32Array([7]) } });
    await assert.rejects(writeSafetensors(file, { a: { shape: [2], data: new Float32Array([1]) } }), /'a': shape \[2\] has 2 elements but data has 1/);
    assert.deepEqual([...(await readSafetensors(file)).tensors.get("a")!.data], [7]);
    assert.deepEqual(await fsp.readdir(dir), ["keep.safetensors"]);
  });

  test("streaming: one tensor is read without reading the others", async () => {
    const dir = await tmpDir();
    const file = path.join(dir, "s.safetensors");
    await writeSafetensors(file, { a: { shape: [3], data: new Float32Array([1, 2, 3]) }, b: { shape: [1], data: new Float32Array([4]) } });
    const f = await SafetensorsFile.open(file);
    try {
      assert.deepEqual(f.names, ["a", "b"]);
      assert.deepEqual([...(await f.read("b")).data], [4]);
      await assert.rejects(f.read("c"), /s\.safetensors: no tensor 'c'/);
    } finally {
      await f.close();
    }
    const only = await readSafetensors(file, { filter: (n) => n === "a" });
    assert.deepEqual([...only.tensors.keys()], ["a"]);
  });
});

// Malformed files: one table, one shared check (file reader and in-memory parser, message names file + problem).
const f32 = (n: number) => bytesOf(new Float32Array(n));
const MALFORMED: { name: string; bytes: () => Uint8Array; error: RegExp }[] = [
  { name: "empty file", bytes: () => new Uint8Array(0), error: /truncated: 0 bytes/ },
  { name: "truncated length", bytes: () => new Uint8Array(5), error: /truncated: 5 bytes/ },
  { name: "header length beyond the file", bytes: () => build({}, new Uint8Array(0), 1000n), error: /header length 1000 runs past the end of the file/ },
  { name: "absurd header length", bytes: () => build({}, new Uint8Array(0), 1n << 62n), error: /header length \d+ exceeds the 100000000-byte limit/ },
  { name: "header not JSON", bytes: () => build("{not json"), error: /header is not valid JSON/ },
  { name: "header not an object", bytes: () => build([1, 2]), error: /header is not a JSON object/ },
  { name: "offsets out of range", bytes: () => build({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, f32(2)), error: /tensor 'w': data_offsets \[0, 16\] run past the data buffer \(8 bytes/ },
  { name: "truncated data", bytes: () => build({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [8, 16] } }, f32(3)), error: /tensor 'b'.*run past the data buffer/ },
  { name: "overlapping offsets", bytes: () => build({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, f32(3)), error: /tensors 'a' \[0, 8\] and 'b' \[4, 12\] overlap/ },
  { name: "wrong byte length", bytes: () => build({ w: { dtype: "F32", shape: [2, 2], data_offsets: [0, 12] } }, f32(3)), error: /tensor 'w': byte length 12 does not match F32 shape \[2, 2\] \(16 bytes\)/ },
  { name: "unknown dtype", bytes: () => build({ w: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), error: /tensor 'w': unknown dtype "F8_E4M3"/ },
  { name: "negative shape", bytes: () => build({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 0] } }), error: /tensor 'w': shape \[-1\] is not a list of non-negative integers/ },
  { name: "fractional shape", bytes: () => build({ w: { dtype: "F32", shape: [1.5], data_offsets: [0, 6] } }, new Uint8Array(6)), error: /tensor 'w': shape \[1\.5\]/ },
  { name: "offsets reversed", bytes: () => build({ w: { dtype: "F32", shape: [0], data_offsets: [8, 4] } }, f32(2)), error: /tensor 'w': data_offsets \[8, 4\] end before they begin/ },
  { name: "offsets missing", bytes: () => build({ w: { dtype: "F32", shape: [1] } }, f32(1)), error: /tensor 'w': data_offsets undefined is not \[begin, end\]/ },
  { name: "metadata not strings", bytes: () => build({ __metadata__: { epoch: 3 } }), error: /__metadata__\.epoch is not a string/ },
];

describe("malformed safetensors files fail with the file and the problem", () => {
  for (const row of MALFORMED) {
    test(row.name, async () => {
      const dir = await tmpDir();
      const file = path.join(dir, `${row.name.replace(/\W+/g, "-")}.safetensors`);
      const bytes = row.bytes();
      await fsp.writeFile(file, bytes);
      const named = (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.ok(e.message.startsWith(`${file}: `), `message names the file: ${e.message}`);
        assert.match(e.message, row.error);
        return true;
      };
      await assert.rejects(readSafetensors(file), named);
      assert.throws(() => parseSafetensors(bytes, file), named);
    });
  }

  test("a missing file is named", async () => {
    await assert.rejects(readSafetensors("/nonexistent/x.safetensors"), /\/nonexistent\/x\.safetensors: cannot open/);
  });
});
