/**
 * On-disk cache of text embeddings keyed by model and exact prompt, so a second run with the same
 * classes encodes nothing. One append-only JSON Lines file per model: appends from concurrent runs
 * interleave whole lines at worst, and a torn or foreign line is skipped on reading, never trusted.
 * The cache is only a speed-up: a write that fails (a full disk, a read-only cache folder) is reported
 * once through `onWarning` and the run goes on with the embeddings in memory.
 */
import { createHash } from "node:crypto";
import { appendFile, mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { messageOf } from "../errors.js";
import { linesBounded } from "../io/bounded-read.js";

export interface TextCacheEntry {
  prompt: string;
  embedding: Float32Array;
}

export class TextEmbeddingCache {
  private writable = true;

  private constructor(
    readonly file: string,
    private readonly entries: Map<string, Float32Array>,
    private readonly onWarning: (message: string) => void,
  ) {}

  /**
   * `modelKey` must change whenever the text graph could embed differently: callers build it from
   * the model id, dtype and the graph file's size and modification time (see `textModelKey`).
   */
  static async open(cacheDir: string, modelKey: string, onWarning: (message: string) => void = () => {}): Promise<TextEmbeddingCache> {
    const file = path.join(cacheDir, "text-embeddings", `${sha256(modelKey).slice(0, 24)}.jsonl`);
    const entries = new Map<string, Float32Array>();
    try {
      // Line by line: a cache of every ImageNet prompt ensemble is hundreds of megabytes.
      for await (const line of linesBounded(file, { what: "text-embedding cache", code: "INPUT", hint: "" })) {
        const entry = parseLine(line);
        if (entry) entries.set(entry.prompt, entry.embedding);
      }
    } catch (e) {
      if ((e as { cause?: { code?: unknown } }).cause?.code !== "ENOENT") onWarning(`text-embedding cache ${file} cannot be read (${messageOf(e)}); prompts are encoded again`);
    }
    return new TextEmbeddingCache(file, entries, onWarning);
  }

  get size(): number {
    return this.entries.size;
  }

  get(prompt: string): Float32Array | undefined {
    return this.entries.get(prompt);
  }

  async putMany(items: readonly TextCacheEntry[]): Promise<void> {
    if (items.length === 0) return;
    for (const { prompt, embedding } of items) this.entries.set(prompt, embedding);
    const lines = items.map(({ prompt, embedding }) =>
      JSON.stringify({ p: prompt, e: Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength).toString("base64") }),
    );
    if (!this.writable) return;
    try {
      await mkdir(path.dirname(this.file), { recursive: true });
      // A leading newline ends a line torn by an earlier failed write, so it cannot swallow the first new entry.
      await appendFile(this.file, "\n" + lines.join("\n") + "\n");
    } catch (e) {
      this.writable = false;
      this.onWarning(`cannot write the text-embedding cache ${this.file} (${messageOf(e)}); going on without caching prompts`);
    }
  }
}

export async function textModelKey(modelId: string, dtype: string, graphFile: string): Promise<string> {
  const s = await stat(graphFile);
  return JSON.stringify([modelId, dtype, s.size, Math.floor(s.mtimeMs)]);
}

function parseLine(line: string): TextCacheEntry | undefined {
  if (!line.trim()) return undefined;
  try {
    const v = JSON.parse(line) as { p?: unknown; e?: unknown };
    if (typeof v.p !== "string" || typeof v.e !== "string") return undefined;
    const bytes = Buffer.from(v.e, "base64");
    if (bytes.length === 0 || bytes.length % 4 !== 0) return undefined;
    const embedding = new Float32Array(bytes.length / 4);
    new Uint8Array(embedding.buffer).set(bytes);
    return { prompt: v.p, embedding };
  } catch {
    return undefined;
  }
}

function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}
