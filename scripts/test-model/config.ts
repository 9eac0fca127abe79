/**
 * The files around the graphs: config.json and preprocessor_config.json in each family's form, written
 * as the Hugging Face files are, so that the config readers meet what real folders hold.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Opts } from "./options.js";

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
/** MobileCLIP feeds the rescaled pixels as they are, and crops to 256 (S0, S1, S2). */
export const MOBILECLIP_MEAN = [0, 0, 0] as const;
export const MOBILECLIP_STD = [1, 1, 1] as const;
export const MOBILECLIP_IMAGE_SIZE = 256;
/** The fixed text length of the MobileCLIP exports' input_ids. */
export const MOBILECLIP_TEXT_LENGTH = 77;

/** JSON as the Hugging Face files are written: two-space indent, final newline. */
export const jsonText = (v: unknown): string => JSON.stringify(v, null, 2) + "\n";

/** Writes config.json and preprocessor_config.json into `dir`, which must exist. */
export async function writeConfigFiles(dir: string, model: object, preprocessor: object): Promise<void> {
  await writeFile(path.join(dir, "config.json"), jsonText(model));
  await writeFile(path.join(dir, "preprocessor_config.json"), jsonText(preprocessor));
}

export function modelConfig(o: Opts, vocabSize: number) {
  return {
    _name_or_path: "clip-ood/generated-world",
    architectures: ["CLIPModel"],
    model_type: "clip",
    projection_dim: o.projectionDim,
    logit_scale_init_value: 2.6592,
    text_config: { model_type: "clip_text_model", hidden_size: o.projectionDim, vocab_size: vocabSize, max_position_embeddings: 77, bos_token_id: vocabSize - 2, eos_token_id: vocabSize - 1, projection_dim: o.projectionDim },
    vision_config: { model_type: "clip_vision_model", hidden_size: o.visionWidth, image_size: o.imageSize, patch_size: o.patchSize, num_channels: 3, projection_dim: o.projectionDim },
  };
}

export interface PreprocessorConfigOptions {
  /** Write `size` and `crop_size` as plain integers, like older exports. */
  legacyIntSize?: boolean;
  /** PIL's filter number: 3 bicubic (CLIP, the default), 2 bilinear (MobileCLIP). */
  resample?: 2 | 3;
  mean?: readonly number[];
  std?: readonly number[];
  /** Default "CLIPImageProcessor", transformers' current name; older exports say "CLIPFeatureExtractor". */
  imageProcessorType?: "CLIPImageProcessor" | "CLIPFeatureExtractor";
}

/** A CLIP preprocessor_config.json: resize the shortest edge to `imageSize`, centre-crop, normalise. */
export function preprocessorConfig(imageSize: number, o: PreprocessorConfigOptions = {}) {
  return {
    crop_size: o.legacyIntSize ? imageSize : { height: imageSize, width: imageSize },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    feature_extractor_type: "CLIPFeatureExtractor",
    image_mean: [...(o.mean ?? CLIP_MEAN)],
    image_processor_type: o.imageProcessorType ?? "CLIPImageProcessor",
    image_std: [...(o.std ?? CLIP_STD)],
    resample: o.resample ?? 3,
    rescale_factor: 1 / 255,
    size: o.legacyIntSize ? imageSize : { shortest_edge: imageSize },
  };
}
