/**
 * The model folder contract (MODEL-FOLDER.md): which files a CLIP export must hold, how a dtype picks
 * an ONNX variant, and the clear failure when one is missing.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { ClipOodError, messageOf } from "../errors.js";
import { parsePreprocessorConfig } from "../image/preprocess.js";
import type { PreprocessConfig } from "../image/preprocess.js";

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
  const missing: string[] = [];
  for (const f of CONFIG_FILES) if (!(await isFile(path.join(dir, f)))) missing.push(f);
  if (missing.length > 0) {
    throw new ClipOodError("MODEL_FOLDER", `model folder ${dir} is missing ${missing.join(", ")}`, {
      hint: "a CLIP export for transformers.js has config.json, tokenizer.json, tokenizer_config.json and preprocessor_config.json beside onnx/; copy the missing files from the model's Hub page",
    });
  }
  const configJson = await readJson(path.join(dir, "config.json"));
  const modelType = configJson["model_type"];
  if (modelType !== undefined && modelType !== "clip") {
    throw new ClipOodError("MODEL_FOLDER", `${path.join(dir, "config.json")} says model_type "${String(modelType)}", not "clip"`, {
      hint: "clip-ood runs CLIP exports (two towers: text_model and vision_model)",
    });
  }
  const preprocessFile = path.join(dir, "preprocessor_config.json");
  const preprocess = parsePreprocessorConfig(await readJson(preprocessFile), preprocessFile);

  const graphs = { text: path.join(dir, onnxFile("text", dtype)), vision: path.join(dir, onnxFile("vision", dtype)) };
  const absent: string[] = [];
  for (const f of Object.values(graphs)) if (!(await isFile(f))) absent.push(f);
  if (absent.length > 0) {
    const available = await availableDtypes(dir);
    throw new ClipOodError("MODEL_VARIANT", `model folder ${dir} has no ${dtype} variant: ${absent.map((f) => path.relative(dir, f)).join(" and ")} not found`, {
      hint: available.length > 0 ? `this folder has --dtype ${available.join(", ")}` : "the folder's onnx/ holds no text_model/vision_model graphs; download the export again",
    });
  }
  const projection = configJson["projection_dim"];
  return {
    dir,
    dtype,
    config: { projectionDim: typeof projection === "number" ? projection : undefined, raw: configJson },
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

async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ClipOodError("MODEL_FOLDER", `cannot read ${file}: ${messageOf(e)}`, { hint: "check the file's permissions" });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not a JSON object");
    return value as Record<string, unknown>;
  } catch (e) {
    throw new ClipOodError("MODEL_FOLDER", `${file} is not valid JSON: ${messageOf(e)}`, {
      hint: "the download may be incomplete; delete the file and fetch it again",
    });
  }
}

async function isFile(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}
