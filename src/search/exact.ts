/**
 * Exact nearest neighbours by cosine (dot products of unit rows), and rclip-style query arithmetic.
 * Pure functions over typed arrays.
 */
import { ClipOodError } from "../errors.js";
import { exactTopKBatch } from "./engine.js";
import { TopKSelector } from "./topk.js";
import type { TopKResult } from "./topk.js";

export interface SearchHit {
  index: number;
  score: number;
}

/**
 * The k rows of `data` (rows × dim, unit rows) most similar to the unit `query`, best first; ties keep
 * the lower index first. One query, synchronously, with dot products summed in float64: the single-query
 * path of the neighbour engine (engine.ts's `exactTopKBatch` is the batched one), sharing its selection.
 */
export function exactTopK(data: Float32Array, dim: number, query: Float32Array, k: number, filter?: (index: number) => boolean): SearchHit[] {
  if (query.length !== dim) throw new ClipOodError("INPUT", `query has ${query.length} dimensions, the collection ${dim}`, { hint: "search with the model that indexed the collection" });
  if (k < 1) return [];
  const r = exactTopKOne(data, dim, query, k, filter);
  return Array.from(r.indices, (index, i) => ({ index, score: r.scores[i]! }));
}

const CHUNK = 4096;

/** One query's top k over `data`, rows rejected by `filter` skipped (their scores set to NaN, which selection never keeps). */
export function exactTopKOne(data: Float32Array, dim: number, query: ArrayLike<number>, k: number, filter?: (index: number) => boolean): TopKResult {
  const rows = Math.floor(data.length / dim);
  const selector = new TopKSelector(1, Math.max(1, Math.min(k, rows)));
  const dots = new Float64Array(Math.min(CHUNK, rows));
  for (let r0 = 0; r0 < rows; r0 += CHUNK) {
    const n = Math.min(CHUNK, rows - r0);
    for (let i = 0; i < n; i++) {
      const row = r0 + i;
      if (filter && !filter(row)) {
        dots[i] = NaN;
        continue;
      }
      let s = 0;
      const o = row * dim;
      for (let j = 0; j < dim; j++) s += data[o + j]! * query[j]!;
      dots[i] = s;
    }
    selector.offer(0, dots, 0, n, r0);
  }
  return selector.finish();
}

/**
 * From this many rows a single query's scan runs on the neighbour engine's matrix products (engine.ts,
 * every core: measured 8–10× the JavaScript loop at 200,000 × 512 here) rather than in the loop, whose
 * lack of start-up cost wins on small collections.
 */
export const BATCHED_SCAN_ROWS = 16_384;

/**
 * Candidates beyond k that a batched scan re-scores in float64: float32 products can swap rows whose
 * scores differ by rounding (~1e-7).
 */
const RESCORE_MARGIN = 32;

/**
 * One query's exact top k, with exactTopK's scores and order (float64 dot products, ties to the lower
 * index) whichever way it is computed: by the loop on small collections, else by the batched engine's
 * float32 products, whose best k + RESCORE_MARGIN rows are re-scored in float64.
 */
export async function exactSearch(data: Float32Array, dim: number, query: Float32Array, k: number): Promise<SearchHit[]> {
  const rows = Math.floor(data.length / dim);
  if (rows < BATCHED_SCAN_ROWS || k < 1) return exactTopK(data, dim, query, k);
  if (query.length !== dim) throw new ClipOodError("INPUT", `query has ${query.length} dimensions, the collection ${dim}`, { hint: "search with the model that indexed the collection" });
  const r = await exactTopKBatch(data, dim, query, Math.min(rows, Math.floor(k) + RESCORE_MARGIN));
  const hits: SearchHit[] = [];
  for (let i = 0; i < r.count; i++) {
    const index = r.indices[i]!;
    let s = 0;
    const o = index * dim;
    for (let j = 0; j < dim; j++) s += data[o + j]! * query[j]!;
    hits.push({ index, score: s });
  }
  return hits.sort((a, b) => b.score - a.score || a.index - b.index).slice(0, Math.floor(k));
}

/**
 * rclip-style query arithmetic: every part L2-normalised, then weighted (subtract = −1) and summed, and
 * the sum normalised, so a part's length never decides its influence.
 */
export function combineQueries(parts: readonly { vector: Float32Array; weight: number }[]): Float32Array {
  if (parts.length === 0) throw new ClipOodError("USAGE", "empty query", { hint: "give a text or an image to search for" });
  const dim = parts[0]!.vector.length;
  const sum = new Float64Array(dim);
  for (const { vector, weight } of parts) {
    if (vector.length !== dim) throw new ClipOodError("INPUT", `query parts have ${dim} and ${vector.length} dimensions`, { hint: "use one model for every part" });
    let n = 0;
    for (const x of vector) n += x * x;
    if (n === 0) continue;
    const f = weight / Math.sqrt(n);
    for (let j = 0; j < dim; j++) sum[j]! += vector[j]! * f;
  }
  let n = 0;
  for (const x of sum) n += x * x;
  if (!(n > 1e-20)) throw new ClipOodError("USAGE", "the query parts cancel out", { hint: "add or subtract different things" });
  const inv = 1 / Math.sqrt(n);
  return Float32Array.from(sum, (x) => x * inv);
}
