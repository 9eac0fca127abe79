/**
 * A corpus of hostile inputs for the reliability tests (test/hostile.test.ts), generated here: real images
 * made with sharp, then damaged, plus files and folders that only look like images. Nothing is downloaded.
 */
import { access, chmod, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { constants } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import type { Sharp } from "sharp";
import { pngHeaderClaiming } from "./bad-images.js";

/**
 * What a file must come to. "error": an IMAGE error naming it; "ok": an embedding; "any": either (a
 * flipped bit in entropy-coded data may or may not be detectable), but never a crash or a hang.
 */
export type Expectation = "error" | "ok" | "any";

export interface CorpusFile {
  file: string;
  why: string;
  expect: Expectation;
  /** A pattern the error message must match (besides naming the file). */
  message?: RegExp;
}

export interface HostileCorpus {
  /** The corpus folder: every entry below is in it, except `loose`. */
  dir: string;
  /** Files a folder walk of `dir` lists, in the walk's order (byte-wise sorted paths). */
  listed: CorpusFile[];
  /** Files the walk does not list (no image extension), to be given explicitly. */
  loose: CorpusFile[];
  /** Inputs the walk reports as unusable instead of listing (symlink loops). */
  unusable: CorpusFile[];
  /** A folder named like an image, holding one good image. */
  folderNamedLikeImage: string;
  /** An image the store should refuse to read (chmod 000); absent when running as root, where reads are not denied. */
  unreadable?: CorpusFile;
  /** The PNG and JPEG whose headers claim far more pixels than any sane limit. */
  bombs: { png: string; jpeg: string };
}

const FORMATS = ["jpg", "png", "webp", "gif", "tiff", "avif"] as const;

/** A small picture with structure in it (so that compressed data is not trivially uniform). */
function picture(width = 64, height = 48, channels: 3 | 4 = 3): Sharp {
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * channels;
      data[o] = (x * 4) & 255;
      data[o + 1] = (y * 5) & 255;
      data[o + 2] = ((x ^ y) * 8) & 255;
      if (channels === 4) data[o + 3] = x < width / 2 ? 255 : 40;
    }
  }
  return sharp(data, { raw: { width, height, channels } });
}

function encode(s: Sharp, format: (typeof FORMATS)[number]): Promise<Buffer> {
  switch (format) {
    case "jpg":
      return s.jpeg({ quality: 90 }).toBuffer();
    case "png":
      return s.png().toBuffer();
    case "webp":
      return s.webp({ quality: 90 }).toBuffer();
    case "gif":
      return s.gif().toBuffer();
    case "tiff":
      return s.tiff({ compression: "lzw" }).toBuffer();
    case "avif":
      return s.avif({ quality: 60 }).toBuffer();
  }
}

/** Deterministic bit flips past the first `skip` bytes (so the format is still recognised). */
export function flipBits(bytes: Buffer, count: number, seed: number, skip = 32): Buffer {
  const out = Buffer.from(bytes);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    // xorshift32: any fixed sequence will do, it only has to be reproducible.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    const at = skip + (state % Math.max(1, out.length - skip));
    out[at]! ^= 1 << (state >>> 29);
  }
  return out;
}

/**
 * A baseline JPEG whose SOF0 claims width × height (at most 65535 each, the field is 16 bits). JPEG has no
 * checksum, so patching the two fields is all it takes; the scan data stays that of a 16×16 image.
 */
export async function jpegHeaderClaiming(width: number, height: number): Promise<Buffer> {
  const jpeg = Buffer.from(await picture(16, 16).jpeg({ quality: 80 }).toBuffer());
  for (let i = 2; i + 9 < jpeg.length; ) {
    if (jpeg[i] !== 0xff) throw new Error("jpegHeaderClaiming: lost sync with the JPEG markers");
    const marker = jpeg[i + 1]!;
    const length = jpeg.readUInt16BE(i + 2);
    if (marker === 0xc0) {
      jpeg.writeUInt16BE(height, i + 5);
      jpeg.writeUInt16BE(width, i + 7);
      return jpeg;
    }
    i += 2 + length;
  }
  throw new Error("jpegHeaderClaiming: no SOF0 marker");
}

/** An animated image of two frames (first red, then blue). */
async function animated(format: "gif" | "webp"): Promise<Buffer> {
  const frame = (r: number, b: number) => sharp({ create: { width: 32, height: 32, channels: 3, background: { r, g: 0, b } } }).png().toBuffer();
  const joined = sharp([await frame(220, 0), await frame(0, 220)], { join: { animated: true } });
  return format === "gif" ? joined.gif({ loop: 0, delay: [100, 100] }).toBuffer() : joined.webp({ loop: 0, delay: [100, 100] }).toBuffer();
}

/** Whether this process can read a file whatever its mode (root, or CAP_DAC_OVERRIDE). */
async function readsIgnoreMode(file: string): Promise<boolean> {
  return access(file, constants.R_OK).then(
    () => true,
    () => false,
  );
}

