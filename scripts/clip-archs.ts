/**
 * The published shapes of the CLIP ViTs the generators imitate (config.json of openai/clip-vit-*
 * and their Xenova ONNX exports: vision_config patch_size / hidden_size / num_hidden_layers /
 * num_attention_heads / intermediate_size, text_config likewise, projection_dim). One table, so the
 * small world models (make-test-model.ts) and the full-size benchmark models (make-bench-model.ts)
 * cannot drift apart. L/14's text tower is wider than B's (768, 12 heads) and its embeddings are 768
 * wide, not 512.
 */
export type Arch = "B/32" | "B/16" | "L/14";

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
