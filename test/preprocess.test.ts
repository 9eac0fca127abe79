import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import sharp from "sharp";
import type { Sharp } from "sharp";
import { centreCropAxis, resizedSize } from "../src/image/crop-normalise.js";
import { DEFAULT_MAX_PIXELS, preprocessImage } from "../src/image/preprocess.js";
import type { ImageOptions } from "../src/image/preprocess.js";
import { parsePreprocessorConfig } from "../src/model/preprocessor-config.js";
import type { PreprocessConfig } from "../src/model/preprocessor-config.js";
import { ClipOodError } from "../src/errors.js";
import { decodeNpy } from "../src/io/npy.js";
import { crc32, pngChunk } from "./support/bad-images.js";
import { noiseRgb } from "./support/noise.js";
import { sharedDir, skipUnlessShared } from "./support/shared.js";

// OpenAI CLIP normalisation, typed in from clip/clip.py::_transform (not imported from the module under test).
const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];
/** The normalised value of byte `v` in channel `c`, computed by hand: ToTensor then Normalize. */
const norm = (v: number, c: number): number => (v / 255 - (MEAN[c] as number)) / (STD[c] as number);
/** One grey level in normalised units for channel c (the largest, channel 1, is about 0.015). */
const LEVEL = 1 / 255 / Math.min(...STD);

const S = 224;
const PLANE = S * S;
const NO_EXIF: ImageOptions = { exifRotate: false, maxPixels: DEFAULT_MAX_PIXELS };
const CLIP = parsePreprocessorConfig({ size: 224, crop_size: 224 }, "test-config");

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "clip-ood-preprocess-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function save(name: string, data: Buffer): Promise<string> {
  const file = path.join(tmp, name);
  await writeFile(file, data);
  return file;
}

function solid(width: number, height: number, r: number, g: number, b: number, alpha?: number): Sharp {
  const channels = alpha === undefined ? 3 : 4;
  return sharp({ create: { width, height, channels, background: { r, g, b, alpha: alpha ?? 1 } } });
}

/** Deterministic noise, so that crops, flips and transposes are visible in the tensor. */
function noise(width: number, height: number, seed = 1): Sharp {
  return sharp(noiseRgb(width, height, seed), { raw: { width, height, channels: 3 } });
}

/** Largest |tensor − expected| over the whole tensor, where expected depends on channel only. */
function maxDeviation(t: Float32Array, perChannel: readonly number[], plane = PLANE): number {
  let worst = 0;
  for (let c = 0; c < 3; c++) {
    const want = perChannel[c] as number;
    for (let i = c * plane; i < (c + 1) * plane; i++) worst = Math.max(worst, Math.abs((t[i] as number) - want));
  }
  return worst;
}

const handRgb = (r: number, g: number, b: number): number[] => [norm(r, 0), norm(g, 1), norm(b, 2)];

/** Index of the first element where two tensors differ, −1 if none (cheaper to report than a deepEqual diff). */
function firstDifference(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}

// Every assert.ok in these tests carries a message: without one, node's assert re-parses the (tsx-compiled,
// single-line) source to describe the failure, which takes minutes.
function assertUniform(t: Float32Array, perChannel: readonly number[], tolerance: number, what = ""): void {
  const dev = maxDeviation(t, perChannel);
  assert.ok(dev <= tolerance, `${what} max deviation ${dev} > ${tolerance}`);
}

// ---------------------------------------------------------------------------------------------------------
// parsePreprocessorConfig

test("parses the shared CLIP preprocessor_config.json (dict forms)", { skip: skipUnlessShared }, async () => {
  const file = path.join(sharedDir as string, "clip-vit-base-patch32", "preprocessor_config.json");
  const cfg = parsePreprocessorConfig(JSON.parse(await readFile(file, "utf8")), file);
  assert.deepEqual(cfg, {
    shortestEdge: 224,
    cropHeight: 224,
    cropWidth: 224,
    mean: MEAN,
    std: STD,
    rescaleFactor: 0.00392156862745098,
    doResize: true,
    doCenterCrop: true,
    doNormalize: true,
    doRescale: true,
    resample: "bicubic",
  });
});

