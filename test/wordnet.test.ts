import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ClipOodError } from "../src/errors.js";
import { CSP_EXCLUDED_LEX_FILES } from "../src/ood/zero-shot/neglabel.js";
import {
  buildLexicon,
  cleanWordNetWord,
  loadWordNetLexicon,
  NEGLABEL_LEX_FILES,
  parseWordNetData,
  wordNetDictDir,
  type LexiconEntry,
} from "../src/ood/zero-shot/wordnet.js";

const isCode = (code: string) => (e: unknown) => e instanceof ClipOodError && e.code === code;

const HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n";

test("parseWordNetData reads lexicographer file and words, skipping the licence header", () => {
  const text =
    HEADER +
    "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which exists\n" +
    "00002312 00 a 02 abaxial(a) 0 Big_Deal 4 002 ;c 06047178 n 0000 | facing away\n" +
    "00003000 44 s 0c w0 0 w1 0 w2 0 w3 0 w4 0 w5 0 w6 0 w7 0 w8 0 w9 0 w10 0 w11 0 000 | twelve words\n";
  const synsets = parseWordNetData(text, "data.test");
  assert.deepEqual(synsets[0], { lexFile: "noun.Tops", words: ["entity"] });
  assert.deepEqual(synsets[1], { lexFile: "adj.all", words: ["abaxial", "big deal"] });
  assert.equal(synsets[2]!.lexFile, "adj.ppl");
  assert.equal(synsets[2]!.words.length, 12); // w_cnt is hexadecimal
  assert.equal(cleanWordNetWord("Rio_de_Janeiro"), "rio de janeiro");
  assert.equal(cleanWordNetWord("galore(ip)"), "galore");
  assert.throws(() => parseWordNetData("00001740 02 r 01 quickly 0 000 | adverb file\n", "data.adv"), isCode("INPUT"));
  assert.throws(() => parseWordNetData("garbage\n", "data.noun"), (e: unknown) => isCode("INPUT")(e) && /data\.noun:1/.test((e as Error).message));
});

test("buildLexicon dedups across files in sorted file order, whatever the order asked for", () => {
  const synsets = [
    { lexFile: "noun.act", words: ["cold", "chill"] },
    { lexFile: "noun.Tops", words: ["thing"] },
    { lexFile: "noun.act", words: ["thing"] },
    { lexFile: "adj.all", words: ["cold", "frigid"] },
    { lexFile: "adj.all", words: ["cold"] },
    { lexFile: "noun.person", words: ["carpenter"] },
  ];
  const want: LexiconEntry[] = [
    { word: "cold", pos: "adj", lexFile: "adj.all" }, // adj.* sorts before noun.*: the adjective wins
    { word: "thing", pos: "noun", lexFile: "noun.Tops" }, // "noun.Tops" < "noun.act" in code-unit order
    { word: "carpenter", pos: "noun", lexFile: "noun.person" },
  ];
  const files = ["noun.person", "noun.act", "adj.all", "noun.Tops"];
  assert.deepEqual(buildLexicon(synsets, { lexFiles: files }), want);
  assert.deepEqual(buildLexicon(synsets, { lexFiles: [...files].reverse() }), want);
  assert.deepEqual(
    buildLexicon(synsets, { lexFiles: files, lemmas: "all" }).map((e) => e.word),
    ["cold", "frigid", "thing", "chill", "carpenter"],
  );
  assert.deepEqual(
    buildLexicon(synsets, { lexFiles: files, excludeLexFiles: ["noun.person", "adj.all"] }).map((e) => `${e.word}:${e.pos}`),
    ["thing:noun", "cold:noun"],
  );
  assert.throws(() => buildLexicon(synsets, { excludeLexFiles: ["noun.persons"] }), isCode("USAGE"));
});

test("NegLabel's 27 files: 24 noun files (no noun.animal, noun.food) and 3 adjective files", () => {
  assert.equal(NEGLABEL_LEX_FILES.length, 27);
  assert.equal(NEGLABEL_LEX_FILES.filter((f) => f.startsWith("noun.")).length, 24);
  assert.deepEqual(NEGLABEL_LEX_FILES.filter((f) => f.startsWith("adj.")), ["adj.all", "adj.pert", "adj.ppl"]);
  assert.ok(!NEGLABEL_LEX_FILES.includes("noun.animal") && !NEGLABEL_LEX_FILES.includes("noun.food"));
});

