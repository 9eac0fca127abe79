/**
 * One detector API over every method: a Detector holds everything needed to score an embedding
 * (class text features, extra candidates, fitted statistics, the threshold), so a saved detector
 * scores new inputs without re-encoding anything. Pure: building from a model lives in build.ts,
 * files in detector-file.ts.
 */
import type { ClassFeatures } from "../clip.js";
import type { PreprocessConfig } from "../model/preprocessor-config.js";
import { ClipOodError } from "../errors.js";
import type { Scoring } from "../maths/scores.js";
import type { Matrix } from "../maths/vectors.js";
import { argmax, matmulTransposed, matrix, row } from "../maths/vectors.js";
import type { ClassSpec } from "../text/classes.js";
import { classCosines, detect, ZERO_SHOT_METHODS } from "../zeroshot.js";
import type { Detection } from "../zeroshot.js";
import { thresholdAtFpr, thresholdAtTpr } from "./calibration.js";
import type { Threshold } from "./calibration.js";
import { combineScores } from "./combine.js";
import type { Standardizer } from "./combine.js";
import { fewShotScore } from "./feature-space/fewshot.js";
import type { FewShotState } from "./feature-space/fewshot.js";
import { glmcmScore } from "./zero-shot/glmcm.js";
import { knnScores } from "./feature-space/knn.js";
import type { KnnState } from "./feature-space/knn.js";
import type { HeadScore } from "./heads/heads.js";
import { linearProbePredict } from "./heads/linear-probe.js";
import type { LinearProbeState } from "./heads/linear-probe.js";
import { negLabelScore } from "./zero-shot/neglabel.js";
import type { NegativeLabels } from "./zero-shot/negatives.js";
import { taskResPredict } from "./heads/taskres.js";
import type { TaskResState } from "./heads/taskres.js";
import { tipAdapterPredict } from "./heads/tip-adapter.js";
import type { TipAdapterState } from "./heads/tip-adapter.js";

/** Methods fitted on in-distribution embeddings (`--id`). */
export const FEW_SHOT_METHODS = ["mahalanobis", "knn", "ocsvm", "linear-probe", "tip-adapter", "tip-adapter-f", "taskres"] as const;
export type FewShotMethod = (typeof FEW_SHOT_METHODS)[number];
/**
 * Few-shot methods that use no text: fitted on embeddings alone, they need no model when their data are
 * embeddings files (the probe's classes are only its label names).
 */
export const EMBEDDING_ONLY_METHODS = ["mahalanobis", "knn", "ocsvm", "linear-probe"] as const satisfies readonly FewShotMethod[];
/** A detector's dtype when the embeddings it was fitted on did not record theirs (files from before clip-ood did). */
export const UNKNOWN_DTYPE = "unknown";
/** Few-shot methods that are classifiers: their label and score come from their own logits (`--head-score`). */
export const HEAD_METHODS = ["linear-probe", "tip-adapter", "tip-adapter-f", "taskres"] as const satisfies readonly FewShotMethod[];
export type HeadMethod = (typeof HEAD_METHODS)[number];
/** Heads that start from the zero-shot text classifier, so they need named classes. */
export const TEXT_HEAD_METHODS = ["tip-adapter", "tip-adapter-f", "taskres"] as const satisfies readonly HeadMethod[];
/** Fitted state of a learned head. */
export type HeadState = LinearProbeState | TipAdapterState | TaskResState;
export const DETECTOR_METHODS = [...ZERO_SHOT_METHODS, "neglabel", "glmcm", ...FEW_SHOT_METHODS, "combo"] as const;
export type DetectorMethod = (typeof DETECTOR_METHODS)[number];

export interface DetectorModelInfo {
  /** Hub id or folder the embeddings come from; inputs embedded by another model are refused. */
  id: string;
  /** The ONNX variant (fp32, q8, …) of the embeddings, or UNKNOWN_DTYPE; inputs of another known dtype are refused. */
  dtype: string;
  dim: number;
  /** Preprocessing that changes image embeddings, recorded so a detector is used as it was made. */
  exifRotate: boolean;
  /** The model's preprocessor_config.json as read when the detector was made (for the record). */
  preprocess?: PreprocessConfig;
  /**
   * The family's scoring with the values it had when the detector was made (SigLIP's learned scale
   * and bias), so that a saved detector scores without the model; absent means CLIP's softmax(100·cos).
   */
  scoring?: Scoring;
}

