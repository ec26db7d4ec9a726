import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const FIXTURES = path.join(__dirname, "..", "fixtures", "engine");
export const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name));

/** A fresh temporary folder, removed at exit. */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  process.on("exit", () => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** The uint8 payload of a .npy file (v1 header). */
export function npyBytes(buf: Buffer): Uint8Array {
  const hlen = buf.readUInt16LE(8);
  return new Uint8Array(buf.subarray(10 + hlen));
}
