// Image resampling on uint8 HWC buffers, written to match Pillow's `Image.resize` (what
// torchvision's transforms call on PIL images): separable convolution, horizontal pass first,
// filter support widened by the downscale factor (antialiasing), coefficients normalised per output
// pixel, 22-bit fixed-point weights, the intermediate pass rounded and clamped to uint8 (as Pillow
// does). Filters: bilinear (triangle, support 1) and bicubic (Keys, a = -0.5, support 2); nearest
// is Pillow's too (one source pixel per output, no filter).
// Pixel centres are at +0.5 (align_corners = false); windows are clipped at the borders and
// renormalised, so edges follow Pillow rather than torch's clamp-to-edge tensor interpolation.

export type Interpolation = "bilinear" | "bicubic" | "nearest";

const PRECISION_BITS = 32 - 8 - 2;

/** The Keys cubic: a = -0.5 is Pillow's (and PyTorch's antialiased) bicubic, a = -0.75 PyTorch's plain one. */
export function keysCubic(x: number, a: number): number {
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function filterOf(kind: Exclude<Interpolation, "nearest">): { support: number; f: (x: number) => number } {
  switch (kind) {
    case "bilinear":
      return { support: 1, f: (x) => { x = Math.abs(x); return x < 1 ? 1 - x : 0; } };
    case "bicubic":
      return { support: 2, f: (x) => keysCubic(x, -0.5) };
  }
}

/**
 * Pillow's NEAREST (an affine transform, not a filter: no antialiasing when downscaling): output
 * i takes input floor(in0 + (i + 0.5) * scale), one tap of weight 1.
 */
function nearestWindows(inSize: number, in0: number, in1: number, outSize: number): FilterWindows {
  const scale = (in1 - in0) / outSize;
  const start = Int32Array.from({ length: outSize }, (_, i) => Math.min(inSize - 1, Math.max(0, Math.floor(in0 + (i + 0.5) * scale))));
  return { start, len: new Int32Array(outSize).fill(1), weights: new Float64Array(outSize).fill(1), ksize: 1 };
}

/** Each output's window of input indices and its normalised float64 weights (`ksize` slots per output). */
export interface FilterWindows {
  start: Int32Array;
  len: Int32Array;
  weights: Float64Array;
  ksize: number;
}

/**
 * Pillow's precompute_coeffs before fixed point, for the input span [in0, in1) mapped onto
 * outSize outputs: centres at in0 + (i + 0.5) * scale, the filter stretched by the downscale
 * factor (antialiasing), windows clipped at the borders and renormalised. PyTorch's antialiased
 * interpolate (aten _upsample_bicubic2d_aa, ported from Pillow) computes the same weights.
 */
export function filterWindows(inSize: number, in0: number, in1: number, outSize: number, kind: Interpolation): FilterWindows {
  if (kind === "nearest") return nearestWindows(inSize, in0, in1, outSize);
  const { support: baseSupport, f } = filterOf(kind);
  const scale = (in1 - in0) / outSize;
  const filterscale = Math.max(scale, 1);
  const support = baseSupport * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const len = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    // Math.trunc as C's (int) cast, like the reference.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = f((x + xmin - center + 0.5) * ss);
      weights[xx * ksize + x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) weights[xx * ksize + x] = ww !== 0 ? weights[xx * ksize + x] / ww : 0;
    start[xx] = xmin;
    len[xx] = xmax;
  }
  return { start, len, weights, ksize };
}

interface Coeffs {
  /** First input index of each output's window. */
  start: Int32Array;
  /** Window length of each output. */
  len: Int32Array;
  /** Fixed-point weights, `ksize` per output. */
  k: Int32Array;
  ksize: number;
}

const coeffCache = new Map<string, Coeffs>();

/** Pillow's precompute_coeffs for the input span [in0, in1) mapped onto outSize pixels. */
function coeffs(inSize: number, in0: number, in1: number, outSize: number, kind: Interpolation): Coeffs {
  const key = `${inSize}|${in0}|${in1}|${outSize}|${kind}`;
  const hit = coeffCache.get(key);
  if (hit) return hit;
  const { start, len, weights, ksize } = filterWindows(inSize, in0, in1, outSize, kind);
  // Pillow's normalize_coeffs_8bpc: round half away from zero into fixed point.
  const k = Int32Array.from(weights, (v) => (v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS))));
  const c = { start, len, k, ksize };
  if (coeffCache.size > 256) coeffCache.clear();
  coeffCache.set(key, c);
  return c;
}

const clip8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : v);

/**
 * Resizes the box (x0,y0,x1,y1) of a [H,W,C] uint8 image to [outH,outW,C].
 * Equivalent to Pillow's `img.resize((outW,outH), filter, box=(x0,y0,x1,y1))` on integer boxes.
 */
export function resizeBox(
  src: Uint8Array, h: number, w: number, c: number,
  box: [number, number, number, number], outH: number, outW: number, kind: Interpolation,
): Uint8Array {
  const [x0, y0, x1, y1] = box;
  const half = 1 << (PRECISION_BITS - 1);
  // Horizontal pass over the rows the vertical pass needs (all of them when heights match).
  const needH = !(x0 === 0 && x1 === w && outW === w);
  const needV = !(y0 === 0 && y1 === h && outH === h);
  let rows0 = 0, rows1 = h;
  let cv: Coeffs | undefined;
  if (needV) {
    cv = coeffs(h, y0, y1, outH, kind);
    rows0 = cv.start[0];
    rows1 = cv.start[outH - 1] + cv.len[outH - 1];
  } else {
    rows0 = y0; rows1 = y1;
  }
  const midH = rows1 - rows0;
  let mid: Uint8Array;
  let midW: number;
  if (needH) {
    const ch = coeffs(w, x0, x1, outW, kind);
    midW = outW;
    mid = new Uint8Array(midH * outW * c);
    for (let y = 0; y < midH; y++) {
      const rowIn = (y + rows0) * w * c;
      const rowOut = y * outW * c;
      for (let xx = 0; xx < outW; xx++) {
        const s = ch.start[xx], n = ch.len[xx], kb = xx * ch.ksize;
        for (let ci = 0; ci < c; ci++) {
          let acc = half;
          for (let x = 0; x < n; x++) acc += src[rowIn + (s + x) * c + ci] * ch.k[kb + x];
          mid[rowOut + xx * c + ci] = clip8(acc >> PRECISION_BITS);
        }
      }
    }
  } else {
    midW = x1 - x0;
    mid = new Uint8Array(midH * midW * c);
    for (let y = 0; y < midH; y++) mid.set(src.subarray(((y + rows0) * w + x0) * c, ((y + rows0) * w + x1) * c), y * midW * c);
  }
  if (!needV) return mid;
  const out = new Uint8Array(outH * midW * c);
  const rowLen = midW * c;
  for (let yy = 0; yy < outH; yy++) {
    const s = cv!.start[yy] - rows0, n = cv!.len[yy], kb = yy * cv!.ksize;
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) {
      let acc = half;
      for (let y = 0; y < n; y++) acc += mid[(s + y) * rowLen + i] * cv!.k[kb + y];
      out[o + i] = clip8(acc >> PRECISION_BITS);
    }
  }
  return out;
}

/** Resizes a whole [H,W,C] image. */
export function resize(src: Uint8Array, h: number, w: number, c: number, outH: number, outW: number, kind: Interpolation): Uint8Array {
  return resizeBox(src, h, w, c, [0, 0, w, h], outH, outW, kind);
}