/**
 * Methods a sigmoid-scored family (SigLIP) cannot run, with the reason (OOD-METHODS.md, "Model families").
 * The zero-shot ones are refused in zeroshot.ts, where their scores are computed.
 */
export const SIGMOID_REFUSED_METHODS: Partial<Record<DetectorMethod, string>> = {
  neglabel: "its score is the softmax share of the class prompts among class and negative prompts (Jiang et al. 2024), which independent sigmoids do not define",
  glmcm: "its local term needs CLIP's class token, post-layernorm and projection for every patch; SigLIP pools patches with an attention head",
  "tip-adapter": "its zero-shot part is CLIP's softmax(100·cos) classifier",
  "tip-adapter-f": "its zero-shot part is CLIP's softmax(100·cos) classifier, trained on with softmax cross-entropy",
  taskres: "it tunes CLIP's softmax(100·cos) text classifier with softmax cross-entropy",
};

export interface DetectorParams {
  temperature?: number;
  beta?: number;
  /** neglabel: share of each part of speech kept when mining (0.15), and the number of groups (100). */
  negFraction?: number;
  negGroups?: number;
  /** glmcm: weight of the local term (0.5, the authors' ImageNet setting). */
  lambda?: number;
  /** knn: which nearest neighbour (1). */
  k?: number;
  /** ocsvm: ν (0.1) and γ (1/(D·Var X), scikit-learn's "scale"). */
  nu?: number;
  gamma?: number;
  /** mahalanobis: covariance shrinkage (Ledoit–Wolf when unset). */
  shrinkage?: number;
  /** linear-probe, tip-adapter, tip-adapter-f, taskres: the OOD score read from the head's logits (msp). */
  headScore?: HeadScore;
  /** linear-probe: C when fixed rather than cross-validated. */
  probeC?: number;
  /** tip-adapter, tip-adapter-f: residual ratio α (1.17) and sharpness β (1). */
  tipAlpha?: number;
  tipBeta?: number;
  /** tip-adapter-f (20), taskres (100 for ≤ 4 shots per class, else 200): training epochs. */
  epochs?: number;
  /** taskres: residual scale α (0.5). */
  taskresAlpha?: number;
  /**
   * Learned heads: synthetic outliers from NegLabel's negative labels (mined, or --neg-labels) —
   * extra classes for tip-adapter(-f) and taskres, rows of the outlier class for linear-probe.
   */
  outlierNeglabel?: boolean;
}

export interface Detector {
  method: DetectorMethod;
  params: DetectorParams;
  model: DetectorModelInfo;
  templates: string[];
  classes: ClassSpec[];
  classFeatures: ClassFeatures;
  /**
   * Where classFeatures come from: absent, the classes' text prompts; "fit-means", each class's mean
   * fitting embedding (fitted from embeddings files without loading a model, so without a text tower).
   * Either way they only name the class an input is nearest to.
   */
  classFeaturesFrom?: "fit-means";
  /** Extra text candidates: "unknown" prompts or outlier class names. */
  extra?: { kind: "unknown" | "outliers"; classes: ClassSpec[]; features: ClassFeatures };
  /** neglabel: the mined (or given) negative labels, their features and groups. */
  negatives?: NegativeLabels;
  /** few-shot methods: statistics or a head fitted on in-distribution embeddings (`fitRows` of them). */
  fitted?: FewShotState | HeadState;
  fitRows?: number;
  /** combo: a weighted sum of the parts' scores, each standardised on in-distribution validation scores. */
  parts?: { detector: Detector; weight: number; standardizer: Standardizer }[];
  threshold?: Threshold;
}

export function isEmbeddingOnly(method: DetectorMethod): method is (typeof EMBEDDING_ONLY_METHODS)[number] {
  return (EMBEDDING_ONLY_METHODS as readonly string[]).includes(method);
}

export function isFewShot(method: DetectorMethod): method is FewShotMethod {
  return (FEW_SHOT_METHODS as readonly string[]).includes(method);
}

