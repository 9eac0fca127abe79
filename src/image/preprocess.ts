/**
 * CLIP image preprocessing with sharp (libvips), aiming at parity with Python's PIL + Hugging Face
 * `CLIPImageProcessor`: decode → RGB (alpha dropped, not composited) → bicubic (or, where the config says
 * `resample: 2`, bilinear) resize of the shortest side (long side truncated) → floor centre crop →
 * x·rescale → (x − mean) / std, as float32 C×H×W.
 *
 * Shrinking: sharp's `cubic` kernel (../shared/docs/STACK.md §3.3). libvips `cubic` is Catmull-Rom (a = −0.5),
 * the kernel of PIL's BICUBIC, and like PIL it widens the kernel when downscaling (antialiasing), so it lands
 * within about 1 grey level of PIL. transformers.js' affine bicubic is off by 5–40 grey levels and letterboxes
 * integer `size` configs, and sharp's default lanczos3 or a one-step `fit: 'cover'` are several times worse.
 * `fastShrinkOnLoad: false` because JPEG DCT-domain shrinking adds error.
 *
 * Enlarging (any axis growing): libvips samples on another grid and extends the border, 0.03–0.1 off in
 * normalised units (up to 7 grey levels on average), so the decoded pixels go through `resizePil`
 * (./resample.ts), a port of PIL's resampler that gives PIL's bytes exactly, computed on the crop only.
 * Bilinear resizes (MobileCLIP's configs) always take that port, shrinking too: no libvips kernel was
 * measured against PIL's bilinear, and the port is exact.
 *
 * Measured parity (test/preprocess.test.ts, against ../shared/reference/preprocess, PIL bicubic references):
 * mean absolute difference 0.0027–0.0033 in normalised units (≈ 0.18–0.22 grey levels) on the shrunk
 * astronaut, chelsea, coffee and china, 0 on the enlarged small-32, small-96x64 and small-200; the bound
 * asserted there is 0.01, and float32 rounding alone for enlargements.
 *
 * Deliberate choices:
 * - `resample` 3 (bicubic, CLIP's and the default) and 2 (bilinear, MobileCLIP's) are followed; any other
 *   filter is refused rather than silently replaced, since the model would see other pixels than it was
 *   trained on.
 * - Embedded ICC profiles are ignored (`ignoreIcc`), because PIL does not colour-manage and CLIP was trained
 *   and is evaluated on PIL-decoded pixels. Three of the four reference photos carry an sRGB profile; for
 *   them it makes no difference, for a wide-gamut photo it keeps the raw pixel values as Python would.
 *   CMYK is still converted to sRGB (libvips' generic CMYK profile; PIL's naive formula differs slightly).
 * - EXIF orientation is opt-in (`exifRotate`): `PIL.Image.open` ignores it, HF `load_image` applies it.
 */
import { readFile, stat } from "node:fs/promises";
import sharp from "sharp";
import type { Metadata, OutputInfo, Sharp, SharpOptions } from "sharp";
import { ClipOodError, messageOf } from "../errors.js";
import { formatBytes } from "../io/bounded-read.js";
import { centreCropAxis, resizedSize, rgbToChw } from "./crop-normalise.js";
import { cachedNormalisationTable } from "../model/preprocessor-config.js";
import type { PreprocessConfig } from "../model/preprocessor-config.js";
import { resizePil } from "./resample.js";

