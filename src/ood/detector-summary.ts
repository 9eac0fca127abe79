/**
 * What `detector show` prints: a detector's settings and what fitting chose, read from the detector
 * itself (pure). The fitted state holds the values actually used (C after cross-validation, γ after
 * "scale", Ledoit–Wolf's shrinkage), so a file saved before `show` listed them shows them too; the
 * arrays are summarised by their sizes.
 */
import type { ClassSpec } from "../text/classes.js";
import type { Detector, DetectorModelInfo, DetectorParams } from "./detector.js";

export interface DetectorSummary {
  method: Detector["method"];
  /** The settings as given at fit time; the methods' defaults apply to the others (see `fitted`). */
  params: DetectorParams;
  model: DetectorModelInfo;
  templates: string[];
  classes: string[];
  /** Classes with synonyms or description prompts, as they were encoded. */
  classDetails: ClassSpec[];
  /** Where the class features come from: the class prompts, or each class's mean fitting embedding (fitted without a model). */
  classFeatures: "text" | "fit-means";
  extra: { kind: string; labels: string[] } | null;
  negatives: { source: string; labels: number; groups: number } | null;
  /** Few-shot methods: the values fitting used, and how many embeddings it saw. */
  fitted: Record<string, unknown> | null;
  fitRows: number | null;
  /** combo: each part's summary, weight and standardiser. */
  parts: { weight: number; mean: number; std: number; detector: DetectorSummary }[] | null;
  /** The threshold with the rates and counts of the data it was calibrated on. */
  threshold: Detector["threshold"] | null;
}

export function summarizeDetector(d: Detector): DetectorSummary {
  return {
    method: d.method,
    params: d.params,
    model: d.model,
    templates: d.templates,
    classes: d.classes.map((c) => c.label),
    classDetails: d.classes.filter((c) => c.descriptions.length > 0 || c.names.length > 1 || c.names[0] !== c.label),
    classFeatures: d.classFeaturesFrom ?? "text",
    extra: d.extra ? { kind: d.extra.kind, labels: d.extra.classes.map((c) => c.label) } : null,
    negatives: d.negatives ? { source: d.negatives.source, labels: d.negatives.labels.length, groups: d.negatives.groups.length } : null,
    fitted: d.fitted ? fittedSummary(d.fitted) : null,
    fitRows: d.fitRows ?? null,
    parts: d.parts ? d.parts.map((p) => ({ weight: p.weight, mean: p.standardizer.mean, std: p.standardizer.std, detector: summarizeDetector(p.detector) })) : null,
    threshold: d.threshold ?? null,
  };
}

/**
 * The settings a fitted state used, its arrays as counts; training losses as the last epoch's. Records
 * an older version did not write are left out rather than guessed.
 */
function fittedSummary(f: NonNullable<Detector["fitted"]>): Record<string, unknown> {
  const rows = (a: Float32Array) => a.length / f.dim;
  const outliers = (n: number | undefined) => (n ? { outlierClasses: n } : {});
  const training = (t: { losses?: number[] } | null | undefined) => {
    if (!t) return {};
    const { losses, ...settings } = t;
    return { training: { ...settings, finalLoss: losses?.at(-1) ?? null } };
  };
  switch (f.kind) {
    case "knn":
      return { kind: f.kind, k: f.k, bank: rows(f.bank) };
    case "mahalanobis":
      return { kind: f.kind, classes: f.classes, shrinkage: f.shrinkage };
    case "ocsvm":
      return { kind: f.kind, nu: f.nu, gamma: f.gamma, supportVectors: rows(f.supportVectors), rho: f.rho };
    case "linear-probe":
      return {
        kind: f.kind,
        c: f.c,
        ...(f.cv === undefined ? {} : { cFrom: f.cv ? "cross-validation" : "given" }),
        ...(f.cv ? { cv: { folds: f.cv.folds, scoredFolds: f.cv.scoredFolds, seed: f.cv.seed, grid: f.cv.tried, losses: f.cv.losses } } : {}),
        score: f.score,
        classes: f.classes,
        ...outliers(f.outlierClasses),
      };
    case "tip-adapter":
    case "tip-adapter-f":
      return {
        kind: f.kind,
        alpha: f.alpha,
        beta: f.beta,
        score: f.score,
        classes: f.classes,
        cacheKeys: f.keyLabels.length,
        ...outliers(f.outlierClasses),
        ...training(f.training),
      };
    case "taskres":
      return { kind: f.kind, alpha: f.alpha, score: f.score, classes: f.classes, ...outliers(f.outlierClasses), ...training(f.training) };
  }
}