export function isHead(method: DetectorMethod): method is HeadMethod {
  return (HEAD_METHODS as readonly string[]).includes(method);
}

/** Scores read from a softmax over the classes alone (CLIP's; SigLIP's sigmoids are per class). */
const CLASS_SOFTMAX_METHODS: readonly DetectorMethod[] = ["mcm", "entropy", "glmcm"];

/**
 * Why a detector gives every input the same score, or undefined: a softmax over a single class is 1
 * whatever the input (MCM 1, entropy 0). The methods named instead score one class meaningfully: the
 * cosine itself, distances to in-distribution data, or the class against prompts of their own.
 */
export function constantScoreReason(d: Pick<Detector, "method" | "classes" | "model">): string | undefined {
  if (d.classes.length !== 1 || !CLASS_SOFTMAX_METHODS.includes(d.method) || d.model.scoring?.kind === "sigmoid") return undefined;
  return (
    `${d.method} with one class (${d.classes[0]!.label}) gives every input the same score: a softmax over a single class is 1 whatever the input. ` +
    "Use --method maxlogit or energy (the cosine to the class), knn, mahalanobis or ocsvm with --id <in-distribution images>, unknown or neglabel, or name more classes"
  );
}

export function isHeadState(f: FewShotState | HeadState): f is HeadState {
  return isHead(f.kind);
}

/** A head's class index and OOD score of one embedding. */
export function headPredict(f: HeadState, embedding: Float32Array): { index: number; score: number } {
  return f.kind === "linear-probe" ? linearProbePredict(f, embedding) : f.kind === "taskres" ? taskResPredict(f, embedding) : tipAdapterPredict(f, embedding);
}

export interface PredictOptions {
  /** Overrides the detector's own threshold. */
  threshold?: number;
  /** glmcm: the image's unit local (patch) features, P × D. */
  local?: Matrix;
}

/** A detection from a label and a score: OOD below the threshold, no verdict without one. */
function verdictAt(threshold: number | undefined): (label: string, score: number) => Detection {
  return (label, score) => ({ label, score, ood: threshold === undefined ? null : score < threshold });
}

/** The label of the class prompt nearest to the embedding: the few-shot methods' (but heads') class. */
function nearestClass(d: Detector, embedding: Float32Array): string {
  return d.classFeatures.labels[argmax(classCosines(embedding, d.classFeatures))]!;
}

function checkDim(d: Detector, dim: number): void {
  if (dim !== d.model.dim) {
    throw new ClipOodError("INPUT", `embedding has ${dim} dimensions, the detector's model ${d.model.id} has ${d.model.dim}`, {
      hint: "score embeddings made by the detector's model",
    });
  }
}

/** Score and verdict of one unit embedding. */
export function predict(d: Detector, embedding: Float32Array, options: PredictOptions = {}): Detection {
  const threshold = options.threshold ?? d.threshold?.value;
  checkDim(d, embedding.length);
  const verdict = verdictAt(threshold);
  if (d.method === "combo") {
    if (!d.parts?.length) throw new ClipOodError("INPUT", "this combined detector has no parts", { hint: "combine it again" });
    const results = d.parts.map((p) => ({ ...p, detection: predict(p.detector, embedding, options.local ? { local: options.local } : {}) }));
    return verdict(results[0]!.detection.label, combineScores(results.map((r) => ({ score: r.detection.score, standardizer: r.standardizer, weight: r.weight }))));
  }
  if (isFewShot(d.method)) {
    if (!d.fitted) throw new ClipOodError("INPUT", `this ${d.method} detector has no fitted statistics`, { hint: "fit it again with --id <in-distribution data>" });
    // A head is a classifier itself: its label is its own, not the nearest class prompt's.
    if (isHeadState(d.fitted)) {
      const r = headPredict(d.fitted, embedding);
      return verdict(d.classFeatures.labels[r.index]!, r.score);
    }
    return verdict(nearestClass(d, embedding), fewShotScore(d.fitted, embedding));
  }
  if (d.method === "glmcm") {
    if (!options.local) throw new ClipOodError("USAGE", "glmcm needs the image's patch tokens", { hint: "score images, not embeddings files" });
    const cos = classCosines(embedding, d.classFeatures);
    const r = glmcmScore(cos, matmulTransposed(options.local, d.classFeatures.matrix), {
      ...(d.params.temperature === undefined ? {} : { temperature: d.params.temperature }),
      ...(d.params.lambda === undefined ? {} : { lambda: d.params.lambda }),
    });
    return verdict(d.classFeatures.labels[r.index]!, r.score);
  }
  if (d.method === "neglabel") {
    if (!d.negatives) throw new ClipOodError("INPUT", "this neglabel detector has no negative labels", { hint: "fit it again" });
    const cos = classCosines(embedding, d.classFeatures);
    const neg = matmulTransposed(matrix(1, embedding.length, embedding), d.negatives.features).data;
    return verdict(d.classFeatures.labels[argmax(cos)]!, negLabelScore(cos, neg, d.negatives.groups));
  }
  return detect(embedding, d.classFeatures, {
    method: d.method,
    ...(d.model.scoring === undefined ? {} : { scoring: d.model.scoring }),
    ...(d.params.temperature === undefined ? {} : { temperature: d.params.temperature }),
    ...(d.params.beta === undefined ? {} : { beta: d.params.beta }),
    ...(d.extra === undefined ? {} : { extra: d.extra.features }),
    ...(threshold === undefined ? {} : { threshold }),
  });
}

