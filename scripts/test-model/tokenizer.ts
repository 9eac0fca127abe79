/**
 * The generated CLIP-style tokenizer, and the SigLIP-style one's files: both spell every word of the
 * world as one token, so that a prompt's embedding is exactly its words' directions.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { siglipTokenizerFiles } from "../siglip-model.js";
import { GENERIC_WORDS, SYNONYMS } from "../world.js";
import { CONCEPTS } from "./concepts.js";
import { jsonText } from "./config.js";

/** The files of a Hugging Face tokenizer that a model folder carries. */
export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] as const;

/** Every word the world's tokenizers spell as one token. */
const WORLD_WORDS = [...CONCEPTS, ...Object.keys(SYNONYMS), ...GENERIC_WORDS];

/**
 * Writes the generated world's CLIP-style tokenizer (every world word one token) into `dir`, which
 * must exist, and returns its vocabulary.
 */
export async function writeTokenizerFiles(dir: string): Promise<Record<string, number>> {
  const tokenizerJson = buildTokenizerJson(WORLD_WORDS);
  await writeFile(path.join(dir, "tokenizer.json"), jsonText(tokenizerJson));
  await writeFile(path.join(dir, "tokenizer_config.json"), jsonText(tokenizerConfig()));
  await writeFile(path.join(dir, "special_tokens_map.json"), jsonText(specialTokensMap()));
  return tokenizerJson.model.vocab;
}

/**
 * Writes a SigLIP-style tokenizer (siglip-model.ts) in which every one of `words` is one piece into
 * `dir`, which must exist, and returns its vocabulary.
 */
export async function writeSiglipTokenizerFiles(dir: string, words: readonly string[] = WORLD_WORDS): Promise<Record<string, number>> {
  const files = siglipTokenizerFiles(words);
  await writeFile(path.join(dir, "tokenizer.json"), jsonText(files.tokenizerJson));
  await writeFile(path.join(dir, "tokenizer_config.json"), jsonText(files.tokenizerConfig));
  await writeFile(path.join(dir, "special_tokens_map.json"), jsonText(files.specialTokensMap));
  return Object.fromEntries(files.vocab);
}

/** GPT-2/CLIP byte → printable-unicode table, in CLIP's vocabulary order. */
export function bytesToUnicode(): Map<number, string> {
  const bs: number[] = [];
  for (const [a, b] of [[33, 126], [161, 172], [174, 255]] as const) for (let i = a; i <= b; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [b, String.fromCodePoint(cs[i]!)]));
}

const CLIP_SPLIT_REGEX = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/**
 * A CLIP-structured byte-level BPE tokenizer.json whose merges spell exactly `words` (lowercase
 * ASCII) as single tokens; any other text falls back to smaller pieces, as in the real vocabulary.
 */
function buildTokenizerJson(words: readonly string[]) {
  const symbols = [...bytesToUnicode().values()];
  const vocab: Record<string, number> = {};
  const add = (t: string) => {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  symbols.forEach(add);
  symbols.forEach((s) => add(s + "</w>"));
  // Words are added one at a time: simulate BPE with the merges so far, then append merges that join
  // the resulting pieces left to right. Appended merges rank below all earlier ones, so they cannot
  // change how an earlier word is split: every word stays a single token by construction.
  const merges: string[] = [];
  const rank = new Map<string, number>();
  for (const w of new Set(words)) {
    const pieces = bpe([...w].map((c, i, all) => (i === all.length - 1 ? c + "</w>" : c)), rank);
    let acc = pieces[0]!;
    for (const next of pieces.slice(1)) {
      const key = `${acc} ${next}`;
      if (!rank.has(key)) {
        rank.set(key, merges.length);
        merges.push(key);
        add(acc + next);
      }
      acc += next;
    }
  }
  add("<|startoftext|>");
  add("<|endoftext|>");
  const special = (content: string, normalized: boolean) => ({
    id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized, special: true,
  });
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special("<|startoftext|>", true), special("<|endoftext|>", false)],
    normalizer: { type: "Sequence", normalizers: [{ type: "NFC" }, { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, { type: "Lowercase" }] },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: CLIP_SPLIT_REGEX }, behavior: "Removed", invert: true },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: { type: "RobertaProcessing", sep: ["<|endoftext|>", vocab["<|endoftext|>"]], cls: ["<|startoftext|>", vocab["<|startoftext|>"]], trim_offsets: false, add_prefix_space: false },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: "<|endoftext|>", continuing_subword_prefix: "", end_of_word_suffix: "</w>",
      fuse_unk: false, byte_fallback: false, vocab, merges,
    },
  };
  // The world only works if every word is one token: check with the same library the product uses.
  const tok = new Tokenizer(json, tokenizerConfig());
  for (const w of new Set(words)) {
    const ids = tok.encode(w).ids;
    if (ids.length !== 3) throw new Error(`generated vocabulary splits "${w}" into ${ids.length - 2} tokens`);
  }
  return json;
}

function tokenizerConfig() {
  const added = (content: string) => ({ __type: "AddedToken", content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  return {
    add_prefix_space: false,
    bos_token: added("<|startoftext|>"),
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    eos_token: added("<|endoftext|>"),
    errors: "replace",
    model_max_length: 77,
    pad_token: "<|endoftext|>",
    processor_class: "CLIPProcessor",
    tokenizer_class: "CLIPTokenizer",
    unk_token: added("<|endoftext|>"),
  };
}

function specialTokensMap() {
  const t = (content: string) => ({ content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  return { bos_token: t("<|startoftext|>"), eos_token: t("<|endoftext|>"), pad_token: "<|endoftext|>", unk_token: t("<|endoftext|>") };
}

/** Plain BPE: repeatedly merge every occurrence of the adjacent pair with the lowest rank. */
function bpe(symbols: string[], rank: ReadonlyMap<string, number>): string[] {
  let parts = symbols;
  for (;;) {
    let best: string | undefined;
    for (let i = 0; i + 1 < parts.length; i++) {
      const key = `${parts[i]} ${parts[i + 1]}`;
      if (rank.has(key) && (best === undefined || rank.get(key)! < rank.get(best)!)) best = key;
    }
    if (best === undefined) return parts;
    const next: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (i + 1 < parts.length && `${parts[i]} ${parts[i + 1]}` === best) {
        next.push(parts[i]! + parts[i + 1]!);
        i++;
      } else next.push(parts[i]!);
    }
    parts = next;
  }
}
