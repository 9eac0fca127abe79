/**
 * MobileCLIP's parameters (apple/ml-mobileclip) in inference form, as a reparameterised model is
 * exported: every MobileOne and RepMixer branch folded into one convolution with a bias, each
 * ConvFFN's BatchNorm folded into its depthwise convolution, the RepCPE's skip folded into its kernel.
 * Convolution weights are [out, in / groups, kh, kw] as in ONNX. The names follow mci.py's modules
 * loosely; nothing reads them but the graphs. Conv weights are drawn with std (fan-in)^-½ so that
 * activations keep their scale through the ~40 unnormalised blocks; the values mean nothing.
 */
import { MCI } from "../clip-archs.js";
import { linearParameters, normParameters, qkStd } from "./parameter-table.js";
import type { ParameterInfo } from "./parameter-table.js";
import type { ClipSpec } from "./spec.js";

export const reduced = (c: number, ratio: number) => Math.max(1, Math.round(c * ratio));

export function convParameters(name: string, out: number, inPerGroup: number, kh: number, kw = kh, bias = true): ParameterInfo[] {
  return [
    { name: `${name}.weight`, shape: [out, inPerGroup, kh, kw], init: { normal: (inPerGroup * kh * kw) ** -0.5 } },
    ...(bias ? [{ name: `${name}.bias`, shape: [out], init: { normal: 0.02 } as const }] : []),
  ];
}

/** A per-channel scale [C,1,1] (layer_scale): N(0, 0.1²) keeps the residual streams from growing. */
const scale = (name: string, c: number): ParameterInfo => ({ name, shape: [c, 1, 1], init: { normal: 0.1 } });

/** ConvFFN: depthwise kh×kw convolution (its BatchNorm folded into a bias), 1×1 up, GELU, 1×1 down. */
function convFfn(name: string, d: number, hidden: number, kh: number, kw: number): ParameterInfo[] {
  return [...convParameters(`${name}.conv`, d, 1, kh, kw), ...convParameters(`${name}.fc1`, hidden, d, 1), ...convParameters(`${name}.fc2`, d, hidden, 1)];
}

/** RepMixerBlock: the reparameterised depthwise mixer, then a layer-scaled ConvFFN (image: 3×3, text: 1×11). */
export function repmixerBlockParameters(name: string, d: number, hidden: number, kh: number, kw: number, ffnKh = kh, ffnKw = kw): ParameterInfo[] {
  return [...convParameters(`${name}.mixer`, d, 1, kh, kw), ...convFfn(`${name}.ffn`, d, hidden, ffnKh, ffnKw), scale(`${name}.layer_scale`, d)];
}

/** Squeeze-and-excitation: 1×1 reduce (bias), ReLU, 1×1 expand (bias), sigmoid gate. */
const seParameters = (name: string, c: number, ratio: number): ParameterInfo[] => {
  const r = reduced(c, ratio);
  return [...convParameters(`${name}.reduce`, r, c, 1), ...convParameters(`${name}.expand`, c, r, 1)];
};

function attentionBlock(name: string, d: number, hidden: number): ParameterInfo[] {
  return [
    ...normParameters(`${name}.norm`, d),
    { name: `${name}.norm.running_mean`, shape: [d], init: "zeros", buffer: true },
    { name: `${name}.norm.running_var`, shape: [d], init: "ones", buffer: true },
    ...linearParameters(`${name}.attn.qkv`, d, 3 * d, qkStd(d), false),
    ...linearParameters(`${name}.attn.proj`, d, d),
    scale(`${name}.layer_scale_1`, d),
    scale(`${name}.layer_scale_2`, d),
    ...convFfn(`${name}.ffn`, d, hidden, 7, 7),
  ];
}

/** Every parameter of the MCi image tower, the projection head included. */
export function mobileclipVisionParameters(spec: ClipSpec): ParameterInfo[] {
  const { stages, dims } = spec.mci!;
  const v = "vision_model";
  const d0 = dims[0];
  const ps: ParameterInfo[] = [...convParameters(`${v}.stem.0`, d0, 3, 3), ...convParameters(`${v}.stem.1`, d0, 1, 3), ...convParameters(`${v}.stem.2`, d0, d0, 1)];
  for (let i = 0; i < 4; i++) {
    const d = dims[i]!;
    const s = `${v}.stages.${i}`;
    const attention = i === 3;
    if (attention) ps.push(...convParameters(`${s}.pos_emb`, d, 1, 7));
    for (let j = 0; j < stages[i]!; j++) {
      ps.push(...(attention ? attentionBlock(`${s}.blocks.${j}`, d, MCI.imageMlpRatio * d) : repmixerBlockParameters(`${s}.blocks.${j}`, d, MCI.imageMlpRatio * d, 3, 3, 7, 7)));
    }
    if (i < 3) {
      const out = dims[i + 1]!;
      ps.push(...convParameters(`${s}.downsample.conv`, out, 1, 7));
      if (MCI.downsampleSe[i + 1]) ps.push(...seParameters(`${s}.downsample.se`, out, MCI.downsampleSeRatio));
      ps.push(...convParameters(`${s}.downsample.proj`, out, out, 1));
    }
  }
  const last = dims[3];
  const expanded = 2 * last;
  ps.push(...convParameters(`${v}.conv_exp.conv`, expanded, 1, 3), ...seParameters(`${v}.conv_exp.se`, expanded, MCI.convExpSeRatio));
  ps.push(...linearParameters(`${v}.head.proj`, expanded, spec.projectionDim, expanded ** -0.5, false));
  return ps;
}

/**
 * The text tower: token and position embeddings, (S0: a RepMixer block,) transformer layers with a
 * packed qkv projection, (S0: a RepMixer block,) the final layernorm and the projection.
 */
export function mobileclipTextParameters(spec: ClipSpec): ParameterInfo[] {
  const t = spec.text;
  const repmixer = (i: number) => (t.repmixer ? repmixerBlockParameters(`text_model.repmixer.${i}`, t.width, MCI.textMlpRatio * t.width, 1, MCI.textKernel) : []);
  const layers = Array.from({ length: t.layers }, (_, i) => {
    const p = `text_model.encoder.layers.${i}`;
    return [
      ...normParameters(`${p}.layer_norm1`, t.width),
      ...linearParameters(`${p}.self_attn.qkv_proj`, t.width, 3 * t.width, qkStd(t.width)),
      ...linearParameters(`${p}.self_attn.out_proj`, t.width, t.width),
      ...normParameters(`${p}.layer_norm2`, t.width),
      ...linearParameters(`${p}.mlp.fc1`, t.width, t.mlp),
      ...linearParameters(`${p}.mlp.fc2`, t.mlp, t.width),
    ];
  }).flat();
  return [
    { name: "text_model.embeddings.token_embedding.weight", shape: [t.vocab, t.width], init: { normal: 0.02 } },
    { name: "text_model.embeddings.position_embedding.weight", shape: [t.context, t.width], init: { normal: 0.02 } },
    ...repmixer(0),
    ...layers,
    ...repmixer(1),
    ...normParameters("text_model.final_layer_norm", t.width),
    ...linearParameters("text_projection", t.width, spec.projectionDim, t.width ** -0.5, false),
  ];
}
