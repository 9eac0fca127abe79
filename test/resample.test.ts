/**
 * PIL-exact bicubic and bilinear resizing (src/image/resample.ts) and the paths of CLIP preprocessing that
 * use it (bicubic enlargements, every bilinear resize). Three independent references: values computed by hand, Pillow's own output (SHA-256 of its
 * bytes, test/fixtures/pil-resize.json from scripts/pil-resize-fixtures.py), and a double-precision
 * computation of Pillow's formula written below in this file's own terms.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { bicubicKernel, bilinearKernel, resizePil } from "../src/image/resample.js";
import type { PilFilter } from "../src/model/preprocessor-config.js";
import { DEFAULT_MAX_PIXELS, preprocessImage } from "../src/image/preprocess.js";
import { parsePreprocessorConfig } from "../src/model/preprocessor-config.js";
import { noiseRgb } from "./support/noise.js";
import { repoRoot } from "./support/shared.js";

// OpenAI CLIP normalisation, typed in from clip/clip.py::_transform.
const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];
const S = 224;
const CLIP = parsePreprocessorConfig({ size: S, crop_size: S }, "test-config");
const NO_EXIF = { exifRotate: false, maxPixels: DEFAULT_MAX_PIXELS };

test("the bicubic kernel is Catmull-Rom (a = −0.5): hand values", () => {
  // 1.5|d|³ − 2.5|d|² + 1 inside 1, −0.5|d|³ + 2.5|d|² − 4|d| + 2 from 1 to 2, by hand:
  const cases: [number, number][] = [
    [0, 1],
    [0.25, 0.8671875],
    [-0.5, 0.5625],
    [0.75, 0.2265625],
    [1, 0],
    [1.25, -0.0703125],
    [-1.5, -0.0625],
    [1.75, -0.0234375],
    [2, 0],
    [3, 0],
  ];
  for (const [x, want] of cases) assert.ok(bicubicKernel(x) === want, `k(${x}) = ${bicubicKernel(x)}, want ${want}`); // === : −0 is 0
});

test("an enlargement drops taps beyond the border and renormalises (hand-computed, and what Pillow gives)", () => {
  // [100, 200] → 4 pixels: centres at 0.25, 0.75, 1.25, 1.75. Output 0 has taps k(0.25) = 0.8671875 on
  // pixel 0 and k(1.25) = −0.0703125 on pixel 1; pixels −1 and −2 do not exist and their weights are
  // dropped, so 100·0.8671875/0.796875 + 200·(−0.0703125)/0.796875 = 91.18 → 91 (extending the border
  // would give 93). Output 1: (100·0.8671875 + 200·0.2265625)/1.09375 = 120.71 → 121. Pillow 9.4 gives
  // [91, 121, 179, 209] for both orientations.
  const row = resizePil(Uint8Array.of(100, 200), 2, 1, 1, 4, 1, { left: 0, top: 0, width: 4, height: 1 });
  assert.deepEqual([...row], [91, 121, 179, 209]);
  const column = resizePil(Uint8Array.of(100, 200), 1, 2, 1, 1, 4, { left: 0, top: 0, width: 1, height: 4 });
  assert.deepEqual([...column], [91, 121, 179, 209]);
  // A window returns just its part of the same result.
  assert.deepEqual([...resizePil(Uint8Array.of(100, 200), 2, 1, 1, 4, 1, { left: 1, top: 0, width: 2, height: 1 })], [121, 179]);
});

test("a constant image stays constant, and an unchanged size is a plain crop", () => {
  const grey = new Uint8Array(7 * 5 * 3).fill(77);
  const out = resizePil(grey, 7, 5, 3, 300, 224, { left: 38, top: 0, width: 224, height: 224 });
  assert.ok(out.every((v) => v === 77), "constant image changed");
  const src = noiseRgb(6, 4, 3);
  const crop = resizePil(src, 6, 4, 3, 6, 4, { left: 1, top: 2, width: 3, height: 2 });
  assert.deepEqual([...crop], [...src.subarray((2 * 6 + 1) * 3, (2 * 6 + 4) * 3), ...src.subarray((3 * 6 + 1) * 3, (3 * 6 + 4) * 3)]);
});

test("bad sizes and windows are refused", () => {
  assert.throws(() => resizePil(new Uint8Array(5), 2, 1, 3, 4, 4, { left: 0, top: 0, width: 4, height: 4 }), /expected 2×1×3 bytes/);
  assert.throws(() => resizePil(new Uint8Array(6), 2, 1, 3, 4, 4, { left: 1, top: 0, width: 4, height: 4 }), /outside the 4×4 output/);
});

interface PilCase {
  width: number;
  height: number;
  seed: number;
  resized: [number, number];
  window: [number, number, number, number];
  sha256: string;
  /** Absent for bicubic. */
  filter?: PilFilter;
}

