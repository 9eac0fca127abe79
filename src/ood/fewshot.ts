/**
 * Few-shot / feature-space OOD detectors on CLIP image embeddings (METHODS.md §8): Mahalanobis with a
 * tied, shrunk covariance, KNN on unit features, and a one-class SVM. Every score is oriented so that
 * LARGER = MORE IN-DISTRIBUTION.
 *
 * Every detector L2-normalises its inputs, both when fitting and when scoring. CLIP embeddings from this
 * toolkit are already unit vectors, so this is a no-op for them, but it keeps one geometry (cosines) for
 * embeddings that come from elsewhere, and it is what KNN requires (Sun et al. 2022).
 *
 * A fitted state is only plain numbers and typed arrays, so it can be written to a file and read back
 * bit-exactly. Scores depend only on the state, so a reloaded detector scores identically. Treat a state
 * as immutable once fitted: Mahalanobis keeps a derived cache keyed by the state object.
 */
import { ClipOodError } from "../errors.js";
import { inverseSpd } from "../maths/linalg.js";
import { normalizeRows, row } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";

// ---------------------------------------------------------------------------------------------------
// Input checks and normalisation shared by the three detectors
// ---------------------------------------------------------------------------------------------------

/** Rejects empty and non-finite fitting data before any arithmetic can turn it into NaN scores. */
export function checkFitData(x: Matrix, detector: string): void {
  if (x.rows === 0) {
    throw new ClipOodError("INPUT", `${detector}: no in-distribution embeddings to fit`, {
      hint: "pass at least one embedding (one row per in-distribution image)",
    });
  }
  if (x.cols === 0) {
    throw new ClipOodError("INPUT", `${detector}: the embeddings have 0 dimensions`, {
      hint: "pass CLIP image embeddings (e.g. 512 values per row for ViT-B/32)",
    });
  }
  checkFinite(x, `${detector}: fitting embedding`);
}

/**
 * The number of classes (`classes`, default max(label)+1) and each class's row count; every label must
 * lie in 0..classes−1 and every class needs a row, since a class without data has no statistics.
 */
export function classCounts(labels: Int32Array, classes: number | undefined, detector: string): { classes: number; counts: Float64Array } {
  let maxLabel = -1;
  for (const c of labels) maxLabel = Math.max(maxLabel, c);
  const k = classes ?? maxLabel + 1;
  if (!Number.isInteger(k) || k < 1) {
    throw new ClipOodError("USAGE", `${detector}: classes must be a positive integer, got ${k}`, {
      hint: "pass the number of in-distribution classes, or omit it to use the largest label + 1",
    });
  }
  const counts = new Float64Array(k);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (c < 0 || c >= k) {
      throw new ClipOodError("INPUT", `${detector}: label ${c} of row ${i} is outside 0..${k - 1}`, {
        hint: "labels are class indices counted from 0, one per embedding row",
      });
    }
    counts[c]!++;
  }
  const empty = counts.findIndex((n) => n === 0);
  if (empty >= 0) {
    throw new ClipOodError("INPUT", `${detector}: class ${empty} has no embeddings`, {
      hint: "give every class at least one image, or renumber the labels without gaps",
    });
  }
  return { classes: k, counts };
}

export function checkFinite(x: Matrix, what: string): void {
  for (let i = 0; i < x.rows; i++) {
    const r = row(x, i);
    for (let j = 0; j < r.length; j++) {
      if (!Number.isFinite(r[j]!)) {
        throw new ClipOodError("INPUT", `${what} row ${i} has a non-finite value (${r[j]}) at dimension ${j}`, {
          hint: "drop or re-embed that image; NaN/Infinity usually means a broken export or a corrupt embeddings file",
        });
      }
    }
  }
}

