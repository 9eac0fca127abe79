/**
 * MobileCLIP's towers in inference form (apple/ml-mobileclip after reparameterize_model, as exported):
 * the MCi image network and the MCt / base text transformer, each op as PyTorch's exporter writes it
 * at opset 17 so that onnxruntime applies the same fusions (Conv+activation, Gelu, LayerNormalization).
 * Parameters and their shapes: mobileclip-parameters.ts.
 */
import { FLOAT } from "../../src/maths/kernels/onnx-graph.js";
import type { GraphBuilder } from "../../src/maths/kernels/onnx-graph.js";
import { MCI } from "../clip-archs.js";
import { activation, attention, eotPooled, layerNorm, mlp, tokenEmbeddings, towerGraph } from "./blocks.js";
import type { BlockStyle, ClipSpec } from "./spec.js";
import type { Variant } from "./weights.js";
import type { Weights } from "./weights.js";

interface Tower {
  g: GraphBuilder;
  w: Weights;
  style: BlockStyle;
}

/** A Conv with "same" padding for odd kernels, as nn.Conv2d(padding=k//2), and a bias (q8: ConvInteger). */
function conv(t: Tower, x: string, name: string, kernel: number | [number, number], o: { stride?: number; group?: number } = {}): string {
  const [kh, kw] = typeof kernel === "number" ? [kernel, kernel] : kernel;
  const s = o.stride ?? 1;
  return t.w.conv(x, name, { kernel_shape: [kh, kw], strides: [s, s], pads: [kh >> 1, kw >> 1, kh >> 1, kw >> 1], group: o.group ?? 1 });
}

const act = (t: Tower, x: string) => activation(t.g, x, t.style);

/** Squeeze-and-excitation on x [B,C,H,W]: the channel means through reduce, ReLU, expand, sigmoid, as a gate. */
function squeezeExcite(t: Tower, x: string, name: string): string {
  const mean = t.g.op("ReduceMean", [x], { axes: [2, 3], keepdims: 1 });
  const gate = t.g.op("Sigmoid", [conv(t, t.g.op("Relu", [conv(t, mean, `${name}.reduce`, 1)]), `${name}.expand`, 1)]);
  return t.g.op("Mul", [x, gate]);
}

/** ConvFFN on [B,C,H,W]: depthwise kernel (BatchNorm folded), 1×1 up, GELU, 1×1 down. */
function convFfn(t: Tower, x: string, name: string, channels: number, kernel: number | [number, number]): string {
  const y = conv(t, x, `${name}.conv`, kernel, { group: channels });
  return conv(t, act(t, conv(t, y, `${name}.fc1`, 1)), `${name}.fc2`, 1);
}

/** RepMixerBlock: x ← mixer(x) (the reparameterised depthwise conv, skip folded in); x + layer_scale·ConvFFN(x). */
function repmixerBlock(t: Tower, x: string, name: string, channels: number, mixer: number | [number, number], ffn: number | [number, number]): string {
  const y = conv(t, x, `${name}.mixer`, mixer, { group: channels });
  return t.g.op("Add", [y, t.g.op("Mul", [t.w.fp32(`${name}.layer_scale`), convFfn(t, y, `${name}.ffn`, channels, ffn)])]);
}

/**
 * AttentionBlock on x [B,C,H,W]: x + ls₁·MHSA(BatchNorm(x)) over the H·W positions (packed qkv without
 * bias, heads of 32), then x + ls₂·ConvFFN(x) with a 7×7 depthwise kernel.
 */
function attentionBlock(t: Tower, x: string, name: string, spec: ClipSpec): string {
  const { g, w } = t;
  const d = spec.vision.width;
  const norm = ["weight", "bias", "running_mean", "running_var"].map((p) => w.fp32(`${name}.norm.${p}`));
  const n = g.op("BatchNormalization", [x, ...norm], { epsilon: { float: 1e-5 } });
  const tokens = g.op("Transpose", [g.op("Reshape", [n, g.ints([0, d, -1])])], { perm: [0, 2, 1] }); // [B,N,C]
  const [q, k, v] = g.ops("Split", [w.linear(tokens, `${name}.attn.qkv`, false), g.ints([d, d, d])], 3, { axis: -1 }) as [string, string, string];
  const mixed = w.linear(attention(g, q, k, v, spec.vision), `${name}.attn.proj`);
  const back = g.op("Reshape", [g.op("Transpose", [mixed], { perm: [0, 2, 1] }), g.op("Shape", [x])]);
  const x1 = g.op("Add", [x, g.op("Mul", [w.fp32(`${name}.layer_scale_1`), back])]);
  return g.op("Add", [x1, g.op("Mul", [w.fp32(`${name}.layer_scale_2`), convFfn(t, x1, `${name}.ffn`, d, 7)])]);
}

