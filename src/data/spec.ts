// A dataset as a run config names it: which files, which split, which classes, at what size.
// Loading is src/data/datasets.ts; the split layouts of DTD, Food-101 and Flowers-102 read their
// own variants in src/data/layouts.ts.
import type { Interpolation } from "./resample";

interface Common {
  /** Keep these classes (ids or names) and relabel them 0..k-1 in this order. */
  classes?: Array<number | string>;
  /**
   * Keep the first N images of every class (dataset order): small, deterministic subsets for
   * smoke runs. ImageFolder trees then decode only those images.
   */
  perClass?: number;
}

export type DatasetSpec = Common &
  (
    | { name: "cifar10-jpeg"; split: "train" | "test"; size?: number }
    | { name: "cifar10" | "cifar100"; split: "train" | "test"; format?: "python" | "binary"; size?: number; labelKind?: "fine" | "coarse" }
    | { name: "mnist" | "fashion-mnist"; split: "train" | "test"; size?: number }
    | { name: "imagefolder"; root: string; split: string; size: number; fit?: "fill" | "shorter-center-crop"; interpolation?: Interpolation }
    | { name: "imagenet"; root: string; split: "train" | "val"; size?: number }
    | { name: "dtd"; root: string; split: "train" | "val" | "test"; partition?: number; size: number }
    | { name: "food101"; root: string; split: "train" | "test"; size: number }
    | { name: "flowers102"; root: string; split: "train" | "val" | "test"; size: number }
  );