const pilCases = async () =>
  JSON.parse(await readFile(path.join(repoRoot, "test", "fixtures", "pil-resize.json"), "utf8")) as { source: string; cases: PilCase[] };

test("the bilinear kernel is the triangle 1 − |x|: hand values", () => {
  for (const [x, want] of [[0, 1], [0.25, 0.75], [-0.5, 0.5], [1, 0], [1.5, 0]] as const) assert.ok(bilinearKernel(x) === want, `k(${x}) = ${bilinearKernel(x)}, want ${want}`);
  // [100, 200] → 4 pixels: output 0 centred at 0.25 takes pixel 0 alone (pixel −1 does not exist), output 1
  // at 0.75 takes 0.75·100 + 0.25·200 = 125; by hand, and what Pillow 9.4 gives.
  assert.deepEqual([...resizePil(Uint8Array.of(100, 200), 2, 1, 1, 4, 1, { left: 0, top: 0, width: 4, height: 1 }, "bilinear")], [100, 125, 175, 200]);
});

test("bit for bit what Pillow's BICUBIC and BILINEAR resizes give (enlarging 1.01× to 224×, shrinking, mixed axes)", async () => {
  const fixtures = await pilCases();
  assert.ok(fixtures.cases.length >= 10, "too few Pillow cases");
  assert.ok(fixtures.cases.filter((c) => c.filter === "bilinear").length >= 5, "too few bilinear cases");
  for (const c of fixtures.cases) {
    const [outW, outH] = c.resized;
    const [left, top, width, height] = c.window;
    const out = resizePil(noiseRgb(c.width, c.height, c.seed), c.width, c.height, 3, outW, outH, { left, top, width, height }, c.filter);
    const digest = createHash("sha256").update(out).digest("hex");
    assert.equal(digest, c.sha256, `${c.filter ?? "bicubic"} ${c.width}×${c.height} → ${outW}×${outH}: differs from ${fixtures.source}`);
  }
});

test("SigLIP's and MobileCLIP's preprocessing give Pillow's bytes (resample 3 to a fixed size, resample 2 shrinking and enlarging)", async () => {
  // Bicubic cases resized straight to 224×224 (SigLIP's `size {height, width}`, no crop) with an axis that
  // grows take the PIL port, as every bilinear resize does: both must match Pillow to the byte.
  const cases = (await pilCases()).cases.filter((c) => {
    const [outW, outH] = c.resized;
    const fixedSize = outW === c.window[2] && outH === c.window[3];
    return c.filter === "bilinear" || (fixedSize && (outW > c.width || outH > c.height));
  });
  assert.ok(cases.some((c) => c.filter === undefined), "a SigLIP-style bicubic case");
  for (const c of cases) {
    const [outW, outH] = c.resized;
    const size = c.window[2];
    const square = outW === outH && outW === size;
    const resample = c.filter === "bilinear" ? 2 : 3;
    // No rescale and no normalisation: the tensor holds the resized bytes themselves.
    const cfg = parsePreprocessorConfig(
      square
        ? { size: { height: size, width: size }, do_center_crop: false, resample, do_rescale: false, do_normalize: false }
        : { size: { shortest_edge: size }, crop_size: size, resample, do_rescale: false, do_normalize: false },
      "family-config",
    );
    const png = await sharp(noiseRgb(c.width, c.height, c.seed), { raw: { width: c.width, height: c.height, channels: 3 } }).png().toBuffer();
    const chw = await preprocessImage(png, cfg, NO_EXIF, "noise.png");
    const plane = size * size;
    const hwc = Uint8Array.from({ length: 3 * plane }, (_, i) => chw[(i % 3) * plane + Math.floor(i / 3)]!);
    assert.equal(createHash("sha256").update(hwc).digest("hex"), c.sha256, `${c.filter ?? "bicubic"} ${c.width}×${c.height} → ${outW}×${outH}`);
  }
});

