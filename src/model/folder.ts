/**
 * The model folder contract (MODEL-FOLDER.md): which files a CLIP export must hold, how a dtype picks
 * an ONNX variant, and the clear failure when one is missing.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { ClipOodError, messageOf, shownValue } from "../errors.js";
import { readTextBounded } from "../io/bounded-read.js";
import { familyOf } from "./family.js";
import type { ModelFamily } from "./family.js";
import { parsePreprocessorConfig } from "./preprocessor-config.js";
import type { PreprocessConfig } from "./preprocessor-config.js";

/** dtype → ONNX file suffix, as transformers.js and the Xenova exports name them. */
export const DTYPE_SUFFIX = {
  fp32: "",
  fp16: "_fp16",
  q8: "_quantized",
  int8: "_int8",
  uint8: "_uint8",
  q4: "_q4",
  q4f16: "_q4f16",
  bnb4: "_bnb4",
} as const;

export type Dtype = keyof typeof DTYPE_SUFFIX;
export const DEFAULT_DTYPE: Dtype = "fp32";

export function parseDtype(value: string): Dtype {
  if (value in DTYPE_SUFFIX) return value as Dtype;
  throw new ClipOodError("USAGE", `unknown --dtype "${value}"`, {
    hint: `use one of ${Object.keys(DTYPE_SUFFIX).join(", ")} (fp32 matches Python best; q8 is smaller and usually faster on CPU)`,
  });
}

export type Tower = "text" | "vision";

export function onnxFile(tower: Tower, dtype: Dtype): string {
  return `onnx/${tower}_model${DTYPE_SUFFIX[dtype]}.onnx`;
}

/** Files every model needs, whatever the task. */
export const CONFIG_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"] as const;
/** Files fetched when present, never required. */
export const OPTIONAL_FILES = ["special_tokens_map.json"] as const;

export interface ModelFolder {
  dir: string;
  dtype: Dtype;
  /** From config.json's model_type: what tokenizes, pools and scores differently (family.ts). */
  family: ModelFamily;
  config: ClipConfig;
  preprocess: PreprocessConfig;
  /** Absolute paths of the tower graphs for this dtype. */
  textModel: string;
  visionModel: string;
}

export interface ClipConfig {
  projectionDim: number | undefined;
  raw: Record<string, unknown>;
}

/**
 * Checks that `dir` is a CLIP export with the `dtype` variant of both towers, and reads its configs.
 * Every failure names the missing or broken file and says how to fix it.
 */
export async function openModelFolder(dir: string, dtype: Dtype): Promise<ModelFolder> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new ClipOodError("MODEL_FOLDER", `model folder ${dir} does not exist or is not a folder`, {
      hint: "pass --model with a folder in the Hugging Face layout (config.json, tokenizer.json, preprocessor_config.json, onnx/…) or a Hub id such as Xenova/clip-vit-base-patch32",
    });
  }
  // Only absence is checked here; a folder or pipe in a file's place is refused, by name, when read.
  const missing: string[] = [];
  for (const f of CONFIG_FILES) if (!(await exists(path.join(dir, f)))) missing.push(f);
  if (missing.length > 0) {
    throw new ClipOodError("MODEL_FOLDER", `model folder ${dir} is missing ${missing.join(", ")}`, {
      hint: "a CLIP export for transformers.js has config.json, tokenizer.json, tokenizer_config.json and preprocessor_config.json beside onnx/; copy the missing files from the model's Hub page",
    });
  }
  const configFile = path.join(dir, "config.json");
  const configJson = await readModelJson(configFile);
  const family = familyOf(configJson["model_type"], configFile);
  const projectionDim = readProjectionDim(configJson["projection_dim"], configFile);
  const preprocessFile = path.join(dir, "preprocessor_config.json");
  const preprocess = parsePreprocessorConfig(await readModelJson(preprocessFile), preprocessFile);

  const graphs = { text: path.join(dir, onnxFile("text", dtype)), vision: path.join(dir, onnxFile("vision", dtype)) };
  const absent: string[] = [];
  for (const f of Object.values(graphs)) if (!(await isFile(f))) absent.push(f);
  if (absent.length > 0) {
    const available = await availableDtypes(dir);
    throw new ClipOodError("MODEL_VARIANT", `model folder ${dir} has no ${dtype} variant: ${absent.map((f) => path.relative(dir, f)).join(" and ")} not found`, {
      hint: available.length > 0 ? `this folder has --dtype ${available.join(", ")}` : "the folder's onnx/ holds no text_model/vision_model graphs; download the export again",
    });
  }
  return {
    dir,
    dtype,
    family,
    config: { projectionDim, raw: configJson },
    preprocess,
    textModel: graphs.text,
    visionModel: graphs.vision,
  };
}

/** dtypes for which both tower graphs are present. */
export async function availableDtypes(dir: string): Promise<Dtype[]> {
  const files = new Set(await readdir(path.join(dir, "onnx")).catch(() => [] as string[]));
  return (Object.keys(DTYPE_SUFFIX) as Dtype[]).filter((d) =>
    (["text", "vision"] as const).every((t) => files.has(path.basename(onnxFile(t, d)))),
  );
}

/**
 * Ceiling on one JSON file of a model folder. Real tokenizer.json files run to a few MB (CLIP's is 2 MB,
 * multilingual ones 17–35 MB) and the configs to kilobytes; a file above this is not a model file, and
 * JSON.parse of it would take several times its size in memory.
 */
export const MAX_MODEL_JSON_BYTES = 64 * 2 ** 20;

/** Embedding widths of real CLIP exports are 512–1280; far above that is a damaged config, not a model. */
const MAX_PROJECTION_DIM = 65_536;

/**
 * A JSON object from a model folder, read with a size ceiling and only from a regular file (a pipe or
 * device in a config's place would otherwise block or exhaust memory). Every failure names the file.
 */
export async function readModelJson(file: string, hint = "the download may be incomplete or the file replaced; delete it and fetch it again"): Promise<Record<string, unknown>> {
  const text = await readTextBounded(file, { what: "model file", code: "MODEL_FOLDER", hint, maxBytes: MAX_MODEL_JSON_BYTES });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ClipOodError("MODEL_FOLDER", `${file} is not valid JSON: ${messageOf(e)}`, { hint, cause: e });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ClipOodError("MODEL_FOLDER", `${file} is not valid JSON: not a JSON object`, { hint });
  }
  return value as Record<string, unknown>;
}

function readProjectionDim(v: unknown, file: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_PROJECTION_DIM) {
    throw new ClipOodError("MODEL_FOLDER", `${file}: projection_dim must be a whole number from 1 to ${MAX_PROJECTION_DIM}, got ${shownValue(v)}`, {
      hint: "CLIP configs give the embedding width there (512 for ViT-B); fix the file or download it again",
    });
  }
  return v;
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined)) !== undefined;
}

async function isFile(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}
