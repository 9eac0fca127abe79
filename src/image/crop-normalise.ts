/**
 * The pure steps of CLIP's preprocessing, after the pixels are decoded and resized: the size the resize
 * makes, transformers' centre crop (with its zero padding), and the normalised bytes (through the
 * config's table, model/preprocessor-config.ts) written into a C×H×W float32 tensor. preprocess.ts drives them; they stay apart from it so that they can be checked
 * without an image decoder.
 */
import type { PreprocessConfig } from "../model/preprocessor-config.js";

/**
 * Size after the resize step. Shortest edge: short side → `shortestEdge`, long side → floor(edge·long/short),
 * the `int()` truncation of transformers and torchvision.
 */
export function resizedSize(width: number, height: number, cfg: PreprocessConfig): { width: number; height: number } {
  if (!cfg.doResize) return { width, height };
  if (cfg.resizeTo) return { width: cfg.resizeTo.width, height: cfg.resizeTo.height };
  const s = cfg.shortestEdge;
  return width <= height
    ? { width: s, height: Math.floor((s * height) / width) }
    : { width: Math.floor((s * width) / height), height: s };
}

/** One axis of a centre crop: which source span is kept and where it lands in the output. */
export interface CropAxis {
  /** First source pixel kept. */
  from: number;
  /** Number of source pixels kept. */
  length: number;
  /** Offset of the kept span in the output; non-zero only when the source is smaller than the crop. */
  to: number;
}

/**
 * transformers' `center_crop`: offset floor((size − crop)/2) when the image is large enough, otherwise the image
 * is zero-padded and placed at ceil((crop − size)/2).
 */
export function centreCropAxis(size: number, crop: number): CropAxis {
  if (size >= crop) return { from: Math.floor((size - crop) / 2), length: crop, to: 0 };
  return { from: 0, length: size, to: Math.ceil((crop - size) / 2) };
}

/**
 * Writes an interleaved RGB block (`width`×`height`) into a C×`outHeight`×`outWidth` tensor at (`left`, `top`);
 * the rest of the tensor holds the value of a zero byte, the padding transformers uses.
 */
export function rgbToChw(
  rgb: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  left: number,
  top: number,
  table: Float32Array,
): Float32Array {
  const plane = outWidth * outHeight;
  const out = new Float32Array(3 * plane);
  if (width !== outWidth || height !== outHeight) {
    for (let c = 0; c < 3; c++) out.fill(table[c * 256] as number, c * plane, (c + 1) * plane);
  }
  let src = 0;
  for (let y = 0; y < height; y++) {
    let dst = (top + y) * outWidth + left;
    for (let x = 0; x < width; x++, src += 3, dst++) {
      out[dst] = table[rgb[src] as number] as number;
      out[dst + plane] = table[256 + (rgb[src + 1] as number)] as number;
      out[dst + 2 * plane] = table[512 + (rgb[src + 2] as number)] as number;
    }
  }
  return out;
}
