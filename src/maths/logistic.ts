/**
 * Multinomial (softmax) logistic regression with intercepts and an L2 penalty on the weights only,
 * minimised by L-BFGS; and C chosen by stratified, seeded k-fold cross-validation. Pure: typed arrays
 * in, typed arrays out, no I/O, no randomness except the seeded fold split. The objective's matrix
 * products run on onnxruntime (logistic-kernel.ts), so fitting is asynchronous; logistic-reference.ts
 * holds the scalar reference the kernel is tested against.
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
import { logisticKernel } from "./logistic-kernel.js";
import type { KernelPrecision } from "./logistic-kernel.js";
import { mulberry32 } from "./random.js";

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

// ---------------------------------------------------------------------------------------------------
// Choosing C by cross-validation
// ---------------------------------------------------------------------------------------------------

/**
 * C = 10^-2, 10^-1.5, …, 10^4 (13 values). CLIP's linear probes (Radford et al. 2021, appendix A.3)
 * search λ = 1/C by a parametric binary search from 10^-6 to 10^6; on unit-norm embeddings the optimum
 * lies well inside this narrower grid, and half-decade steps change held-out loss little.
 */
export const DEFAULT_C_GRID: readonly number[] = Array.from({ length: 13 }, (_, i) => 10 ** (-2 + i / 2));
export const DEFAULT_CV_FOLDS = 5;
/**
 * CV fits stop at max |∂(F/n)| ≤ min(1e-4, 1e-2 × its value at the warm start): the held-out losses
 * they give agreed to 4 digits with 1e-6 / 1e-3 at 2–3× less cost (200 classes × 16 shots × 512).
 * Looser is not safe: 3e-2 and 1e-1 were 1.3× and 1.75× faster there, but on separable data, where
 * the held-out loss at large C is ~1e-3, they left it 7% and 15% above its optimum. The
 * relative part matters: warm-started at a larger C, the starting gradient is only the penalty's change,
 * below any fixed tolerance at large C, and an absolute tolerance alone left those fits where they
 * started (the same held-out loss at every larger C).
 */
export const DEFAULT_CV_TOL = 1e-4;
export const DEFAULT_CV_REL_TOL = 1e-2;

/**
 * Fold index (0..folds−1) of each row, stratified: each class's rows are shuffled (mulberry32, `seed`)
 * and dealt round-robin, continuing from where the previous class stopped so folds differ in size by at
 * most one. Every class with ≥ folds rows is then in every fold.
 */
export function stratifiedFolds(y: Int32Array, classes: number, folds: number, seed: number): Int32Array {
  const next = mulberry32(seed);
  const out = new Int32Array(y.length);
  let turn = 0;
  for (let c = 0; c < classes; c++) {
    const rows: number[] = [];
    y.forEach((label, i) => {
      if (label === c) rows.push(i);
    });
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
    for (const i of rows) out[i] = turn++ % folds;
  }
  return out;
}

export interface CrossValidation {
  /** The C with the lowest held-out log-loss (the smaller C on a tie). */
  c: number;
  folds: number;
  /** How many of the folds were held out and scored (the first ones): see DEFAULT_CV_MIN_HELD_OUT. */
  scoredFolds: number;
  seed: number;
  /** The C values tried, ascending, and the pooled held-out mean log-loss of each. */
  tried: number[];
  losses: number[];
}

export interface CrossValidationOptions {
  grid?: readonly number[];
  folds?: number;
  seed?: number;
  tol?: number;
  relTol?: number;
  maxIter?: number;
  minHeldOut?: number;
}

/**
 * Folds are held out in order until at least this many rows have been scored (all folds when the data
 * has fewer rows). The pooled log-loss of 2,000 rows has a standard error near 1% of its value on
 * CLIP-like data, well under the gaps between half-decade C values, so at 16 shots × 1000 classes one
 * fold of five (3,200 rows) decides C at a fifth of the cost; on few-shot data of a few hundred rows
 * every fold still counts, as the estimate needs them.
 */
export const DEFAULT_CV_MIN_HELD_OUT = 2000;

