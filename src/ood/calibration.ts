/**
 * Choosing a detection threshold from validation scores (larger = more in-distribution; an input is
 * flagged OOD when its score is below the threshold). Pure functions.
 */
import { ClipOodError } from "../errors.js";

export interface Threshold {
  value: number;
  /** What was asked for. */
  target: { tpr: number } | { fpr: number };
  /** Fraction of in-distribution validation scores ≥ value. */
  tpr: number;
  /** Fraction of OOD validation scores ≥ value, when OOD data was given. */
  fpr: number | null;
  idCount: number;
  oodCount: number;
}

function checkScores(scores: ArrayLike<number>, what: string): Float64Array {
  if (scores.length === 0) {
    throw new ClipOodError("INPUT", `no ${what} validation scores`, { hint: `give at least one ${what} validation image or embedding` });
  }
  const s = Float64Array.from(scores);
  const bad = s.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new ClipOodError("INPUT", `${what} validation score ${bad} is ${s[bad]}`, { hint: "check the embeddings for NaN values" });
  return s.sort();
}

function fractionAtLeast(sortedAscending: Float64Array, t: number): number {
  let lo = 0;
  let hi = sortedAscending.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sortedAscending[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return (sortedAscending.length - lo) / sortedAscending.length;
}

function checkRate(rate: number, name: string): void {
  if (!(rate > 0 && rate <= 1)) throw new ClipOodError("USAGE", `--${name} must be in (0, 1], got ${rate}`, { hint: `e.g. --${name} 0.95` });
}

/**
 * The largest threshold that keeps at least `tpr` of the in-distribution scores (score ≥ threshold):
 * the ceil(tpr·n)-th highest score. Ties can only raise the achieved TPR.
 */
export function thresholdAtTpr(idScores: ArrayLike<number>, tpr = 0.95, oodScores?: ArrayLike<number>): Threshold {
  checkRate(tpr, "tpr");
  const id = checkScores(idScores, "in-distribution");
  const keep = Math.ceil(tpr * id.length - 1e-9);
  const value = id[id.length - keep]!;
  const ood = oodScores === undefined ? undefined : checkScores(oodScores, "out-of-distribution");
  return { value, target: { tpr }, tpr: fractionAtLeast(id, value), fpr: ood ? fractionAtLeast(ood, value) : null, idCount: id.length, oodCount: ood?.length ?? 0 };
}

/**
 * The lowest threshold that lets at most `fpr` of the OOD scores pass (score ≥ threshold), which
 * keeps as many in-distribution inputs as that allows: just above the (floor(fpr·m)+1)-th highest
 * OOD score, halfway to the next higher validation score.
 */
export function thresholdAtFpr(idScores: ArrayLike<number>, oodScores: ArrayLike<number>, fpr = 0.05): Threshold {
  checkRate(fpr, "fpr");
  const id = checkScores(idScores, "in-distribution");
  const ood = checkScores(oodScores, "out-of-distribution");
  const allowed = Math.floor(fpr * ood.length + 1e-9);
  let value: number;
  if (allowed >= ood.length) value = Math.min(id[0]!, ood[0]!);
  else {
    const blocked = ood[ood.length - 1 - allowed]!;
    let above = Infinity;
    for (const s of [id, ood]) for (const v of s) if (v > blocked && v < above) above = v;
    value = Number.isFinite(above) ? blocked + (above - blocked) / 2 : blocked + Math.max(Math.abs(blocked), 1) * 1e-9;
  }
  return { value, target: { fpr }, tpr: fractionAtLeast(id, value), fpr: fractionAtLeast(ood, value), idCount: id.length, oodCount: ood.length };
}
