/**
 * KNN (Sun et al., ICML 2022; METHODS.md §8): the distance from a unit query to its k-th nearest unit
 * training embedding. Larger scores mean more in-distribution.
 */
import { ClipOodError } from "../../errors.js";
import { checkFreeMemory } from "../../io/bounded-read.js";
import type { MemoryBudget } from "../../io/bounded-read.js";
import { normalizeRows, normalizeRowsInPlace, row } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";
import { exactTopKBatch } from "../../search/engine.js";
import type { ExactSearchOptions } from "../../search/engine.js";
import { exactTopKOne } from "../../search/exact.js";
import { checkFitData, unitQuery } from "../embedding-input.js";

export interface KnnState {
  kind: "knn";
  dim: number;
  k: number;
  /** N × dim unit-normalised training embeddings, row-major. */
  bank: Float32Array;
}

/** METHODS §8: "k = 1 is the usual choice for 1–16 shots". */
export const DEFAULT_KNN_K = 1;

/**
 * Refuses, before any work, a bank of `rows` × `dim` float32 values that would need `copies` new copies
 * of itself when the machine's free memory cannot hold them.
 */
export function checkBankMemory(rows: number, dim: number, copies: number, what: string, memory?: MemoryBudget): void {
  checkFreeMemory(
    rows * dim * 4 * copies,
    `knn: ${what} of ${rows.toLocaleString("en")} rows × ${dim} dimensions (${copies} float32 cop${copies === 1 ? "y" : "ies"})`,
    "fit on fewer rows (a random subset; Sun et al. scale k with the fraction kept, about k = 10 for 1% of ImageNet), free memory, or use a machine with more memory",
    memory,
  );
}

export interface KnnFitOptions {
  /**
   * Make the bank of x's own memory, its rows normalised in place, instead of a normalised copy: for a
   * caller with no further use for x (a training set just read from a file), so that the bank is held
   * once. x is changed, and shares its memory with the returned state.
   */
  inPlace?: boolean;
}

export function fitKnn(x: Matrix, k = DEFAULT_KNN_K, memory?: MemoryBudget, options: KnnFitOptions = {}): KnnState {
  checkFitData(x, "knn");
  // A normalised copy is one more copy of the fitting data.
  if (!options.inPlace) checkBankMemory(x.rows, x.cols, 1, "a bank", memory);
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
  return { kind: "knn", dim: x.cols, k, bank: (options.inPlace ? normalizeRowsInPlace(x) : normalizeRows(x)).data };
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
 * Candidates per query beyond k that the batched path re-scores in float64: float32 products can swap
 * rows whose cosines differ by rounding (~1e-7), so the k-th is taken among the k + RERANK_MARGIN
 * float32-best rows re-scored exactly as knnScore scores them.
 */
export const RERANK_MARGIN = 32;

/**
 * Every row's score, batched: candidates from the neighbour engine's float32 matrix products
 * (engine.ts), re-scored in float64 (RERANK_MARGIN), so the scores equal knnScore's while a batch of
 * 10,000 queries over a bank of a million rows takes minutes instead of hours.
 */
export async function knnScores(state: KnnState, x: Matrix, options: ExactSearchOptions = {}): Promise<Float64Array> {
  if (x.cols !== state.dim) {
    throw new ClipOodError("INPUT", `expected embeddings of ${state.dim} dimensions, got ${x.cols}`, {
      hint: "score with embeddings from the same CLIP model the detector was fitted on",
    });
  }
  const { dim: d, k, bank } = state;
  const units = Array.from({ length: x.rows }, (_, i) => unitQuery(d, row(x, i), `row ${i}`));
  const queries = new Float32Array(x.rows * d);
  units.forEach((v, i) => queries.set(v, i * d));
  const rows = bank.length / d;
  const r = await exactTopKBatch(bank, d, queries, Math.min(k + RERANK_MARGIN, rows), options);
  const eps = float32DotErrorBound(d);
  const exact = new Float64Array(r.count);
  return Float64Array.from(units, (v, i) => {
    const at = i * r.count;
    const score = (c: number) => dot64(bank, r.indices[at + c]! * d, v);
    const kth = kthExactCosine(r.scores.subarray(at, at + r.count), k, eps, r.count === rows, score);
    if (kth !== undefined) return knnScoreOfCosine(kth);
    // Float32 near-ties reach past the candidates' margin: the k-th among them all, re-scored.
    for (let c = 0; c < r.count; c++) exact[c] = score(c);
    return knnScoreOfCosine(exact.sort()[r.count - k]!);
  });
}

/**
 * A bound ε on |float32 score − exact cosine| for a unit query and unit bank rows of `dim` values, as
 * the engine computes them: the query rounded to float32 (≤ u·Σ|bᵢvᵢ|) and a float32 dot product in any
 * order, with or without FMA (≤ γ_dim·Σ|bᵢvᵢ|, γ_n = n·u/(1 − n·u), Higham, *Accuracy and Stability of
 * Numerical Algorithms*, §3.1), u = 2⁻²⁴ and Σ|bᵢvᵢ| ≤ ‖b‖‖v‖ ≈ 1; the 1% covers ‖b‖'s own float32
 * rounding and the float64 re-scoring. 3.1e-5 at 512 dimensions: a worst case, the typical error is far
 * smaller.
 */
export function float32DotErrorBound(dim: number): number {
  return 1.01 * ((dim + 2) * 2 ** -24) / (1 - dim * 2 ** -24);
}

/**
 * The k-th largest exact cosine among a query's candidates, re-scoring only those whose float32 score
 * lies within 2ε of the float32 k-th, t. Pure but for `exact` (candidate c's exact cosine).
 * `f32`: the candidates' float32 scores, best first; `complete`: they are every bank row (else rows
 * outside them score at most the last one).
 *
 * Why it is the same value as re-scoring every candidate: each exact cosine e lies within ε of its s.
 * Fewer than k candidates have s > t, so fewer than k have e > t + ε: the k-th largest e is at most
 * t + ε, and at least t − ε (the k best by s all have e ≥ t − ε). Every e ≥ t − ε has s ≥ t − 2ε, so it
 * is either above t + 2ε in s (then e > t + ε, counted) or re-scored here. Rows outside the candidates
 * are below when the last candidate's s < t − 2ε; otherwise this returns undefined and the caller
 * re-scores them all. The value returned is one of `exact`'s, so bit for bit what a full re-score gives.
 */
export function kthExactCosine(f32: ArrayLike<number>, k: number, eps: number, complete: boolean, exact: (c: number) => number): number | undefined {
  const m = f32.length;
  if (k < 1 || k > m) return undefined;
  const t = f32[k - 1]!;
  if (!complete && !(f32[m - 1]! < t - 2 * eps)) return undefined;
  let above = 0;
  const near: number[] = [];
  for (let c = 0; c < m; c++) {
    const s = f32[c]!;
    if (s > t + 2 * eps) above++;
    else if (s >= t - 2 * eps) {
      const e = exact(c);
      if (e > t + eps) above++;
      else near.push(e);
    } else break; // best first: the rest are lower still
  }
  near.sort((a, b) => b - a);
  return near[k - 1 - above];
}

/** bank row at `off` · v, summed in float64 in knnScore's order so that the two agree bit for bit. */
function dot64(bank: Float32Array, off: number, v: Float64Array): number {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += bank[off + j]! * v[j]!;
  return s;
}
