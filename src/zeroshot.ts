/**
 * Zero-shot decisions from embeddings and class features: pure functions, no I/O.
 */
import type { ClassFeatures } from "./clip.js";
import { classProbabilities, mcmScore, MCM_DEFAULT_TEMPERATURE } from "./maths/scores.js";
import { matrix, matmulTransposed } from "./maths/vectors.js";

export interface LabelProbability {
  label: string;
  prob: number;
}

export interface Detection {
  /** The most similar class. */
  label: string;
  /** MCM score: max softmax(cos / T); larger means more in-distribution. */
  score: number;
  /** score < threshold; null when no threshold was given. */
  ood: boolean | null;
}

export interface DetectOptions {
  temperature?: number;
  threshold?: number;
}

/** Cosine of one unit image embedding with every class (class rows are unit vectors). */
export function classCosines(embedding: Float32Array, features: ClassFeatures): Float32Array {
  return matmulTransposed(matrix(1, embedding.length, embedding), features.matrix).data;
}

/** Top-k classes with CLIP's zero-shot probabilities softmax(100·cos). */
export function classify(embedding: Float32Array, features: ClassFeatures, topK = 5): LabelProbability[] {
  return classProbabilities(classCosines(embedding, features), topK).map(({ index, prob }) => ({ label: features.labels[index]!, prob }));
}

/** MCM detection: the predicted class, its MCM score and, with a threshold, the verdict. */
export function detect(embedding: Float32Array, features: ClassFeatures, options: DetectOptions = {}): Detection {
  const { index, score } = mcmScore(classCosines(embedding, features), options.temperature ?? MCM_DEFAULT_TEMPERATURE);
  return { label: features.labels[index]!, score, ood: options.threshold === undefined ? null : score < options.threshold };
}