// ---------------------------------------------------------------------------------------------------------
// The enlarging path of preprocessImage against Pillow's formula computed here in doubles

/** Keys' cubic convolution kernel with a = −0.5, in its textbook polynomial form. */
function keys(d: number): number {
  const t = Math.abs(d);
  if (t < 1) return 1.5 * t ** 3 - 2.5 * t ** 2 + 1;
  if (t < 2) return -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2;
  return 0;
}

/**
 * Weights of output pixel `i` when an axis grows from `n` to `m` pixels: its centre maps to
 * c = (i + ½)·n/m, every input pixel x with |x + ½ − c| < 2 takes keys(x + ½ − c), and the weights of
 * the pixels that exist are scaled to sum to 1.
 */
function tapsOf(i: number, n: number, m: number): [number, number][] {
  const c = ((i + 0.5) * n) / m;
  const taps: [number, number][] = [];
  for (let x = Math.max(0, Math.floor(c) - 3); x < Math.min(n, Math.ceil(c) + 3); x++) {
    if (Math.abs(x + 0.5 - c) < 2) taps.push([x, keys(x + 0.5 - c)]);
  }
  const sum = taps.reduce((s, [, w]) => s + w, 0);
  return taps.map(([x, w]) => [x, w / sum]);
}

/**
 * CLIP's preprocessing of an enlarged w×h RGB image: rows resized first and stored as 8-bit pixels
 * (Pillow's intermediate image), then columns, rounded to 8 bits again, then the floor centre crop and
 * normalisation.
 */
function referenceTensor(rgb: Uint8Array, w: number, h: number): Float64Array {
  const outW = w <= h ? S : Math.floor((S * w) / h);
  const outH = w <= h ? Math.floor((S * h) / w) : S;
  const left = Math.floor((outW - S) / 2);
  const top = Math.floor((outH - S) / 2);
  const rows = new Uint8Array(h * S * 3);
  for (let X = 0; X < S; X++) {
    const taps = tapsOf(left + X, w, outW);
    for (let y = 0; y < h; y++) {
      for (let c = 0; c < 3; c++) {
        const v = taps.reduce((s, [x, wt]) => s + wt * (rgb[(y * w + x) * 3 + c] as number), 0);
        rows[(y * S + X) * 3 + c] = Math.min(255, Math.max(0, Math.round(v)));
      }
    }
  }
  const out = new Float64Array(3 * S * S);
  for (let Y = 0; Y < S; Y++) {
    const taps = tapsOf(top + Y, h, outH);
    for (let X = 0; X < S; X++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.min(255, Math.max(0, Math.round(taps.reduce((s, [y, wt]) => s + wt * (rows[(y * S + X) * 3 + c] as number), 0))));
        out[c * S * S + Y * S + X] = (v / 255 - (MEAN[c] as number)) / (STD[c] as number);
      }
    }
  }
  return out;
}

test("enlarged images match Pillow's formula: 1×1, 2×3, 223×224, 224×223, 10×500, 500×10, 1.01× and 50×", async (t) => {
  const level = 1 / 255 / Math.min(...STD); // one grey level in normalised units
  const sizes: [number, number][] = [
    [1, 1],
    [2, 3],
    [223, 224],
    [224, 223],
    [10, 500],
    [500, 10],
    [222, 222],
    [5, 4],
    [96, 64],
  ];
  for (const [w, h] of sizes) {
    const rgb = noiseRgb(w, h, w * 1000 + h);
    const png = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
    const got = await preprocessImage(png, CLIP, NO_EXIF, `${w}x${h}.png`);
    const want = referenceTensor(rgb, w, h);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs((got[i] as number) - (want[i] as number));
      sum += d;
      max = Math.max(max, d);
    }
    const mad = sum / want.length;
    t.diagnostic(`${w}×${h}: MAD ${mad.toFixed(5)}, max ${(max / level).toFixed(2)} grey levels`);
    // Pillow's weights are 22-bit fixed point where these are doubles, so a value within a hair of a
    // half level can round the other way: one level, carried through a column weight of at most 1.09
    // (two levels once rounded), and rare — the mean stays far below the 0.005 the issue asks for.
    assert.ok(mad <= 0.001, `${w}×${h}: mean absolute difference ${mad} > 0.001`);
    assert.ok(max <= 2 * level + 1e-6, `${w}×${h}: max difference ${max / level} grey levels`);
  }
});
