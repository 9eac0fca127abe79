/**
 * Generates small CLIP models with the exact folder layout, graph input/output names, ranks and
 * dtypes of the real Hugging Face ONNX exports (MODEL-FOLDER.md), but with hand-set weights that
 * implement the colour-and-texture world of ./world.ts:
 *
 * vision tower (pixel_values [B,3,S,S] → last_hidden_state [B,1+P,W], image_embeds [B,D])
 *   per 32-px patch: channel-wise max of the *normalised* pixels, Gaussian-matched against each
 *   colour's normalised prototype (so skipped normalisation, a wrong mean/std or swapped channels
 *   land on the wrong colour); luma contrast and the ranges of row/column means give plain / striped
 *   / checkered activations. Patch features are lifted to width W, the CLS token is their mean, and
 *   image_embeds = post_layernorm(last_hidden_state[:,0]) · projection, as in real exports, which
 *   sends each active concept onto its word's direction. The same head applied to a patch token
 *   points at that patch's own colour and texture, so GL-MCM's local features have a real meaning.
 * text tower (input_ids [B,L] (+ attention_mask) → last_hidden_state [B,L,D], text_embeds [B,D])
 *   token embeddings summed causally and pooled at the end-of-text token (the argmax id), as CLIP
 *   does: padding after it cannot change the result, truncation that drops it would.
 *
 * `family: "mobileclip"` gives the MobileCLIP exports' contract (Xenova/mobileclip_*): input_ids fixed
 * at [B,77] with no attention_mask (the text encoders are not causal, so they were exported at their
 * trained length), and a preprocessor that resizes bilinearly (resample 2) to 256 without normalising
 * (mean 0, std 1), as apple's OpenCLIP configs for MobileCLIP do.
 *
 * Outputs are declared last_hidden_state first, so code that reads outputs by position instead of by
 * name gets the wrong tensor. Usage: `npm run make-model -- <dir> [--family clip|siglip|mobileclip] [--images <dir>]`.
 */
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ARCHS } from "./clip-archs.js";
import { GENERATED_LOGIT_BIAS, GENERATED_LOGIT_SCALE, siglipCombinedGraph, siglipModelConfig, siglipPreprocessorConfig } from "./siglip-model.js";
import { COLOUR_NAMES, CONCEPTS, orthonormalRows, unit } from "./test-model/concepts.js";
import { MOBILECLIP_IMAGE_SIZE, MOBILECLIP_MEAN, MOBILECLIP_STD, modelConfig, preprocessorConfig, writeConfigFiles } from "./test-model/config.js";
import type { GenerateOptions } from "./test-model/options.js";
import { siglipText, textGraph } from "./test-model/text.js";
import { TOKENIZER_FILES, writeSiglipTokenizerFiles, writeTokenizerFiles } from "./test-model/tokenizer.js";
import { visionGraph } from "./test-model/vision.js";
import type { GeneratedVisionHead } from "./test-model/vision.js";
import { SYNONYMS, TEXTURES, paintImage, rng } from "./world.js";
import type { Texture } from "./world.js";

export interface GeneratedModel {
  visionHeads: Partial<Record<"fp32" | "q8", GeneratedVisionHead>>;
}

