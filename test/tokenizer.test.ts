import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { bytesToUnicode } from "../scripts/test-model/tokenizer.js";
import { ClipTokenizer, cleanPromptText } from "../src/text/tokenizer.js";
import { rejectsWithCode, withTempDir } from "./support/assertions.js";
import { sharedDir, skipUnlessShared } from "./support/shared.js";

// ---------------------------------------------------------------------------------------------
// A tiny CLIP-structured tokenizer, mirroring the layout of the real clip-vit-base-patch32
// tokenizer.json (normalizer, Split + ByteLevel pre-tokenizer, BPE with "</w>", RobertaProcessing),
// so these tests run without ../shared and with special ids far from CLIP's 49406/49407.
// ---------------------------------------------------------------------------------------------

const MERGES = ["c a", "ca t</w>", "d o", "do g</w>", "o f</w>"];
const BOS = "<|startoftext|>";
const EOS = "<|endoftext|>";

function tinyVocab(): Record<string, number> {
  // The GPT-2/CLIP byte→unicode symbols (simple_tokenizer.py `bytes_to_unicode`), in CLIP's vocabulary order.
  const symbols = [...bytesToUnicode().values()];
  const tokens = [...symbols, ...symbols.map((s) => s + "</w>"), ...MERGES.map((m) => m.replace(" ", "")), BOS, EOS];
  return Object.fromEntries(tokens.map((t, i) => [t, i]));
}

const vocab = tinyVocab();
/** Ids looked up by hand in the vocabulary built above: the expected values of the tiny-tokenizer tests. */
function id(token: string): number {
  const v = vocab[token];
  assert.ok(v !== undefined, `test vocabulary lacks ${token}`);
  return v;
}

