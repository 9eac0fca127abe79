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
import { Tokenizer } from "@huggingface/tokenizers";
import { ARCHS } from "./clip-archs.js";
import type { Arch } from "./clip-archs.js";
import { FLOAT, GraphBuilder, INT64, OPSET } from "../src/maths/onnx-graph.js";
import {
  GENERATED_LOGIT_SCALE,
  METASPACE,
  SIGLIP_MAX_LENGTH,
  SIGLIP_MEAN,
  SIGLIP_STD,
  siglipCombinedGraph,
  siglipModelConfig,
  siglipPreprocessorConfig,
  siglipTextGraph,
  siglipTokenizerFiles,
} from "./siglip-model.js";
import { COLOURS, GENERIC_WORDS, SYNONYMS, TEXT_ONLY_CONCEPTS, TEXTURES, paintImage, rng } from "./world.js";
import type { Texture } from "./world.js";

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
/** MobileCLIP feeds the rescaled pixels as they are, and crops to 256 (S0, S1, S2). */
export const MOBILECLIP_MEAN = [0, 0, 0] as const;
export const MOBILECLIP_STD = [1, 1, 1] as const;
const MOBILECLIP_IMAGE_SIZE = 256;
/** The fixed text length of the MobileCLIP exports' input_ids. */
export const MOBILECLIP_TEXT_LENGTH = 77;
/** The files of a Hugging Face tokenizer that a model folder carries. */
export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] as const;

export interface GenerateOptions {
  /**
   * Give the graphs and configs a real export's contract (clip-archs.ts): its image size, patch size
   * (so last_hidden_state has its 50, 197 or 257 tokens), vision width and embedding width, written
   * into config.json as the real one has them. The world inside is the same; options given explicitly
   * still win. Default: the small B/32-like shape below (224 px, 32-px patches, width 32, D 64).
   */
  contract?: Arch;
  /** Embedding (projection) dimension D. */
  projectionDim?: number;
  /**
   * Vision hidden width W: at least the number of patch features + 3 (their rows, a bias row, the
   * all-ones direction the layernorm removes, and β's direction).
   */
  visionWidth?: number;
  imageSize?: number;
  patchSize?: number;
  /** Which ONNX variants to write: "fp32" (no suffix) and/or "q8" (`_quantized`, coarser weights). */
  dtypes?: readonly ("fp32" | "q8")[];
  /** Declare (and use) an attention_mask input on the text graph, as some exports do. */
  textAttentionMask?: boolean;
  /** Write `size` and `crop_size` as plain integers, like older exports. */
  legacyIntSize?: boolean;
  /**
   * How the vision graph writes its post-layernorm: "decomposed" (ReduceMean, Sub, Pow, ReduceMean,
   * Add ε, Sqrt, Div, Mul γ, Add β, as PyTorch exports below opset 17; the default) or "fused" (one
   * LayerNormalization node, opset 17).
   */
  postLayerNorm?: "decomposed" | "fused";
  /** Also output local_embeds [B,P,D]: every patch token through the same layernorm and projection. */
  localEmbeds?: boolean;
  /**
   * A folder holding a real CLIP tokenizer (tokenizer.json, tokenizer_config.json,
   * special_tokens_map.json): its files are copied and the text graph is sized to its vocabulary, so
   * the world's words are looked up by the real token ids (49406/49407 specials and all). Words the
   * real vocabulary splits ("cyan", "checkered") then carry no concept.
   */
  tokenizerFrom?: string;
  seed?: number;
  /**
   * "clip" (default) or "siglip": the SigLIP export contract (scripts/siglip-model.ts) — its configs,
   * a SentencePiece-style tokenizer, towers that output pooler_output, text padded to 64, and the
   * logit scale and bias in onnx/model.onnx. The world and its answers are the same.
   */
  family?: "clip" | "siglip" | "mobileclip";
  /** SigLIP: the logit bias written into onnx/model.onnx (default suits this world's cosines). */
  logitBias?: number;
  /**
   * How far a SYNONYMS word's direction lies from its target's: target + noise·(random unit vector),
   * normalised (default 0.3). 0 gives the word its target's direction exactly, so a prompt naming it
   * embeds bit for bit as one naming the target: classes named by such a pair tie in zero-shot scoring.
   */
  synonymNoise?: number;
}

