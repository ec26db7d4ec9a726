// Named datasets, resolved to verified files (src/data/download.ts) and decoded once into the
// cache. `classes` selects a subset and relabels it 0..k-1 (split CIFAR-10: [0..4] and [5..9]).
import * as fs from "node:fs";
import * as path from "node:path";
import { ImageSet, selectClasses, subsetIndices } from "./dataset";
import { ensureFile } from "./download";
import { byCodePoint, loadImageFolder } from "./imagefolder";
import { loadCifar } from "./cifar";
import { archiveSynsets, listClassFolders, loadLayout } from "./layouts";
import { FASHION_MNIST_CLASSES, MNIST_CLASSES, loadMnistFiles } from "./mnist";
import type { DatasetSpec } from "./spec";

export type { DatasetSpec } from "./spec";
/** A short, readable label for a spec (used in names and reports). */
export function datasetLabel(spec: DatasetSpec): string {
  const cls = spec.classes ? `[${spec.classes.join(",")}]` : "";
  const take = spec.perClass !== undefined ? `{${spec.perClass}/class}` : "";
  return `${spec.name}-${spec.split}${cls}${take}`;
}

/** Loads a dataset (decoding on first use only). */
export async function loadDataset(spec: DatasetSpec): Promise<ImageSet> {
  if (spec.perClass !== undefined && !(Number.isInteger(spec.perClass) && spec.perClass > 0)) {
    throw new Error(`dataset ${spec.name}: perClass must be a positive integer, got ${spec.perClass}`);
  }
  let ds = await loadBase(spec);
  // Some loaders decode only the first perClass images; the others' sets are cut here.
  if (spec.perClass !== undefined && !DECODE_SUBSETS.has(spec.name)) ds = firstPerClass(ds, spec.perClass);
  return spec.classes ? selectClasses(ds, spec.classes, datasetLabel(spec)) : ds;
}

/** Loaders that apply `perClass` before decoding (only those images are decoded and cached). */
const DECODE_SUBSETS = new Set<DatasetSpec["name"]>(["cifar10-jpeg", "imagefolder", "imagenet", "mnist", "fashion-mnist"]);

/** The first n images of every class, in dataset order. */
export function firstPerClass(ds: ImageSet, n: number): ImageSet {
  const seen = new Array<number>(ds.classes.length).fill(0);
  const keep: number[] = [];
  for (let i = 0; i < ds.size; i++) if (seen[ds.labels[i]]++ < n) keep.push(i);
  return subsetIndices(ds, keep, `${ds.name}{${n}/class}`);
}

async function loadBase(spec: DatasetSpec): Promise<ImageSet> {
  switch (spec.name) {
    case "cifar10-jpeg": {
      const file = await ensureFile("cifar10-jpeg.tar.gz");
      const size = spec.size ?? 32;
      return loadImageFolder({ root: file, split: spec.split, name: `cifar10-jpeg-${spec.split}`, decode: { size, fit: "fill", interpolation: "bilinear" }, perClass: spec.perClass });
    }
    case "cifar10":
    case "cifar100": {
      const format = spec.format ?? "python";
      const file = await ensureFile(`${spec.name === "cifar10" ? "cifar-10" : "cifar-100"}-${format}.tar.gz`);
      return loadCifar(file, { dataset: spec.name, format, split: spec.split, size: spec.size ?? 32, labelKind: spec.labelKind });
    }
    case "mnist":
    case "fashion-mnist": {
      // Same idx format; Fashion-MNIST's files live under fashion-mnist/ (their names are MNIST's).
      const prefix = spec.split === "train" ? "train" : "t10k";
      const dir = spec.name === "mnist" ? "" : "fashion-mnist/";
      const images = await ensureFile(`${dir}${prefix}-images-idx3-ubyte.gz`);
      const labels = await ensureFile(`${dir}${prefix}-labels-idx1-ubyte.gz`);
      const classes = spec.name === "mnist" ? MNIST_CLASSES : FASHION_MNIST_CLASSES;
      return loadMnistFiles(images, labels, { size: spec.size ?? 28, name: `${spec.name}-${spec.split}`, classes, perClass: spec.perClass });
    }
    case "imagefolder":
      return loadImageFolder({
        root: spec.root, split: spec.split, perClass: spec.perClass,
        decode: { size: spec.size, fit: spec.fit ?? "fill", interpolation: spec.interpolation ?? "bilinear" },
      });
    case "imagenet": {
      // User-supplied folder (train/<wnid>/, val/<wnid>/); class order = sorted wnids of train
      // (or of val when train is absent), so val folders missing some classes keep the full order.
      const isArchive = fs.statSync(spec.root).isFile();
      const classes = (isArchive ? await archiveSynsets(spec.root) : listClassFolders(spec.root, ["train", "val"]))?.sort(byCodePoint);
      const size = spec.size ?? 256;
      // Cached at shorter side `size` + centre crop (ImageNet eval's first two steps at 256).
      return loadImageFolder({
        root: spec.root, split: spec.split, classes, perClass: spec.perClass, name: `imagenet-${spec.split}-${path.basename(spec.root).replace(/\.tar(\.gz)?$|\.tgz$/, "")}`,
        decode: { size, fit: "shorter-center-crop", interpolation: "bicubic" },
      });
    }
    case "dtd":
    case "food101":
    case "flowers102": {
      return loadLayout(spec);
    }
  }
}
