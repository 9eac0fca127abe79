/**
 * Prompts → unit-norm text embeddings: tokenise, run the text tower in batches (one per worker at a
 * time), and keep each prompt's embedding in the on-disk cache so a prompt is encoded once per model.
 */
import { ClipOodError } from "../errors.js";
import type { TensorValue } from "../engine/tensors.js";
import { matrix, meanOfNormalized, stackRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { declared, unsupported } from "../model/towers.js";
import type { Towers } from "../model/towers.js";
import { TextEmbeddingCache, textModelKey } from "./cache.js";
import { classPrompts } from "./classes.js";
import type { ClassSpec } from "./classes.js";
import type { ClipTokenizer } from "./tokenizer.js";

export interface ClassFeatures {
  labels: string[];
  /** The prompts averaged into each class. */
  prompts: string[][];
  /** K × D, unit rows: normalise → mean → renormalise over each class's prompts. */
  matrix: Matrix;
}

export interface TextEmbedderOptions {
  /** Prompts per inference call. */
  batchSize: number;
  /** Where the text-embedding cache lives; undefined turns the cache off. */
  cacheDir: string | undefined;
  warn: (message: string) => void;
}

export class TextEmbedder {
  /** Prompts run through the text graph so far (cache hits excluded). */
  promptsEncoded = 0;
  private cache: Promise<TextEmbeddingCache | undefined> | undefined;

  constructor(
    private readonly towers: Towers,
    readonly tokenizer: ClipTokenizer,
    private readonly options: TextEmbedderOptions,
  ) {}

  /** Embeds prompts exactly as given (no templates), L2-normalised, one row per prompt. */
  async embedTexts(
    texts: readonly string[],
    options: { cache?: boolean; onProgress?: (done: number, total: number) => void; padding?: "longest" | "max" } = {},
  ): Promise<Matrix> {
    // Large one-off vocabularies (NegLabel's lexicon) skip the per-prompt cache: it would balloon.
    const cache = options.cache === false ? undefined : await this.textCache();
    const missing = [...new Set(texts.filter((t) => !cache?.get(t)))];
    const fresh = new Map<string, Float32Array>();
    const chunks: string[][] = [];
    for (let start = 0; start < missing.length; start += this.options.batchSize) chunks.push(missing.slice(start, start + this.options.batchSize));
    let next = 0;
    const work = async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++]!;
        const rows = await this.run(chunk, options.padding);
        this.promptsEncoded += chunk.length;
        chunk.forEach((t, i) => fresh.set(t, rows[i]!));
        options.onProgress?.(fresh.size, missing.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.towers.workers, chunks.length) }, work));
    await cache?.putMany([...fresh].map(([prompt, embedding]) => ({ prompt, embedding })));
    if (texts.length === 0) return matrix(0, await this.towers.embeddingDim());
    return stackRows(texts.map((t) => fresh.get(t) ?? cache!.get(t)!));
  }

  /** Class text features: every class's prompts embedded and averaged (METHODS.md §1.3). */
  async classFeatures(classes: readonly ClassSpec[], templates: readonly string[], onProgress?: (done: number, total: number) => void): Promise<ClassFeatures> {
    const prompts = classes.map((c) => classPrompts(c, templates));
    const all = await this.embedTexts(prompts.flat(), onProgress ? { onProgress } : {});
    const rows: Float32Array[] = [];
    let offset = 0;
    for (const p of prompts) {
      rows.push(meanOfNormalized(matrix(p.length, all.cols, all.data.slice(offset * all.cols, (offset + p.length) * all.cols))));
      offset += p.length;
    }
    return { labels: classes.map((c) => c.label), prompts, matrix: stackRows(rows, all.cols) };
  }

  /** The padding prompts really get when `requested`: "max" is to the context length. */
  async padding(requested: "longest" | "max" = "longest"): Promise<"longest" | "max"> {
    const file = this.towers.file("text");
    const length = declared(await this.towers.describe("text"), "input", "input_ids", file).shape[1];
    const fixed = typeof length === "number" && length > 0 ? length : undefined;
    if (fixed !== undefined && fixed !== this.tokenizer.maxLength) {
      throw new ClipOodError("MODEL_GRAPH", `${file} takes exactly ${fixed} tokens per prompt, but the tokenizer's context length is ${this.tokenizer.maxLength}`, {
        hint: "the text graph and tokenizer_config.json's model_max_length come from different exports; download the model folder again",
      });
    }
    // SigLIP pools the last position, so only padding to the full context gives the trained embedding,
    // and a graph exported with a fixed sequence length (MobileCLIP's, whose text tower is not causal)
    // accepts nothing else: either wins over a caller's "longest".
    return this.tokenizer.contract.padding === "max" || fixed !== undefined ? "max" : requested;
  }

  private async run(texts: readonly string[], padding?: "longest" | "max"): Promise<Float32Array[]> {
    const info = await this.towers.describe("text");
    const file = this.towers.file("text");
    const batch = this.tokenizer.encodeBatch(texts, await this.padding(padding));
    for (const i of batch.truncated) {
      const text = texts[i]!;
      this.options.warn(`prompt cut to ${this.tokenizer.maxLength} tokens (the model's limit): "${text.length > 80 ? text.slice(0, 77) + "…" : text}"`);
    }
    const dims = [batch.batchSize, batch.sequenceLength];
    const feeds: Record<string, TensorValue> = {};
    for (const input of info.inputs) {
      const values = input.name === "input_ids" ? batch.ids : input.name === "attention_mask" ? batch.attentionMask : undefined;
      if (!values) throw unsupported(file, input);
      if (input.type === "int64") feeds[input.name] = { type: "int64", data: values, dims };
      else if (input.type === "int32") feeds[input.name] = { type: "int32", data: Int32Array.from(values, Number), dims };
      else throw unsupported(file, input);
    }
    return (await this.towers.embed("text", feeds)).rows;
  }

  private textCache(): Promise<TextEmbeddingCache | undefined> {
    const dir = this.options.cacheDir;
    if (dir === undefined) return Promise.resolve(undefined);
    const model = this.towers.model;
    return (this.cache ??= textModelKey(model.id, model.dtype, model.textModel).then((key) => TextEmbeddingCache.open(dir, key, this.options.warn)));
  }
}
