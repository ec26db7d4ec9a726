// safetensors reader and writer (https://github.com/huggingface/safetensors, format in its README):
// 8-byte little-endian header length N, N bytes of JSON, then the raw little-endian C-order data.
// Reading streams: the header first, then each tensor's byte range straight into its own typed
// array, so a file is never held in memory twice. Floats come back as float32 (F16 and BF16
// decoded exactly, F64 rounded); integer and bool tensors come back as int32 (I64/U64 only when
// every value fits). Writing is F32 only, atomic (temp file + rename), header space-padded to 8 bytes.
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export type SafeDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U64" | "U32" | "U16" | "U8" | "BOOL";

/** Bytes per element of each dtype we read. */
export const DTYPE_SIZE: Readonly<Record<SafeDtype, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

/** A tensor in host memory, C order. `dtype` is what `data` holds; `source` is the file's dtype. */
export type HostTensor =
  | { dtype: "float32"; shape: number[]; data: Float32Array; source?: SafeDtype }
  | { dtype: "int32"; shape: number[]; data: Int32Array; source?: SafeDtype };

/** Tensors by name, in file (or insertion) order. */
export type StateDict = Map<string, HostTensor>;

export interface TensorInfo {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  /** Byte range inside the data buffer (after the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  /** Absolute offset of the data buffer: 8 + header length. */
  dataStart: number;
  /** Tensors in the header's order. */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
}

/** Upper bound on the JSON header, as in the reference implementation (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Error whose message always starts with the file, so a failing load names what failed. */
export class SafetensorsError extends Error {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "SafetensorsError";
  }
}

function isDtype(s: unknown): s is SafeDtype {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

const isIndex = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * Validates a header. `json` is the header text; `bufferBytes` the size of the data buffer.
 * Checks every entry (dtype, shape, offsets inside the buffer, byte length = numel * size) and
 * that no two byte ranges overlap. Gaps between ranges are allowed (harmless padding).
 */
export function parseHeader(file: string, json: string, bufferBytes: number, dataStart: number): SafetensorsHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new SafetensorsError(file, `header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError(file, "header is not a JSON object");
  }
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
        throw new SafetensorsError(file, "__metadata__ is not an object of strings");
      }
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== "string") throw new SafetensorsError(file, `__metadata__.${k} is not a string`);
      }
      metadata = { ...(entry as Record<string, string>) };
      continue;
    }
    const bad = (problem: string) => new SafetensorsError(file, `tensor '${name}': ${problem}`);
    if (typeof entry !== "object" || entry === null) throw bad("header entry is not an object");
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (!isDtype(dtype)) throw bad(`unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_SIZE).join(", ")})`);
    if (!Array.isArray(shape) || !shape.every(isIndex)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
      throw bad(`data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
    if (end > bufferBytes) throw bad(`data_offsets [${begin}, ${end}] run past the data buffer (${bufferBytes} bytes; file truncated?)`);
    const want = numel(shape) * DTYPE_SIZE[dtype];
    if (end - begin !== want) {
      throw bad(`byte length ${end - begin} does not match ${dtype} shape [${shape.join(", ")}] (${want} bytes)`);
    }
    tensors.push({ name, dtype, shape: [...shape], begin, end });
  }
  const byOffset = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byOffset.length; i++) {
    const a = byOffset[i - 1];
    const b = byOffset[i];
    if (b.begin < a.end) {
      throw new SafetensorsError(file, `tensors '${a.name}' [${a.begin}, ${a.end}] and '${b.name}' [${b.begin}, ${b.end}] overlap`);
    }
  }
  return { file, fileSize: dataStart + bufferBytes, dataStart, tensors, metadata };
}

const LITTLE_ENDIAN = os.endianness() === "LE";