/** PatchEmbed between stages: a 7×7 stride-2 grouped conv (groups = input channels), SE on later stages, GELU; 1×1, GELU. */
function downsample(t: Tower, x: string, name: string, cin: number, se: boolean): string {
  let y = conv(t, x, `${name}.conv`, 7, { stride: 2, group: cin });
  if (se) y = squeezeExcite(t, y, `${name}.se`);
  return act(t, conv(t, act(t, y), `${name}.proj`, 1));
}

export function mobileclipVisionTower(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  const { g, w, input: pixels, style } = towerGraph(spec, "vision", seed, variant);
  const t: Tower = { g, w, style };
  const { stages, dims } = spec.mci!;
  const v = "vision_model";
  // The stem: 3×3 stride 2, depthwise 3×3 stride 2, 1×1, each with GELU: 1/4 of the image.
  let x = act(t, conv(t, pixels, `${v}.stem.0`, 3, { stride: 2 }));
  x = act(t, conv(t, x, `${v}.stem.1`, 3, { stride: 2, group: dims[0] }));
  x = act(t, conv(t, x, `${v}.stem.2`, 1));
  for (let i = 0; i < 4; i++) {
    const d = dims[i]!;
    const s = `${v}.stages.${i}`;
    // RepCPE, the conditional position encoding, before the attention stage.
    if (i === 3) x = conv(t, x, `${s}.pos_emb`, 7, { group: d });
    for (let j = 0; j < stages[i]!; j++) x = i === 3 ? attentionBlock(t, x, `${s}.blocks.${j}`, spec) : repmixerBlock(t, x, `${s}.blocks.${j}`, d, 3, 7);
    if (i < 3) x = downsample(t, x, `${s}.downsample`, d, MCI.downsampleSe[i + 1] === true);
  }
  // conv_exp: a grouped 3×3 doubling the channels, SE, GELU; then GlobalPool2D's mean and projection.
  x = act(t, squeezeExcite(t, conv(t, x, `${v}.conv_exp.conv`, 3, { group: dims[3] }), `${v}.conv_exp.se`));
  const pooled = g.op("ReduceMean", [x], { axes: [2, 3], keepdims: 0 });
  g.output(w.linear(pooled, `${v}.head.proj`, false), "image_embeds", FLOAT, ["batch_size", spec.projectionDim]);
  return g.encode();
}

/**
 * The text tower on input_ids [B,77]: embeddings (no scaling: encode_text adds the positions only),
 * S0's RepMixer block on [B,C,1,L], pre-norm transformer layers without a mask (causal_masking false,
 * and the exports pass no padding mask), S0's second RepMixer, final layernorm, pooled at the
 * end-of-text token and projected.
 */
export function mobileclipTextTower(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  const text = spec.text;
  const { g, w, input: ids, style } = towerGraph(spec, "text", seed, variant);
  const t: Tower = { g, w, style };
  const repmixer = (x: string, i: number) => {
    const planar = g.op("Unsqueeze", [g.op("Transpose", [x], { perm: [0, 2, 1] }), g.ints([2])]); // [B,C,1,L]
    const y = repmixerBlock(t, planar, `text_model.repmixer.${i}`, text.width, [1, MCI.textKernel], [1, MCI.textKernel]);
    return g.op("Transpose", [g.op("Squeeze", [y, g.ints([2])])], { perm: [0, 2, 1] });
  };
  let x = tokenEmbeddings(g, w, ids).x;
  if (text.repmixer) x = repmixer(x, 0);
  for (let i = 0; i < text.layers; i++) {
    const p = `text_model.encoder.layers.${i}`;
    const h = layerNorm(g, w, x, `${p}.layer_norm1`, style);
    const [q, k, v] = g.ops("Split", [w.linear(h, `${p}.self_attn.qkv_proj`), g.ints([text.width, text.width, text.width])], 3, { axis: -1 }) as [string, string, string];
    x = g.op("Add", [x, w.linear(attention(g, q, k, v, text), `${p}.self_attn.out_proj`)]);
    x = g.op("Add", [x, mlp(g, w, layerNorm(g, w, x, `${p}.layer_norm2`, style), `${p}.mlp`, style)]);
  }
  if (text.repmixer) x = repmixer(x, 1);
  x = layerNorm(g, w, x, "text_model.final_layer_norm", style);
  g.output(w.linear(eotPooled(g, x, ids, text.width), "text_projection", false), "text_embeds", FLOAT, ["batch_size", spec.projectionDim]);
  g.output(x, "last_hidden_state", FLOAT, ["batch_size", text.context, text.width]);
  return g.encode();
}
