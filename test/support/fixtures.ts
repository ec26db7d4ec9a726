import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const FIXTURES = path.join(__dirname, "..", "fixtures", "engine");
export const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name));

const tempDirs: string[] = [];

/** A fresh temporary folder, removed at exit. */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  // One exit listener for all of them: one per folder made Node warn of a leak past ten.
  if (tempDirs.length === 0) process.on("exit", () => tempDirs.forEach((t) => fs.rmSync(t, { recursive: true, force: true })));
  tempDirs.push(d);
  return d;
}

/** The uint8 payload of a .npy file (v1 header). */
export function npyBytes(buf: Buffer): Uint8Array {
  const hlen = buf.readUInt16LE(8);
  return new Uint8Array(buf.subarray(10 + hlen));
}
