/**
 * KNN (Sun et al., ICML 2022; METHODS.md §8): the distance from a unit query to its k-th nearest unit
 * training embedding. Larger scores mean more in-distribution.
 */
import { ClipOodError } from "../errors.js";
import { normalizeRows, row } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { exactTopKBatch } from "../search/engine.js";
import type { ExactSearchOptions } from "../search/engine.js";
import { exactTopKOne } from "../search/exact.js";
import { checkFitData, unitQuery } from "./embedding-input.js";

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
 * vectors.
 */
export function knnScoreOfCosine(kthCosine: number): number {
  return 2 * kthCosine - 2;
}

/** One query's score, synchronously: a scan in float64 over the bank (the engine's single-query path). */
export function knnScore(state: KnnState, embedding: Float32Array, what = "embedding"): number {
  const v = unitQuery(state.dim, embedding, what);
  const r = exactTopKOne(state.bank, state.dim, v, state.k);
  return knnScoreOfCosine(r.scores[r.count - 1]!);
}

/**
 * Every row's score, batched: the cosines come from the neighbour engine's float32 matrix products
 * (engine.ts), so a score may differ from knnScore's float64 one by float32 rounding (< 1e-6), and a
 * batch of 10,000 queries over a bank of a million rows takes minutes instead of hours.
 */
export async function knnScores(state: KnnState, x: Matrix, options: ExactSearchOptions = {}): Promise<Float32Array> {
  if (x.cols !== state.dim) {
    throw new ClipOodError("INPUT", `expected embeddings of ${state.dim} dimensions, got ${x.cols}`, {
      hint: "score with embeddings from the same CLIP model the detector was fitted on",
    });
  }
  const queries = new Float32Array(x.rows * x.cols);
  for (let i = 0; i < x.rows; i++) queries.set(unitQuery(state.dim, row(x, i), `row ${i}`), i * x.cols);
  const r = await exactTopKBatch(state.bank, state.dim, queries, state.k, options);
  return Float32Array.from({ length: x.rows }, (_, i) => knnScoreOfCosine(r.scores[i * r.count + r.count - 1]!));
}
