// Named datasets, resolved to verified files (src/data/download.ts) and decoded once into the
// cache. `classes` selects a subset and relabels it 0..k-1 (split CIFAR-10: [0..4] and [5..9]).
import * as fs from "node:fs";
import * as path from "node:path";
import { ImageSet, selectClasses } from "./dataset";
import { ensureFile } from "./download";
import { byCodePoint, loadImageFolder } from "./imagefolder";
import { loadMnistFiles } from "./mnist";
import type { Interpolation } from "./resample";

interface Common {
  /** Keep these classes (ids or names) and relabel them 0..k-1 in this order. */
  classes?: Array<number | string>;
}

export type DatasetSpec = Common &
  (
    | { name: "cifar10-jpeg"; split: "train" | "test"; size?: number }
    | { name: "cifar10" | "cifar100"; split: "train" | "test"; format?: "python" | "binary"; size?: number; labelKind?: "fine" | "coarse" }
    | { name: "mnist"; split: "train" | "test"; size?: number }
    | { name: "imagefolder"; root: string; split: string; size: number; fit?: "fill" | "shorter-center-crop"; interpolation?: Interpolation }
    | { name: "imagenet"; root: string; split: "train" | "val"; size?: number }
    | { name: "dtd"; root: string; split: "train" | "val" | "test"; partition?: number; size: number }
    | { name: "food101"; root: string; split: "train" | "test"; size: number }
    | { name: "flowers102"; root: string; split: "train" | "val" | "test"; size: number }
  );

/** A short, readable label for a spec (used in names and reports). */
export function datasetLabel(spec: DatasetSpec): string {
  const cls = spec.classes ? `[${spec.classes.join(",")}]` : "";
  return `${spec.name}-${spec.split}${cls}`;
}

/** Loads a dataset (decoding on first use only). */
export async function loadDataset(spec: DatasetSpec): Promise<ImageSet> {
  const ds = await loadBase(spec);
  return spec.classes ? selectClasses(ds, spec.classes, datasetLabel(spec)) : ds;
}

async function loadBase(spec: DatasetSpec): Promise<ImageSet> {
  switch (spec.name) {
    case "cifar10-jpeg": {
      const file = await ensureFile("cifar10-jpeg.tar.gz");
      const size = spec.size ?? 32;
      return loadImageFolder({ root: file, split: spec.split, name: `cifar10-jpeg-${spec.split}`, decode: { size, fit: "fill", interpolation: "bilinear" } });
    }
    case "cifar10":
    case "cifar100": {
      const { loadCifar } = require("./cifar") as typeof import("./cifar");
      const format = spec.format ?? "python";
      const file = await ensureFile(`${spec.name === "cifar10" ? "cifar-10" : "cifar-100"}-${format}.tar.gz`);
      return loadCifar(file, { dataset: spec.name, format, split: spec.split, size: spec.size ?? 32, labelKind: spec.labelKind });
    }
    case "mnist": {
      const prefix = spec.split === "train" ? "train" : "t10k";
      const images = await ensureFile(`${prefix}-images-idx3-ubyte.gz`);
      const labels = await ensureFile(`${prefix}-labels-idx1-ubyte.gz`);
      return loadMnistFiles(images, labels, { size: spec.size ?? 28, name: `mnist-${spec.split}` });
    }
    case "imagefolder":
      return loadImageFolder({
        root: spec.root, split: spec.split,
        decode: { size: spec.size, fit: spec.fit ?? "fill", interpolation: spec.interpolation ?? "bilinear" },
      });
    case "imagenet": {
      // User-supplied folder (train/<wnid>/, val/<wnid>/); class order = sorted wnids of train
      // (or of val when train is absent), so val folders missing some classes keep the full order.
      const { listClassFolders, archiveSynsets } = require("./layouts") as typeof import("./layouts");
      const isArchive = fs.statSync(spec.root).isFile();
      const classes = (isArchive ? await archiveSynsets(spec.root) : listClassFolders(spec.root, ["train", "val"]))?.sort(byCodePoint);
      const size = spec.size ?? 256;
      // Cached at shorter side `size` + centre crop (ImageNet eval's first two steps at 256).
      return loadImageFolder({
        root: spec.root, split: spec.split, classes, name: `imagenet-${spec.split}-${path.basename(spec.root).replace(/\.tar(\.gz)?$|\.tgz$/, "")}`,
        decode: { size, fit: "shorter-center-crop", interpolation: "bicubic" },
      });
    }
    case "dtd":
    case "food101":
    case "flowers102": {
      const layouts = require("./layouts") as typeof import("./layouts");
      return layouts.loadLayout(spec);
    }
  }
}
