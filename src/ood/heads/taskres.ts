/**
 * TaskRes (Yu et al., "Task Residual for Tuning Vision-Language Models", CVPR 2023; official code
 * geekyutao/TaskRes, trainers/taskres.py): the zero-shot class text embeddings t_k stay frozen as a
 * prior and a residual x_k is learned beside them,
 *   t'_k = t_k + α·x_k,   logits_k = 100·cos(f, t'_k)
 * (the official forward renormalises t' before the product), x starting at 0 so training starts from
 * zero-shot CLIP. x is trained by Adam on the cross-entropy of these logits plus (λ/2)‖x‖². The label is
 * the argmax of the logits and the OOD score is read from them (heads.ts).
 */
import { adamState, adamStep, cosineRate, epochBatches } from "../../maths/optimise/optim.js";
import { taskResBatchKernel } from "../../maths/kernels/taskres-kernel.js";
import { CLIP_LOGIT_SCALE } from "../../maths/scores.js";
import { normalizeRows } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";
import { scoreRows, unitQuery } from "../embedding-input.js";
import { checkCount, checkHeadScore, checkPositive, checkTextHeadData, crossEntropyGrad, DEFAULT_HEAD_SCORE, readLogits, withOutlierText } from "./heads.js";
import type { HeadScore } from "./heads.js";

/**
 * The official settings (train_regular.sh and configs/trainers/TaskRes): residual scale α = 0.5 (1.0 only
 * for Flowers102), Adam at lr 2e-3 (2e-4 for ImageNet), batch 256, 100 epochs for 1–4 shots per class and
 * 200 for 8 and 16, a cosine schedule per epoch after one warm-up epoch at 1e-5, and Dassl's default
 * weight decay 5e-4, which torch's Adam adds to the gradient: the L2 penalty (λ/2)‖x‖² with λ = 5e-4.
 */
export const TASKRES_DEFAULTS = { alpha: 0.5, lr: 2e-3, batchSize: 256, shortEpochs: 100, longEpochs: 200, warmupLr: 1e-5, l2: 5e-4, seed: 0 } as const;

/** 100 epochs when the largest class has ≤ 4 shots, else 200, as the official scripts (1/2/4 vs 8/16 shots). */
export function taskResDefaultEpochs(counts: ArrayLike<number>): number {
  return Math.max(...Array.from(counts)) <= 4 ? TASKRES_DEFAULTS.shortEpochs : TASKRES_DEFAULTS.longEpochs;
}

export interface TaskResTraining {
  epochs: number;
  lr: number;
  batchSize: number;
  seed: number;
  /** λ of the (λ/2)‖x‖² penalty. */
  l2: number;
  /** Mean training loss (cross-entropy + penalty) of each epoch. */
  losses: number[];
}

export interface TaskResState {
  kind: "taskres";
  dim: number;
  classes: number;
  alpha: number;
  /** classes × dim: the unit adapted classifier t'_k/‖t'_k‖ the logits use, row-major. */
  weights: Float32Array;
  /** classes × dim: the learned residuals x (kept for the record: how far training moved from the prior). */
  residuals: Float32Array;
  score: HeadScore;
  training: TaskResTraining;
  /** Negative-label classes after the `classes` in weights and residuals (synthetic outliers); 0 or absent without. */
  outlierClasses?: number;
}

export interface TaskResOptions {
  alpha?: number;
  epochs?: number;
  lr?: number;
  batchSize?: number;
  seed?: number;
  l2?: number;
  score?: HeadScore;
  /** Synthetic outliers: unit negative-label text embeddings, each an outlier class with its own residual (heads.ts). */
  negatives?: Matrix;
}

/** The frozen parts the loss reads: the unit text embeddings t (float64), α and λ. */
export interface TaskResPrior {
  dim: number;
  classes: number;
  text: Float64Array;
  alpha: number;
  l2: number;
}

/** u_k = t'_k/‖t'_k‖ into `u`, and ‖t'_k‖ into `norms`; a zero t'_k stays zero. */
function adaptedInto(p: TaskResPrior, residual: Float64Array, u: Float64Array, norms: Float64Array): void {
  const d = p.dim;
  for (let k = 0; k < p.classes; k++) {
    let ss = 0;
    for (let j = 0; j < d; j++) {
      const t = p.text[k * d + j]! + p.alpha * residual[k * d + j]!;
      u[k * d + j] = t;
      ss += t * t;
    }
    const n = Math.sqrt(ss);
    norms[k] = n;
    if (n > 0) for (let j = 0; j < d; j++) u[k * d + j]! /= n;
  }
}

/**
 * Mean cross-entropy over `rows` of the unit embeddings `x` (float64) plus (λ/2)‖x_res‖², and its
 * gradient with respect to the residuals in `grad`. With g = ∂CE/∂z, G_k = Σ_i 100·g_ik·f_i = ∂L/∂u_k:
 *   ∂L/∂x_k = α·(G_k − (G_k·u_k)·u_k)/‖t'_k‖ + λ·x_k,
 * the normalisation's Jacobian (I − u_k u_kᵀ)/‖t'_k‖. The scalar reference: training runs the whole step
 * on onnxruntime (taskres-kernel.ts), which the tests check against this.
 */