export async function generateModel(dir: string, options: GenerateOptions = {}): Promise<GeneratedModel> {
  const { contract, ...rest } = options;
  const shape = contract === undefined ? undefined : ARCHS[contract];
  const o = {
    projectionDim: shape?.projectionDim ?? 64,
    visionWidth: shape?.vision.width ?? 32,
    imageSize: shape?.imageSize ?? 224,
    patchSize: shape?.patchSize ?? 32,
    dtypes: ["fp32", "q8"] as const,
    textAttentionMask: false,
    legacyIntSize: false,
    postLayerNorm: "decomposed" as const,
    localEmbeds: false,
    tokenizerFrom: "",
    seed: 1,
    synonymNoise: 0.3,
    family: "clip" as const,
    logitBias: GENERATED_LOGIT_BIAS,
    ...rest,
  };
  const siglip = o.family === "siglip";
  if (o.family === "mobileclip" && (options.imageSize === undefined && contract === undefined)) o.imageSize = MOBILECLIP_IMAGE_SIZE;
  const rand = rng(o.seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const randomVector = (n: number) => unit(Array.from({ length: n }, gauss));

  // Concept directions: orthonormal, so concepts do not leak into each other.
  const baseConcepts = [...CONCEPTS, "__generic"];
  const directions = new Map<string, number[]>();
  orthonormalRows(baseConcepts.length, o.projectionDim, randomVector).forEach((v, i) => directions.set(baseConcepts[i]!, v));
  for (const [word, target] of Object.entries(SYNONYMS)) {
    const noise = randomVector(o.projectionDim);
    // The noise is drawn whatever its weight, so every other direction stays as it was.
    const base = directions.get(target)!;
    directions.set(word, o.synonymNoise === 0 ? [...base] : unit(base.map((x, i) => x + o.synonymNoise * noise[i]!)));
  }
  const generic = directions.get("__generic")!;

  let vocab: Record<string, number>;
  await mkdir(dir, { recursive: true });
  if (siglip) {
    vocab = await writeSiglipTokenizerFiles(dir);
  } else if (o.tokenizerFrom) {
    for (const f of TOKENIZER_FILES) await copyFile(path.join(o.tokenizerFrom, f), path.join(dir, f));
    vocab = (JSON.parse(await readFile(path.join(o.tokenizerFrom, "tokenizer.json"), "utf8")) as { model: { vocab: Record<string, number> } }).model.vocab;
  } else {
    vocab = await writeTokenizerFiles(dir);
  }
  const vocabSize = Math.max(...Object.values(vocab)) + 1;

  await mkdir(path.join(dir, "onnx"), { recursive: true });
  const visionHeads: GeneratedModel["visionHeads"] = {};
  for (const dtype of o.dtypes) {
    const q = dtype === "q8" ? quantize : (v: number) => v;
    const sfx = dtype === "q8" ? "_quantized" : "";
    const source = { directions, generic, randomVector, q };
    const vision = visionGraph(o, source);
    visionHeads[dtype] = vision.head;
    await writeFile(path.join(dir, "onnx", `vision_model${sfx}.onnx`), vision.bytes);
    const text = (siglip ? siglipText : textGraph)(o, vocab, vocabSize, source);
    await writeFile(path.join(dir, "onnx", `text_model${sfx}.onnx`), text);
  }

  if (siglip) {
    await writeFile(path.join(dir, "onnx", "model.onnx"), siglipCombinedGraph(GENERATED_LOGIT_SCALE, o.logitBias, o.projectionDim));
    await writeConfigFiles(dir, siglipModelConfig(o, vocabSize), siglipPreprocessorConfig(o.imageSize));
  } else {
    const mobile = o.family === "mobileclip" ? { resample: 2 as const, mean: MOBILECLIP_MEAN, std: MOBILECLIP_STD } : {};
    await writeConfigFiles(dir, modelConfig(o, vocabSize), preprocessorConfig(o.imageSize, { legacyIntSize: o.legacyIntSize, ...mobile }));
  }
  return { visionHeads };
}

/** Stand-in for int8 weight quantisation: values snapped to a 1/64 grid. */
function quantize(v: number): number {
  return Math.round(v * 64) / 64;
}

/** Writes a labelled set of held-out images: `<dir>/<colour>-<texture>-<n>.png`. */
export async function writeWorldImages(
  dir: string,
  items: readonly { colour: string; texture: Texture; seed: number; width?: number; height?: number }[],
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const it of items) {
    const file = path.join(dir, `${it.colour}-${it.texture}-${it.seed}.png`);
    await writeFile(file, await paintImage({ width: it.width ?? 320, height: it.height ?? 240, ...it }));
    files.push(file);
  }
  return files;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  const dir = args[0];
  const familyAt = args.indexOf("--family");
  const family = familyAt >= 0 ? args[familyAt + 1] : "clip";
  if (!dir || dir.startsWith("-") || (family !== "clip" && family !== "siglip" && family !== "mobileclip")) {
    console.error("usage: npm run make-model -- <model-dir> [--family clip|siglip|mobileclip] [--images <image-dir>]");
    process.exit(2);
  }
  await generateModel(dir, { family });
  console.log(`wrote a generated ${family} model to ${dir}`);
  const imagesAt = args.indexOf("--images");
  if (imagesAt >= 0 && args[imagesAt + 1]) {
    const items = COLOUR_NAMES.flatMap((colour, i) => TEXTURES.map((texture, j) => ({ colour, texture, seed: 1000 + 10 * i + j })));
    const files = await writeWorldImages(args[imagesAt + 1]!, items);
    console.log(`wrote ${files.length} images to ${args[imagesAt + 1]}`);
  }
}
