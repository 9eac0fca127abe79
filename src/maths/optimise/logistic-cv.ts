/**
 * C for the logistic regression of logistic.ts, chosen by stratified, seeded k-fold cross-validation on
 * held-out log-loss. Its own module because choosing C costs many fits and has its own tolerances and
 * fold split, none of which a single fit needs.
 */
import { fitLogistic, meanLogLoss } from "./logistic.js";
import type { LogisticData, LogisticModel } from "./logistic.js";
import { mulberry32 } from "../random.js";

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
