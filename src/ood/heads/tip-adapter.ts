/**
 * Tip-Adapter and Tip-Adapter-F (Zhang et al., "Tip-Adapter: Training-free Adaption of CLIP for Few-shot
 * Classification", ECCV 2022; official code gaopengcuhk/Tip-Adapter): CLIP's zero-shot classifier plus a
 * key–value cache of the few-shot embeddings. For a unit embedding f, with W_c the K unit class text
 * embeddings, F the N cache keys and L their one-hot labels:
 *   A = exp(−β(1 − f·Fᵀ)),   logits = 100·f·W_cᵀ + α·A·L.
 * Tip-Adapter keeps F = the unit few-shot embeddings; Tip-Adapter-F fine-tunes F by cross-entropy on
 * these logits. The label is the argmax of the logits and the OOD score is read from them (heads.ts).
 */
import { CLIP_LOGIT_SCALE } from "../../maths/scores.js";
import { adamState, adamStep, cosineRate, epochBatches } from "../../maths/optimise/optim.js";
import { tipBatchKernel } from "../../maths/kernels/tip-adapter-kernel.js";
import { normalizeRows } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";
import { scoreRows, unitQuery } from "../embedding-input.js";
import { checkCount, checkHeadScore, checkPositive, checkTextHeadData, crossEntropyGrad, DEFAULT_HEAD_SCORE, readLogits, withOutlierText } from "./heads.js";
import type { HeadScore } from "./heads.js";

/**
 * α (residual ratio) and β (sharpness) before any search: the official code's `init_alpha` and
 * `init_beta` for ImageNet (configs/imagenet.yaml). The official code then grid-searches both on a
 * validation split, which a few-shot fit does not have (docs/OOD-METHODS.md says why no search is done).
 */
export const TIP_DEFAULT_ALPHA = 1.17;
export const TIP_DEFAULT_BETA = 1;
/** Tip-Adapter-F's training as in the official main.py / configs: 20 epochs, AdamW lr 1e-3, eps 1e-4, batch 256, cosine schedule per step. */
export const TIP_F_DEFAULTS = { epochs: 20, lr: 1e-3, eps: 1e-4, batchSize: 256, weightDecay: 0.01, seed: 0 } as const;

export interface TipAdapterTraining {
  epochs: number;
  lr: number;
  eps: number;
  batchSize: number;
  /** AdamW's decoupled weight decay: 0.01, torch.optim.AdamW's default, which the official code keeps. */
  weightDecay: number;
  seed: number;
  /** Mean training cross-entropy of each epoch (over its mini-batches, at the keys each batch saw). */
  losses: number[];
}

export interface TipAdapterState {
  kind: "tip-adapter" | "tip-adapter-f";
  dim: number;
  classes: number;
  /**
   * classes × dim unit class text embeddings W_c (the zero-shot classifier), row-major: a copy of the
   * detector's class features, so the head scores on its own and no class edit can desynchronise them.
   */
  text: Float32Array;
  /** N × dim cache keys F: the unit few-shot embeddings, or after fine-tuning the trained keys (not renormalised, as the official adapter). */
  keys: Float32Array;
  /** The class of each key: the one-hot values L as indices. */
  keyLabels: number[];
  alpha: number;
  beta: number;
  score: HeadScore;
  /** tip-adapter-f: how the keys were trained; null for tip-adapter. */
  training: TipAdapterTraining | null;
  /** Negative-label classes after the `classes` in `text` (synthetic outliers); 0 or absent without. */
  outlierClasses?: number;
}

export interface TipAdapterOptions {
  alpha?: number;
  beta?: number;
  score?: HeadScore;
  /** Synthetic outliers: unit negative-label text embeddings, each appended as an outlier class (heads.ts). */
  negatives?: Matrix;
}

export interface TipAdapterFOptions extends TipAdapterOptions {
  epochs?: number;
  lr?: number;
  batchSize?: number;
  seed?: number;
}

/** The parts of a cache model the logits read; keys in float64 while training. */
export interface TipCache {
  dim: number;
  classes: number;
  text: ArrayLike<number>;
  keys: ArrayLike<number>;
  keyLabels: ArrayLike<number>;
  alpha: number;
  beta: number;
}

/**
 * The blended logits z of the unit vector at `v[off…]`, and the affinities A_n = exp(−β(1 − f·F_n)) in
 * `a` (length N) for the gradient.
 */
function tipLogitsInto(c: TipCache, v: ArrayLike<number>, off: number, z: Float64Array, a: Float64Array): void {
  const { dim: d, keys, keyLabels } = c;
  for (let k = 0; k < z.length; k++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += v[off + j]! * c.text[k * d + j]!;
    z[k] = CLIP_LOGIT_SCALE * s;
  }
  for (let n = 0; n < keyLabels.length; n++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += v[off + j]! * keys[n * d + j]!;
    a[n] = Math.exp(-c.beta * (1 - s));
    z[keyLabels[n]!]! += c.alpha * a[n]!;
  }
}

function checkAlphaBeta(alpha: number, beta: number, method: string): void {
  checkPositive(alpha, "α", method, `leave it out for ${TIP_DEFAULT_ALPHA}; 0 would be zero-shot CLIP alone`, true);
  checkPositive(beta, "β", method, `leave it out for ${TIP_DEFAULT_BETA}; larger makes the cache sharper`, true);
}

/** The training-free cache model: keys = the unit few-shot embeddings, values = their labels. */
export function fitTipAdapter(x: Matrix, labels: Int32Array, text: Matrix, opts: TipAdapterOptions = {}): TipAdapterState {
  return cacheModel("tip-adapter", x, labels, text, opts);
}

