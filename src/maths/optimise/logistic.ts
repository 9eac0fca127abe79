/**
 * Multinomial (softmax) logistic regression with intercepts and an L2 penalty on the weights only,
 * minimised by L-BFGS; logistic-cv.ts chooses C. Pure: typed arrays in, typed arrays out, no I/O, no
 * randomness. The objective's matrix products run on onnxruntime (logistic-kernel.ts), so fitting is
 * asynchronous; logistic-reference.ts holds the scalar reference the kernel is tested against.
 *
 * The objective is scikit-learn's LogisticRegression(multi_class="multinomial", penalty="l2", C,
 * fit_intercept=True):
 *   F(W, b) = Σ_i −log softmax(W x_i + b)_{y_i} + ‖W‖²_F / (2C).
 * It is minimised as F/n, which has the same minimiser and gradients whose size does not grow with n, so
 * one tolerance suits every data size. The intercepts are not penalised, so F is invariant to adding a
 * constant to every b_k; starting from b = 0, every gradient (and so every L-BFGS step) keeps Σ_k b_k = 0,
 * which is also the representative scikit-learn's lbfgs path returns.
 */
import { lbfgs, newLbfgsState } from "./lbfgs.js";
import { logisticKernel } from "../kernels/logistic-kernel.js";
import type { KernelPrecision } from "../kernels/logistic-kernel.js";

export interface LogisticData {
  /** n × d rows, row-major (float64: the optimiser's inner loops read it on every evaluation). */
  x: Float64Array;
  n: number;
  d: number;
  /** Class index 0..classes−1 of each row. */
  y: Int32Array;
  classes: number;
}

export interface LogisticModel {
  /** classes × d, row-major. */
  weights: Float64Array;
  /** classes; Σ_k b_k = 0. */
  intercepts: Float64Array;
}

export interface LogisticFit extends LogisticModel {
  /** F/n at the solution. */
  objective: number;
  iterations: number;
  /** false when maxIter was reached or the line search could make no progress first. */
  converged: boolean;
}

export interface LogisticOptions {
  /** Inverse regularisation strength C > 0 (scikit-learn's C). */
  c: number;
  /** Stop when max |∂(F/n)| ≤ tol. Default 1e-6. */
  tol?: number;
  /**
   * Also require max |∂(F/n)| ≤ relTol × its value at the start (default: no such requirement). For
   * warm starts along a C path: there the starting gradient is only the penalty's change, which can be
   * below any fixed tol, so without it the fit would not move at all.
   */
  relTol?: number;
  /** Default 1000 L-BFGS iterations. */
  maxIter?: number;
  /** Warm start (copied, not modified). */
  init?: LogisticModel;
  /**
   * Finish in float64 products (default true), which alone can certify a tight tolerance. Cross-
   * validation turns it off: its loose tolerances sit far above float32's ~1e-8 rounding, and the
   * float64 products cost 3× as much.
   */
  certify?: boolean;
}

export const DEFAULT_LOGISTIC_TOL = 1e-6;
export const DEFAULT_LOGISTIC_MAX_ITER = 1000;

/**
 * Mean cross-entropy −(1/n) Σ log softmax(W x_i + b)_{y_i} over `data` (no penalty): the CV criterion.
 * The objective with C = ∞, in float64.
 */
export async function meanLogLoss(data: LogisticData, model: LogisticModel): Promise<number> {
  const size = model.weights.length + model.intercepts.length;
  const theta = new Float64Array(size);
  theta.set(model.weights, 0);
  theta.set(model.intercepts, model.weights.length);
  return logisticKernel(data, "float64").evaluate(Infinity, theta, new Float64Array(size));
}

/** z = W v + b for the row of `v` starting at `off`. */
export function logitsInto(model: { weights: ArrayLike<number>; intercepts: ArrayLike<number> }, d: number, v: ArrayLike<number>, off: number, z: Float64Array): void {
  const { weights, intercepts } = model;
  for (let c = 0; c < intercepts.length; c++) {
    let s = intercepts[c]!;
    const wOff = c * d;
    for (let j = 0; j < d; j++) s += weights[wOff + j]! * v[off + j]!;
    z[c] = s;
  }
}

export function logSumExp(z: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i]! > max) max = z[i]!;
  if (max === -Infinity) return max;
  let s = 0;
  for (let i = 0; i < z.length; i++) s += Math.exp(z[i]! - max);
  return max + Math.log(s);
}

/**
 * Minimises F/n by L-BFGS (lbfgs.ts). F is smooth and strictly convex in W, so this reaches the unique
 * optimum; deterministic, since every operation is in a fixed order.
 *
 * Two phases on the same iterate and history: float32 products (logistic-kernel.ts, ~3× faster) until
 * they stop making progress — their ~1e-8 rounding in F/n stalls the line search, or their gradient
 * passes the tolerance — then float64 products, which alone decide convergence. On large problems the
 * float32 phase does nearly all the iterations; on small ones it stalls early and costs little.
 */
export async function fitLogistic(data: LogisticData, opts: LogisticOptions): Promise<LogisticFit> {
  const { d, classes: k } = data;
  const tol = opts.tol ?? DEFAULT_LOGISTIC_TOL;
  const maxIter = opts.maxIter ?? DEFAULT_LOGISTIC_MAX_ITER;
  const state = newLbfgsState(k * d + k);
  if (opts.init) {
    state.theta.set(opts.init.weights, 0);
    state.theta.set(opts.init.intercepts, k * d);
  }
  const tolerance = (startGrad: number) => (opts.relTol === undefined ? tol : Math.min(tol, opts.relTol * startGrad));
  const phase = (precision: KernelPrecision): Promise<boolean> => {
    const kernel = logisticKernel(data, precision);
    return lbfgs((theta, grad) => kernel.evaluate(opts.c, theta, grad), state, tolerance, maxIter);
  };
  let converged = await phase("float32");
  if (opts.certify ?? true) converged = await phase("float64");
  const { theta, f, iterations } = state;
  return { weights: theta.slice(0, k * d), intercepts: theta.slice(k * d), objective: f, iterations, converged };
}