test("integer and dict forms of size / crop_size parse the same", () => {
  const intForm = parsePreprocessorConfig({ size: 224, crop_size: 224, image_mean: MEAN, image_std: STD }, "a");
  const dictForm = parsePreprocessorConfig(
    { size: { shortest_edge: 224 }, crop_size: { height: 224, width: 224 }, image_mean: MEAN, image_std: STD },
    "b",
  );
  assert.deepEqual(intForm, dictForm);
});

test("missing fields take CLIPImageProcessor's defaults", () => {
  const cfg = parsePreprocessorConfig({}, "empty");
  assert.equal(cfg.shortestEdge, 224);
  assert.equal(cfg.cropHeight, 224);
  assert.equal(cfg.cropWidth, 224);
  assert.deepEqual(cfg.mean, MEAN);
  assert.deepEqual(cfg.std, STD);
  assert.equal(cfg.rescaleFactor, 1 / 255);
  assert.deepEqual([cfg.doResize, cfg.doCenterCrop, cfg.doNormalize, cfg.doRescale], [true, true, true, true]);
  assert.equal(cfg.resample, "bicubic", "CLIPImageProcessor's default resample is 3, bicubic");
  assert.equal(cfg.resizeTo, undefined);
  // crop_size defaults to the shortest edge when only size is given
  const only = parsePreprocessorConfig({ size: { shortest_edge: 336 } }, "only-size");
  assert.deepEqual([only.shortestEdge, only.cropHeight, only.cropWidth], [336, 336, 336]);
});

test("SigLIP-style {height, width} size without a crop resizes to that size", () => {
  const cfg = parsePreprocessorConfig(
    { size: { height: 256, width: 192 }, do_center_crop: false, image_mean: 0.5, image_std: [0.5, 0.5, 0.5], resample: 2 },
    "siglip",
  );
  assert.deepEqual(cfg.resizeTo, { height: 256, width: 192 });
  assert.deepEqual([cfg.cropHeight, cfg.cropWidth], [256, 192]);
  assert.deepEqual(cfg.mean, [0.5, 0.5, 0.5]);
  assert.deepEqual(resizedSize(1000, 10, cfg), { width: 192, height: 256 });
  assert.equal(cfg.resample, "bilinear", "resample 2 is PIL's BILINEAR");
});

test("malformed configs are MODEL_FOLDER errors naming the source", () => {
  const bad: [unknown, RegExp][] = [
    [null, /JSON object/],
    [[224], /JSON object/],
    [{ size: "224" }, /size must be/],
    [{ size: 0 }, /size must be a positive integer/],
    [{ size: 22.5 }, /size must be a positive integer/],
    [{ size: { longest: 3 } }, /size must have shortest_edge/],
    [{ size: { shortest_edge: 224, longest_edge: 400 } }, /longest_edge/],
    [{ resample: 1 }, /resample 1 is not supported/],
    [{ resample: "bicubic" }, /resample "bicubic" is not supported/],
    [{ crop_size: { height: 224 } }, /crop_size\.width/],
    [{ crop_size: [224, 224] }, /crop_size must be/],
    [{ image_mean: [0.5, 0.5] }, /image_mean must be three numbers/],
    [{ image_std: [0.5, 0, 0.5] }, /image_std must be three positive numbers/],
    [{ rescale_factor: "1/255" }, /rescale_factor/],
    [{ do_resize: "yes" }, /do_resize must be true or false/],
    [{ size: 224, do_center_crop: false }, /do_center_crop is false/],
  ];
  for (const [json, pattern] of bad) {
    assert.throws(
      () => parsePreprocessorConfig(json, "models/x/preprocessor_config.json"),
      (e: unknown) => {
        assert.ok(e instanceof ClipOodError, JSON.stringify(json));
        assert.equal(e.code, "MODEL_FOLDER");
        assert.match(e.message, /^models\/x\/preprocessor_config\.json: /);
        assert.match(e.message, pattern, JSON.stringify(json));
        assert.ok(e.hint, "no hint");
        return true;
      },
    );
  }
});

