/**
 * What a generated model can be asked for: the export contract it imitates and the variations of it
 * that real exports show, so that tests can check each variation is read correctly.
 */
import type { Arch } from "../clip-archs.js";

export interface GenerateOptions {
  /**
   * Give the graphs and configs a real export's contract (clip-archs.ts): its image size, patch size
   * (so last_hidden_state has its 50, 197 or 257 tokens), vision width and embedding width, written
   * into config.json as the real one has them. The world inside is the same; options given explicitly
   * still win. Default: the small B/32-like shape below (224 px, 32-px patches, width 32, D 64).
   */
  contract?: Arch;
  /** Embedding (projection) dimension D. */
  projectionDim?: number;
  /**
   * Vision hidden width W: at least the number of patch features + 3 (their rows, a bias row, the
   * all-ones direction the layernorm removes, and β's direction).
   */
  visionWidth?: number;
  imageSize?: number;
  patchSize?: number;
  /** Which ONNX variants to write: "fp32" (no suffix) and/or "q8" (`_quantized`, coarser weights). */
  dtypes?: readonly ("fp32" | "q8")[];
  /** Declare (and use) an attention_mask input on the text graph, as some exports do. */
  textAttentionMask?: boolean;
  /** Write `size` and `crop_size` as plain integers, like older exports. */
  legacyIntSize?: boolean;
  /**
   * How the vision graph writes its post-layernorm: "decomposed" (ReduceMean, Sub, Pow, ReduceMean,
   * Add ε, Sqrt, Div, Mul γ, Add β, as PyTorch exports below opset 17; the default) or "fused" (one
   * LayerNormalization node, opset 17).
   */
  postLayerNorm?: "decomposed" | "fused";
  /** Also output local_embeds [B,P,D]: every patch token through the same layernorm and projection. */
  localEmbeds?: boolean;
  /**
   * A folder holding a real CLIP tokenizer (tokenizer.json, tokenizer_config.json,
   * special_tokens_map.json): its files are copied and the text graph is sized to its vocabulary, so
   * the world's words are looked up by the real token ids (49406/49407 specials and all). Words the
   * real vocabulary splits ("cyan", "checkered") then carry no concept.
   */
  tokenizerFrom?: string;
  seed?: number;
  /**
   * "clip" (default) or "siglip": the SigLIP export contract (scripts/siglip-model.ts) — its configs,
   * a SentencePiece-style tokenizer, towers that output pooler_output, text padded to 64, and the
   * logit scale and bias in onnx/model.onnx. The world and its answers are the same.
   */
  family?: "clip" | "siglip" | "mobileclip";
  /** SigLIP: the logit bias written into onnx/model.onnx (default suits this world's cosines). */
  logitBias?: number;
  /**
   * How far a SYNONYMS word's direction lies from its target's: target + noise·(random unit vector),
   * normalised (default 0.3). 0 gives the word its target's direction exactly, so a prompt naming it
   * embeds bit for bit as one naming the target: classes named by such a pair tie in zero-shot scoring.
   */
  synonymNoise?: number;
}

/** The options once their defaults are filled in, as the graph and config writers read them. */
export type Opts = Required<Omit<GenerateOptions, "contract" | "dtypes" | "tokenizerFrom">>;
