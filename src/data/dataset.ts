// An image dataset as the engine sees it: N images of one size, uint8 RGB, HWC, with integer
// labels and class names. Pixels live in memory (a SharedArrayBuffer, so prefetch workers read
// them without copies) or in a cache file read on demand (bounded memory for ImageNet-sized sets).
import * as fs from "node:fs";

/** Where the pixels are, in a form that can be posted to a worker thread. */
export type PixelStorage =
  | { kind: "memory"; buffer: SharedArrayBuffer | ArrayBuffer; byteOffset: number }
  | { kind: "file"; path: string; byteOffset: number };

export interface ImageSetHandle {
  storage: PixelStorage;
  height: number;
  width: number;
  /** Maps dataset index -> storage record (null = identity). */
  indices: Int32Array | null;
}

export interface ImageSet {
  readonly name: string;
  readonly size: number;
  readonly height: number;
  readonly width: number;
  /** Always 3: grayscale and CMYK sources are converted to RGB when decoded. */
  readonly channels: 3;
  readonly labels: Int32Array;
  readonly classes: readonly string[];
  /** Image i as [H,W,3] uint8 (a view for memory storage, a fresh buffer for file storage). */
  image(i: number): Uint8Array;
  handle(): ImageSetHandle;
}

/** Reads record r from a storage, into `out` when given. */
export function readRecord(storage: PixelStorage, recordBytes: number, r: number, fdCache?: { fd?: number }, out?: Uint8Array): Uint8Array {
  if (storage.kind === "memory") {
    const view = new Uint8Array(storage.buffer, storage.byteOffset + r * recordBytes, recordBytes);
    if (out) { out.set(view); return out; }
    return view;
  }
  const buf = out ?? new Uint8Array(recordBytes);
  const cache = fdCache ?? {};
  if (cache.fd === undefined) cache.fd = fs.openSync(storage.path, "r");
  const got = fs.readSync(cache.fd, buf, 0, recordBytes, storage.byteOffset + r * recordBytes);
  if (got !== recordBytes) throw new Error(`${storage.path}: truncated cache file (record ${r} is incomplete)`);
  if (!fdCache) fs.closeSync(cache.fd);
  return buf;
}

/** Dataset over a storage with every record used (the base of subsets). */
export class StoredImageSet implements ImageSet {
  readonly channels = 3 as const;
  private readonly fd: { fd?: number } = {};
  constructor(
    readonly name: string,
    private readonly storage: PixelStorage,
    readonly height: number,
    readonly width: number,
    readonly labels: Int32Array,
    readonly classes: readonly string[],
  ) {}
  get size(): number { return this.labels.length; }
  image(i: number): Uint8Array {
    if (!(i >= 0 && i < this.size)) throw new RangeError(`${this.name}: image index ${i} out of range [0, ${this.size})`);
    return readRecord(this.storage, this.height * this.width * 3, i, this.fd);
  }
  handle(): ImageSetHandle {
    return { storage: this.storage, height: this.height, width: this.width, indices: null };
  }
}

/** A dataset held in memory; `pixels` is N*H*W*3 bytes. */
export function memoryImageSet(name: string, pixels: Uint8Array, height: number, width: number, labels: Int32Array, classes: readonly string[]): ImageSet {
  const need = labels.length * height * width * 3;
  if (pixels.length !== need) throw new Error(`${name}: ${pixels.length} pixel bytes for ${labels.length} images of ${height}x${width}x3 (need ${need})`);
  let buf: SharedArrayBuffer | ArrayBuffer = pixels.buffer as ArrayBuffer;
  let off = pixels.byteOffset;
  if (!(pixels.buffer instanceof SharedArrayBuffer)) {
    // Shared memory lets prefetch workers read the pixels without a copy per batch.
    const sab = new SharedArrayBuffer(need);
    new Uint8Array(sab).set(pixels);
    buf = sab;
    off = 0;
  }
  return new StoredImageSet(name, { kind: "memory", buffer: buf, byteOffset: off }, height, width, labels, classes);
}

/** A view of some images of a dataset, optionally with new labels. */
class SubsetImageSet implements ImageSet {
  readonly channels = 3 as const;
  constructor(
    readonly name: string,
    private readonly base: ImageSet,
    private readonly index: Int32Array,
    readonly labels: Int32Array,
    readonly classes: readonly string[],
  ) {}
  get size(): number { return this.index.length; }
  get height(): number { return this.base.height; }
  get width(): number { return this.base.width; }
  image(i: number): Uint8Array {
    if (!(i >= 0 && i < this.size)) throw new RangeError(`${this.name}: image index ${i} out of range [0, ${this.size})`);
    return this.base.image(this.index[i]);
  }
  handle(): ImageSetHandle {
    const h = this.base.handle();
    const idx = h.indices ? Int32Array.from(this.index, (i) => h.indices![i]) : this.index;
    return { ...h, indices: idx };
  }
}

/** The images with the given indices (in that order), labels unchanged. */
export function subsetIndices(ds: ImageSet, indices: ArrayLike<number>, name = `${ds.name}[subset]`): ImageSet {
  const idx = Int32Array.from(indices);
  for (const i of idx) if (!(i >= 0 && i < ds.size)) throw new RangeError(`${ds.name}: subset index ${i} out of range`);
  return new SubsetImageSet(name, ds, idx, Int32Array.from(idx, (i) => ds.labels[i]), ds.classes);
}

/**
 * Keeps the images of the given classes (names or label ids) and relabels them 0..k-1 in the
 * order given: `selectClasses(cifar10, [5,6,7,8,9])` is the second task of split CIFAR-10.
 */
export function selectClasses(ds: ImageSet, classes: ReadonlyArray<number | string>, name?: string): ImageSet {
  const ids = classes.map((c) => {
    const id = typeof c === "number" ? c : ds.classes.indexOf(c);
    if (!(id >= 0 && id < ds.classes.length)) throw new Error(`${ds.name}: unknown class ${JSON.stringify(c)} (classes: ${ds.classes.join(", ")})`);
    return id;
  });
  const remap = new Map(ids.map((id, k) => [id, k]));
  const keep: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < ds.size; i++) {
    const k = remap.get(ds.labels[i]);
    if (k !== undefined) { keep.push(i); labels.push(k); }
  }
  return new SubsetImageSet(name ?? `${ds.name}[classes ${ids.join(",")}]`, ds, Int32Array.from(keep), Int32Array.from(labels), ids.map((id) => ds.classes[id]));
}

/** Copies a dataset into memory (e.g. a small file-backed subset). */
export function toMemory(ds: ImageSet): ImageSet {
  const rec = ds.height * ds.width * 3;
  const sab = new SharedArrayBuffer(ds.size * rec);
  const px = new Uint8Array(sab);
  for (let i = 0; i < ds.size; i++) px.set(ds.image(i), i * rec);
  return memoryImageSet(ds.name, px, ds.height, ds.width, Int32Array.from(ds.labels), ds.classes);
}

/** Images per class, in class order. */
export function classCounts(ds: ImageSet): number[] {
  const c = new Array<number>(ds.classes.length).fill(0);
  for (const l of ds.labels) c[l]++;
  return c;
}
