// The project's one restricted unpickler: the data-building opcodes of protocols 0-5 and no code
// execution. What globals mean is a policy's: only the globals it names are understood (as the
// `pickle.Unpickler.find_class` overrides of safe loaders refuse the rest), REDUCE/NEWOBJ calls its
// handler, BUILD and persistent ids go to it. Two policies use it: numpy data files here
// (`unpickle`: CIFAR's batches; numpy arrays, `_codecs.encode` for protocol-2 bytes) and torch
// checkpoints (src/weights/pth.ts: tensors over storages, OrderedDict).

export type PyValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PyValue[] | PyTuple | PyDict | NdArray | PyGlobal | PyReduce | PyExternal;

/** A value a policy builds that the unpickler passes through untouched (a torch tensor reference). */
export abstract class PyExternal {}

export class PyTuple { constructor(readonly items: PyValue[]) {} }
/** A dict; keys are strings (str keys and, decoded as latin-1, bytes keys) or numbers. */
export class PyDict { readonly map = new Map<string | number, PyValue>(); }
/** A numpy array: dtype string ('u1', '<i8', '<f4', ...), shape, raw little-endian bytes. */
export class NdArray {
  constructor(public dtype: string, public shape: number[], public data: Uint8Array, public fortran = false) {}
}
export class PyGlobal { constructor(readonly module: string, readonly name: string) {} }
/** An allowed global applied to arguments, to be finished by BUILD (numpy dtype/ndarray). */
export class PyReduce { constructor(readonly fn: PyGlobal, readonly args: PyValue[], public state: PyValue = null) {} }

/** What a pickle's globals, BUILD and persistent ids mean to one kind of file. */
export interface PicklePolicy {
  /** Allowed globals ("module.name") and what REDUCE/NEWOBJ of each with its arguments gives. */
  globals: Record<string, (args: PyValue[], fail: (m: string) => never) => PyValue>;
  /** BUILD: `state` applied to `obj` (the default refuses). */
  build?: (obj: PyValue, state: PyValue, fail: (m: string) => never) => void;
  /** A persistent id's object (the default refuses). */
  persistentLoad?: (pid: PyValue, fail: (m: string) => never) => PyValue;
  /** The value STOP returns, finished (default: as is). */
  finish?: (v: PyValue, fail: (m: string) => never) => PyValue;
  /** Said after "refusing global 'x'": what this kind of file may hold. */
  refusal: string;
}

const MARK = Symbol("mark");
type Slot = PyValue | typeof MARK;

export class UnpicklingError extends Error {}

