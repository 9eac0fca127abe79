/**
 * The SigLIP-contract parts of a generated model (see make-test-model.ts, which assembles them): the
 * files and graph interfaces of the transformers.js SigLIP exports (Xenova/siglip-base-patch16-224),
 * with the generated world's weights.
 *
 * - config.json: model_type "siglip", text_config / vision_config with their siglip_*_model types.
 * - tokenizer.json: a SentencePiece Unigram model behind a Metaspace pre-tokenizer, as converted SigLIP
 *   tokenizers are; every world word is one "▁word" piece, anything else falls back to letters.
 *   tokenizer_config.json: eos and pad "</s>" (id 1), unk "<unk>" (id 2), no bos, model_max_length 64.
 * - preprocessor_config.json: SiglipImageProcessor, size {height, width} (a plain resize, no crop),
 *   mean = std = 0.5, resample 3, as google/siglip-base-patch16-224 publishes.
 * - onnx/text_model.onnx: input_ids only (no attention_mask) → last_hidden_state, pooler_output.
 *   Attention is bidirectional and the pooler takes the last position, so the ids must be padded to
 *   64 with the pad id, as the model was trained (SiglipProcessor's padding="max_length").
 * - onnx/vision_model.onnx: pixel_values → last_hidden_state [B,P,W] (no class token), pooler_output.
 * - onnx/model.onnx: the combined graph; the learned logit_scale (stored as its log) and logit_bias are
 *   its initializers. Here it holds only the scoring head over two unit embeddings, not the towers.
 */
import { FLOAT, GraphBuilder, INT64 } from "../src/maths/kernels/onnx-graph.js";

export const SIGLIP_MEAN = [0.5, 0.5, 0.5] as const;
export const SIGLIP_STD = [0.5, 0.5, 0.5] as const;
export const SIGLIP_MAX_LENGTH = 64;
/** Metaspace's word-boundary mark (U+2581). */
export const METASPACE = "\u2581";
/** Special pieces in SigLIP's vocabulary order: <pad> 0, </s> 1, <unk> 2. */
const SPECIALS = ["<pad>", "</s>", "<unk>"] as const;
const PAD_ID = 1;
/**
 * Python's string.punctuation as one character class: the normalizer removes it, as
 * SiglipTokenizer.canonicalize_text does.
 */
export const PUNCTUATION_CLASS = "[" + [..."!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"].map((c) => "\\" + c).join("") + "]";

/** The generated model's scoring values: the published base-224 scale, a bias that suits this world's cosines. */
export const GENERATED_LOGIT_SCALE = 117.3308;
/**
 * With the published scale 117.33, σ(scale·cos + bias) crosses ½ at cos ≈ 0.65, between this world's
 * matching (≈ 0.8) and non-matching (≈ 0.5) image–caption cosines (the real model's −12.93 puts that
 * point at cos ≈ 0.11, where its cosines lie).
 */
export const GENERATED_LOGIT_BIAS = -76;

export interface SiglipTokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  specialTokensMap: Record<string, unknown>;
  /** piece → id, specials included. */
  vocab: Map<string, number>;
}

/**
 * A SigLIP-style tokenizer whose Unigram vocabulary holds every `word` as one piece. Whole-word pieces
 * score far above letter pieces, so Viterbi segmentation keeps a known word whole.
 */
export function siglipTokenizerFiles(words: readonly string[]): SiglipTokenizerFiles {
  const pieces: [string, number][] = SPECIALS.map((s) => [s, 0]);
  pieces.push([METASPACE, -4]);
  for (const w of new Set(words)) pieces.push([METASPACE + w, -2]);
  // One-letter words ("a") are already pieces; a vocabulary must not name a piece twice.
  const seen = new Set(pieces.map(([p]) => p));
  for (const c of "abcdefghijklmnopqrstuvwxyz0123456789") for (const p of [c, METASPACE + c]) if (!seen.has(p)) pieces.push([p, -10]);
  const vocab = new Map(pieces.map(([p], i) => [p, i]));
  const special = (content: string) => ({ id: vocab.get(content), content, single_word: false, lstrip: true, rstrip: true, normalized: false, special: true });
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map(special),
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Lowercase" },
        { type: "Replace", pattern: { Regex: PUNCTUATION_CLASS }, content: "" },
        { type: "Replace", pattern: { Regex: " {2,}" }, content: " " },
        { type: "Strip", strip_left: true, strip_right: true },
      ],
    },
    pre_tokenizer: { type: "Metaspace", replacement: METASPACE, prepend_scheme: "always", split: true },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }],
      pair: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }, { Sequence: { id: "B", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }],
      special_tokens: { "</s>": { id: "</s>", ids: [PAD_ID], tokens: ["</s>"] } },
    },
    decoder: { type: "Metaspace", replacement: METASPACE, prepend_scheme: "always", split: true },
    model: { type: "Unigram", unk_id: vocab.get("<unk>"), vocab: pieces, byte_fallback: false },
  };
  const added = (content: string) => ({ content, lstrip: true, normalized: false, rstrip: true, single_word: false, special: true });
  const tokenizerConfig = {
    added_tokens_decoder: { "1": added("</s>"), "2": added("<unk>") },
    additional_special_tokens: [],
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    eos_token: "</s>",
    model_input_names: ["input_ids"],
    model_max_length: SIGLIP_MAX_LENGTH,
    pad_token: "</s>",
    processor_class: "SiglipProcessor",
    sp_model_kwargs: {},
    tokenizer_class: "SiglipTokenizer",
    unk_token: "<unk>",
  };
  const t = (content: string) => ({ content, lstrip: true, normalized: false, rstrip: true, single_word: false });
  const specialTokensMap = { eos_token: t("</s>"), pad_token: t("</s>"), unk_token: t("<unk>") };
  return { tokenizerJson, tokenizerConfig, specialTokensMap, vocab };
}

