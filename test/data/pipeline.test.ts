import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { memoryImageSet, selectClasses } from "../../src/data/dataset";
import { buildCache, openCache } from "../../src/data/cache";
import { DataLoader, Batch } from "../../src/data/pipeline";
import { cifarTrain, paperTrain } from "../../src/data/transforms";
import { tempDir } from "../support/fixtures";

const N = 50, S = 12;
const pixels = Uint8Array.from({ length: N * S * S * 3 }, (_, i) => (i * 7 + (i >> 5)) % 256);
const labels = Int32Array.from({ length: N }, (_, i) => i % 4);
const ds = memoryImageSet("toy", pixels, S, S, labels, ["a", "b", "c", "d"]);

async function collect(loader: DataLoader, from: number, to: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.batches(from, to)) out.push(b);
  await loader.close();
  return out;
}

const cfg = { batchSize: 8, transform: paperTrain(10), seed: 42, shuffle: true, dropLast: true };

test("same seed => same batches bit for bit (worker thread and in-process agree)", async () => {
  const a = await collect(new DataLoader(ds, { ...cfg, workers: 1 }), 0, 14);
  const b = await collect(new DataLoader(ds, { ...cfg, workers: 0 }), 0, 14);
  const c = await collect(new DataLoader(ds, { ...cfg, workers: 2, prefetch: 4 }), 0, 14);
  assert.equal(a.length, 14);
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(Buffer.from(a[i].x.buffer), Buffer.from(b[i].x.buffer), `batch ${i}`);
    assert.deepEqual(Buffer.from(a[i].x.buffer), Buffer.from(c[i].x.buffer), `batch ${i}`);
    assert.deepEqual(a[i].labels, b[i].labels);
  }
  const other = await collect(new DataLoader(ds, { ...cfg, seed: 43, workers: 0 }), 0, 2);
  assert.notDeepEqual(Buffer.from(other[0].x.buffer), Buffer.from(a[0].x.buffer));
});

test("epochs are permutations; resuming at step s gives the uninterrupted stream's batches", async () => {
  const loader = new DataLoader(ds, { ...cfg, workers: 0 });
  assert.equal(loader.batchesPerEpoch, 6); // 50 // 8 with dropLast
  const all = await collect(loader, 0, 12);
  const seen = new Set(all.slice(0, 6).flatMap((b) => Array.from(b.indices)));
  assert.equal(seen.size, 48);
  assert.notDeepEqual(all[0].indices, all[6].indices); // reshuffled per epoch
  assert.equal(all[7].epoch, 1);
  const resumed = await collect(new DataLoader(ds, { ...cfg, workers: 0 }), 7, 12);
  for (let i = 0; i < resumed.length; i++) assert.deepEqual(Buffer.from(resumed[i].x.buffer), Buffer.from(all[7 + i].x.buffer));
});

test("eval order: no shuffle, last partial batch kept; labels follow subsets", async () => {
  const sub = selectClasses(ds, [3, 1]);
  const loader = new DataLoader(sub, { batchSize: 8, transform: cifarTrain(12, 2), seed: 0, shuffle: false, dropLast: false, workers: 1 });
  const bs = await collect(loader, 0, loader.batchesPerEpoch);
  assert.deepEqual(bs.map((b) => b.labels.length), [8, 8, 8, 1]); // 25 images of classes 1 and 3
  assert.deepEqual(Array.from(bs[0].labels.subarray(0, 4)), [1, 0, 1, 0]);
  assert.deepEqual(Array.from(bs[2].indices), Array.from({ length: 8 }, (_, i) => 16 + i));
});

test("file-backed cache (bounded memory) gives the same batches as memory", async () => {
  const dir = tempDir("pipeline-test");
  await buildCache({ key: "toy", name: "toy", height: S, width: S, classes: ["a", "b", "c", "d"], labels, source: {}, produce: async (w) => { for (let i = 0; i < N; i++) await w(i, pixels.subarray(i * S * S * 3, (i + 1) * S * S * 3)); } }, { dir });
  const onDisk = openCache("toy", { dir, inMemory: false })!;
  assert.equal(onDisk.handle().storage.kind, "file");
  const a = await collect(new DataLoader(onDisk, { ...cfg, workers: 1 }), 0, 3);
  const b = await collect(new DataLoader(ds, { ...cfg, workers: 0 }), 0, 3);
  for (let i = 0; i < 3; i++) assert.deepEqual(Buffer.from(a[i].x.buffer), Buffer.from(b[i].x.buffer));
  assert.equal(path.basename(dir).startsWith("pipeline-test"), true);
});

