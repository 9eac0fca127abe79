import { argmax, softmax, topK } from "./vectors.js";

/** CLIP's learned logit scale, exp(4.6052) ≈ 100 (MODEL-FOLDER.md): zero-shot probabilities are softmax(100·cos). */
export const CLIP_LOGIT_SCALE = 100;

/** MCM's default temperature: T = 1 on raw cosines (METHODS.md §2, the paper and its code). */
export const MCM_DEFAULT_TEMPERATURE = 1;

export interface ClassProbability {
  /** Index into the class list. */
  index: number;
  prob: number;
}

/**
 * How a model family turns cosines into class probabilities (OOD-METHODS.md, "Model families"):
 * CLIP was trained with a softmax over the batch, so its probabilities are softmax(scale · cos) over
 * the classes; SigLIP was trained with an independent sigmoid per image–text pair, so each class gets
 * σ(scale · cos + bias) on its own and the probabilities need not sum to 1.
 */
export type Scoring = { kind: "softmax"; logitScale: number } | { kind: "sigmoid"; logitScale: number; logitBias: number };

export const CLIP_SCORING: Scoring = { kind: "softmax", logitScale: CLIP_LOGIT_SCALE };

/** Logistic function, written so that neither tail overflows (exp of a large positive argument). */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** log(1 + e^z) without overflow for large z or loss of precision for very negative z. */
export function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/** Per-class sigmoid probabilities σ(scale · cos_k + bias) (SigLIP's zero-shot probabilities). */
export function sigmoidProbabilities(cosines: ArrayLike<number>, logitScale: number, logitBias: number): Float64Array {
  const p = new Float64Array(cosines.length);
  for (let i = 0; i < cosines.length; i++) p[i] = sigmoid(logitScale * cosines[i]! + logitBias);
  return p;
}

/** The family's class probabilities of one image, in class order. */
export function familyProbabilities(cosines: ArrayLike<number>, scoring: Scoring = CLIP_SCORING): Float64Array {
  return scoring.kind === "softmax" ? softmax(cosines, scoring.logitScale) : sigmoidProbabilities(cosines, scoring.logitScale, scoring.logitBias);
}

/**
 * Zero-shot class probabilities of one image, top k first: softmax(100 · cos) over the classes for
 * CLIP, independent σ(scale · cos + bias) per class for SigLIP.
 */
export function classProbabilities(cosines: ArrayLike<number>, k = cosines.length, scoring: Scoring = CLIP_SCORING): ClassProbability[] {
  const p = familyProbabilities(cosines, scoring);
  return topK(p, k).map((index) => ({ index, prob: p[index]! }));
}

/**
 * SigLIP's analogue of MCM: the largest per-class sigmoid probability max_k σ(scale · cos_k + bias),
 * the model's own estimate that the image matches its best class. σ and a positive scale are
 * monotone, so it ranks images exactly as max cos does; what it adds is a calibrated scale.
 */
export function maxSigmoidScore(cosines: ArrayLike<number>, logitScale: number, logitBias: number): McmResult {
  if (cosines.length === 0) throw new RangeError("the max-sigmoid score needs at least one class");
  const index = argmax(cosines);
  return { index, score: sigmoid(logitScale * cosines[index]! + logitBias) };
}

/**
 * JointEnergy (Wang et al., NeurIPS 2021, for multi-label sigmoid classifiers): Σ_k log(1 + e^{z_k})
 * with z_k = scale · cos_k + bias, the energy analogue for independent sigmoids, where logsumexp
 * (the softmax free energy) has no meaning.
 */
export function jointEnergyScore(cosines: ArrayLike<number>, logitScale: number, logitBias: number): number {
  if (cosines.length === 0) throw new RangeError("joint energy needs at least one class");
  let s = 0;
  for (let i = 0; i < cosines.length; i++) s += softplus(logitScale * cosines[i]! + logitBias);
  return s;
}

export interface McmResult {
  /** argmax of the cosines (the temperature does not change it). */
  index: number;
  /** max_k softmax_k(cos / T); lies in [1/K, 1]; larger means more in-distribution. */
  score: number;
}

/**
 * Maximum Concept Matching (Ming et al., NeurIPS 2022): S = max_k e^{s_k/T} / Σ_j e^{s_j/T}.
 * With T = 1 on cosines in [-1, 1] the scores of K classes crowd just above 1/K; only their order
 * matters for detection, which is why thresholds must be chosen per class list (see `detect --help`).
 */
