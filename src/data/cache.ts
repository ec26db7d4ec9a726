// Decoded images cached once on disk: `<key>.u8` holds N records of H*W*3 uint8 (HWC, RGB) back to
// back, `<key>.json` the index (shape, classes, labels, where the images came from). The index is
// written last, atomically, so its presence means the data file is complete. Loading maps the
// file into shared memory, or reads records on demand when asked to (bounded memory).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { processAlive, writeJsonAtomic } from "../ground/atomic";
import { createProgress } from "../ground/progress";
import { ImageSet, StoredImageSet, memoryImageSet } from "./dataset";
import { imageCacheDir } from "./paths";

export const CACHE_VERSION = 1;

export interface CacheIndex {
  version: number;
  key: string;
  name: string;
  size: number;
  height: number;
  width: number;
  channels: 3;
  classes: string[];
  labels: number[];
  /** Provenance: source file(s), split, decode settings. */
  source: Record<string, unknown>;
  /** Seconds the decode took (for the throughput report). */
  buildSeconds: number;
}

export interface CacheOptions {
  /** Folder of the cache files (default `<data dir>/images`). */
  dir?: string;
  /** Load into memory (default: when under 4 GiB). */
  inMemory?: boolean;
}

function files(key: string, dir: string) {
  if (!/^[\w.-]+$/.test(key)) throw new Error(`cache key '${key}' must be letters, digits, '.', '_' or '-'`);
  return { data: path.join(dir, `${key}.u8`), index: path.join(dir, `${key}.json`) };
}

/** Opens a finished cache, or returns undefined when there is none. */
export function openCache(key: string, opts: CacheOptions = {}): ImageSet | undefined {
  const f = files(key, opts.dir ?? imageCacheDir());
  if (!fs.existsSync(f.index)) return undefined;
  let idx: CacheIndex;
  try {
    idx = JSON.parse(fs.readFileSync(f.index, "utf8")) as CacheIndex;
  } catch (e) {
    throw new Error(`${f.index}: unreadable cache index (${e instanceof Error ? e.message : e}); delete it to rebuild`);
  }
  if (idx.version !== CACHE_VERSION) return undefined;
  const rec = idx.height * idx.width * 3;
  const expect = idx.size * rec;
  const st = fs.statSync(f.data, { throwIfNoEntry: false });
  if (!st || st.size !== expect) throw new Error(`${f.data}: cache data is ${st?.size ?? "missing"} bytes, index says ${expect}; delete both files to rebuild`);
  const labels = Int32Array.from(idx.labels);
  const inMemory = opts.inMemory ?? expect < 4 * 2 ** 30;
  if (!inMemory) return new StoredImageSet(idx.name, { kind: "file", path: f.data, byteOffset: 0 }, idx.height, idx.width, labels, idx.classes);
  const sab = new SharedArrayBuffer(expect);
  const px = new Uint8Array(sab);
  const fd = fs.openSync(f.data, "r");
  try {
    for (let off = 0; off < expect; ) off += fs.readSync(fd, px, off, Math.min(1 << 26, expect - off), off);
  } finally {
    fs.closeSync(fd);
  }
  return memoryImageSet(idx.name, px, idx.height, idx.width, labels, idx.classes);
}

export interface CacheBuild {
  key: string;
  name: string;
  height: number;
  width: number;
  classes: string[];
  labels: ArrayLike<number>;
  source: Record<string, unknown>;
  /**
   * Produces every image, in any order, by calling `write(i, pixels)` (H*W*3 uint8); images for
   * which `done(i)` is true are already cached (resumed build) and may be skipped.
   */
  produce(write: (i: number, px: Uint8Array) => Promise<void>, done: (i: number) => boolean): Promise<void>;
}

/** Runs `fn` over 0..n-1 with at most `concurrency` calls in flight. */
export async function forEachConcurrent(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => { for (let i = next++; i < n; i = next++) await fn(i); };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker));
}

/** A bounded set of in-flight promises (for producers that stream, e.g. tar entries). */
export class Inflight {
  private set = new Set<Promise<void>>();
  private error: unknown;
  constructor(private readonly limit: number) {}
  async add(p: Promise<void>): Promise<void> {
    const q = p.catch((e) => { this.error ??= e; }).finally(() => this.set.delete(q));
    this.set.add(q);
    if (this.set.size >= this.limit) await Promise.race(this.set);
    if (this.error !== undefined) throw this.error;
  }
  async drain(): Promise<void> {
    await Promise.all(this.set);
    if (this.error !== undefined) throw this.error;
  }
}

/**
 * Builds a cache (decode once), then opens it. One process at a time builds a given cache (several
 * queue workers may share a data dir): the others wait for it and open what it built, since two
 * builders of one `.partial` file would truncate each other's records.
 */
