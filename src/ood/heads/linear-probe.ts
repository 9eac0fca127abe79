/**
 * The linear-probe detector (issue 14): multinomial logistic regression on L2-normalised image
 * embeddings, as CLIP's linear-probe evaluation (Radford et al. 2021, §3.2 and appendix A.3), with C
 * chosen by stratified, seeded cross-validation and a refit on all data. It classifies by the largest
 * logit and scores OOD from the logits z = W·v + b: MSP (max softmax), max-logit, or energy
 * (logsumexp), each larger = more in-distribution (heads.ts). The maths is in src/maths/optimise/logistic.ts and
 * logistic-cv.ts.
 */
import { ClipOodError } from "../../errors.js";
import { fitLogistic, logitsInto } from "../../maths/optimise/logistic.js";
import { crossValidateC, DEFAULT_C_GRID, DEFAULT_CV_FOLDS } from "../../maths/optimise/logistic-cv.js";
import { normalizeRows } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";
import { checkFitData, classCounts, scoreRows, unitQuery } from "../embedding-input.js";
import { checkHeadScore, DEFAULT_HEAD_SCORE, readLogits, withOutlierRows } from "./heads.js";
import type { HeadScore } from "./heads.js";

export interface LinearProbeState {
  kind: "linear-probe";
  dim: number;
  classes: number;
  /** (classes + outlierClasses) × dim, row-major. */
  weights: Float32Array;
  /** classes + outlierClasses, summing to 0. */
  intercepts: Float32Array;
  /** 1 when the probe was trained with a synthetic outlier class (the last logit), else 0 or absent. */
  outlierClasses?: number;
  /** The inverse regularisation strength used for the final fit. */
  c: number;
  score: HeadScore;
  /** How C was chosen: null when it was given. */
  cv: { folds: number; scoredFolds: number; seed: number; tried: number[]; losses: number[] } | null;
}

export interface LinearProbeOptions {
  /** Fix C (> 0) instead of cross-validating it. */
  c?: number;
  score?: HeadScore;
  /** CV folds (default 5, lowered to the smallest class's size) and the seed of their split (0). */
  folds?: number;
  seed?: number;
  grid?: readonly number[];
  /** Number of classes; default max(label)+1. Every class needs a row. */
  classes?: number;
  /** Each class's name, for messages (else "class <index>"). */
  classNames?: readonly string[];
  /**
   * Synthetic outliers: unit embeddings (outlier images, negative-label texts) trained as one extra
   * class; the OOD score then weighs the in-distribution classes against it (heads.ts readLogits).
   */
  outliers?: Matrix;
}

const PROBE_HINT =
  'a probe needs labelled data of at least two classes: a folder per class, a list file with labels, or an embeddings file whose rows carry "label"; for a single pooled class use knn, mahalanobis or ocsvm';

export async function fitLinearProbe(x: Matrix, labels: Int32Array, opts: LinearProbeOptions = {}): Promise<LinearProbeState> {
  checkFitData(x, "linear-probe");
  if (labels.length !== x.rows) {
    throw new ClipOodError("INPUT", `linear-probe: ${labels.length} labels for ${x.rows} embeddings`, { hint: "pass one class index per embedding row" });
  }
  const score = opts.score ?? DEFAULT_HEAD_SCORE;
  checkHeadScore(score, "linear-probe");
  if (opts.c !== undefined && !(Number.isFinite(opts.c) && opts.c > 0)) {
    throw new ClipOodError("USAGE", `linear-probe: C must be a positive number, got ${opts.c}`, {
      hint: "leave it out to choose C by cross-validation, or pass e.g. 10 (larger = weaker penalty)",
    });
  }
  if (x.rows < 2) {
    throw new ClipOodError("INPUT", `linear-probe: ${x.rows} in-distribution embedding is not enough to fit a classifier`, { hint: PROBE_HINT });
  }
  // Before the per-class counts: unlabelled data pooled into class 0 is the usual cause, and "class 1 has
  // no embeddings" would hide it.
  if (new Set(labels).size < 2) throw new ClipOodError("INPUT", "linear-probe: the in-distribution data has one class, so there is nothing to discriminate", { hint: PROBE_HINT });
  const { classes } = classCounts(labels, opts.classes, "linear-probe");
  const outlierClasses = opts.outliers ? 1 : 0;
  const rows = opts.outliers ? withOutlierRows(x, labels, opts.outliers, classes, "linear-probe") : { x, labels };
  const { counts } = classCounts(rows.labels, classes + outlierClasses, "linear-probe");

  const xn = normalizeRows(rows.x);
  const data = { x: Float64Array.from(xn.data), n: xn.rows, d: xn.cols, y: rows.labels, classes: classes + outlierClasses };
  let c = opts.c;
  let cv: LinearProbeState["cv"] = null;
  if (c === undefined) {
    const smallest = Math.min(...counts);
    if (smallest < 2) {
      const k = counts.indexOf(smallest);
      const which = k === classes ? "the outlier class" : opts.classNames?.[k] !== undefined ? `class "${opts.classNames[k]}"` : `class ${k}`;
      throw new ClipOodError("INPUT", `linear-probe: ${which} has one embedding, too few to cross-validate C`, {
        hint: "give every class at least 2 images, or fix the regularisation with --probe-c (e.g. 10)",
      });
    }
    const folds = Math.min(opts.folds ?? DEFAULT_CV_FOLDS, smallest);
    if (!Number.isInteger(folds) || folds < 2) {
      throw new ClipOodError("USAGE", `linear-probe: folds must be an integer ≥ 2, got ${opts.folds}`, { hint: `leave it at ${DEFAULT_CV_FOLDS}` });
    }
    const chosen = await crossValidateC(data, { folds, seed: opts.seed ?? 0, grid: opts.grid ?? DEFAULT_C_GRID });
    c = chosen.c;
    cv = { folds, scoredFolds: chosen.scoredFolds, seed: chosen.seed, tried: chosen.tried, losses: chosen.losses };
  }
  const fit = await fitLogistic(data, { c });
  return {
    kind: "linear-probe",
    dim: xn.cols,
    classes,
    weights: Float32Array.from(fit.weights),
    intercepts: Float32Array.from(fit.intercepts),
    c,
    score,
    cv,
    ...(outlierClasses > 0 ? { outlierClasses } : {}),
  };
}

/** The class with the largest logit and the OOD score of the unit-normalised embedding. */
export function linearProbePredict(state: LinearProbeState, embedding: Float32Array, what = "embedding"): { index: number; score: number } {
  const v = unitQuery(state.dim, embedding, what);
  const z = new Float64Array(state.classes + (state.outlierClasses ?? 0));
  logitsInto(state, state.dim, v, 0, z);
  return readLogits(z, state.score, state.classes);
}

export function linearProbeScore(state: LinearProbeState, embedding: Float32Array, what = "embedding"): number {
  return linearProbePredict(state, embedding, what).score;
}

export function linearProbeScores(state: LinearProbeState, x: Matrix): Float32Array {
  return scoreRows(state.dim, x, (e, what) => linearProbeScore(state, e, what));
}
