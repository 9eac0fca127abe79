/**
 * The vocabulary clusters are named from (vocabulary-free classification's fixed-vocabulary baseline,
 * Conti et al. 2023; METHODS.md §12): WordNet's nouns or the user's word list, each word put through
 * the templates as a class name is, its text feature cached like NegLabel's candidates, and the
 * ranking of words by cosine to a cluster's unit centroid.
 */
import type { ClipModel } from "../clip.js";
import { ClipOodError, messageOf } from "../errors.js";
import { readFileBounded } from "../io/bounded-read.js";
import { topK } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { promptBankFeatures } from "../ood/zero-shot/prompt-bank.js";
import { loadWordNetLexicon, WORDNET_LEX_FILE_NAMES } from "../ood/zero-shot/wordnet.js";
import type { ClassSpec } from "../text/classes.js";
import { fillTemplate } from "../text/templates.js";
import type { NameCandidate } from "./types.js";

/** WordNet's 26 noun lexicographer files: every noun a cluster may be named by (animals and foods included, unlike NegLabel's). */
export const WORDNET_NOUN_FILES: readonly string[] = Object.freeze(Object.values(WORDNET_LEX_FILE_NAMES).filter((f) => f.startsWith("noun.")));

const VOCABULARY_HINT = 'give "wordnet", or a UTF-8 text file with one word or phrase per line (# comments and blank lines skipped)';

/** Words of a vocabulary file (pure): one per line, trimmed, NFC, # comments and blank lines skipped, first occurrence kept. */
export function parseVocabulary(bytes: Uint8Array, source: string): string[] {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    throw new ClipOodError("INPUT", `vocabulary ${source} is not UTF-8 text: ${messageOf(e)}`, { hint: VOCABULARY_HINT, cause: e });
  }
  // Text never holds NUL or other C0 controls but tab and line ends; binary files (images, archives) almost always do.
  const control = [...text].find((ch) => ch.charCodeAt(0) < 0x20 && !"\t\n\r\f\v".includes(ch));
  if (control !== undefined) {
    throw new ClipOodError("INPUT", `vocabulary ${source} is not a text file (it holds the control byte 0x${control.charCodeAt(0).toString(16).padStart(2, "0")})`, { hint: VOCABULARY_HINT });
  }
  const words = [
    ...new Set(
      text
        .replace(/^\uFEFF/, "")
        .split(/\r?\n/)
        .map((l) => l.trim().normalize("NFC"))
        .filter((l) => l !== "" && !l.startsWith("#")),
    ),
  ];
  if (words.length === 0) throw new ClipOodError("INPUT", `vocabulary ${source} holds no words`, { hint: VOCABULARY_HINT });
  return words;
}

/** "wordnet" → WordNet's nouns (each synset's first word); anything else → the words of that file. */
export async function loadVocabulary(spec: string): Promise<string[]> {
  if (spec === "wordnet") return (await loadWordNetLexicon({ lexFiles: WORDNET_NOUN_FILES })).map((e) => e.word);
  const bytes = await readFileBounded(spec, { what: "vocabulary", code: "INPUT", hint: VOCABULARY_HINT });
  return parseVocabulary(bytes, spec);
}

/** The words left once every name of a known class (label and synonyms, ignoring case) is removed. */
export function withoutKnownNames(words: readonly string[], known: readonly ClassSpec[]): string[] {
  const names = new Set(known.flatMap((c) => [c.label, ...c.names]).map((n) => n.toLowerCase()));
  return words.filter((w) => !names.has(w.toLowerCase()));
}

/** One unit feature per word: the word in every template, normalised, averaged, renormalised; cached per model and prompt list. */
export function vocabularyFeatures(model: ClipModel, words: readonly string[], templates: readonly string[], o: { cacheDir: string; onProgress?: (done: number, total: number) => void }): Promise<Matrix> {
  const prompts = words.map((w) => [...new Set(templates.map((t) => fillTemplate(t, w)))]);
  return promptBankFeatures(model, prompts, { cacheDir: o.cacheDir, folder: "vocabulary", ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
}

/**
 * The `top` words whose features have the largest cosine with the unit `centroid`, best first (pure).
 * `cosines`, if given, are those cosines already computed (one per word).
 */
export function rankNames(words: readonly string[], cosines: ArrayLike<number>, top: number): NameCandidate[] {
  return topK(cosines, Math.min(top, words.length)).map((i) => ({ name: words[i]!, score: cosines[i]! }));
}
