/**
 * Writes a bench model folder: the tokenizer (../shared's real CLIP one where present, else a generated
 * one), both towers in fp32 and optionally q8, the configs, and a stamp that lets a complete folder be
 * reused rather than regenerated (the full-size models take seconds and hundreds of MB to write).
 */
import { statSync } from "node:fs";
import { chmod, copyFile, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { IMAGENET_1K } from "../../src/text/imagenet1k.js";
import { TEMPLATE_PRESETS } from "../../src/text/templates.js";
import { GENERATED_LOGIT_SCALE, PUNCTUATION_CLASS, siglipCombinedGraph, siglipPreprocessorConfig } from "../siglip-model.js";
import { MOBILECLIP_MEAN, MOBILECLIP_STD, jsonText, preprocessorConfig, writeConfigFiles } from "../test-model/config.js";
import { TOKENIZER_FILES, writeSiglipTokenizerFiles, writeTokenizerFiles } from "../test-model/tokenizer.js";
import { modelConfig } from "./config.js";
import { parameterCount } from "./parameters.js";
import { Q8_PRESETS, resolveQ8Forms } from "./quantize.js";
import type { Q8Form, Q8Forms, Q8Preset } from "./quantize.js";
import { benchSpec } from "./spec.js";
import type { BenchArch, ClipSpec, Shrink } from "./spec.js";
import { textGraph, visionGraph } from "./towers.js";
import type { Variant } from "./weights.js";

export interface BenchModelOptions {
  arch: BenchArch;
  /**
   * Also write the 8-bit variant of both towers, quantised from the same weights: `_quantized` (q8),
   * or for MobileCLIP `_int8`, the variant its exports have (see quantizedDtype).
   */
  q8?: boolean;
  seed?: number;
  shrink?: Shrink;
  /** How the q8 variant is quantised (default "xenova"); see Q8_PRESETS. */
  q8Form?: Q8Preset | Partial<Q8Form>;
  /**
   * A folder with tokenizer.json, tokenizer_config.json and special_tokens_map.json to copy; false
   * writes the generated CLIP-style tokenizer of test-model/tokenizer.ts. Default: ../shared's real
   * CLIP tokenizer where present, else the generated one. SigLIP models get a generated
   * SentencePiece-style tokenizer (siglip-model.ts) unless a folder is given: ../shared has no SigLIP one.
   */
  tokenizerFrom?: string | false;
  /** Regenerate even if the folder's stamp says it is complete. */
  force?: boolean;
  log?: (message: string) => void;
}

/**
 * siglip-base-patch16-224's learned scoring values (the scale as used, exp of the stored logit_scale),
 * so that scores from a generated SigLIP folder are on the real model's scale.
 */
const SIGLIP_LOGIT_SCALE = GENERATED_LOGIT_SCALE;
const SIGLIP_LOGIT_BIAS = -12.9324;
const STAMP_FILE = "bench-model.json";
/** Bump when the graphs or weights change, so stamped folders are regenerated. */
const GENERATOR_VERSION = 1;

/** Two levels up: this module sits in scripts/bench-model/. */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * The words of the prompts the throughput bench embeds (ImageNet class names in the 80 templates),
 * without ASCII punctuation as the SigLIP tokenizer's normalizer removes it: the generated SigLIP
 * tokenizer spells each as one piece, so prompts tokenise to a real tokenizer's piece counts rather
 * than letter by letter.
 */
function benchPromptWords(): string[] {
  const text = [...IMAGENET_1K, ...TEMPLATE_PRESETS["imagenet-80"]!].join(" ").toLowerCase().replace(new RegExp(PUNCTUATION_CLASS, "g"), "");
  return [...new Set(text.split(/\s+/).filter(Boolean))];
}

/** ../shared's real CLIP tokenizer, where this checkout has one. */
function sharedTokenizerDir(): string | undefined {
  return [path.resolve(repoRoot, "..", "shared", "clip-vit-base-patch32"), "/work/shared/clip-vit-base-patch32"].find((d) =>
    TOKENIZER_FILES.every((f) => isFileSync(path.join(d, f))),
  );
}

function isFileSync(file: string): boolean {
  try {
    // A sync probe: it runs once per generation and keeps the default-resolution logic simple.
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

async function writeTokenizer(dir: string, spec: ClipSpec, from: string | false | undefined): Promise<string> {
  // MobileCLIP uses CLIP's tokenizer.
  const source = from === undefined && spec.family !== "siglip" ? sharedTokenizerDir() : from || undefined;
  if (source) {
    for (const f of TOKENIZER_FILES) {
      // The source may be read-only (../shared is): a copy keeping that mode could not be replaced later.
      await rm(path.join(dir, f), { force: true });
      await copyFile(path.join(source, f), path.join(dir, f));
      await chmod(path.join(dir, f), 0o644);
    }
  } else if (spec.family === "siglip") {
    await writeSiglipTokenizerFiles(dir, benchPromptWords());
  } else {
    await writeTokenizerFiles(dir);
  }
  const json = JSON.parse(await readFile(path.join(dir, "tokenizer.json"), "utf8")) as { model?: { vocab?: Record<string, number> | unknown[] }; added_tokens?: { id: number }[] };
  const vocab = json.model?.vocab ?? {};
  // A Unigram vocabulary (SigLIP's) is a list of [piece, score] in id order; a BPE one maps pieces to ids.
  const ids = Array.isArray(vocab) ? [vocab.length - 1] : Object.values(vocab);
  const maxId = Math.max(...ids, ...(json.added_tokens ?? []).map((t) => t.id));
  const rows = spec.text.vocab;
  if (maxId >= rows) throw new Error(`the tokenizer's ids reach ${maxId} but the text tower has only ${rows} rows: raise shrink.vocab`);
  return source ? `copied from ${source}` : `generated (make-test-model.ts${spec.family === "siglip" ? ", SigLIP-style, the bench prompts' words" : ""})`;
}

interface Stamp {
  generator: number;
  arch: BenchArch;
  seed: number;
  q8: boolean;
  q8Form: Q8Forms | null;
  shrink: Shrink;
  tokenizer: string;
}

function expectedFiles(spec: ClipSpec, q8: boolean): string[] {
  const graphs = (q8 ? ["", quantizedSuffix(spec)] : [""]).flatMap((s) => [`onnx/vision_model${s}.onnx`, `onnx/text_model${s}.onnx`]);
  return ["config.json", "preprocessor_config.json", ...TOKENIZER_FILES, ...graphs, ...(spec.family === "siglip" ? [SIGLIP_COMBINED] : [])];
}

/** SigLIP's combined graph, here only the scoring head that holds logit_scale and logit_bias (MODEL-FOLDERS.md). */
const SIGLIP_COMBINED = "onnx/model.onnx";

async function isComplete(dir: string, spec: ClipSpec, want: Omit<Stamp, "tokenizer">): Promise<boolean> {
  const have = await readFile(path.join(dir, STAMP_FILE), "utf8").then((s) => JSON.parse(s) as Stamp, () => undefined);
  if (!have) return false;
  const { tokenizer: _, ...rest } = have;
  // A folder with the q8 variant also serves a request for fp32 alone.
  const comparable = want.q8 ? rest : { ...rest, q8: false, q8Form: null };
  if (JSON.stringify(comparable) !== JSON.stringify(want)) return false;
  for (const f of expectedFiles(spec, want.q8)) if (!(await stat(path.join(dir, f)).catch(() => undefined))?.isFile()) return false;
  return true;
}

/** Refuses folders inside the checkout except its git-ignored caches: the output is large and may hold ../shared's files. */
function assertOutsideRepo(dir: string): void {
  const rel = path.relative(repoRoot, path.resolve(dir));
  const inside = rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
  if (inside && ![".cache", ".tmp"].includes(rel.split(path.sep)[0]!)) {
    throw new Error(`${dir} is inside the repository: write bench models outside it (e.g. ${path.join(os.tmpdir(), "clip-bench-b32")}) or under .cache/`);
  }
}

/**
 * The dtype of a bench model's 8-bit variant. MobileCLIP's exports have `_int8` files (S0 and S1 have no
 * `_quantized` one): transformers.js's scripts/quantize.py "int8" mode, quantize_dynamic over every
 * IntegerOps op with QInt8 weights, so the convolutions, where most of its work is, run as ConvInteger.
 * The other families' q8 (`_quantized`) quantises the MatMuls.
 */
export function quantizedDtype(spec: ClipSpec): "q8" | "int8" {
  return spec.family === "mobileclip" ? "int8" : "q8";
}

const quantizedSuffix = (spec: ClipSpec) => (quantizedDtype(spec) === "int8" ? "_int8" : "_quantized");

/** MobileCLIP's int8 form: quantize_dynamic's defaults, int8 weights per tensor, full range. */
function quantizationForms(spec: ClipSpec, form: BenchModelOptions["q8Form"]): Q8Forms {
  if (spec.family !== "mobileclip") return resolveQ8Forms(form);
  if (form !== undefined && form !== "int8") throw new Error(`MobileCLIP's 8-bit variant is its exports' int8 form (int8 weights per tensor, ConvInteger for the convolutions): q8Form ${JSON.stringify(form)} does not apply`);
  return Q8_PRESETS.int8;
}

export async function generateBenchModel(dir: string, o: BenchModelOptions): Promise<void> {
  const log = o.log ?? (() => {});
  const spec = benchSpec(o.arch, o.shrink);
  const seed = o.seed ?? 0;
  const q8 = o.q8 ?? false;
  const forms = quantizationForms(spec, o.q8Form);
  const want = { generator: GENERATOR_VERSION, arch: o.arch, seed, q8, q8Form: q8 ? forms : null, shrink: o.shrink ?? {} };
  if (!o.force && (await isComplete(dir, spec, want))) {
    log(`${dir} already holds ${o.arch} (seed ${seed}${q8 ? ", with q8" : ""}): nothing to do`);
    return;
  }
  assertOutsideRepo(dir);
  await mkdir(path.join(dir, "onnx"), { recursive: true });
  // The stamp goes first so that an interrupted run never looks complete.
  await rm(path.join(dir, STAMP_FILE), { force: true });
  // q8 graphs of an earlier generation would not match the new fp32 weights.
  if (!q8) for (const t of ["vision", "text"]) await rm(path.join(dir, "onnx", `${t}_model${quantizedSuffix(spec)}.onnx`), { force: true });
  const tokenizer = await writeTokenizer(dir, spec, o.tokenizerFrom);
  log(`tokenizer ${tokenizer}`);

  const count = parameterCount(spec);
  for (const [tower, build, params] of [["vision", visionGraph, count.vision], ["text", textGraph, count.text]] as const) {
    const variants: Variant[] = q8 ? [{ kind: "fp32" }, { kind: "q8", form: forms[tower] }] : [{ kind: "fp32" }];
    for (const variant of variants) {
      const t0 = performance.now();
      const file = `onnx/${tower}_model${variant.kind === "q8" ? quantizedSuffix(spec) : ""}.onnx`;
      const bytes = build(spec, seed, variant);
      await writeFile(path.join(dir, file), bytes);
      log(`${file}: ${(params / 1e6).toFixed(1)} M parameters, ${(bytes.byteLength / 2 ** 20).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  if (spec.family === "siglip") {
    await writeFile(path.join(dir, SIGLIP_COMBINED), siglipCombinedGraph(SIGLIP_LOGIT_SCALE, SIGLIP_LOGIT_BIAS, spec.projectionDim));
    await writeConfigFiles(dir, modelConfig(spec), siglipPreprocessorConfig(spec.vision.imageSize));
  } else if (spec.family === "mobileclip") {
    await writeConfigFiles(dir, modelConfig(spec), preprocessorConfig(spec.vision.imageSize, { resample: 2, mean: MOBILECLIP_MEAN, std: MOBILECLIP_STD }));
  } else {
    await writeConfigFiles(dir, modelConfig(spec), preprocessorConfig(spec.vision.imageSize, { imageProcessorType: "CLIPFeatureExtractor" }));
  }
  await writeFile(path.join(dir, STAMP_FILE), jsonText({ ...want, tokenizer } satisfies Stamp));
}