export interface PredictBatchOptions {
  /** Overrides the detector's own threshold. */
  threshold?: number;
  /** glmcm: row i's unit local (patch) features. */
  local?: readonly (Matrix | undefined)[];
}

/** Whether scoring `d` searches a KNN bank: itself, or one of a combination's parts. */
export function searchesBank(d: Detector): boolean {
  return d.fitted?.kind === "knn" || (d.method === "combo" && (d.parts ?? []).some((p) => searchesBank(p.detector)));
}

/**
 * Detections of many unit embeddings (rows), as `predict` gives them one at a time, except that KNN
 * scores (a detector's own, or a combination's KNN parts') come from the batched neighbour engine: a
 * bank of a million rows answers a block of queries per matrix product instead of one scalar scan
 * each. knnScores re-scores the engine's candidates in float64, so the scores equal predict's.
 */
export async function predictBatch(d: Detector, embeddings: Matrix, options: PredictBatchOptions = {}): Promise<Detection[]> {
  const threshold = options.threshold ?? d.threshold?.value;
  const verdict = verdictAt(threshold);
  if (!searchesBank(d) || embeddings.rows === 0) {
    return Array.from({ length: embeddings.rows }, (_, i) => {
      const local = options.local?.[i];
      return predict(d, row(embeddings, i), { ...(threshold === undefined ? {} : { threshold }), ...(local ? { local } : {}) });
    });
  }
  checkDim(d, embeddings.cols);
  if (d.method === "combo") {
    const parts = d.parts!;
    const results: Detection[][] = [];
    for (const p of parts) results.push(await predictBatch(p.detector, embeddings, options.local ? { local: options.local } : {}));
    return results[0]!.map((first, i) =>
      verdict(first.label, combineScores(parts.map((p, j) => ({ score: results[j]![i]!.score, standardizer: p.standardizer, weight: p.weight })))),
    );
  }
  const scores = await knnScores(d.fitted as KnnState, embeddings);
  return Array.from(scores, (score, i) => verdict(nearestClass(d, row(embeddings, i)), score));
}

/** Scores of a batch of unit embeddings (rows), larger = more in-distribution: `predictBatch`'s, without labels. */
export async function scoreBatch(d: Detector, embeddings: Matrix): Promise<Float32Array> {
  return Float32Array.from(await predictBatch(d, embeddings), (r) => r.score);
}

/**
 * The detector with a threshold chosen from validation scores (see calibration.ts): at a target TPR
 * (default 0.95), or, given OOD scores and `fpr`, at a target FPR.
 */
export function calibrate(d: Detector, idScores: ArrayLike<number>, options: { tpr?: number; oodScores?: ArrayLike<number>; fpr?: number } = {}): Detector {
  const threshold =
    options.fpr !== undefined
      ? thresholdAtFpr(idScores, options.oodScores ?? [], options.fpr)
      : thresholdAtTpr(idScores, options.tpr ?? 0.95, options.oodScores);
  return { ...d, threshold };
}
