// Image decoding with sharp: any JPEG/PNG/WebP/... to RGB uint8 HWC. Grayscale is expanded to
// three channels, CMYK converted to sRGB, alpha dropped (like PIL's `convert("RGB")`, no
// compositing); EXIF orientation is ignored, as PIL and torchvision do.
import sharp from "sharp";
import { Interpolation, resize } from "./resample";
import { pyRound } from "./transforms";

export interface DecodedImage {
  data: Uint8Array;
  height: number;
  width: number;
}

/** How decoded images are brought to the cache's fixed size. */
export interface DecodeSize {
  /** Output is size x size. */
  size: number;
  /** "fill": resize to size x size; "shorter-center-crop": shorter side -> size, centre crop. */
  fit: "fill" | "shorter-center-crop";
  interpolation: Interpolation;
}

sharp.concurrency(1); // the cache builder runs several decodes at once instead

/** Decodes an encoded image to RGB uint8 [H,W,3]; `what` names it in errors. */
export async function decodeImage(bytes: Uint8Array, what: string): Promise<DecodedImage> {
  try {
    const { data, info } = await sharp(bytes, { failOn: "error" }).toColourspace("srgb").removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const { width, height, channels } = info;
    if (channels === 3) return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), height, width };
    const rgb = new Uint8Array(height * width * 3);
    for (let i = 0; i < height * width; i++) {
      const v = data[i * channels];
      rgb[i * 3] = v; rgb[i * 3 + 1] = channels >= 2 ? data[i * channels + 1] : v; rgb[i * 3 + 2] = channels >= 3 ? data[i * channels + 2] : v;
    }
    return { data: rgb, height, width };
  } catch (e) {
    throw new Error(`${what}: cannot decode image (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** Brings a decoded image to size x size (no-op when it already is). */
export function fitImage(img: DecodedImage, to: DecodeSize): Uint8Array {
  const { data, height: h, width: w } = img;
  const s = to.size;
  if (h === s && w === s) return data;
  if (to.fit === "fill") return resize(data, h, w, 3, s, s, to.interpolation);
  const [rh, rw] = h <= w ? [s, Math.trunc((s * w) / h)] : [Math.trunc((s * h) / w), s];
  const r = rh === h && rw === w ? data : resize(data, h, w, 3, rh, rw, to.interpolation);
  const y0 = pyRound((rh - s) / 2), x0 = pyRound((rw - s) / 2); // torchvision CenterCrop
  const out = new Uint8Array(s * s * 3);
  for (let y = 0; y < s; y++) out.set(r.subarray(((y + y0) * rw + x0) * 3, ((y + y0) * rw + x0 + s) * 3), y * s * 3);
  return out;
}
