// Getting an official data file onto disk, verified:
//   1. the data directory (`data/cache`, or STUDY_DATA_DIR), where earlier downloads were placed;
//   2. the mirror (STUDY_DATA_MIRROR), then where an OS package installs the file (Debian's
//      dataset packages), read in place, never copied;
//   3. the network: resumable HTTP(S) download (Range) into `<file>.part`, a progress bar,
//      checksum, then an atomic rename into the data directory.
// A file is accepted when its md5 (or sha256) matches, or, for .gz files, when the md5 of its
// decompressed content matches (re-compressed copies). Offline and missing -> an error saying which
// file is needed, its URL and where to put it.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { createProgress } from "../ground/progress";
import { dataDir, mirrorDir } from "./paths";
import { RegistryFile, registryFile } from "./registry";

export interface EnsureOptions {
  /** Overrides STUDY_DATA_DIR / data/cache. */
  dataDir?: string;
  /** Overrides STUDY_DATA_MIRROR; null disables the mirror. */
  mirror?: string | null;
  /** Never touch the network (also STUDY_OFFLINE=1). */
  offline?: boolean;
  /** Replaces the registry URL (tests, private mirrors over HTTP). */
  url?: string;
}

export class MissingDataError extends Error {
  constructor(readonly entry: RegistryFile, readonly target: string, reason: string) {
    super(
      `${entry.file} (${entry.description}) is needed and could not be obtained: ${reason}.\n` +
        (entry.url ? `  Download it from ${entry.url}\n` : "  It has no public URL; it comes from the project's data mirror.\n") +
        `  and put it at ${target}\n  (or in the folder named by STUDY_DATA_MIRROR` +
        (entry.systemPaths ? `, or where an OS package installs it: ${entry.systemPaths.join(", ")}` : "") +
        `); expected md5 ${entry.md5}.`,
    );
    this.name = "MissingDataError";
  }
}

export interface Digest {
  md5: string;
  sha256: string;
  bytes: number;
  /** md5 of the gunzipped content, for .gz files. */
  decompressedMd5?: string;
}

/** md5 + sha256 of a file (and of its gunzipped content for .gz), streaming. */
export async function digestFile(file: string, withDecompressed = file.endsWith(".gz")): Promise<Digest> {
  const md5 = crypto.createHash("md5"), sha = crypto.createHash("sha256");
  let bytes = 0;
  for await (const c of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    md5.update(c as Buffer); sha.update(c as Buffer); bytes += (c as Buffer).length;
  }
  const out: Digest = { md5: md5.digest("hex"), sha256: sha.digest("hex"), bytes };
  if (withDecompressed) {
    try {
      const dm = crypto.createHash("md5");
      for await (const c of fs.createReadStream(file).pipe(zlib.createGunzip())) dm.update(c as Buffer);
      out.decompressedMd5 = dm.digest("hex");
    } catch {
      /* not gzip, or corrupt: only the raw digest counts */
    }
  }
  return out;
}

/** Checks a file against its registry entry; returns how it matched or throws naming the file. */
export async function verifyFile(file: string, entry: RegistryFile): Promise<"md5" | "sha256" | "decompressed-md5"> {
  const needDecompressed = entry.decompressedMd5 !== undefined;
  const d = await digestFile(file, needDecompressed);
  if (d.md5 === entry.md5) return "md5";
  if (entry.sha256 && d.sha256 === entry.sha256) return "sha256";
  if (entry.decompressedMd5 && d.decompressedMd5 === entry.decompressedMd5) return "decompressed-md5";
  throw new Error(
    `${file}: checksum mismatch for ${entry.file}: md5 ${d.md5} (${d.bytes} bytes)` +
      (d.decompressedMd5 ? `, decompressed md5 ${d.decompressedMd5}` : "") +
      `; expected md5 ${entry.md5}` + (entry.decompressedMd5 ? ` or decompressed md5 ${entry.decompressedMd5}` : "") +
      (entry.bytes ? ` (${entry.bytes} bytes)` : "") + ". The file is corrupt, truncated or a different version; delete it and fetch it again.",
  );
}

// Verification of large files takes seconds: remember (size, mtime) of files already verified.
const verified = new Map<string, string>();
async function verifiedOnce(file: string, entry: RegistryFile): Promise<void> {
  const st = fs.statSync(file);
  const key = `${st.size}|${st.mtimeMs}|${entry.md5}`;
  if (verified.get(file) === key) return;
  await verifyFile(file, entry);
  verified.set(file, key);
}