/** config.json as the SigLIP exports write it (vocab and widths are the generated model's). */
export function siglipModelConfig(o: { projectionDim: number; visionWidth: number; imageSize: number; patchSize: number }, vocabSize: number) {
  return {
    _name_or_path: "clip-ood/generated-world-siglip",
    architectures: ["SiglipModel"],
    initializer_factor: 1.0,
    model_type: "siglip",
    text_config: { hidden_size: o.projectionDim, max_position_embeddings: SIGLIP_MAX_LENGTH, model_type: "siglip_text_model", vocab_size: vocabSize },
    vision_config: { hidden_size: o.projectionDim, image_size: o.imageSize, model_type: "siglip_vision_model", patch_size: o.patchSize },
  };
}

/** preprocessor_config.json as google/siglip-base-patch16-224 publishes it, at `imageSize`. */
export function siglipPreprocessorConfig(imageSize: number) {
  return {
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [...SIGLIP_MEAN],
    image_processor_type: "SiglipImageProcessor",
    image_std: [...SIGLIP_STD],
    processor_class: "SiglipProcessor",
    resample: 3,
    rescale_factor: 1 / 255,
    size: { height: imageSize, width: imageSize },
  };
}

/**
 * The text tower with SigLIP's interface: token embeddings plus learned positions (a table of 64 rows,
 * so a longer input fails as the real graph does), mixed in both directions (every position sees the
 * mean of all), pooled at the last position. `rows[id]` is a token's embedding and `positions` the
 * position table, 64 × D: since the last position is what is pooled, an embedding depends on the
 * padded length, which is why SigLIP ids must always be padded to 64.
 */
export function siglipTextGraph(table: Float32Array, vocabSize: number, positions: Float32Array, D: number): Uint8Array {
  const g = new GraphBuilder("siglip_text_world");
  const ids = g.input("input_ids", INT64, ["batch_size", "sequence_length"]);
  const tokens = g.op("Gather", [g.floats(table, [vocabSize, D]), ids], { axis: 0 }); // [B,L,D]
  const length = g.op("Gather", [g.op("Shape", [ids]), g.ints([1], [])], { axis: 0 });
  const positionIds = g.op("Range", [g.ints([0], []), length, g.ints([1], [])]);
  const pos = g.op("Gather", [g.floats(positions, [SIGLIP_MAX_LENGTH, D]), positionIds], { axis: 0 }); // [L,D]
  const mixed = g.op("Add", [g.op("ReduceSum", [tokens, g.ints([1])], { keepdims: 1 }), pos]); // [B,L,D]
  g.output(mixed, "last_hidden_state", FLOAT, ["batch_size", "sequence_length", D]);
  const last = g.op("Gather", [mixed, g.ints([-1], [])], { axis: 1 }); // [B,D]
  g.output(g.op("Mul", [last, g.scalar(3)]), "pooler_output", FLOAT, ["batch_size", D]);
  return g.encode();
}

/**
 * The combined graph's scoring head with SigLIP's parameter names: logits_per_text = exp(logit_scale) ·
 * text·imageᵀ + logit_bias over unit embeddings. What matters to clip-ood is the two initializers.
 */
export function siglipCombinedGraph(logitScale: number, logitBias: number, D: number): Uint8Array {
  const g = new GraphBuilder("siglip_world_head");
  const text = g.input("text_embeds", FLOAT, ["text_batch_size", D]);
  const image = g.input("image_embeds", FLOAT, ["image_batch_size", D]);
  const scale = g.floatArray(Float32Array.of(Math.log(logitScale)), [1], "logit_scale");
  const bias = g.floatArray(Float32Array.of(logitBias), [1], "logit_bias");
  const cos = g.op("MatMul", [text, g.op("Transpose", [image], { perm: [1, 0] })]);
  const logits = g.op("Add", [g.op("Mul", [cos, g.op("Exp", [scale])]), bias]);
  g.output(logits, "logits_per_text", FLOAT, ["text_batch_size", "image_batch_size"]);
  g.output(g.op("Transpose", [logits], { perm: [1, 0] }), "logits_per_image", FLOAT, ["image_batch_size", "text_batch_size"]);
  return g.encode();
}
