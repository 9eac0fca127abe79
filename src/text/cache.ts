/**
 * On-disk cache of text embeddings keyed by model and exact prompt, so a second run with the same
 * classes encodes nothing. One append-only JSON Lines file per model: appends from concurrent runs
 * interleave whole lines at worst, and a torn or foreign line is skipped on reading, never trusted.
 */
import { createHash } from "node:crypto";
import { appendFile, mkdir, readFile, stat } from "node:fs/promises";
import path from "node:path";

export interface TextCacheEntry {
  prompt: string;
  embedding: Float32Array;
}

export class TextEmbeddingCache {
  private constructor(
    readonly file: string,
    private readonly entries: Map<string, Float32Array>,
  ) {}

  /**
   * `modelKey` must change whenever the text graph could embed differently: callers build it from
   * the model id, dtype and the graph file's size and modification time (see `textModelKey`).
   */
  static async open(cacheDir: string, modelKey: string): Promise<TextEmbeddingCache> {
    const file = path.join(cacheDir, "text-embeddings", `${sha256(modelKey).slice(0, 24)}.jsonl`);
    const entries = new Map<string, Float32Array>();
    const text = await readFile(file, "utf8").catch(() => "");
    for (const line of text.split("\n")) {
      const entry = parseLine(line);
      if (entry) entries.set(entry.prompt, entry.embedding);
    }
    return new TextEmbeddingCache(file, entries);
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
    await mkdir(path.dirname(this.file), { recursive: true });
    await appendFile(this.file, lines.join("\n") + "\n");
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
