// ImageFolder trees (`<root>/<split>/<class>/<image>`), as torchvision reads them: classes are the
// sorted sub-folder names, images sorted by file name within a class. The root can be a folder or
// a .tar/.tar.gz holding the tree (read as a stream, twice: list, then decode; never extracted).
// Images are decoded once into the on-disk uint8 cache at a fixed size.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { CacheOptions, Inflight, buildCache, forEachConcurrent, openCache } from "./cache";
import { ImageSet } from "./dataset";
import { DecodeSize, decodeImage, fitImage } from "./decode";
import { readTar } from "./tar";

/** torchvision's IMG_EXTENSIONS. */
export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"];

export const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export interface ImageFolderOptions {
  /** A folder or a .tar/.tar.gz archive holding `<split>/<class>/<image>` (at any depth). */
  root: string;
  /** Sub-folder of the split (e.g. "train", "val"); "" when classes sit directly under root. */
  split: string;
  /** Cached image size and how to get there. */
  decode: DecodeSize;
  /** Fixed class order (e.g. the 1000 ImageNet wnids); default: sorted folder names found. */
  classes?: string[];
  /** Dataset name (used in messages and the cache key). */
  name?: string;
  /** Only the first N images of every class (file order) are listed and decoded. */
  perClass?: number;
  cache?: CacheOptions;
}

export interface FolderListing {
  classes: string[];
  /** Relative paths (archive paths for tarballs), in dataset order. */
  files: string[];
  labels: number[];
}

const isImage = (f: string) => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());

/** The sub-folder names of `dir` (an ImageFolder split's classes), in directory order. */
export const subFolders = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);

function order(entries: { cls: string; file: string; rel: string }[], classes: string[] | undefined, what: string, folders?: string[]): FolderListing {
  const found = [...new Set(entries.map((e) => e.cls))].sort(byCodePoint);
  // torchvision takes every class folder as a class and refuses one without images; skipping it
  // would shift the labels of the classes after it, differently in each split.
  const empty = classes ? [] : (folders ?? []).filter((f) => !found.includes(f));
  if (empty.length > 0) throw new Error(`${what}: class folder${empty.length > 1 ? "s" : ""} ${empty.map((f) => `'${f}'`).join(", ")} hold${empty.length > 1 ? "" : "s"} no images (${IMAGE_EXTENSIONS.join(" ")}); add them or remove the folder`);
  const cls = classes ?? found;
  const id = new Map(cls.map((c, i) => [c, i]));
  for (const c of found) if (!id.has(c)) throw new Error(`${what}: folder '${c}' is not one of the ${cls.length} given classes`);
  const sorted = entries.slice().sort((a, b) => (id.get(a.cls)! - id.get(b.cls)!) || byCodePoint(a.file, b.file));
  if (sorted.length === 0) throw new Error(`${what}: no images found (expected <class>/<image> with one of ${IMAGE_EXTENSIONS.join(" ")})`);
  return { classes: cls, files: sorted.map((e) => e.rel), labels: sorted.map((e) => id.get(e.cls)!) };
}

/** The first n files of every class of a listing (the listing is in class, then file order). */
export function firstFilesPerClass(l: FolderListing, n: number): FolderListing {
  const seen = new Array<number>(l.classes.length).fill(0);
  const keep = l.labels.map((c) => seen[c]++ < n);
  return { classes: l.classes, files: l.files.filter((_, i) => keep[i]), labels: l.labels.filter((_, i) => keep[i]) };
}

/** Lists a folder tree `<dir>/<class>/<image>` (recursing inside class folders like torchvision). */
export function listFolder(dir: string, classes?: string[]): FolderListing {
  if (!fs.existsSync(dir)) throw new Error(`${dir}: no such folder`);
  const entries: { cls: string; file: string; rel: string }[] = [];
  const folders = subFolders(dir);
  for (const cls of folders) {
    const walk = (sub: string) => {
      for (const d of fs.readdirSync(path.join(dir, cls, sub), { withFileTypes: true })) {
        const rel = sub ? `${sub}/${d.name}` : d.name;
        if (d.isDirectory()) walk(rel);
        else if (isImage(d.name)) entries.push({ cls, file: rel, rel: `${cls}/${rel}` });
      }
    };
    walk("");
  }
  return order(entries, classes, dir, folders);
}

/** Lists `<prefix>/<split>/<class>/<image>` entries of an archive; the prefix must be unique. */
export async function listArchive(file: string, split: string, classes?: string[]): Promise<FolderListing> {
  const entries: { cls: string; file: string; rel: string }[] = [];
  const prefixes = new Set<string>();
  for await (const { entry } of readTar(file)) {
    if (entry.type !== "file" || !isImage(entry.path)) continue;
    const parts = entry.path.split("/");
    const at = split ? parts.lastIndexOf(split, parts.length - 3) : parts.length - 2;
    if (at < 0 || (split ? at + 2 >= parts.length : parts.length < 2)) continue;
    const clsAt = split ? at + 1 : at;
    prefixes.add(parts.slice(0, split ? at : at).join("/"));
    entries.push({ cls: parts[clsAt], file: parts.slice(clsAt + 1).join("/"), rel: entry.path });
  }
  if (prefixes.size > 1) throw new Error(`${file}: several '${split}' trees (${[...prefixes].join(", ")}); cannot tell which one to use`);
  return order(entries, classes, `${file} (split '${split}')`);
}

