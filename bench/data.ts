// Measures the data path: decode into the cache, cache load, and batch production (in-process vs
// worker threads) for the CIFAR-native and the papers' 224 px transforms.
//   node --import tsx bench/data.ts [path/to/imagefolder.tar.gz] [split]
// (defaults: cifar10-jpeg.tar.gz from the data mirror, split "test").
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openCache } from "../src/data/cache";
import { ensureFile } from "../src/data/download";
import { loadImageFolder } from "../src/data/imagefolder";
import { DataLoader } from "../src/data/pipeline";
import { TransformSpec, cifarTrain, paperTrain } from "../src/data/transforms";
import type { ImageSet } from "../src/data/dataset";

export interface ThroughputReport {
  decodeImgPerSec: number;
  cacheLoadMBPerSec: number;
  batches: { transform: string; batchSize: number; workers: number; imgPerSec: number }[];
}

async function batchRate(ds: ImageSet, transform: TransformSpec, batchSize: number, workers: number, steps: number): Promise<number> {
  const loader = new DataLoader(ds, { batchSize, transform, seed: 0, shuffle: true, dropLast: true, workers, prefetch: Math.max(2, workers * 2) });
  let n = 0;
  const it = loader.batches(0, steps + 1);
  await it.next(); // warm-up: worker start
  const t0 = process.hrtime.bigint();
  for await (const b of it) n += b.labels.length;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await loader.close();
  return n / s;
}

export async function measureThroughput(root: string, split: string): Promise<ThroughputReport> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "throughput-"));
  try {
    const decode = { size: 32, fit: "fill" as const, interpolation: "bilinear" as const };
    const t0 = Date.now();
    const ds = await loadImageFolder({ root, split, decode, cache: { dir }, name: "throughput" });
    const decodeImgPerSec = ds.size / ((Date.now() - t0) / 1000);
    const key = fs.readdirSync(dir).find((f) => f.endsWith(".json"))!.replace(/\.json$/, "");
    const t1 = process.hrtime.bigint();
    const again = openCache(key, { dir })!;
    const cacheLoadMBPerSec = (again.size * 32 * 32 * 3) / 2 ** 20 / (Number(process.hrtime.bigint() - t1) / 1e9);
    const batches: ThroughputReport["batches"] = [];
    for (const [name, t, bs, steps] of [["cifar pad-crop 32", cifarTrain(32), 128, 20], ["paper RRC 224", paperTrain(224), 32, 8]] as const) {
      for (const workers of [0, 1, 2]) batches.push({ transform: name, batchSize: bs, workers, imgPerSec: await batchRate(again, t, bs, workers, steps) });
    }
    return { decodeImgPerSec, cacheLoadMBPerSec, batches };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  (async () => {
    const root = process.argv[2] ?? (await ensureFile("cifar10-jpeg.tar.gz"));
    const r = await measureThroughput(root, process.argv[3] ?? "test");
    console.log(`decode into cache: ${r.decodeImgPerSec.toFixed(0)} img/s; cache load: ${r.cacheLoadMBPerSec.toFixed(0)} MB/s`);
    for (const b of r.batches) console.log(`batches ${b.transform.padEnd(18)} bs ${String(b.batchSize).padStart(3)} workers ${b.workers}: ${b.imgPerSec.toFixed(0)} img/s`);
  })().catch((e) => { console.error(e); process.exit(1); });
}
