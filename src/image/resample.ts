/**
 * PIL's bicubic and bilinear resizes (`Image.resize(size, Image.BICUBIC | Image.BILINEAR)` on 8-bit
 * images), reproduced exactly: the sampling CLIP (bicubic) and MobileCLIP (bilinear) were trained with.
 * libvips' `cubic` kernel lands within a fraction of a grey level of PIL when shrinking, but when enlarging
 * it samples on another grid and handles the borders differently, which cost up to 7 grey levels on
 * average (issue 17). So bicubic enlargements, and every bilinear resize, go through this instead.
 *
 * What PIL does, per axis (libImaging/Resample.c; checked bit for bit against Pillow 9.4 in
 * test/resample.test.ts):
 * - scale = in/out; the kernel (bicubic: Catmull-Rom, a = −0.5, support 2; bilinear: the triangle
 *   1 − |x|, support 1) is widened by max(scale, 1), so it is widened only when shrinking;
 * - output pixel i is centred at (i + 0.5)·scale in input coordinates, and input pixel x contributes
 *   kernel((x + 0.5 − centre) / max(scale, 1));
 * - taps outside the image are dropped and the remaining weights renormalised to sum to 1 (the border is
 *   not extended or mirrored);
 * - weights become fixed-point integers with 22 fractional bits, rounded half away from zero, and each
 *   output is (Σ pixel·weight + 2²¹) >> 22, clamped to 0–255;
 * - the horizontal pass runs first and is stored as 8-bit pixels, then the vertical pass reads it; an axis
 *   whose size does not change is not resampled at all.
 *
 * Only the output pixels of a window (the centre crop) are computed, which PIL's separable passes allow
 * without changing any value: each output depends on its own row and column weights alone.
 */
import type { PilFilter } from "../model/preprocessor-config.js";

const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/** Catmull-Rom with a = −0.5, PIL's bicubic filter. */
export function bicubicKernel(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** The triangle 1 − |x|, PIL's bilinear filter. */
export function bilinearKernel(x: number): number {
  const t = Math.abs(x);
  return t < 1 ? 1 - t : 0;
}

const FILTERS: Record<PilFilter, { kernel: (x: number) => number; support: number }> = {
  bicubic: { kernel: bicubicKernel, support: 2 },
  bilinear: { kernel: bilinearKernel, support: 1 },
};

/** The taps of one axis for a run of output pixels: first input index, tap count and fixed-point weights. */
export interface AxisWeights {
  first: Int32Array;
  count: Int32Array;
  /** `taps` weights per output pixel, the unused ones zero. */
  weights: Float64Array;
  taps: number;
}

/** Weights for output pixels `from` … `from + length − 1` of an axis resized from `inSize` to `outSize`. */
export function axisWeights(inSize: number, outSize: number, from: number, length: number, filter: PilFilter = "bicubic"): AxisWeights {
  const { kernel, support: base } = FILTERS[filter];
  const scale = inSize / outSize;
  const widen = Math.max(scale, 1);
  const support = base * widen;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(length);
  const count = new Int32Array(length);
  const weights = new Float64Array(length * taps);
  const w = new Float64Array(taps);
  for (let j = 0; j < length; j++) {
    const centre = (from + j + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support + 0.5));
    const hi = Math.min(inSize, Math.floor(centre + support + 0.5));
    let sum = 0;
    for (let x = lo; x < hi; x++) {
      const v = kernel((x + 0.5 - centre) / widen);
      w[x - lo] = v;
      sum += v;
    }
    for (let x = lo; x < hi; x++) {
      const v = sum !== 0 ? (w[x - lo] as number) / sum : (w[x - lo] as number);
      // C's (int)(v·2²² ± 0.5): rounding half away from zero.
      weights[j * taps + (x - lo)] = Math.trunc(v < 0 ? v * ONE - 0.5 : v * ONE + 0.5);
    }
    first[j] = lo;
    count[j] = hi - lo;
  }
  return { first, count, weights, taps };
}