test("loadWordNetLexicon reads a dict folder and fails clearly where files are missing", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "clip-ood-wordnet-"));
  try {
    await assert.rejects(loadWordNetLexicon({ dictDir: dir }), (e: unknown) => isCode("INPUT")(e) && /data\.(noun|adj)/.test((e as Error).message));
    await writeFile(path.join(dir, "data.noun"), HEADER + "00001740 05 n 01 dog 0 000 | animal\n00001741 06 n 02 Cold_Frame 0 x 0 000 | box\n00001742 06 n 01 green 0 000 | colour\n");
    await writeFile(path.join(dir, "data.adj"), HEADER + "00002312 00 a 01 green(a) 0 000 | colour\n");
    assert.deepEqual(await loadWordNetLexicon({ dictDir: dir }), [
      { word: "green", pos: "adj", lexFile: "adj.all" },
      { word: "cold frame", pos: "noun", lexFile: "noun.artifact" },
    ]);
    // Nouns only: data.adj is not needed.
    await rm(path.join(dir, "data.adj"));
    assert.equal((await loadWordNetLexicon({ dictDir: dir, lexFiles: ["noun.animal"] }))[0]!.word, "dog");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the installed WordNet 3.1 gives about METHODS.md's lexicon", async (t) => {
  assert.ok(existsSync(path.join(wordNetDictDir(), "data.noun")));
  const lexicon = await loadWordNetLexicon();
  const nouns = lexicon.filter((e) => e.pos === "noun").length;
  const adjs = lexicon.length - nouns;
  const uniqueNouns = new Set((await loadWordNetLexicon({ lexFiles: NEGLABEL_LEX_FILES.filter((f) => f.startsWith("noun.")) })).map((e) => e.word)).size;
  t.diagnostic(
    `WordNet 3.1, NegLabel files: ${lexicon.length} strings = ${nouns} nouns + ${adjs} adjectives (sorted-order dedup); ` +
      `${uniqueNouns} unique nouns before cross-type dedup. METHODS.md (repo txtfiles, WordNet 3.0): 70,000 = 58,546 unique nouns + 13,091 adjectives − 1,637 shared.`,
  );
  // Exact counts from an independent Python parse of the same data.noun / data.adj (first word of each
  // synset, lowercased, underscores → spaces, (a)/(p)/(ip) dropped, files in sorted order).
  assert.equal(nouns, 56838);
  assert.equal(adjs, 14021);
  assert.equal(uniqueNouns, 58569);
  // Within 0.1% of the reference's unique nouns; adjectives differ by 7% (see wordnet.ts).
  assert.ok(Math.abs(uniqueNouns - 58546) / 58546 < 0.001);
  assert.ok(Math.abs(adjs - 13091) / 13091 < 0.08);

  const words = new Set<string>();
  for (const e of lexicon) {
    assert.ok(!words.has(e.word), `duplicate ${e.word}`);
    words.add(e.word);
    assert.ok(!/[_A-Z]|\((a|p|ip)\)$/.test(e.word), e.word);
  }
  const byWord = new Map(lexicon.map((e) => [e.word, e]));
  // "green" and "cold" are adjectives and nouns in WordNet: sorted order makes them adjectives.
  assert.equal(byWord.get("green")?.pos, "adj");
  assert.equal(byWord.get("cold")?.lexFile, "adj.all");
  assert.equal(byWord.get("entity")?.lexFile, "noun.Tops");
  assert.equal(byWord.get("carpenter")?.lexFile, "noun.person");
  assert.equal(byWord.get("rio de janeiro")?.lexFile, "noun.location");
  assert.equal(byWord.get("dachshund"), undefined); // noun.animal is not a NegLabel file
  assert.deepEqual(await loadWordNetLexicon(), lexicon);

  const csp = await loadWordNetLexicon({ excludeLexFiles: CSP_EXCLUDED_LEX_FILES });
  const cspNouns = csp.filter((e) => e.pos === "noun").length;
  t.diagnostic(`CSP files: ${csp.length} strings = ${cspNouns} nouns + ${csp.length - cspNouns} adjectives`);
  assert.equal(cspNouns, 46505); // same independent Python parse
  assert.equal(csp.length - cspNouns, 11062);
  assert.ok(!csp.some((e) => e.word === "carpenter" || CSP_EXCLUDED_LEX_FILES.includes(e.lexFile)));
});