/** The query as a float64 unit vector; `what` names it in errors (e.g. "row 3"). */
export function unitQuery(dim: number, embedding: Float32Array, what: string): Float64Array {
  if (embedding.length !== dim) {
    throw new ClipOodError("INPUT", `${what}: expected an embedding of ${dim} dimensions, got ${embedding.length}`, {
      hint: "score with embeddings from the same CLIP model the detector was fitted on",
    });
  }
  const v = new Float64Array(dim);
  let ss = 0;
  for (let j = 0; j < dim; j++) {
    const e = embedding[j]!;
    if (!Number.isFinite(e)) {
      throw new ClipOodError("INPUT", `${what} has a non-finite value (${e}) at dimension ${j}`, {
        hint: "drop or re-embed that image; NaN/Infinity usually means a broken export or a corrupt embeddings file",
      });
    }
    v[j] = e;
    ss += e * e;
  }
  // A zero vector stays zero, as in normalizeRows: a degenerate embedding must not become NaN.
  if (ss > 0) {
    const inv = 1 / Math.sqrt(ss);
    for (let j = 0; j < dim; j++) v[j]! *= inv;
  }
  return v;
}

/** Batch scoring is the single-embedding score applied row by row, so the two agree bit for bit. */
export function scoreRows(dim: number, x: Matrix, score: (e: Float32Array, what: string) => number): Float32Array {
  if (x.cols !== dim) {
    throw new ClipOodError("INPUT", `expected embeddings of ${dim} dimensions, got ${x.cols}`, {
      hint: "score with embeddings from the same CLIP model the detector was fitted on",
    });
  }
  const out = new Float32Array(x.rows);
  for (let i = 0; i < x.rows; i++) out[i] = score(row(x, i), `row ${i}`);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Mahalanobis (Lee et al. 2018) with a tied covariance shrunk toward a scaled identity
// ---------------------------------------------------------------------------------------------------

export interface MahalanobisState {
  kind: "mahalanobis";
  dim: number;
  classes: number;
  /** classes × dim class means of the unit-normalised training embeddings, row-major. */
  means: Float32Array;
  /** dim × dim inverse of the shrunk tied covariance; exactly symmetric. */
  precision: Float32Array;
  /** The α actually used in Σ_shrunk = (1−α)Σ + α·(tr Σ / D)·I (1 when tr Σ = 0, see fitMahalanobis). */
  shrinkage: number;
}

export interface MahalanobisOptions {
  /**
   * α in [0, 1], or "auto" (default) for the Ledoit–Wolf estimate. An explicit 0 means no shrinkage and
   * fails when the covariance is singular (always, with fewer samples than dimensions).
   */
  shrinkage?: number | "auto";
  /** Number of classes C; labels must lie in 0..C−1 and every class needs a sample. Default max(label)+1. */
  classes?: number;
}

/**
 * Lower bound on the automatic shrinkage. Ledoit–Wolf returns α = 0 when every centred row is the same
 * vector up to sign (e.g. two mirrored shots per class), which leaves Σ singular. The floor keeps Σ_shrunk
 * positive definite with condition number ≤ 1 + 1000·λ_max/μ. That bound matters because the state keeps
 * the precision matrix in float32: rounding its entries perturbs a distance by roughly 6e-8 × the
 * condition number, relatively. Shrinking a well-conditioned estimate by 0.1% toward μI changes its
 * scores negligibly.
 */
export const MIN_AUTO_SHRINKAGE = 1e-3;

/**
 * Fits class means and one tied (pooled within-class) covariance, METHODS.md §8 / OpenOOD `mds`:
 *   μ_c = mean of the class-c rows,  Σ = (1/N) Σ_c Σ_{x∈c} (x−μ_c)(x−μ_c)ᵀ  (no Bessel correction),
 *   Σ_shrunk = (1−α)·Σ + α·μ·I  with μ = tr(Σ)/D.
 * α defaults to the Ledoit–Wolf (2004) estimate computed exactly as scikit-learn's
 * `ledoit_wolf_shrinkage(R, assume_centered=True)` on the class-centred rows R (so `LedoitWolf(
 * assume_centered=True).fit(R).covariance_` equals Σ_shrunk), floored at MIN_AUTO_SHRINKAGE. Shrinkage
 * is this project's choice for few-shot data (METHODS §8 recommends it; the papers use none): with 1–16
 * shots per class, or N < D, Σ is rank-deficient and has no inverse.
 *
 * A class with one sample contributes its mean and no scatter. If tr(Σ) = 0 (every sample equals its
 * class mean: one shot per class, or duplicates) there is no scale to shrink toward, and Σ_shrunk = I is
 * used (α recorded as 1): any ε·I ranks identically, and ε = 1 keeps the score the plain negative squared
 * distance to the nearest class mean instead of a huge 1/ε multiple of it.
 */
export function fitMahalanobis(x: Matrix, labels: Int32Array, opts: MahalanobisOptions = {}): MahalanobisState {
  checkFitData(x, "mahalanobis");
  const n = x.rows;
  const d = x.cols;
  if (labels.length !== n) {
    throw new ClipOodError("INPUT", `mahalanobis: ${labels.length} labels for ${n} embeddings`, {
      hint: "pass one class index per embedding row",
    });
  }
  const shrinkOpt = opts.shrinkage ?? "auto";
  if (shrinkOpt !== "auto" && !(Number.isFinite(shrinkOpt) && shrinkOpt >= 0 && shrinkOpt <= 1)) {
    throw new ClipOodError("USAGE", `mahalanobis: shrinkage must be "auto" or a number in [0, 1], got ${shrinkOpt}`, {
      hint: 'use "auto" (Ledoit–Wolf) unless you have tuned a value',
    });
  }
  const { classes, counts } = classCounts(labels, opts.classes, "mahalanobis");

  const xn = normalizeRows(x);
  const mean64 = new Float64Array(classes * d);
  for (let i = 0; i < n; i++) {
    const r = row(xn, i);
    const off = labels[i]! * d;
    for (let j = 0; j < d; j++) mean64[off + j]! += r[j]!;
  }
  for (let c = 0; c < classes; c++) for (let j = 0; j < d; j++) mean64[c * d + j]! /= counts[c]!;

  // Lower triangle of Σ·N accumulated in float64 (STACK.md §5: ml-matrix is slow for this product).
  // Σ_k ‖r_k‖⁴ is Ledoit–Wolf's β numerator (scikit-learn's beta_ = sum(X²ᵀX²)).
  const s = new Float64Array(d * d);
  const r = new Float64Array(d);
  let sumNorm4 = 0;
  for (let i = 0; i < n; i++) {
    const xi = row(xn, i);
    const off = labels[i]! * d;
    let nn = 0;
    for (let j = 0; j < d; j++) {
      r[j] = xi[j]! - mean64[off + j]!;
      nn += r[j]! * r[j]!;
    }
    sumNorm4 += nn * nn;
    for (let a = 0; a < d; a++) {
      const ra = r[a]!;
      if (ra === 0) continue;
      const sa = a * d;
      for (let b = 0; b <= a; b++) s[sa + b]! += ra * r[b]!;
    }
  }
  let trace = 0;
  let frob2 = 0;
  for (let a = 0; a < d; a++) {
    for (let b = 0; b <= a; b++) {
      const v = s[a * d + b]! / n;
      s[a * d + b] = v;
      s[b * d + a] = v;
      frob2 += a === b ? v * v : 2 * v * v;
    }
    trace += s[a * d + a]!;
  }
  const mu = trace / d;

  let alpha: number;
  const cov = s;
  if (trace === 0) {
    alpha = 1;
    cov.fill(0);
    for (let a = 0; a < d; a++) cov[a * d + a] = 1;
  } else {
    alpha = shrinkOpt === "auto" ? Math.max(ledoitWolfShrinkage(n, d, trace, frob2, sumNorm4), MIN_AUTO_SHRINKAGE) : shrinkOpt;
    for (let k = 0; k < d * d; k++) cov[k]! *= 1 - alpha;
    for (let a = 0; a < d; a++) cov[a * d + a]! += alpha * mu;
  }

  let precision: Float64Array;
  try {
    precision = inverseSpd(cov, d);
  } catch (e) {
    throw new ClipOodError("USAGE", `mahalanobis: the covariance with shrinkage ${alpha} is singular and has no inverse`, {
      hint: 'use shrinkage "auto" or a value above 0 (few samples per class, or fewer samples than dimensions, make it singular)',
      cause: e,
    });
  }
  return {
    kind: "mahalanobis",
    dim: d,
    classes,
    means: Float32Array.from(mean64),
    precision: Float32Array.from(precision),
    shrinkage: alpha,
  };
}

/**
 * Ledoit–Wolf shrinkage intensity, written as scikit-learn's `ledoit_wolf_shrinkage` (assume_centered)
 * computes it, in terms of S = RᵀR/n: β = (Σ_k‖r_k‖⁴/n − ‖S‖²_F)/(D·n), δ = ‖S − μI‖²_F/D, α = min(β, δ)/δ.
 */
function ledoitWolfShrinkage(n: number, d: number, trace: number, frob2: number, sumNorm4: number): number {
  const mu = trace / d;
  let beta = (sumNorm4 / n - frob2) / (d * n);
  const delta = (frob2 - 2 * mu * trace + d * mu * mu) / d;
  beta = Math.min(beta, delta);
  return beta === 0 ? 0 : beta / delta;
}

interface MahalanobisCache {
  /** classes × dim rows P·μ_c. */
  pm: Float64Array;
  /** μ_cᵀ P μ_c per class. */
  mpm: Float64Array;
}

const mahalanobisCaches = new WeakMap<MahalanobisState, MahalanobisCache>();

/** P·μ_c and μ_cᵀPμ_c, so a query costs D² + C·D instead of C·D². Deterministic from the state alone. */
function mahalanobisCache(state: MahalanobisState): MahalanobisCache {
  const hit = mahalanobisCaches.get(state);
  if (hit) return hit;
  const { dim: d, classes, means, precision } = state;
  const pm = new Float64Array(classes * d);
  const mpm = new Float64Array(classes);
  for (let c = 0; c < classes; c++) {
    const off = c * d;
    let q = 0;
    for (let a = 0; a < d; a++) {
      let v = 0;
      for (let b = 0; b < d; b++) v += precision[a * d + b]! * means[off + b]!;
      pm[off + a] = v;
      q += v * means[off + a]!;
    }
    mpm[c] = q;
  }
  const cache = { pm, mpm };
  mahalanobisCaches.set(state, cache);
  return cache;
}

/** (v−μ)ᵀ P (v−μ) computed directly, for an exact value at the chosen class. */
function quadraticForm(state: MahalanobisState, v: Float64Array, c: number): number {
  const { dim: d, means, precision } = state;
  const diff = new Float64Array(d);
  for (let j = 0; j < d; j++) diff[j] = v[j]! - means[c * d + j]!;
  let total = 0;
  for (let a = 0; a < d; a++) {
    let s = 0;
    for (let b = 0; b < d; b++) s += precision[a * d + b]! * diff[b]!;
    total += diff[a]! * s;
  }
  return total;
}

/** S(x) = −min_c (x−μ_c)ᵀ Σ_shrunk⁻¹ (x−μ_c) on the unit-normalised x (METHODS §8, no ½ factor). */
export function mahalanobisScore(state: MahalanobisState, embedding: Float32Array, what = "embedding"): number {
  const v = unitQuery(state.dim, embedding, what);
  const { dim: d, classes } = state;
  const { pm, mpm } = mahalanobisCache(state);
  // The expanded form xᵀPx − 2(Pμ_c)·x + μ_cᵀPμ_c only picks the class; the reported distance is
  // recomputed directly, since the expansion cancels badly near a mean.
  let best = 0;
  let bestValue = Infinity;
  for (let c = 0; c < classes; c++) {
    let cross = 0;
    for (let j = 0; j < d; j++) cross += pm[c * d + j]! * v[j]!;
    const value = mpm[c]! - 2 * cross;
    if (value < bestValue) {
      bestValue = value;
      best = c;
    }
  }
  return -quadraticForm(state, v, best);
}

export function mahalanobisScores(state: MahalanobisState, x: Matrix): Float32Array {
  return scoreRows(state.dim, x, (e, what) => mahalanobisScore(state, e, what));
}

// ---------------------------------------------------------------------------------------------------
// KNN (Sun et al., ICML 2022)
// ---------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------
// One-class SVM (Schölkopf et al. 2001), RBF kernel, solved as libsvm does
// ---------------------------------------------------------------------------------------------------

export interface OcsvmState {
  kind: "ocsvm";
  dim: number;
  gamma: number;
  nu: number;
  /** nSV × dim unit-normalised support vectors (training rows with α > 0), row-major. */
  supportVectors: Float32Array;
  /** α_i of each support vector, libsvm's scaling: 0 < α_i ≤ 1, Σα_i = ν·N. */
  coefficients: Float32Array;
  rho: number;
}

export interface OcsvmOptions {
  /**
   * ν in (0, 1]: an upper bound on the fraction of training points outside the boundary. Default 0.1,
   * the upper end of METHODS §8's advice (0.05–0.1 on unit-norm CLIP features); scikit-learn's 0.5 would
   * treat half of a few-shot set as margin errors.
   */
  nu?: number;
  /** RBF γ > 0, or "scale" (default, as scikit-learn): 1/(D·Var(X)) over all entries, 1 if Var(X) = 0. */
  gamma?: number | "scale";
  /** Stopping tolerance on the maximal KKT violation; scikit-learn's default 1e-3. */
  tol?: number;
}

export const DEFAULT_OCSVM_NU = 0.1;
export const DEFAULT_OCSVM_TOL = 1e-3;
/** libsvm's TAU: the curvature used when a pair of points has none (duplicates). */
const TAU = 1e-12;
/** Kernel columns cached while solving (float32, as libsvm's Qfloat). */
const KERNEL_CACHE_BYTES = 256 * 1024 * 1024;

/**
 * Solves libsvm's one-class dual  min ½αᵀKα  s.t. 0 ≤ α_i ≤ 1, Σα_i = ν·N  by SMO with libsvm's
 * second-order working-set selection (Fan, Chen & Lin 2005), libsvm's initial point (the first ⌊νN⌋
 * α at 1, the next at νN − ⌊νN⌋) and its stopping rule (max KKT violation < tol). Shrinking is not
 * used; it changes the path, not the optimum. ρ is libsvm's `calculate_rho`. With the same ν, γ and
 * tol, `ocsvmScore` matches scikit-learn's `OneClassSVM.decision_function` in sign and scale, up to the
 * solver tolerance.
 */
export function fitOcsvm(x: Matrix, opts: OcsvmOptions = {}): OcsvmState {
  checkFitData(x, "ocsvm");
  const nu = opts.nu ?? DEFAULT_OCSVM_NU;
  if (!(Number.isFinite(nu) && nu > 0 && nu <= 1)) {
    throw new ClipOodError("USAGE", `ocsvm: nu must be in (0, 1], got ${nu}`, {
      hint: `ν bounds the fraction of training images treated as outliers; ${DEFAULT_OCSVM_NU} is the default`,
    });
  }
  const tol = opts.tol ?? DEFAULT_OCSVM_TOL;
  if (!(Number.isFinite(tol) && tol > 0)) {
    throw new ClipOodError("USAGE", `ocsvm: tol must be a positive number, got ${tol}`, {
      hint: `leave it at ${DEFAULT_OCSVM_TOL} unless you need a more exact solution`,
    });
  }
  const gammaOpt = opts.gamma ?? "scale";
  if (gammaOpt !== "scale" && !(Number.isFinite(gammaOpt) && gammaOpt > 0)) {
    throw new ClipOodError("USAGE", `ocsvm: gamma must be "scale" or a positive number, got ${gammaOpt}`, {
      hint: '"scale" sets γ = 1/(D·Var(X)) as scikit-learn does',
    });
  }
  const xn = normalizeRows(x);
  const n = xn.rows;
  const d = xn.cols;
  const gamma = gammaOpt === "scale" ? scaleGamma(xn) : gammaOpt;

  const kernel = (i: number, j: number): number => rbf(xn.data, i * d, xn.data, j * d, d, gamma);
  const cache = new ColumnCache(n, kernel);

  // libsvm solve_one_class's starting point: feasible, and deterministic given the row order.
  const alpha = new Float64Array(n);
  const whole = Math.floor(nu * n);
  for (let i = 0; i < Math.min(whole, n); i++) alpha[i] = 1;
  if (whole < n) alpha[whole] = nu * n - whole;

  // Gradient of ½αᵀKα is Kα.
  const grad = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (alpha[i]! === 0) continue;
    const qi = cache.column(i);
    for (let t = 0; t < n; t++) grad[t]! += alpha[i]! * qi[t]!;
  }

  const maxIter = Math.max(10_000_000, 100 * n);
  for (let iter = 0; iter < maxIter; iter++) {
    // Working set (libsvm select_working_set with every y = +1): i maximises −G over α_i < 1, and j
    // maximises the second-order gain among α_j > 0 with G_j > G_i.
    let gmax = -Infinity;
    let gmax2 = -Infinity;
    let i = -1;
    for (let t = 0; t < n; t++) {
      if (alpha[t]! < 1 && -grad[t]! >= gmax) {
        gmax = -grad[t]!;
        i = t;
      }
    }
    let j = -1;
    let objMin = Infinity;
    const qi = i >= 0 ? cache.column(i) : undefined;
    for (let t = 0; t < n; t++) {
      if (!(alpha[t]! > 0)) continue;
      if (grad[t]! >= gmax2) gmax2 = grad[t]!;
      const gradDiff = gmax + grad[t]!;
      if (gradDiff > 0 && qi) {
        const quad = 2 - 2 * qi[t]!; // K_ii + K_tt − 2K_it with K_ii = 1 for RBF
        const obj = -(gradDiff * gradDiff) / (quad > 0 ? quad : TAU);
        if (obj <= objMin) {
          objMin = obj;
          j = t;
        }
      }
    }
    if (gmax + gmax2 < tol || j === -1 || !qi) break;

    const qj = cache.column(j);
    const oldI = alpha[i]!;
    const oldJ = alpha[j]!;
    let quad = 2 - 2 * qi[j]!;
    if (quad <= 0) quad = TAU;
    const delta = (grad[i]! - grad[j]!) / quad;
    const sum = oldI + oldJ;
    let ai = oldI - delta;
    let aj = oldJ + delta;
    // Clip to the box along the line α_i + α_j = const (libsvm's y_i = y_j branch, C = 1).
    if (sum > 1) {
      if (ai > 1) {
        ai = 1;
        aj = sum - 1;
      }
    } else if (aj < 0) {
      aj = 0;
      ai = sum;
    }
    if (sum > 1) {
      if (aj > 1) {
        aj = 1;
        ai = sum - 1;
      }
    } else if (ai < 0) {
      ai = 0;
      aj = sum;
    }
    alpha[i] = ai;
    alpha[j] = aj;
    const di = ai - oldI;
    const dj = aj - oldJ;
    for (let t = 0; t < n; t++) grad[t]! += qi[t]! * di + qj[t]! * dj;
  }
  // Reaching maxIter (libsvm's limit too) leaves a feasible, slightly suboptimal α; libsvm warns and
  // carries on, and so does this.

  const rho = calculateRho(alpha, grad);
  const sv: number[] = [];
  for (let t = 0; t < n; t++) if (alpha[t]! > 0) sv.push(t);
  const supportVectors = new Float32Array(sv.length * d);
  sv.forEach((t, k) => supportVectors.set(row(xn, t), k * d));
  return {
    kind: "ocsvm",
    dim: d,
    gamma,
    nu,
    supportVectors,
    coefficients: Float32Array.from(sv, (t) => alpha[t]!),
    rho,
  };
}

