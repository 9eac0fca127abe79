/**
 * The published shapes of the CLIP ViTs the generators imitate (config.json of openai/clip-vit-*
 * and their Xenova ONNX exports: vision_config patch_size / hidden_size / num_hidden_layers /
 * num_attention_heads / intermediate_size, text_config likewise, projection_dim). One table, so the
 * small world models (make-test-model.ts) and the full-size benchmark models (make-bench-model.ts)
 * cannot drift apart. L/14's text tower is wider than B's (768, 12 heads) and its embeddings are 768
 * wide, not 512.
 */
export type Arch = "B/32" | "B/16" | "L/14" | "L/14-336";

export interface TowerShape {
  width: number;
  layers: number;
  heads: number;
  mlp: number;
}

export interface ArchShape {
  imageSize: number;
  patchSize: number;
  vision: TowerShape;
  text: TowerShape;
  projectionDim: number;
}

export const ARCHS: Readonly<Record<Arch, ArchShape>> = {
  "B/32": { imageSize: 224, patchSize: 32, vision: { width: 768, layers: 12, heads: 12, mlp: 3072 }, text: { width: 512, layers: 12, heads: 8, mlp: 2048 }, projectionDim: 512 },
  "B/16": { imageSize: 224, patchSize: 16, vision: { width: 768, layers: 12, heads: 12, mlp: 3072 }, text: { width: 512, layers: 12, heads: 8, mlp: 2048 }, projectionDim: 512 },
  "L/14": { imageSize: 224, patchSize: 14, vision: { width: 1024, layers: 24, heads: 16, mlp: 4096 }, text: { width: 768, layers: 12, heads: 12, mlp: 3072 }, projectionDim: 768 },
  // openai/clip-vit-large-patch14-336: L/14 at 336 px, 577 tokens.
  "L/14-336": { imageSize: 336, patchSize: 14, vision: { width: 1024, layers: 24, heads: 16, mlp: 4096 }, text: { width: 768, layers: 12, heads: 12, mlp: 3072 }, projectionDim: 768 },
};

export const ARCH_NAMES = Object.keys(ARCHS) as Arch[];

export function isArch(value: string): value is Arch {
  return Object.hasOwn(ARCHS, value);
}

/**
 * SigLIP ViTs (config.json of google/siglip-*, as Xenova/siglip-* export them), for the full-size
 * benchmark models only. A table of its own because the towers differ in more than shape (no class
 * token, attention-pooling head, bidirectional text pooled at the last position) and the small world
 * models' CLIP contracts must not offer them. Both towers end at `projectionDim` = width: SigLIP has no
 * projection, its heads map width to width.
 */
export type SiglipArch = "SigLIP-B/16";

export const SIGLIP_ARCHS: Readonly<Record<SiglipArch, ArchShape>> = {
  "SigLIP-B/16": { imageSize: 224, patchSize: 16, vision: { width: 768, layers: 12, heads: 12, mlp: 3072 }, text: { width: 768, layers: 12, heads: 12, mlp: 3072 }, projectionDim: 768 },
};

export function isSiglipArch(value: string): value is SiglipArch {
  return Object.hasOwn(SIGLIP_ARCHS, value);
}

/** Tokens of the vision tower's last_hidden_state: the class token and one per patch (50, 197, 257). */
export function visionTokens(a: Pick<ArchShape, "imageSize" | "patchSize">): number {
  return 1 + (a.imageSize / a.patchSize) ** 2;
}

/**
 * The MCi and MCt constants mci.py and text/repmixer.py fix: squeeze-excitation on the patch embeddings
 * into stages 2 and 3 (se_downsamples, timm's SqueezeExcite, ratio ¼) and on the final expansion
 * (MobileOne's SEBlock, ratio 1/16); ConvFFN widths 3× (image) and 4× (text); the text RepMixer's 1×11
 * kernels; attention heads of 32 dims (MHSA's head_dim).
 */
export const MCI = {
  downsampleSe: [false, false, true, true],
  downsampleSeRatio: 0.25,
  convExpSeRatio: 0.0625,
  imageMlpRatio: 3,
  textMlpRatio: 4,
  textKernel: 11,
  headDim: 32,
} as const;

/**
 * MobileCLIP's S variants (apple/ml-mobileclip: mobileclip/configs/mobileclip_s*.json and the mci0/1/2
 * definitions in mobileclip/models/mci.py), for the full-size benchmark models only. The image tower is
 * an MCi (FastViT) network: a convolutional stem to 1/4, four stages at 1/4, 1/8, 1/16 and 1/32 of
 * the image joined by stride-2 patch embeddings, RepMixer blocks in the first three and attention
 * blocks (heads of 32 dims, behind a 7×7 conditional position encoding) in the last, MLP ratio 3, then
 * a 2× channel expansion, global pooling and the projection. The text tower is 512 wide with 8 heads
 * and an FFN of 2048, not causal; S0's is "mct", one RepMixer block on each side of 4 transformer
 * layers, S1's and S2's "base", 12 layers. MobileCLIP-B's image tower is a ViT-B/16, left out.
 */
export type MobileclipArch = "MobileCLIP-S0" | "MobileCLIP-S1" | "MobileCLIP-S2";

export interface MciShape {
  /** Blocks per stage. */
  stages: readonly [number, number, number, number];
  /** Channels per stage. */
  dims: readonly [number, number, number, number];
}

export interface MobileclipShape {
  imageSize: number;
  image: MciShape;
  text: TowerShape & { repmixer: boolean };
  projectionDim: number;
}

const MOBILECLIP_TEXT = { width: 512, heads: 8, mlp: 2048 };
export const MOBILECLIP_ARCHS: Readonly<Record<MobileclipArch, MobileclipShape>> = {
  "MobileCLIP-S0": { imageSize: 256, image: { stages: [2, 6, 10, 2], dims: [64, 128, 256, 512] }, text: { ...MOBILECLIP_TEXT, layers: 4, repmixer: true }, projectionDim: 512 },
  "MobileCLIP-S1": { imageSize: 256, image: { stages: [4, 12, 20, 4], dims: [64, 128, 256, 512] }, text: { ...MOBILECLIP_TEXT, layers: 12, repmixer: false }, projectionDim: 512 },
  "MobileCLIP-S2": { imageSize: 256, image: { stages: [4, 12, 24, 4], dims: [80, 160, 320, 640] }, text: { ...MOBILECLIP_TEXT, layers: 12, repmixer: false }, projectionDim: 512 },
};

export function isMobileclipArch(value: string): value is MobileclipArch {
  return Object.hasOwn(MOBILECLIP_ARCHS, value);
}
