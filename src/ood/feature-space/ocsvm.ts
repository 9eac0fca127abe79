/**
 * One-class SVM (Schölkopf et al. 2001; METHODS.md §8) with an RBF kernel, solved as libsvm does so that
 * scores match scikit-learn's. Larger scores mean more in-distribution.
 */
import { ClipOodError } from "../../errors.js";
import { normalizeRows, row } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";
import { checkFitData, scoreRows, unitQuery } from "../embedding-input.js";

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
