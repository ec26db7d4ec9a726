// CIFAR-10 / CIFAR-100 from the official tarballs, read as streams (never extracted):
//   python:  cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta},
//            cifar-100-python/{train, test, meta}: pickled dicts with a uint8 numpy array
//            `data` [N,3072] (R, G, B planes of 32x32) and `labels` / `fine_labels`;
//   binary:  cifar-10-batches-bin/{data_batch_1..5.bin, test_batch.bin, batches.meta.txt}: records
//            of <label byte><3072 bytes>; cifar-100-binary/{train.bin, test.bin, *_label_names.txt}:
//            <coarse byte><fine byte><3072 bytes>.
// Images are converted from CHW planes to HWC (and resized when size != 32) into the cache.
import * as fs from "node:fs";
import { CacheOptions, buildCache, openCache } from "./cache";
import { ImageSet } from "./dataset";
import { NdArray, PyValue, dictGet, pyString, unpickle } from "./pickle";
import { resize } from "./resample";
import { readTar } from "./tar";

export interface CifarOptions {
  dataset: "cifar10" | "cifar100";
  format: "python" | "binary";
  split: "train" | "test";
  /** Cached image size (32 = native). */
  size?: number;
  /** CIFAR-100 only: fine (100 classes, default) or coarse (20 superclasses). */
  labelKind?: "fine" | "coarse";
  cache?: CacheOptions;
}

interface Part {
  /** [n, 3072] CHW planes. */
  data: Uint8Array;
  labels: number[];
}

const PIX = 3072;

function batchNames(o: CifarOptions): RegExp {
  if (o.dataset === "cifar10") {
    if (o.format === "python") return o.split === "train" ? /(^|\/)data_batch_[1-5]$/ : /(^|\/)test_batch$/;
    return o.split === "train" ? /(^|\/)data_batch_[1-5]\.bin$/ : /(^|\/)test_batch\.bin$/;
  }
  if (o.format === "python") return o.split === "train" ? /(^|\/)train$/ : /(^|\/)test$/;
  return o.split === "train" ? /(^|\/)train\.bin$/ : /(^|\/)test\.bin$/;
}

function pythonBatch(bytes: Uint8Array, o: CifarOptions, what: string): Part {
  const d = unpickle(bytes, what);
  const data = dictGet(d, "data", what);
  if (!(data instanceof NdArray) || data.dtype.replace(/^[|<=]/, "") !== "u1" || data.shape.length !== 2 || data.shape[1] !== PIX) {
    throw new Error(`${what}: 'data' must be a uint8 array [N, ${PIX}]`);
  }
  const key = o.dataset === "cifar10" ? "labels" : o.labelKind === "coarse" ? "coarse_labels" : "fine_labels";
  const labels = dictGet(d, key, what);
  const list = Array.isArray(labels) ? labels.map(Number) : labels instanceof NdArray ? Array.from(labels.data) : null;
  if (!list || list.length !== data.shape[0]) throw new Error(`${what}: '${key}' has ${list?.length ?? "no"} entries for ${data.shape[0]} images`);
  return { data: data.data, labels: list };
}

function binaryBatch(bytes: Uint8Array, o: CifarOptions, what: string): Part {
  const head = o.dataset === "cifar10" ? 1 : 2;
  const rec = head + PIX;
  if (bytes.length % rec !== 0) throw new Error(`${what}: ${bytes.length} bytes is not a whole number of ${rec}-byte records (truncated or corrupt)`);
  const n = bytes.length / rec;
  const data = new Uint8Array(n * PIX);
  const labels: number[] = [];
  const pick = o.dataset === "cifar10" ? 0 : o.labelKind === "coarse" ? 0 : 1;
  for (let i = 0; i < n; i++) {
    labels.push(bytes[i * rec + pick]);
    data.set(bytes.subarray(i * rec + head, (i + 1) * rec), i * PIX);
  }
  return { data, labels };
}

