/**
 * A model folder's preprocessor_config.json, read into the numbers image preprocessing follows
 * (image/preprocess.ts): resize, crop, rescale and normalisation, with CLIPImageProcessor's defaults for
 * what the file leaves out. The file is part of the folder's contract, so model/folder.ts checks it here
 * without depending on the image code that applies it.
 */
import { ClipOodError, shownValue } from "../errors.js";

/** The resampling filters of PIL that CLIP-family preprocessor configs ask for (`resample` 3 and 2). */
export type PilFilter = "bicubic" | "bilinear";

export interface PreprocessConfig {
  shortestEdge: number;
  cropHeight: number;
  cropWidth: number;
  mean: [number, number, number];
  std: [number, number, number];
  rescaleFactor: number;
  doResize: boolean;
  doCenterCrop: boolean;
  doNormalize: boolean;
  doRescale: boolean;
  /** PIL's filter for the resize: `resample` 3 (bicubic) or 2 (bilinear). */
  resample: PilFilter;
  /**
   * Present when the config gives `size` as `{height, width}` (SigLIP-style): resize straight to these
   * dimensions, aspect ratio not kept, instead of by shortest edge.
   */
  resizeTo?: { height: number; width: number };
}

/** OpenAI CLIP's normalisation, also `CLIPImageProcessor`'s defaults. */
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

const CLIP_SIZE = 224;

/**
 * Largest side (shortest edge, resize target or crop) a preprocessor_config.json may ask for. The crop
 * sets the tensor every image becomes: 2048² is 48 MiB of float32 per image, 768 MiB for a batch of
 * 16, while 4096² would be 3 GiB. It is four times the largest input of any CLIP-family export in use
 * (OpenAI tops out at 336, SigLIP and jina-clip at 512), so only a tampered or mistyped file hits it.
 */
export const MAX_IMAGE_SIDE = 2048;

