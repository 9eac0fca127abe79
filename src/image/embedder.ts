/**
 * Images → unit-norm image embeddings (and, for local scores, per-token features): preprocess a batch,
 * stack it into one pixel tensor and run the vision tower. Batches overlap: one per worker runs while
 * the next is decoded.
 */
import { ClipOodError, isClipOodError, messageOf } from "../errors.js";
import type { TensorValue } from "../engine/tensors.js";
import { fromFloat16Bits, toFloat16Bits } from "../maths/float16.js";
import { declared, unsupported } from "../model/towers.js";
import type { Towers } from "../model/towers.js";
import { preprocessImage } from "./preprocess.js";
import type { ImageOptions } from "./preprocess.js";

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

export interface ImageEmbedderOptions extends ImageOptions {
  /** Images per inference call. */
  batchSize: number;
}

export class ImageEmbedder {
  constructor(
    private readonly towers: Towers,
    private readonly options: ImageEmbedderOptions,
  ) {}

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
      while (next < batches.length && inflight.length <= this.towers.workers) {
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
    const out = prepared.ok.length > 0 ? await this.run(prepared.ok.map((o) => o.tensor), patches) : { rows: [], patches: [] };
    const byIndex = new Map(prepared.ok.map((o, i) => [o.index, i]));
    return sources.map((source, i) => {
      const j = byIndex.get(i);
      const r: ImageEmbeddingResult = { input: sourceName(source), embedding: j === undefined ? null : out.rows[j]!, error: prepared.errors.get(i) ?? null };
      if (j !== undefined && out.patches[j]) r.patches = out.patches[j];
      return r;
    });
  }

  private async prepare(sources: readonly ImageSource[]) {
    const cfg = this.towers.model.preprocess;
    const opts = { exifRotate: this.options.exifRotate, maxPixels: this.options.maxPixels };
    const settled = await Promise.allSettled(sources.map((s) => preprocessImage(typeof s === "string" ? s : s.data, cfg, opts, sourceName(s))));
    const ok: { index: number; tensor: Float32Array }[] = [];
    const errors = new Map<number, ClipOodError>();
    settled.forEach((s, index) => {
      if (s.status === "fulfilled") ok.push({ index, tensor: s.value });
      else errors.set(index, isClipOodError(s.reason) ? s.reason : new ClipOodError("IMAGE", `${sourceName(sources[index]!)}: ${messageOf(s.reason)}`));
    });
    return { ok, errors };
  }

  private async run(tensors: readonly Float32Array[], patches: boolean): Promise<{ rows: Float32Array[]; patches: PatchTokens[] }> {
    const info = await this.towers.describe("vision");
    const file = this.towers.file("vision");
    const input = declared(info, "input", "pixel_values", file);
    const { cropHeight: h, cropWidth: w } = this.towers.model.preprocess;
    const pixels = new Float32Array(tensors.length * 3 * h * w);
    tensors.forEach((t, i) => pixels.set(t, i * t.length));
    const dims = [tensors.length, 3, h, w];
    const feed: TensorValue = input.type === "float16" ? { type: "float16", data: toFloat16Bits(pixels), dims } : { type: "float32", data: pixels, dims };
    if (input.type !== "float16" && input.type !== "float32") throw unsupported(file, input);
    if (!patches) return { rows: (await this.towers.embed("vision", { pixel_values: feed })).rows, patches: [] };
    if (this.towers.model.family !== "clip") {
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
    const { rows, extras } = await this.towers.embed("vision", { pixel_values: feed }, [name]);
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
}
