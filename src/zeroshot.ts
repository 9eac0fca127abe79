/**
 * Zero-shot decisions from embeddings and class features: pure functions, no I/O.
 */
import type { ClassFeatures } from "./clip.js";
import { ClipOodError } from "./errors.js";
import {
  classProbabilities,
  CLIP_SCORING,
  energyScore,
  jointEnergyScore,
  maxSigmoidScore,
  maxLogitScore,
  MCM_DEFAULT_TEMPERATURE,
  mcmScore,
  negativeEntropyScore,
  outlierPenaltyScore,
  outlierPenaltySigmoidScore,
  unknownMassScore,
} from "./maths/scores.js";
import type { Scoring } from "./maths/scores.js";
import { argmax, matrix, matmulTransposed } from "./maths/vectors.js";

export interface LabelProbability {
  label: string;
  prob: number;
}

/**
 * Zero-shot OOD scores, all oriented so that larger means more in-distribution (METHODS.md):
 * - mcm: max softmax(cos/T), T = 1 (Ming et al. 2022)
 * - maxlogit: max cos
 * - energy: T·logsumexp(cos/T), T = 1
 * - entropy: −H(softmax(cos/T)), T = 1
 * - unknown: probability mass on the real classes under softmax(100·cos) over classes ∪ "unknown" prompts
 * - outliers: max p_ID − β·max p_OUT over softmax([cos_ID; cos_OUT]/T), T = 1, β = 0.25 (EOE, Cao et al. 2024)
 * With a sigmoid-scored family (SigLIP) mcm, energy and outliers use the model's own sigmoid
 * probabilities and entropy and unknown are refused (SIGMOID_REFUSED; OOD-METHODS.md, "Model families").
 */
export const ZERO_SHOT_METHODS = ["mcm", "maxlogit", "energy", "entropy", "unknown", "outliers"] as const;
export type ZeroShotMethod = (typeof ZERO_SHOT_METHODS)[number];

/** Prompts used as "none of these" candidates by the `unknown` method unless the user gives others. */
export const DEFAULT_UNKNOWN_PROMPTS = ["a photo of an unknown object", "a photo of something else", "a photo of an unfamiliar thing"];

/** Label given by the `unknown` method when an unknown prompt beats every class. */
export const UNKNOWN_LABEL = "unknown";

export const EOE_BETA = 0.25;

/**
 * Zero-shot methods with no sigmoid counterpart: both read a softmax distribution over the candidates
 * (its entropy, the mass it leaves on the real classes), which independent sigmoids do not define.
 */
export const SIGMOID_REFUSED: readonly ZeroShotMethod[] = ["entropy", "unknown"];

/** The typed refusal of a method that a sigmoid-scored family cannot run, naming what to use instead. */
export function sigmoidRefusal(method: string, why: string): ClipOodError {
  return new ClipOodError("USAGE", `--method ${method} does not apply to sigmoid-scored models (SigLIP): ${why}`, {
    hint: "use mcm (max per-class sigmoid), maxlogit, energy (joint energy), outliers, or a few-shot method (mahalanobis, knn, ocsvm, linear-probe); see docs/OOD-METHODS.md",
  });
}

export interface Detection {
  /** The most similar class (or "unknown" when the unknown method's extra prompts win). */
  label: string;
  /** Larger means more in-distribution; the scale depends on the method. */
  score: number;
  /** score < threshold; null when no threshold was given. */
  ood: boolean | null;
}

export interface DetectOptions {
  method?: ZeroShotMethod;
  temperature?: number;
  threshold?: number;
  /** The `unknown` method's prompts, or the `outliers` method's outlier classes. */
  extra?: ClassFeatures;
  /** The `outliers` method's penalty weight (default 0.25). */
  beta?: number;
  /** The model family's scoring (default CLIP's softmax with scale 100). */
  scoring?: Scoring;
}

/** Cosine of one unit image embedding with every class (class rows are unit vectors). */
export function classCosines(embedding: Float32Array, features: ClassFeatures): Float32Array {
  return matmulTransposed(matrix(1, embedding.length, embedding), features.matrix).data;
}

/** Top-k classes with the family's zero-shot probabilities: softmax(100·cos) for CLIP, σ(scale·cos + bias) per class for SigLIP. */
export function classify(embedding: Float32Array, features: ClassFeatures, topK = 5, scoring: Scoring = CLIP_SCORING): LabelProbability[] {
  return classProbabilities(classCosines(embedding, features), topK, scoring).map(({ index, prob }) => ({ label: features.labels[index]!, prob }));
}

/** Detection with one zero-shot method: the predicted class, its score and, with a threshold, the verdict. */
export function detect(embedding: Float32Array, features: ClassFeatures, options: DetectOptions = {}): Detection {
  const method = options.method ?? "mcm";
  const t = options.temperature ?? MCM_DEFAULT_TEMPERATURE;
  const scoring = options.scoring ?? CLIP_SCORING;
  if (scoring.kind === "sigmoid" && SIGMOID_REFUSED.includes(method)) {
    throw sigmoidRefusal(method, method === "entropy" ? "it is the entropy of a softmax over the classes, and SigLIP's class probabilities are independent sigmoids" : "it is the softmax mass left on the real classes, and SigLIP's class probabilities are independent sigmoids");
  }
  const sigmoid = scoring.kind === "sigmoid" ? scoring : undefined;
  const cos = classCosines(embedding, features);
  let index = argmax(cos);
  let score: number;
  let label: string | undefined;
  switch (method) {
    case "mcm":
      ({ index, score } = sigmoid ? maxSigmoidScore(cos, sigmoid.logitScale, sigmoid.logitBias) : mcmScore(cos, t));
      break;
    case "maxlogit":
      score = maxLogitScore(cos);
      break;
    case "energy":
      score = sigmoid ? jointEnergyScore(cos, sigmoid.logitScale, sigmoid.logitBias) : energyScore(cos, t);
      break;
    case "entropy":
      score = negativeEntropyScore(cos, t);
      break;
    case "unknown": {
      const r = unknownMassScore(cos, classCosines(embedding, requireExtra(options, method)));
      score = r.score;
      if (r.extraWins) label = UNKNOWN_LABEL;
      break;
    }
    case "outliers": {
      const out = classCosines(embedding, requireExtra(options, method));
      const beta = options.beta ?? EOE_BETA;
      ({ index, score } = sigmoid ? outlierPenaltySigmoidScore(cos, out, sigmoid.logitScale, sigmoid.logitBias, beta) : outlierPenaltyScore(cos, out, t, beta));
      break;
    }
  }
  return { label: label ?? features.labels[index]!, score, ood: options.threshold === undefined ? null : score < options.threshold };
}

function requireExtra(options: DetectOptions, method: ZeroShotMethod): ClassFeatures {
  if (!options.extra || options.extra.labels.length === 0) {
    throw new ClipOodError("USAGE", `--method ${method} needs ${method === "unknown" ? "unknown prompts" : "outlier class names"}`, {
      hint: method === "unknown" ? "pass --unknown-prompts or leave it out to use the defaults" : "pass --outlier-classes a,b,c or a file",
    });
  }
  return options.extra;
}
