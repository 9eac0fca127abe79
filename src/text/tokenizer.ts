import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { decodeHTML } from "entities";
import { ClipOodError, messageOf, shownValue } from "../errors.js";
import { readModelJson } from "../model/folder.js";

/** CLIP's context length (OpenAI `clip.tokenize`, MODEL-FOLDER.md); used when the config gives no usable one. */
export const DEFAULT_MAX_LENGTH = 77;

/**
 * HF writes `model_max_length: 1e30` (its "no limit" sentinel) into some configs; a CLIP text tower
 * never has anywhere near this many positions, so anything above it is treated as absent.
 */
const MAX_SENSIBLE_LENGTH = 4096;

/**
 * OpenAI's `basic_clean` + `whitespace_clean` (simple_tokenizer.py, METHODS.md §1.2) without ftfy:
 * HF's tokenizer.json lacks the double HTML-unescape, so "&amp;" would otherwise tokenize differently
 * from the ids the checkpoint was trained on. NFC stands in for ftfy on non-ASCII text.
 */
export function cleanPromptText(text: string): string {
  // entities' default (legacy) mode follows the HTML5 rules that Python's html.unescape implements,
  // including semicolon-less legacy entities such as "&amp".
  const unescaped = decodeHTML(decodeHTML(text.normalize("NFC")));
  return unescaped.replace(/\s+/g, " ").trim();
}

/**
 * SigLIP's text canonicalisation (SiglipTokenizer.canonicalize_text in HF transformers, after
 * big_vision): ASCII punctuation (Python's string.punctuation) removed, whitespace runs collapsed
 * to one space, ends trimmed; lowercased when the config says do_lower_case. Done here as well as by
 * whatever normalizer a tokenizer.json declares, so that a converted file lacking it still gives the
 * ids the model was trained on.
 */
