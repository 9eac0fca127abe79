/**
 * Combining detectors: each part's scores are put on a common footing (standardised on in-distribution
 * validation scores) and summed with weights, given or chosen on validation data. Pure: numbers in,
 * numbers out.
 */
import { ClipOodError } from "../errors.js";
import { auroc } from "../maths/metrics.js";

/** Location and scale that put one detector's scores on a common footing with others. */
export interface Standardizer {
  mean: number;
  std: number;
}

/**
 * Spreads at or below this share of the scores' magnitude (at least 1) count as none: float32 rounding
 * of equal scores (a knn part scoring its own fitting images, every neighbour at distance ~1e-8) leaves
 * such a std, and dividing by it multiplies every later score by ~1e8.
 */
export const NEGLIGIBLE_SPREAD = 1e-6;

/**
 * Mean and population standard deviation (1/n) of reference scores, typically the detector's scores on
 * held-out in-distribution images. A spread of none or next to none (NEGLIGIBLE_SPREAD: one score, or
 * all equal up to rounding) gives std = 1, and `onConstant` is told: dividing by that spread would blow
 * every later score up to ±Infinity or ±1e8, and with no observed spread there is no scale to remove,
 * so the scores are only centred (kept, not dropped: they still rank inputs, on their own scale).
 */
export function standardize(scores: Float32Array, onConstant?: (mean: number) => void): Standardizer {
  if (scores.length === 0) {
    throw new ClipOodError("INPUT", "standardize: no scores to standardise", {
      hint: "score at least one in-distribution embedding first",
    });
  }
  let sum = 0;
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i]!;
    if (!Number.isFinite(v)) {
      throw new ClipOodError("INPUT", `standardize: score ${i} is not finite (${v})`, {
        hint: "check the embeddings that produced it",
      });
    }
    sum += v;
  }
  const mean = sum / scores.length;
  let ss = 0;
  for (const v of scores) ss += (v - mean) * (v - mean);
  const std = Math.sqrt(ss / scores.length);
  if (std > NEGLIGIBLE_SPREAD * Math.max(1, Math.abs(mean))) return { mean, std };
  onConstant?.(mean);
  return { mean, std: 1 };
}

/** Σ w·(s − mean)/std: a weighted sum of standardised scores (each oriented larger = more ID). */
export function combineScores(parts: readonly { score: number; standardizer: Standardizer; weight: number }[]): number {
  let total = 0;
  parts.forEach((p, i) => {
    if (!(p.standardizer.std > 0) || !Number.isFinite(p.standardizer.mean)) {
      throw new ClipOodError("USAGE", `combineScores: part ${i} has an invalid standardizer (mean ${p.standardizer.mean}, std ${p.standardizer.std})`, {
        hint: "build standardizers with standardize(), whose std is always positive",
      });
    }
    total += p.weight * ((p.score - p.standardizer.mean) / p.standardizer.std);
  });
  return total;
}

/** One part's validation scores (raw, oriented larger = more in-distribution) and its standardiser. */
export interface ValidationScores {
  id: ArrayLike<number>;
  ood: ArrayLike<number>;
  standardizer: Standardizer;
}

export interface WeightChoice {
  /** Non-negative, summing to 1. */
  weights: number[];
  /** Validation AUROC of the combination with these weights. */
  auroc: number;
  /** Validation AUROC of each part alone. */
  partAuroc: number[];
  /** How many weight vectors were tried. */
  tried: number;
}

/**
 * Grid steps per unit weight for m parts: 0.05 for two parts, coarser as m grows, so the grid stays
 * at most ~130 points; the AUROC surface is flat enough that finer steps only fit validation noise.
 */
export function weightGridSteps(parts: number): number {
  return Math.max(2, Math.floor(20 / (parts - 1)));
}

/** Every vector of `parts` multiples of 1/steps that sums to 1, in lexicographic order. */
function simplexGrid(parts: number, steps: number): number[][] {
  const out: number[][] = [];
  const walk = (prefix: number[], left: number): void => {
    if (prefix.length === parts - 1) {
      out.push([...prefix, left].map((k) => k / steps));
      return;
    }
    for (let k = left; k >= 0; k--) walk([...prefix, k], left - k);
  };
  walk([], steps);
  return out;
}

/**
 * The weights on a simplex grid (including each part alone, so the result is never below the best
 * part on the validation data) whose combination of standardised scores has the highest AUROC of the
 * in-distribution against the OOD validation scores. Ties (within 1e-12) go to the most even weights,
 * then to the first in grid order, so the choice is deterministic.
 */
export function chooseWeights(parts: readonly ValidationScores[], steps = weightGridSteps(parts.length)): WeightChoice {
  if (parts.length < 2) throw new ClipOodError("USAGE", `chooseWeights: ${parts.length} part given, need two or more`, { hint: "combine at least two detectors" });
  if (!Number.isInteger(steps) || steps < 1) throw new ClipOodError("USAGE", `chooseWeights: steps must be a positive integer, got ${steps}`, { hint: "leave it at its default" });
  const nId = parts[0]!.id.length;
  const nOod = parts[0]!.ood.length;
  if (nId === 0 || nOod === 0) {
    throw new ClipOodError("INPUT", `choosing weights needs in-distribution and OOD validation scores (got ${nId} and ${nOod})`, { hint: "give --id and --ood validation data with at least one usable input each" });
  }
  const z = parts.map((p, i) => {
    if (p.id.length !== nId || p.ood.length !== nOod) {
      throw new ClipOodError("INPUT", `chooseWeights: part ${i} has ${p.id.length}/${p.ood.length} scores, part 0 has ${nId}/${nOod}`, { hint: "score the same validation inputs with every part" });
    }
    const norm = (v: ArrayLike<number>) => Float64Array.from(v, (s) => (s - p.standardizer.mean) / p.standardizer.std);
    return { id: norm(p.id), ood: norm(p.ood) };
  });
  const id = new Float64Array(nId);
  const ood = new Float64Array(nOod);
  const uniform = 1 / parts.length;
  let best: { weights: number[]; auroc: number; spread: number } | undefined;
  const grid = simplexGrid(parts.length, steps);
  for (const w of grid) {
    id.fill(0);
    ood.fill(0);
    w.forEach((wi, p) => {
      if (wi === 0) return;
      for (let i = 0; i < nId; i++) id[i] = id[i]! + wi * z[p]!.id[i]!;
      for (let i = 0; i < nOod; i++) ood[i] = ood[i]! + wi * z[p]!.ood[i]!;
    });
    const a = auroc(id, ood);
    const spread = w.reduce((s, wi) => s + (wi - uniform) ** 2, 0);
    if (!best || a > best.auroc + 1e-12 || (Math.abs(a - best.auroc) <= 1e-12 && spread < best.spread - 1e-15)) best = { weights: w, auroc: a, spread };
  }
  return { weights: best!.weights, auroc: best!.auroc, partAuroc: z.map((p) => auroc(p.id, p.ood)), tried: grid.length };
}
