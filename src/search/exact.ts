/**
 * Exact nearest neighbours by cosine (dot products of unit rows), and rclip-style query arithmetic.
 * Pure functions over typed arrays.
 */
import { ClipOodError } from "../errors.js";

export interface SearchHit {
  index: number;
  score: number;
}

/**
 * The k rows of `data` (rows × dim, unit rows) most similar to the unit `query`, best first; ties keep
 * the lower index first. A size-k min-heap keeps this O(rows·dim + rows·log k).
 */
export function exactTopK(data: Float32Array, dim: number, query: Float32Array, k: number, filter?: (index: number) => boolean): SearchHit[] {
  if (query.length !== dim) throw new ClipOodError("INPUT", `query has ${query.length} dimensions, the collection ${dim}`, { hint: "search with the model that indexed the collection" });
  const rows = Math.floor(data.length / dim);
  const heap: SearchHit[] = [];
  // Worse = lower score, or equal score and higher index: the heap's root is the worst kept hit.
  const worse = (a: SearchHit, b: SearchHit) => a.score < b.score || (a.score === b.score && a.index > b.index);
  const up = (i: number) => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!worse(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = 0; i < rows; i++) {
    if (filter && !filter(i)) continue;
    let s = 0;
    const o = i * dim;
    for (let j = 0; j < dim; j++) s += data[o + j]! * query[j]!;
    const hit = { index: i, score: s };
    if (heap.length < k) {
      heap.push(hit);
      up(heap.length - 1);
    } else if (k > 0 && worse(heap[0]!, hit)) {
      heap[0] = hit;
      down(0);
    }
  }
  return heap.sort((a, b) => b.score - a.score || a.index - b.index);
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