export function canonicalizeSiglipText(text: string, lowercase: boolean): string {
  const cleaned = text.normalize("NFC").replace(/[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g, "").replace(/\s+/g, " ").trim();
  return lowercase ? cleaned.toLowerCase() : cleaned;
}

/** What differs between families' token layouts (family.ts). */
export interface TokenizerContract {
  /** CLIP puts a start token first; SigLIP has none. */
  startToken: boolean;
  /** CLIP's OpenAI cleaning, or SigLIP's canonicalisation. */
  cleaning: "clip" | "siglip";
  /** Default batch padding: to the longest prompt (CLIP) or to the context length (SigLIP). */
  padding: "longest" | "max";
}

export const CLIP_TOKENIZER: TokenizerContract = { startToken: true, cleaning: "clip", padding: "longest" };
export const SIGLIP_TOKENIZER: TokenizerContract = { startToken: false, cleaning: "siglip", padding: "max" };

export interface EncodedBatch {
  /** Row-major [batchSize, sequenceLength] token ids, padded with the tokenizer's pad id. */
  ids: BigInt64Array;
  /** 1 for real tokens (start and end included), 0 for padding; same layout as `ids`. */
  attentionMask: BigInt64Array;
  batchSize: number;
  /** Length of the longest prompt in the batch, not the context length: the text tower is causal. */
  sequenceLength: number;
  /** Indices of prompts that were cut to `maxLength`, so the caller can warn. */
  truncated: number[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Special tokens appear in configs either as plain strings or as serialised AddedToken objects. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (isRecord(value) && typeof value.content === "string") return value.content;
  return undefined;
}

/** The first element of a RobertaProcessing/BertProcessing `cls`/`sep` pair, e.g. ["<|endoftext|>", 49407]. */
function postProcessorToken(tokenizerJson: Record<string, unknown>, key: "cls" | "sep"): string | undefined {
  const pp = tokenizerJson.post_processor;
  if (!isRecord(pp)) return undefined;
  const pair = pp[key];
  return Array.isArray(pair) && typeof pair[0] === "string" ? pair[0] : undefined;
}

function shortText(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function resolveMaxLength(value: unknown): number {
  return typeof value === "number" && Number.isInteger(value) && value >= 2 && value <= MAX_SENSIBLE_LENGTH
    ? value
    : DEFAULT_MAX_LENGTH;
}

/**
 * Ids go into int64 tensors, and into int32 ones for exports that declare int32 input_ids; anything
 * that is not a whole number in int32's range would be wrapped or rejected there, far from its cause.
 */
const MAX_TOKEN_ID = 2 ** 31 - 1;

function isTokenId(id: unknown): id is number {
  return typeof id === "number" && Number.isInteger(id) && id >= 0 && id <= MAX_TOKEN_ID;
}

/**
 * The regular expressions a CLIP tokenizer.json holds (the HF conversion of OpenAI's tokenizer: the
 * whitespace normaliser and the word-splitting pre-tokenizer). The tokenizer library runs patterns
 * with JavaScript's backtracking engine, where a pattern like (a+)+b takes exponential time on a
 * few dozen letters: a tampered file could hang every prompt, so only these are run.
 */
const KNOWN_PATTERNS = new Set([
  "\\s+",
  "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
]);

/**
 * A pattern of one atom (a literal or escaped character, or a bracket class without nesting) and at
 * most one quantifier, such as SigLIP's normalizers' "[punctuation]" and " {2,}". With nothing to
 * backtrack into, each match attempt is linear in the text, so such a pattern cannot hang a prompt.
 */
const SIMPLE_PATTERN = /^(?:\\.|[^\\[\](){}|*+?.^$]|\[\^?\]?(?:\\.|[^\\\][])*\])(?:[*+?]|\{\d+(?:,\d*)?\})?$/u;

export function isSafePattern(pattern: string): boolean {
  return KNOWN_PATTERNS.has(pattern) || SIMPLE_PATTERN.test(pattern);
}

/** Every `{"Regex": …}` value in the file, at any depth (normalizers, pre-tokenizers, decoders). */
function regexPatterns(json: unknown): string[] {
  const found: string[] = [];
  const stack: unknown[] = [json];
  // Iterative: the file's nesting depth is the file's choice.
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) for (const x of v) stack.push(x);
    else if (isRecord(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (k === "Regex") found.push(typeof x === "string" ? x : shownValue(x));
        else stack.push(x);
      }
    }
  }
  return found;
}

/** Fixed text run through a freshly loaded tokenizer, so that a broken one fails at load, naming its file. */
const PROBE_TEXT = "a photo of a cat, 1 dog!";

function readJsonFile(dir: string, name: string): Promise<Record<string, unknown>> {
  return readModelJson(
    path.join(dir, name),
    `a CLIP model folder must contain ${name} (HF tokenizer files) as exported; download the complete model again, e.g. Xenova/clip-vit-base-patch32`,
  );
}

/**
 * CLIP's byte-level BPE tokenizer, loaded from a model folder's tokenizer.json and tokenizer_config.json.
 * Start, end and pad ids are read from those files, never assumed, so that generated test models with
 * small vocabularies work the same way as real checkpoints.
 */
export class ClipTokenizer {
  readonly maxLength: number;
  /** Undefined for families without a start token (SigLIP). */
  readonly bosId: number | undefined;
  readonly eosId: number;
  readonly padId: number;
  readonly contract: TokenizerContract;
  private readonly tokenizer: Tokenizer;
  /** tokenizer.json's path (or bare name), for messages. */
  private readonly file: string;
  private readonly lowercase: boolean;

  private constructor(
    tokenizer: Tokenizer,
    file: string,
    maxLength: number,
    bosId: number | undefined,
    eosId: number,
    padId: number,
    contract: TokenizerContract,
    lowercase: boolean,
  ) {
    this.tokenizer = tokenizer;
    this.file = file;
    this.maxLength = maxLength;
    this.bosId = bosId;
    this.eosId = eosId;
    this.padId = padId;
    this.contract = contract;
    this.lowercase = lowercase;
  }

