// Streaming tar(.gz) reader and a safe extractor. Entries are parsed from the (gunzipped) byte
// stream as they arrive: ustar, GNU long names ('L'/'K') and pax headers ('x'/'g') are understood.
// Every entry path is checked: absolute paths and `..` segments are refused, and so are links
// (symlinks and hardlinks) when extracting, so an archive can never write outside its target.
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { writeFileAtomic } from "../ground/atomic";

export type TarEntryType = "file" | "directory" | "symlink" | "hardlink" | "other";

export interface TarEntry {
  /** Normalised relative path ('a/b/c.jpg', never absolute, no '..'). */
  path: string;
  type: TarEntryType;
  size: number;
  /** Link target for symlinks/hardlinks. */
  linkname: string;
}

const BLOCK = 512;

/** Chunked byte queue over an async iterable of Buffers. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private length = 0;
  private done = false;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** Ensures at least n bytes are buffered (fewer only at end of stream). */
  private async fill(n: number): Promise<void> {
    while (this.length < n && !this.done) {
      const r = await this.source.next();
      if (r.done) this.done = true;
      else {
        this.chunks.push(r.value);
        this.length += r.value.length;
      }
    }
  }

  /** Takes exactly n bytes, or fewer when the stream ends first. */
  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const m = Math.min(n, this.length);
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, m);
    const rest = all.subarray(m);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return out;
  }
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? s.length : z).toString("utf8");
}

function octal(b: Buffer, off: number, len: number, what: string, file: string): number {
  // GNU base-256 for large sizes: high bit of the first byte set.
  if (b[off] & 0x80) {
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return v;
  }
  const s = cstr(b, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`${file}: corrupt tar header (${what} field '${s}' is not octal)`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = parseInt(cstr(h, 148, 8).trim(), 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === stored;
}

/**
 * Normalises an archive path and refuses one that escapes the target: absolute paths, drive
 * letters, and any '..' segment. Returns '' for the archive root ('./').
 */
export function safeArchivePath(name: string, archive: string): string {
  const p = name.replace(/\\/g, "/");
  if (p.startsWith("/") || /^[a-zA-Z]:/.test(p)) throw new Error(`${archive}: refusing entry '${name}' with an absolute path`);
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) throw new Error(`${archive}: refusing entry '${name}' that escapes the target directory ('..')`);
  return parts.join("/");
}

function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(body.subarray(i, sp).toString("ascii"), 10);
    if (!(len > 0)) break;
    const rec = body.subarray(sp + 1, i + len - 1).toString("utf8");
    const eq = rec.indexOf("=");
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

async function* byteChunks(file: string): AsyncGenerator<Buffer> {
  const fd = await fs.promises.open(file, "r");
  let head: Buffer;
  try {
    head = Buffer.alloc(2);
    await fd.read(head, 0, 2, 0);
  } finally {
    await fd.close();
  }
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  const gz = head[0] === 0x1f && head[1] === 0x8b;
  const stream = gz ? raw.pipe(zlib.createGunzip()) : raw;
  if (gz) raw.on("error", (e) => stream.destroy(e));
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`${file}: ${gz ? "corrupt or truncated gzip stream" : "read error"} (${msg})`);
  }
}

/**
 * Streams the entries of a .tar or .tar.gz file. `data` holds a file entry's bytes (empty for
 * other types). Paths are validated (see safeArchivePath); links are reported, not followed.
 */
export async function* readTar(file: string): AsyncGenerator<{ entry: TarEntry; data: Buffer }> {
  const q = new ByteQueue(byteChunks(file)[Symbol.asyncIterator]());
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();
  let global = new Map<string, string>();
  let offset = 0;
  for (;;) {
    const h = await q.take(BLOCK);
    if (h.length === 0) return; // tolerated: archive without the two zero end blocks
    if (h.length < BLOCK) throw new Error(`${file}: truncated tar archive (partial header at byte ${offset})`);
    offset += BLOCK;
    if (h.every((b) => b === 0)) return; // end-of-archive marker
    if (!checksumOk(h)) throw new Error(`${file}: corrupt tar header at byte ${offset - BLOCK} (checksum mismatch)`);
    const size = octal(h, 124, 12, "size", file);
    const flag = String.fromCharCode(h[156] || 0x30);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    const body = await q.take(padded);
    if (body.length < padded) {
      throw new Error(`${file}: truncated tar archive (entry '${cstr(h, 0, 100)}' needs ${size} bytes, got ${Math.max(0, body.length)})`);
    }
    offset += padded;
    const data = body.subarray(0, size);
    if (flag === "L") { longName = cstr(data, 0, data.length); continue; }
    if (flag === "K") { longLink = cstr(data, 0, data.length); continue; }
    if (flag === "x") { pax = parsePax(data); continue; }
    if (flag === "g") { global = new Map([...global, ...parsePax(data)]); continue; }
    const magic = cstr(h, 257, 6);
    const prefix = magic.startsWith("ustar") ? cstr(h, 345, 155) : "";
    let name = longName ?? pax.get("path") ?? global.get("path") ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
    const linkname = longLink ?? pax.get("linkpath") ?? cstr(h, 157, 100);
    longName = longLink = undefined;
    pax = new Map();
    const type: TarEntryType =
      flag === "0" || flag === "\0" || flag === "7" ? "file"
      : flag === "5" ? "directory"
      : flag === "2" ? "symlink"
      : flag === "1" ? "hardlink"
      : "other";
    if (type === "file" && name.endsWith("/")) name = name.slice(0, -1);
    const rel = safeArchivePath(name, file);
    yield { entry: { path: rel, type, size: type === "file" ? size : 0, linkname }, data: type === "file" ? data : Buffer.alloc(0) };
  }
}

/**
 * Extracts an archive into `dest`. Refuses (throws before writing anything of that entry) links
 * and paths escaping `dest`; files are written atomically. Returns the number of files written.
 */
export async function extractTar(file: string, dest: string, opts: { filter?: (p: string) => boolean } = {}): Promise<number> {
  const root = path.resolve(dest);
  fs.mkdirSync(root, { recursive: true });
  let n = 0;
  for await (const { entry, data } of readTar(file)) {
    if (entry.type === "symlink" || entry.type === "hardlink") {
      throw new Error(`${file}: refusing ${entry.type} entry '${entry.path}' -> '${entry.linkname}' (links are not extracted)`);
    }
    if (opts.filter && !opts.filter(entry.path)) continue;
    const target = path.resolve(root, entry.path);
    if (target !== root && !target.startsWith(root + path.sep)) throw new Error(`${file}: refusing entry '${entry.path}' outside ${root}`);
    if (entry.type === "directory") fs.mkdirSync(target, { recursive: true });
    else if (entry.type === "file") {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      writeFileAtomic(target, data);
      n++;
    }
  }
  return n;
}