const COLOUR_NAMES = Object.keys(COLOURS);
/** Concepts with a direction of their own; each SYNONYMS word gets one near its target's. */
const CONCEPTS = [...COLOUR_NAMES, ...TEXTURES, ...TEXT_ONLY_CONCEPTS];
/** Softness of colour matching in normalised units²: neighbours (red/orange) stay apart, noise does not matter. */
const COLOUR_SIGMA2 = 0.6;
/** Luma contrast (normalised units) above which a patch stops being "plain". */
const PLAIN_CONTRAST = 0.3;
/** Weight of the shared "this is a caption/photo" direction in images and generic words. */
const IMAGE_GENERIC = 1.2;
const WORD_GENERIC = 0.35;
/** Hugging Face CLIP's layer_norm_eps. */
const LAYER_NORM_EPS = 1e-5;

/** The vision head a generated graph holds (post-layernorm and projection), for tests that read it back. */
export interface GeneratedVisionHead {
  gamma: Float32Array;
  beta: Float32Array;
  epsilon: number;
  /** W × D, row-major, exactly as stored (quantised for q8). */
  projection: Float32Array;
}

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
    const vision = visionGraph(o, directions, generic, randomVector, q);
    visionHeads[dtype] = vision.head;
    await writeFile(path.join(dir, "onnx", `vision_model${sfx}.onnx`), vision.bytes);
    const text = siglip ? siglipText(o, vocab, vocabSize, directions, generic, randomVector, q) : textGraph(o, vocab, vocabSize, directions, generic, randomVector, q);
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

/** JSON as the Hugging Face files are written: two-space indent, final newline. */
export const jsonText = (v: unknown): string => JSON.stringify(v, null, 2) + "\n";

/**
 * Writes the generated world's CLIP-style tokenizer (every world word one token) into `dir`, which
 * must exist, and returns its vocabulary.
 */
export async function writeTokenizerFiles(dir: string): Promise<Record<string, number>> {
  const tokenizerJson = buildTokenizerJson(WORLD_WORDS);
  await writeFile(path.join(dir, "tokenizer.json"), jsonText(tokenizerJson));
  await writeFile(path.join(dir, "tokenizer_config.json"), jsonText(tokenizerConfig()));
  await writeFile(path.join(dir, "special_tokens_map.json"), jsonText(specialTokensMap()));
  return tokenizerJson.model.vocab;
}

/**
 * Writes a SigLIP-style tokenizer (siglip-model.ts) in which every one of `words` is one piece into
 * `dir`, which must exist, and returns its vocabulary.
 */
export async function writeSiglipTokenizerFiles(dir: string, words: readonly string[] = WORLD_WORDS): Promise<Record<string, number>> {
  const files = siglipTokenizerFiles(words);
  await writeFile(path.join(dir, "tokenizer.json"), jsonText(files.tokenizerJson));
  await writeFile(path.join(dir, "tokenizer_config.json"), jsonText(files.tokenizerConfig));
  await writeFile(path.join(dir, "special_tokens_map.json"), jsonText(files.specialTokensMap));
  return Object.fromEntries(files.vocab);
}

/** Writes config.json and preprocessor_config.json into `dir`, which must exist. */
export async function writeConfigFiles(dir: string, model: object, preprocessor: object): Promise<void> {
  await writeFile(path.join(dir, "config.json"), jsonText(model));
  await writeFile(path.join(dir, "preprocessor_config.json"), jsonText(preprocessor));
}

/** Every word the world's tokenizers spell as one token. */
const WORLD_WORDS = [...CONCEPTS, ...Object.keys(SYNONYMS), ...GENERIC_WORDS];

/**
 * The generated SigLIP model's logit bias: with the published scale 117.33, σ(scale·cos + bias)
 * crosses ½ at cos ≈ 0.65, between this world's matching (≈ 0.8) and non-matching (≈ 0.5)
 * image–caption cosines (the real model's −12.93 puts that point at cos ≈ 0.11, where its cosines lie).
 */
export const GENERATED_LOGIT_BIAS = -76;

type Opts = Required<Omit<GenerateOptions, "contract" | "dtypes" | "tokenizerFrom">>;