/** scikit-learn's gamma="scale": 1/(D·X.var()), the variance over every entry; 1 when it is 0. */
function scaleGamma(x: Matrix): number {
  const count = x.data.length;
  let sum = 0;
  for (const v of x.data) sum += v;
  const mean = sum / count;
  let ss = 0;
  for (const v of x.data) ss += (v - mean) * (v - mean);
  const variance = ss / count;
  return variance !== 0 ? 1 / (x.cols * variance) : 1;
}

/** exp(−γ‖a−b‖²), from the difference itself so that K(x, x) = 1 exactly and ‖a−b‖² ≥ 0. */
function rbf(a: ArrayLike<number>, aOff: number, b: ArrayLike<number>, bOff: number, d: number, gamma: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) {
    const diff = a[aOff + j]! - b[bOff + j]!;
    s += diff * diff;
  }
  return Math.exp(-gamma * s);
}

/**
 * libsvm calculate_rho for y = +1: the mean gradient over free α; with none free, the midpoint of the
 * bounds that α at 0 (G ≥ ρ) and at 1 (G ≤ ρ) put on ρ. libsvm returns Infinity when every α is at 1
 * (ν = 1); the one finite bound is used instead so the state never holds a non-finite ρ.
 */
function calculateRho(alpha: Float64Array, grad: Float64Array): number {
  let ub = Infinity;
  let lb = -Infinity;
  let free = 0;
  let sumFree = 0;
  for (let t = 0; t < alpha.length; t++) {
    const g = grad[t]!;
    if (alpha[t]! >= 1) lb = Math.max(lb, g);
    else if (alpha[t]! <= 0) ub = Math.min(ub, g);
    else {
      free++;
      sumFree += g;
    }
  }
  if (free > 0) return sumFree / free;
  if (ub === Infinity) return lb;
  if (lb === -Infinity) return ub;
  return (ub + lb) / 2;
}