export interface ImageOptions {
  exifRotate: boolean;
  /** Largest width × height accepted before decoding; 0 or a non-finite value turns the limit off. */
  maxPixels: number;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

const SUPPORTED = "not a supported image (JPEG, PNG, WebP, GIF, TIFF, AVIF)";
const SUPPORTED_FORMATS = new Set(["jpeg", "png", "webp", "gif", "tiff", "heif"]);

function imageError(label: string, reason: string, hint: string, cause?: unknown): ClipOodError {
  return new ClipOodError("IMAGE", `${label}: ${reason}`, cause === undefined ? { hint } : { hint, cause });
}

/** Larger files are refused before reading: a photo, even a 100-megapixel TIFF, is well below this. */
export const MAX_IMAGE_FILE_BYTES = 2 ** 30;

async function readImageFile(file: string, label: string): Promise<Buffer> {
  try {
    const info = await stat(file);
    // A pipe or device would block the read or never end; checked before opening it.
    if (!info.isFile() && !info.isDirectory()) throw imageError(label, "is not a regular file (a device, pipe or socket)", "pass image files");
    if (info.size > MAX_IMAGE_FILE_BYTES) {
      throw imageError(label, `is ${formatBytes(info.size)}, over the ${formatBytes(MAX_IMAGE_FILE_BYTES)} clip-ood reads for one image`, "downscale it, or check that this is the file you meant");
    }
    return await readFile(file);
  } catch (e) {
    if (e instanceof ClipOodError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw imageError(label, "no such file", "check the path", e);
    if (code === "EISDIR") {
      throw imageError(label, "is a folder, not an image file", "pass folders as inputs to list their images, not as an image", e);
    }
    if (code === "EACCES" || code === "EPERM") throw imageError(label, "permission denied", "check the file's read permissions", e);
    throw imageError(label, `cannot be read: ${messageOf(e)}`, "check that the file is readable", e);
  }
}

/**
 * The decoder's own words for one file: its first line only. libvips keeps one error buffer for the
 * whole process, so while a batch decodes in parallel a failure's message can carry other files'
 * errors on its later lines; those must not be reported against this file.
 */
function decoderDetail(msg: string): string | undefined {
  const first = msg.split("\n")[0]!.trim().replace(/:$/, "");
  return first === "" || /^\(?unknown error\)?$/i.test(first) ? undefined : first;
}

function decodeError(label: string, e: unknown): ClipOodError {
  const msg = messageOf(e);
  if (/unsupported image format/i.test(msg)) {
    return imageError(label, `${SUPPORTED}, or a damaged one: its header matches none of them`, "convert it to JPEG or PNG if it is another format; re-copy or re-download it if it is damaged", e);
  }
  if (/pixel limit/i.test(msg)) {
    return imageError(label, "exceeds the pixel limit; raise it with --max-pixels if the file is trusted", "images with huge declared dimensions can exhaust memory", e);
  }
  const detail = decoderDetail(msg);
  return imageError(label, `corrupt or truncated image${detail ? ` (${detail})` : ""}`, "re-copy or re-download the file", e);
}

function checkMetadata(m: Metadata, label: string, maxPixels: number, exifRotate: boolean): { width: number; height: number } {
  if (!SUPPORTED_FORMATS.has(m.format)) {
    throw imageError(label, `${SUPPORTED}; it is ${m.format.toUpperCase()}`, "convert it to JPEG or PNG, or leave it out of the inputs");
  }
  if (m.format === "heif" && m.compression === "hevc") {
    throw imageError(label, `${SUPPORTED}; HEIC (HEVC) cannot be decoded`, "convert it to JPEG or AVIF first");
  }
  const width = m.width;
  const height = m.height;
  if (!(width > 0 && height > 0)) throw imageError(label, "corrupt image (no dimensions in its header)", "re-copy or re-download the file");
  const pixels = width * height;
  if (maxPixels > 0 && Number.isFinite(maxPixels) && pixels > maxPixels) {
    throw imageError(
      label,
      `${width}×${height} = ${pixels} pixels exceeds the limit of ${maxPixels}; raise it with --max-pixels if the file is trusted`,
      "images with huge declared dimensions (decompression bombs) can exhaust memory",
    );
  }
  return exifRotate && m.autoOrient ? { width: m.autoOrient.width, height: m.autoOrient.height } : { width, height };
}

interface RawRgb {
  data: Uint8Array;
  width: number;
  height: number;
}

/** The decoder's output, checked to be the interleaved 8-bit RGB of the size expected. */
function checkedRaw(data: Buffer, info: OutputInfo, width: number, height: number): RawRgb {
  if (info.channels !== 3 || info.width !== width || info.height !== height || data.length !== 3 * width * height) {
    throw new Error(`decoder returned ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×3`);
  }
  return { data, width, height };
}

/**
 * Decodes an image file or buffer and preprocesses it for a CLIP vision tower. Returns float32 C×H×W with
 * H×W = cropHeight×cropWidth. Every failure is a ClipOodError "IMAGE" naming `label` (default: the path).
 */
export async function preprocessImage(
  input: string | Buffer,
  cfg: PreprocessConfig,
  opts: ImageOptions,
  label?: string,
): Promise<Float32Array> {
  const name = label ?? (typeof input === "string" ? input : "<buffer>");
  const bytes = typeof input === "string" ? await readImageFile(input, name) : input;
  if (bytes.length === 0) throw imageError(name, "empty file (0 bytes)", "re-copy or re-download the file");

  const limited = opts.maxPixels > 0 && Number.isFinite(opts.maxPixels);
  const decodeOptions: SharpOptions = {
    // 'error' is what catches truncated JPEGs and PNGs (libjpeg's "premature end" is an error, not a warning);
    // 'warning' would also reject files PIL opens happily.
    failOn: "error",
    limitInputPixels: limited ? opts.maxPixels : false,
    pages: 1,
    autoOrient: opts.exifRotate,
    ignoreIcc: true,
  };

  let size: { width: number; height: number };
  let hasAlpha: boolean;
  try {
    // The header is read without the pixel limit so that the error can give the dimensions; checkMetadata
    // enforces it before any pixel is decoded.
    const m = await sharp(bytes, { ...decodeOptions, limitInputPixels: false }).metadata();
    size = checkMetadata(m, name, opts.maxPixels, opts.exifRotate);
    hasAlpha = m.hasAlpha;
  } catch (e) {
    throw e instanceof ClipOodError ? e : decodeError(name, e);
  }

  const resized = resizedSize(size.width, size.height, cfg);
  const cropX = centreCropAxis(resized.width, cfg.cropWidth);
  const cropY = centreCropAxis(resized.height, cfg.cropHeight);

  try {
    const table = cachedNormalisationTable(cfg);
    const resizing = resized.width !== size.width || resized.height !== size.height;
    // libvips matches PIL only for bicubic shrinking (see the top of this file); the rest takes the port.
    const exact = resizing && (cfg.resample !== "bicubic" || resized.width > size.width || resized.height > size.height);
    let rgb: RawRgb | undefined;
    if (hasAlpha || exact) {
      // sharp premultiplies alpha before resizing and only drops it afterwards, which turns transparent pixels
      // black. PIL's convert('RGB') keeps their colour, so decode without alpha first, then resize the RGB.
      const raw = await sharp(bytes, decodeOptions).removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
      rgb = checkedRaw(raw.data, raw.info, size.width, size.height);
    }
    let out: RawRgb;
    if (exact && rgb) {
      const window = { left: cropX.from, top: cropY.from, width: cropX.length, height: cropY.length };
      out = { data: resizePil(rgb.data, rgb.width, rgb.height, 3, resized.width, resized.height, window, cfg.resample), width: cropX.length, height: cropY.length };
    } else {
      let pipeline: Sharp = rgb
        ? sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 }, limitInputPixels: false })
        : sharp(bytes, decodeOptions);
      pipeline = pipeline.removeAlpha().toColourspace("srgb");
      if (resizing) {
        pipeline = pipeline.resize(resized.width, resized.height, { kernel: "cubic", fit: "fill", fastShrinkOnLoad: false });
      }
      if (cropX.length !== resized.width || cropY.length !== resized.height) {
        pipeline = pipeline.extract({ left: cropX.from, top: cropY.from, width: cropX.length, height: cropY.length });
      }
      const raw = await pipeline.raw().toBuffer({ resolveWithObject: true });
      out = checkedRaw(raw.data, raw.info, cropX.length, cropY.length);
    }
    return rgbToChw(out.data, out.width, out.height, cfg.cropWidth, cfg.cropHeight, cropX.to, cropY.to, table);
  } catch (e) {
    throw e instanceof ClipOodError ? e : decodeError(name, e);
  }
}
