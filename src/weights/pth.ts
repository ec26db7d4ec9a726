// PyTorch `.pth` / `.bin` (torch >= 1.6 zip format) importer that never executes the pickle.
// The project's restricted unpickler (src/data/pickle.ts) runs only data-building opcodes under a
// torch policy: the only globals it resolves are collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the torch.*Storage types; any other
// global is an error naming it. Storages are read from the zip's stored (uncompressed)
// `<archive>/data/<key>` entries on demand.
import { promises as fsp } from "node:fs";
import { decodeTensor, HostTensor, numel, SafeDtype, StateDict, DTYPE_SIZE } from "./safetensors";
import { PicklePolicy, PyDict, PyExternal, PyGlobal, PyTuple, PyValue, interpretPickle } from "../data/pickle";

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

// ---- the torch policy of the project's restricted unpickler (src/data/pickle.ts) -------------

class StorageRef extends PyExternal {
  constructor(readonly dtype: SafeDtype, readonly key: string, readonly numel: number) { super(); }
}
/** A tensor as the pickle describes it: a strided view of a storage. */
export class TensorRef extends PyExternal {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) { super(); }
}

const int = (v: PyValue, what: string, fail: (m: string) => never): number => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : fail(`${what} is not an integer`));
const dims = (v: PyValue, what: string, fail: (m: string) => never): number[] => (v instanceof PyTuple ? v.items.map((x) => int(x, what, fail)) : fail(`${what} is not a tuple`));
const text = (v: PyValue): string => (v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : String(v));

const TORCH: PicklePolicy = {
  globals: {
    "collections.OrderedDict": () => new PyDict(),
    "torch._utils._rebuild_tensor_v2": ([storage, offset, size, stride], fail) => {
      if (!(storage instanceof StorageRef)) return fail("_rebuild_tensor_v2 without a storage");
      return new TensorRef(storage, int(offset, "storage offset", fail), dims(size, "size", fail), dims(stride, "stride", fail));
    },
    "torch._utils._rebuild_parameter": ([t]) => t,
    // Storage types only name a dtype inside persistent ids; calling one is refused.
    ...Object.fromEntries(Object.keys(STORAGE_DTYPES).map((s) => [`torch.${s}`, (_: PyValue[], fail: (m: string) => never) => fail(`global 'torch.${s}' cannot be called`)])),
  },
  // BUILD on a state_dict sets its _metadata: dropped.
  build: (obj, _state, fail) => { if (!(obj instanceof PyDict)) fail("BUILD on something other than a dict"); },
  // ('storage', StorageType, key, location, numel)
  persistentLoad: (pid, fail) => {
    if (!(pid instanceof PyTuple) || text(pid.items[0]) !== "storage" || !(pid.items[1] instanceof PyGlobal)) return fail("unsupported persistent id");
    const type = pid.items[1] as PyGlobal;
    const dtype = STORAGE_DTYPES[type.name];
    if (!dtype) return fail(`unsupported storage type '${type.module}.${type.name}'`);
    return new StorageRef(dtype, text(pid.items[2]), int(pid.items[4], "storage size", fail));
  },
  refusal: "only tensors and OrderedDicts are read (the file may hold other objects; save a state_dict instead)",
};

/** Interprets a checkpoint's data.pkl into plain values; never imports or calls anything else. */
export function unpickle(data: Uint8Array, file = "data.pkl"): PyValue {
  return interpretPickle(data, TORCH, file);
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

const isTensorDict = (v: PyValue | undefined): v is PyDict => v instanceof PyDict && v.map.size > 0 && [...v.map.values()].every((x) => x instanceof TensorRef);

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
    let dict: PyDict | undefined;
    if (opts.key !== undefined) {
      const sub = root instanceof PyDict ? root.map.get(opts.key) : undefined;
      if (!isTensorDict(sub)) throw new Error(`${file}: '${opts.key}' is not a dict of tensors`);
      dict = sub;
    } else if (isTensorDict(root)) dict = root;
    else if (root instanceof PyDict) {
      for (const k of ["state_dict", "model", "teacher", "module"]) {
        const sub = root.map.get(k);
        if (isTensorDict(sub)) {
          dict = sub;
          break;
        }
      }
    }
    if (!dict) {
      const keys = root instanceof PyDict ? [...root.map.keys()].map(String).join(", ") : typeof root;
      throw new Error(`${file}: no state dict of tensors found (top level: ${keys}); pass key`);
    }
    const storages = new Map<string, HostTensor>();
    const out: StateDict = new Map();
    for (const [k, v] of dict.map) {
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
