// The papers' image transforms, split in two halves so that batches are reproducible no matter
// where the pixel work runs: `sampleParams` draws every random choice from the seeded Rng (main
// thread, in sample order), `applyTransform` is a pure function of (image, params) that can run in
// a worker. Output is float32 HWC, normalised ((x/255 - mean) / std).
import type { Rng } from "../ground/rng";
import { Interpolation, resizeBox } from "./resample";

export type Triple = [number, number, number];

export const HALF_MEAN: Triple = [0.5, 0.5, 0.5];
export const HALF_STD: Triple = [0.5, 0.5, 0.5];
export const IMAGENET_MEAN: Triple = [0.485, 0.456, 0.406];
export const IMAGENET_STD: Triple = [0.229, 0.224, 0.225];

interface Normalise { mean: Triple; std: Triple }

export type TransformSpec =
  /** torchvision RandomResizedCrop + RandomHorizontalFlip. */
  | ({ kind: "random-resized-crop"; size: number; scale: [number, number]; ratio: [number, number]; interpolation: Interpolation; flip: boolean } & Normalise)
  /** Resize to size x size (aspect ratio not kept). */
  | ({ kind: "resize"; size: number; interpolation: Interpolation } & Normalise)
  /** Resize the shorter side to `resize`, centre-crop size x size. */
  | ({ kind: "resize-center-crop"; resize: number; size: number; interpolation: Interpolation } & Normalise)
  /** Zero-pad by `padding`, random crop size x size, optional flip (the CIFAR recipe). */
  | ({ kind: "pad-crop"; size: number; padding: number; flip: boolean } & Normalise)
  /** Only normalisation (images already at the model's size). */
  | ({ kind: "identity"; size: number } & Normalise);

/** Python's round(): halves go to the even neighbour (torchvision's crop arithmetic uses it). */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Per-sample random choices: a crop box in source pixels (x, y, w, h) and a flip. */
export interface SampleParams {
  x: number;
  y: number;
  w: number;
  h: number;
  flip: boolean;
}

/** Papers' train transform (RandomResizedCrop 224, scale 0.08-1, ratio 3/4-4/3, bilinear, flip, mean=std=0.5). */
export function paperTrain(size = 224): TransformSpec {
  return { kind: "random-resized-crop", size, scale: [0.08, 1], ratio: [3 / 4, 4 / 3], interpolation: "bilinear", flip: true, mean: HALF_MEAN, std: HALF_STD };
}
/** Papers' eval transform (resize to size x size, bilinear, mean=std=0.5). */
export function paperEval(size = 224): TransformSpec {
  return { kind: "resize", size, interpolation: "bilinear", mean: HALF_MEAN, std: HALF_STD };
}
/** ImageNet eval (shorter side 256 bicubic, centre crop 224, ImageNet mean/std), scaled with `size`. */
export function imagenetEval(size = 224, resizeTo = Math.round((size * 256) / 224)): TransformSpec {
  return { kind: "resize-center-crop", resize: resizeTo, size, interpolation: "bicubic", mean: IMAGENET_MEAN, std: IMAGENET_STD };
}
/** CIFAR-native train: pad 4, random crop, flip (mean=std=0.5 like the papers). */
export function cifarTrain(size = 32, padding = 4): TransformSpec {
  return { kind: "pad-crop", size, padding, flip: true, mean: HALF_MEAN, std: HALF_STD };
}
/** CIFAR-native eval: the image as is, normalised. */
export function cifarEval(size = 32): TransformSpec {
  return { kind: "identity", size, mean: HALF_MEAN, std: HALF_STD };
}

/** torchvision RandomResizedCrop.get_params: 10 tries, then the centre-crop fallback. */
export function randomResizedCropBox(rng: Rng, h: number, w: number, scale: [number, number], ratio: [number, number]): { x: number; y: number; w: number; h: number } {
  const area = h * w;
  const logR = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logR[0], logR[1]));
    const cw = pyRound(Math.sqrt(target * aspect));
    const ch = pyRound(Math.sqrt(target / aspect));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      const y = rng.int(h - ch + 1);
      const x = rng.int(w - cw + 1);
      return { x, y, w: cw, h: ch };
    }
  }
  const inRatio = w / h;
  let cw: number, ch: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) { cw = w; ch = pyRound(cw / Math.min(ratio[0], ratio[1])); }
  else if (inRatio > Math.max(ratio[0], ratio[1])) { ch = h; cw = pyRound(ch * Math.max(ratio[0], ratio[1])); }
  else { cw = w; ch = h; }
  return { x: Math.floor((w - cw) / 2), y: Math.floor((h - ch) / 2), w: cw, h: ch };
}

