/**
 * What every learned few-shot head (linear-probe, tip-adapter, tip-adapter-f, taskres) shares: it turns
 * an embedding into K class logits, takes the largest as its label, and reads its OOD score from the
 * same logits (`--head-score`); and the checks on labelled fitting data for the heads built on CLIP's
 * zero-shot text classifier. Pure: typed arrays in, numbers out.
 */
import { ClipOodError } from "../../errors.js";
import { logSumExp } from "../../maths/optimise/logistic.js";
import type { Matrix } from "../../maths/vectors.js";
import { concatRows, row } from "../../maths/vectors.js";
import { checkFinite, checkFitData, classCounts } from "../embedding-input.js";

export const HEAD_SCORES = ["msp", "maxlogit", "energy"] as const;
export type HeadScore = (typeof HEAD_SCORES)[number];
/** MSP: the head's own class probability, the baseline score of Hendrycks & Gimpel. */
export const DEFAULT_HEAD_SCORE: HeadScore = "msp";

export function checkHeadScore(score: HeadScore, method: string): void {
  if (!(HEAD_SCORES as readonly string[]).includes(score)) {
    throw new ClipOodError("USAGE", `${method}: unknown score "${String(score)}"`, { hint: `use one of ${HEAD_SCORES.join(", ")}` });
  }
}

/**
 * The label (argmax, the first on a tie) and OOD score of logits z, larger = more in-distribution:
 * msp = max_k softmax(z)_k, maxlogit = max_k z_k, energy = log Σ_k e^{z_k}.
 *
 * With synthetic outlier classes (the logits past the first `idClasses`, see `withOutliers`), the label
 * is the best in-distribution class and each score weighs it against the outliers: msp is its
 * probability under the softmax over all classes, maxlogit its logit minus the largest outlier logit,
 * and energy log Σ_{k<K} softmax(z)_k, the log-probability of being in any in-distribution class.
 */
export function readLogits(z: Float64Array, score: HeadScore, idClasses = z.length): { index: number; score: number } {
  let index = 0;
  for (let k = 1; k < idClasses; k++) if (z[k]! > z[index]!) index = k;
  const max = z[index]!;
  if (idClasses === z.length) {
    const lse = logSumExp(z);
    return { index, score: score === "maxlogit" ? max : score === "energy" ? lse : Math.exp(max - lse) };
  }
  const all = logSumExp(z);
  if (score === "msp") return { index, score: Math.exp(max - all) };
  if (score === "energy") return { index, score: logSumExp(z.subarray(0, idClasses)) - all };
  let outlier = -Infinity;
  for (let k = idClasses; k < z.length; k++) if (z[k]! > outlier) outlier = z[k]!;
  return { index, score: max - outlier };
}

/**
 * Synthetic outliers for a head (issue 14): `rows` (unit outlier embeddings — images the user knows to be
 * out of distribution, and/or NegLabel's negative-label text embeddings) appended to the fitting data
 * as one extra class with index `classes`, so a trained head learns to put them there.
 */
export function withOutlierRows(x: Matrix, labels: Int32Array, rows: Matrix, classes: number, method: string): { x: Matrix; labels: Int32Array } {
  if (rows.cols !== x.cols) {
    throw new ClipOodError("INPUT", `${method}: the outlier embeddings have ${rows.cols} dimensions, the in-distribution ones ${x.cols}`, { hint: "make both with the same model" });
  }
  if (rows.rows === 0) throw new ClipOodError("INPUT", `${method}: the synthetic outlier set is empty`, { hint: "give outlier images or negative labels, or leave the outliers out" });
  checkFinite(rows, `${method}: outlier embedding`);
  const y = new Int32Array(x.rows + rows.rows).fill(classes);
  y.set(labels);
  return { x: concatRows(x, rows), labels: y };
}

/**
 * The zero-shot classifier of a text-based head with outlier classes: the K class text embeddings
 * followed by the M negative-label text embeddings, each negative its own class, as NegLabel scores
 * against them.
 */
export function withOutlierText(text: Matrix, negatives: Matrix | undefined, method: string): Matrix {
  if (!negatives || negatives.rows === 0) return text;
  if (negatives.cols !== text.cols) {
    throw new ClipOodError("INPUT", `${method}: the negative-label embeddings have ${negatives.cols} dimensions, the class text embeddings ${text.cols}`, { hint: "encode both with the same model" });
  }
  checkFinite(negatives, `${method}: negative-label embedding`);
  return concatRows(text, negatives);
}

/**
 * Cross-entropy −log softmax(z)_y, and ∂/∂z = softmax(z) − e_y scaled by `weight` (1/batch size for a
 * mean loss) written into `dz`.
 */
export function crossEntropyGrad(z: Float64Array, y: number, weight: number, dz: Float64Array): number {
  const lse = logSumExp(z);
  for (let k = 0; k < z.length; k++) dz[k] = weight * (Math.exp(z[k]! - lse) - (k === y ? 1 : 0));
  return lse - z[y]!;
}

/** Positive-number setting check shared by the heads' hyperparameters. */
export function checkPositive(value: number, name: string, method: string, hint: string, allowZero = false): void {
  if (!(Number.isFinite(value) && (allowZero ? value >= 0 : value > 0))) {
    throw new ClipOodError("USAGE", `${method}: ${name} must be ${allowZero ? "a number ≥ 0" : "a positive number"}, got ${value}`, { hint });
  }
}

export function checkCount(value: number, name: string, method: string, usual: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new ClipOodError("USAGE", `${method}: ${name} must be a positive integer, got ${value}`, { hint: `leave it out for ${usual}` });
  }
}

const TEXT_HEAD_HINT =
  'these heads start from CLIP\'s zero-shot classifier, so they need labelled images of at least two named classes: a folder per class, a labelled list, or an embeddings file whose rows carry "label"; for a single pooled class of normal images use knn, mahalanobis or ocsvm';

/**
 * Checks the fitting data of a head built on the zero-shot text classifier `text` (K × D unit class
 * embeddings): finite embeddings of the text's dimension, one label in 0..K−1 per row, ≥ 2 classes
 * present and every class with a row (a class without shots has nothing to adapt to). Returns the
 * per-class row counts.
 */
export function checkTextHeadData(x: Matrix, labels: Int32Array, text: Matrix, method: string): Float64Array {
  checkFitData(x, method);
  if (labels.length !== x.rows) {
    throw new ClipOodError("INPUT", `${method}: ${labels.length} labels for ${x.rows} embeddings`, { hint: "pass one class index per embedding row" });
  }
  if (text.cols !== x.cols) {
    throw new ClipOodError("INPUT", `${method}: the embeddings have ${x.cols} dimensions, the class text embeddings ${text.cols}`, {
      hint: "fit on image embeddings made by the model that encoded the class names",
    });
  }
  for (let k = 0; k < text.rows; k++) {
    if (!row(text, k).every(Number.isFinite)) {
      throw new ClipOodError("INPUT", `${method}: the text embedding of class ${k} has a non-finite value`, { hint: "encode the class names again (a broken text export?)" });
    }
  }
  // Before the per-class counts: unlabelled data pooled into one class is the usual cause, and "class 1
  // has no embeddings" would hide it.
  if (text.rows < 2 || new Set(labels).size < 2) {
    throw new ClipOodError("INPUT", `${method}: the in-distribution data has one class, so there is nothing to discriminate`, { hint: TEXT_HEAD_HINT });
  }
  return classCounts(labels, text.rows, method).counts;
}