function visionGraph(
  o: Opts,
  directions: Map<string, number[]>,
  generic: number[],
  randomVector: (n: number) => number[],
  q: (v: number) => number,
): { bytes: Uint8Array; head: GeneratedVisionHead } {
  // LayerNormalization is an ONNX op from opset 17 on; older exports carry the decomposed pattern.
  const g = new GraphBuilder("clip_vision_world", o.postLayerNorm === "fused" ? 17 : OPSET);
  const p = o.patchSize;
  const x = g.input("pixel_values", FLOAT, ["batch_size", 3, "height", "width"]);
  const pool = (op: string, v: string, k: [number, number]) => g.op(op, [v], { kernel_shape: k, strides: k });
  const patchesLast = (v: string, channels: number) =>
    g.op("Transpose", [g.op("Reshape", [v, g.ints([0, channels, -1])])], { perm: [0, 2, 1] });

  // Colour: channel-wise patch maximum (dark texture bands do not dilute it), matched to prototypes.
  const m = patchesLast(pool("MaxPool", x, [p, p]), 3); // [B,P,3]
  const siglip = o.family === "siglip";
  const [mean, std]: [readonly number[], readonly number[]] = siglip ? [SIGLIP_MEAN, SIGLIP_STD] : o.family === "mobileclip" ? [MOBILECLIP_MEAN, MOBILECLIP_STD] : [CLIP_MEAN, CLIP_STD];
  // The world's colour and texture thresholds are in CLIP's normalised units; MobileCLIP does not
  // normalise, so its pixel differences are ~3.7× smaller and the thresholds shrink with them.
  const u = o.family === "mobileclip" ? CLIP_STD.reduce((a: number, b) => a + b, 0) / 3 : 1;
  const prototypes = COLOUR_NAMES.map((c) => COLOURS[c]!.map((v, ch) => (v / 255 - mean[ch]!) / std[ch]!));
  const protoT = Array.from({ length: 3 }, (_, ch) => prototypes.map((pr) => pr[ch]!)).flat(); // [3,C]
  const mm = g.op("ReduceSum", [g.op("Mul", [m, m]), g.ints([-1])], { keepdims: 1 });
  const cross = g.op("MatMul", [m, g.floats(protoT, [3, COLOUR_NAMES.length])]);
  const protoNorms = g.floats(prototypes.map((pr) => pr.reduce((s, v) => s + v * v, 0)), [COLOUR_NAMES.length]);
  const d2 = g.op("Add", [g.op("Sub", [mm, g.op("Mul", [cross, g.scalar(2)])]), protoNorms]);
  const colourAct = g.op("Exp", [g.op("Mul", [d2, g.scalar(-1 / (COLOUR_SIGMA2 * u * u))])]); // [B,P,C]

  // Texture: luma contrast says plain or not; the range of row means vs column means says stripes.
  const luma = g.op("Conv", [x, g.floats([1 / 3, 1 / 3, 1 / 3], [1, 3, 1, 1])]);
  const range = (v: string, k: [number, number]) =>
    g.op("Add", [pool("MaxPool", v, k), pool("MaxPool", g.op("Neg", [v]), k)]);
  const contrast = range(luma, [p, p]);
  const rowRange = range(pool("AveragePool", luma, [1, p]), [p, 1]);
  const colRange = range(pool("AveragePool", luma, [p, 1]), [1, p]);
  const ratio = g.op("Min", [g.op("Div", [g.op("Max", [rowRange, colRange]), g.op("Add", [contrast, g.scalar(1e-3 * u)])]), g.scalar(1)]);
  const plain = g.op("Sigmoid", [g.op("Mul", [g.op("Sub", [g.scalar(PLAIN_CONTRAST * u), contrast]), g.scalar(25 / u)])]);
  const busy = g.op("Sub", [g.scalar(1), plain]);
  const striped = g.op("Mul", [busy, ratio]);
  const checkered = g.op("Mul", [busy, g.op("Sub", [g.scalar(1), ratio])]);
  const textureAct = patchesLast(g.op("Concat", [plain, striped, checkered], { axis: 1 }), 3); // [B,P,3]

  // Lift features (and a constant bias row) to width W with rows h that are orthonormal and
  // orthogonal to the all-ones vector, each plus a constant offset. The post-layernorm's mean
  // subtraction removes exactly the offsets and what is left is Σ feature·h, which the projection
  // hᵀ·concepts maps onto the concepts; its division by σ only rescales. The same holds for every
  // token, so a patch's local feature names that patch's concepts.
  const W = o.visionWidth;
  const ones = unit(new Array<number>(W).fill(1));
  const features = [...COLOUR_NAMES, ...TEXTURES];
  const h = orthonormalRows(features.length + 1, W, randomVector, [ones]);
  const lift = h.map((r, k) => r.map((v) => v + 0.2 + 0.3 * Math.cos(1.3 * k + 0.4)));
  const hidden = g.op("Add", [
    g.op("MatMul", [g.op("Concat", [colourAct, textureAct], { axis: 2 }), g.floats(lift.slice(0, -1).flat().map(q), [features.length, W])]),
    g.floats(lift[features.length]!.map(q), [W]),
  ]);
  const cls = g.op("ReduceMean", [hidden], { axes: [1], keepdims: 1 }); // [B,1,W]
  const lastHiddenState = g.op("Concat", [cls, hidden], { axis: 1 });

  // A non-uniform γ and a non-zero β, as trained models have, so that reading them back is a real
  // test. Dividing projection row w by γ_w undoes γ, and β/γ is orthogonal to every h and to the
  // ones, so β adds nothing after the projection. The projection also maps the all-ones direction,
  // which a correct layernorm always removes, onto a direction of its own: code that skips the mean
  // subtraction gets visibly different embeddings. image_embeds thus points exactly where it would
  // without a layernorm and every cosine the other tests rely on is unchanged. All deterministic (no
  // draws from the seeded stream), so the text graphs stay bit-identical.
  const gamma = Array.from({ length: W }, (_, w) => 1 + 0.5 * Math.sin(0.9 * w + 0.2));
  const betaOverGamma = unit(orthogonalTo(Array.from({ length: W }, (_, w) => Math.cos(2.1 * w + 0.5)), [ones, ...h])).map((v) => 0.4 * v);
  const beta = gamma.map((gw, w) => gw * betaOverGamma[w]!);
  const conceptRows = [...features.map((f) => directions.get(f)!), generic.map((v) => v * IMAGE_GENERIC)];
  const onesTarget = unit(Array.from({ length: o.projectionDim }, (_, d) => Math.cos(0.7 * d + 1)));
  const projection = Array.from({ length: W }, (_, w) =>
    Array.from(
      { length: o.projectionDim },
      (_, d) => (4 * (conceptRows.reduce((s, row, k) => s + h[k]![w]! * row[d]!, 0) + ones[w]! * onesTarget[d]!)) / gamma[w]!,
    ),
  ).flat().map(q);
  const gammaName = g.floats(gamma, [W]);
  const betaName = g.floats(beta, [W]);
  const projectionName = g.floats(projection, [W, o.projectionDim]);
  const head = (x: string) => g.op("MatMul", [postLayerNorm(g, x, gammaName, betaName, o.postLayerNorm), projectionName]);

  const patches = (o.imageSize / o.patchSize) ** 2;
  if (siglip) {
    // SigLIP has no class token: last_hidden_state is the patches alone, and pooler_output is the
    // attention-pooled head (here, uniform attention: the same mean the class token holds).
    g.output(hidden, "last_hidden_state", FLOAT, ["batch_size", patches, W]);
    g.output(head(g.op("Squeeze", [cls, g.ints([1])])), "pooler_output", FLOAT, ["batch_size", o.projectionDim]);
    return { bytes: g.encode(), head: { gamma: Float32Array.from(gamma), beta: Float32Array.from(beta), epsilon: LAYER_NORM_EPS, projection: Float32Array.from(projection) } };
  }
  g.output(lastHiddenState, "last_hidden_state", FLOAT, ["batch_size", 1 + patches, W]);
  // The class token is picked by a Gather on the token axis, as in Hugging Face exports.
  g.output(head(g.op("Gather", [lastHiddenState, g.ints([0], [])], { axis: 1 })), "image_embeds", FLOAT, ["batch_size", o.projectionDim]);
  if (o.localEmbeds) {
    const local = g.op("Slice", [head(lastHiddenState), g.ints([1]), g.ints([1 + patches]), g.ints([1])]);
    g.output(local, "local_embeds", FLOAT, ["batch_size", patches, o.projectionDim]);
  }
  return {
    bytes: g.encode(),
    head: { gamma: Float32Array.from(gamma), beta: Float32Array.from(beta), epsilon: LAYER_NORM_EPS, projection: Float32Array.from(projection) },
  };
}