function tinyTokenizerJson(options: { postProcessor?: boolean } = {}): Record<string, unknown> {
  const special = (content: string, normalized: boolean) => ({
    id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized, special: true,
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(BOS, true), special(EOS, false)],
    normalizer: {
      type: "Sequence",
      normalizers: [{ type: "NFC" }, { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, { type: "Lowercase" }],
    },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        {
          type: "Split",
          pattern: { Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" },
          behavior: "Removed",
          invert: true,
        },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor:
      options.postProcessor === false
        ? null
        : { type: "RobertaProcessing", sep: [EOS, vocab[EOS]], cls: [BOS, vocab[BOS]], trim_offsets: false, add_prefix_space: false },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: EOS, continuing_subword_prefix: "", end_of_word_suffix: "</w>",
      fuse_unk: false, byte_fallback: false, vocab, merges: MERGES,
    },
  };
}

function tinyConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const added = (content: string) => ({ __type: "AddedToken", content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  return { bos_token: added(BOS), eos_token: added(EOS), pad_token: EOS, model_max_length: 77, tokenizer_class: "CLIPTokenizer", ...overrides };
}

function tiny(overrides: Record<string, unknown> = {}): ClipTokenizer {
  return ClipTokenizer.fromJson(tinyTokenizerJson(), tinyConfig(overrides));
}

// Expected strings are Python's html.unescape(html.unescape(s)) followed by re.sub(r"\s+", " ", s).strip(),
// computed with CPython 3 (OpenAI simple_tokenizer.py basic_clean/whitespace_clean minus ftfy).
test("cleanPromptText unescapes HTML twice, NFC-normalises and collapses whitespace", () => {
  assert.equal(cleanPromptText("&amp;amp;"), "&");
  assert.equal(cleanPromptText("&amp;amp;amp;"), "&amp;");
  assert.equal(cleanPromptText("&lt;b&gt;"), "<b>");
  assert.equal(cleanPromptText("&amp"), "&");
  assert.equal(cleanPromptText("&#39;"), "'");
  assert.equal(cleanPromptText("caf&eacute;"), "café");
  assert.equal(cleanPromptText("&#x1F431;"), "🐱");
  assert.equal(cleanPromptText("\t a \n b  \u00a0"), "a b");
  assert.equal(cleanPromptText("cafe\u0301"), "caf\u00e9");
  assert.equal(cleanPromptText(""), "");
});

test("special ids and the context length come from the tokenizer files", () => {
  const t = tiny();
  assert.equal(t.bosId, id(BOS));
  assert.equal(t.eosId, id(EOS));
  assert.equal(t.padId, id(EOS));
  assert.notEqual(t.bosId, 49406);
  assert.equal(t.maxLength, 77);
  assert.equal(tiny({ model_max_length: 9 }).maxLength, 9);
  // HF's "no limit" sentinel and absent values fall back to CLIP's 77.
  assert.equal(tiny({ model_max_length: 1e30 }).maxLength, 77);
  assert.equal(tiny({ model_max_length: undefined }).maxLength, 77);
  assert.equal(tiny({ model_max_length: "77" }).maxLength, 77);
  // Plain-string token names are as valid as serialised AddedTokens; pad may differ from eos.
  const plain = tiny({ bos_token: BOS, eos_token: EOS, pad_token: "!" });
  assert.equal(plain.bosId, id(BOS));
  assert.equal(plain.padId, id("!"));
});

test("a config without token names falls back to the post-processor's cls/sep", () => {
  const t = ClipTokenizer.fromJson(tinyTokenizerJson(), { model_max_length: 77 });
  assert.equal(t.bosId, id(BOS));
  assert.equal(t.eosId, id(EOS));
  assert.equal(t.padId, id(EOS));
});

test("encode applies BPE with </w>, cleaning and lowercasing, and wraps in start/end ids", () => {
  const t = tiny();
  assert.deepEqual(t.encode("a cat"), { ids: [id(BOS), id("a</w>"), id("cat</w>"), id(EOS)], truncated: false });
  // "cats": the merge "ca t</w>" cannot apply to "ca t s</w>".
  assert.deepEqual(t.encode("cats").ids, [id(BOS), id("ca"), id("t"), id("s</w>"), id(EOS)]);
  assert.deepEqual(t.encode("  A\tCAT \n of DOG ").ids, [id(BOS), id("a</w>"), id("cat</w>"), id("of</w>"), id("dog</w>"), id(EOS)]);
  // Without the double unescape this would tokenize "amp", ";" … (HF's tokenizer.json lacks it).
  assert.deepEqual(t.encode("&amp;amp; cat").ids, [id(BOS), id("&</w>"), id("cat</w>"), id(EOS)]);
  assert.deepEqual(t.encode("").ids, [id(BOS), id(EOS)]);
  // Works without a post-processor too: the start/end ids are not left to the file.
  const bare = ClipTokenizer.fromJson(tinyTokenizerJson({ postProcessor: false }), tinyConfig());
  assert.deepEqual(bare.encode("a cat").ids, [id(BOS), id("a</w>"), id("cat</w>"), id(EOS)]);
});

test("encode truncates to maxLength, keeping the first maxLength-1 ids and ending with eos", () => {
  const t = tiny({ model_max_length: 6 });
  const a = id("a</w>");
  // Exactly six ids fit.
  assert.deepEqual(t.encode("a a a a"), { ids: [id(BOS), a, a, a, a, id(EOS)], truncated: false });
  assert.deepEqual(t.encode("a a a a cat"), { ids: [id(BOS), a, a, a, a, id(EOS)], truncated: true });
  assert.deepEqual(t.encode("cat dog of a a a a"), {
    ids: [id(BOS), id("cat</w>"), id("dog</w>"), id("of</w>"), a, id(EOS)],
    truncated: true,
  });
});

test("encodeBatch pads to the longest prompt with the pad id and masks the padding", () => {
  const t = tiny({ model_max_length: 6, pad_token: "!" });
  const pad = BigInt(id("!"));
  const b = t.encodeBatch(["a cat", "dog", "a a a a a a a"]);
  assert.equal(b.batchSize, 3);
  assert.equal(b.sequenceLength, 6);
  const n = (s: string) => BigInt(id(s));
  assert.deepEqual([...b.ids], [
    n(BOS), n("a</w>"), n("cat</w>"), n(EOS), pad, pad,
    n(BOS), n("dog</w>"), n(EOS), pad, pad, pad,
    n(BOS), n("a</w>"), n("a</w>"), n("a</w>"), n("a</w>"), n(EOS),
  ]);
  assert.deepEqual([...b.attentionMask], [1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1].map(BigInt));
  assert.deepEqual(b.truncated, [2]);

  // Short batches are not padded to the context length.
  const short = tiny().encodeBatch(["a cat", "dog"]);
  assert.equal(short.sequenceLength, 4);
  assert.equal(short.ids.length, 8);
  assert.deepEqual(short.truncated, []);

  const empty = t.encodeBatch([]);
  assert.equal(empty.batchSize, 0);
  assert.equal(empty.ids.length, 0);
});

test("a tokenizer without the special tokens is a MODEL_FOLDER error", () => {
  assert.throws(() => tiny({ bos_token: "<|nope|>" }), rejectsWithCode("MODEL_FOLDER", "<|nope|>", "bos"));
  assert.throws(
    () => ClipTokenizer.fromJson(tinyTokenizerJson({ postProcessor: false }), {}, "/models/x"),
    rejectsWithCode("MODEL_FOLDER", "no bos token", path.join("/models/x", "tokenizer.json")),
  );
  assert.throws(() => ClipTokenizer.fromJson({}, tinyConfig()), rejectsWithCode("MODEL_FOLDER", "tokenizer.json"));
  assert.throws(() => ClipTokenizer.fromJson(tinyTokenizerJson(), [1]), rejectsWithCode("MODEL_FOLDER", "tokenizer_config.json"));
});

test("fromFolder reads the two files and names the one that is missing or broken", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(ClipTokenizer.fromFolder(dir), rejectsWithCode("MODEL_FOLDER", path.join(dir, "tokenizer.json")));
    await writeFile(path.join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson()));
    await assert.rejects(ClipTokenizer.fromFolder(dir), rejectsWithCode("MODEL_FOLDER", path.join(dir, "tokenizer_config.json")));
    await writeFile(path.join(dir, "tokenizer_config.json"), "{ not json");
    await assert.rejects(ClipTokenizer.fromFolder(dir), rejectsWithCode("MODEL_FOLDER", "tokenizer_config.json", "not valid JSON"));
    await writeFile(path.join(dir, "tokenizer_config.json"), JSON.stringify(tinyConfig({ model_max_length: 12 })));
    const t = await ClipTokenizer.fromFolder(dir);
    assert.equal(t.maxLength, 12);
    assert.deepEqual(t.encode("a dog").ids, [id(BOS), id("a</w>"), id("dog</w>"), id(EOS)]);
    await writeFile(path.join(dir, "tokenizer.json"), JSON.stringify({ version: "1.0" }));
    await assert.rejects(ClipTokenizer.fromFolder(dir), rejectsWithCode("MODEL_FOLDER", "tokenizer.json", '"model"'));
  }, "clip-ood-tokenizer-");
});

