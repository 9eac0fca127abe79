/**
 * Cross-modal retrieval over the store: a query made of texts and images (plus and minus), combined
 * after normalisation as rclip does, ranked against every stored image embedding of the model: exactly,
 * or from a collection size on with an HNSW index kept beside the store and rebuilt whenever the
 * indexed rows change.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import type { ClipModel } from "../clip.js";
import { ClipOodError } from "../errors.js";
import { AnnIndex, DEFAULT_ANN_THRESHOLD } from "../search/ann.js";
import { combineQueries, exactTopK } from "../search/exact.js";
import type { SearchHit } from "../search/exact.js";
import { storeModelKey } from "./cached.js";
import type { EmbeddingStore } from "./store.js";

export interface SearchQuery {
  /** Texts to look for, embedded exactly as given. */
  text?: readonly string[];
  /** Images to look like. */
  images?: readonly string[];
  /** Texts added to and subtracted from the query ("… --subtract 'a dog'"). */
  add?: readonly string[];
  subtract?: readonly string[];
}

export interface SearchOptions {
  top?: number;
  /** Only files under this folder. */
  under?: string;
  exifRotate?: boolean;
  /** Collection size from which the approximate (HNSW) index is used (default DEFAULT_ANN_THRESHOLD). */
  annThreshold?: number;
}

export interface SearchResult {
  input: string;
  score: number;
}

/** The unit query vector: each part normalised, weighted +1 or −1, summed, normalised. */
export async function queryVector(model: ClipModel, q: SearchQuery): Promise<Float32Array> {
  const parts: { vector: Float32Array; weight: number }[] = [];
  const texts = [...(q.text ?? []), ...(q.add ?? []), ...(q.subtract ?? [])];
  if (texts.length > 0) {
    const m = await model.embedTexts(texts);
    const positive = (q.text?.length ?? 0) + (q.add?.length ?? 0);
    texts.forEach((_, i) => parts.push({ vector: m.data.slice(i * m.cols, (i + 1) * m.cols), weight: i < positive ? 1 : -1 }));
  }
  // Query images are embedded directly: recording them in the store would make them search results.
  for await (const r of model.embedImages(q.images ?? [])) {
    if (!r.embedding) throw r.error ?? new ClipOodError("IMAGE", `${r.input}: cannot be read`);
    parts.push({ vector: r.embedding, weight: 1 });
  }
  if (parts.length === 0) throw new ClipOodError("USAGE", "empty query", { hint: 'give a text ("a dog wearing sunglasses") and/or --image <file>' });
  return combineQueries(parts);
}

export async function search(model: ClipModel, store: EmbeddingStore, q: SearchQuery, o: SearchOptions = {}): Promise<SearchResult[]> {
  const top = o.top ?? 10;
  if (!Number.isInteger(top) || top < 1) throw new ClipOodError("USAGE", `--top must be a positive integer, got ${top}`, { hint: "e.g. --top 20" });
  const exifRotate = o.exifRotate ?? true;
  const query = await queryVector(model, q);
  const key = await storeModelKey(model, exifRotate);
  const rows = store.embeddingsFor(key, o.under === undefined ? {} : { under: o.under });
  const n = rows.paths.length;
  if (n === 0) return [];
  const ann = n >= (o.annThreshold ?? DEFAULT_ANN_THRESHOLD) ? await annIndex(store, key, rows) : undefined;
  // Deleted files drop out: widen the candidate list until `top` existing files are found.
  for (let k = top; ; k = Math.min(n, k * 2)) {
    const hits: SearchHit[] = ann ? ann.search(query, k) : exactTopK(rows.data, rows.dim, query, k);
    const results = hits.filter((h) => existsSync(rows.paths[h.index]!)).map((h) => ({ input: rows.paths[h.index]!, score: h.score }));
    if (results.length >= top || k >= n) return results.slice(0, top);
  }
}

/** The HNSW index of exactly these rows: loaded from beside the store when its stamp matches, else rebuilt. */
async function annIndex(store: EmbeddingStore, key: string, rows: { hashes: string[]; paths: string[]; dim: number; data: Float32Array }): Promise<AnnIndex> {
  const stamp = createHash("sha256").update(key).update(rows.paths.join("\n")).update(rows.hashes.join("\n")).digest("hex");
  const base = `${store.file}.ann-${createHash("sha256").update(key).digest("hex").slice(0, 12)}`;
  if ((await readFile(`${base}.json`, "utf8").catch(() => "")) === stamp && existsSync(`${base}.usearch`)) {
    try {
      return AnnIndex.load(`${base}.usearch`, rows.dim);
    } catch {
      // A damaged index file is rebuilt below.
    }
  }
  const index = AnnIndex.build(rows.data, rows.dim);
  index.save(`${base}.usearch.tmp`);
  await rename(`${base}.usearch.tmp`, `${base}.usearch`);
  await writeFile(`${base}.json`, stamp);
  return index;
}
