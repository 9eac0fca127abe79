/**
 * CLIP's towers, as transformers' CLIPModel: patch Conv → class token → position embedding →
 * pre-layernorm → blocks → post-layernorm on the class token → visual projection; token + position
 * embedding → causal blocks → final layernorm → pooling at the largest token id → text projection.
 */
import { FLOAT, INT64 } from "../../src/maths/kernels/onnx-graph.js";
import { encoder, eotPooled, layerNorm, patchTokens, tokenEmbeddings, towerGraph } from "./blocks.js";
import type { ClipSpec } from "./spec.js";
import type { Variant } from "./weights.js";

/**
 * Masked attention logits. HF uses float32's minimum; a finite -1e9 keeps the causal mask plus the
 * padding mask from summing to -inf while still giving those keys exactly zero weight.
 */
const MASKED = -1e9;

export function clipVisionTower(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
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

export function clipTextTower(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
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
  // ArgMax takes the first occurrence of the largest id, so pads equal to the end-of-text token come later.
  const pooled = eotPooled(g, x, ids, t.width);
  g.output(w.linear(pooled, "text_projection", false), "text_embeds", FLOAT, ["batch_size", spec.projectionDim]);
  g.output(x, "last_hidden_state", FLOAT, ["batch_size", "sequence_length", t.width]);
  return g.encode();
}
