/**
 * One detector API over every method: a Detector holds everything needed to score an embedding
 * (class text features, extra candidates, fitted statistics, the threshold), so a saved detector
 * scores new inputs without re-encoding anything. Pure: building from a model lives in build.ts,
 * files in detector-file.ts.
 */
import type { ClassFeatures } from "../clip.js";
import { ClipOodError } from "../errors.js";
import type { Matrix } from "../maths/vectors.js";
import { row } from "../maths/vectors.js";
import type { ClassSpec } from "../text/classes.js";
import { detect, ZERO_SHOT_METHODS } from "../zeroshot.js";
import type { Detection, ZeroShotMethod } from "../zeroshot.js";
import type { Threshold } from "./calibration.js";

export const DETECTOR_METHODS = [...ZERO_SHOT_METHODS] as const;
export type DetectorMethod = (typeof DETECTOR_METHODS)[number];

export interface DetectorModelInfo {
  /** Hub id or folder the embeddings come from; inputs embedded by another model are refused. */
  id: string;
  dtype: string;
  dim: number;
  /** Preprocessing that changes image embeddings, recorded so a detector is used as it was made. */
  exifRotate: boolean;
}

export interface DetectorParams {
  temperature?: number;
  beta?: number;
}

export interface Detector {
  method: DetectorMethod;
  params: DetectorParams;
  model: DetectorModelInfo;
  templates: string[];
  classes: ClassSpec[];
  classFeatures: ClassFeatures;
  /** Extra text candidates: "unknown" prompts or outlier class names. */
  extra?: { kind: "unknown" | "outliers"; classes: ClassSpec[]; features: ClassFeatures };
  threshold?: Threshold;
}

export function isZeroShot(method: DetectorMethod): method is ZeroShotMethod {
  return (ZERO_SHOT_METHODS as readonly string[]).includes(method);
}

/** Score and verdict of one unit embedding. */
export function predict(d: Detector, embedding: Float32Array): Detection {
  if (embedding.length !== d.model.dim) {
    throw new ClipOodError("INPUT", `embedding has ${embedding.length} dimensions, the detector's model ${d.model.id} has ${d.model.dim}`, {
      hint: "score embeddings made by the detector's model",
    });
  }
  return detect(embedding, d.classFeatures, {
    method: d.method,
    ...(d.params.temperature === undefined ? {} : { temperature: d.params.temperature }),
    ...(d.params.beta === undefined ? {} : { beta: d.params.beta }),
    ...(d.extra === undefined ? {} : { extra: d.extra.features }),
    ...(d.threshold === undefined ? {} : { threshold: d.threshold.value }),
  });
}

/** Scores of a batch of unit embeddings (rows), larger = more in-distribution. */
export function scoreBatch(d: Detector, embeddings: Matrix): Float32Array {
  const out = new Float32Array(embeddings.rows);
  for (let i = 0; i < embeddings.rows; i++) out[i] = predict(d, row(embeddings, i)).score;
  return out;
}
