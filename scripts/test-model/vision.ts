/**
 * The vision tower: hand-set weights that read each patch's colour and texture from the normalised
 * pixels, so that preprocessing mistakes land on the wrong concept, behind the real exports' head
 * (post-layernorm on the class token, then projection).
 */
import { FLOAT, GraphBuilder, OPSET } from "../../src/maths/kernels/onnx-graph.js";
import { SIGLIP_MEAN, SIGLIP_STD } from "../siglip-model.js";
import { COLOURS, TEXTURES } from "../world.js";
import { COLOUR_NAMES, orthogonalTo, orthonormalRows, unit } from "./concepts.js";
import type { WeightSource } from "./concepts.js";
import { CLIP_MEAN, CLIP_STD, MOBILECLIP_MEAN, MOBILECLIP_STD } from "./config.js";
import type { Opts } from "./options.js";

/** Softness of colour matching in normalised units²: neighbours (red/orange) stay apart, noise does not matter. */
const COLOUR_SIGMA2 = 0.6;
/** Luma contrast (normalised units) above which a patch stops being "plain". */
const PLAIN_CONTRAST = 0.3;
/** Weight of the shared "this is a caption/photo" direction in images (generic words: text.ts). */
const IMAGE_GENERIC = 1.2;
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

export function visionGraph(o: Opts, { directions, generic, randomVector, q }: WeightSource): { bytes: Uint8Array; head: GeneratedVisionHead } {
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
