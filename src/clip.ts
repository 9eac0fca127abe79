/**
 * A loaded CLIP model: tokenizer, preprocessing config and both tower graphs, run in worker threads.
 * Everything here returns L2-normalised embeddings; scoring lives in zeroshot.ts.
 */
import { ClipOodError, isClipOodError, messageOf } from "./errors.js";
import { InferencePool } from "./engine/pool.js";
import type { Device, GraphInfo, TensorValue, ValueInfo } from "./engine/tensors.js";
import { DEFAULT_MAX_PIXELS, preprocessImage } from "./image/preprocess.js";
import { fromFloat16Bits, toFloat16Bits } from "./maths/float16.js";
import { matrix, meanOfNormalized, normalizeRows, stackRows } from "./maths/vectors.js";
import type { Matrix } from "./maths/vectors.js";
import type { Scoring } from "./maths/scores.js";
import { familyScoring, TEXT_CONTRACTS } from "./model/family.js";
import { DEFAULT_DTYPE } from "./model/folder.js";
import type { Dtype } from "./model/folder.js";
import { DEFAULT_MODEL_ID, defaultCacheDir } from "./model/hub.js";
import type { DownloadProgress } from "./model/hub.js";
import { resolveModel } from "./model/resolve.js";
import type { ResolvedModel } from "./model/resolve.js";
import { TextEmbeddingCache, textModelKey } from "./text/cache.js";
import { classPrompts } from "./text/classes.js";
import type { ClassSpec } from "./text/classes.js";
import { CLIP_TOKENIZER, ClipTokenizer, SIGLIP_TOKENIZER } from "./text/tokenizer.js";

export interface ClipOptions {
  /** A local model folder or a Hub id (default Xenova/clip-vit-base-patch32). */
  model?: string;
  dtype?: Dtype;
  /** Where Hub downloads and the text-embedding cache live (default ~/.cache/clip-ood). */
  cacheDir?: string;
  hubUrl?: string;
  offline?: boolean;
  workers?: number;
  threads?: number;
  /** Images or prompts per inference call (default 16). */
  batchSize?: number;
  /** Apply EXIF orientation (default true); false matches plain PIL loading. */
  exifRotate?: boolean;
  /** Where graphs run (default cpu). cuda falls back to the CPU, with a warning, where onnxruntime has no CUDA provider. */
  device?: Device;
  maxPixels?: number;
  /** Cache text embeddings on disk (default true). */
  textCache?: boolean;
  onDownloadProgress?: (p: DownloadProgress) => void;
  /** Non-fatal notices, e.g. a prompt cut at 77 tokens. */
  onWarning?: (message: string) => void;
  /**
   * SigLIP only: the logit scale (as used, exp of the stored logit_scale) and bias, overriding what
   * the folder's combined graph holds (family.ts).
   */
  logitScale?: number;
  logitBias?: number;
}

/** An image to embed: a file path, or bytes already in memory (an upload) with the name results carry. */
export type ImageSource = string | { name: string; data: Buffer };

function sourceName(s: ImageSource): string {
  return typeof s === "string" ? s : s.name;
}

export interface ImageEmbeddingResult {
  input: string;
  /** L2-normalised, or null when the image could not be used (see error). */
  embedding: Float32Array | null;
  error: ClipOodError | null;
  /** With `{ patches: true }`: the graph's per-token output for this image (see PatchTokens). */
  patches?: PatchTokens;
}

/**
 * Per-token vision features for local (GL-MCM) scoring: `local_embeds` [P, D] where the export
 * provides it (already projected), else `last_hidden_state` [1+P, W] (class token first, before the
 * final layernorm).
 */
export interface PatchTokens {
  kind: "local_embeds" | "last_hidden_state";
  tokens: number;
  width: number;
  data: Float32Array;
}

export interface ClassFeatures {
  labels: string[];
  /** The prompts averaged into each class. */
  prompts: string[][];
  /** K × D, unit rows: normalise → mean → renormalise over each class's prompts. */
  matrix: Matrix;
}

/** Measured (docs/PERFORMANCE.md, throughput): 16 beats 32 end to end on ViT-B/32, and smaller batches start sooner. */
export const DEFAULT_BATCH_SIZE = 16;

export class ClipModel {
  private textInfo: Promise<GraphInfo> | undefined;
  private visionInfo: Promise<GraphInfo> | undefined;
  private cache: Promise<TextEmbeddingCache | undefined> | undefined;
  /** Prompts run through the text graph so far (cache hits excluded). */
  promptsEncoded = 0;
  private warnedFallback = false;
  private scoringRule: Promise<Scoring> | undefined;

