// One builder per image cache at a time: several queue workers sharing a data dir may decode the
// same dataset at once, and two writers of one `.partial` file would truncate each other's records.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { tempDir } from "../support/fixtures";
import { CacheBuild, buildCache } from "../../src/data/cache";

const S = 4, N = 20, rec = S * S * 3;
const pixels = Uint8Array.from({ length: N * rec }, (_, i) => (i * 7) % 251);
const labels = Array.from({ length: N }, (_, i) => i % 2);

function build(key: string, calls: { n: number }): CacheBuild {
  return {
    key, name: key, height: S, width: S, classes: ["a", "b"], labels, source: {},
    produce: async (w) => {
      calls.n++;
      for (let i = 0; i < N; i++) {
        await new Promise((r) => setTimeout(r, 2)); // decoding takes time: the other build comes in meanwhile
        await w(i, pixels.subarray(i * rec, (i + 1) * rec));
      }
    },
  };
}

const all = (set: { size: number; image(i: number): Uint8Array }) => Buffer.concat(Array.from({ length: set.size }, (_, i) => Buffer.from(set.image(i))));

test("two builds of one cache at once: one decodes, the other waits and opens the same images", async () => {
  const dir = tempDir("cache-lock");
  const calls = { n: 0 };
  const [a, b] = await Promise.all([buildCache(build("shared", calls), { dir }), buildCache(build("shared", calls), { dir })]);
  assert.equal(calls.n, 1, "decoded once");
  assert.deepEqual(all(a), Buffer.from(pixels));
  assert.deepEqual(all(b), Buffer.from(pixels));
  assert.deepEqual(fs.readdirSync(dir).sort(), ["shared.json", "shared.u8"], "no lock or partial file left");
});

test("a lock left by a process that died is taken over", async () => {
  const dir = tempDir("cache-stale");
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  fs.writeFileSync(path.join(dir, "stale.u8.lock"), JSON.stringify({ pid: Number(dead.stdout), host: os.hostname() }));
  const calls = { n: 0 };
  const set = await buildCache(build("stale", calls), { dir });
  assert.equal(calls.n, 1);
  assert.deepEqual(all(set), Buffer.from(pixels));
  assert.ok(!fs.existsSync(path.join(dir, "stale.u8.lock")));
});
