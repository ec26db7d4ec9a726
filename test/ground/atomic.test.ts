// Atomic writes: the target holds every byte written, the old content until the rename, and no
// temporary is left beside it.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { writeChunksAtomic, writeFileAtomic } from "../../src/ground/atomic";
import { tempDir } from "../support/fixtures";

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) % 251);

test("writeFileAtomic and writeChunksAtomic write every byte (string, bytes, chunks, an offset view) and leave no temporary", async () => {
  const dir = tempDir("atomic");
  const file = path.join(dir, "sub", "out.bin");
  writeFileAtomic(file, "old");
  const big = bytes(3 << 20, 1);
  writeFileAtomic(file, big.subarray(5)); // a view: its offset and length must be honoured
  assert.ok(fs.readFileSync(file).equals(Buffer.from(big.subarray(5))));
  const chunks = [bytes(1000, 2), bytes(1 << 20, 3).subarray(7), new Uint8Array(0), bytes(17, 4)];
  await writeChunksAtomic(file, chunks);
  assert.ok(fs.readFileSync(file).equals(Buffer.concat(chunks.map((c) => Buffer.from(c)))));
  writeFileAtomic(file, "héllo");
  assert.equal(fs.readFileSync(file, "utf8"), "héllo");
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ["out.bin"]);
});
