/**
 * Cross-modal retrieval over the store: a query made of texts and images (plus and minus), combined
 * after normalisation as rclip does, ranked against every stored image embedding of the model: exactly,
 * or from a collection size on with an HNSW index kept beside the store and rebuilt whenever the
 * indexed rows change.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ClipModel, ImageSource } from "../clip.js";
import { ClipOodError, messageOf } from "../errors.js";
import { AnnIndex, annCacheKey, DEFAULT_ANN_THRESHOLD, useAnn } from "../search/ann.js";
import { combineQueries, exactTopK } from "../search/exact.js";
import type { SearchHit } from "../search/exact.js";
import { storeModelKey } from "./cached.js";
import type { EmbeddingStore, StoreRows } from "./store.js";


export interface SearchQuery {
  /** Texts to look for, embedded exactly as given. */
  text?: readonly string[];
  /** Images to look like: files, or uploaded bytes. */
  images?: readonly ImageSource[];
  /** Texts added to and subtracted from the query ("… --subtract 'a dog'"). */
  add?: readonly string[];
  subtract?: readonly string[];
}

export interface SearchOptions {
  top?: number;
  /** Only files under this folder. */
  under?: string;
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
  const query = await queryVector(model, q);
  const key = await storeModelKey(model);
  if (store.nearest) return nearestExisting(store.nearest.bind(store), key, query, top, o.under);
  const rows = await store.embeddingsFor(key, o.under === undefined ? {} : { under: o.under });
  if (rows.paths.length === 0) return [];
  const threshold = o.annThreshold ?? DEFAULT_ANN_THRESHOLD;
  if (!useAnn(rows.paths.length, threshold)) return ranked(rows.paths, (k) => exactTopK(rows.data, rows.dim, query, k), top);
  // One index per model covers the whole collection; a folder filter keeps the hits under it, so
  // searches restricted with --in neither rebuild nor overwrite it.
  const all = o.under === undefined ? rows : await store.embeddingsFor(key);
  const ann = await annIndexFor(store, key, all, { ...o, onWarning: (m) => model.warn(m) });
  const under = o.under === undefined ? undefined : o.under.endsWith(path.sep) ? o.under : o.under + path.sep;
  return ranked(all.paths, (k) => ann.search(query, k), top, under === undefined ? undefined : (p) => p.startsWith(under));
}

/** The database's own ranking (pgvector), with files gone from this machine dropped as in `ranked`. */
async function nearestExisting(nearest: NonNullable<EmbeddingStore["nearest"]>, key: string, query: Float32Array, top: number, under: string | undefined): Promise<SearchResult[]> {
  for (let k = top; ; k *= 2) {
    const hits = await nearest(key, query, k, under === undefined ? {} : { under });
    const kept = hits.filter((h) => existsSync(h.path)).map((h) => ({ input: h.path, score: h.score }));
    if (kept.length >= top || hits.length < k) return kept.slice(0, top);
  }
}

/**
 * The first `top` hits whose files still exist (and pass `keep`): deleted files drop out of results,
 * so the candidate list doubles until enough are found or the collection is exhausted.
 */
function ranked(paths: readonly string[], topK: (k: number) => SearchHit[], top: number, keep?: (p: string) => boolean): SearchResult[] {
  const n = paths.length;
  for (let k = Math.min(n, top); ; k = Math.min(n, k * 2)) {
    const results = topK(k)
      .map((h) => ({ input: paths[h.index]!, score: h.score }))
      .filter((r) => (keep?.(r.input) ?? true) && existsSync(r.input));
    if (results.length >= top || k >= n) return results.slice(0, top);
  }
}

export interface AnnPrepareOptions {
  annThreshold?: number;
  /** Progress of an index build (rows inserted, rows in all): builds of large collections take minutes. */
  onProgress?: (done: number, total: number) => void;
  /**
   * A built index that cannot be saved beside the store (a full disk, a read-only folder) is still used
   * for this run and reported here (default: the model's `onWarning`).
   */
  onWarning?: (message: string) => void;
}

/**
 * Builds (or confirms) the HNSW index of the model's collection when it is above the threshold, so that
 * the next search finds it ready; `clip-ood index` calls it after indexing. Returns whether an index
 * is in use for this collection.
 */
export async function prepareAnnIndex(model: ClipModel, store: EmbeddingStore, o: AnnPrepareOptions = {}): Promise<boolean> {
  const key = await storeModelKey(model);
  if (store.nearest) {
    // The database's index is built on the first search; one search with any unit vector builds it now.
    const dim = (await store.stats()).models.find((m) => m.modelKey === key)?.dim;
    if (!dim) return false;
    await store.nearest(key, Float32Array.from({ length: dim }, (_, i) => (i === 0 ? 1 : 0)), 1);
    return true;
  }
  const rows = await store.embeddingsFor(key);
  if (!useAnn(rows.paths.length, o.annThreshold ?? DEFAULT_ANN_THRESHOLD)) return false;
  await annIndexFor(store, key, rows, { ...o, onWarning: o.onWarning ?? ((m) => model.warn(m)) });
  return true;
}

/**
 * The HNSW index of exactly these rows: loaded from beside the store when its stamp matches, else
 * rebuilt. The index file only saves rebuilding, so one that cannot be written is reported, not thrown.
 */
async function annIndexFor(store: EmbeddingStore, key: string, rows: StoreRows, o: AnnPrepareOptions & { onWarning: (message: string) => void }): Promise<AnnIndex> {
  const rowSet = createHash("sha256").update(rows.paths.join("\n")).update("\0").update(rows.hashes.join("\n")).digest("hex");
  const stamp = annCacheKey(rows.paths.length, rowSet);
  const base = `${store.localFilesBase}.ann-${createHash("sha256").update(key).digest("hex").slice(0, 12)}`;
  if ((await readFile(`${base}.json`, "utf8").catch(() => "")) === stamp && existsSync(`${base}.usearch`)) {
    try {
      return AnnIndex.load(`${base}.usearch`, rows.dim);
    } catch {
      // A damaged index file is rebuilt below.
    }
  }
  const index = AnnIndex.build(rows.data, rows.dim, o.onProgress ? { onProgress: o.onProgress } : {});
  // The stamp is removed first and written last: a crash in between leaves an index that is rebuilt, never a stale one trusted.
  try {
    await rm(`${base}.json`, { force: true });
    await mkdir(path.dirname(base), { recursive: true });
    index.save(`${base}.usearch`);
    await writeFile(`${base}.json`, stamp);
  } catch (e) {
    await rm(`${base}.json`, { force: true }).catch(() => {});
    o.onWarning(`${messageOf(e)}; the index is used for this run only and built again next time`);
  }
  return index;
}
