// MNIST in its official idx format (gzipped or not): magic 0x00000803 (uint8 images, 3 dims) and
// 0x00000801 (uint8 labels, 1 dim), big-endian sizes. Digits become RGB images at a chosen size
// (grey copied to the three channels, Pillow-style bilinear resize) in the decode cache.
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { CacheOptions, buildCache, openCache } from "./cache";
import { ImageSet } from "./dataset";
import { resize } from "./resample";

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Parses an idx file (uint8 data only, which is what MNIST uses). */
export function parseIdx(bytes: Uint8Array, what: string): IdxArray {
  let buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = zlib.gunzipSync(buf);
    } catch (e) {
      throw new Error(`${what}: corrupt or truncated gzip data (${e instanceof Error ? e.message : e})`);
    }
  }
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${what}: not an idx file (bad magic ${buf.subarray(0, 4).toString("hex")})`);
  if (buf[2] !== 0x08) throw new Error(`${what}: idx data type 0x${buf[2].toString(16)} is not uint8 (0x08)`);
  const nd = buf[3];
  if (nd < 1 || nd > 4 || buf.length < 4 + 4 * nd) throw new Error(`${what}: idx header with ${nd} dimensions is truncated or invalid`);
  const dims = Array.from({ length: nd }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * nd;
  if (buf.length !== start + n) throw new Error(`${what}: idx file has ${buf.length - start} data bytes, header [${dims}] needs ${n} (truncated or corrupt)`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + start, n) };
}

export const MNIST_CLASSES = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"];
/** Fashion-MNIST's labels 0-9 (zalandoresearch/fashion-mnist README). */
export const FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/** Reads an images + labels pair of idx files and checks that they belong together. */
export function readMnistPair(imagesFile: string, labelsFile: string): { images: IdxArray; labels: IdxArray } {
  const images = parseIdx(fs.readFileSync(imagesFile), imagesFile);
  const labels = parseIdx(fs.readFileSync(labelsFile), labelsFile);
  if (images.dims.length !== 3) throw new Error(`${imagesFile}: expected 3 dimensions (N,H,W), got [${images.dims}]`);
  if (labels.dims.length !== 1) throw new Error(`${labelsFile}: expected 1 dimension (N), got [${labels.dims}]`);
  if (images.dims[0] !== labels.dims[0]) throw new Error(`${imagesFile} has ${images.dims[0]} images but ${labelsFile} has ${labels.dims[0]} labels`);
  for (const l of labels.data) if (l > 9) throw new Error(`${labelsFile}: label ${l} is not a digit`);
  return { images, labels };
}

/** MNIST (or Fashion-MNIST: same format) as RGB images of size x size (28 = native), cached. */
export interface MnistOptions {
  size?: number;
  name: string;
  classes?: string[];
  /** Only the first N images of every label (file order) are decoded. */
  perClass?: number;
  cache?: CacheOptions;
}

export async function loadMnistFiles(imagesFile: string, labelsFile: string, opts: MnistOptions): Promise<ImageSet> {
  const size = opts.size ?? 28;
  const st = fs.statSync(imagesFile);
  const key = `${opts.name}-${size}px-${st.size}${opts.perClass !== undefined ? `-first${opts.perClass}` : ""}`;
  const hit = openCache(key, opts.cache);
  if (hit) return hit;
  const { images, labels } = readMnistPair(imagesFile, labelsFile);
  const [n, h, w] = images.dims;
  const seen = new Array<number>(10).fill(0);
  const keep = Array.from({ length: n }, (_, i) => i).filter((i) => opts.perClass === undefined || seen[labels.data[i]]++ < opts.perClass);
  return buildCache(
    {
      key, name: opts.name, height: size, width: size, classes: opts.classes ?? MNIST_CLASSES, labels: keep.map((i) => labels.data[i]),
      source: { kind: "mnist-idx", images: imagesFile, labels: labelsFile, size, perClass: opts.perClass },
      produce: async (write) => {
        const rgb = new Uint8Array(h * w * 3);
        for (const [j, i] of keep.entries()) {
          const g = images.data.subarray(i * h * w, (i + 1) * h * w);
          for (let p = 0; p < h * w; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = g[p];
          await write(j, size === h && size === w ? rgb : resize(rgb, h, w, 3, size, size, "bilinear"));
        }
      },
    },
    opts.cache,
  );
}