/** Draws the random choices for one image of size h x w (deterministic ones draw nothing). */
export function sampleParams(spec: TransformSpec, rng: Rng | undefined, h: number, w: number): SampleParams {
  const need = () => {
    if (!rng) throw new Error(`transform '${spec.kind}' is random and needs an Rng`);
    return rng;
  };
  switch (spec.kind) {
    case "random-resized-crop": {
      const r = need();
      const box = randomResizedCropBox(r, h, w, spec.scale, spec.ratio);
      return { ...box, flip: spec.flip ? r.next() < 0.5 : false };
    }
    case "pad-crop": {
      const r = need();
      const ph = h + 2 * spec.padding, pw = w + 2 * spec.padding;
      if (ph < spec.size || pw < spec.size) throw new Error(`pad-crop: padded image ${ph}x${pw} is smaller than ${spec.size}`);
      const y = r.int(ph - spec.size + 1) - spec.padding;
      const x = r.int(pw - spec.size + 1) - spec.padding;
      return { x, y, w: spec.size, h: spec.size, flip: spec.flip ? r.next() < 0.5 : false };
    }
    case "resize":
    case "identity":
      return { x: 0, y: 0, w, h, flip: false };
    case "resize-center-crop": {
      // (torchvision's CenterCrop pads a smaller image with zeros; no recipe wants that.)
      if (spec.resize < spec.size) throw new Error(`resize-center-crop: resize ${spec.resize} is smaller than the crop size ${spec.size}; give resize >= size`);
      // torchvision Resize(int): shorter side -> resize, longer side truncated; then CenterCrop.
      const [rh, rw] = h <= w ? [spec.resize, Math.trunc((spec.resize * w) / h)] : [Math.trunc((spec.resize * h) / w), spec.resize];
      const y = pyRound((rh - spec.size) / 2);
      const x = pyRound((rw - spec.size) / 2);
      // The crop box is expressed in resized coordinates; apply resizes first.
      return { x, y, w: rw, h: rh, flip: false };
    }
  }
}

/**
 * Applies a transform to one [h,w,3] uint8 image and writes the normalised float32 [size,size,3]
 * result into `out` at `offset`.
 */
export function applyTransform(spec: TransformSpec, img: Uint8Array, h: number, w: number, p: SampleParams, out: Float32Array, offset: number): void {
  const s = spec.size;
  let px: Uint8Array;
  let pw = s;
  switch (spec.kind) {
    case "random-resized-crop":
      px = resizeBox(img, h, w, 3, [p.x, p.y, p.x + p.w, p.y + p.h], s, s, spec.interpolation);
      break;
    case "resize":
      px = h === s && w === s ? img : resizeBox(img, h, w, 3, [0, 0, w, h], s, s, spec.interpolation);
      break;
    case "identity":
      if (h !== s || w !== s) throw new Error(`identity transform expects ${s}x${s} images, got ${h}x${w}`);
      px = img;
      break;
    case "resize-center-crop": {
      const resized = p.w === w && p.h === h ? img : resizeBox(img, h, w, 3, [0, 0, w, h], p.h, p.w, spec.interpolation);
      px = new Uint8Array(s * s * 3);
      for (let y = 0; y < s; y++) px.set(resized.subarray(((y + p.y) * p.w + p.x) * 3, ((y + p.y) * p.w + p.x + s) * 3), y * s * 3);
      break;
    }
    case "pad-crop": {
      // Zero padding: out-of-image pixels are 0 before normalisation (torchvision fill=0).
      px = new Uint8Array(s * s * 3);
      for (let y = 0; y < s; y++) {
        const sy = y + p.y;
        if (sy < 0 || sy >= h) continue;
        for (let x = 0; x < s; x++) {
          const sx = x + p.x;
          if (sx < 0 || sx >= w) continue;
          const si = (sy * w + sx) * 3, di = (y * s + x) * 3;
          px[di] = img[si]; px[di + 1] = img[si + 1]; px[di + 2] = img[si + 2];
        }
      }
      break;
    }
  }
  // (x/255 - mean)/std in float32, step by step, as torchvision's ToTensor + Normalize compute it
  // (mean and std are float32 tensors there).
  const f = Math.fround;
  const [m0, m1, m2] = spec.mean.map(f), [s0, s1, s2] = spec.std.map(f);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < pw; x++) {
      const si = (y * s + (p.flip ? s - 1 - x : x)) * 3;
      const di = offset + (y * s + x) * 3;
      out[di] = f(f(px[si] / 255) - m0) / s0;
      out[di + 1] = f(f(px[si + 1] / 255) - m1) / s1;
      out[di + 2] = f(f(px[si + 2] / 255) - m2) / s2;
    }
  }
}
