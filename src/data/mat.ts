// A minimal MATLAB v5 .mat reader: numeric matrices (real, any numeric storage type), plain or
// zlib-compressed (miCOMPRESSED), little-endian files. That covers Flowers-102's imagelabels.mat and
// setid.mat (scipy.io.loadmat is what torchvision uses on them). Cells, structs, sparse, complex and
// v7.3 (HDF5) files are refused with an error naming the variable or the file.
import * as zlib from "node:zlib";

export interface MatArray {
  /** MATLAB dims, e.g. [1, 8189]. Data is column-major (irrelevant for vectors). */
  dims: number[];
  data: Float64Array;
  /** mxCLASS name, e.g. "double", "uint8". */
  class: string;
}

const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9, INT64: 12, UINT64: 13, MATRIX: 14, COMPRESSED: 15, UTF8: 16 };
const CLASSES: Record<number, string> = { 1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double", 7: "single", 8: "int8", 9: "uint8", 10: "int16", 11: "uint16", 12: "int32", 13: "uint32", 14: "int64", 15: "uint64" };

interface Element { type: number; data: Buffer; next: number }

function readElement(buf: Buffer, pos: number, what: string): Element {
  if (pos + 8 > buf.length) throw new Error(`${what}: truncated MAT file (data element tag at byte ${pos})`);
  let type = buf.readUInt32LE(pos);
  let nbytes: number;
  if (type >>> 16 !== 0) {
    // Small data element: size in the upper half of the tag, data in the next 4 bytes.
    nbytes = type >>> 16;
    type &= 0xffff;
    return { type, data: buf.subarray(pos + 4, pos + 4 + nbytes), next: pos + 8 };
  }
  nbytes = buf.readUInt32LE(pos + 4);
  const start = pos + 8;
  if (start + nbytes > buf.length) throw new Error(`${what}: truncated MAT file (element of ${nbytes} bytes at byte ${pos} runs past the end)`);
  // Compressed elements are not padded; everything else is padded to 8 bytes.
  const next = type === MI.COMPRESSED ? start + nbytes : start + Math.ceil(nbytes / 8) * 8;
  return { type, data: buf.subarray(start, start + nbytes), next };
}

function numeric(e: Element, what: string): Float64Array {
  const b = e.data;
  const n = (size: number) => Math.floor(b.length / size);
  const out = (size: number, get: (i: number) => number) => Float64Array.from({ length: n(size) }, (_, i) => get(i * size));
  switch (e.type) {
    case MI.INT8: return out(1, (o) => b.readInt8(o));
    case MI.UINT8: return out(1, (o) => b[o]);
    case MI.INT16: return out(2, (o) => b.readInt16LE(o));
    case MI.UINT16: return out(2, (o) => b.readUInt16LE(o));
    case MI.INT32: return out(4, (o) => b.readInt32LE(o));
    case MI.UINT32: return out(4, (o) => b.readUInt32LE(o));
    case MI.SINGLE: return out(4, (o) => b.readFloatLE(o));
    case MI.DOUBLE: return out(8, (o) => b.readDoubleLE(o));
    case MI.INT64: return out(8, (o) => Number(b.readBigInt64LE(o)));
    case MI.UINT64: return out(8, (o) => Number(b.readBigUInt64LE(o)));
    default: throw new Error(`${what}: unsupported numeric storage type ${e.type}`);
  }
}

function readMatrix(m: Buffer, what: string): { name: string; array: MatArray } {
  const flags = readElement(m, 0, what);
  const cls = flags.data[0];
  const complex = (flags.data[1] & 0x08) !== 0;
  const dimsEl = readElement(m, flags.next, what);
  const dims = Array.from(numeric(dimsEl, what));
  const nameEl = readElement(m, dimsEl.next, what);
  const name = nameEl.data.toString("latin1");
  const className = CLASSES[cls] ?? `class ${cls}`;
  if (cls < 6 || cls > 15) throw new Error(`${what}: variable '${name}' is a ${className}; only numeric matrices are supported`);
  if (complex) throw new Error(`${what}: variable '${name}' is complex; only real matrices are supported`);
  const real = readElement(m, nameEl.next, what);
  const data = numeric(real, `${what}:${name}`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new Error(`${what}: variable '${name}' has ${data.length} values for dims [${dims}]`);
  return { name, array: { dims, data, class: className } };
}

/** Reads every numeric variable of a MAT v5 file. */
export function readMat(bytes: Uint8Array, what = "<mat>"): Map<string, MatArray> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 128) throw new Error(`${what}: not a MAT v5 file (shorter than the 128-byte header)`);
  const text = buf.toString("latin1", 0, 116);
  if (text.startsWith("MATLAB 7.3") || buf.toString("latin1", 0, 8) === "\x89HDF\r\n\x1a\n") throw new Error(`${what}: MAT v7.3 (HDF5) files are not supported`);
  const endian = buf.toString("latin1", 126, 128);
  if (endian === "MI") throw new Error(`${what}: big-endian MAT files are not supported`);
  if (endian !== "IM" || !text.startsWith("MATLAB 5.0")) throw new Error(`${what}: not a MAT v5 file (bad header)`);
  const out = new Map<string, MatArray>();
  let pos = 128;
  while (pos + 8 <= buf.length) {
    const e = readElement(buf, pos, what);
    pos = e.next;
    let m: Element = e;
    if (e.type === MI.COMPRESSED) {
      let inflated: Buffer;
      try {
        inflated = zlib.inflateSync(e.data);
      } catch (err) {
        throw new Error(`${what}: corrupt compressed element (${err instanceof Error ? err.message : err})`);
      }
      m = readElement(inflated, 0, what);
    }
    if (m.type !== MI.MATRIX) continue;
    const { name, array } = readMatrix(m.data, what);
    out.set(name, array);
  }
  return out;
}

/** A variable of a MAT file, or an error naming what is there. */
export function matVar(vars: Map<string, MatArray>, name: string, what: string): MatArray {
  const v = vars.get(name);
  if (!v) throw new Error(`${what}: no variable '${name}' (has ${[...vars.keys()].join(", ") || "none"})`);
  return v;
}