// ---------------------------------------------------------------------------------------------------------
// Geometry

test("resize keeps the shortest side and truncates the long side", () => {
  // 224·300/199 = 337.69 → 337; 224·640/427 = 335.74 → 335 (Python int(), not round)
  assert.deepEqual(resizedSize(300, 199, CLIP), { width: 337, height: 224 });
  assert.deepEqual(resizedSize(199, 300, CLIP), { width: 224, height: 337 });
  assert.deepEqual(resizedSize(640, 427, CLIP), { width: 335, height: 224 });
  assert.deepEqual(resizedSize(1, 1, CLIP), { width: 224, height: 224 });
});

test("centre crop uses floor offsets and pads small images like transformers", () => {
  assert.deepEqual(centreCropAxis(449, 224), { from: 112, length: 224, to: 0 }); // 225/2 = 112.5 → 112 (Math.round: 113)
  assert.deepEqual(centreCropAxis(224, 224), { from: 0, length: 224, to: 0 });
  assert.deepEqual(centreCropAxis(100, 224), { from: 0, length: 100, to: 62 });
  assert.deepEqual(centreCropAxis(101, 224), { from: 0, length: 101, to: 62 }); // ceil(123/2)
});

// ---------------------------------------------------------------------------------------------------------
// Parity with PIL references