function classNames(meta: Map<string, Uint8Array>, o: CifarOptions, file: string): string[] {
  const find = (re: RegExp) => [...meta].find(([p]) => re.test(p))?.[1];
  if (o.format === "python") {
    const bytes = find(o.dataset === "cifar10" ? /(^|\/)batches\.meta$/ : /(^|\/)meta$/);
    if (!bytes) throw new Error(`${file}: no ${o.dataset === "cifar10" ? "batches.meta" : "meta"} entry`);
    const key = o.dataset === "cifar10" ? "label_names" : o.labelKind === "coarse" ? "coarse_label_names" : "fine_label_names";
    const names = dictGet(unpickle(bytes, `${file}:meta`), key, `${file}:meta`);
    if (!Array.isArray(names)) throw new Error(`${file}: meta '${key}' is not a list`);
    return names.map((n: PyValue) => pyString(n, `${file}:meta`));
  }
  const bytes = find(o.dataset === "cifar10" ? /(^|\/)batches\.meta\.txt$/ : o.labelKind === "coarse" ? /(^|\/)coarse_label_names\.txt$/ : /(^|\/)fine_label_names\.txt$/);
  if (!bytes) throw new Error(`${file}: no label names file`);
  return Buffer.from(bytes).toString("utf8").split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Reads the split's batches (in file-name order, as torchvision does) and the class names. */
export async function readCifarArchive(file: string, o: CifarOptions): Promise<{ data: Uint8Array; labels: number[]; classes: string[] }> {
  const want = batchNames(o);
  const parts = new Map<string, Part>();
  const meta = new Map<string, Uint8Array>();
  for await (const { entry, data } of readTar(file)) {
    if (entry.type !== "file") continue;
    const what = `${file}:${entry.path}`;
    if (want.test(entry.path)) parts.set(entry.path, o.format === "python" ? pythonBatch(data, o, what) : binaryBatch(data, o, what));
    else if (/meta|label_names/.test(entry.path)) meta.set(entry.path, new Uint8Array(data));
  }
  const expected = o.dataset === "cifar10" && o.split === "train" ? 5 : 1;
  if (parts.size !== expected) throw new Error(`${file}: found ${parts.size} ${o.split} batch file(s), expected ${expected} (${want})`);
  const ordered = [...parts.keys()].sort().map((k) => parts.get(k)!);
  const n = ordered.reduce((a, p) => a + p.labels.length, 0);
  const data = new Uint8Array(n * PIX);
  let off = 0;
  for (const p of ordered) { data.set(p.data, off); off += p.data.length; }
  const classes = classNames(meta, o, file);
  const labels = ordered.flatMap((p) => p.labels);
  for (const l of labels) if (l >= classes.length) throw new Error(`${file}: label ${l} but only ${classes.length} class names`);
  return { data, labels, classes };
}

/** CHW planes of one 32x32 image -> HWC. */
export function chwToHwc(planes: Uint8Array, out = new Uint8Array(PIX)): Uint8Array {
  for (let p = 0; p < 1024; p++) {
    out[3 * p] = planes[p];
    out[3 * p + 1] = planes[1024 + p];
    out[3 * p + 2] = planes[2048 + p];
  }
  return out;
}

/** CIFAR-10/100 split from an official tarball, through the decode cache. */
export async function loadCifar(file: string, o: CifarOptions): Promise<ImageSet> {
  const size = o.size ?? 32;
  const st = fs.statSync(file);
  const name = `${o.dataset}-${o.format}-${o.split}${o.dataset === "cifar100" && o.labelKind === "coarse" ? "-coarse" : ""}`;
  const key = `${name}-${size}px-${st.size}`;
  const hit = openCache(key, o.cache);
  if (hit) return hit;
  const { data, labels, classes } = await readCifarArchive(file, o);
  return buildCache(
    {
      key, name, height: size, width: size, classes, labels,
      source: { kind: `cifar-${o.format}`, file, split: o.split, size },
      produce: async (write) => {
        const hwc = new Uint8Array(PIX);
        for (let i = 0; i < labels.length; i++) {
          chwToHwc(data.subarray(i * PIX, (i + 1) * PIX), hwc);
          await write(i, size === 32 ? hwc : resize(hwc, 32, 32, 3, size, size, "bilinear"));
        }
      },
    },
    o.cache,
  );
}
