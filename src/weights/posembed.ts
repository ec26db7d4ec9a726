// Resizing the learned position embedding when the image (grid) size changes, as timm's
// `resample_abs_pos_embed`: prefix tokens (CLS) kept, the grid part resized with
// F.interpolate(mode="bicubic", align_corners=False, antialias=True).
//
// What antialias=True means in PyTorch (aten `_upsample_bicubic2d_aa`, ported from Pillow's
// resampler), and what we implement:
//   - the kernel is Pillow's cubic with a = -0.5 (not the -0.75 of the plain bicubic path);
//   - scale = in/out; support = 2*scale when downsampling (the kernel is stretched: a low-pass
//     filter), 2 when upsampling; output i is centred at scale*(i+0.5) in input coordinates;
//   - taps outside the input are dropped and the remaining weights renormalised to sum to 1
//     (no edge replication), for up- and downsampling alike.
// So even upsampling differs from antialias=False. `antialias: false` gives PyTorch's plain
// bicubic instead (a = -0.75, source x = scale*(i+0.5)-0.5, edge indices clamped).
// The arithmetic is in float64 on the host and rounded to float32 once: identical on every backend.
import { HostTensor } from "./safetensors";
import { filterWindows, keysCubic } from "../data/resample";

export interface ResizeOptions {
  /** Tokens before the grid that are kept as they are (1 for a CLS token). Default 1. */
  numPrefix?: number;
  /** Source grid [h, w]; default: square from the token count. */
  oldGrid?: [number, number];
  /** timm default true (see above). */
  antialias?: boolean;
}

/** Weights of one axis: for each output index, the first input index and the tap weights. */
export function axisWeights(inSize: number, outSize: number, antialias: boolean): { start: number; w: number[] }[] {
  const scale = inSize / outSize;
  const aa = filterWindows(inSize, 0, inSize, outSize, "bicubic");
  const out: { start: number; w: number[] }[] = [];
  for (let i = 0; i < outSize; i++) {
    if (antialias) {
      // Pillow's windows and weights (the data layer's resampler computes the same).
      const at = i * aa.ksize;
      out.push({ start: aa.start[i], w: Array.from(aa.weights.subarray(at, at + aa.len[i])) });
    } else {
      // Taps at x0-1..x0+2 with indices clamped: accumulate clamped taps into a dense window.
      const real = scale * (i + 0.5) - 0.5;
      const x0 = Math.floor(real);
      const t = real - x0;
      const taps = [keysCubic(1 + t, -0.75), keysCubic(t, -0.75), keysCubic(1 - t, -0.75), keysCubic(2 - t, -0.75)];
      const w = new Array<number>(inSize).fill(0);
      taps.forEach((v, k) => {
        w[Math.min(Math.max(x0 - 1 + k, 0), inSize - 1)] += v;
      });
      let s = 0;
      while (s < inSize - 1 && w[s] === 0) s++;
      let e = inSize;
      while (e > s + 1 && w[e - 1] === 0) e--;
      out.push({ start: s, w: w.slice(s, e) });
    }
  }
  return out;
}

/**
 * Resizes a grid [h, w, D] (row-major, channels last) to [H, W, D]: separable, rows then columns.
 * Returns float64 values (rounded by the caller).
 */
export function resizeGrid(data: ArrayLike<number>, h: number, w: number, d: number, H: number, W: number, antialias = true): Float64Array {
  const wy = axisWeights(h, H, antialias);
  const wx = axisWeights(w, W, antialias);
  // Horizontal pass: [h, W, D].
  const tmp = new Float64Array(h * W * d);
  for (let y = 0; y < h; y++) {
    for (let X = 0; X < W; X++) {
      const { start, w: taps } = wx[X];
      const o = (y * W + X) * d;
      for (let k = 0; k < taps.length; k++) {
        const src = (y * w + start + k) * d;
        const c = taps[k];
        for (let ch = 0; ch < d; ch++) tmp[o + ch] += c * data[src + ch];
      }
    }
  }
  const out = new Float64Array(H * W * d);
  for (let Y = 0; Y < H; Y++) {
    const { start, w: taps } = wy[Y];
    for (let X = 0; X < W; X++) {
      const o = (Y * W + X) * d;
      for (let k = 0; k < taps.length; k++) {
        const src = ((start + k) * W + X) * d;
        const c = taps[k];
        for (let ch = 0; ch < d; ch++) out[o + ch] += c * tmp[src + ch];
      }
    }
  }
  return out;
}

/**
 * pos_embed [1, prefix + h*w, D] -> [1, prefix + H*W, D] for the grid `newGrid` [H, W].
 * Same size: a copy (timm returns the input unchanged).
 */
export function resamplePosEmbed(pe: HostTensor, newGrid: [number, number], opts: ResizeOptions = {}): HostTensor {
  const numPrefix = opts.numPrefix ?? 1;
  if (pe.shape.length !== 3 || pe.shape[0] !== 1) throw new Error(`pos_embed must be [1, N, D], got [${pe.shape.join(", ")}]`);
  const [, n, d] = pe.shape;
  const old = opts.oldGrid ?? [Math.round(Math.sqrt(n - numPrefix)), Math.round(Math.sqrt(n - numPrefix))];
  if (old[0] * old[1] !== n - numPrefix) {
    throw new Error(`pos_embed has ${n} tokens: not ${numPrefix} prefix token(s) plus a ${old[0]}x${old[1]} grid`);
  }
  const [H, W] = newGrid;
  if (!(Number.isInteger(H) && Number.isInteger(W) && H > 0 && W > 0)) throw new Error(`new grid [${H}, ${W}] must be positive integers`);
  const src = Float32Array.from(pe.data);
  if (H === old[0] && W === old[1]) return { dtype: "float32", shape: [...pe.shape], data: src };
  const grid = resizeGrid(src.subarray(numPrefix * d), old[0], old[1], d, H, W, opts.antialias ?? true);
  const out = new Float32Array((numPrefix + H * W) * d);
  out.set(src.subarray(0, numPrefix * d));
  out.set(grid, numPrefix * d); // Float64 -> Float32: one rounding
  return { dtype: "float32", shape: [1, numPrefix + H * W, d], data: out };
}