// ---------------------------------------------------------------------------------------------
// The real CLIP ViT-B/32 tokenizer files from ../shared.
// ---------------------------------------------------------------------------------------------

const realDir = sharedDir ? path.join(sharedDir, "clip-vit-base-patch32") : "";

test("the real CLIP tokenizer reproduces every reference tokenization", { skip: skipUnlessShared }, async () => {
  // Reference ids: ../shared/reference/tokenizer-cases.jsonl, from an independent implementation of
  // OpenAI's simple_tokenizer (MODEL-FOLDER.md).
  const lines = (await readFile(path.join(sharedDir!, "reference", "tokenizer-cases.jsonl"), "utf8")).split("\n").filter((l) => l.trim() !== "");
  assert.ok(lines.length >= 20, "lines.length >= 20");
  const t = await ClipTokenizer.fromFolder(realDir);
  assert.equal(t.bosId, 49406);
  assert.equal(t.eosId, 49407);
  assert.equal(t.padId, 49407);
  assert.equal(t.maxLength, 77);
  for (const line of lines) {
    const c = JSON.parse(line) as { text: string; ids: number[] };
    assert.deepEqual(t.encode(c.text).ids, c.ids, `tokenization of ${JSON.stringify(c.text)}`);
  }
});

test("the real CLIP tokenizer truncates long prompts like clip.tokenize(truncate=True)", { skip: skipUnlessShared }, async () => {
  const t = await ClipTokenizer.fromFolder(realDir);
  const text = "a photo of a cat on a mat ".repeat(20);
  // The untruncated ids come straight from @huggingface/tokenizers (it never truncates on its own).
  const raw = new Tokenizer(
    JSON.parse(await readFile(path.join(realDir, "tokenizer.json"), "utf8")) as object,
    JSON.parse(await readFile(path.join(realDir, "tokenizer_config.json"), "utf8")) as object,
  ).encode(text).ids;
  assert.ok(raw.length > 77, "raw.length > 77");
  const { ids, truncated } = t.encode(text);
  assert.equal(truncated, true);
  assert.equal(ids.length, 77);
  assert.deepEqual(ids.slice(0, 76), raw.slice(0, 76));
  assert.equal(ids[76], 49407);

  const batch = t.encodeBatch(["a fluffy cat", text]);
  assert.equal(batch.sequenceLength, 77);
  assert.deepEqual(batch.truncated, [1]);
});

test("the real CLIP tokenizer pads a batch to its longest prompt with <|endoftext|>", { skip: skipUnlessShared }, async () => {
  const t = await ClipTokenizer.fromFolder(realDir);
  // Ids from ../shared/reference/tokenizer-cases.jsonl.
  const b = t.encodeBatch(["a photo of a cat.", "a fluffy cat"]);
  assert.equal(b.batchSize, 2);
  assert.equal(b.sequenceLength, 8);
  assert.deepEqual([...b.ids], [49406, 320, 1125, 539, 320, 2368, 269, 49407, 49406, 320, 17054, 2368, 49407, 49407, 49407, 49407].map(BigInt));
  assert.deepEqual([...b.attentionMask], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0].map(BigInt));
  assert.deepEqual(b.truncated, []);
});