/** Kernel columns on demand, least-recently-used eviction past KERNEL_CACHE_BYTES (at least two kept). */
class ColumnCache {
  private readonly columns = new Map<number, Float32Array>();
  private readonly capacity: number;

  constructor(
    private readonly n: number,
    private readonly kernel: (i: number, j: number) => number,
  ) {
    this.capacity = Math.max(2, Math.floor(KERNEL_CACHE_BYTES / (4 * n)));
  }

  column(i: number): Float32Array {
    const hit = this.columns.get(i);
    if (hit) {
      this.columns.delete(i);
      this.columns.set(i, hit);
      return hit;
    }
    const col = new Float32Array(this.n);
    for (let t = 0; t < this.n; t++) col[t] = this.kernel(i, t);
    if (this.columns.size >= this.capacity) {
      const oldest = this.columns.keys().next().value;
      if (oldest !== undefined) this.columns.delete(oldest);
    }
    this.columns.set(i, col);
    return col;
  }
}

/** Σ α_i K(sv_i, x) − ρ on the unit-normalised x (scikit-learn `decision_function`; positive = inlier). */
export function ocsvmScore(state: OcsvmState, embedding: Float32Array, what = "embedding"): number {
  const v = unitQuery(state.dim, embedding, what);
  const { dim: d, gamma, supportVectors, coefficients } = state;
  let s = 0;
  for (let k = 0; k < coefficients.length; k++) s += coefficients[k]! * rbf(supportVectors, k * d, v, 0, d, gamma);
  return s - state.rho;
}

export function ocsvmScores(state: OcsvmState, x: Matrix): Float32Array {
  return scoreRows(state.dim, x, (e, what) => ocsvmScore(state, e, what));
}

// ---------------------------------------------------------------------------------------------------
// Dispatch and score combination
// ---------------------------------------------------------------------------------------------------

export type FewShotState = MahalanobisState | KnnState | OcsvmState;

export function fewShotScore(state: FewShotState, embedding: Float32Array): number {
  switch (state.kind) {
    case "mahalanobis":
      return mahalanobisScore(state, embedding);
    case "knn":
      return knnScore(state, embedding);
    case "ocsvm":
      return ocsvmScore(state, embedding);
  }
}

export function fewShotScores(state: FewShotState, x: Matrix): Float32Array {
  switch (state.kind) {
    case "mahalanobis":
      return mahalanobisScores(state, x);
    case "knn":
      return knnScores(state, x);
    case "ocsvm":
      return ocsvmScores(state, x);
  }
}
