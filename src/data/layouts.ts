// The split layouts torchvision reads for the papers' other targets, from their extracted official
// archives (extract with extractTar, which refuses escaping paths and links):
//   DTD         <root>/dtd/{images/<class>/<file>.jpg, labels/{train,val,test}<1..10>.txt}
//               lines "banded/banded_0002.jpg"; classes = sorted class folders of the listed files
//   Food-101    <root>/food-101/{images/<class>/<id>.jpg, meta/{train,test}.txt, meta/classes.txt}
//               lines "apple_pie/1005649"; classes = meta/classes.txt (sorted, as torchvision's
//               sorted json keys); meta/{split}.json is read when the .txt is absent
//   Flowers-102 <root>/flowers-102/{jpg/image_00001.jpg, imagelabels.mat, setid.mat}
//               labels = imagelabels['labels'] - 1; split ids = setid['trnid' | 'valid' | 'tstid']
// `root` may point at the folder itself or at its parent.
import * as fs from "node:fs";
import * as path from "node:path";
import { ImageSet } from "./dataset";
import type { DatasetSpec } from "./spec";
import { byCodePoint, loadFileList, subFolders } from "./imagefolder";
import { matVar, readMat } from "./mat";
import { readTar } from "./tar";

function locate(root: string, names: string[], marker: string, what: string): string {
  for (const cand of [root, ...names.map((n) => path.join(root, n)), ...names.map((n) => path.join(root, n, n))]) {
    if (fs.existsSync(path.join(cand, marker))) return cand;
  }
  throw new Error(`${what}: no ${marker} under ${root} (looked in ${[root, ...names.map((n) => path.join(root, n))].join(", ")})`);
}

function readLines(file: string): string[] {
  if (!fs.existsSync(file)) throw new Error(`${file}: split file is missing`);
  return fs.readFileSync(file, "utf8").split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
}

export function dtdFiles(root: string, split: string, partition = 1): { files: string[]; labels: number[]; classes: string[] } {
  if (!(partition >= 1 && partition <= 10)) throw new Error(`DTD partition must be 1..10, got ${partition}`);
  const base = locate(root, ["dtd"], "labels", "DTD");
  const rel = readLines(path.join(base, "labels", `${split}${partition}.txt`));
  const classes = [...new Set(rel.map((r) => r.split("/")[0]))].sort(byCodePoint);
  const id = new Map(classes.map((c, i) => [c, i]));
  return { files: rel.map((r) => path.join(base, "images", r)), labels: rel.map((r) => id.get(r.split("/")[0])!), classes };
}

export function food101Files(root: string, split: string): { files: string[]; labels: number[]; classes: string[] } {
  const base = locate(root, ["food-101"], "meta", "Food-101");
  const txt = path.join(base, "meta", `${split}.txt`);
  let rel: string[];
  if (fs.existsSync(txt)) rel = readLines(txt);
  else {
    const json = JSON.parse(fs.readFileSync(path.join(base, "meta", `${split}.json`), "utf8")) as Record<string, string[]>;
    rel = Object.keys(json).sort(byCodePoint).flatMap((k) => json[k]);
  }
  const classesFile = path.join(base, "meta", "classes.txt");
  const classes = fs.existsSync(classesFile) ? readLines(classesFile) : [...new Set(rel.map((r) => r.split("/")[0]))].sort(byCodePoint);
  const id = new Map(classes.map((c, i) => [c, i]));
  const labels = rel.map((r) => {
    const l = id.get(r.split("/")[0]);
    if (l === undefined) throw new Error(`${txt}: '${r}' has a class not in ${classesFile}`);
    return l;
  });
  return { files: rel.map((r) => path.join(base, "images", `${r}.jpg`)), labels, classes };
}

export function flowers102Files(root: string, split: string): { files: string[]; labels: number[]; classes: string[] } {
  const base = locate(root, ["flowers-102"], "setid.mat", "Flowers-102");
  const labelsFile = path.join(base, "imagelabels.mat");
  const setFile = path.join(base, "setid.mat");
  const labels = matVar(readMat(fs.readFileSync(labelsFile), labelsFile), "labels", labelsFile).data;
  const key = { train: "trnid", val: "valid", test: "tstid" }[split];
  if (!key) throw new Error(`Flowers-102 split must be train, val or test, got '${split}'`);
  const ids = matVar(readMat(fs.readFileSync(setFile), setFile), key, setFile).data;
  const files: string[] = [];
  const out: number[] = [];
  for (const id of ids) {
    if (!(id >= 1 && id <= labels.length)) throw new Error(`${setFile}: image id ${id} outside 1..${labels.length}`);
    files.push(path.join(base, "jpg", `image_${String(id).padStart(5, "0")}.jpg`));
    out.push(labels[id - 1] - 1);
  }
  const classes = Array.from({ length: 102 }, (_, i) => String(i));
  for (const l of out) if (!(l >= 0 && l < 102)) throw new Error(`${labelsFile}: label ${l + 1} outside 1..102`);
  return { files, labels: out, classes };
}

/** Loads one of the split layouts through the decode cache. */
export function loadLayout(spec: Extract<DatasetSpec, { name: "dtd" | "food101" | "flowers102" }>): Promise<ImageSet> {
  const list =
    spec.name === "dtd" ? dtdFiles(spec.root, spec.split, spec.partition ?? 1)
    : spec.name === "food101" ? food101Files(spec.root, spec.split)
    : flowers102Files(spec.root, spec.split);
  const name = `${spec.name}-${spec.split}${spec.name === "dtd" ? (spec.partition ?? 1) : ""}`;
  // CHOICE: every image is squashed to size x size once, into the decode cache (records of one
  // size), and the transforms resample that. Paper A's eval transform squashes too (resize to
  // 224 x 224), so eval differs only by resampling twice; RandomResizedCrop draws its box on the
  // squashed image, so its aspect ratios are the original's stretched by the image's own.
  return loadFileList({
    name, ...list, decode: { size: spec.size, fit: "fill", interpolation: "bilinear" },
    source: { kind: spec.name, root: path.resolve(spec.root), split: spec.split },
  });
}

/** Class folders found under <root>/<split> for the given splits (ImageNet's wnids). A
 * LOC_synset_mapping.txt in root, when present, gives the full list (first word of each line). */
export function listClassFolders(root: string, splits: string[]): string[] {
  const mapping = path.join(root, "LOC_synset_mapping.txt");
  if (fs.existsSync(mapping)) return readLines(mapping).map((l) => l.split(/\s+/)[0]);
  const found = new Set<string>();
  for (const s of splits) {
    const dir = path.join(root, s);
    if (!fs.existsSync(dir)) continue;
    for (const c of subFolders(dir)) found.add(c);
  }
  if (found.size === 0) throw new Error(`${root}: no class folders under ${splits.map((s) => path.join(root, s)).join(" or ")}`);
  return [...found];
}

/** The 1000 wnids of LOC_synset_mapping.txt inside an archive; undefined when it has none
 * (then the class folders found are the classes). */
export async function archiveSynsets(file: string): Promise<string[] | undefined> {
  for await (const { entry, data } of readTar(file)) {
    if (entry.type === "file" && entry.path.endsWith("LOC_synset_mapping.txt")) {
      return data.toString("utf8").split(/\r?\n/).filter((l) => l.trim()).map((l) => l.split(/\s+/)[0]);
    }
  }
  return undefined;
}