export async function buildCache(b: CacheBuild, opts: CacheOptions = {}): Promise<ImageSet> {
  const dir = opts.dir ?? imageCacheDir();
  fs.mkdirSync(dir, { recursive: true });
  const f = files(b.key, dir);
  const release = await buildLock(`${f.data}.lock`, () => fs.existsSync(f.index));
  try {
    return openCache(b.key, opts) ?? (await decodeIntoCache(b, opts, dir));
  } finally {
    release();
  }
}

/**
 * Takes the lock file of a cache build (created exclusively), or returns at once when the cache is
 * built meanwhile. A lock is stale when its process is gone (same host) or, from another host
 * sharing the folder, when it has not been touched for a minute (the holder touches it every 10 s).
 */
async function buildLock(file: string, built: () => boolean): Promise<() => void> {
  for (let said = false; ; ) {
    if (built()) return () => undefined;
    try {
      fs.writeFileSync(file, JSON.stringify({ pid: process.pid, host: os.hostname() }), { flag: "wx" });
      const touch = setInterval(() => { try { const t = new Date(); fs.utimesSync(file, t, t); } catch { /* released */ } }, 10_000);
      touch.unref();
      return () => { clearInterval(touch); fs.rmSync(file, { force: true }); };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    if (lockIsStale(file)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (!said) process.stderr.write(`${path.basename(file)}: another process is building this cache; waiting for it\n`);
    said = true;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function lockIsStale(file: string): boolean {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) return false; // just released: look again
  try {
    const { pid, host } = JSON.parse(fs.readFileSync(file, "utf8")) as { pid: number; host: string };
    if (host !== os.hostname()) return Date.now() - st.mtimeMs > 60_000;
    return !processAlive(pid);
  } catch {
    return Date.now() - st.mtimeMs > 60_000; // being written, or its writer died in between
  }
}

async function decodeIntoCache(b: CacheBuild, opts: CacheOptions, dir: string): Promise<ImageSet> {
  const f = files(b.key, dir);
  const n = b.labels.length;
  const rec = b.height * b.width * 3;
  // An interrupted build leaves `.partial` (data) + `.progress.json` (which records are on disk);
  // the next build continues from there instead of decoding everything again.
  const partial = `${f.data}.partial`;
  const progressFile = `${f.data}.progress.json`;
  const seen = new Uint8Array(n);
  let done = 0;
  if (fs.existsSync(partial) && fs.existsSync(progressFile)) {
    try {
      const p = JSON.parse(fs.readFileSync(progressFile, "utf8")) as { n: number; rec: number; done: string };
      if (p.n === n && p.rec === rec) {
        seen.set(Buffer.from(p.done, "base64").subarray(0, n));
        done = seen.reduce((a, v) => a + v, 0);
      }
    } catch {
      /* unreadable progress: start over */
    }
  }
  const fh = await fs.promises.open(partial, done > 0 ? "r+" : "w");
  let lastSave = Date.now();
  const saveProgress = async () => {
    await fh.sync();
    writeJsonAtomic(progressFile, { n, rec, done: Buffer.from(seen).toString("base64") });
    lastSave = Date.now();
  };
  const t0 = Date.now();
  const resumedAt = done;
  const progress = createProgress(`decode ${b.name}`, n, { unit: "img" });
  try {
    await b.produce(
      async (i, px) => {
        if (!(i >= 0 && i < n)) throw new Error(`${b.name}: image index ${i} out of range`);
        if (px.length !== rec) throw new Error(`${b.name}: image ${i} has ${px.length} bytes, expected ${rec}`);
        await fh.write(px, 0, rec, i * rec);
        if (!seen[i]) { seen[i] = 1; progress.update(++done); }
        if (Date.now() - lastSave > 10_000) await saveProgress();
      },
      (i) => seen[i] === 1,
    );
    if (done !== n) throw new Error(`${b.name}: only ${done} of ${n} images were produced`);
    await fh.sync();
  } catch (e) {
    await saveProgress().catch(() => undefined);
    await fh.close();
    throw e;
  }
  await fh.close();
  fs.renameSync(partial, f.data);
  fs.rmSync(progressFile, { force: true });
  const buildSeconds = (Date.now() - t0) / 1000;
  progress.finish(`${((n - resumedAt) / buildSeconds).toFixed(0)} img/s${resumedAt ? `, resumed at ${resumedAt}` : ""}`);
  const index: CacheIndex = {
    version: CACHE_VERSION, key: b.key, name: b.name, size: n, height: b.height, width: b.width, channels: 3,
    classes: b.classes, labels: Array.from(b.labels), source: b.source, buildSeconds,
  };
  writeJsonAtomic(f.index, index);
  return openCache(b.key, opts)!;
}

/** Index of a finished cache (for reports), or undefined. */
export function cacheIndex(key: string, opts: CacheOptions = {}): CacheIndex | undefined {
  const f = files(key, opts.dir ?? imageCacheDir());
  return fs.existsSync(f.index) ? (JSON.parse(fs.readFileSync(f.index, "utf8")) as CacheIndex) : undefined;
}
