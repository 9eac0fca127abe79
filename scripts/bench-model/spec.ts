/**
 * What a bench model is: its architecture, any shrinking for tests, and the shapes both towers take
 * from them. One spec feeds the parameter table, the graphs and config.json, so they cannot disagree.
 */
import { ARCHS, ARCH_NAMES, MCI, MOBILECLIP_ARCHS, SIGLIP_ARCHS, isArch, isMobileclipArch, isSiglipArch } from "../clip-archs.js";
import type { Arch, MciShape, MobileclipArch, SiglipArch, TowerShape } from "../clip-archs.js";
import { SIGLIP_MAX_LENGTH } from "../siglip-model.js";
import { MOBILECLIP_TEXT_LENGTH } from "../test-model/config.js";

export type BenchArch = Arch | SiglipArch | MobileclipArch;
export const BENCH_ARCH_NAMES: readonly BenchArch[] = [...ARCH_NAMES, ...(Object.keys(SIGLIP_ARCHS) as SiglipArch[]), ...(Object.keys(MOBILECLIP_ARCHS) as MobileclipArch[])];

export function isBenchArch(value: string): value is BenchArch {
  return isArch(value) || isSiglipArch(value) || isMobileclipArch(value);
}

/**
 * Smaller dimensions, for tests: anything not given keeps the architecture's value. For MobileCLIP,
 * `width` is the last stage's (the others keep their ratios to it: ⅛, ¼, ½) and `layers` every stage's.
 */
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
  family: "clip" | "siglip" | "mobileclip";
  /**
   * For MobileCLIP, `patchSize` is the stride of the last stage's feature map and the other fields
   * describe that stage, a transformer over (imageSize / patchSize)² positions.
   */
  vision: TowerSpec & { imageSize: number; patchSize: number };
  /** MobileCLIP's image stages, all four (the vision field repeats the last). */
  mci?: MciShape;
  /** `repmixer`: MobileCLIP-S0's text tower, a RepMixer block on each side of the transformer layers. */
  text: TowerSpec & { vocab: number; context: number; repmixer?: boolean };
  /** The embedding width of both towers; SigLIP's, which has no projection, is the vision width. */
  projectionDim: number;
}

/** What the families' encoder blocks differ in besides their shapes (config.json's layer_norm_eps, hidden_act). */
export interface BlockStyle {
  eps: number;
  activation: "quick_gelu" | "gelu_pytorch_tanh" | "gelu";
}
export const BLOCK_STYLE: Readonly<Record<ClipSpec["family"], BlockStyle>> = {
  clip: { eps: 1e-5, activation: "quick_gelu" },
  siglip: { eps: 1e-6, activation: "gelu_pytorch_tanh" },
  // nn.LayerNorm's default ε and nn.GELU() throughout (mobileclip's transformer.py and mci.py).
  mobileclip: { eps: 1e-5, activation: "gelu" },
};
/** CLIP's BPE vocabulary; SigLIP's SentencePiece one (google/siglip-base-patch16-224's vocab_size). */
const CLIP_VOCAB = 49408;
const SIGLIP_VOCAB = 32000;

export function benchSpec(arch: BenchArch, shrink: Shrink = {}): ClipSpec {
  if (!isBenchArch(arch)) throw new Error(`unknown arch "${String(arch)}": use ${BENCH_ARCH_NAMES.join(", ")}`);
  if (isMobileclipArch(arch)) return checked(mobileclipSpec(arch, shrink));
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
  return checked(spec);
}

function mobileclipSpec(arch: MobileclipArch, shrink: Shrink): ClipSpec {
  const a = MOBILECLIP_ARCHS[arch];
  const last = shrink.width ?? a.image.dims[3];
  const dims = shrink.width === undefined ? a.image.dims : ([last / 8, last / 4, last / 2, last] as const);
  const n = shrink.layers;
  const stages = n === undefined ? a.image.stages : ([n, n, n, n] as const);
  return {
    arch,
    family: "mobileclip",
    vision: { imageSize: a.imageSize, patchSize: 32, width: last, layers: stages[3], heads: last / MCI.headDim, mlp: MCI.imageMlpRatio * last },
    mci: { stages, dims },
    text: {
      vocab: shrink.vocab ?? CLIP_VOCAB,
      context: MOBILECLIP_TEXT_LENGTH,
      width: shrink.textWidth ?? a.text.width,
      layers: shrink.textLayers ?? a.text.layers,
      heads: shrink.textHeads ?? a.text.heads,
      mlp: shrink.mlp ?? a.text.mlp,
      repmixer: a.text.repmixer,
    },
    projectionDim: a.projectionDim,
  };
}

function checked(spec: ClipSpec): ClipSpec {
  for (const [tower, t] of [["vision", spec.vision], ["text", spec.text]] as const) {
    for (const [k, v] of Object.entries(t)) {
      if (typeof v === "boolean") continue;
      if (!Number.isInteger(v) || v < 1) throw new Error(`${tower} ${k} must be a positive integer, got ${v}`);
    }
    if (t.width % t.heads !== 0) throw new Error(`${tower} width ${t.width} is not divisible by its ${t.heads} heads`);
  }
  for (const d of spec.mci?.dims ?? []) if (!Number.isInteger(d) || d < 1) throw new Error(`MobileCLIP stage widths must be positive integers, got ${spec.mci!.dims.join(", ")}: use a width divisible by 32`);
  return spec;
}