function mirrorCandidates(entry: RegistryFile, mirror: string): string[] {
  return [entry.file, ...(entry.mirrorPaths ?? []).map((p) => path.join(p, entry.file))].map((p) => path.join(mirror, p));
}

/** Path of a verified copy of a registry file (see the module comment for the search order). */
export async function ensureFile(name: string | RegistryFile, opts: EnsureOptions = {}): Promise<string> {
  const entry = typeof name === "string" ? registryFile(name) : name;
  const dir = opts.dataDir ?? dataDir();
  const target = path.join(dir, entry.file);
  if (fs.existsSync(target)) {
    await verifiedOnce(target, entry);
    return target;
  }
  const mirror = opts.mirror === null ? undefined : opts.mirror ?? mirrorDir();
  for (const cand of [...(mirror ? mirrorCandidates(entry, mirror) : []), ...(entry.systemPaths ?? [])]) {
    if (fs.existsSync(cand)) {
      await verifiedOnce(cand, entry);
      return cand;
    }
  }
  const url = opts.url ?? entry.url;
  const offline = opts.offline ?? process.env.STUDY_OFFLINE === "1";
  const where = mirror ? `not in ${dir} nor in the mirror ${mirror}` : `not in ${dir} (no STUDY_DATA_MIRROR set)`;
  if (!url) throw new MissingDataError(entry, target, where);
  if (offline) throw new MissingDataError(entry, target, `${where}, and offline mode is on`);
  try {
    await download(url, target, entry.file);
  } catch (e) {
    throw new MissingDataError(entry, target, `${where}, and downloading ${url} failed (${e instanceof Error ? e.message : String(e)})`);
  }
  try {
    await verifyFile(target, entry);
  } catch (e) {
    fs.rmSync(target, { force: true });
    throw e;
  }
  return target;
}

function request(url: string, headers: Record<string, string>): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const lib = url.startsWith("https:") ? https : http;
    const req = lib.get(url, { headers, timeout: 30_000 }, resolve);
    req.on("timeout", () => req.destroy(new Error("connection timed out")));
    req.on("error", reject);
  });
}

/**
 * Downloads `url` to `target` through `<target>.part`, resuming a previous partial download with a
 * Range request (servers that ignore Range restart it from zero). Follows redirects.
 */
export async function download(url: string, target: string, label = path.basename(target), redirects = 5): Promise<void> {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const part = `${target}.part`;
  const have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  const res = await request(url, have > 0 ? { Range: `bytes=${have}-` } : {});
  const code = res.statusCode ?? 0;
  if (code >= 300 && code < 400 && res.headers.location) {
    res.resume();
    if (redirects <= 0) throw new Error("too many redirects");
    return download(new URL(res.headers.location, url).toString(), target, label, redirects - 1);
  }
  if (code === 416 && have > 0) {
    // The part file is already complete (or longer than the resource): take it as is.
    res.resume();
    fs.renameSync(part, target);
    return;
  }
  if (code !== 200 && code !== 206) {
    res.resume();
    throw new Error(`HTTP ${code} for ${url}`);
  }
  const resumed = code === 206;
  const offset = resumed ? have : 0;
  const length = Number(res.headers["content-length"] ?? NaN);
  const total = offset + (Number.isFinite(length) ? length : 0);
  const progress = createProgress(`download ${label}`, total || 1, { unit: "B" });
  const out = fs.createWriteStream(part, { flags: resumed ? "a" : "w" });
  let done = offset;
  await new Promise<void>((resolve, reject) => {
    // On a broken connection keep every byte received: flush the part file, then fail.
    const broken = (why: string) => { res.unpipe(out); out.end(() => reject(new Error(`${why} after ${done} bytes (resume by running again)`))); };
    res.on("data", (c: Buffer) => { done += c.length; progress.update(done); });
    res.on("error", () => broken("connection error"));
    res.on("aborted", () => broken("connection closed"));
    out.on("error", reject);
    res.on("end", () => { if (!res.complete) broken("connection closed"); });
    out.on("finish", () => { if (res.complete) resolve(); });
    res.pipe(out);
  });
  if (Number.isFinite(length) && done !== total) throw new Error(`got ${done} of ${total} bytes (resume by running again)`);
  const fd = fs.openSync(part, "r+");
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(part, target);
  progress.finish(resumed ? `resumed at ${offset} bytes` : undefined);
}