let f16Table: Float32Array | undefined;
/** All 65,536 half-precision values as float32 (exact: every f16 is representable). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = (sign ? -1 : 1) * mant * 2 ** -24; // zero and subnormals
    else if (exp === 31) bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, nan (payload kept)
    else bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  }
  f16Table = t;
  return t;
}

/** Decodes one tensor's little-endian bytes (a fresh, 8-byte aligned buffer) into a host tensor. */
export function decodeTensor(info: TensorInfo, bytes: Uint8Array, file = "<buffer>"): HostTensor {
  const n = numel(info.shape);
  const { buffer, byteOffset } = bytes;
  const shape = [...info.shape];
  if (!LITTLE_ENDIAN) throw new SafetensorsError(file, "big-endian hosts are not supported");
  const view = <T>(C: { new (b: ArrayBufferLike, o: number, n: number): T; BYTES_PER_ELEMENT: number }): T =>
    byteOffset % C.BYTES_PER_ELEMENT === 0 ? new C(buffer, byteOffset, n) : new C(new Uint8Array(bytes).buffer, 0, n); // copy to align
  const ints = (src: ArrayLike<number | bigint>): HostTensor => {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = Number(src[i]);
      if (v > 2147483647 || v < -2147483648) {
        throw new SafetensorsError(file, `tensor '${info.name}': ${info.dtype} value ${String(src[i])} does not fit in int32`);
      }
      out[i] = v;
    }
    return { dtype: "int32", shape, data: out, source: info.dtype };
  };
  switch (info.dtype) {
    case "F32":
      return { dtype: "float32", shape, data: view(Float32Array), source: "F32" };
    case "F64":
      return { dtype: "float32", shape, data: Float32Array.from(view(Float64Array)), source: "F64" };
    case "F16": {
      const u16 = view(Uint16Array);
      const table = halfTable();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[u16[i]];
      return { dtype: "float32", shape, data: out, source: "F16" };
    }
    case "BF16": {
      // bfloat16 is the top half of a float32.
      const u16 = view(Uint16Array);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = u16[i] << 16;
      return { dtype: "float32", shape, data: out, source: "BF16" };
    }
    case "I32":
      return { dtype: "int32", shape, data: Int32Array.from(view(Int32Array)), source: "I32" };
    case "I64":
      return ints(view(BigInt64Array));
    case "U64":
      return ints(view(BigUint64Array));
    case "U32":
      return ints(view(Uint32Array));
    case "I16":
      return ints(view(Int16Array));
    case "U16":
      return ints(view(Uint16Array));
    case "I8":
      return ints(new Int8Array(buffer, byteOffset, n));
    case "U8":
    case "BOOL":
      return ints(new Uint8Array(buffer, byteOffset, n));
  }
}

export interface ReadOptions {
  /** Only tensors whose name passes are read (the header is always parsed whole). */
  filter?: (name: string) => boolean;
}

/** Reads the 8-byte length and the JSON header of an open file, with every bound checked. */
async function readHeaderFrom(fh: fsp.FileHandle, file: string): Promise<SafetensorsHeader> {
  const { size } = await fh.stat();
  if (size < 8) throw new SafetensorsError(file, `truncated: ${size} bytes, shorter than the 8-byte header length`);
  const lenBuf = Buffer.alloc(8);
  await readExactly(fh, lenBuf, 0, file, "header length");
  const n = lenBuf.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
  if (n > BigInt(size - 8)) throw new SafetensorsError(file, `header length ${n} runs past the end of the file (${size} bytes; truncated?)`);
  const headerLen = Number(n);
  const json = Buffer.alloc(headerLen);
  await readExactly(fh, json, 8, file, "header");
  return parseHeader(file, json.toString("utf8"), size - 8 - headerLen, 8 + headerLen);
}

async function readExactly(fh: fsp.FileHandle, into: Uint8Array, position: number, file: string, what: string): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const { bytesRead } = await fh.read(into, done, into.byteLength - done, position + done);
    if (bytesRead === 0) throw new SafetensorsError(file, `truncated while reading ${what} (${done} of ${into.byteLength} bytes at ${position})`);
    done += bytesRead;
  }
}

/** An open safetensors file: the parsed header, and tensors read on demand. */
export class SafetensorsFile {
  private constructor(private readonly fh: fsp.FileHandle, readonly header: SafetensorsHeader) {}

