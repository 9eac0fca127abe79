/**
 * Mahalanobis (Lee et al. 2018; METHODS.md §8) with a tied covariance shrunk toward a scaled identity.
 * Larger scores mean more in-distribution. Treat a state as immutable once fitted: scoring keeps a derived
 * cache keyed by the state object.
 */
import { ClipOodError } from "../../errors.js";
import { inverseSpd } from "../../maths/linalg.js";
import { normalizeRows, row } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";
import { checkFitData, classCounts, scoreRows, unitQuery } from "../embedding-input.js";

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