/** Byte-wise order, as the folder walk sorts (src/image/inputs.ts). */
function byCodeUnit(a: CorpusFile, b: CorpusFile): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : 0;
}

export async function writeHostileCorpus(root: string): Promise<HostileCorpus> {
  const dir = path.join(root, "corpus");
  await mkdir(dir, { recursive: true });
  const listed: CorpusFile[] = [];
  const put = async (name: string, data: Buffer | string, why: string, expect: Expectation, message?: RegExp): Promise<CorpusFile> => {
    const file = path.join(dir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, data);
    const entry: CorpusFile = { file, why, expect, ...(message ? { message } : {}) };
    listed.push(entry);
    return entry;
  };

  // Damaged copies of every format the decoder reads.
  for (const [i, format] of FORMATS.entries()) {
    const full = await encode(picture(), format);
    await put(`truncated.${format}`, full.subarray(0, Math.floor(full.length / 2)), `${format} cut in half`, "error", /corrupt or truncated|not a supported/);
    await put(`bitflip.${format}`, flipBits(full, 24, 1000 + i), `${format} with 24 flipped bits`, "any");
  }
  await put("empty.png", Buffer.alloc(0), "zero bytes", "error", /empty file/);
  await put("empty.jpg", Buffer.alloc(0), "zero bytes", "error", /empty file/);
  await put("notes.png", "this is a text file, not a PNG\n", "text named .png", "error", /not a supported image/);
  const bombPng = await put("bomb.png", pngHeaderClaiming(100_000, 100_000), "PNG IHDR claiming 100000×100000", "error", /100000×100000 = 10000000000 pixels exceeds the limit/);
  const bombJpeg = await put("bomb.jpg", await jpegHeaderClaiming(65_000, 65_000), "JPEG SOF claiming 65000×65000", "error", /65000×65000 = 4225000000 pixels exceeds the limit/);

  // Unusual but valid images: all must decode.
  await put("misnamed.jpg", await picture().png().toBuffer(), "a PNG named .jpg (decoded by content)", "ok");
  await put("png16.png", await picture().toColourspace("rgb16").png().toBuffer(), "16-bit PNG", "ok");
  await put("palette.png", await picture().png({ palette: true, colours: 16 }).toBuffer(), "palette PNG", "ok");
  await put("cmyk.jpg", await picture().toColourspace("cmyk").jpeg().toBuffer(), "CMYK JPEG", "ok");
  await put("alpha.png", await picture(64, 48, 4).png().toBuffer(), "PNG with alpha", "ok");
  await put("alpha.webp", await picture(64, 48, 4).webp({ lossless: true }).toBuffer(), "WebP with alpha", "ok");
  await put("animated.gif", await animated("gif"), "animated GIF (first frame)", "ok");
  await put("animated.webp", await animated("webp"), "animated WebP (first frame)", "ok");
  await put("gray.png", await picture().toColourspace("b-w").png().toBuffer(), "grayscale PNG", "ok");
  await put("gray.jpg", await picture().toColourspace("b-w").jpeg().toBuffer(), "grayscale JPEG", "ok");
  await put("猫 cat ☕ (1).png", await picture().png().toBuffer(), "unicode and spaces in the name", "ok");
  await put("line\nbreak \"quoted\".png", await picture().png().toBuffer(), "newline and quotes in the name", "ok");
  const folderNamedLikeImage = path.join(dir, "x.jpg");
  await put(path.join("x.jpg", "inner.png"), await picture().png().toBuffer(), "an image inside a folder named x.jpg", "ok");

  // A folder link back up the tree: the walk must not follow it (or it would never end).
  await symlink("..", path.join(dir, "x.jpg", "up"));
  const unusable: CorpusFile[] = [];
  await symlink("loop.jpg", path.join(dir, "loop.jpg"));
  unusable.push({ file: path.join(dir, "loop.jpg"), why: "a symbolic link to itself", expect: "error", message: /symbolic links/ });

  let unreadable: CorpusFile | undefined;
  const locked = path.join(dir, "locked.png");
  await writeFile(locked, await picture().png().toBuffer());
  await chmod(locked, 0o000);
  if (await readsIgnoreMode(locked)) {
    // Running as root: the mode denies nothing, so the case cannot be made; leave the file out.
    await chmod(locked, 0o644);
    await rm(locked);
  } else {
    unreadable = { file: locked, why: "mode 000", expect: "error", message: /permission denied/ };
    listed.push(unreadable);
  }

  const loose: CorpusFile[] = [];
  const svg = path.join(dir, "drawing.svg");
  await writeFile(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="red"/></svg>\n');
  // SVG is not among the supported formats (src/image/preprocess.ts): refused, naming the format.
  loose.push({ file: svg, why: "an SVG drawing", expect: "error", message: /not a supported image.*SVG/ });

  listed.sort(byCodeUnit);
  return { dir, listed, loose, unusable, folderNamedLikeImage, ...(unreadable ? { unreadable } : {}), bombs: { png: bombPng.file, jpeg: bombJpeg.file } };
}
