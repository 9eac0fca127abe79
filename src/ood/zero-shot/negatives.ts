/**
 * NegLabel's negative labels for a class list (METHODS.md §4, CSP §5): candidates from WordNet (or the
 * user's own list), their text embeddings, mining and grouping. Candidate embeddings depend only on
 * the model, so they are cached on disk per model; the mined selection per (model, class list,
 * settings).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { ClassFeatures, ClipModel } from "../../clip.js";
import { writeCacheFile } from "../../io/atomic-file.js";
import { row, stackRows } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";
import { fillTemplate } from "../../text/templates.js";
import {
  conjugatedLabels,
  CSP_ADJ_WRAPPERS,
  CSP_EXCLUDED_LEX_FILES,
  CSP_MAX_COSINE,
  CSP_NOUN_TEMPLATES,
  mineNegativeLabels,
  NEGLABEL_ADJ_TEMPLATE,
  NEGLABEL_DEFAULT_FRACTION,
  NEGLABEL_DEFAULT_GROUPS,
  NEGLABEL_NOUN_TEMPLATE,
  negLabelGroups,
} from "./neglabel.js";
import { promptBankFeatures } from "./prompt-bank.js";
import { loadWordNetLexicon, NEGLABEL_LEX_FILES } from "./wordnet.js";
import type { LexiconEntry } from "./wordnet.js";

export interface NegativeLabels {
  /** Mined labels in mined order (nouns, then adjectives). */
  labels: string[];
  features: Matrix;
  groups: number[][];
  source: "wordnet" | "wordnet-conjugated" | "user";
}

export interface NegativeOptions {
  /** Use these labels as they are (no mining), each as a noun prompt. */
  userLabels?: string[];
  /** CSP: adjective + superclass labels, CSP's lexicon, templates and max-cosine filter. */
  conjugated?: boolean;
  fraction?: number;
  groups?: number;
  cacheDir: string;
  onProgress?: (done: number, total: number) => void;
}

/** The prompts whose normalised embeddings are averaged into each candidate's feature. */
function candidatePrompts(entries: readonly LexiconEntry[], conjugated: boolean): string[][] {
  if (!conjugated) return entries.map((e) => [fillTemplate(e.pos === "noun" ? NEGLABEL_NOUN_TEMPLATE : NEGLABEL_ADJ_TEMPLATE, e.word)]);
  const adjectives = entries.filter((e) => e.pos === "adj").map((e) => e.word);
  const conj = conjugatedLabels(adjectives);
  let a = 0;
  return entries.map((e) =>
    e.pos === "noun" ? CSP_NOUN_TEMPLATES.map((t) => fillTemplate(t, e.word)) : CSP_ADJ_WRAPPERS.map((t) => fillTemplate(t, conj[a++]!)),
  );
}

/** Embeds every candidate (normalise → mean → renormalise over its prompts), cached per model and prompt list. */
function candidateFeatures(model: ClipModel, prompts: readonly string[][], o: NegativeOptions): Promise<Matrix> {
  return promptBankFeatures(model, prompts, { cacheDir: o.cacheDir, folder: "negative-labels", ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
}

/**
 * Negative labels for `idFeatures` (the classes embedded with NegLabel's ID prompt "the nice {}"):
 * the user's list as given, or WordNet candidates mined by the 0.95-quantile rule, lowest 15% per
 * part of speech, then grouped (100 groups by default).
 */
export async function negativeLabels(model: ClipModel, idFeatures: ClassFeatures, o: NegativeOptions): Promise<NegativeLabels> {
  const groups = o.groups ?? NEGLABEL_DEFAULT_GROUPS;
  if (o.userLabels) {
    const entries = o.userLabels.map((word) => ({ word, pos: "noun" as const, lexFile: "user" }));
    const features = await candidateFeatures(model, candidatePrompts(entries, false), o);
    return { labels: [...o.userLabels], features, groups: negLabelGroups(entries.length, groups), source: "user" };
  }
  const conjugated = o.conjugated ?? false;
  const lexicon = await loadWordNetLexicon(conjugated ? { lexFiles: NEGLABEL_LEX_FILES, excludeLexFiles: CSP_EXCLUDED_LEX_FILES } : { lexFiles: NEGLABEL_LEX_FILES });
  const prompts = candidatePrompts(lexicon, conjugated);
  const features = await candidateFeatures(model, prompts, o);
  const fraction = o.fraction ?? NEGLABEL_DEFAULT_FRACTION;
  // Mining costs candidates × classes × dim multiply-adds: keep its result per (candidates, ID features, settings).
  const minedKey = createHash("sha256").update(Buffer.from(features.data.buffer, features.data.byteOffset, features.data.byteLength));
  minedKey.update(Buffer.from(idFeatures.matrix.data.buffer, idFeatures.matrix.data.byteOffset, idFeatures.matrix.data.byteLength));
  minedKey.update(JSON.stringify([fraction, conjugated]));
  const minedFile = path.join(o.cacheDir, "negative-labels", `mined-${minedKey.digest("hex").slice(0, 24)}.json`);
  const cachedMined = await readFile(minedFile, "utf8").then((t) => JSON.parse(t) as unknown).catch(() => undefined);
  const mined =
    Array.isArray(cachedMined) && cachedMined.every((i) => Number.isInteger(i) && i >= 0 && i < lexicon.length)
      ? (cachedMined as number[])
      : mineNegativeLabels(idFeatures.matrix, lexicon, features, { fraction, ...(conjugated ? { maxCosine: CSP_MAX_COSINE } : {}) });
  if (cachedMined === undefined) await writeCacheFile(minedFile, JSON.stringify(mined), (w) => model.warn(w));
  const adjectives = conjugated ? conjugatedLabels(lexicon.filter((e) => e.pos === "adj").map((e) => e.word)) : [];
  const adjIndex = new Map<number, number>();
  lexicon.forEach((e, i) => {
    if (e.pos === "adj") adjIndex.set(i, adjIndex.size);
  });
  const label = (i: number) => (conjugated && lexicon[i]!.pos === "adj" ? adjectives[adjIndex.get(i)!]! : lexicon[i]!.word);
  return {
    labels: mined.map(label),
    features: stackRows(mined.map((i) => row(features, i)), features.cols),
    groups: negLabelGroups(mined.length, groups),
    source: conjugated ? "wordnet-conjugated" : "wordnet",
  };
}