/** nn.LayerNorm over the last axis, written the way the exporters write it. */
function postLayerNorm(g: GraphBuilder, x: string, gamma: string, beta: string, form: "decomposed" | "fused"): string {
  if (form === "fused") return g.op("LayerNormalization", [x, gamma, beta], { axis: -1, epsilon: { float: LAYER_NORM_EPS } });
  // PyTorch's pattern below opset 17, with its literals as Constant nodes.
  const centred = g.op("Sub", [x, g.op("ReduceMean", [x], { axes: [-1], keepdims: 1 })]);
  const variance = g.op("ReduceMean", [g.op("Pow", [centred, g.constant(2)])], { axes: [-1], keepdims: 1 });
  const normed = g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [variance, g.constant(LAYER_NORM_EPS)])])]);
  return g.op("Add", [g.op("Mul", [normed, gamma]), beta]);
}

function textGraph(
  o: Opts,
  vocab: Record<string, number>,
  vocabSize: number,
  directions: Map<string, number[]>,
  generic: number[],
  randomVector: (n: number) => number[],
  q: (v: number) => number,
): Uint8Array {
  const D = o.projectionDim;
  const table = tokenTable(vocab, vocabSize, D, (token) => {
    if (token === "<|endoftext|>") return new Array<number>(D).fill(0);
    if (token === "<|startoftext|>") return generic.map((v) => 0.5 * v);
    return token.endsWith("</w>") ? token.slice(0, -4) : undefined;
  }, directions, generic, randomVector, q);
  const g = new GraphBuilder("clip_text_world");
  const length = o.family === "mobileclip" ? MOBILECLIP_TEXT_LENGTH : "sequence_length";
  const ids = g.input("input_ids", INT64, ["batch_size", length]);
  let tokens = g.op("Gather", [g.floats(table, [vocabSize, D]), ids], { axis: 0 }); // [B,L,D]
  if (o.textAttentionMask) {
    const mask = g.input("attention_mask", INT64, ["batch_size", "sequence_length"]);
    tokens = g.op("Mul", [tokens, g.op("Unsqueeze", [g.op("Cast", [mask], { to: FLOAT }), g.ints([-1])])]);
  }
  const causal = g.op("CumSum", [tokens, g.ints([1], [])]);
  const eot = g.op("ArgMax", [ids], { axis: 1, keepdims: 1 }); // first occurrence of the largest id
  const index = g.op("Expand", [g.op("Unsqueeze", [eot, g.ints([2])]), g.ints([1, 1, D])]);
  const pooled = g.op("Squeeze", [g.op("GatherElements", [causal, index], { axis: 1 }), g.ints([1])]);
  g.output(causal, "last_hidden_state", FLOAT, ["batch_size", length, D]);
  g.output(g.op("Mul", [pooled, g.scalar(3)]), "text_embeds", FLOAT, ["batch_size", D]);
  return g.encode();
}