export function mcmScore(cosines: ArrayLike<number>, temperature = MCM_DEFAULT_TEMPERATURE): McmResult {
  checkTemperature(temperature);
  if (cosines.length === 0) throw new RangeError("MCM needs at least one class");
  const p = softmax(cosines, 1 / temperature);
  const index = argmax(cosines);
  return { index, score: p[index]! };
}

/** MaxLogit (zero-shot max cosine): max_k s_k. */
export function maxLogitScore(cosines: ArrayLike<number>): number {
  if (cosines.length === 0) throw new RangeError("max-logit needs at least one class");
  return cosines[argmax(cosines)]!;
}

/** Negative free energy T·log Σ_j e^{s_j/T} (METHODS.md §2; T = 1 on cosines by default). */
export function energyScore(cosines: ArrayLike<number>, temperature = 1): number {
  checkTemperature(temperature);
  if (cosines.length === 0) throw new RangeError("energy needs at least one class");
  let max = -Infinity;
  for (let i = 0; i < cosines.length; i++) max = Math.max(max, cosines[i]! / temperature);
  let sum = 0;
  for (let i = 0; i < cosines.length; i++) sum += Math.exp(cosines[i]! / temperature - max);
  return temperature * (max + Math.log(sum));
}

/** Negative entropy −H(softmax(s/T)) = Σ p log p: confident (peaked) predictions score higher. */
export function negativeEntropyScore(cosines: ArrayLike<number>, temperature = 1): number {
  checkTemperature(temperature);
  const p = softmax(cosines, 1 / temperature);
  let s = 0;
  for (const v of p) if (v > 0) s += v * Math.log(v);
  return s;
}

export interface ExtraCandidatesResult {
  /** Best in-distribution class. */
  index: number;
  /** Whether an extra candidate (an "unknown" prompt or an outlier name) beat every real class. */
  extraWins: boolean;
  score: number;
}

/**
 * "Unknown" prompts as extra candidates: under softmax(100·cos) over the real classes and the unknown
 * prompts together, the probability mass left on the real classes.
 */
export function unknownMassScore(cosines: ArrayLike<number>, unknownCosines: ArrayLike<number>): ExtraCandidatesResult {
  const all = [...Array.from(cosines), ...Array.from(unknownCosines)];
  const p = softmax(all, CLIP_LOGIT_SCALE);
  let mass = 0;
  for (let i = 0; i < cosines.length; i++) mass += p[i]!;
  return { index: argmax(cosines), extraWins: argmax(all) >= cosines.length, score: mass };
}

/** EOE's penalised score (METHODS.md §6): p = softmax([s_ID; s_OUT]/T); S = max p_ID − β·max p_OUT. */
export function outlierPenaltyScore(cosines: ArrayLike<number>, outlierCosines: ArrayLike<number>, temperature = 1, beta = 0.25): ExtraCandidatesResult {
  checkTemperature(temperature);
  if (outlierCosines.length === 0) throw new RangeError("the outlier score needs at least one outlier name");
  const all = [...Array.from(cosines), ...Array.from(outlierCosines)];
  const p = softmax(all, 1 / temperature);
  const id = Array.from(p.subarray(0, cosines.length));
  const out = Array.from(p.subarray(cosines.length));
  const index = argmax(id);
  return { index, extraWins: argmax(all) >= cosines.length, score: id[index]! - beta * Math.max(...out) };
}

/**
 * EOE's penalised score with SigLIP's per-pair probabilities: S = max_k σ(z_ID,k) − β·max_j σ(z_OUT,j),
 * z = scale · cos + bias. EOE's idea (an image that matches a likely outlier class is penalised) needs
 * no softmax; only the probabilities change to the ones the model was trained to give.
 */
export function outlierPenaltySigmoidScore(
  cosines: ArrayLike<number>,
  outlierCosines: ArrayLike<number>,
  logitScale: number,
  logitBias: number,
  beta = 0.25,
): ExtraCandidatesResult {
  if (outlierCosines.length === 0) throw new RangeError("the outlier score needs at least one outlier name");
  const id = sigmoidProbabilities(cosines, logitScale, logitBias);
  const out = sigmoidProbabilities(outlierCosines, logitScale, logitBias);
  const index = argmax(id);
  const maxOut = Math.max(...out);
  return { index, extraWins: maxOut > id[index]!, score: id[index]! - beta * maxOut };
}

function checkTemperature(t: number): void {
  if (!(t > 0) || !Number.isFinite(t)) throw new RangeError(`temperature must be a positive number, got ${t}`);
}