export function taskResLoss(p: TaskResPrior, residual: Float64Array, x: Float64Array, y: Int32Array, rows: ArrayLike<number>, grad: Float64Array): number {
  const { dim: d, classes: k } = p;
  const u = new Float64Array(k * d);
  const norms = new Float64Array(k);
  adaptedInto(p, residual, u, norms);
  const z = new Float64Array(k);
  const dz = new Float64Array(k);
  const g = new Float64Array(k * d);
  const weight = 1 / rows.length;
  let loss = 0;
  for (let r = 0; r < rows.length; r++) {
    const off = rows[r]! * d;
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += x[off + j]! * u[c * d + j]!;
      z[c] = CLIP_LOGIT_SCALE * s;
    }
    loss += crossEntropyGrad(z, y[rows[r]!]!, weight, dz);
    for (let c = 0; c < k; c++) {
      const coef = CLIP_LOGIT_SCALE * dz[c]!;
      for (let j = 0; j < d; j++) g[c * d + j]! += coef * x[off + j]!;
    }
  }
  return loss * weight + residualGradient(p, residual, u, norms, g, grad);
}

/** ∂L/∂x from G = ∂CE/∂u (see taskResLoss) into `grad`; returns the penalty (λ/2)‖x‖². */
function residualGradient(p: TaskResPrior, residual: Float64Array, u: Float64Array, norms: Float64Array, g: Float64Array, grad: Float64Array): number {
  const { dim: d, classes: k } = p;
  let sq = 0;
  for (let c = 0; c < k; c++) {
    let gu = 0;
    for (let j = 0; j < d; j++) gu += g[c * d + j]! * u[c * d + j]!;
    const scale = norms[c]! > 0 ? p.alpha / norms[c]! : 0;
    for (let j = 0; j < d; j++) {
      const i = c * d + j;
      grad[i] = scale * (g[i]! - gu * u[i]!) + p.l2 * residual[i]!;
      sq += residual[i]! * residual[i]!;
    }
  }
  return (p.l2 / 2) * sq;
}

export async function fitTaskRes(x: Matrix, labels: Int32Array, text: Matrix, opts: TaskResOptions = {}): Promise<TaskResState> {
  const counts = checkTextHeadData(x, labels, text, "taskres");
  const alpha = opts.alpha ?? TASKRES_DEFAULTS.alpha;
  checkPositive(alpha, "α", "taskres", `leave it out for ${TASKRES_DEFAULTS.alpha}, the official residual scale`);
  const epochs = opts.epochs ?? taskResDefaultEpochs(counts);
  checkCount(epochs, "epochs", "taskres", taskResDefaultEpochs(counts));
  const lr = opts.lr ?? TASKRES_DEFAULTS.lr;
  checkPositive(lr, "the learning rate", "taskres", `leave it out for ${TASKRES_DEFAULTS.lr}`);
  const batchSize = opts.batchSize ?? TASKRES_DEFAULTS.batchSize;
  checkCount(batchSize, "the batch size", "taskres", TASKRES_DEFAULTS.batchSize);
  const l2 = opts.l2 ?? TASKRES_DEFAULTS.l2;
  checkPositive(l2, "the L2 penalty", "taskres", `leave it out for ${TASKRES_DEFAULTS.l2}`, true);
  const score = opts.score ?? DEFAULT_HEAD_SCORE;
  checkHeadScore(score, "taskres");
  const seed = opts.seed ?? TASKRES_DEFAULTS.seed;

  const classifier = withOutlierText(text, opts.negatives, "taskres");
  const prior: TaskResPrior = { dim: x.cols, classes: classifier.rows, text: Float64Array.from(normalizeRows(classifier).data), alpha, l2 };
  const kernel = taskResBatchKernel({ ...prior, x: normalizeRows(x).data, y: labels });
  // The residual trains in float32, as the official PyTorch code; Adam's moments are float64.
  const residual = new Float32Array(prior.text.length);
  const grad = new Float32Array(residual.length);
  const adam = adamState(residual.length);
  const perEpoch = Math.ceil(x.rows / batchSize);
  const losses = new Float64Array(epochs);
  for (const batch of epochBatches(x.rows, batchSize, epochs, seed)) {
    losses[batch.epoch]! += (await kernel.run(residual, batch.rows, grad)) / perEpoch;
    // Dassl's schedule, stepped per epoch: a constant warm-up epoch, then the cosine from lr.
    const rate = batch.epoch === 0 ? TASKRES_DEFAULTS.warmupLr : cosineRate(lr, batch.epoch - 1, epochs);
    adamStep(residual, grad, adam, rate);
  }
  const u = new Float64Array(residual.length);
  adaptedInto(prior, Float64Array.from(residual), u, new Float64Array(prior.classes));
  return {
    kind: "taskres",
    dim: prior.dim,
    classes: text.rows,
    ...(classifier.rows > text.rows ? { outlierClasses: classifier.rows - text.rows } : {}),
    alpha,
    weights: Float32Array.from(u),
    residuals: residual,
    score,
    training: { epochs, lr, batchSize, seed, l2, losses: Array.from(losses) },
  };
}

/** The class with the largest logit 100·cos(f, t'_k) and the OOD score of the embedding. */
export function taskResPredict(state: TaskResState, embedding: Float32Array, what = "embedding"): { index: number; score: number } {
  const v = unitQuery(state.dim, embedding, what);
  const { dim: d, weights } = state;
  const z = new Float64Array(weights.length / d);
  for (let k = 0; k < z.length; k++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += v[j]! * weights[k * d + j]!;
    z[k] = CLIP_LOGIT_SCALE * s;
  }
  return readLogits(z, state.score, state.classes);
}

export function taskResScores(state: TaskResState, x: Matrix): Float32Array {
  return scoreRows(state.dim, x, (e, what) => taskResPredict(state, e, what).score);
}