/**
 * Token embeddings of a vocabulary: `special` gives a token's row outright, or the world word it
 * spells (undefined: a fragment). Concept words get their direction, generic words the shared
 * caption direction, anything else a small random vector.
 */
function tokenTable(
  vocab: Record<string, number>,
  vocabSize: number,
  D: number,
  special: (token: string) => number[] | string | undefined,
  directions: Map<string, number[]>,
  generic: number[],
  randomVector: (n: number) => number[],
  q: (v: number) => number,
): Float32Array {
  const table = new Float32Array(vocabSize * D);
  const genericWords = new Set(GENERIC_WORDS);
  for (const [token, id] of Object.entries(vocab)) {
    const s = special(token);
    let row: number[];
    if (Array.isArray(s)) row = s;
    else if (s !== undefined && directions.has(s)) row = directions.get(s)!;
    else if (s !== undefined && genericWords.has(s)) {
      const r = randomVector(D);
      row = generic.map((v, i) => WORD_GENERIC * v + 0.05 * r[i]!);
    } else row = randomVector(D).map((v) => 0.08 * v);
    table.set(row.map(q), id * D);
  }
  return table;
}

/**
 * The SigLIP text tower (siglip-model.ts) over the world's table. Padding (</s>) and the other
 * specials embed as zero, so only the position of the last (pooled) slot depends on the padded length.
 */