  /** Special ids around every prompt: start and end (CLIP), or end only (SigLIP). */
  get specialCount(): number {
    return this.bosId === undefined ? 1 : 2;
  }

  static async fromFolder(dir: string, contract: TokenizerContract = CLIP_TOKENIZER): Promise<ClipTokenizer> {
    const tokenizerJson = await readJsonFile(dir, "tokenizer.json");
    const tokenizerConfig = await readJsonFile(dir, "tokenizer_config.json");
    return ClipTokenizer.fromJson(tokenizerJson, tokenizerConfig, dir, contract);
  }

  /** `source` names the folder (or whatever the JSON came from) in error messages. */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: unknown, source?: string, contract: TokenizerContract = CLIP_TOKENIZER): ClipTokenizer {
    const where = (name: string): string => (source === undefined ? name : path.join(source, name));
    if (!isRecord(tokenizerJson) || !isRecord(tokenizerJson.model)) {
      throw new ClipOodError("MODEL_FOLDER", `${where("tokenizer.json")} is not a Hugging Face tokenizer (no "model" object)`, {
        hint: "use the tokenizer.json of a CLIP export such as Xenova/clip-vit-base-patch32",
      });
    }
    if (!isRecord(tokenizerConfig)) {
      throw new ClipOodError("MODEL_FOLDER", `${where("tokenizer_config.json")} is not a JSON object`, {
        hint: "use the tokenizer_config.json of a CLIP export such as Xenova/clip-vit-base-patch32",
      });
    }

    const unknownPattern = regexPatterns(tokenizerJson).find((p) => !isSafePattern(p));
    if (unknownPattern !== undefined) {
      throw new ClipOodError("MODEL_FOLDER", `${where("tokenizer.json")} uses the pattern /${shortText(unknownPattern)}/, which is neither one of CLIP's tokenizer patterns nor a single repeated character class`, {
        hint: "clip-ood runs only CLIP's own split patterns and one-atom patterns such as SigLIP's (a regular expression from elsewhere can take unbounded time on a short prompt); use the tokenizer.json of a CLIP or SigLIP export",
      });
    }
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new ClipOodError("MODEL_FOLDER", `cannot load ${where("tokenizer.json")}: ${messageOf(e)}`, {
        hint: "the tokenizer files are damaged or not a CLIP byte-level BPE tokenizer; download them again",
        cause: e,
      });
    }

    // Configs name the tokens; the post-processor's cls/sep pair is the fallback for sparse configs.
    const bos = tokenContent(tokenizerConfig.bos_token) ?? postProcessorToken(tokenizerJson, "cls");
    const eos = tokenContent(tokenizerConfig.eos_token) ?? postProcessorToken(tokenizerJson, "sep");
    // OpenAI pads with 0, HF exports with <|endoftext|>; either is harmless behind the causal mask.
    const pad = tokenContent(tokenizerConfig.pad_token) ?? eos;
    const idOf = (role: string, token: string | undefined): number => {
      // The vocabulary is the file's: an id can be any JSON value there.
      const id: unknown = token === undefined ? undefined : tokenizer.token_to_id(token);
      if (!isTokenId(id)) {
        const what =
          token === undefined
            ? `names no ${role} token`
            : id === undefined
              ? `has no id for the ${role} token "${shortText(token)}"`
              : `maps the ${role} token "${shortText(token)}" to ${shownValue(id)}, not a token id`;
        throw new ClipOodError("MODEL_FOLDER", `the tokenizer in ${where("tokenizer.json")} ${what}`, {
          hint: `${where("tokenizer_config.json")} must set ${role}_token (CLIP: bos <|startoftext|>, eos and pad <|endoftext|>) to a token in tokenizer.json's vocabulary`,
        });
      }
      return id;
    };
    const clip = new ClipTokenizer(
      tokenizer,
      where("tokenizer.json"),
      resolveMaxLength(tokenizerConfig.model_max_length),
      contract.startToken ? idOf("bos", bos) : undefined,
      idOf("eos", eos),
      idOf("pad", pad),
      contract,
      tokenizerConfig.do_lower_case !== false,
    );
    // Normalizers, pre-tokenizers and models are built lazily enough that a damaged one may only fail
    // on its first text; better now, at load, than on a user's first prompt. One that drops the text
    // (an unknown split pattern matches nothing) would give every prompt the same embedding.
    if (clip.encode(PROBE_TEXT).ids.length <= clip.specialCount) {
      throw new ClipOodError("MODEL_FOLDER", `the tokenizer in ${where("tokenizer.json")} turns "${PROBE_TEXT}" into no tokens at all`, {
        hint: "its normalizer or pre_tokenizer discards the text; the file is damaged or not a CLIP tokenizer, download it again",
      });
    }
    return clip;
  }

  /**
   * `[bos, …tokens, eos]` of the cleaned text (SigLIP: `[…tokens, eos]`). Over `maxLength` ids it keeps
   * the first tokens that fit and puts eos last, as `clip.tokenize(truncate=True)` and HF truncation
   * do, so a CLIP text tower still pools at eos.
   */
  encode(text: string): { ids: number[]; truncated: boolean } {
    // Special tokens are added here rather than by the file's post-processor so that the layout holds
    // whatever post-processor an export declares.
    const cleaned = this.contract.cleaning === "siglip" ? canonicalizeSiglipText(text, this.lowercase) : cleanPromptText(text);
    const body = this.tokenize(cleaned);
    const room = this.maxLength - this.specialCount;
    const truncated = body.length > room;
    const kept = truncated ? body.slice(0, room) : body;
    return { ids: this.bosId === undefined ? [...kept, this.eosId] : [this.bosId, ...kept, this.eosId], truncated };
  }

  /** The ids of cleaned text, each checked: a damaged tokenizer.json must fail here, naming itself. */
  private tokenize(text: string): number[] {
    let ids: unknown[];
    try {
      ids = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    } catch (e) {
      throw new ClipOodError("MODEL_FOLDER", `the tokenizer in ${this.file} failed on "${shortText(text)}": ${messageOf(e)}`, {
        hint: "the tokenizer files are damaged or not a CLIP byte-level BPE tokenizer; download them again",
        cause: e,
      });
    }
    const bad = ids.findIndex((id) => !isTokenId(id));
    if (bad !== -1) {
      const id = ids[bad];
      throw new ClipOodError(
        "MODEL_FOLDER",
        `the tokenizer in ${this.file} gives ${id === undefined ? "no id" : `the id ${shownValue(id)}`} for part of "${shortText(text)}"`,
        {
          hint: "a CLIP tokenizer.json maps every byte-level piece to a whole-number id (and names an unk_token); download the file again",
        },
      );
    }
    return ids as number[];
  }

  /**
   * Token ids of a batch, padded to its longest prompt ("longest": CLIP's fast default, identical
   * embeddings because CLIP pools causally at the end token) or to the context length ("max", as
   * OpenAI's clip.tokenize does, and as SigLIP needs: it pools the last position, a pad token).
   * The default is the family's.
   */
  encodeBatch(texts: readonly string[], padding: "longest" | "max" = this.contract.padding): EncodedBatch {
    const encoded = texts.map((t) => this.encode(t));
    const batchSize = encoded.length;
    const sequenceLength = padding === "max" ? this.maxLength : encoded.reduce((m, e) => Math.max(m, e.ids.length), 0);
    const ids = new BigInt64Array(batchSize * sequenceLength).fill(BigInt(this.padId));
    const attentionMask = new BigInt64Array(batchSize * sequenceLength);
    const truncated: number[] = [];
    encoded.forEach((e, row) => {
      const offset = row * sequenceLength;
      e.ids.forEach((id, col) => {
        ids[offset + col] = BigInt(id);
        attentionMask[offset + col] = 1n;
      });
      if (e.truncated) truncated.push(row);
    });
    return { ids, attentionMask, batchSize, sequenceLength, truncated };
  }
}
