/**
 * KNN (Sun et al., ICML 2022; METHODS.md §8): the distance from a unit query to its k-th nearest unit
 * training embedding. Larger scores mean more in-distribution.
 */
import { ClipOodError } from "../errors.js";
import { normalizeRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { checkFitData, scoreRows, unitQuery } from "./embedding-input.js";

export interface KnnState {
  kind: "knn";
  dim: number;
  k: number;
  /** N × dim unit-normalised training embeddings, row-major. */
  bank: Float32Array;
}

/** METHODS §8: "k = 1 is the usual choice for 1–16 shots". */
export const DEFAULT_KNN_K = 1;

export function fitKnn(x: Matrix, k = DEFAULT_KNN_K): KnnState {
  checkFitData(x, "knn");
  if (!Number.isInteger(k) || k < 1) {
    throw new ClipOodError("USAGE", `knn: k must be a positive integer, got ${k}`, {
      hint: "k = 1 suits 1–16 shots per class; Sun et al. use 50–1000 for full training sets",
    });
  }
  if (k > x.rows) {
    throw new ClipOodError("USAGE", `knn: k = ${k} is larger than the bank of ${x.rows} embeddings`, {
      hint: `use k ≤ ${x.rows}, or add more in-distribution images`,
    });
  }
  return { kind: "knn", dim: x.cols, k, bank: normalizeRows(x).data };
}

/**
 * S(x) = −‖z − z_(k)‖², the negative squared L2 distance from the unit query z to its k-th nearest
 * unit bank vector (Sun et al.; METHODS §8). On unit vectors ‖z − b‖² = 2 − 2·cos(z, b), so the score is
 * computed as 2·cos_(k) − 2 with cos_(k) the k-th largest cosine: the same ranking and the same values
 * (in [−4, 0]) as the paper's FAISS L2 search, without the cancellation of subtracting near-equal
 * vectors. Selection keeps a size-k min-heap: O(N log k) per query, no full sort.
 */
export function knnScore(state: KnnState, embedding: Float32Array, what = "embedding"): number {
  const v = unitQuery(state.dim, embedding, what);
  const { dim: d, k, bank } = state;
  const n = bank.length / d;
  const heap = new Float64Array(k); // min-heap of the k largest cosines so far; heap[0] is the k-th
  let size = 0;
  for (let i = 0; i < n; i++) {
    const off = i * d;
    let dot = 0;
    for (let j = 0; j < d; j++) dot += bank[off + j]! * v[j]!;
    if (size < k) {
      let p = size++;
      while (p > 0) {
        const parent = (p - 1) >> 1;
        if (heap[parent]! <= dot) break;
        heap[p] = heap[parent]!;
        p = parent;
      }
      heap[p] = dot;
    } else if (dot > heap[0]!) {
      siftDownRoot(heap, k, dot);
    }
  }
  return 2 * heap[0]! - 2;
}

/** Replaces the heap's minimum with `value` and restores the min-heap order. */
function siftDownRoot(heap: Float64Array, size: number, value: number): void {
  let p = 0;
  for (;;) {
    const l = 2 * p + 1;
    if (l >= size) break;
    const r = l + 1;
    const child = r < size && heap[r]! < heap[l]! ? r : l;
    if (heap[child]! >= value) break;
    heap[p] = heap[child]!;
    p = child;
  }
  heap[p] = value;
}

export function knnScores(state: KnnState, x: Matrix): Float32Array {
  return scoreRows(state.dim, x, (e, what) => knnScore(state, e, what));
}