  private constructor(
    readonly model: ResolvedModel,
    readonly tokenizer: ClipTokenizer,
    private readonly pool: InferencePool,
    private readonly options: ClipOptions & { batchSize: number; cacheDir: string },
  ) {}

  static async load(options: ClipOptions = {}): Promise<ClipModel> {
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ClipOodError("USAGE", `--batch-size must be a positive integer, got ${batchSize}`, { hint: "e.g. --batch-size 16" });
    }
    const cacheDir = options.cacheDir ?? defaultCacheDir();
    const model = await resolveModel(options.model ?? DEFAULT_MODEL_ID, {
      dtype: options.dtype ?? DEFAULT_DTYPE,
      cacheDir,
      ...(options.hubUrl === undefined ? {} : { hubUrl: options.hubUrl }),
      ...(options.offline === undefined ? {} : { offline: options.offline }),
      ...(options.onDownloadProgress === undefined ? {} : { onDownloadProgress: options.onDownloadProgress }),
    });
    const tokenizer = await ClipTokenizer.fromFolder(model.dir, model.family === "siglip" ? SIGLIP_TOKENIZER : CLIP_TOKENIZER);
    const pool = new InferencePool({
      ...(options.device === undefined ? {} : { device: options.device }),
      ...(options.workers === undefined ? {} : { workers: options.workers }),
      ...(options.threads === undefined ? {} : { threads: options.threads }),
    });
    return new ClipModel(model, tokenizer, pool, { ...options, batchSize, cacheDir });
  }

  get id(): string {
    return this.model.id;
  }

  /**
   * How this model's family turns cosines into probabilities: CLIP's softmax(100·cos), or SigLIP's
   * σ(scale·cos + bias) with the learned values read from the folder (or given as options). Read on
   * first use: embedding never needs them, so a towers-only SigLIP folder still embeds.
   */
  scoring(): Promise<Scoring> {
    return (this.scoringRule ??= familyScoring(this.model.family, this.model.dir, this.model.dtype, {
      ...(this.options.logitScale === undefined ? {} : { logitScale: this.options.logitScale }),
      ...(this.options.logitBias === undefined ? {} : { logitBias: this.options.logitBias }),
    }));
  }

  /** Whether images are turned upright by their EXIF orientation. */
  get exifRotate(): boolean {
    return this.options.exifRotate ?? true;
  }

  /** Where downloads and caches of this model's derived data live. */
  get cacheDir(): string {
    return this.options.cacheDir;
  }

  /** Reports a problem that does not stop the work (a cache that cannot be written) through the `onWarning` option. */
  warn(message: string): void {
    this.options.onWarning?.(message);
  }

  /** Embedding dimension, read from the vision graph's declared output (or, if symbolic, config.json). */
  async embeddingDim(): Promise<number> {
    const info = await this.describe("vision");
    const d = declared(info, "output", TEXT_CONTRACTS[this.model.family].visionOutput, this.model.visionModel).shape[1];
    if (typeof d === "number") return d;
    if (this.model.config.projectionDim !== undefined) return this.model.config.projectionDim;
    throw new ClipOodError("MODEL_GRAPH", `${this.model.visionModel}: image_embeds has a symbolic width and config.json has no projection_dim`, {
      hint: "add projection_dim to config.json",
    });
  }

  /** Names of the vision graph's outputs (e.g. whether it has local_embeds). */
  async visionOutputs(): Promise<string[]> {
    return (await this.describe("vision")).outputs.map((o) => o.name);
  }

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
        const rows = await this.runText(chunk, options.padding);
        this.promptsEncoded += chunk.length;
        chunk.forEach((t, i) => fresh.set(t, rows[i]!));
        options.onProgress?.(fresh.size, missing.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.pool.workers, chunks.length) }, work));
    await cache?.putMany([...fresh].map(([prompt, embedding]) => ({ prompt, embedding })));
    if (texts.length === 0) return matrix(0, await this.embeddingDim());
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

  /**
   * Embeds images in batches, yielding one result per input in input order. One batch per worker is
   * in flight, plus one being decoded, so decoding overlaps inference. An image that cannot be read
   * yields an error result and the rest go on.
   */
  async *embedImages(
    inputs: readonly ImageSource[],
    onProgress?: (done: number, total: number) => void,
    options: { patches?: boolean } = {},
  ): AsyncGenerator<ImageEmbeddingResult> {
    const size = this.options.batchSize;
    const batches: ImageSource[][] = [];
    for (let i = 0; i < inputs.length; i += size) batches.push(inputs.slice(i, i + size));
    const inflight: Promise<ImageEmbeddingResult[]>[] = [];
    let next = 0;
    const refill = () => {
      while (next < batches.length && inflight.length <= this.pool.workers) {
        const p = this.embedBatch(batches[next++]!, options.patches ?? false);
        p.catch(() => {}); // awaited in order below; this only keeps a later batch's failure from being "unhandled" meanwhile
        inflight.push(p);
      }
    };
    refill();
    let done = 0;
    while (inflight.length > 0) {
      const results = await inflight.shift()!;
      refill();
      yield* results;
      done += results.length;
      onProgress?.(done, inputs.length);
    }
  }

  private async embedBatch(sources: readonly ImageSource[], patches: boolean): Promise<ImageEmbeddingResult[]> {
    const prepared = await this.prepare(sources);
    const out = prepared.ok.length > 0 ? await this.runVision(prepared.ok.map((o) => o.tensor), patches) : { rows: [], patches: [] };
    const byIndex = new Map(prepared.ok.map((o, i) => [o.index, i]));
    return sources.map((source, i) => {
      const j = byIndex.get(i);
      const r: ImageEmbeddingResult = { input: sourceName(source), embedding: j === undefined ? null : out.rows[j]!, error: prepared.errors.get(i) ?? null };
      if (j !== undefined && out.patches[j]) r.patches = out.patches[j];
      return r;
    });
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private async prepare(sources: readonly ImageSource[]) {
    const cfg = this.model.preprocess;
    const opts = { exifRotate: this.options.exifRotate ?? true, maxPixels: this.options.maxPixels ?? DEFAULT_MAX_PIXELS };
    const settled = await Promise.allSettled(sources.map((s) => preprocessImage(typeof s === "string" ? s : s.data, cfg, opts, sourceName(s))));
    const ok: { index: number; tensor: Float32Array }[] = [];
    const errors = new Map<number, ClipOodError>();
    settled.forEach((s, index) => {
      if (s.status === "fulfilled") ok.push({ index, tensor: s.value });
      else errors.set(index, isClipOodError(s.reason) ? s.reason : new ClipOodError("IMAGE", `${sourceName(sources[index]!)}: ${messageOf(s.reason)}`));
    });
    return { ok, errors };
  }

  private async runVision(tensors: readonly Float32Array[], patches: boolean): Promise<{ rows: Float32Array[]; patches: PatchTokens[] }> {
    const info = await this.describe("vision");
    const file = this.model.visionModel;
    const input = declared(info, "input", "pixel_values", file);
    const { cropHeight: h, cropWidth: w } = this.model.preprocess;
    const pixels = new Float32Array(tensors.length * 3 * h * w);
    tensors.forEach((t, i) => pixels.set(t, i * t.length));
    const dims = [tensors.length, 3, h, w];
    const feed: TensorValue = input.type === "float16" ? { type: "float16", data: toFloat16Bits(pixels), dims } : { type: "float32", data: pixels, dims };
    if (input.type !== "float16" && input.type !== "float32") throw unsupported(file, input);
    const output = TEXT_CONTRACTS[this.model.family].visionOutput;
    if (!patches) return { rows: await this.runEmbeddings(file, info, { pixel_values: feed }, output), patches: [] };
    if (this.model.family !== "clip") {
      throw new ClipOodError("USAGE", `${file}: patch tokens are only read from CLIP exports`, {
        hint: "local (GL-MCM) features need CLIP's class token, post-layernorm and projection; SigLIP pools patches with an attention head instead, so glmcm does not apply",
      });
    }
    const name = (["local_embeds", "last_hidden_state"] as const).find((n) => info.outputs.some((o) => o.name === n));
    if (!name) {
      throw new ClipOodError("MODEL_GRAPH", `${file} has no patch tokens: it declares neither local_embeds nor last_hidden_state`, {
        hint: "local (GL-MCM) scores need a vision export that outputs last_hidden_state, as the Hugging Face exports do",
      });
    }
    const extras: Record<string, TensorValue> = {};
    const rows = await this.runEmbeddings(file, info, { pixel_values: feed }, output, [name], extras);
    const t = extras[name]!;
    const data = t.type === "float16" ? fromFloat16Bits(t.data as Uint16Array) : (t.data as Float32Array);
    const [b, tokens, width] = t.dims as [number, number, number];
    if (t.dims.length !== 3 || b !== rows.length) {
      throw new ClipOodError("MODEL_GRAPH", `${file}: ${name} has shape [${t.dims.join(", ")}], expected [batch, tokens, width]`, {
        hint: "this graph does not follow the CLIP export contract (MODEL-FOLDER.md)",
      });
    }
    const per = tokens * width;
    return { rows, patches: rows.map((_, i) => ({ kind: name, tokens, width, data: data.slice(i * per, (i + 1) * per) })) };
  }

  /**
   * The padding prompts really get when `requested`: "max" is to the context length
   * (`tokenizer.maxLength`). Throughput figures need it to say what they timed.
   */
  async textPadding(requested: "longest" | "max" = "longest"): Promise<"longest" | "max"> {
    const info = await this.describe("text");
    const file = this.model.textModel;
    const length = declared(info, "input", "input_ids", file).shape[1];
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

  private async runText(texts: readonly string[], padding?: "longest" | "max"): Promise<Float32Array[]> {
    const info = await this.describe("text");
    const file = this.model.textModel;
    const batch = this.tokenizer.encodeBatch(texts, await this.textPadding(padding));
    for (const i of batch.truncated) {
      const text = texts[i]!;
      this.warn(`prompt cut to ${this.tokenizer.maxLength} tokens (the model's limit): "${text.length > 80 ? text.slice(0, 77) + "…" : text}"`);
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
    return this.runEmbeddings(file, info, feeds, TEXT_CONTRACTS[this.model.family].textOutput);
  }

  /** Runs a tower for its embeddings output `name` (unit rows); `extraOutputs` are copied into `extras` as they come. */
  private async runEmbeddings(
    file: string,
    info: GraphInfo,
    feeds: Record<string, TensorValue>,
    name: string,
    extraOutputs: string[] = [],
    extras: Record<string, TensorValue> = {},
  ): Promise<Float32Array[]> {
    declared(info, "output", name, file);
    const outputs = await this.pool.run(file, feeds, [name, ...extraOutputs]);
    for (const x of extraOutputs) extras[x] = outputs[x]!;
    const result = outputs[name]!;
    const data = result.type === "float16" ? fromFloat16Bits(result.data as Uint16Array) : (result.data as Float32Array);
    const [rows, cols] = result.dims;
    if (result.dims.length !== 2 || rows === undefined || cols === undefined || data.length !== rows * cols) {
      throw new ClipOodError("MODEL_GRAPH", `${file}: ${name} has shape [${result.dims.join(", ")}], expected [batch, dim]`, {
        hint: "this graph does not follow the CLIP export contract (MODEL-FOLDER.md)",
      });
    }
    const m = normalizeRows(matrix(rows, cols, Float32Array.from(data)));
    return Array.from({ length: rows }, (_, i) => m.data.slice(i * cols, (i + 1) * cols));
  }

  private describe(tower: "text" | "vision"): Promise<GraphInfo> {
    const file = tower === "text" ? this.model.textModel : this.model.visionModel;
    const info = tower === "text" ? (this.textInfo ??= this.pool.describe(file)) : (this.visionInfo ??= this.pool.describe(file));
    return info.then((i) => {
      if (i.fallback && !this.warnedFallback) {
        this.warnedFallback = true;
        this.options.onWarning?.(
          `--device cuda: onnxruntime's CUDA provider is not available (${i.fallback}); running on the CPU. ` +
            "To use an NVIDIA GPU, run `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` (it downloads the CUDA provider; CUDA 12 and cuDNN 9 must be installed).",
        );
      }
      return i;
    });
  }

  private textCache(): Promise<TextEmbeddingCache | undefined> {
    if (this.options.textCache === false) return Promise.resolve(undefined);
    return (this.cache ??= textModelKey(this.model.id, this.model.dtype, this.model.textModel).then((key) =>
      TextEmbeddingCache.open(this.options.cacheDir, key, (m) => this.warn(m)),
    ));
  }
}

const GRAPH_HINTS = {
  input: "clip-ood needs the Hugging Face CLIP tower exports: text_model (input_ids) and vision_model (pixel_values)",
  output: "use the projection exports (CLIPTextModelWithProjection / CLIPVisionModelWithProjection), which output text_embeds and image_embeds; SigLIP towers output pooler_output",
};

/** The declared input or output `name`, or an error listing what the graph declares instead. */
function declared(info: GraphInfo, kind: "input" | "output", name: string, file: string): ValueInfo {
  const values = kind === "input" ? info.inputs : info.outputs;
  const v = values.find((x) => x.name === name);
  if (!v) {
    throw new ClipOodError("MODEL_GRAPH", `${file} has no ${kind} "${name}" (it declares ${values.map((x) => x.name).join(", ") || "none"})`, {
      hint: GRAPH_HINTS[kind],
    });
  }
  return v;
}

function unsupported(file: string, input: ValueInfo): ClipOodError {
  return new ClipOodError("MODEL_GRAPH", `${file} declares input "${input.name}" of type ${input.type}, which clip-ood cannot feed`, {
    hint: "CLIP text graphs take input_ids (and optionally attention_mask) as int64; vision graphs take pixel_values as float32 or float16",
  });
}
