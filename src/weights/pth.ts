// PyTorch `.pth` / `.bin` (torch >= 1.6 zip format) importer that never executes the pickle.
// A restricted interpreter runs only data-building opcodes; the only globals it resolves are
// collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the
// torch.*Storage types. Any other global is an error naming it. Storages are read from the
// zip's stored (uncompressed) `<archive>/data/<key>` entries on demand.
import { promises as fsp } from "node:fs";
import { decodeTensor, HostTensor, numel, SafeDtype, StateDict, DTYPE_SIZE } from "./safetensors";

const STORAGE_DTYPES: Record<string, SafeDtype> = {
  FloatStorage: "F32", HalfStorage: "F16", BFloat16Storage: "BF16", DoubleStorage: "F64",
  LongStorage: "I64", IntStorage: "I32", ShortStorage: "I16", CharStorage: "I8", ByteStorage: "U8", BoolStorage: "BOOL",
};

interface ZipEntry { name: string; method: number; size: number; localOffset: number }

/** Central directory of a zip (no zip64: files up to 4 GiB). */
async function readZipIndex(fh: fsp.FileHandle, file: string): Promise<Map<string, ZipEntry>> {
  const { size } = await fh.stat();
  const tail = Buffer.alloc(Math.min(size, 65557));
  await fh.read(tail, 0, tail.length, size - tail.length);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) if (tail.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) throw new Error(`${file}: not a zip archive (no end-of-central-directory record); only torch >= 1.6 zip checkpoints are supported`);
  const count = tail.readUInt16LE(eocd + 10);
  const cdSize = tail.readUInt32LE(eocd + 12);
  const cdOffset = tail.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) throw new Error(`${file}: zip64 archives (> 4 GiB) are not supported`);
  if (cdOffset + cdSize > size) throw new Error(`${file}: central directory [${cdOffset}, ${cdOffset + cdSize}] lies outside the file (${size} bytes; truncated?)`);
  const cd = Buffer.alloc(cdSize);
  await fh.read(cd, 0, cdSize, cdOffset);
  const out = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: corrupt zip central directory at entry ${i}`);
    const method = cd.readUInt16LE(p + 10);
    const csize = cd.readUInt32LE(p + 20);
    const usize = cd.readUInt32LE(p + 24);
    const nlen = cd.readUInt16LE(p + 28);
    const xlen = cd.readUInt16LE(p + 30);
    const clen = cd.readUInt16LE(p + 32);
    const localOffset = cd.readUInt32LE(p + 42);
    const name = cd.toString("utf8", p + 46, p + 46 + nlen);
    if (method === 0 && csize !== usize) throw new Error(`${file}: zip entry '${name}' is stored but sizes differ`);
    out.set(name, { name, method, size: usize, localOffset });
    p += 46 + nlen + xlen + clen;
  }
  return out;
}

async function readEntry(fh: fsp.FileHandle, e: ZipEntry, file: string): Promise<Uint8Array> {
  if (e.method !== 0) throw new Error(`${file}: zip entry '${e.name}' is compressed (method ${e.method}); torch writes stored entries only`);
  const lh = Buffer.alloc(30);
  await fh.read(lh, 0, 30, e.localOffset);
  if (lh.readUInt32LE(0) !== 0x04034b50) throw new Error(`${file}: bad local header for '${e.name}'`);
  const start = e.localOffset + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
  const bytes = new Uint8Array(new ArrayBuffer(e.size));
  const { bytesRead } = await fh.read(bytes, 0, e.size, start);
  if (bytesRead !== e.size) throw new Error(`${file}: zip entry '${e.name}' truncated (${bytesRead} of ${e.size} bytes)`);
  return bytes;
}

// ---- restricted unpickler -------------------------------------------------------------------

class Global { constructor(readonly module: string, readonly name: string) {} }
class Tuple { constructor(readonly items: PyVal[]) {} }
class StorageRef { constructor(readonly dtype: SafeDtype, readonly key: string, readonly numel: number) {} }
/** A tensor as the pickle describes it: a strided view of a storage. */
export class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
}
type PyVal = null | boolean | number | bigint | string | Uint8Array | PyVal[] | Tuple | Map<PyVal, PyVal> | Global | StorageRef | TensorRef;
const MARK = Symbol("mark");

const ALLOWED = new Set(["collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter", ...Object.keys(STORAGE_DTYPES).map((s) => `torch ${s}`)]);

/** Interprets a pickle into plain values; never imports or calls anything outside ALLOWED. */
export function unpickle(data: Uint8Array, file = "data.pkl"): PyVal {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const stack: (PyVal | typeof MARK)[] = [];
  const memo = new Map<number, PyVal>();
  let p = 0;
  const fail = (msg: string): never => {
    throw new Error(`${file}: ${msg} (pickle byte ${p})`);
  };
  const need = (n: number) => (p + n <= buf.length ? undefined : fail("truncated pickle"));
  const u8 = () => (need(1), buf[p++]);
  const u16 = () => (need(2), (p += 2), buf.readUInt16LE(p - 2));
  const u32 = () => (need(4), (p += 4), buf.readUInt32LE(p - 4));
  const i32 = () => (need(4), (p += 4), buf.readInt32LE(p - 4));
  const bytes = (n: number) => (need(n), (p += n), new Uint8Array(buf.subarray(p - n, p)));
  const str = (n: number) => (need(n), (p += n), buf.toString("utf8", p - n, p));
  const line = () => {
    const e = buf.indexOf(10, p);
    if (e < 0) fail("unterminated GLOBAL");
    const s = buf.toString("latin1", p, e);
    p = e + 1;
    return s;
  };
  const pop = (): PyVal => {
    const v = stack.pop();
    if (v === undefined || v === MARK) return fail("stack underflow");
    return v;
  };
  const popMark = (): PyVal[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail("no MARK on the stack");
    const items = stack.splice(i) as PyVal[];
    items.shift();
    return items;
  };
  const top = (): PyVal => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail("stack underflow");
    return v;
  };
  const global = (module: string, name: string): Global => {
    if (!ALLOWED.has(`${module} ${name}`)) fail(`refusing global '${module}.${name}': only tensors and OrderedDicts are read (the file may hold other objects; save a state_dict instead)`);
    return new Global(module, name);
  };
  const num = (v: PyVal, what: string): number => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : fail(`${what} is not an integer`));
  const call = (fn: PyVal, args: PyVal): PyVal => {
    if (!(fn instanceof Global) || !(args instanceof Tuple)) return fail("REDUCE on something that is not an allowed global");
    const a = args.items;
    switch (`${fn.module}.${fn.name}`) {
      case "collections.OrderedDict":
        return new Map();
      case "torch._utils._rebuild_tensor_v2": {
        const [storage, offset, size, stride] = a;
        if (!(storage instanceof StorageRef)) return fail("_rebuild_tensor_v2 without a storage");
        const dims = (v: PyVal, what: string) => (v instanceof Tuple ? v.items.map((x) => num(x, what)) : fail(`${what} is not a tuple`));
        return new TensorRef(storage, num(offset, "storage offset"), dims(size, "size"), dims(stride, "stride"));
      }
      case "torch._utils._rebuild_parameter":
        return a[0];
      default:
        return fail(`global '${fn.module}.${fn.name}' cannot be called`);
    }
  };
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: bytes(8); break; // FRAME
      case 0x63: { const m = line(); stack.push(global(m, line())); break; } // GLOBAL
      case 0x93: { const n = pop(); const m = pop(); stack.push(global(String(m), String(n))); break; } // STACK_GLOBAL
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { const k = op === 0x68 ? u8() : u32(); if (!memo.has(k)) fail(`memo ${k} undefined`); stack.push(memo.get(k)!); break; } // BINGET, LONG_BINGET
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(new Tuple([])); break; // EMPTY_TUPLE
      case 0x28: stack.push(MARK); break; // MARK
      case 0x74: stack.push(new Tuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new Tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push(new Tuple([pop(), b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push(new Tuple([pop(), b, c])); break; } // TUPLE3
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x55: stack.push(bytes(u8()).reduce((s, c) => s + String.fromCharCode(c), "")); break; // SHORT_BINSTRING
      case 0x54: stack.push(bytes(i32()).reduce((s, c) => s + String.fromCharCode(c), "")); break; // BINSTRING
      case 0x43: stack.push(bytes(u8())); break; // SHORT_BINBYTES
      case 0x42: stack.push(bytes(u32())); break; // BINBYTES
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: { // LONG1: little-endian two's complement
        const b = bytes(u8());
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (b.length && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: need(8); stack.push(buf.readDoubleBE(p)); p += 8; break; // BINFLOAT
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x51: { // BINPERSID: ('storage', StorageType, key, location, numel)
        const pid = pop();
        if (!(pid instanceof Tuple) || pid.items[0] !== "storage" || !(pid.items[1] instanceof Global)) return fail("unsupported persistent id");
        const dtype = STORAGE_DTYPES[pid.items[1].name];
        if (!dtype) fail(`unsupported storage type '${pid.items[1].module}.${pid.items[1].name}'`);
        stack.push(new StorageRef(dtype, String(pid.items[2]), num(pid.items[4], "storage size")));
        break;
      }
      case 0x52: { const args = pop(); stack.push(call(pop(), args)); break; } // REDUCE
      case 0x73: { const v = pop(); const k = pop(); const d = top(); if (!(d instanceof Map)) fail("SETITEM on a non-dict"); (d as Map<PyVal, PyVal>).set(k, v); break; }
      case 0x75: { const items = popMark(); const d = top(); if (!(d instanceof Map)) fail("SETITEMS on a non-dict"); for (let i = 0; i + 1 < items.length; i += 2) (d as Map<PyVal, PyVal>).set(items[i], items[i + 1]); break; }
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail("APPEND on a non-list"); (l as PyVal[]).push(v); break; }
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail("APPENDS on a non-list"); (l as PyVal[]).push(...items); break; }
      case 0x62: { pop(); if (!(top() instanceof Map)) fail("BUILD on something other than a dict"); break; } // BUILD: a state_dict's _metadata; dropped
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x2e: return pop(); // STOP
      default:
        return fail(`unsupported pickle opcode 0x${op.toString(16)}`);
    }
  }
}

/** Gathers a strided view of a decoded storage into a C-order tensor. */
function materialise(t: TensorRef, storage: HostTensor, name: string, file: string): HostTensor {
  const n = numel(t.shape);
  let last = t.offset;
  for (let d = 0; d < t.shape.length; d++) if (t.shape[d] > 0) last += (t.shape[d] - 1) * t.stride[d];
  if (n > 0 && (t.offset < 0 || last >= storage.data.length)) throw new Error(`${file}: tensor '${name}' reads past its storage (${storage.data.length} elements)`);
  const out = storage.dtype === "float32" ? new Float32Array(n) : new Int32Array(n);
  const idx = new Array<number>(t.shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let o = t.offset;
    for (let d = 0; d < idx.length; d++) o += idx[d] * t.stride[d];
    out[i] = storage.data[o];
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d] < t.shape[d]) break;
      idx[d] = 0;
    }
  }
  return { dtype: storage.dtype, shape: [...t.shape], data: out, source: storage.source } as HostTensor;
}

const isTensorDict = (v: PyVal): v is Map<PyVal, PyVal> => v instanceof Map && v.size > 0 && [...v.values()].every((x) => x instanceof TensorRef);

/**
 * Reads a torch zip checkpoint into host tensors. The state dict is the top-level dict when it
 * holds tensors, else the sub-dict named by `key`, else the one of state_dict/model/teacher/module
 * that holds tensors.
 */
export async function readPth(file: string, opts: { key?: string } = {}): Promise<StateDict> {
  const fh = await fsp.open(file, "r").catch((e: Error) => {
    throw new Error(`${file}: cannot open (${e.message})`);
  });
  try {
    const index = await readZipIndex(fh, file);
    const pkl = [...index.keys()].find((k) => /^[^/]+\/data\.pkl$/.test(k));
    if (!pkl) throw new Error(`${file}: no <archive>/data.pkl in the zip (a legacy non-zip checkpoint? re-save it with torch >= 1.6)`);
    const prefix = pkl.slice(0, -"data.pkl".length);
    const root = unpickle(await readEntry(fh, index.get(pkl)!, file), `${file}:${pkl}`);
    let dict: Map<PyVal, PyVal> | undefined;
    if (opts.key !== undefined) {
      const sub = root instanceof Map ? root.get(opts.key) : undefined;
      if (!isTensorDict(sub ?? null)) throw new Error(`${file}: '${opts.key}' is not a dict of tensors`);
      dict = sub as Map<PyVal, PyVal>;
    } else if (isTensorDict(root)) dict = root;
    else if (root instanceof Map) {
      for (const k of ["state_dict", "model", "teacher", "module"]) {
        const sub = root.get(k);
        if (sub !== undefined && isTensorDict(sub)) {
          dict = sub;
          break;
        }
      }
    }
    if (!dict) {
      const keys = root instanceof Map ? [...root.keys()].map(String).join(", ") : typeof root;
      throw new Error(`${file}: no state dict of tensors found (top level: ${keys}); pass key`);
    }
    const storages = new Map<string, HostTensor>();
    const out: StateDict = new Map();
    for (const [k, v] of dict) {
      const t = v as TensorRef;
      const name = String(k);
      let s = storages.get(t.storage.key);
      if (!s) {
        const entry = index.get(`${prefix}data/${t.storage.key}`);
        if (!entry) throw new Error(`${file}: storage '${t.storage.key}' of tensor '${name}' is missing from the zip`);
        const bytes = await readEntry(fh, entry, file);
        const count = Math.floor(bytes.byteLength / DTYPE_SIZE[t.storage.dtype]);
        s = decodeTensor({ name, dtype: t.storage.dtype, shape: [count], begin: 0, end: count * DTYPE_SIZE[t.storage.dtype] }, bytes, file);
        storages.set(t.storage.key, s);
      }
      out.set(name, materialise(t, s, name, file));
    }
    return out;
  } finally {
    await fh.close();
  }
}
