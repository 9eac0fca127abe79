/**
 * Generates full-size CLIP ViT-B/32, ViT-B/16 and ViT-L/14 model folders, and a SigLIP-shaped one
 * (SigLIP-B/16: google/siglip-base-patch16-224 as Xenova/siglip-base-patch16-224 exports it), with
 * random weights, laid out and wired like the Hugging Face ONNX exports (MODEL-FOLDER.md,
 * MODEL-FOLDERS.md), so that benchmarks time the real amount and shape of work without the real
 * checkpoint (which these machines cannot download).
 *
 * CLIP's towers follow transformers' CLIPModel: patch Conv → class token → position embedding →
 * pre-layernorm → pre-norm blocks (multi-head self-attention, quick_gelu MLP) → post-layernorm on the
 * class token → visual projection; token + position embedding → causal blocks → final layernorm →
 * pooling at the largest token id → text projection. SigLIP's follow SiglipModel: patch Conv with bias
 * → position embedding (196 tokens, no class token) → the same blocks with tanh-approximated gelu →
 * post-layernorm → attention-pooling head (a learned probe attends over the tokens, + MLP) →
 * pooler_output; input_ids alone (no attention_mask, always padded to 64) → bidirectional blocks →
 * final layernorm → the last position through a Linear head → pooler_output. Its logit_scale and
 * logit_bias are the real model's, in onnx/model.onnx (a scoring head only, not the towers again),
 * and its tokenizer is a generated SentencePiece-style one (siglip-model.ts) that holds the bench
 * prompts' words. The q8 variant is what onnxruntime.quantization.quantize_dynamic writes for MatMul
 * weights (see Q8_PRESETS), with the patch Conv, layernorms and embeddings left in fp32.
 *
 * LayerNorm is the opset-17 LayerNormalization op: onnxruntime fuses older exports' decomposed pattern
 * (ReduceMean, Sub, Pow, …) into this same kernel at load, so the timing is a real export's, and the
 * graph does not depend on that fusion matching. quick_gelu is written out (Mul, Sigmoid, Mul) and
 * onnxruntime fuses it to QuickGelu, as it does for real exports; SigLIP's gelu is written as PyTorch
 * exports it (see activation()).
 *
 *   tsx scripts/make-bench-model.ts <dir> --arch B/32|B/16|L/14|SigLIP-B/16 [--q8 [--q8-form xenova|int8]] [--seed N] [--force]
 *
 * The folder belongs outside the repository (e.g. .cache/ or /tmp): it holds hundreds of MB and, when
 * ../shared is present, the real tokenizer files, which must not be copied into the project.
 */