function siglipText(
  o: Opts,
  vocab: Record<string, number>,
  vocabSize: number,
  directions: Map<string, number[]>,
  generic: number[],
  randomVector: (n: number) => number[],
  q: (v: number) => number,
): Uint8Array {
  const D = o.projectionDim;
  const table = tokenTable(vocab, vocabSize, D, (token) => {
    if (token.startsWith("<")) return new Array<number>(D).fill(0);
    return token.startsWith(METASPACE) && token.length > 1 ? token.slice(1) : undefined;
  }, directions, generic, randomVector, q);
  const positions = Float32Array.from(Array.from({ length: SIGLIP_MAX_LENGTH }, () => randomVector(D).map((v) => q(0.3 * v))).flat());
  return siglipTextGraph(table, vocabSize, positions, D);
}

/** GPT-2/CLIP byte → printable-unicode table, in CLIP's vocabulary order. */
export function bytesToUnicode(): Map<number, string> {
  const bs: number[] = [];
  for (const [a, b] of [[33, 126], [161, 172], [174, 255]] as const) for (let i = a; i <= b; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [b, String.fromCodePoint(cs[i]!)]));
}

const CLIP_SPLIT_REGEX = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/**
 * A CLIP-structured byte-level BPE tokenizer.json whose merges spell exactly `words` (lowercase
 * ASCII) as single tokens; any other text falls back to smaller pieces, as in the real vocabulary.
 */
function buildTokenizerJson(words: readonly string[]) {
  const symbols = [...bytesToUnicode().values()];
  const vocab: Record<string, number> = {};
  const add = (t: string) => {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  symbols.forEach(add);
  symbols.forEach((s) => add(s + "</w>"));
  // Words are added one at a time: simulate BPE with the merges so far, then append merges that join
  // the resulting pieces left to right. Appended merges rank below all earlier ones, so they cannot
  // change how an earlier word is split: every word stays a single token by construction.
  const merges: string[] = [];
  const rank = new Map<string, number>();
  for (const w of new Set(words)) {
    const pieces = bpe([...w].map((c, i, all) => (i === all.length - 1 ? c + "</w>" : c)), rank);
    let acc = pieces[0]!;
    for (const next of pieces.slice(1)) {
      const key = `${acc} ${next}`;
      if (!rank.has(key)) {
        rank.set(key, merges.length);
        merges.push(key);
        add(acc + next);
      }
      acc += next;
    }
  }
  add("<|startoftext|>");
  add("<|endoftext|>");
  const special = (content: string, normalized: boolean) => ({
    id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized, special: true,
  });
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special("<|startoftext|>", true), special("<|endoftext|>", false)],
    normalizer: { type: "Sequence", normalizers: [{ type: "NFC" }, { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, { type: "Lowercase" }] },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: CLIP_SPLIT_REGEX }, behavior: "Removed", invert: true },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: { type: "RobertaProcessing", sep: ["<|endoftext|>", vocab["<|endoftext|>"]], cls: ["<|startoftext|>", vocab["<|startoftext|>"]], trim_offsets: false, add_prefix_space: false },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: "<|endoftext|>", continuing_subword_prefix: "", end_of_word_suffix: "</w>",
      fuse_unk: false, byte_fallback: false, vocab, merges,
    },
  };
  // The world only works if every word is one token: check with the same library the product uses.
  const tok = new Tokenizer(json, tokenizerConfig());
  for (const w of new Set(words)) {
    const ids = tok.encode(w).ids;
    if (ids.length !== 3) throw new Error(`generated vocabulary splits "${w}" into ${ids.length - 2} tokens`);
  }
  return json;
}