function clamp8(acc: number): number {
  const v = Math.floor(acc / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** A window of the output image: the only pixels computed. */
export interface Window {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Resizes an interleaved 8-bit image (`channels` per pixel) from `width`×`height` to `outWidth`×`outHeight`
 * as PIL's BICUBIC or BILINEAR does, returning only `window` of the result (interleaved, same channels). Pure.
 */
export function resizePil(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  window: Window,
  filter: PilFilter = "bicubic",
): Uint8Array {
  const { left, top, width: ww, height: wh } = window;
  if (src.length !== width * height * channels) throw new RangeError(`expected ${width}×${height}×${channels} bytes, got ${src.length}`);
  if (left < 0 || top < 0 || ww <= 0 || wh <= 0 || left + ww > outWidth || top + wh > outHeight) {
    throw new RangeError(`window ${ww}×${wh} at (${left}, ${top}) is outside the ${outWidth}×${outHeight} output`);
  }
  const resizeX = outWidth !== width;
  const resizeY = outHeight !== height;
  const vertical = resizeY ? axisWeights(height, outHeight, top, wh, filter) : undefined;

  // Rows of the source the vertical pass reads (all of them for the window's rows when it is skipped).
  const rowFirst = vertical ? (vertical.first[0] as number) : top;
  const rowEnd = vertical ? (vertical.first[wh - 1] as number) + (vertical.count[wh - 1] as number) : top + wh;
  const rows = rowEnd - rowFirst;

  // Horizontal pass into 8-bit rows (PIL keeps the intermediate image in the image's own mode).
  const mid = new Uint8Array(rows * ww * channels);
  if (resizeX) {
    const h = axisWeights(width, outWidth, left, ww, filter);
    if (channels === 3) horizontalRgb(src, width, rowFirst, rows, h, ww, mid);
    else {
      const acc = new Float64Array(channels);
      for (let r = 0; r < rows; r++) {
        const rowStart = (rowFirst + r) * width;
        for (let j = 0; j < ww; j++) {
          const n = h.count[j] as number;
          const k = j * h.taps;
          let p = (rowStart + (h.first[j] as number)) * channels;
          acc.fill(HALF);
          for (let t = 0; t < n; t++) {
            const wt = h.weights[k + t] as number;
            for (let c = 0; c < channels; c++, p++) acc[c] = (acc[c] as number) + (src[p] as number) * wt;
          }
          const o = (r * ww + j) * channels;
          for (let c = 0; c < channels; c++) mid[o + c] = clamp8(acc[c] as number);
        }
      }
    }
  } else {
    for (let r = 0; r < rows; r++) {
      const start = ((rowFirst + r) * width + left) * channels;
      mid.set(src.subarray(start, start + ww * channels), r * ww * channels);
    }
  }
  if (!vertical) return mid;

  const out = new Uint8Array(wh * ww * channels);
  const stride = ww * channels;
  // Row by row, so that both the input rows and the accumulators are read in memory order.
  const acc = new Float64Array(stride);
  for (let i = 0; i < wh; i++) {
    const lo = (vertical.first[i] as number) - rowFirst;
    const n = vertical.count[i] as number;
    const k = i * vertical.taps;
    acc.fill(HALF);
    for (let t = 0; t < n; t++) {
      const wt = vertical.weights[k + t] as number;
      const row = (lo + t) * stride;
      for (let s = 0; s < stride; s++) acc[s] = (acc[s] as number) + (mid[row + s] as number) * wt;
    }
    for (let s = 0; s < stride; s++) out[i * stride + s] = clamp8(acc[s] as number);
  }
  return out;
}

/**
 * The horizontal pass for RGB, the case every photo takes, with the three accumulators in locals: the
 * same sums in the same order as the general loop (so the same bytes), about twice as fast, because the
 * general loop's accumulator array and channel loop dominate when there are only three channels.
 */
function horizontalRgb(src: Uint8Array, width: number, rowFirst: number, rows: number, h: AxisWeights, ww: number, mid: Uint8Array): void {
  const { first, count, weights, taps } = h;
  for (let r = 0; r < rows; r++) {
    const rowStart = (rowFirst + r) * width;
    for (let j = 0; j < ww; j++) {
      const n = count[j] as number;
      const k = j * taps;
      let p = (rowStart + (first[j] as number)) * 3;
      let a0 = HALF;
      let a1 = HALF;
      let a2 = HALF;
      for (let t = 0; t < n; t++, p += 3) {
        const wt = weights[k + t] as number;
        a0 += (src[p] as number) * wt;
        a1 += (src[p + 1] as number) * wt;
        a2 += (src[p + 2] as number) * wt;
      }
      const o = (r * ww + j) * 3;
      mid[o] = clamp8(a0);
      mid[o + 1] = clamp8(a1);
      mid[o + 2] = clamp8(a2);
    }
  }
}