import { statSync } from "node:fs";
import { chmod, copyFile, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { jsonText, preprocessorConfig, writeConfigFiles } from "./test-model/config.js";
import { TOKENIZER_FILES, writeSiglipTokenizerFiles, writeTokenizerFiles } from "./test-model/tokenizer.js";
import { ARCHS, ARCH_NAMES, SIGLIP_ARCHS, isArch, isSiglipArch } from "./clip-archs.js";
import type { Arch, SiglipArch, TowerShape } from "./clip-archs.js";
import { GENERATED_LOGIT_SCALE, PUNCTUATION_CLASS, SIGLIP_MAX_LENGTH, siglipCombinedGraph, siglipModelConfig, siglipPreprocessorConfig } from "./siglip-model.js";
import { FLOAT, GraphBuilder, INT64 } from "../src/maths/onnx-graph.js";
import { IMAGENET_1K } from "../src/text/imagenet1k.js";
import { TEMPLATE_PRESETS } from "../src/text/templates.js";

export type BenchArch = Arch | SiglipArch;
export const BENCH_ARCH_NAMES: readonly BenchArch[] = [...ARCH_NAMES, ...(Object.keys(SIGLIP_ARCHS) as SiglipArch[])];

export function isBenchArch(value: string): value is BenchArch {
  return isArch(value) || isSiglipArch(value);
}


/** Smaller dimensions, for tests: anything not given keeps the architecture's value. */
export interface Shrink {
  width?: number;
  layers?: number;
  heads?: number;
  /** MLP width of both towers. */
  mlp?: number;
  textWidth?: number;
  textLayers?: number;
  textHeads?: number;
  vocab?: number;
}

type TowerSpec = TowerShape;

export interface ClipSpec {
  arch: BenchArch;
  family: "clip" | "siglip";
  vision: TowerSpec & { imageSize: number; patchSize: number };
  text: TowerSpec & { vocab: number; context: number };
  /** The embedding width of both towers; SigLIP's, which has no projection, is the vision width. */
  projectionDim: number;
}

/**
 * How one tower's MatMul weights are quantised for the q8 variant.
 * - op "matmul-integer": quantize_dynamic's QOperator output, DynamicQuantizeLinear(x) → MatMulInteger →
 *   Cast → Mul by x_scale·w_scale (→ Add bias), which onnxruntime fuses to DynamicQuantizeMatMul at load;
 *   "contrib": that com.microsoft DynamicQuantizeMatMul written directly (runs the same kernels).
 * - int8 weights are symmetric (zero point 0; ±127, or ±64 with reduceRange), uint8 weights asymmetric
 *   over [min(w,0), max(w,0)] (0..255, or 0..127), as onnxruntime.quantization computes them.
 */
export interface Q8Form {
  op: "matmul-integer" | "contrib";
  weights: "int8" | "uint8";
  /** One scale (and zero point) per output column rather than one per tensor. */
  perColumn: boolean;
  /** 7-bit weights (quantize_dynamic's reduce_range). */
  reduceRange: boolean;
}

export type Q8Preset = "xenova" | "int8";
export interface Q8Forms {
  vision: Q8Form;
  text: Q8Form;
}

/**
 * - "xenova" (default): what transformers.js's converter wrote for the Xenova CLIP exports
 *   (scripts/convert.py: quantize_dynamic with per_channel and reduce_range, QUInt8 weights for a graph
 *   that holds a Conv, i.e. the vision tower, QInt8 otherwise), so timings stand for the real q8 files.
 *   Unlike that converter the patch Conv and the token embedding stay fp32 (together ~5% of the work).
 * - "int8": quantize_dynamic's own defaults (QInt8, per tensor) for both towers. Signed weights run
 *   onnxruntime's u8s8 kernels, which use VNNI; uint8 weights run u8u8 kernels that cannot, and on an
 *   AVX-512 VNNI CPU the int8 vision tower is about twice as fast. Measured for ViT-B/32 vision, batch
 *   16, one thread, onnxruntime-node 1.30 on an AMD EPYC (Zen 5) core: fp32 25 images/s, "xenova" 37,
 *   "int8" 70 (per column 65, uint8 per tensor 36; the contrib op times as its MatMulInteger form).
 */
export const Q8_PRESETS: Readonly<Record<Q8Preset, Q8Forms>> = {
  xenova: {
    vision: { op: "matmul-integer", weights: "uint8", perColumn: true, reduceRange: true },
    text: { op: "matmul-integer", weights: "int8", perColumn: true, reduceRange: true },
  },
  int8: {
    vision: { op: "matmul-integer", weights: "int8", perColumn: false, reduceRange: false },
    text: { op: "matmul-integer", weights: "int8", perColumn: false, reduceRange: false },
  },
};

/** A preset, or one form for both towers (fields not given come from the "int8" preset). */
export function resolveQ8Forms(form: Q8Preset | Partial<Q8Form> = "xenova"): Q8Forms {
  if (typeof form === "string") {
    const preset = Q8_PRESETS[form];
    if (!preset) throw new Error(`unknown q8 form "${String(form)}": use ${Object.keys(Q8_PRESETS).join(" or ")}`);
    return preset;
  }
  return { vision: { ...Q8_PRESETS.int8.vision, ...form }, text: { ...Q8_PRESETS.int8.text, ...form } };
}

export interface BenchModelOptions {
  arch: BenchArch;
  /** Also write the q8 (`_quantized`) variant of both towers, quantised from the same weights. */
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

/** What the families' encoder blocks differ in besides their shapes (config.json's layer_norm_eps, hidden_act). */
interface BlockStyle {
  eps: number;
  activation: "quick_gelu" | "gelu_pytorch_tanh";
}
const BLOCK_STYLE: Readonly<Record<ClipSpec["family"], BlockStyle>> = {
  clip: { eps: 1e-5, activation: "quick_gelu" },
  siglip: { eps: 1e-6, activation: "gelu_pytorch_tanh" },
};
/** Hugging Face's quick_gelu: x·σ(1.702x). */
const QUICK_GELU = 1.702;
/** CLIP's BPE vocabulary; SigLIP's SentencePiece one (google/siglip-base-patch16-224's vocab_size). */
const CLIP_VOCAB = 49408;
const SIGLIP_VOCAB = 32000;
/**
 * siglip-base-patch16-224's learned scoring values (the scale as used, exp of the stored logit_scale),
 * so that scores from a generated SigLIP folder are on the real model's scale.
 */
const SIGLIP_LOGIT_SCALE = GENERATED_LOGIT_SCALE;
const SIGLIP_LOGIT_BIAS = -12.9324;
/**
 * Masked attention logits. HF uses float32's minimum; a finite -1e9 keeps the causal mask plus the
 * padding mask from summing to -inf while still giving those keys exactly zero weight.
 */
const MASKED = -1e9;
const STAMP_FILE = "bench-model.json";
/** Bump when the graphs or weights change, so stamped folders are regenerated. */
const GENERATOR_VERSION = 1;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export function benchSpec(arch: BenchArch, shrink: Shrink = {}): ClipSpec {
  if (!isBenchArch(arch)) throw new Error(`unknown arch "${String(arch)}": use ${BENCH_ARCH_NAMES.join(", ")}`);
  const siglip = isSiglipArch(arch);
  const a = siglip ? SIGLIP_ARCHS[arch] : ARCHS[arch];
  const width = shrink.width ?? a.vision.width;
  const spec: ClipSpec = {
    arch,
    family: siglip ? "siglip" : "clip",
    vision: {
      imageSize: a.imageSize,
      patchSize: a.patchSize,
      width,
      layers: shrink.layers ?? a.vision.layers,
      heads: shrink.heads ?? a.vision.heads,
      mlp: shrink.mlp ?? a.vision.mlp,
    },
    text: {
      vocab: shrink.vocab ?? (siglip ? SIGLIP_VOCAB : CLIP_VOCAB),
      context: siglip ? SIGLIP_MAX_LENGTH : 77,
      width: shrink.textWidth ?? a.text.width,
      layers: shrink.textLayers ?? a.text.layers,
      heads: shrink.textHeads ?? a.text.heads,
      mlp: shrink.mlp ?? a.text.mlp,
    },
    projectionDim: siglip ? width : a.projectionDim,
  };
  for (const [tower, t] of [["vision", spec.vision], ["text", spec.text]] as const) {
    for (const [k, v] of Object.entries(t)) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${tower} ${k} must be a positive integer, got ${v}`);
    }
    if (t.width % t.heads !== 0) throw new Error(`${tower} width ${t.width} is not divisible by its ${t.heads} heads`);
  }
  return spec;
}

// ---------------------------------------------------------------------------------------------------
// Parameters: one table of names, shapes and initial distributions drives both the count and the graphs.

type Init = { normal: number } | "ones" | "zeros";
export interface ParameterInfo {
  name: string;
  /** As stored in the graph: Linear weights are [in, out] (MatMul's B), i.e. PyTorch's transposed. */
  shape: number[];
  init: Init;
}

/**
 * Initial scales: std 0.02 (CLIP's initializer_range) for weights and biases, layernorms γ = 1, β = 0.
 * q and k get std √(2/width) instead, so that attention logits (std ≈ width·σ_q·σ_k = 2) make softmax
 * peaked, as in trained CLIP, rather than almost uniform. The class embedding and projections use
 * Hugging Face's width^-½. Residual growth stays small: each block adds ~0.15 variance to a stream that
 * starts at 1 (measured: the full B/32's last_hidden_state has std 1.8, image_embeds std 1.1).
 */
function layerParameters(prefix: string, t: TowerSpec): ParameterInfo[] {
  const qk = qkStd(t.width);
  return [
    ...normParameters(`${prefix}.layer_norm1`, t.width),
    ...linearParameters(`${prefix}.self_attn.q_proj`, t.width, t.width, qk),
    ...linearParameters(`${prefix}.self_attn.k_proj`, t.width, t.width, qk),
    ...linearParameters(`${prefix}.self_attn.v_proj`, t.width, t.width),
    ...linearParameters(`${prefix}.self_attn.out_proj`, t.width, t.width),
    ...normParameters(`${prefix}.layer_norm2`, t.width),
    ...mlpParameters(`${prefix}.mlp`, t),
  ];
}

const qkStd = (width: number) => Math.sqrt(2 / width);

const linearParameters = (name: string, nIn: number, nOut: number, std = 0.02): ParameterInfo[] => [
  { name: `${name}.weight`, shape: [nIn, nOut], init: { normal: std } },
  { name: `${name}.bias`, shape: [nOut], init: { normal: 0.02 } },
];

const mlpParameters = (name: string, t: TowerSpec): ParameterInfo[] => [...linearParameters(`${name}.fc1`, t.width, t.mlp), ...linearParameters(`${name}.fc2`, t.mlp, t.width)];

const normParameters = (name: string, width: number): ParameterInfo[] => [
  { name: `${name}.weight`, shape: [width], init: "ones" },
  { name: `${name}.bias`, shape: [width], init: "zeros" },
];

const layersParameters = (tower: "vision_model" | "text_model", t: TowerSpec): ParameterInfo[] =>
  Array.from({ length: t.layers }, (_, i) => layerParameters(`${tower}.encoder.layers.${i}`, t)).flat();

/**
 * Every parameter of the vision tower: CLIP's visual projection included; SigLIP's attention-pooling
 * head (SiglipMultiheadAttentionPoolingHead) included, its nn.MultiheadAttention's packed in_proj
 * stored as the two Linears that PyTorch's forward splits it into (queries from the probe, keys and
 * values from the tokens). The probe is N(0, 1), torch.randn as SigLIP creates it.
 */
export function visionParameters(spec: ClipSpec): ParameterInfo[] {
  const v = spec.vision;
  const patches = (v.imageSize / v.patchSize) ** 2;
  const patchWeight: ParameterInfo = { name: "vision_model.embeddings.patch_embedding.weight", shape: [v.width, 3, v.patchSize, v.patchSize], init: { normal: 0.02 } };
  if (spec.family === "siglip") {
    const head = "vision_model.head";
    return [
      patchWeight,
      { name: "vision_model.embeddings.patch_embedding.bias", shape: [v.width], init: { normal: 0.02 } },
      { name: "vision_model.embeddings.position_embedding.weight", shape: [patches, v.width], init: { normal: 0.02 } },
      ...layersParameters("vision_model", v),
      ...normParameters("vision_model.post_layernorm", v.width),
      { name: `${head}.probe`, shape: [1, 1, v.width], init: { normal: 1 } },
      ...linearParameters(`${head}.attention.in_proj_q`, v.width, v.width, qkStd(v.width)),
      ...linearParameters(`${head}.attention.in_proj_kv`, v.width, 2 * v.width, qkStd(v.width)),
      ...linearParameters(`${head}.attention.out_proj`, v.width, v.width),
      ...normParameters(`${head}.layernorm`, v.width),
      ...mlpParameters(`${head}.mlp`, v),
    ];
  }
  return [
    patchWeight,
    { name: "vision_model.embeddings.class_embedding", shape: [v.width], init: { normal: v.width ** -0.5 } },
    { name: "vision_model.embeddings.position_embedding.weight", shape: [1 + patches, v.width], init: { normal: 0.02 } },
    ...normParameters("vision_model.pre_layrnorm", v.width),
    ...layersParameters("vision_model", v),
    ...normParameters("vision_model.post_layernorm", v.width),
    { name: "visual_projection.weight", shape: [v.width, spec.projectionDim], init: { normal: v.width ** -0.5 } },
  ];
}

/** Every parameter of the text tower: CLIP's text projection, or SigLIP's head (a Linear with bias). */
export function textParameters(spec: ClipSpec): ParameterInfo[] {
  const t = spec.text;
  const std = t.width ** -0.5;
  return [
    { name: "text_model.embeddings.token_embedding.weight", shape: [t.vocab, t.width], init: { normal: 0.02 } },
    { name: "text_model.embeddings.position_embedding.weight", shape: [t.context, t.width], init: { normal: 0.02 } },
    ...layersParameters("text_model", t),
    ...normParameters("text_model.final_layer_norm", t.width),
    ...(spec.family === "siglip"
      ? linearParameters("text_model.head", t.width, spec.projectionDim, std)
      : [{ name: "text_projection.weight", shape: [t.width, spec.projectionDim], init: { normal: std } }]),
  ];
}

const elements = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Parameters per tower graph, projections and heads included, from the architecture alone. CLIPModel's
 * logit_scale (SiglipModel's logit_scale and logit_bias) lives in neither tower graph.
 */
export function parameterCount(arch: BenchArch | ClipSpec): { vision: number; text: number } {
  const spec = typeof arch === "string" ? benchSpec(arch) : arch;
  const sum = (ps: ParameterInfo[]) => ps.reduce((s, p) => s + elements(p.shape), 0);
  return { vision: sum(visionParameters(spec)), text: sum(textParameters(spec)) };
}

// ---------------------------------------------------------------------------------------------------
// Seeded weights. Each tensor has its own stream, seeded by (seed, name), so any tensor can be
// regenerated alone and identically for the fp32 and q8 graphs without holding a tower twice.

/** FNV-1a over the name, mixed with the seed: the tensor's stream seed. */
function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Fills `out` with N(0, std²) draws: sfc32 uniforms through Box–Muller (both outputs used), inlined
 * because the full model needs ~150 M draws.
 */
export function fillNormal(out: Float32Array, std: number, seed: number): Float32Array {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed | 0;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next();
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    const u1 = (next() + 1) / 4294967297; // (0, 1]: log stays finite
    const u2 = next() / 4294967296;
    const r = std * Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    out[i] = r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

function materialize(p: ParameterInfo, seed: number): Float32Array {
  const out = new Float32Array(elements(p.shape));
  if (p.init === "ones") return out.fill(1);
  if (p.init === "zeros") return out;
  return fillNormal(out, p.init.normal, streamSeed(seed, p.name));
}

// ---------------------------------------------------------------------------------------------------
// Quantisation (pure maths, as onnxruntime.quantization's compute_scale_zp / quantize_data).

export interface QuantizedMatrix {
  data: Int8Array | Uint8Array;
  /** One per tensor, or one per column. */
  scale: Float32Array;
  zeroPoint: Int8Array | Uint8Array;
}

/** Quantises a row-major rows×cols matrix (MatMul's B) per tensor or per column. */
export function quantizeMatrix(w: Float32Array, rows: number, cols: number, form: Q8Form): QuantizedMatrix {
  const groups = form.perColumn ? cols : 1;
  const signed = form.weights === "int8";
  const [qmin, qmax] = signed ? (form.reduceRange ? [-64, 64] : [-127, 127]) : form.reduceRange ? [0, 127] : [0, 255];
  const lo = new Float32Array(groups);
  const hi = new Float32Array(groups);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = form.perColumn ? c : 0;
      const v = w[r * cols + c]!;
      if (v < lo[g]!) lo[g] = v;
      if (v > hi[g]!) hi[g] = v;
    }
  }
  const scale = new Float32Array(groups);
  const zero = new Int32Array(groups);
  for (let g = 0; g < groups; g++) {
    // The range always holds 0 so that 0 is exact; int8 weights are symmetric around it.
    const absmax = Math.max(-lo[g]!, hi[g]!);
    const [rmin, rmax] = signed ? [-absmax, absmax] : [lo[g]!, hi[g]!];
    const s = rmax > rmin ? (rmax - rmin) / (qmax - qmin) : 1;
    scale[g] = s;
    zero[g] = roundHalfEven(qmin - rmin / s);
  }
  const data = signed ? new Int8Array(rows * cols) : new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = form.perColumn ? c : 0;
      const q = roundHalfEven(w[r * cols + c]! / scale[g]!) + zero[g]!;
      data[r * cols + c] = Math.min(qmax, Math.max(qmin, q));
    }
  }
  return { data, scale, zeroPoint: signed ? Int8Array.from(zero) : Uint8Array.from(zero) };
}

/** numpy's round (ties to even), which onnxruntime.quantization uses; Math.round sends ties up. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---------------------------------------------------------------------------------------------------
// Graphs

export type Variant = { kind: "fp32" } | { kind: "q8"; form: Q8Form };

/** The parameters of one tower, generated on demand and put into the graph under their own names. */
class Weights {
  private readonly byName: Map<string, ParameterInfo>;
  /** Activations already quantised: like quantize_dynamic, q, k and v share one DynamicQuantizeLinear. */
  private readonly quantized = new Map<string, [string, string, string]>();
  constructor(
    private readonly g: GraphBuilder,
    params: readonly ParameterInfo[],
    private readonly seed: number,
    private readonly variant: Variant,
  ) {
    this.byName = new Map(params.map((p) => [p.name, p]));
  }

  private info(name: string): ParameterInfo {
    const p = this.byName.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    return p;
  }

  /** An fp32 initializer holding parameter `name`. */
  fp32(name: string): string {
    const p = this.info(name);
    return this.g.floatArray(materialize(p, this.seed), p.shape, name);
  }

  /** x · W (+ b) for the Linear `name` (parameters `${name}.weight` [in,out] and `${name}.bias`). */
  linear(x: string, name: string, bias = true): string {
    const p = this.info(`${name}.weight`);
    const [nIn, nOut] = p.shape as [number, number];
    const b = bias ? this.fp32(`${name}.bias`) : undefined;
    const g = this.g;
    let y: string;
    if (this.variant.kind === "fp32") {
      y = g.op("MatMul", [x, this.fp32(p.name)]);
    } else {
      const form = this.variant.form;
      const q = quantizeMatrix(materialize(p, this.seed), nIn, nOut, form);
      const qName = `${p.name}_quantized`;
      const wq = q.data instanceof Int8Array ? g.int8s(q.data, [nIn, nOut], qName) : g.uint8s(q.data, [nIn, nOut], qName);
      const scaleDims = form.perColumn ? [nOut] : [];
      const ws = g.floatArray(q.scale, scaleDims, `${p.name}_scale`);
      const zpName = `${p.name}_zero_point`;
      const wzp = q.zeroPoint instanceof Int8Array ? g.int8s(q.zeroPoint, scaleDims, zpName) : g.uint8s(q.zeroPoint, scaleDims, zpName);
      if (form.op === "contrib") {
        return g.ops("DynamicQuantizeMatMul", [x, wq, ws, wzp, ...(b ? [b] : [])], 1, {}, "com.microsoft")[0]!;
      }
      let dql = this.quantized.get(x);
      if (!dql) this.quantized.set(x, (dql = g.ops("DynamicQuantizeLinear", [x], 3) as [string, string, string]));
      const [xq, xs, xzp] = dql;
      const acc = g.op("MatMulInteger", [xq, wq, xzp, wzp]);
      y = g.op("Mul", [g.op("Cast", [acc], { to: FLOAT }), g.op("Mul", [xs, ws])]);
    }
    return b ? g.op("Add", [y, b]) : y;
  }
}

function layerNorm(g: GraphBuilder, w: Weights, x: string, name: string, style: BlockStyle): string {
  return g.op("LayerNormalization", [x, w.fp32(`${name}.weight`), w.fp32(`${name}.bias`)], { axis: -1, epsilon: { float: style.eps } });
}

/**
 * The block's activation as PyTorch's exporter writes it below opset 20: quick_gelu as x·σ(1.702x),
 * which onnxruntime fuses to QuickGelu; gelu(approximate="tanh") as its symbolic does,
 * ½·(x·(1 + tanh(√(2/π)·(x + 0.044715·x·(x·x))))), an order that onnxruntime's FastGelu fusion does
 * not match, so it runs as separate ops here as in the real exports.
 */
function activation(g: GraphBuilder, x: string, style: BlockStyle): string {
  if (style.activation === "quick_gelu") return g.op("Mul", [x, g.op("Sigmoid", [g.op("Mul", [x, g.scalar(QUICK_GELU)])])]);
  const cube = g.op("Mul", [x, g.op("Mul", [x, x])]);
  const inner = g.op("Mul", [g.scalar(Math.sqrt(2 / Math.PI)), g.op("Add", [x, g.op("Mul", [g.scalar(0.044715), cube])])]);
  return g.op("Mul", [g.scalar(0.5), g.op("Mul", [x, g.op("Add", [g.scalar(1), g.op("Tanh", [inner])])])]);
}

function mlp(g: GraphBuilder, w: Weights, x: string, prefix: string, style: BlockStyle): string {
  return w.linear(activation(g, w.linear(x, `${prefix}.fc1`), style), `${prefix}.fc2`);
}

/**
 * Multi-head scaled dot-product attention of queries q [B|1, Tq, W] over keys and values [B, Tk, W]
 * (projected, before the output projection); `mask` ([B|1, 1, Tq, Tk], additive) for CLIP's text.
 * Returns [B, Tq, W].
 */
function attention(g: GraphBuilder, q: string, k: string, v: string, t: TowerSpec, mask?: string): string {
  const dh = t.width / t.heads;
  const heads = (x: string, perm: number[]) => g.op("Transpose", [g.op("Reshape", [x, g.ints([0, 0, t.heads, dh])])], { perm });
  // HF scales q before the product, as its exports do.
  const qh = heads(g.op("Mul", [q, g.scalar(dh ** -0.5)]), [0, 2, 1, 3]);
  let scores = g.op("MatMul", [qh, heads(k, [0, 2, 3, 1])]); // [B,H,Tq,Tk]
  if (mask) scores = g.op("Add", [scores, mask]);
  const attn = g.op("MatMul", [g.op("Softmax", [scores], { axis: -1 }), heads(v, [0, 2, 1, 3])]);
  return g.op("Reshape", [g.op("Transpose", [attn], { perm: [0, 2, 1, 3] }), g.ints([0, 0, t.width])]);
}

/** One pre-norm encoder layer (CLIPEncoderLayer, SiglipEncoderLayer) on x [B,T,W]. */
function encoderLayer(g: GraphBuilder, w: Weights, x: string, prefix: string, t: TowerSpec, style: BlockStyle, mask?: string): string {
  const h = layerNorm(g, w, x, `${prefix}.layer_norm1`, style);
  const qkv = (name: string) => w.linear(h, `${prefix}.self_attn.${name}_proj`);
  const x1 = g.op("Add", [x, w.linear(attention(g, qkv("q"), qkv("k"), qkv("v"), t, mask), `${prefix}.self_attn.out_proj`)]);
  return g.op("Add", [x1, mlp(g, w, layerNorm(g, w, x1, `${prefix}.layer_norm2`, style), `${prefix}.mlp`, style)]);
}

function encoder(g: GraphBuilder, w: Weights, x: string, tower: "vision_model" | "text_model", t: TowerSpec, style: BlockStyle, mask?: string): string {
  for (let i = 0; i < t.layers; i++) x = encoderLayer(g, w, x, `${tower}.encoder.layers.${i}`, t, style, mask);
  return x;
}

/** Opset 17: LayerNormalization is an ONNX op, the kernel onnxruntime fuses older exports' pattern into. */
const OPSET = 17;

function newGraph(name: string, variant: Variant): GraphBuilder {
  const g = new GraphBuilder(name, OPSET);
  if (variant.kind === "q8" && variant.form.op === "contrib") g.importDomain("com.microsoft", 1);
  return g;
}

/** A tower's graph, its weights, and its pixel_values or input_ids input. */
function towerGraph(spec: ClipSpec, which: "vision" | "text", seed: number, variant: Variant) {
  const g = newGraph(`${spec.family}_${which}_model`, variant);
  const w = new Weights(g, which === "vision" ? visionParameters(spec) : textParameters(spec), seed, variant);
  const v = spec.vision;
  const input = which === "vision" ? g.input("pixel_values", FLOAT, ["batch_size", 3, v.imageSize, v.imageSize]) : g.input("input_ids", INT64, ["batch_size", "sequence_length"]);
  return { g, w, input, style: BLOCK_STYLE[spec.family] };
}

/** The patch Conv's tokens [B,P,W] (SigLIP's Conv has a bias, CLIP's none). */
function patchTokens(g: GraphBuilder, w: Weights, pixels: string, spec: ClipSpec): string {
  const v = spec.vision;
  const weights = ["vision_model.embeddings.patch_embedding.weight", ...(spec.family === "siglip" ? ["vision_model.embeddings.patch_embedding.bias"] : [])];
  const conv = g.op("Conv", [pixels, ...weights.map((n) => w.fp32(n))], { kernel_shape: [v.patchSize, v.patchSize], strides: [v.patchSize, v.patchSize] });
  return g.op("Transpose", [g.op("Reshape", [conv, g.ints([0, v.width, -1])])], { perm: [0, 2, 1] });
}

/** Token embeddings plus the position table cut to the sequence length; also returns that length ([1]). */
function tokenEmbeddings(g: GraphBuilder, w: Weights, ids: string): { x: string; length: string } {
  const length = g.op("Slice", [g.op("Shape", [ids]), g.ints([1]), g.ints([2])]);
  const positions = g.op("Slice", [w.fp32("text_model.embeddings.position_embedding.weight"), g.ints([0]), length, g.ints([0])]);
  return { x: g.op("Add", [g.op("Gather", [w.fp32("text_model.embeddings.token_embedding.weight"), ids], { axis: 0 }), positions]), length };
}

export function visionGraph(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  if (spec.family === "siglip") return siglipVisionTower(spec, seed, variant);
  const v = spec.vision;
  const { g, w, input: pixels, style } = towerGraph(spec, "vision", seed, variant);
  const patches = (v.imageSize / v.patchSize) ** 2;
  const patchEmbeds = patchTokens(g, w, pixels, spec); // [B,P,W]
  const batch = g.op("Slice", [g.op("Shape", [pixels]), g.ints([0]), g.ints([1])]);
  const cls = g.op("Expand", [
    g.op("Reshape", [w.fp32("vision_model.embeddings.class_embedding"), g.ints([1, 1, v.width])]),
    g.op("Concat", [batch, g.ints([1, v.width])], { axis: 0 }),
  ]);
  let x = g.op("Add", [g.op("Concat", [cls, patchEmbeds], { axis: 1 }), w.fp32("vision_model.embeddings.position_embedding.weight")]);
  x = encoder(g, w, layerNorm(g, w, x, "vision_model.pre_layrnorm", style), "vision_model", v, style);
  const pooled = layerNorm(g, w, g.op("Gather", [x, g.ints([0], [])], { axis: 1 }), "vision_model.post_layernorm", style);
  g.output(w.linear(pooled, "visual_projection", false), "image_embeds", FLOAT, ["batch_size", spec.projectionDim]);
  g.output(x, "last_hidden_state", FLOAT, ["batch_size", 1 + patches, v.width]);
  return g.encode();
}

/**
 * SiglipVisionTransformer: patch Conv (with bias) + position embedding, no class token and no
 * pre-layernorm → blocks → post-layernorm on every token (last_hidden_state) → the attention-pooling
 * head: the learned probe attends over the tokens, then a residual MLP; its one token is pooler_output.
 */
function siglipVisionTower(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  const v = spec.vision;
  const { g, w, input: pixels, style } = towerGraph(spec, "vision", seed, variant);
  const head = "vision_model.head";
  let x = g.op("Add", [patchTokens(g, w, pixels, spec), w.fp32("vision_model.embeddings.position_embedding.weight")]);
  x = layerNorm(g, w, encoder(g, w, x, "vision_model", v, style), "vision_model.post_layernorm", style);
  // The probe's query is the same for every image: [1,1,W] broadcasts over the batch in the MatMul.
  const q = w.linear(w.fp32(`${head}.probe`), `${head}.attention.in_proj_q`);
  const [k, values] = g.ops("Split", [w.linear(x, `${head}.attention.in_proj_kv`), g.ints([v.width, v.width])], 2, { axis: -1 }) as [string, string];
  const probed = w.linear(attention(g, q, k, values, v), `${head}.attention.out_proj`); // [B,1,W]
  const pooled = g.op("Add", [probed, mlp(g, w, layerNorm(g, w, probed, `${head}.layernorm`, style), `${head}.mlp`, style)]);
  g.output(x, "last_hidden_state", FLOAT, ["batch_size", (v.imageSize / v.patchSize) ** 2, v.width]);
  g.output(g.op("Gather", [pooled, g.ints([0], [])], { axis: 1 }), "pooler_output", FLOAT, ["batch_size", spec.projectionDim]);
  return g.encode();
}

export function textGraph(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  if (spec.family === "siglip") return siglipTextTower(spec, seed, variant);
  const t = spec.text;
  const { g, w, input: ids, style } = towerGraph(spec, "text", seed, variant);
  const attentionMask = g.input("attention_mask", INT64, ["batch_size", "sequence_length"]);
  const { x: embedded, length } = tokenEmbeddings(g, w, ids);

  // Additive mask [B,1,L,L]: causal (a constant cut to the sequence length) plus HF's padding mask.
  const causalTable = new Float32Array(t.context * t.context);
  for (let i = 0; i < t.context; i++) for (let j = i + 1; j < t.context; j++) causalTable[i * t.context + j] = MASKED;
  const causal = g.op("Slice", [g.floatArray(causalTable, [t.context, t.context]), g.ints([0, 0]), g.op("Concat", [length, length], { axis: 0 }), g.ints([0, 1])]);
  const padding = g.op("Mul", [g.op("Sub", [g.scalar(1), g.op("Cast", [attentionMask], { to: FLOAT })]), g.scalar(MASKED)]);
  const mask = g.op("Add", [causal, g.op("Unsqueeze", [padding, g.ints([1, 2])])]);

  const x = layerNorm(g, w, encoder(g, w, embedded, "text_model", t, style, mask), "text_model.final_layer_norm", style);
  // The end-of-text token has the largest id; ArgMax takes its first occurrence, so pads equal to it come later.
  const eot = g.op("ArgMax", [ids], { axis: 1, keepdims: 1 }); // [B,1]
  const index = g.op("Expand", [g.op("Unsqueeze", [eot, g.ints([2])]), g.ints([1, 1, t.width])]);
  const pooled = g.op("Squeeze", [g.op("GatherElements", [x, index], { axis: 1 }), g.ints([1])]);
  g.output(w.linear(pooled, "text_projection", false), "text_embeds", FLOAT, ["batch_size", spec.projectionDim]);
  g.output(x, "last_hidden_state", FLOAT, ["batch_size", "sequence_length", t.width]);
  return g.encode();
}

/**
 * SiglipTextTransformer: token + position embedding → bidirectional blocks (no mask: the exports take
 * input_ids alone, always padded to 64) → final layernorm → the last position through the head.
 */
function siglipTextTower(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  const t = spec.text;
  const { g, w, input: ids, style } = towerGraph(spec, "text", seed, variant);
  const x = layerNorm(g, w, encoder(g, w, tokenEmbeddings(g, w, ids).x, "text_model", t, style), "text_model.final_layer_norm", style);
  g.output(x, "last_hidden_state", FLOAT, ["batch_size", "sequence_length", t.width]);
  const last = g.op("Gather", [x, g.ints([-1], [])], { axis: 1 }); // [B,W]
  g.output(w.linear(last, "text_model.head"), "pooler_output", FLOAT, ["batch_size", spec.projectionDim]);
  return g.encode();
}

// ---------------------------------------------------------------------------------------------------
// Folder

const BENCH_NOTE = { random_weights: true, note: "generated by scripts/make-bench-model.ts: timings only, the embeddings mean nothing" };

/** A tower's config.json fields that come from its shape and block style. */
const towerConfig = (t: TowerSpec, style: BlockStyle) => ({
  hidden_act: style.activation,
  layer_norm_eps: style.eps,
  hidden_size: t.width,
  intermediate_size: t.mlp,
  num_attention_heads: t.heads,
  num_hidden_layers: t.layers,
});

function modelConfig(spec: ClipSpec) {
  if (spec.family === "siglip") return siglipConfig(spec);
  const name = `clip-ood/random-clip-vit-${spec.arch === "L/14" ? "large" : "base"}-patch${spec.vision.patchSize}`;
  const common = { attention_dropout: 0, dropout: 0, initializer_factor: 1, initializer_range: 0.02, projection_dim: spec.projectionDim };
  const t = spec.text;
  const v = spec.vision;
  return {
    _name_or_path: name,
    architectures: ["CLIPModel"],
    initializer_factor: 1,
    logit_scale_init_value: 2.6592,
    model_type: "clip",
    projection_dim: spec.projectionDim,
    text_config: {
      ...common,
      model_type: "clip_text_model",
      bos_token_id: 0,
      eos_token_id: 2,
      pad_token_id: 1,
      ...towerConfig(t, BLOCK_STYLE.clip),
      max_position_embeddings: t.context,
      vocab_size: t.vocab,
    },
    vision_config: {
      ...common,
      model_type: "clip_vision_model",
      ...towerConfig(v, BLOCK_STYLE.clip),
      image_size: v.imageSize,
      num_channels: 3,
      patch_size: v.patchSize,
    },
    clip_ood_bench: BENCH_NOTE,
  };
}

/** google/siglip-base-patch16-224's config.json, with this spec's shapes. */
function siglipConfig(spec: ClipSpec) {
  const { text: t, vision: v } = spec;
  const base = siglipModelConfig({ projectionDim: spec.projectionDim, visionWidth: v.width, imageSize: v.imageSize, patchSize: v.patchSize }, t.vocab);
  return {
    ...base,
    _name_or_path: `clip-ood/random-siglip-base-patch${v.patchSize}-${v.imageSize}`,
    // projection_size is the text head's output width, left out where it equals the text width, as there.
    text_config: { ...base.text_config, ...towerConfig(t, BLOCK_STYLE.siglip), ...(t.width === spec.projectionDim ? {} : { projection_size: spec.projectionDim }) },
    vision_config: { ...base.vision_config, ...towerConfig(v, BLOCK_STYLE.siglip) },
    clip_ood_bench: BENCH_NOTE,
  };
}

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
  const source = from === undefined && spec.family === "clip" ? sharedTokenizerDir() : from || undefined;
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
  const graphs = (q8 ? ["", "_quantized"] : [""]).flatMap((s) => [`onnx/vision_model${s}.onnx`, `onnx/text_model${s}.onnx`]);
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

export async function generateBenchModel(dir: string, o: BenchModelOptions): Promise<void> {
  const log = o.log ?? (() => {});
  const spec = benchSpec(o.arch, o.shrink);
  const seed = o.seed ?? 0;
  const q8 = o.q8 ?? false;
  const forms = resolveQ8Forms(o.q8Form);
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
  if (!q8) for (const t of ["vision", "text"]) await rm(path.join(dir, "onnx", `${t}_model_quantized.onnx`), { force: true });
  const tokenizer = await writeTokenizer(dir, spec, o.tokenizerFrom);
  log(`tokenizer ${tokenizer}`);

  const count = parameterCount(spec);
  for (const [tower, build, params] of [["vision", visionGraph, count.vision], ["text", textGraph, count.text]] as const) {
    const variants: Variant[] = q8 ? [{ kind: "fp32" }, { kind: "q8", form: forms[tower] }] : [{ kind: "fp32" }];
    for (const variant of variants) {
      const t0 = performance.now();
      const file = `onnx/${tower}_model${variant.kind === "q8" ? "_quantized" : ""}.onnx`;
      const bytes = build(spec, seed, variant);
      await writeFile(path.join(dir, file), bytes);
      log(`${file}: ${(params / 1e6).toFixed(1)} M parameters, ${(bytes.byteLength / 2 ** 20).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  if (spec.family === "siglip") {
    await writeFile(path.join(dir, SIGLIP_COMBINED), siglipCombinedGraph(SIGLIP_LOGIT_SCALE, SIGLIP_LOGIT_BIAS, spec.projectionDim));
    await writeConfigFiles(dir, modelConfig(spec), siglipPreprocessorConfig(spec.vision.imageSize));
  } else {
    await writeConfigFiles(dir, modelConfig(spec), preprocessorConfig(spec.vision.imageSize, { imageProcessorType: "CLIPFeatureExtractor" }));
  }
  await writeFile(path.join(dir, STAMP_FILE), jsonText({ ...want, tokenizer } satisfies Stamp));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const usage = `usage: tsx scripts/make-bench-model.ts <dir> --arch ${BENCH_ARCH_NAMES.join("|")} [--q8 [--q8-form xenova|int8]] [--seed N] [--force]`;
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { arch: { type: "string", default: "B/32" }, q8: { type: "boolean", default: false }, "q8-form": { type: "string", default: "xenova" }, seed: { type: "string", default: "0" }, force: { type: "boolean", default: false } },
    });
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : String(e)}\n${usage}`);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  const dir = positionals[0];
  const seed = Number(values.seed);
  const q8Form = values["q8-form"];
  if (!dir || positionals.length > 1 || !isBenchArch(values.arch) || !Number.isInteger(seed) || (q8Form !== "xenova" && q8Form !== "int8")) {
    console.error(usage);
    process.exit(2);
  }
  const t0 = performance.now();
  const stamp = (m: string) => console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);
  await generateBenchModel(dir, { arch: values.arch, q8: values.q8, q8Form, seed, force: values.force, log: stamp });
  stamp(`done: ${dir}`);
}
