/**
 * SigLIP's towers, as transformers' SiglipModel (google/siglip-base-patch16-224 as Xenova exports it):
 * no class token, an attention-pooling head on the vision side, and a bidirectional text tower pooled
 * at its last position.
 */
import { FLOAT } from "../../src/maths/kernels/onnx-graph.js";
import { attention, encoder, layerNorm, mlp, patchTokens, tokenEmbeddings, towerGraph } from "./blocks.js";
import type { ClipSpec } from "./spec.js";
import type { Variant } from "./weights.js";

/**
 * SiglipVisionTransformer: patch Conv (with bias) + position embedding, no class token and no
 * pre-layernorm → blocks → post-layernorm on every token (last_hidden_state) → the attention-pooling
 * head: the learned probe attends over the tokens, then a residual MLP; its one token is pooler_output.
 */
export function siglipVisionTower(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
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

/**
 * SiglipTextTransformer: token + position embedding → bidirectional blocks (no mask: the exports take
 * input_ids alone, always padded to 64) → final layernorm → the last position through the head.
 */
export function siglipTextTower(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  const t = spec.text;
  const { g, w, input: ids, style } = towerGraph(spec, "text", seed, variant);
  const x = layerNorm(g, w, encoder(g, w, tokenEmbeddings(g, w, ids).x, "text_model", t, style), "text_model.final_layer_norm", style);
  g.output(x, "last_hidden_state", FLOAT, ["batch_size", "sequence_length", t.width]);
  const last = g.op("Gather", [x, g.ints([-1], [])], { axis: 1 }); // [B,W]
  g.output(w.linear(last, "text_model.head"), "pooler_output", FLOAT, ["batch_size", spec.projectionDim]);
  return g.encode();
}