test("matches the PIL bicubic reference tensors (mean absolute difference ≤ 0.01)", { skip: skipUnlessShared }, async (t) => {
  const dir = path.join(sharedDir as string, "reference", "preprocess");
  const cfgFile = path.join(sharedDir as string, "clip-vit-base-patch32", "preprocessor_config.json");
  const cfg = parsePreprocessorConfig(JSON.parse(await readFile(cfgFile, "utf8")), cfgFile);
  const stems = (await readdir(dir)).filter((n) => n.endsWith(".npy")).map((n) => n.slice(0, -4));
  assert.ok(stems.length >= 4, `only ${stems.length} reference tensors`);
  for (const stem of stems.sort()) {
    const image = [".png", ".jpg"].map((ext) => path.join(dir, stem + ext)).find((f) => existsSync(f));
    assert.ok(image, `no image for ${stem}.npy`);
    const ref = decodeNpy(await readFile(path.join(dir, `${stem}.npy`)), `${stem}.npy`);
    assert.deepEqual(ref.shape, [3, cfg.cropHeight, cfg.cropWidth]);
    const got = await preprocessImage(image, cfg, NO_EXIF);
    assert.equal(got.length, ref.data.length);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs((got[i] as number) - (ref.data[i] as number));
      sum += d;
      max = Math.max(max, d);
    }
    const mad = sum / got.length;
    t.diagnostic(`${path.basename(image)}: MAD ${mad.toFixed(5)} (≈ ${((mad * 255 * 0.265)).toFixed(2)} grey levels), max ${max.toFixed(4)}`);
    const { width, height } = await sharp(image).metadata();
    const enlarged = Math.min(width, height) < cfg.shortestEdge;
    await t.test(`${path.basename(image)} (${width}×${height}): MAD ${mad.toFixed(5)}, max ${max.toFixed(4)}`, () => {
      assert.ok(mad <= 0.01, `${stem}: MAD ${mad}`);
      // Enlargements go through a port of PIL's own resampler: the same bytes, so only float32 rounding.
      if (enlarged) assert.ok(max <= 1e-5, `${stem}: enlarged, yet max difference ${max}`);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Synthetic images with values known by hand

test("a solid colour gives the hand-computed normalised values everywhere", async () => {
  const file = await save("solid.png", await solid(300, 200, 200, 10, 50).png().toBuffer());
  const t = await preprocessImage(file, CLIP, NO_EXIF);
  assert.equal(t.length, 3 * PLANE);
  // Catmull-Rom weights sum to 1, so a constant image stays exactly constant; the only error is float32 rounding.
  assertUniform(t, handRgb(200, 10, 50), 1e-6);
});

test("channels are in R, G, B order", async () => {
  const t = await preprocessImage(await solid(64, 64, 255, 0, 0).png().toBuffer(), CLIP, NO_EXIF, "red");
  assertUniform(t, handRgb(255, 0, 0), 1e-6);
  assert.ok((t[0] as number) > 1.5 && (t[PLANE] as number) < -1.5 && (t[2 * PLANE] as number) < -1.4, `first pixel ${t[0]}, ${t[PLANE]}, ${t[2 * PLANE]}`);
});

/** A grey image with marker lines: black just outside the expected crop, white on its first and last line. */
async function markedImage(long: number, horizontal: boolean): Promise<Buffer> {
  const width = horizontal ? long : S;
  const height = horizontal ? S : long;
  const raw = Buffer.alloc(width * height * 3, 128);
  const start = Math.floor((long - S) / 2);
  const marks: [number, number][] = [
    [start - 1, 0],
    [start, 255],
    [start + S - 1, 255],
    [start + S, 0],
  ];
  for (const [line, value] of marks) {
    for (let k = 0; k < S; k++) {
      const px = horizontal ? k * width + line : line * width + k;
      raw.fill(value, px * 3, px * 3 + 3);
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

test("the centre crop takes floor offsets: exactly the marked columns / rows, nothing outside", async () => {
  for (const horizontal of [true, false]) {
    for (const long of [448, 449]) {
      // No resize happens (the short side is already 224), so pixels map one to one.
      const t = await preprocessImage(await markedImage(long, horizontal), CLIP, NO_EXIF, `marked-${long}`);
      for (let k = 0; k < S; k++) {
        for (let c = 0; c < 3; c++) {
          const first = horizontal ? c * PLANE + k * S : c * PLANE + k;
          const last = horizontal ? first + S - 1 : first + (S - 1) * S;
          assert.equal(t[first], Math.fround(norm(255, c)), `first line, long=${long} horizontal=${horizontal}`);
          assert.equal(t[last], Math.fround(norm(255, c)), `last line, long=${long} horizontal=${horizontal}`);
        }
      }
      const black = Math.fround(norm(0, 0));
      assert.ok(!t.subarray(0, PLANE).includes(black), "a black line outside the crop leaked in");
    }
  }
});

test("the long side is truncated (300×199 → 337×224), seen through transformers' padding", async () => {
  // A crop wider than the resized image pads with the value of a zero byte: 340 − 337 = 3 columns,
  // ceil(3/2) = 2 on the left and 1 on the right. Rounding the long side to 338 would give 1 and 1.
  const cfg: PreprocessConfig = { ...CLIP, cropWidth: 340 };
  const t = await preprocessImage(await solid(300, 199, 200, 10, 50).png().toBuffer(), cfg, NO_EXIF, "300x199");
  assert.equal(t.length, 3 * 224 * 340);
  const pad = Math.fround(norm(0, 0));
  const inside = Math.fround(norm(200, 0));
  const row = [...t.subarray(100 * 340, 101 * 340)];
  assert.deepEqual(row.slice(0, 3), [pad, pad, inside]);
  assert.deepEqual(row.slice(-2), [inside, pad]);
  assert.equal(row.filter((v) => v === pad).length, 3);
});

test("alpha is dropped without compositing", async () => {
  const t = await preprocessImage(await solid(300, 200, 10, 20, 30, 0).png().toBuffer(), CLIP, NO_EXIF, "transparent");
  assertUniform(t, handRgb(10, 20, 30), 1e-6);
});

test("a greyscale PNG gives three equal channels", async () => {
  const png = await solid(300, 200, 77, 77, 77).toColourspace("b-w").png().toBuffer();
  assert.equal((await sharp(png).metadata()).channels, 1);
  const t = await preprocessImage(png, CLIP, NO_EXIF, "grey");
  assertUniform(t, handRgb(77, 77, 77), 1e-6);
});

test("a palette PNG decodes to its RGB colours", async () => {
  const png = await solid(300, 200, 77, 100, 200).png({ palette: true }).toBuffer();
  assert.equal((await sharp(png).metadata()).isPalette, true);
  const t = await preprocessImage(png, CLIP, NO_EXIF, "palette");
  assertUniform(t, handRgb(77, 100, 200), LEVEL);
});

test("a 16-bit PNG keeps the high byte, as PIL does", async () => {
  // Hand-written 16-bit RGB PNG with every pixel (40000, 1000, 65535): 40000 >> 8 = 156, 1000 >> 8 = 3.
  const width = 30;
  const height = 20;
  const row = Buffer.alloc(1 + width * 6);
  for (let x = 0; x < width; x++) {
    row.writeUInt16BE(40000, 1 + x * 6);
    row.writeUInt16BE(1000, 3 + x * 6);
    row.writeUInt16BE(65535, 5 + x * 6);
  }
  const png = writePng(width, height, 16, zlib.deflateSync(Buffer.concat(Array.from({ length: height }, () => row))));
  assert.equal((await sharp(png).metadata()).depth, "ushort");
  const t = await preprocessImage(png, CLIP, NO_EXIF, "16bit");
  assertUniform(t, handRgb(156, 3, 255), LEVEL);
});

test("a CMYK JPEG is converted to plausible RGB", async () => {
  const jpg = await solid(300, 200, 200, 10, 50).toColourspace("cmyk").jpeg({ quality: 95 }).toBuffer();
  assert.equal((await sharp(jpg).metadata()).space, "cmyk");
  const t = await preprocessImage(jpg, CLIP, NO_EXIF, "cmyk");
  // CMYK → RGB depends on the profile; within 20 grey levels of the original colour is plausible.
  assertUniform(t, handRgb(200, 10, 50), 20 * LEVEL);
});

test("an animated GIF uses its first frame", async () => {
  const red = await solid(16, 16, 255, 0, 0).raw().toBuffer();
  const blue = await solid(16, 16, 0, 0, 255).raw().toBuffer();
  const gif = await sharp(Buffer.concat([red, blue]), { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } })
    .gif()
    .toBuffer();
  assert.equal((await sharp(gif).metadata()).pages, 2);
  const t = await preprocessImage(await save("anim.gif", gif), CLIP, NO_EXIF);
  assertUniform(t, handRgb(255, 0, 0), LEVEL);
});

test("TIFF, WebP and AVIF decode", async () => {
  const base = solid(300, 200, 200, 10, 50);
  const cases: [string, Buffer, number][] = [
    ["tiff", await base.clone().tiff({ compression: "lzw" }).toBuffer(), 1e-6],
    ["webp", await base.clone().webp({ lossless: true }).toBuffer(), 1e-6],
    // AVIF is lossy YUV: allow a few grey levels.
    ["avif", await base.clone().avif({ quality: 90 }).toBuffer(), 4 * LEVEL],
  ];
  for (const [format, buf, tolerance] of cases) {
    const t = await preprocessImage(await save(`x.${format}`, buf), CLIP, NO_EXIF);
    assertUniform(t, handRgb(200, 10, 50), tolerance, format);
  }
});

test("an embedded ICC profile is not applied (PIL does not colour-manage)", async () => {
  const png = await solid(300, 200, 200, 10, 50).withIccProfile("p3").png().toBuffer();
  const stored = await sharp(png, { ignoreIcc: true }).raw().toBuffer();
  const managed = await sharp(png).raw().toBuffer();
  assert.notDeepEqual([...stored.subarray(0, 3)], [...managed.subarray(0, 3)], "the profile should matter for this test");
  const t = await preprocessImage(png, CLIP, NO_EXIF, "p3");
  assertUniform(t, handRgb(stored[0] as number, stored[1] as number, stored[2] as number), 1e-6);
});

test("EXIF orientation 6 is applied only with exifRotate", async () => {
  // 336×224 stored, shown rotated 90° clockwise as 224×336. No resize is needed either way and both crops start
  // at 56, so the rotated tensor V and the plain one U must satisfy V[y][x] = U[223 − x][y] exactly.
  const jpg = await noise(336, 224).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(jpg).metadata()).orientation, 6);
  const file = await save("rotated.jpg", jpg);
  const u = await preprocessImage(file, CLIP, NO_EXIF);
  const v = await preprocessImage(file, CLIP, { ...NO_EXIF, exifRotate: true });
  let mismatches = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        if (v[c * PLANE + y * S + x] !== u[c * PLANE + (S - 1 - x) * S + y]) mismatches++;
      }
    }
  }
  assert.equal(mismatches, 0);
  assert.ok(firstDifference(u, v) >= 0, "the orientation tag made no difference");
});

test("integer and dict config forms give identical tensors", async () => {
  const png = await noise(300, 199, 7).png().toBuffer();
  const intForm = parsePreprocessorConfig({ size: 224, crop_size: 224 }, "int");
  const dictForm = parsePreprocessorConfig({ size: { shortest_edge: 224 }, crop_size: { height: 224, width: 224 } }, "dict");
  const a = await preprocessImage(png, intForm, NO_EXIF, "a");
  const b = await preprocessImage(png, dictForm, NO_EXIF, "b");
  assert.equal(a.length, b.length);
  assert.equal(firstDifference(a, b), -1);
});

test("a 1×1 image gives a full 224×224 tensor", async () => {
  const t = await preprocessImage(await save("dot.png", await solid(1, 1, 9, 99, 199).png().toBuffer()), CLIP, NO_EXIF);
  assert.equal(t.length, 3 * PLANE);
  assertUniform(t, handRgb(9, 99, 199), 1e-6);
});


// ---------------------------------------------------------------------------------------------------------
// Bad input

/** A PNG from raw IDAT contents, with hand-computed CRCs (zlib.crc32 is not in Node 20). */
function writePng(width: number, height: number, bitDepth: number, idat: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", idat),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

async function assertImageError(promise: Promise<unknown>, label: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof ClipOodError, String(e));
    assert.equal(e.code, "IMAGE");
    assert.ok(e.message.startsWith(`${label}: `), e.message);
    assert.match(e.message, pattern);
    assert.ok(e.hint, "every image error carries a hint");
    return true;
  });
}

