/**
 * The transformer pieces both families' towers are built from (CLIPEncoderLayer and SiglipEncoderLayer
 * differ only in shape, layernorm ε and activation), written as the Hugging Face exports write them so
 * that onnxruntime applies the same fusions and the timings are a real export's.
 */
import { FLOAT, GraphBuilder, INT64 } from "../../src/maths/kernels/onnx-graph.js";
import { textParameters, visionParameters } from "./parameters.js";
import { BLOCK_STYLE } from "./spec.js";
import type { BlockStyle, ClipSpec, TowerSpec } from "./spec.js";
import { Weights } from "./weights.js";
import type { Variant } from "./weights.js";

/** Hugging Face's quick_gelu: x·σ(1.702x). */
const QUICK_GELU = 1.702;

export function layerNorm(g: GraphBuilder, w: Weights, x: string, name: string, style: BlockStyle): string {
  return g.op("LayerNormalization", [x, w.fp32(`${name}.weight`), w.fp32(`${name}.bias`)], { axis: -1, epsilon: { float: style.eps } });
}

/**
 * The block's activation as PyTorch's exporter writes it below opset 20: quick_gelu as x·σ(1.702x),
 * which onnxruntime fuses to QuickGelu; gelu(approximate="tanh") as its symbolic does,
 * ½·(x·(1 + tanh(√(2/π)·(x + 0.044715·x·(x·x))))), an order that onnxruntime's FastGelu fusion does
 * not match, so it runs as separate ops here as in the real exports.
 */
export function activation(g: GraphBuilder, x: string, style: BlockStyle): string {
  // nn.GELU() (exact) as the exporter's symbolic writes it, x·(erf(x/√2) + 1)·½; onnxruntime fuses it to Gelu.
  if (style.activation === "gelu") return g.op("Mul", [g.op("Mul", [x, g.op("Add", [g.op("Erf", [g.op("Div", [x, g.scalar(Math.SQRT2)])]), g.scalar(1)])]), g.scalar(0.5)]);
  if (style.activation === "quick_gelu") return g.op("Mul", [x, g.op("Sigmoid", [g.op("Mul", [x, g.scalar(QUICK_GELU)])])]);
  const cube = g.op("Mul", [x, g.op("Mul", [x, x])]);
  const inner = g.op("Mul", [g.scalar(Math.sqrt(2 / Math.PI)), g.op("Add", [x, g.op("Mul", [g.scalar(0.044715), cube])])]);
  return g.op("Mul", [g.scalar(0.5), g.op("Mul", [x, g.op("Add", [g.scalar(1), g.op("Tanh", [inner])])])]);
}

export function mlp(g: GraphBuilder, w: Weights, x: string, prefix: string, style: BlockStyle): string {
  return w.linear(activation(g, w.linear(x, `${prefix}.fc1`), style), `${prefix}.fc2`);
}

/**
 * Multi-head scaled dot-product attention of queries q [B|1, Tq, W] over keys and values [B, Tk, W]
 * (projected, before the output projection); `mask` ([B|1, 1, Tq, Tk], additive) for CLIP's text.
 * Returns [B, Tq, W].
 */
export function attention(g: GraphBuilder, q: string, k: string, v: string, t: TowerSpec, mask?: string): string {
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

export function encoder(g: GraphBuilder, w: Weights, x: string, tower: "vision_model" | "text_model", t: TowerSpec, style: BlockStyle, mask?: string): string {
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
export function towerGraph(spec: ClipSpec, which: "vision" | "text", seed: number, variant: Variant) {
  const g = newGraph(`${spec.family}_${which}_model`, variant);
  const w = new Weights(g, which === "vision" ? visionParameters(spec) : textParameters(spec), seed, variant);
  const v = spec.vision;
  // MobileCLIP's text graphs take input_ids at the fixed context length (docs/MODEL-FOLDERS.md).
  const length = spec.family === "mobileclip" ? spec.text.context : "sequence_length";
  const input = which === "vision" ? g.input("pixel_values", FLOAT, ["batch_size", 3, v.imageSize, v.imageSize]) : g.input("input_ids", INT64, ["batch_size", length]);
  return { g, w, input, style: BLOCK_STYLE[spec.family] };
}

/** The patch Conv's tokens [B,P,W] (SigLIP's Conv has a bias, CLIP's none). */
export function patchTokens(g: GraphBuilder, w: Weights, pixels: string, spec: ClipSpec): string {
  const v = spec.vision;
  const weights = ["vision_model.embeddings.patch_embedding.weight", ...(spec.family === "siglip" ? ["vision_model.embeddings.patch_embedding.bias"] : [])];
  const conv = g.op("Conv", [pixels, ...weights.map((n) => w.fp32(n))], { kernel_shape: [v.patchSize, v.patchSize], strides: [v.patchSize, v.patchSize] });
  return g.op("Transpose", [g.op("Reshape", [conv, g.ints([0, v.width, -1])])], { perm: [0, 2, 1] });
}

/** Token embeddings plus the position table cut to the sequence length; also returns that length ([1]). */
export function tokenEmbeddings(g: GraphBuilder, w: Weights, ids: string): { x: string; length: string } {
  const length = g.op("Slice", [g.op("Shape", [ids]), g.ints([1]), g.ints([2])]);
  const positions = g.op("Slice", [w.fp32("text_model.embeddings.position_embedding.weight"), g.ints([0]), length, g.ints([0])]);
  return { x: g.op("Add", [g.op("Gather", [w.fp32("text_model.embeddings.token_embedding.weight"), ids], { axis: 0 }), positions]), length };
}

/** The hidden state [B,W] at the end-of-text token of each row of x [B,L,W]: the largest id, its first occurrence. */
export function eotPooled(g: GraphBuilder, x: string, ids: string, width: number): string {
  const eot = g.op("ArgMax", [ids], { axis: 1, keepdims: 1 }); // [B,1]
  const index = g.op("Expand", [g.op("Unsqueeze", [eot, g.ints([2])]), g.ints([1, 1, width])]);
  return g.op("Squeeze", [g.op("GatherElements", [x, index], { axis: 1 }), g.ints([1])]);
}