test("a batch size larger than the dataset with dropLast is a clear error", () => {
  assert.throws(() => new DataLoader(ds, { ...cfg, batchSize: 64 }), /toy: 50 images cannot fill one batch of 64/);
});

test("an interrupted cache build resumes where it stopped; a truncated cache file is a clear error", async () => {
  const dir = tempDir("cache-resume");
  const rec = S * S * 3;
  const img = (i: number) => pixels.subarray(i * rec, (i + 1) * rec);
  const base = { key: "resumable", name: "resumable", height: S, width: S, classes: ["a", "b", "c", "d"], labels, source: {} };
  await assert.rejects(buildCache({ ...base, produce: async (w) => { for (let i = 0; i < N; i++) { if (i === 30) throw new Error("killed"); await w(i, img(i)); } } }, { dir }), /killed/);
  assert.equal(openCache("resumable", { dir }), undefined);
  const produced: number[] = [];
  const ds2 = await buildCache({ ...base, produce: async (w, done) => { for (let i = N - 1; i >= 0; i--) if (!done(i)) { produced.push(i); await w(i, img(i)); } } }, { dir });
  assert.equal(produced.length, 20);
  for (let i = 0; i < N; i++) assert.deepEqual(Buffer.from(ds2.image(i)), Buffer.from(img(i)));
  const fs = await import("node:fs");
  fs.truncateSync(path.join(dir, "resumable.u8"), 1000);
  assert.throws(() => openCache("resumable", { dir }), /resumable\.u8: cache data is 1000 bytes, index says 21600; delete both files to rebuild/);
});

// A cache file cut short after it was opened (a disk filled up, another process rewrote it):
// records past the cut cannot be read, in a worker or in-process.
async function truncatedSet(name: string) {
  const dir = tempDir(`cache-cut-${name}`);
  const rec = S * S * 3;
  const base = { key: name, name, height: S, width: S, classes: ["a", "b", "c", "d"], labels, source: {} };
  const set = await buildCache({ ...base, produce: async (w) => { for (let i = 0; i < N; i++) await w(i, pixels.subarray(i * rec, (i + 1) * rec)); } }, { dir, inMemory: false });
  const fs = await import("node:fs");
  fs.truncateSync(path.join(dir, `${name}.u8`), 20 * rec); // images 20..49 are gone
  return { set, file: path.join(dir, `${name}.u8`) };
}

for (const workers of [0, 1]) {
  test(`a record that cannot be read fails the batch with the file's name (workers: ${workers}), and does not fall back`, async () => {
    const { set, file } = await truncatedSet(`cut${workers}`);
    const loader = new DataLoader(set, { batchSize: 8, transform: cifarTrain(S), seed: 0, shuffle: false, dropLast: false, workers });
    const seen: number[] = [];
    await assert.rejects(async () => { for await (const b of loader.epoch(0)) seen.push(b.step); }, (e: Error) => e.message.includes(file) && /truncated cache file \(record 2\d is incomplete\)/.test(e.message));
    assert.deepEqual(seen, [0, 1]); // images 0..15 are whole; batch 2 holds image 20
    assert.equal(loader.workerFallback, undefined);
    await loader.close();
  });
}

test("closing a loader closes the cache file it read in-process", async () => {
  const fs = await import("node:fs");
  const { set, file } = await truncatedSet("fds");
  const open = () => fs.readdirSync("/proc/self/fd").filter((f) => { try { return fs.readlinkSync(`/proc/self/fd/${f}`) === file; } catch { return false; } }).length;
  const before = open();
  for (let i = 0; i < 3; i++) {
    const loader = new DataLoader(set, { batchSize: 8, transform: cifarTrain(S), seed: 0, shuffle: false, dropLast: false, workers: 0 });
    await collect(loader, 0, 2);
  }
  assert.equal(open(), before);
});
