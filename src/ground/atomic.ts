// Atomic file writes: write a temporary file beside the target, fsync it, rename it over the
// target. A reader (or a crash) sees either the old file or the new one, never a torn one.
import * as fs from "node:fs";
import * as path from "node:path";

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`);
}

/** Makes a directory's entries (a rename into it) durable, where the platform can. */
export function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, "r");
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  } catch {
    /* directories cannot be fsynced on every platform */
  }
}

/** Writes `data` to `file` atomically (temp + fsync + rename). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  const fd = fs.openSync(tmp, "w");
  try {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    // One write(2) moves at most ~2 GiB on Linux: loop until every byte is down.
    for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** Streams chunks to `file` atomically; the target changes only once every chunk is on disk. */
export async function writeChunksAtomic(file: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  const fh = await fs.promises.open(tmp, "w");
  try {
    for await (const c of chunks) for (let off = 0; off < c.length; ) off += (await fh.write(c, off, c.length - off)).bytesWritten;
    await fh.sync();
  } catch (e) {
    await fh.close();
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  await fh.close();
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** JSON with a trailing newline, written atomically. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

/** Whether process `pid` of this machine still runs (only "no such process" says it does not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** Removes temporaries left by writers that died mid-write (they never replaced a target). */
export function removeStaleTemps(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const f of fs.readdirSync(dir)) {
    if (/^\..*\.\d+\.[a-z0-9]+\.tmp$/.test(f)) {
      const pid = Number(f.split(".").at(-3));
      if (pid !== process.pid) {
        fs.rmSync(path.join(dir, f), { force: true });
        n++;
      }
    }
  }
  return n;
}