// The shared crc32 (test/support/bad-images.ts) signs every hand-built PNG here and in the CLI tests.
test("crc32 matches the PNG IHDR CRC sharp writes", async () => {
  const png = await solid(4, 4, 1, 2, 3).png().toBuffer();
  assert.equal(crc32(png.subarray(12, 29)), png.readUInt32BE(29));
});

test("a truncated JPEG is reported, not decoded grey", async () => {
  const jpg = await noise(640, 480).jpeg({ quality: 90 }).toBuffer();
  const file = await save("truncated.jpg", jpg.subarray(0, jpg.length >> 1));
  await assertImageError(preprocessImage(file, CLIP, NO_EXIF), file, /corrupt or truncated/);
  const png = await noise(640, 480).png().toBuffer();
  const pngFile = await save("truncated.png", png.subarray(0, png.length >> 1));
  await assertImageError(preprocessImage(pngFile, CLIP, NO_EXIF), pngFile, /corrupt or truncated/);
});

test("a zero-byte file is reported as empty", async () => {
  const file = await save("empty.jpg", Buffer.alloc(0));
  await assertImageError(preprocessImage(file, CLIP, NO_EXIF), file, /empty file/);
});

test("a text file named .jpg is not a supported image", async () => {
  const file = await save("notes.jpg", Buffer.from("these are not pixels\n"));
  await assertImageError(preprocessImage(file, CLIP, NO_EXIF), file, /not a supported image \(JPEG, PNG, WebP, GIF, TIFF, AVIF\)/);
  const svg = await save("drawing.svg", Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'));
  await assertImageError(preprocessImage(svg, CLIP, NO_EXIF), svg, /not a supported image.*SVG/);
});

test("a PNG declaring 100000×100000 hits the pixel limit at once, before decoding", async () => {
  // libpng reads chunks up to the first IDAT before it reports the header, so one (empty-stream) IDAT is needed.
  const file = await save("bomb.png", writePng(100000, 100000, 8, zlib.deflateSync(Buffer.alloc(0))));
  const start = performance.now();
  await assertImageError(
    preprocessImage(file, CLIP, NO_EXIF),
    file,
    /100000×100000 = 10000000000 pixels exceeds the limit of 100000000; raise it with --max-pixels/,
  );
  assert.ok(performance.now() - start < 1000, "the limit should fire from the header alone");
  const small = await solid(300, 200, 1, 2, 3).png().toBuffer();
  await assertImageError(preprocessImage(small, CLIP, { ...NO_EXIF, maxPixels: 1000 }, "small.png"), "small.png", /60000 pixels exceeds the limit of 1000/);
});

test("a missing file, a folder and an unreadable file are IMAGE errors naming the path", async (t) => {
  const missing = path.join(tmp, "nope.jpg");
  await assertImageError(preprocessImage(missing, CLIP, NO_EXIF), missing, /no such file/);
  const dir = path.join(tmp, "a-folder.jpg");
  await mkdir(dir);
  await assertImageError(preprocessImage(dir, CLIP, NO_EXIF), dir, /is a folder/);

  const locked = await save("locked.png", await solid(8, 8, 1, 2, 3).png().toBuffer());
  await chmod(locked, 0o000);
  try {
    const readable = await readFile(locked).then(
      () => true,
      () => false,
    );
    // root ignores file modes, so there the permission check cannot be exercised (it runs as any other user).
    if (readable) t.diagnostic("running as root: the permission-denied case was not exercised");
    else await assertImageError(preprocessImage(locked, CLIP, NO_EXIF), locked, /permission denied/);
  } finally {
    await chmod(locked, 0o644);
  }
});

test("a buffer without a label is named <buffer>", async () => {
  await assertImageError(preprocessImage(Buffer.from("nope"), CLIP, NO_EXIF), "<buffer>", /not a supported image/);
});

test("do_resize, do_rescale and do_normalize can be turned off", async () => {
  const png = await solid(300, 200, 200, 10, 50).png().toBuffer();
  // No resize: 300×200 is cropped to 224 wide and padded to 224 high, ceil(24/2) = 12 rows above, 12 below.
  const noResize = await preprocessImage(png, parsePreprocessorConfig({ do_resize: false }, "c"), NO_EXIF, "no-resize");
  const column = Array.from({ length: S }, (_, y) => noResize[y * S + 100]);
  const pad = Math.fround(norm(0, 0));
  assert.equal(column.filter((v) => v === pad).length, 24);
  assert.deepEqual([column[11], column[12], column[211], column[212]], [pad, Math.fround(norm(200, 0)), Math.fround(norm(200, 0)), pad]);

  const rescaleOnly = await preprocessImage(png, parsePreprocessorConfig({ do_normalize: false }, "c"), NO_EXIF, "rescale-only");
  assertUniform(rescaleOnly, [200 / 255, 10 / 255, 50 / 255], 1e-7, "rescale only");
  const raw = await preprocessImage(png, parsePreprocessorConfig({ do_normalize: false, do_rescale: false }, "c"), NO_EXIF, "raw");
  assertUniform(raw, [200, 10, 50], 0, "raw bytes");
});

test("with a resize, EXIF rotation matches a physically rotated image", async () => {
  // 672×448 needs a resize to 336×224 (or 224×336 once rotated): the target size must be the displayed one.
  const raw = await noise(672, 448, 3).raw().toBuffer();
  const tagged = await sharp(raw, { raw: { width: 672, height: 448, channels: 3 } }).png().withMetadata({ orientation: 6 }).toBuffer();
  const rotated = await sharp(raw, { raw: { width: 672, height: 448, channels: 3 } }).rotate(90).png().toBuffer();
  assert.deepEqual(await sharp(rotated).metadata().then((m) => [m.width, m.height]), [448, 672]);
  const a = await preprocessImage(tagged, CLIP, { ...NO_EXIF, exifRotate: true }, "tagged");
  const b = await preprocessImage(rotated, CLIP, NO_EXIF, "rotated");
  assert.equal(firstDifference(a, b), -1);
});
