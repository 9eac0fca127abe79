/**
 * What a bench model is: its architecture, any shrinking for tests, and the shapes both towers take
 * from them. One spec feeds the parameter table, the graphs and config.json, so they cannot disagree.
 */
import { ARCHS, ARCH_NAMES, SIGLIP_ARCHS, isArch, isSiglipArch } from "../clip-archs.js";
import type { Arch, SiglipArch, TowerShape } from "../clip-archs.js";
import { SIGLIP_MAX_LENGTH } from "../siglip-model.js";

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

export type TowerSpec = TowerShape;

export interface ClipSpec {
  arch: BenchArch;
  family: "clip" | "siglip";
  vision: TowerSpec & { imageSize: number; patchSize: number };
  text: TowerSpec & { vocab: number; context: number };
  /** The embedding width of both towers; SigLIP's, which has no projection, is the vision width. */
  projectionDim: number;
}

/** What the families' encoder blocks differ in besides their shapes (config.json's layer_norm_eps, hidden_act). */
export interface BlockStyle {
  eps: number;
  activation: "quick_gelu" | "gelu_pytorch_tanh";
}
export const BLOCK_STYLE: Readonly<Record<ClipSpec["family"], BlockStyle>> = {
  clip: { eps: 1e-5, activation: "quick_gelu" },
  siglip: { eps: 1e-6, activation: "gelu_pytorch_tanh" },
};
/** CLIP's BPE vocabulary; SigLIP's SentencePiece one (google/siglip-base-patch16-224's vocab_size). */
const CLIP_VOCAB = 49408;
const SIGLIP_VOCAB = 32000;

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
