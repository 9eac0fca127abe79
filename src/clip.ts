/**
 * A loaded CLIP model: the facade the rest of the toolkit holds. Loading (resolve the folder, read the
 * tokenizer, start the worker pool) happens here; the work is done by the text embedder
 * (text/embedder.ts), the image embedder (image/embedder.ts) and the tower graphs they share
 * (model/towers.ts). Everything returns L2-normalised embeddings; scoring lives in zeroshot.ts.
 */
import { ClipOodError } from "./errors.js";
import { InferencePool } from "./engine/pool.js";
import type { Device } from "./engine/tensors.js";
import { ImageEmbedder } from "./image/embedder.js";
import type { ImageEmbeddingResult, ImageSource } from "./image/embedder.js";
import { DEFAULT_MAX_PIXELS } from "./image/preprocess.js";
import type { Matrix } from "./maths/vectors.js";
import type { Scoring } from "./maths/scores.js";
import { familyScoring } from "./model/family.js";
import { DEFAULT_DTYPE } from "./model/folder.js";
import type { Dtype } from "./model/folder.js";
import { DEFAULT_MODEL_ID, defaultCacheDir } from "./model/hub-cache.js";
import type { DownloadProgress } from "./model/hub-download.js";
import { resolveModel } from "./model/resolve.js";
import type { ResolvedModel } from "./model/resolve.js";
import { Towers } from "./model/towers.js";
import type { ClassSpec } from "./text/classes.js";
import { TextEmbedder } from "./text/embedder.js";
import type { ClassFeatures } from "./text/embedder.js";
import { CLIP_TOKENIZER, ClipTokenizer, SIGLIP_TOKENIZER } from "./text/tokenizer.js";

export type { ImageEmbeddingResult, ImageSource, PatchTokens } from "./image/embedder.js";
export type { ClassFeatures } from "./text/embedder.js";

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

/** Measured (docs/PERFORMANCE.md, throughput): 16 beats 32 end to end on ViT-B/32, and smaller batches start sooner. */
export const DEFAULT_BATCH_SIZE = 16;

export class ClipModel {
  private scoringRule: Promise<Scoring> | undefined;
  private readonly towers: Towers;
  private readonly text: TextEmbedder;
  private readonly images: ImageEmbedder;

  private constructor(
    readonly model: ResolvedModel,
    readonly tokenizer: ClipTokenizer,
    pool: InferencePool,
    private readonly options: ClipOptions & { batchSize: number; cacheDir: string },
  ) {
    const warn = (message: string) => this.warn(message);
    this.towers = new Towers(model, pool, warn);
    this.text = new TextEmbedder(this.towers, tokenizer, {
      batchSize: options.batchSize,
      cacheDir: options.textCache === false ? undefined : options.cacheDir,
      warn,
    });
    this.images = new ImageEmbedder(this.towers, {
      batchSize: options.batchSize,
      exifRotate: this.exifRotate,
      maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS,
    });
  }

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

  /** Prompts run through the text graph so far (cache hits excluded). */
  get promptsEncoded(): number {
    return this.text.promptsEncoded;
  }

  set promptsEncoded(n: number) {
    this.text.promptsEncoded = n;
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
  embeddingDim(): Promise<number> {
    return this.towers.embeddingDim();
  }

  /** Names of the vision graph's outputs (e.g. whether it has local_embeds). */
  async visionOutputs(): Promise<string[]> {
    return (await this.towers.describe("vision")).outputs.map((o) => o.name);
  }

  /**
   * The padding prompts really get when `requested`: "max" is to the context length
   * (`tokenizer.maxLength`). Throughput figures need it to say what they timed.
   */
  textPadding(requested: "longest" | "max" = "longest"): Promise<"longest" | "max"> {
    return this.text.padding(requested);
  }

  /** Embeds prompts exactly as given (no templates), L2-normalised, one row per prompt. */
  embedTexts(
    texts: readonly string[],
    options: { cache?: boolean; onProgress?: (done: number, total: number) => void; padding?: "longest" | "max" } = {},
  ): Promise<Matrix> {
    return this.text.embedTexts(texts, options);
  }

  /** Class text features: every class's prompts embedded and averaged (METHODS.md §1.3). */
  classFeatures(classes: readonly ClassSpec[], templates: readonly string[], onProgress?: (done: number, total: number) => void): Promise<ClassFeatures> {
    return this.text.classFeatures(classes, templates, onProgress);
  }

  /**
   * Embeds images in batches, yielding one result per input in input order; an image that cannot be
   * read yields an error result and the rest go on (image/embedder.ts).
   */
  embedImages(
    inputs: readonly ImageSource[],
    onProgress?: (done: number, total: number) => void,
    options: { patches?: boolean } = {},
  ): AsyncGenerator<ImageEmbeddingResult> {
    return this.images.embedImages(inputs, onProgress, options);
  }

  async close(): Promise<void> {
    await this.towers.close();
  }
}