/**
 * What changes when a folder tree's images are added, removed or renamed, without listing every
 * file (ImageNet's train split has 1.28M): the modification times of the split folder and of its
 * class folders. (An image rewritten in place under the same name is not seen.)
 */
function folderStamp(dir: string): string {
  if (!fs.existsSync(dir)) return "";
  const classes = subFolders(dir).sort(byCodePoint);
  const stamp = [dir, ...classes.map((c) => path.join(dir, c))].map((d) => `${path.basename(d)}:${Math.floor(fs.statSync(d).mtimeMs)}`).join("/");
  return crypto.createHash("sha256").update(stamp).digest("hex").slice(0, 16);
}

function sourceKey(root: string, split: string, decode: DecodeSize, classes: string[] | undefined, perClass: number | undefined): string {
  const st = fs.statSync(root);
  const contents = st.isFile() ? { size: st.size, mtime: Math.floor(st.mtimeMs) } : { folders: folderStamp(path.join(root, split)) };
  const id = JSON.stringify({ root: path.resolve(root), ...contents, split, decode, classes, perClass });
  return crypto.createHash("sha256").update(id).digest("hex").slice(0, 10);
}

/** Loads an ImageFolder split through the decode cache (decoding only on the first call). */
export async function loadImageFolder(opts: ImageFolderOptions): Promise<ImageSet> {
  const { root, split, decode } = opts;
  if (!fs.existsSync(root)) throw new Error(`${root}: no such file or folder`);
  const isArchive = fs.statSync(root).isFile();
  const name = opts.name ?? `${path.basename(root).replace(/\.tar(\.gz)?$|\.tgz$/, "")}${split ? `-${split}` : ""}`;
  const key = `${name.replace(/[^\w.-]/g, "_")}-${decode.size}px-${sourceKey(root, split, decode, opts.classes, opts.perClass)}`;
  const hit = openCache(key, opts.cache);
  if (hit) return hit;
  let listing = isArchive ? await listArchive(root, split, opts.classes) : listFolder(path.join(root, split), opts.classes);
  if (opts.perClass !== undefined) listing = firstFilesPerClass(listing, opts.perClass);
  const where = new Map(listing.files.map((f, i) => [f, i]));
  return buildCache(
    {
      key, name, height: decode.size, width: decode.size, classes: listing.classes, labels: listing.labels,
      source: { kind: "imagefolder", root: path.resolve(root), split, decode, files: listing.files.length },
      produce: async (write, done) => {
        const one = async (i: number, bytes: Uint8Array, what: string) => write(i, fitImage(await decodeImage(bytes, what), decode));
        if (!isArchive) {
          const dir = path.join(root, split);
          await forEachConcurrent(listing.files.length, 4, async (i) => {
            if (done(i)) return;
            const f = path.join(dir, listing.files[i]);
            await one(i, fs.readFileSync(f), f);
          });
          return;
        }
        const inflight = new Inflight(8);
        for await (const { entry, data } of readTar(root)) {
          const i = entry.type === "file" ? where.get(entry.path) : undefined;
          if (i !== undefined && !done(i)) await inflight.add(one(i, data, `${root}:${entry.path}`));
        }
        await inflight.drain();
      },
    },
    opts.cache,
  );
}

export interface FileListOptions {
  name: string;
  /** Absolute image paths, in dataset order. */
  files: string[];
  labels: number[];
  classes: string[];
  decode: DecodeSize;
  /** Anything that identifies the list (split file, partition), for the cache key. */
  source: Record<string, unknown>;
  cache?: CacheOptions;
}

/** Decodes an explicit list of image files (split-file layouts: DTD, Food-101, Flowers-102). */
export async function loadFileList(o: FileListOptions): Promise<ImageSet> {
  const id = crypto.createHash("sha256").update(JSON.stringify({ files: o.files, labels: o.labels, decode: o.decode, source: o.source })).digest("hex").slice(0, 10);
  const key = `${o.name.replace(/[^\w.-]/g, "_")}-${o.decode.size}px-${id}`;
  const hit = openCache(key, o.cache);
  if (hit) return hit;
  const missing = o.files.find((f) => !fs.existsSync(f));
  if (missing) throw new Error(`${o.name}: image file ${missing} listed by the split is missing`);
  return buildCache(
    {
      key, name: o.name, height: o.decode.size, width: o.decode.size, classes: o.classes, labels: o.labels,
      source: { ...o.source, decode: o.decode, files: o.files.length },
      produce: (write, done) =>
        forEachConcurrent(o.files.length, 4, async (i) => {
          if (!done(i)) await write(i, fitImage(await decodeImage(fs.readFileSync(o.files[i]), o.files[i]), o.decode));
        }),
    },
    o.cache,
  );
}
