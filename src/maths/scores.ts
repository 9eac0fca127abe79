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

/** Zero-shot class probabilities of one image: softmax(100 · cos) over the classes, top k first. */
export function classProbabilities(cosines: ArrayLike<number>, k = cosines.length): ClassProbability[] {
  const p = softmax(cosines, CLIP_LOGIT_SCALE);
  return topK(p, k).map((index) => ({ index, prob: p[index]! }));
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
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new RangeError(`temperature must be a positive number, got ${temperature}`);
  }
  if (cosines.length === 0) throw new RangeError("MCM needs at least one class");
  const p = softmax(cosines, 1 / temperature);
  const index = argmax(cosines);
  return { index, score: p[index]! };
}