  static async open(file: string): Promise<SafetensorsFile> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, "r");
    } catch (e) {
      throw new SafetensorsError(file, `cannot open (${e instanceof Error ? e.message : String(e)})`);
    }
    try {
      return new SafetensorsFile(fh, await readHeaderFrom(fh, file));
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get names(): string[] {
    return this.header.tensors.map((t) => t.name);
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.find((x) => x.name === name);
    if (!t) throw new SafetensorsError(this.header.file, `no tensor '${name}'`);
    return t;
  }

  /** Reads one tensor; its bytes go into a fresh buffer that becomes (or is decoded into) the result. */
  async read(name: string): Promise<HostTensor> {
    const t = this.info(name);
    const bytes = new Uint8Array(new ArrayBuffer(t.end - t.begin));
    await readExactly(this.fh, bytes, this.header.dataStart + t.begin, this.header.file, `tensor '${name}'`);
    return decodeTensor(t, bytes, this.header.file);
  }

  async readAll(opts: ReadOptions = {}): Promise<StateDict> {
    const out: StateDict = new Map();
    for (const t of this.header.tensors) {
      if (!opts.filter || opts.filter(t.name)) out.set(t.name, await this.read(t.name));
    }
    return out;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Reads the header only (names, dtypes, shapes, metadata) without touching the data. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const f = await SafetensorsFile.open(file);
  try {
    return f.header;
  } finally {
    await f.close();
  }
}

/** Reads a whole file (or the tensors `filter` keeps) into host tensors. */
export async function readSafetensors(file: string, opts: ReadOptions = {}): Promise<{ tensors: StateDict; metadata: Record<string, string> }> {
  const f = await SafetensorsFile.open(file);
  try {
    return { tensors: await f.readAll(opts), metadata: f.header.metadata };
  } finally {
    await f.close();
  }
}

/** Parses a complete in-memory file (tests, small buffers); same checks as the file reader. */
export function parseSafetensors(bytes: Uint8Array, file = "<buffer>"): { tensors: StateDict; metadata: Record<string, string> } {
  if (bytes.byteLength < 8) throw new SafetensorsError(file, `truncated: ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const n = Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
  if (n > BigInt(bytes.byteLength - 8)) throw new SafetensorsError(file, `header length ${n} runs past the end of the file (${bytes.byteLength} bytes; truncated?)`);
  const len = Number(n);
  const json = Buffer.from(bytes.buffer, bytes.byteOffset + 8, len).toString("utf8");
  const header = parseHeader(file, json, bytes.byteLength - 8 - len, 8 + len);
  const tensors: StateDict = new Map();
  for (const t of header.tensors) {
    // A real copy (Buffer#slice would be a view): the result must not alias the caller's bytes.
    const copy = new Uint8Array(bytes.subarray(header.dataStart + t.begin, header.dataStart + t.end));
    tensors.set(t.name, decodeTensor(t, copy, file));
  }
  return { tensors, metadata: header.metadata };
}

/** What the writer accepts per tensor: float32 data in C order. */
export interface F32Tensor {
  shape: readonly number[];
  data: Float32Array;
}

/**
 * Lays out an F32 file: tensors sorted by name (the reference implementation's order for one
 * dtype), contiguous offsets, `__metadata__` first, header padded with spaces to a multiple of 8
 * so the data buffer stays aligned.
 */
export function layoutSafetensors(
  tensors: Map<string, F32Tensor> | Record<string, F32Tensor>,
  metadata: Record<string, string> = {},
): { header: Buffer; order: [string, F32Tensor][] } {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const order = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const head: Record<string, unknown> = {};
  const metaKeys = Object.keys(metadata).sort();
  if (metaKeys.length) {
    const meta: Record<string, string> = {};
    for (const k of metaKeys) {
      if (typeof metadata[k] !== "string") throw new Error(`safetensors metadata '${k}' must be a string`);
      meta[k] = metadata[k];
    }
    head.__metadata__ = meta;
  }
  let offset = 0;
  for (const [name, t] of order) {
    if (name === "__metadata__") throw new Error("'__metadata__' cannot be a tensor name");
    if (!t.shape.every((v) => isIndex(v))) throw new Error(`tensor '${name}': shape [${t.shape.join(", ")}] is not a list of non-negative integers`);
    if (numel(t.shape) !== t.data.length) throw new Error(`tensor '${name}': shape [${t.shape.join(", ")}] has ${numel(t.shape)} elements but data has ${t.data.length}`);
    const bytes = t.data.length * 4;
    head[name] = { dtype: "F32", shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(head);
  const jsonBytes = Buffer.byteLength(json, "utf8");
  json += " ".repeat((8 - ((jsonBytes) % 8)) % 8);
  const header = Buffer.alloc(8 + Buffer.byteLength(json, "utf8"));
  header.writeBigUInt64LE(BigInt(header.length - 8), 0);
  header.write(json, 8, "utf8");
  return { header, order };
}

/** The whole file in memory (tests, small adapters). */
export function encodeSafetensors(tensors: Map<string, F32Tensor> | Record<string, F32Tensor>, metadata: Record<string, string> = {}): Buffer {
  const { header, order } = layoutSafetensors(tensors, metadata);
  const parts: Buffer[] = [header];
  for (const [, t] of order) parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return Buffer.concat(parts);
}

/** Writes `file` atomically: to a temp file beside it, flushed, then renamed over the target. */
export async function writeSafetensors(
  file: string,
  tensors: Map<string, F32Tensor> | Record<string, F32Tensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const { header, order } = layoutSafetensors(tensors, metadata);
  if (!LITTLE_ENDIAN) throw new SafetensorsError(file, "big-endian hosts are not supported");
  const dir = path.dirname(path.resolve(file));
  await fsp.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  const fh = await fsp.open(tmp, "w");
  try {
    await fh.write(header, 0, header.length);
    for (const [, t] of order) await fh.write(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw new SafetensorsError(file, `write failed (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** A host tensor as float32 (int tensors converted; exact below 2^24). */
export function asFloat32(t: HostTensor): Float32Array {
  return t.dtype === "float32" ? t.data : Float32Array.from(t.data);
}