/** Runs a pickle's data-building opcodes under `policy`; `what` names the source in errors. */
export function interpretPickle(bytes: Uint8Array, policy: PicklePolicy, what = "<pickle>"): PyValue {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const stack: Slot[] = [];
  const memo = new Map<number, PyValue>();
  const fail = (msg: string): never => { throw new UnpicklingError(`${what}: ${msg} (at byte ${pos})`); };
  const need = (n: number) => { if (pos + n > buf.length) fail("truncated pickle"); };
  const u8 = () => { need(1); return buf[pos++]; };
  const u16 = () => { need(2); const v = buf.readUInt16LE(pos); pos += 2; return v; };
  const u32 = () => { need(4); const v = buf.readUInt32LE(pos); pos += 4; return v; };
  const i32 = () => { need(4); const v = buf.readInt32LE(pos); pos += 4; return v; };
  const u64 = () => { need(8); const v = Number(buf.readBigUInt64LE(pos)); pos += 8; return v; };
  const take = (n: number) => { need(n); const b = buf.subarray(pos, pos + n); pos += n; return b; };
  const line = () => { const e = buf.indexOf(0x0a, pos); if (e < 0) fail("truncated pickle (no newline)"); const s = buf.toString("latin1", pos, e); pos = e + 1; return s; };
  const pop = (): PyValue => { if (!stack.length) fail("stack underflow"); const v = stack.pop()!; if (v === MARK) fail("unexpected MARK"); return v as PyValue; };
  const top = (): PyValue => { const v = stack[stack.length - 1]; if (v === undefined || v === MARK) fail("stack underflow"); return v as PyValue; };
  const popMark = (): PyValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail("MARK missing");
    const items = stack.splice(i) as Slot[];
    return items.slice(1) as PyValue[];
  };
  const key = (k: PyValue): string | number => {
    if (typeof k === "string" || typeof k === "number") return k;
    if (k instanceof Uint8Array) return Buffer.from(k).toString("latin1");
    if (typeof k === "bigint") return Number(k);
    return fail(`unsupported dict key type ${typeof k}`);
  };
  const setItems = (d: PyValue, kv: PyValue[]) => {
    if (!(d instanceof PyDict)) fail("SETITEM(S) on a non-dict");
    for (let i = 0; i + 1 < kv.length; i += 2) (d as PyDict).map.set(key(kv[i]), kv[i + 1]);
  };
  const append = (l: PyValue, items: PyValue[]) => { if (!Array.isArray(l)) fail("APPEND(S) on a non-list"); (l as PyValue[]).push(...items); };
  const global = (module: string, name: string): PyGlobal => {
    const full = `${module}.${name}`;
    if (!(full in policy.globals)) fail(`refusing global '${full}' (${policy.refusal})`);
    return new PyGlobal(module, name);
  };
  const longLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME (frames are just a prefix; the stream continues)
      case 0x2e: { // STOP
        const v = pop();
        return policy.finish ? policy.finish(v, fail) : v;
      }
      case 0x28: stack.push(MARK); break; // MARK
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const kv = popMark(); const d = new PyDict(); setItems(d, kv); stack.push(d); break; } // DICT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x68: case 0x6a: case 0x67: { // BINGET, LONG_BINGET, GET
        const id = op === 0x68 ? u8() : op === 0x6a ? u32() : Number(line());
        if (!memo.has(id)) fail(`memo key ${id} missing`);
        stack.push(memo.get(id)!);
        break;
      }
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: { const n = u8(); stack.push(longLE(take(n))); break; } // LONG1
      case 0x8b: { const n = i32(); if (n < 0) fail("negative LONG4 size"); stack.push(longLE(take(n))); break; } // LONG4
      case 0x49: { const s = line(); stack.push(s === "01" ? true : s === "00" ? false : Number(s)); break; } // INT
      case 0x4c: stack.push(Number(line().replace(/L$/, ""))); break; // LONG
      case 0x47: { need(8); stack.push(buf.readDoubleBE(pos)); pos += 8; break; } // BINFLOAT
      case 0x46: stack.push(Number(line())); break; // FLOAT
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      // Python 2 str: kept as bytes (like encoding='bytes'); callers decode what they need.
      case 0x55: stack.push(new Uint8Array(take(u8()))); break; // SHORT_BINSTRING
      case 0x54: { const n = i32(); if (n < 0) fail("negative BINSTRING size"); stack.push(new Uint8Array(take(n))); break; } // BINSTRING
      case 0x43: stack.push(new Uint8Array(take(u8()))); break; // SHORT_BINBYTES
      case 0x42: stack.push(new Uint8Array(take(u32()))); break; // BINBYTES
      case 0x8e: stack.push(new Uint8Array(take(u64()))); break; // BINBYTES8
      case 0x8c: stack.push(take(u8()).toString("utf8")); break; // SHORT_BINUNICODE
      case 0x58: stack.push(take(u32()).toString("utf8")); break; // BINUNICODE
      case 0x8d: stack.push(take(u64()).toString("utf8")); break; // BINUNICODE8
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; ASCII suffices for data files)
      case 0x53: { const s = line(); stack.push(new Uint8Array(Buffer.from(s.slice(1, -1), "latin1"))); break; } // STRING
      case 0x63: { const mod = line(); const name = line(); stack.push(global(mod, name)); break; } // GLOBAL
      case 0x93: { const name = pop(), mod = pop(); if (typeof mod !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings"); stack.push(global(mod as string, name as string)); break; }
      case 0x52: case 0x81: { // REDUCE, NEWOBJ
        const args = pop(), fn = pop();
        if (!(fn instanceof PyGlobal)) fail("REDUCE/NEWOBJ on something that is not an allowed global");
        if (!(args instanceof PyTuple)) fail("REDUCE/NEWOBJ arguments are not a tuple");
        const g = fn as PyGlobal;
        stack.push(policy.globals[`${g.module}.${g.name}`]((args as PyTuple).items, fail));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        if (!policy.build) fail("BUILD is not allowed here");
        (policy.build as NonNullable<PicklePolicy["build"]>)(top(), state, fail);
        break;
      }
      case 0x51: case 0x50: { // BINPERSID, PERSID
        const pid = op === 0x51 ? pop() : line();
        if (!policy.persistentLoad) fail("persistent ids are not allowed here");
        stack.push((policy.persistentLoad as NonNullable<PicklePolicy["persistentLoad"]>)(pid, fail));
        break;
      }
      case 0x8f: stack.push([]); break; // EMPTY_SET (as a list)
      case 0x90: { const items = popMark(); append(top(), items); break; } // ADDITEMS
      case 0x91: stack.push(popMark()); break; // FROZENSET
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16)}`);
    }
  }
}

// ---- numpy data files (CIFAR's pickled batches) ----------------------------------------------

const deferred = (module: string, name: string) => (args: PyValue[]) => new PyReduce(new PyGlobal(module, name), args);
const NUMPY: PicklePolicy = {
  globals: {
    "numpy.core.multiarray._reconstruct": deferred("numpy.core.multiarray", "_reconstruct"),
    "numpy._core.multiarray._reconstruct": deferred("numpy._core.multiarray", "_reconstruct"),
    "numpy.ndarray": deferred("numpy", "ndarray"),
    "numpy.dtype": deferred("numpy", "dtype"),
    // Protocol-2 pickles from Python 3 store bytes as _codecs.encode(str, 'latin1').
    "_codecs.encode": ([s, enc], fail) => {
      if (typeof s !== "string" || (enc !== "latin1" && enc !== "latin-1")) fail("_codecs.encode is only allowed as (str, 'latin1')");
      return new Uint8Array(Buffer.from(s as string, "latin1"));
    },
  },
  build: (obj, state, fail) => {
    if (!(obj instanceof PyReduce)) fail("BUILD on an object that is not a numpy array or dtype");
    (obj as PyReduce).state = state;
  },
  finish: (v, fail) => finish(v, fail),
  refusal: "only numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype and _codecs.encode are allowed",
};

/** A numpy data file (dicts, lists, tuples, strings, bytes, numbers, numpy arrays), never executed. */
export function unpickle(bytes: Uint8Array, what = "<pickle>"): PyValue {
  return interpretPickle(bytes, NUMPY, what);
}

/** Turns finished numpy reconstructions into NdArray, recursively. */
function finish(v: PyValue, fail: (m: string) => never): PyValue {
  const seen = new Map<object, PyValue>();
  const walk = (x: PyValue): PyValue => {
    if (x === null || typeof x !== "object" || x instanceof Uint8Array || x instanceof NdArray || x instanceof PyGlobal || x instanceof PyExternal) return x;
    if (seen.has(x)) return seen.get(x)!;
    if (x instanceof PyReduce) {
      const out = toNdArray(x, fail);
      seen.set(x, out);
      return out;
    }
    if (Array.isArray(x)) { seen.set(x, x); for (let i = 0; i < x.length; i++) x[i] = walk(x[i]); return x; }
    if (x instanceof PyTuple) { seen.set(x, x); for (let i = 0; i < x.items.length; i++) x.items[i] = walk(x.items[i]); return x; }
    if (x instanceof PyDict) { seen.set(x, x); for (const [k, val] of x.map) x.map.set(k, walk(val)); return x; }
    return x;
  };
  return walk(v);
}

function dtypeOf(r: PyValue, fail: (m: string) => never): string {
  if (!(r instanceof PyReduce) || `${r.fn.module}.${r.fn.name}` !== "numpy.dtype") return fail("numpy array without a dtype");
  const [name] = r.args;
  const n = typeof name === "string" ? name : name instanceof Uint8Array ? Buffer.from(name).toString("latin1") : fail("bad dtype name");
  // state = (version, byteorder, ...); '|' = not applicable, '<' little, '>' big, '=' native.
  const order = r.state instanceof PyTuple && typeof r.state.items[1] === "string" ? (r.state.items[1] as string) : "|";
  if (order === ">") fail(`big-endian numpy dtype '${n}' is not supported`);
  return n;
}

function toNdArray(r: PyReduce, fail: (m: string) => never): PyValue {
  const full = `${r.fn.module}.${r.fn.name}`;
  if (full === "numpy.dtype") return r;
  if (!full.endsWith("multiarray._reconstruct")) return fail(`cannot build an object of ${full}`);
  if (!(r.state instanceof PyTuple)) return fail("numpy array without state");
  // state = (version, shape, dtype, is_fortran, raw bytes)
  const [, shape, dtype, fortran, raw] = r.state.items;
  if (!(shape instanceof PyTuple)) return fail("numpy array shape is not a tuple");
  const dims = shape.items.map((d) => Number(d));
  const data = raw instanceof Uint8Array ? raw : typeof raw === "string" ? new Uint8Array(Buffer.from(raw, "latin1")) : fail("numpy array data is not bytes (object arrays are not supported)");
  const dt = dtypeOf(dtype, fail);
  const arr = new NdArray(dt, dims, data, fortran === true);
  const itemsize = Number(dt.replace(/^\D+/, "")) || 1;
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count * itemsize) fail(`numpy array [${dims}] of ${dt} needs ${count * itemsize} bytes, has ${data.length}`);
  return arr;
}

/** dict[key] with bytes/str keys interchangeable; throws naming the key when missing. */
export function dictGet(d: PyValue, k: string, what: string): PyValue {
  if (!(d instanceof PyDict)) throw new Error(`${what}: expected a dict at the top level`);
  if (!d.map.has(k)) throw new Error(`${what}: missing key '${k}' (has ${[...d.map.keys()].join(", ")})`);
  return d.map.get(k)!;
}

/** A Python str or bytes as a JS string. */
export function pyString(v: PyValue, what: string): string {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString("utf8");
  throw new Error(`${what}: expected a string`);
}
