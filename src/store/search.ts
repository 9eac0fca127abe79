/**
 * Cross-modal retrieval over the store: a query made of texts and images (plus and minus), combined
 * after normalisation as rclip does, ranked against the model's stored image embeddings under the
 * roots given to `index` (or, asked, every one the store holds: detect, eval and fit embed images on
 * the way too). The model's rows are read once; the scope filters them. Small collections are scanned
 * exactly; large ones are ranked through the HNSW graph of all the model's contents kept beside the
 * store (./ann-files.ts), grown in place as files come and go, its hits filtered to the scope; which
 * one is chosen by size and by the exact scan's measured speed (src/search/choose.ts) unless
 * `annThreshold` says. One content stored under several paths (copies, the same image in several
 * folders) is one hit listing its paths.
 */
import { existsSync } from "node:fs";
import type { ClipModel, ImageSource } from "../clip.js";
import { ClipOodError } from "../errors.js";
import { chooseEngine, measureExactRate } from "../search/choose.js";
import type { EngineChoice } from "../search/choose.js";
import { combineQueries, exactSearch } from "../search/exact.js";
import type { SearchHit } from "../search/exact.js";
import type { ContentGraph } from "../search/hnsw.js";
import { contentGraphFor, readAnnRecord } from "./ann-files.js";
import type { AnnFileOptions } from "./ann-files.js";
import { storeModelKey } from "./cached.js";
import { compareCodePoints, scopePredicate, selectRows } from "./local-rows.js";
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
  /**
   * Above this many rows the HNSW index is used, up to it the exact scan. Default: chosen from the
   * exact scan's measured speed (src/search/choose.ts).
   */
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
  // Every row of the model, read once: the graph covers them all, and the scope is a filter on them.
  const all = await store.embeddingsFor(key);
  if (all.paths.length === 0) return [];
  const wanted = scopePredicate(scope, scope.indexed ? await store.indexedRoots(key) : []);
  const keep = wanted ? all.paths.flatMap((p, i) => (wanted(p) ? [i] : [])) : undefined;
  const inScope = keep?.length ?? all.paths.length;
  if (inScope === 0) return [];
  const choice = await engineFor(store, key, all, inScope, o.annThreshold);
  if (choice.engine === "exact") {
    const rows = keep ? selectRows(all, keep) : all;
    return byContent(async (k) => ({ hits: hitsOf(rows, await exactSearch(rows.data, rows.dim, query, k)), end: k >= rows.paths.length }), top);
  }
  // One graph per model covers all its rows; the scope filters its hits, so neither the default scope
  // nor --in changes it.
  const graph = await contentGraphFor(store, key, all, { onWarning: (m) => model.warn(m) });
  let scoped: Uint8Array | undefined;
  if (keep) {
    scoped = new Uint8Array(all.paths.length);
    for (const i of keep) scoped[i] = 1;
  }
  return byContent(async (k) => ({ hits: graphHits(all, graph, graph.search(query, k), scoped), end: k >= graph.contents }), top);
}

/** The engine for `rows` rows of the model: the user's threshold, else the exact scan's measured speed. */
async function engineFor(store: EmbeddingStore, key: string, all: StoreRows, rows: number, annThreshold: number | undefined): Promise<EngineChoice> {
  if (annThreshold !== undefined) return chooseEngine({ rows, annThreshold });
  const cheap = chooseEngine({ rows });
  if (cheap.engine === "exact") return cheap;
  return chooseEngine({ rows, exactRowsPerSecond: await measureExactRate(all.data, all.dim), indexExists: (await readAnnRecord(store, key)) !== undefined });
}

/** A graph's content hits as hits on each path of the content (in scope, when a scope is given). */
function graphHits(rows: StoreRows, graph: ContentGraph, hits: readonly { row: number; score: number }[], scoped: Uint8Array | undefined): NearestHit[] {
  const out: NearestHit[] = [];
  for (const h of hits) {
    for (const row of graph.copiesOf(h.row)) {
      if (!scoped || scoped[row] === 1) out.push({ path: rows.paths[row]!, hash: rows.hashes[row]!, score: h.score });
    }
  }
  return out;
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

export interface AnnPrepareOptions extends AnnFileOptions {
  /** As SearchOptions.annThreshold. */
  annThreshold?: number;
}

/**
 * Builds, or brings up to date, the HNSW index of the model's collection when search would use one, so
 * that the next search finds it ready; `clip-ood index` calls it after indexing. Returns whether an
 * index is in use for this collection.
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
  if (rows.paths.length === 0 || (await engineFor(store, key, rows, rows.paths.length, o.annThreshold)).engine === "exact") return false;
  await contentGraphFor(store, key, rows, { ...o, onWarning: o.onWarning ?? ((m) => model.warn(m)) });
  return true;
}
