/**
 * The text towers over the world's token table: CLIP's causal sum pooled at the end-of-text token, and
 * SigLIP's (siglip-model.ts) pooled at the last padded position.
 */
import { FLOAT, GraphBuilder, INT64 } from "../../src/maths/kernels/onnx-graph.js";
import { METASPACE, SIGLIP_MAX_LENGTH, siglipTextGraph } from "../siglip-model.js";
import { GENERIC_WORDS } from "../world.js";
import type { WeightSource } from "./concepts.js";
import { MOBILECLIP_TEXT_LENGTH } from "./config.js";
import type { Opts } from "./options.js";

/** Weight of the shared "this is a caption/photo" direction in generic words (images: vision.ts). */
const WORD_GENERIC = 0.35;

export function textGraph(o: Opts, vocab: Record<string, number>, vocabSize: number, source: WeightSource): Uint8Array {
  const D = o.projectionDim;
  const table = tokenTable(vocab, vocabSize, D, (token) => {
    if (token === "<|endoftext|>") return new Array<number>(D).fill(0);
    if (token === "<|startoftext|>") return source.generic.map((v) => 0.5 * v);
    return token.endsWith("</w>") ? token.slice(0, -4) : undefined;
  }, source);
  const g = new GraphBuilder("clip_text_world");
  const length = o.family === "mobileclip" ? MOBILECLIP_TEXT_LENGTH : "sequence_length";
  const ids = g.input("input_ids", INT64, ["batch_size", length]);
  let tokens = g.op("Gather", [g.floats(table, [vocabSize, D]), ids], { axis: 0 }); // [B,L,D]
  if (o.textAttentionMask) {
    const mask = g.input("attention_mask", INT64, ["batch_size", "sequence_length"]);
    tokens = g.op("Mul", [tokens, g.op("Unsqueeze", [g.op("Cast", [mask], { to: FLOAT }), g.ints([-1])])]);
  }
  const causal = g.op("CumSum", [tokens, g.ints([1], [])]);
  const eot = g.op("ArgMax", [ids], { axis: 1, keepdims: 1 }); // first occurrence of the largest id
  const index = g.op("Expand", [g.op("Unsqueeze", [eot, g.ints([2])]), g.ints([1, 1, D])]);
  const pooled = g.op("Squeeze", [g.op("GatherElements", [causal, index], { axis: 1 }), g.ints([1])]);
  g.output(causal, "last_hidden_state", FLOAT, ["batch_size", length, D]);
  g.output(g.op("Mul", [pooled, g.scalar(3)]), "text_embeds", FLOAT, ["batch_size", D]);
  return g.encode();
}

/**
 * Token embeddings of a vocabulary: `special` gives a token's row outright, or the world word it
 * spells (undefined: a fragment). Concept words get their direction, generic words the shared
 * caption direction, anything else a small random vector.
 */
function tokenTable(
  vocab: Record<string, number>,
  vocabSize: number,
  D: number,
  special: (token: string) => number[] | string | undefined,
  { directions, generic, randomVector, q }: WeightSource,
): Float32Array {
  const table = new Float32Array(vocabSize * D);
  const genericWords = new Set(GENERIC_WORDS);
  for (const [token, id] of Object.entries(vocab)) {
    const s = special(token);
    let row: number[];
    if (Array.isArray(s)) row = s;
    else if (s !== undefined && directions.has(s)) row = directions.get(s)!;
    else if (s !== undefined && genericWords.has(s)) {
      const r = randomVector(D);
      row = generic.map((v, i) => WORD_GENERIC * v + 0.05 * r[i]!);
    } else row = randomVector(D).map((v) => 0.08 * v);
    table.set(row.map(q), id * D);
  }
  return table;
}

/**
 * The SigLIP text tower (siglip-model.ts) over the world's table. Padding (</s>) and the other
 * specials embed as zero, so only the position of the last (pooled) slot depends on the padded length.
 */
export function siglipText(o: Opts, vocab: Record<string, number>, vocabSize: number, source: WeightSource): Uint8Array {
  const D = o.projectionDim;
  const table = tokenTable(vocab, vocabSize, D, (token) => {
    if (token.startsWith("<")) return new Array<number>(D).fill(0);
    return token.startsWith(METASPACE) && token.length > 1 ? token.slice(1) : undefined;
  }, source);
  const positions = Float32Array.from(Array.from({ length: SIGLIP_MAX_LENGTH }, () => source.randomVector(D).map((v) => source.q(0.3 * v))).flat());
  return siglipTextGraph(table, vocabSize, positions, D);
}
