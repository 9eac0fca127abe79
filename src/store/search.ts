/**
 * Cross-modal retrieval over the store: a query made of texts and images (plus and minus), combined
 * after normalisation as rclip does, ranked against the model's stored image embeddings under the
 * roots given to `index` (or, asked, every one the store holds: detect, eval and fit embed images on
 * the way too): exactly, or from a collection size on with an HNSW index of all the model's rows kept
 * beside the store, rebuilt whenever they change, its hits filtered to the scope. One content stored
 * under several paths (copies, the same image in several folders) is one hit listing its paths.
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
import { compareCodePoints } from "./local-rows.js";
import type { EmbeddingStore, NearestHit, RowScope, StoreRows } from "./store.js";


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
  /** Every image the store holds under this folder (indexed or not). */
  under?: string;
  /** Every image the store holds for the model, not only those under the roots given to `index`. */
  all?: boolean;
  /** Collection size from which the approximate (HNSW) index is used (default DEFAULT_ANN_THRESHOLD). */
  annThreshold?: number;
}

export interface SearchResult {
  /** The first of `paths`. */
  input: string;
  score: number;
  /** Every path in the scope with this content that still exists, in path order. */
  paths: string[];
}

/** What the default scope needs when `index` was never run for the model. */
export function nothingIndexed(modelId: string, location: string): ClipOodError {
  return new ClipOodError("INPUT", `nothing has been indexed for ${modelId} in ${location}: search and export cover the folders given to clip-ood index`, {
    hint: "run clip-ood index <folder> first (images already in the store are not embedded again), or pass --all (\"all\": true over HTTP) for every image the store has embedded",
  });
}

/**
 * The rows a search or export covers: those under `under` when it is given (a folder named is the
 * tree wanted, whatever stored its images), else every row with `all`, else the indexed roots'.
 */
export async function searchScope(store: EmbeddingStore, key: string, modelId: string, o: { under?: string; all?: boolean }): Promise<RowScope> {
  if (o.under !== undefined) return { under: o.under };
  if (o.all) return {};
  if ((await store.indexedRoots(key)).length === 0) throw nothingIndexed(modelId, store.location);
  return { indexed: true };
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
  const key = await storeModelKey(model);
  const scope = await searchScope(store, key, model.id, o);
  const query = await queryVector(model, q);
  const nearest = store.nearest?.bind(store);
  if (nearest) return byContent(async (k) => withEnd(await nearest(key, query, k, scope), k), top);
  const rows = await store.embeddingsFor(key, scope);
  if (rows.paths.length === 0) return [];
  const threshold = o.annThreshold ?? DEFAULT_ANN_THRESHOLD;
  if (!useAnn(rows.paths.length, threshold)) return byContent(async (k) => ({ hits: hitsOf(rows, exactTopK(rows.data, rows.dim, query, k)), end: k >= rows.paths.length }), top);
  // One index per model covers all its rows; the scope filters its hits, so that neither the default
  // scope nor --in rebuilds or overwrites it.
  const all = scope.indexed || scope.under !== undefined ? await store.embeddingsFor(key) : rows;
  const inScope = all === rows ? undefined : new Set(rows.paths);
  const ann = await annIndexFor(store, key, all, { ...o, onWarning: (m) => model.warn(m) });
  return byContent(async (k) => ({ hits: hitsOf(all, ann.search(query, k)).filter((h) => inScope?.has(h.path) ?? true), end: k >= all.paths.length }), top);
}

function hitsOf(rows: StoreRows, hits: readonly SearchHit[]): NearestHit[] {
  return hits.map((h) => ({ path: rows.paths[h.index]!, hash: rows.hashes[h.index]!, score: h.score }));
}

/** The database returns fewer than k rows only when the scope holds no more. */
function withEnd(hits: NearestHit[], k: number): { hits: NearestHit[]; end: boolean } {
  return { hits, end: hits.length < k };
}

/**
 * The best `top` contents among the candidates, each with its paths that still exist (a content whose
 * files are all gone drops out). The candidate list doubles until it holds one content more than asked
 * for (so the last one kept has all its copies), or the scope is exhausted (`end`).
 */
async function byContent(candidates: (k: number) => Promise<{ hits: NearestHit[]; end: boolean }>, top: number): Promise<SearchResult[]> {
  for (let k = top + 1; ; k *= 2) {
    const { hits, end } = await candidates(k);
    const contents = new Map<string, { score: number; paths: string[] }>();
    for (const h of hits) {
      const c = contents.get(h.hash);
      if (c) c.paths.push(h.path);
      else contents.set(h.hash, { score: h.score, paths: [h.path] });
    }
    const results: SearchResult[] = [];
    for (const c of contents.values()) {
      const paths = c.paths.filter((p) => existsSync(p)).sort(compareCodePoints);
      if (paths.length > 0) results.push({ input: paths[0]!, score: c.score, paths });
    }
    if (results.length > top || end) return results.slice(0, top);
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
