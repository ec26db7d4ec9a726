// Files a study needs that the project cannot fetch by itself (pretrained weights, ImageNet), and
// how configs name them without machine-specific paths: a config says "$STUDY_DINO_WEIGHTS" or
// "$STUDY_IMAGENET_DIR/..." and the path is resolved when the run starts, from the variable or its
// default under data/. `checkInputs` lists every missing file of a set of configs in one message:
// what it is, where it comes from, where to put it and which variable points to it.
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../ground/root";
import type { DatasetSpec } from "../data/datasets";
import { registryFile } from "../data/registry";
import { dataDir, mirrorDir } from "../data/paths";
import { BPE_ENV, BPE_FILE, BPE_MD5, BPE_URL, resolveMergesPath } from "../model/tokenizer";
import { StudyConfig, isClip } from "./clip/config";

export interface UserInput {
  /** Environment variable that points to it. */
  env: string;
  /** Where it is looked for when the variable is unset (relative to the repository). */
  fallback: string;
  what: string;
  /** Where it officially comes from. */
  sources: string[];
}

export const USER_INPUTS: Record<string, UserInput> = {
  STUDY_DINO_WEIGHTS: {
    env: "STUDY_DINO_WEIGHTS",
    fallback: "data/weights/dino_vitbase16_pretrain.pth",
    what: "DINO ViT-B/16 self-supervised weights (backbone, no head)",
    sources: [
      "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth (official DINO release)",
      "or Hugging Face facebook/dino-vitb16 model.safetensors, or timm vit_base_patch16_224.dino (any of these namings loads)",
    ],
  },
  STUDY_IMAGENET_DIR: {
    env: "STUDY_IMAGENET_DIR",
    fallback: "data/imagenet",
    what: "ImageNet-1k (ILSVRC2012) as train/<wnid>/*.JPEG and val/<wnid>/*.JPEG",
    sources: ["https://image-net.org/download-images.php (registration; the val images sorted into wnid folders)"],
  },
  STUDY_CLIP_WEIGHTS: {
    env: "STUDY_CLIP_WEIGHTS",
    fallback: "data/weights/clip-vit-base-patch16.safetensors",
    what: "OpenAI CLIP ViT-B/16 weights (both towers)",
    sources: [
      "Hugging Face openai/clip-vit-base-patch16, model.safetensors (https://huggingface.co/openai/clip-vit-base-patch16);",
      "OpenAI's own release (ViT-B-16.pt) is a TorchScript archive: convert it to a state dict first",
    ],
  },
  STUDY_IMAGENET_V2_DIR: {
    env: "STUDY_IMAGENET_V2_DIR", fallback: "data/imagenet-v2",
    what: "ImageNet-V2 (matched-frequency) as <class index 0..999>/*.jpeg",
    sources: ["https://huggingface.co/datasets/vaishaal/ImageNetV2 (imagenetv2-matched-frequency.tar.gz), extracted"],
  },
  STUDY_IMAGENET_R_DIR: {
    env: "STUDY_IMAGENET_R_DIR", fallback: "data/imagenet-r",
    what: "ImageNet-R as <wnid>/*.jpg (200 classes)", sources: ["https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar, extracted"],
  },
  STUDY_IMAGENET_A_DIR: {
    env: "STUDY_IMAGENET_A_DIR", fallback: "data/imagenet-a",
    what: "ImageNet-A as <wnid>/*.jpg (200 classes)", sources: ["https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar, extracted"],
  },
  STUDY_IMAGENET_SKETCH_DIR: {
    env: "STUDY_IMAGENET_SKETCH_DIR", fallback: "data/imagenet-sketch",
    what: "ImageNet-Sketch as <wnid>/*.JPEG (1000 classes)", sources: ["https://github.com/HaohanWang/ImageNet-Sketch (Google Drive / Hugging Face imagenet_sketch), extracted"],
  },
  STUDY_TARGETS_DIR: {
    env: "STUDY_TARGETS_DIR",
    fallback: "data/targets",
    what: "the extracted official archives of the other targets: dtd/, food-101/, flowers-102/",
    sources: [
      "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz, http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz,",
      "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ (102flowers.tgz, imagelabels.mat, setid.mat), each extracted in place",
    ],
  },
};

const REF = /^\$([A-Z][A-Z0-9_]*)(\/.*)?$/;

/** Resolves "$VAR/rest" (a USER_INPUTS variable) and repository-relative paths to absolute ones. */
export function resolveInput(p: string): string {
  const m = REF.exec(p);
  if (!m) return path.resolve(REPO_ROOT, p);
  const input = USER_INPUTS[m[1]];
  if (!input) throw new Error(`'${p}': unknown variable $${m[1]} (known: ${Object.keys(USER_INPUTS).map((k) => `$${k}`).join(", ")})`);
  const base = process.env[input.env] ? path.resolve(REPO_ROOT, process.env[input.env] as string) : path.join(REPO_ROOT, input.fallback);
  return m[2] ? path.join(base, m[2].slice(1)) : base;
}

/** The dataset spec with its root resolved (datasets with user-supplied folders). */
export function resolveDataset(spec: DatasetSpec): DatasetSpec {
  return "root" in spec ? { ...spec, root: resolveInput(spec.root) } : spec;
}

