import { describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readPth } from "../../src/weights/pth";

// A hand-written pickle (protocol 2 opcodes, as torch.save writes them) and a stored zip.
const op = (...b: number[]) => Buffer.from(b);
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const ustr = (s: string) => Buffer.concat([op(0x58), u32(Buffer.byteLength(s)), Buffer.from(s)]);
const global = (m: string, n: string) => Buffer.from(`c${m}\n${n}\n`, "latin1");
const int = (n: number) => (n < 256 ? op(0x4b, n) : Buffer.concat([op(0x4a), u32(n)]));
const tuple = (...items: Buffer[]) => Buffer.concat([op(0x28), ...items, op(0x74)]);
/** _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()) */
function tensor(storageType: string, key: string, numel: number, offset: number, size: number[], stride: number[]): Buffer {
  return Buffer.concat([
    global("torch._utils", "_rebuild_tensor_v2"),
    op(0x28), // MARK for the args tuple
    tuple(ustr("storage"), global("torch", storageType), ustr(key), ustr("cpu"), int(numel)), op(0x51), // BINPERSID
    int(offset), tuple(...size.map(int)), tuple(...stride.map(int)), op(0x89),
    global("collections", "OrderedDict"), op(0x29, 0x52), // OrderedDict()
    op(0x74, 0x52), // TUPLE, REDUCE
  ]);
}
function pickle(entries: [string, Buffer][], wrapIn?: string): Buffer {
  const dict = Buffer.concat([
    global("collections", "OrderedDict"), op(0x29, 0x52, 0x71, 0x00), // OrderedDict(), BINPUT 0
    op(0x28), ...entries.flatMap(([k, v]) => [ustr(k), v]), op(0x75), // SETITEMS
    op(0x7d, 0x28), ustr("version"), int(1), op(0x75), op(0x62), // BUILD with a _metadata-like state
  ]);
  const body = wrapIn ? Buffer.concat([op(0x7d, 0x28), ustr("epoch"), int(3), ustr(wrapIn), dict, op(0x75)]) : dict;
  return Buffer.concat([op(0x80, 0x02), body, op(0x2e)]);
}
function zip(files: [string, Uint8Array][]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  for (const [name, data] of files) {
    const n = Buffer.from(name);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt32LE(data.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt32LE(data.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(n.length, 28);
    ch.writeUInt32LE(off, 42);
    parts.push(lh, n, Buffer.from(data));
    central.push(ch, n);
    off += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(off, 16);
  return Buffer.concat([...parts, cd, end]);
}
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function writeTmp(name: string, data: Uint8Array): Promise<string> {
  const file = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), "pth-")), name);
  await fsp.writeFile(file, data);
  return file;
}

describe("PyTorch zip checkpoints (no pickle code runs)", () => {
  const storage0 = new Float32Array([0, 1, 2, 3, 4, 5, 6]); // shared by two tensors
  const half = new Uint16Array([0x3c00, 0xc000]); // 1, -2
  const entries: [string, Buffer][] = [
    ["a.weight", tensor("FloatStorage", "0", 7, 1, [2, 3], [3, 1])], // storage[1..6] as 2x3
    ["a.t", tensor("FloatStorage", "0", 7, 1, [3, 2], [1, 3])], // its transpose (non-contiguous)
    ["h", tensor("HalfStorage", "1", 2, 0, [2], [1])],
    ["scalar", tensor("FloatStorage", "0", 7, 6, [], [])],
  ];
  const files = (pkl: Buffer): [string, Uint8Array][] => [
    ["archive/data.pkl", pkl], ["archive/data/0", bytesOf(storage0)], ["archive/data/1", bytesOf(half)], ["archive/version", Buffer.from("3\n")],
  ];

  test("tensors, strided views of shared storages, halves and scalars come out in C order", async () => {
    const d = await readPth(await writeTmp("m.pth", zip(files(pickle(entries)))));
    assert.deepEqual([...d.keys()], ["a.weight", "a.t", "h", "scalar"]);
    assert.deepEqual(d.get("a.weight")!.shape, [2, 3]);
    assert.deepEqual([...d.get("a.weight")!.data], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...d.get("a.t")!.data], [1, 4, 2, 5, 3, 6]);
    assert.deepEqual([...d.get("h")!.data], [1, -2]);
    assert.deepEqual(d.get("scalar")!.shape, []);
    assert.deepEqual([...d.get("scalar")!.data], [6]);
  });

  test("a checkpoint dict: the state dict is found under 'model' (or the given key)", async () => {
    const file = await writeTmp("ckpt.pth", zip(files(pickle(entries, "model"))));
    assert.equal((await readPth(file)).size, 4);
    assert.equal((await readPth(file, { key: "model" })).size, 4);
    await assert.rejects(readPth(file, { key: "epoch" }), /'epoch' is not a dict of tensors/);
  });

  test("any other global is refused by name, nothing is called", async () => {
    const evil = Buffer.concat([op(0x80, 0x02), global("os", "system"), tuple(ustr("echo hi")), op(0x52, 0x2e)]);
    const file = await writeTmp("evil.pth", zip([["archive/data.pkl", evil]]));
    await assert.rejects(readPth(file), /evil\.pth:archive\/data\.pkl: refusing global 'os\.system'/);
  });

  test("broken archives are clear errors", async () => {
    await assert.rejects(readPth(await writeTmp("x.pth", Buffer.from("not a zip at all, definitely not"))), /x\.pth: not a zip archive/);
    await assert.rejects(readPth(await writeTmp("y.pth", zip([["archive/version", Buffer.from("3")]]))), /y\.pth: no <archive>\/data\.pkl/);
    const missing = zip(files(pickle(entries)).filter(([n]) => n !== "archive/data/1"));
    await assert.rejects(readPth(await writeTmp("z.pth", missing)), /z\.pth: storage '1' of tensor 'h' is missing/);
    const truncated = pickle(entries).subarray(0, 40);
    await assert.rejects(readPth(await writeTmp("t.pth", zip(files(truncated)))), /t\.pth:archive\/data\.pkl: truncated pickle/);
  });
});

describe("a .pth holding the reference weights passes parity", () => {
  const FIX = path.resolve(__dirname, "..", "..", "..", "shared", "fixtures", "vit-parity");
  test("micro.timm as a torch zip checkpoint", async (t) => {
    const { existsSync } = await import("node:fs");
    if (!existsSync(FIX)) return t.skip(`fixtures folder absent: ${FIX}`);
    const { readSafetensors } = await import("../../src/weights/safetensors");
    const { runParity } = await import("../../src/weights/parity");
    const { initBackend } = await import("../../src/runtime/backend");
    await initBackend({ prefer: "cpu", force: true });
    const { tensors } = await readSafetensors(path.join(FIX, "micro.timm.safetensors"));
    const entries: [string, Buffer][] = [];
    const data: [string, Uint8Array][] = [];
    [...tensors].forEach(([k, v], i) => {
      const shape = v.shape;
      const stride = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
      entries.push([k, tensor("FloatStorage", String(i), v.data.length, 0, shape, stride)]);
      data.push([`micro/data/${i}`, bytesOf(v.data)]);
    });
    const file = await writeTmp("micro.pth", zip([["micro/data.pkl", pickle(entries, "model")], ...data]));
    const r = await runParity(file, path.join(FIX, "micro.json"));
    assert.ok(r.ok, `logits ${r.logits.maxAbsErr} features ${r.features?.maxAbsErr}`);
    assert.equal(r.loaded, tensors.size);
  });
});