function tokenizerConfig() {
  const added = (content: string) => ({ __type: "AddedToken", content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  return {
    add_prefix_space: false,
    bos_token: added("<|startoftext|>"),
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    eos_token: added("<|endoftext|>"),
    errors: "replace",
    model_max_length: 77,
    pad_token: "<|endoftext|>",
    processor_class: "CLIPProcessor",
    tokenizer_class: "CLIPTokenizer",
    unk_token: added("<|endoftext|>"),
  };
}

function specialTokensMap() {
  const t = (content: string) => ({ content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  return { bos_token: t("<|startoftext|>"), eos_token: t("<|endoftext|>"), pad_token: "<|endoftext|>", unk_token: t("<|endoftext|>") };
}

function modelConfig(o: Opts, vocabSize: number) {
  return {
    _name_or_path: "clip-ood/generated-world",
    architectures: ["CLIPModel"],
    model_type: "clip",
    projection_dim: o.projectionDim,
    logit_scale_init_value: 2.6592,
    text_config: { model_type: "clip_text_model", hidden_size: o.projectionDim, vocab_size: vocabSize, max_position_embeddings: 77, bos_token_id: vocabSize - 2, eos_token_id: vocabSize - 1, projection_dim: o.projectionDim },
    vision_config: { model_type: "clip_vision_model", hidden_size: o.visionWidth, image_size: o.imageSize, patch_size: o.patchSize, num_channels: 3, projection_dim: o.projectionDim },
  };
}

export interface PreprocessorConfigOptions {
  /** Write `size` and `crop_size` as plain integers, like older exports. */
  legacyIntSize?: boolean;
  /** PIL's filter number: 3 bicubic (CLIP, the default), 2 bilinear (MobileCLIP). */
  resample?: 2 | 3;
  mean?: readonly number[];
  std?: readonly number[];
  /** Default "CLIPImageProcessor", transformers' current name; older exports say "CLIPFeatureExtractor". */
  imageProcessorType?: "CLIPImageProcessor" | "CLIPFeatureExtractor";
}

/** A CLIP preprocessor_config.json: resize the shortest edge to `imageSize`, centre-crop, normalise. */
export function preprocessorConfig(imageSize: number, o: PreprocessorConfigOptions = {}) {
  return {
    crop_size: o.legacyIntSize ? imageSize : { height: imageSize, width: imageSize },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    feature_extractor_type: "CLIPFeatureExtractor",
    image_mean: [...(o.mean ?? CLIP_MEAN)],
    image_processor_type: o.imageProcessorType ?? "CLIPImageProcessor",
    image_std: [...(o.std ?? CLIP_STD)],
    resample: o.resample ?? 3,
    rescale_factor: 1 / 255,
    size: o.legacyIntSize ? imageSize : { shortest_edge: imageSize },
  };
}

/** Plain BPE: repeatedly merge every occurrence of the adjacent pair with the lowest rank. */
function bpe(symbols: string[], rank: ReadonlyMap<string, number>): string[] {
  let parts = symbols;
  for (;;) {
    let best: string | undefined;
    for (let i = 0; i + 1 < parts.length; i++) {
      const key = `${parts[i]} ${parts[i + 1]}`;
      if (rank.has(key) && (best === undefined || rank.get(key)! < rank.get(best)!)) best = key;
    }
    if (best === undefined) return parts;
    const next: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (i + 1 < parts.length && `${parts[i]} ${parts[i + 1]}` === best) {
        next.push(parts[i]! + parts[i + 1]!);
        i++;
      } else next.push(parts[i]!);
    }
    parts = next;
  }
}

/** Stand-in for int8 weight quantisation: values snapped to a 1/64 grid. */
function quantize(v: number): number {
  return Math.round(v * 64) / 64;
}

function unit(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/**
 * `count` random orthonormal rows, also orthogonal to the unit rows of `against`. Draws exactly
 * `count` random vectors whatever `against` holds, so later draws from the stream do not move.
 */
function orthonormalRows(count: number, dim: number, randomVector: (n: number) => number[], against: readonly number[][] = []): number[][] {
  if (count + against.length > dim) throw new Error(`cannot make ${count} orthonormal rows in ${dim} dimensions`);
  const rows: number[][] = [];
  while (rows.length < count) rows.push(unit(orthogonalTo(randomVector(dim), [...against, ...rows])));
  return rows;
}

/** v minus its components along the orthonormal `rows` (one Gram–Schmidt step). */
function orthogonalTo(v: readonly number[], rows: readonly (readonly number[])[]): number[] {
  let out = [...v];
  for (const r of rows) {
    const d = out.reduce((s, x, i) => s + x * r[i]!, 0);
    out = out.map((x, i) => x - d * r[i]!);
  }
  return out;
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