/** Registry files a dataset reads (downloadable ones), by registry name. */
function registryFiles(spec: DatasetSpec): string[] {
  switch (spec.name) {
    case "cifar10":
    case "cifar100":
      return [`${spec.name === "cifar10" ? "cifar-10" : "cifar-100"}-${spec.format ?? "python"}.tar.gz`];
    case "cifar10-jpeg":
      return ["cifar10-jpeg.tar.gz"];
    case "mnist":
    case "fashion-mnist": {
      const dir = spec.name === "mnist" ? "" : "fashion-mnist/";
      const p = spec.split === "train" ? "train" : "t10k";
      return [`${dir}${p}-images-idx3-ubyte.gz`, `${dir}${p}-labels-idx1-ubyte.gz`];
    }
    default:
      return [];
  }
}

export interface MissingInput {
  /** The file or folder looked for. */
  path: string;
  what: string;
  /** How to get it. */
  how: string;
  /** True when the project downloads it by itself (online). */
  downloadable: boolean;
}

function registryPresent(name: string): boolean {
  const e = registryFile(name);
  const mirror = mirrorDir();
  const cands = [path.join(dataDir(), e.file), ...(mirror ? [e.file, ...(e.mirrorPaths ?? []).map((p) => path.join(p, e.file))].map((f) => path.join(mirror, f)) : []), ...(e.systemPaths ?? [])];
  return cands.some((c) => fs.existsSync(c));
}

/** The files a config reads: user-supplied paths and datasets. */
function inputsOf(c: StudyConfig): { paths: string[]; datasets: DatasetSpec[] } {
  if (isClip(c)) {
    return { paths: [c.model.init], datasets: [c.data.train, c.data.test, ...c.eval.ood.map((e) => e.dataset), ...c.eval.zeroShot.map((e) => e.dataset)] };
  }
  return { paths: c.model.init ? [c.model.init] : [], datasets: [c.data.train, c.data.test, ...(c.retention ? [c.retention.bank, c.retention.queries] : [])] };
}

/** Every input of these configs that is not on this machine (each listed once). */
export function missingInputs(configs: StudyConfig[]): MissingInput[] {
  const out = new Map<string, MissingInput>();
  const user = (ref: string) => {
    const m = REF.exec(ref);
    const p = resolveInput(ref);
    if (fs.existsSync(p) || out.has(p)) return;
    const input = m ? USER_INPUTS[m[1]] : undefined;
    out.set(p, {
      path: p,
      what: input?.what ?? "a file named by the config",
      how: input ? `get it from ${input.sources.join(" ")}; put it at ${p} or point ${input.env} at it` : "check the path in the config",
      downloadable: false,
    });
  };
  for (const c of configs) {
    const { paths, datasets: sets } = inputsOf(c);
    for (const p of paths) user(p);
    if (isClip(c)) {
      try {
        resolveMergesPath(c.model.bpe ? resolveInput(c.model.bpe) : undefined);
      } catch {
        const at = c.model.bpe ? resolveInput(c.model.bpe) : path.join(dataDir(), BPE_FILE);
        if (!out.has(at)) {
          out.set(at, { path: at, what: "the CLIP tokenizer's BPE merges file", downloadable: false, how: `get it from ${BPE_URL} (md5 ${BPE_MD5}); put it at ${at}${c.model.bpe ? "" : ` or point ${BPE_ENV} at it`}` });
        }
      }
    }
    for (const d of sets) {
      if ("root" in d) user(d.root);
      for (const f of registryFiles(d)) {
        const e = registryFile(f);
        const key = path.join(dataDir(), e.file);
        if (registryPresent(f) || out.has(key)) continue;
        out.set(key, {
          path: key, what: e.description, downloadable: e.url !== undefined,
          how: e.url ? `downloaded automatically from ${e.url} (md5 ${e.md5}) when online, or put it at ${key} or in STUDY_DATA_MIRROR` : `not downloadable; put it at ${key} or in the folder named by STUDY_DATA_MIRROR`,
        });
      }
    }
  }
  return [...out.values()];
}

/** A path as messages print it: relative to the repository when inside it (no machine-specific prefix). */
export function displayPath(p: string): string {
  const r = path.relative(REPO_ROOT, p);
  return r && !r.startsWith("..") && !path.isAbsolute(r) ? r : p;
}

export class MissingInputsError extends Error {
  constructor(readonly missing: MissingInput[], what: string) {
    const rel = (s: string) => s.split(REPO_ROOT + path.sep).join("");
    super(
      `${what} cannot start: ${missing.length} input${missing.length > 1 ? "s are" : " is"} missing on this machine:\n` +
        missing.map((m, i) => `  ${i + 1}. ${m.what}\n     ${displayPath(m.path)}\n     ${rel(m.how)}`).join("\n"),
    );
    this.name = "MissingInputsError";
  }
}

/**
 * Throws one MissingInputsError naming every missing input, unless all that is missing can be
 * downloaded and the machine is not offline (STUDY_OFFLINE=1).
 */
export function checkInputs(configs: StudyConfig[], what = "the sweep"): void {
  const missing = missingInputs(configs);
  const blocking = missing.some((m) => !m.downloadable) || (missing.length > 0 && process.env.STUDY_OFFLINE === "1");
  if (blocking) throw new MissingInputsError(missing, what);
}