/**
 * Held-out mean log-loss for C on the grid, pooled over stratified folds (held out in order until
 * `minHeldOut` rows are scored). Coarse to fine: first every other grid point upwards from the
 * smallest (decades, on the default grid), each fold's fit warm-started from its previous C, stopping at
 * the first point whose loss is above the best so far (held-out loss is unimodal in C in practice, and
 * the weakly penalised end is the slowest to fit); then the best point's untried neighbours,
 * warm-started from the best. Log-loss rather than CLIP's accuracy: with few shots per class accuracy
 * ties over most of the grid, while log-loss (scikit-learn's scoring="neg_log_loss") still separates the
 * values and rewards calibrated probabilities, which the MSP score reads. Fits stop at DEFAULT_CV_TOL and
 * DEFAULT_CV_REL_TOL unless told otherwise, in float32 products. Requires `folds` ≤ the smallest class.
 */
export async function crossValidateC(data: LogisticData, opts: CrossValidationOptions = {}): Promise<CrossValidation> {
  const grid = [...(opts.grid ?? DEFAULT_C_GRID)].sort((a, b) => a - b);
  const folds = opts.folds ?? DEFAULT_CV_FOLDS;
  const seed = opts.seed ?? 0;
  const assignment = stratifiedFolds(data.y, data.classes, folds, seed);
  const splits: { train: LogisticData; test: LogisticData }[] = [];
  let heldOut = 0;
  for (let f = 0; f < folds && heldOut < (opts.minHeldOut ?? DEFAULT_CV_MIN_HELD_OUT); f++) {
    const train: number[] = [];
    const test: number[] = [];
    assignment.forEach((a, i) => (a === f ? test : train).push(i));
    splits.push({ train: subset(data, train), test: subset(data, test) });
    heldOut += test.length;
  }
  const fitted = new Map<number, { loss: number; models: LogisticModel[] }>();
  const fitAt = async (g: number, from: readonly (LogisticModel | undefined)[]): Promise<number> => {
    let total = 0;
    const models: LogisticModel[] = [];
    for (const [f, split] of splits.entries()) {
      const init = from[f];
      const fit = await fitLogistic(split.train, {
        c: grid[g]!,
        tol: opts.tol ?? DEFAULT_CV_TOL,
        relTol: opts.relTol ?? DEFAULT_CV_REL_TOL,
        certify: false,
        ...(opts.maxIter === undefined ? {} : { maxIter: opts.maxIter }),
        ...(init ? { init } : {}),
      });
      models.push(fit);
      total += (await meanLogLoss(split.test, fit)) * split.test.n;
    }
    const loss = total / heldOut;
    fitted.set(g, { loss, models });
    return loss;
  };
  let best = 0;
  let warm: readonly (LogisticModel | undefined)[] = [];
  for (let g = 0; g < grid.length; g += 2) {
    const loss = await fitAt(g, warm);
    warm = fitted.get(g)!.models;
    if (loss < fitted.get(best)!.loss) best = g;
    else if (g !== best) break;
  }
  const coarseBest = best;
  for (const g of [coarseBest - 1, coarseBest + 1]) {
    if (g < 0 || g >= grid.length || fitted.has(g)) continue;
    const loss = await fitAt(g, fitted.get(coarseBest)!.models);
    if (loss < fitted.get(best)!.loss || (loss === fitted.get(best)!.loss && g < best)) best = g;
  }
  const order = [...fitted.keys()].sort((a, b) => a - b);
  return {
    c: grid[best]!,
    folds,
    scoredFolds: splits.length,
    seed,
    tried: order.map((g) => grid[g]!),
    losses: order.map((g) => fitted.get(g)!.loss),
  };
}

/** The rows `rows` of `data` as a data set of their own (same classes). */
function subset(data: LogisticData, rows: readonly number[]): LogisticData {
  const x = new Float64Array(rows.length * data.d);
  const y = new Int32Array(rows.length);
  rows.forEach((i, r) => {
    x.set(data.x.subarray(i * data.d, (i + 1) * data.d), r * data.d);
    y[r] = data.y[i]!;
  });
  return { x, n: rows.length, d: data.d, y, classes: data.classes };
}
