/**
 * Short names for the Hub exports people actually use (`--model clip-b16`), and the one place that
 * says which of them clip-ood can run. A preset is only a name for a Hub id: it downloads and caches
 * exactly as the id would, and what a detector or the store records is the id, not the preset.
 *
 * Facts here come from the Hub's file listings and configs of each repository (see the README's
 * model table for the sources and what could not be checked); sizes are the Hub's, in MB (10^6
 * bytes), text and vision graphs together, for the variants clip-ood loads (not the combined model.onnx).
 */
import type { Dtype } from "./folder.js";

export type ModelFamily = "clip" | "siglip" | "mobileclip";

export interface ModelPreset {
  name: string;
  hubId: string;
  family: ModelFamily;
  /** Side of the square the preprocessor crops to. */
  imageSize: number;
  /** Width of image_embeds / text_embeds. */
  embeddingDim: number;
  /**
   * The dtype variants the export holds (both towers), each with its download size in MB where the
   * Hub listing showed both files' sizes (undefined where one was not seen).
   */
  variants: Partial<Record<Dtype, number | undefined>>;
}


export const MODEL_PRESETS: readonly ModelPreset[] = [
  { name: "clip-b32", hubId: "Xenova/clip-vit-base-patch32", family: "clip", imageSize: 224, embeddingDim: 512, variants: { fp32: 606, fp16: 303, q8: 153.6 } },
  { name: "clip-b16", hubId: "Xenova/clip-vit-base-patch16", family: "clip", imageSize: 224, embeddingDim: 512, variants: { fp32: 599, fp16: 300, q8: 152 } },
  { name: "clip-l14", hubId: "Xenova/clip-vit-large-patch14", family: "clip", imageSize: 224, embeddingDim: 768, variants: { fp32: 1715, fp16: 857, q8: 432 } },
  { name: "clip-l14-336", hubId: "Xenova/clip-vit-large-patch14-336", family: "clip", imageSize: 336, embeddingDim: 768, variants: { fp32: 1715, q8: 432 } },
  { name: "siglip-b16", hubId: "Xenova/siglip-base-patch16-224", family: "siglip", imageSize: 224, embeddingDim: 768, variants: { fp32: 813, fp16: 407, q8: 210.5 } },
  {
    name: "mobileclip-s0",
    hubId: "Xenova/mobileclip_s0",
    family: "mobileclip",
    imageSize: 256,
    embeddingDim: 512,
    variants: { fp32: 215.5, fp16: 107.9, q8: undefined, int8: 54.6, uint8: undefined, q4: 162.7, bnb4: 162.5 },
  },
  {
    name: "mobileclip-s1",
    hubId: "Xenova/mobileclip_s1",
    family: "mobileclip",
    imageSize: 256,
    embeddingDim: 512,
    variants: { fp32: 340, fp16: 170.2, q8: undefined, int8: 86.5, uint8: undefined, q4: 196.1, bnb4: 192.8 },
  },
  {
    name: "mobileclip-s2",
    hubId: "Xenova/mobileclip_s2",
    family: "mobileclip",
    imageSize: 256,
    embeddingDim: 512,
    variants: { fp32: 397, fp16: 198.7, q8: 100.8, int8: 100.8, uint8: undefined, q4: 245, bnb4: 241 },
  },
  {
    name: "mobileclip-b",
    hubId: "Xenova/mobileclip_b",
    family: "mobileclip",
    imageSize: 224,
    embeddingDim: 512,
    variants: { fp32: 600, fp16: 300, q8: 151.6, int8: 151.6, q4: 183.6, bnb4: 175.3 },
  },
];

export function findPreset(name: string): ModelPreset | undefined {
  return MODEL_PRESETS.find((p) => p.name === name.toLowerCase());
}

/** The preset a Hub id belongs to, if any (ids are case-insensitive on the Hub). */
export function presetForHubId(id: string): ModelPreset | undefined {
  return MODEL_PRESETS.find((p) => p.hubId.toLowerCase() === id.toLowerCase());
}

/** "clip-b32, clip-b16, …", for hints. */
export function presetNames(): string {
  return MODEL_PRESETS.map((p) => p.name).join(", ");
}