function configError(source: string, what: string): ClipOodError {
  return new ClipOodError("MODEL_FOLDER", `${source}: ${what}`, {
    hint: "preprocessor_config.json must follow the Hugging Face CLIPImageProcessor format; re-export the model or fix the file",
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function side(v: unknown, source: string, field: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw configError(source, `${field} must be a positive integer, got ${shownValue(v)}`);
  }
  if (v > MAX_IMAGE_SIDE) {
    throw configError(source, `${field} is ${v} pixels, over the ${MAX_IMAGE_SIDE} clip-ood accepts (CLIP exports use 224–512)`);
  }
  return v;
}

function flag(json: Record<string, unknown>, key: string, source: string): boolean {
  const v = json[key];
  if (v === undefined || v === null) return true;
  if (typeof v !== "boolean") throw configError(source, `${key} must be true or false, got ${shownValue(v)}`);
  return v;
}

function triple(v: unknown, fallback: [number, number, number], source: string, field: string, positive: boolean): [number, number, number] {
  if (v === undefined || v === null) return fallback;
  // HF broadcasts a scalar mean/std over the channels.
  const arr = typeof v === "number" ? [v, v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 3 || !arr.every((x) => typeof x === "number" && Number.isFinite(x) && (!positive || x > 0))) {
    throw configError(source, `${field} must be ${positive ? "three positive numbers" : "three numbers"}, got ${shownValue(v)}`);
  }
  return [arr[0] as number, arr[1] as number, arr[2] as number];
}

function heightWidth(v: Record<string, unknown>, source: string, field: string): { height: number; width: number } {
  return { height: side(v["height"], source, `${field}.height`), width: side(v["width"], source, `${field}.width`) };
}

/**
 * Reads a Hugging Face preprocessor_config.json. Missing fields take `CLIPImageProcessor`'s defaults (shortest
 * edge 224, crop 224×224, OpenAI mean/std, rescale 1/255, bicubic, every step on), as transformers does.
 */
export function parsePreprocessorConfig(json: unknown, source: string): PreprocessConfig {
  if (!isRecord(json)) throw configError(source, "expected a JSON object");

  const doResize = flag(json, "do_resize", source);
  const doCenterCrop = flag(json, "do_center_crop", source);
  const doNormalize = flag(json, "do_normalize", source);
  const doRescale = flag(json, "do_rescale", source);

  let shortestEdge = CLIP_SIZE;
  let resizeTo: { height: number; width: number } | undefined;
  const size = json["size"];
  if (typeof size === "number") {
    // Older exports (OpenAI's own config) give an integer, which transformers reads as the shortest edge.
    shortestEdge = side(size, source, "size");
  } else if (isRecord(size)) {
    if (size["shortest_edge"] !== undefined) {
      if (size["longest_edge"] !== undefined) {
        throw configError(source, "size.longest_edge is not supported (CLIP resizes by shortest edge only)");
      }
      shortestEdge = side(size["shortest_edge"], source, "size.shortest_edge");
    } else if (size["height"] !== undefined || size["width"] !== undefined) {
      resizeTo = heightWidth(size, source, "size");
      shortestEdge = Math.min(resizeTo.height, resizeTo.width);
    } else {
      throw configError(source, `size must have shortest_edge or height and width, got ${shownValue(size)}`);
    }
  } else if (size !== undefined && size !== null) {
    throw configError(source, `size must be an integer or an object, got ${shownValue(size)}`);
  }

  let crop: { height: number; width: number };
  const cropSize = json["crop_size"];
  if (!doCenterCrop) {
    // Without a crop the output size is whatever the resize makes, which must be fixed for the model.
    if (!resizeTo) {
      throw configError(
        source,
        "do_center_crop is false but size is a shortest edge, so images of different shapes would give tensors of different sizes",
      );
    }
    crop = resizeTo;
  } else if (typeof cropSize === "number") {
    const n = side(cropSize, source, "crop_size");
    crop = { height: n, width: n };
  } else if (isRecord(cropSize)) {
    crop = heightWidth(cropSize, source, "crop_size");
  } else if (cropSize === undefined || cropSize === null) {
    crop = resizeTo ?? { height: shortestEdge, width: shortestEdge };
  } else {
    throw configError(source, `crop_size must be an integer or {height, width}, got ${shownValue(cropSize)}`);
  }

  const rescale = json["rescale_factor"];
  let rescaleFactor = 1 / 255;
  if (rescale !== undefined && rescale !== null) {
    if (typeof rescale !== "number" || !Number.isFinite(rescale) || rescale <= 0) {
      throw configError(source, `rescale_factor must be a positive number, got ${shownValue(rescale)}`);
    }
    rescaleFactor = rescale;
  }

  const config: PreprocessConfig = {
    shortestEdge,
    cropHeight: crop.height,
    cropWidth: crop.width,
    mean: triple(json["image_mean"], CLIP_MEAN, source, "image_mean", false),
    std: triple(json["image_std"], CLIP_STD, source, "image_std", true),
    rescaleFactor,
    doResize,
    doCenterCrop,
    doNormalize,
    doRescale,
    resample: filterOf(json["resample"], source),
  };
  if (resizeTo) config.resizeTo = resizeTo;
  // Each field can be sane alone and still overflow together (a tiny std, a huge rescale factor):
  // the model would then see infinities, so the file is refused here instead.
  const table = normalisationTable(config);
  if (!table.every(Number.isFinite)) {
    throw configError(source, "image_mean, image_std and rescale_factor together take pixel values beyond float32's range");
  }
  tables.set(config, table);
  return config;
}

/** PIL's Resampling numbers as the configs write them: 2 BILINEAR, 3 BICUBIC (0 nearest, 1 lanczos, 4 box, 5 hamming). */
function filterOf(v: unknown, source: string): PilFilter {
  if (v === undefined || v === null || v === 3) return "bicubic";
  if (v === 2) return "bilinear";
  throw configError(source, `resample ${shownValue(v)} is not supported: clip-ood resizes as PIL does with 3 (bicubic, CLIP) or 2 (bilinear, MobileCLIP)`);
}

/** Per channel, the output value of each byte 0–255: one table lookup per sample instead of arithmetic. */
export function normalisationTable(cfg: PreprocessConfig): Float32Array {
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const mean = cfg.mean[c] as number;
    const std = cfg.std[c] as number;
    for (let v = 0; v < 256; v++) {
      let x = cfg.doRescale ? v * cfg.rescaleFactor : v;
      if (cfg.doNormalize) x = (x - mean) / std;
      table[c * 256 + v] = x;
    }
  }
  return table;
}

const tables = new WeakMap<PreprocessConfig, Float32Array>();

/** `normalisationTable(cfg)`, computed once per config: parsePreprocessorConfig has already built it to check it. */
export function cachedNormalisationTable(cfg: PreprocessConfig): Float32Array {
  let table = tables.get(cfg);
  if (!table) tables.set(cfg, (table = normalisationTable(cfg)));
  return table;
}