function cacheModel(kind: TipAdapterState["kind"], x: Matrix, labels: Int32Array, text: Matrix, opts: TipAdapterOptions): TipAdapterState {
  checkTextHeadData(x, labels, text, kind);
  const classifier = withOutlierText(text, opts.negatives, kind);
  const alpha = opts.alpha ?? TIP_DEFAULT_ALPHA;
  const beta = opts.beta ?? TIP_DEFAULT_BETA;
  checkAlphaBeta(alpha, beta, kind);
  const score = opts.score ?? DEFAULT_HEAD_SCORE;
  checkHeadScore(score, kind);
  return {
    kind,
    dim: x.cols,
    classes: text.rows,
    text: normalizeRows(classifier).data,
    keys: normalizeRows(x).data,
    keyLabels: Array.from(labels),
    alpha,
    beta,
    score,
    training: null,
    ...(classifier.rows > text.rows ? { outlierClasses: classifier.rows - text.rows } : {}),
  };
}

/**
 * Mean cross-entropy of the blended logits over `rows` of the unit embeddings `x` (n × dim, float64),
 * and its gradient with respect to the keys written into `grad` (N × dim). With g = ∂CE/∂z (softmax − one-hot,
 * over the batch size) and A_in the affinity of row i to key n:
 *   ∂L/∂F_n = Σ_i α·β·A_in·g_i[label_n]·f_i,   since ∂A_in/∂F_n = β·A_in·f_i.
 * The scalar reference the onnxruntime kernel (tip-adapter-kernel.ts) is tested against.
 */
export function tipAdapterFLoss(c: TipCache, x: Float64Array, y: Int32Array, rows: ArrayLike<number>, grad: Float64Array): number {
  const d = c.dim;
  const z = new Float64Array(c.text.length / d);
  const dz = new Float64Array(z.length);
  const a = new Float64Array(c.keyLabels.length);
  grad.fill(0);
  let loss = 0;
  const weight = 1 / rows.length;
  for (let r = 0; r < rows.length; r++) {
    const i = rows[r]!;
    tipLogitsInto(c, x, i * d, z, a);
    loss += crossEntropyGrad(z, y[i]!, weight, dz);
    for (let n = 0; n < a.length; n++) {
      const coef = c.alpha * c.beta * a[n]! * dz[c.keyLabels[n]!]!;
      if (coef === 0) continue;
      for (let j = 0; j < d; j++) grad[n * d + j]! += coef * x[i * d + j]!;
    }
  }
  return loss * weight;
}

/**
 * Tip-Adapter-F: the cache model with its keys fine-tuned by AdamW on the cross-entropy of the blended
 * logits (α, β fixed), mini-batches in a seeded order, the learning rate annealed by a cosine over all
 * steps. Unlike the paper the training embeddings are the cache's own, with no augmentation: each shot
 * starts with affinity 1 to its own key, so the keys move less than they would on augmented views. The
 * batches' products run on onnxruntime in float32 (tip-adapter-kernel.ts), the keys train in float32
 * as in the official PyTorch code; Adam's moments are float64.
 */
export async function fitTipAdapterF(x: Matrix, labels: Int32Array, text: Matrix, opts: TipAdapterFOptions = {}): Promise<TipAdapterState> {
  const state = cacheModel("tip-adapter-f", x, labels, text, opts);
  const epochs = opts.epochs ?? TIP_F_DEFAULTS.epochs;
  checkCount(epochs, "epochs", "tip-adapter-f", TIP_F_DEFAULTS.epochs);
  const lr = opts.lr ?? TIP_F_DEFAULTS.lr;
  checkPositive(lr, "the learning rate", "tip-adapter-f", `leave it out for ${TIP_F_DEFAULTS.lr}`);
  const batchSize = opts.batchSize ?? TIP_F_DEFAULTS.batchSize;
  checkCount(batchSize, "the batch size", "tip-adapter-f", TIP_F_DEFAULTS.batchSize);
  const seed = opts.seed ?? TIP_F_DEFAULTS.seed;
  const { eps, weightDecay } = TIP_F_DEFAULTS;

  const kernel = tipBatchKernel({ ...state, x: state.keys, y: state.keyLabels });
  const keys = Float32Array.from(state.keys);
  const grad = new Float32Array(keys.length);
  const adam = adamState(keys.length);
  const perEpoch = Math.ceil(x.rows / batchSize);
  const losses = new Float64Array(epochs);
  for (const batch of epochBatches(x.rows, batchSize, epochs, seed)) {
    losses[batch.epoch]! += (await kernel.run(keys, batch.rows, grad)) / perEpoch;
    adamStep(keys, grad, adam, cosineRate(lr, batch.step, epochs * perEpoch), { eps, weightDecay });
  }
  return { ...state, keys, training: { epochs, lr, eps, batchSize, weightDecay, seed, losses: Array.from(losses) } };
}

/** The blended logits of the unit-normalised embedding; `what` names it in errors. */
export function tipAdapterLogits(state: TipAdapterState, embedding: Float32Array, what = "embedding"): Float64Array {
  const z = new Float64Array(state.text.length / state.dim);
  tipLogitsInto(state, unitQuery(state.dim, embedding, what), 0, z, new Float64Array(state.keyLabels.length));
  return z;
}

/** The class with the largest blended logit and the OOD score of the embedding. */
export function tipAdapterPredict(state: TipAdapterState, embedding: Float32Array, what = "embedding"): { index: number; score: number } {
  return readLogits(tipAdapterLogits(state, embedding, what), state.score, state.classes);
}

export function tipAdapterScores(state: TipAdapterState, x: Matrix): Float32Array {
  return scoreRows(state.dim, x, (e, what) => tipAdapterPredict(state, e, what).score);
}
