/**
 * Every parameter of both towers as one table of names, shapes and initial distributions, which drives
 * both the parameter count (checked against the published model sizes) and the graphs' initializers.
 */
import { mobileclipTextParameters, mobileclipVisionParameters } from "./mobileclip-parameters.js";
import { elements, linearParameters, mlpParameters, normParameters, qkStd } from "./parameter-table.js";
import type { ParameterInfo } from "./parameter-table.js";
import { benchSpec } from "./spec.js";
import type { BenchArch, ClipSpec, TowerSpec } from "./spec.js";

export { elements };
export type { ParameterInfo };

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


const layersParameters = (tower: "vision_model" | "text_model", t: TowerSpec): ParameterInfo[] =>
  Array.from({ length: t.layers }, (_, i) => layerParameters(`${tower}.encoder.layers.${i}`, t)).flat();

/**
 * Every parameter of the vision tower: CLIP's visual projection included; SigLIP's attention-pooling
 * head (SiglipMultiheadAttentionPoolingHead) included, its nn.MultiheadAttention's packed in_proj
 * stored as the two Linears that PyTorch's forward splits it into (queries from the probe, keys and
 * values from the tokens). The probe is N(0, 1), torch.randn as SigLIP creates it.
 */
export function visionParameters(spec: ClipSpec): ParameterInfo[] {
  if (spec.family === "mobileclip") return mobileclipVisionParameters(spec);
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
  if (spec.family === "mobileclip") return mobileclipTextParameters(spec);
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

/**
 * Parameters per tower graph, projections and heads included, from the architecture alone. CLIPModel's
 * logit_scale (SiglipModel's logit_scale and logit_bias) lives in neither tower graph.
 */
export function parameterCount(arch: BenchArch | ClipSpec): { vision: number; text: number } {
  const spec = typeof arch === "string" ? benchSpec(arch) : arch;
  // BatchNorm's running statistics are buffers: in the graph, not among the model's parameters.
  const sum = (ps: ParameterInfo[]) => ps.reduce((s, p) => s + (p.buffer ? 0 : elements(p.shape)), 0);
  return { vision: sum(visionParameters(spec)), text: sum(textParameters(spec)) };
}
