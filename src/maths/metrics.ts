/**
 * OOD evaluation metrics over detector scores (larger = more in-distribution; an input is accepted as
 * ID when its score is ≥ the threshold). Pure functions; the conventions, and which codebase each one
 * reproduces, are METHODS.md §9. test/fixtures/metrics.json holds the scikit-learn / numpy references.
 *
 * Every metric works on the distinct score values with their ID and OOD counts (ties grouped), which
 * is what sklearn's _binary_clf_curve produces, so no sort needs to be stable.
 */
import { ClipOodError } from "../errors.js";

/** How FPR@95TPR is computed (docs/EVALUATION.md, METHODS.md §9). */
export const FPR_CONVENTIONS = ["hendrycks", "openood"] as const;
export type FprConvention = (typeof FPR_CONVENTIONS)[number];

/** One method against one OOD set (or the unweighted average over the OOD sets). Fractions in [0, 1]. */
export interface OodMetrics {
  auroc: number;
  /** FPR at 95% TPR under the run's convention. */
  fpr95: number;
  auprIn: number;
  auprOut: number;
  /** max over thresholds of ½(TPR + TNR). */
  detectionAccuracy: number;
  /** The operating threshold that FPR@95TPR was read at (score ≥ threshold → in-distribution). */
  threshold: number;
}

/** Distinct scores, highest first, with how many ID and OOD scores equal each. */
interface Groups {
  values: Float64Array;
  id: Float64Array;
  ood: Float64Array;
  n: number;
  m: number;
}

const SETS = {
  id: "in-distribution (ID)",
  ood: "out-of-distribution (OOD)",
} as const;

function checked(scores: ArrayLike<number>, set: keyof typeof SETS): Float64Array {
  if (scores.length === 0) {
    throw new ClipOodError("INPUT", `no ${SETS[set]} scores to evaluate`, { hint: `give at least one ${SETS[set]} input` });
  }
  const s = Float64Array.from(scores);
  const bad = s.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new ClipOodError("INPUT", `${SETS[set]} score ${bad} is ${s[bad]}`, { hint: "check the detector's scores and embeddings for NaN or infinite values" });
  }
  return s;
}

function groups(idScores: ArrayLike<number>, oodScores: ArrayLike<number>): Groups {
  // Typed-array sort is numeric; merging the two sorted sets groups equal scores across them.
  const a = checked(idScores, "id").sort();
  const b = checked(oodScores, "ood").sort();
  const cap = a.length + b.length;
  const values = new Float64Array(cap);
  const id = new Float64Array(cap);
  const ood = new Float64Array(cap);
  let i = a.length - 1;
  let j = b.length - 1;
  let g = 0;
  while (i >= 0 || j >= 0) {
    const v = j < 0 || (i >= 0 && a[i]! >= b[j]!) ? a[i]! : b[j]!;
    let ci = 0;
    let co = 0;
    // `===` also merges -0 with +0, as numpy's diff-based grouping does.
    while (i >= 0 && a[i] === v) {
      ci++;
      i--;
    }
    while (j >= 0 && b[j] === v) {
      co++;
      j--;
    }
    // One sign for zero, so a reported threshold does not depend on the input order.
    values[g] = v === 0 ? 0 : v;
    id[g] = ci;
    ood[g] = co;
    g++;
  }
  return { values: values.slice(0, g), id: id.slice(0, g), ood: ood.slice(0, g), n: a.length, m: b.length };
}

/** Running totals of `counts` from index 0: the number of scores ≥ each threshold, highest first. */
function cumulative(counts: Float64Array): Float64Array {
  const out = new Float64Array(counts.length);
  let s = 0;
  for (let k = 0; k < counts.length; k++) out[k] = s += counts[k]!;
  return out;
}

/**
 * numpy's float64 add.reduce: pairwise summation with 8 accumulators and 128-element leaves, applied
 * to 8192-element buffers that are then added in order. Summing the same way makes the AUPRs match
 * sklearn's bit for bit rather than to a few ulps.
 */
function numpySum(x: Float64Array): number {
  const pairwise = (lo: number, n: number): number => {
    if (n < 8) {
      let r = 0;
      for (let k = 0; k < n; k++) r += x[lo + k]!;
      return r;
    }
    if (n <= 128) {
      const r = Array.from(x.subarray(lo, lo + 8));
      let k = 8;
      for (; k < n - (n % 8); k += 8) for (let u = 0; u < 8; u++) r[u]! += x[lo + k + u]!;
      let res = (r[0]! + r[1]! + (r[2]! + r[3]!)) + (r[4]! + r[5]! + (r[6]! + r[7]!));
      for (; k < n; k++) res += x[lo + k]!;
      return res;
    }
    let n2 = Math.floor(n / 2);
    n2 -= n2 % 8;
    return pairwise(lo, n2) + pairwise(lo + n2, n - n2);
  };
  let total = 0;
  for (let lo = 0; lo < x.length; lo += 8192) total += pairwise(lo, Math.min(8192, x.length - lo));
  return total;
}

function auroc_(g: Groups): number {
  // Mann–Whitney: 2U = Σ_groups idCount·(2·#OOD below + #OOD tied). Integer-valued, so exact in float64
  // up to n·m ≈ 4.5e15; one division then rounds once.
  let below = g.m;
  let twiceU = 0;
  for (let k = 0; k < g.values.length; k++) {
    below -= g.ood[k]!;
    twiceU += g.id[k]! * (2 * below + g.ood[k]!);
  }
  return twiceU / (2 * g.n * g.m);
}

/**
 * P(a random ID score > a random OOD score), ties counted ½: the rank form of sklearn's roc_auc_score
 * (trapezoidal ROC area), which it equals mathematically; it costs one sort and no curve.
 */
export function auroc(id: ArrayLike<number>, ood: ArrayLike<number>): number {
  return auroc_(groups(id, ood));
}

export interface FprAtTpr {
  /** Under "hendrycks": OOD accepted as ID / m. Under "openood": ID flagged as OOD / n (OOD is positive there). */
  fpr: number;
  /** The fraction of ID scores ≥ threshold. */
  tpr: number;
  /** Score ≥ threshold → accepted as ID. */
  threshold: number;
}

export interface FprOptions {
  /** The recall to read the FPR at (ID recall for "hendrycks", OOD recall for "openood"). Default 0.95. */
  tpr?: number;
  convention?: FprConvention;
}

/**
 * MCM / NegLabel's fpr_and_fdr_at_recall (Hendrycks' outlier-exposure code), ID positive. It walks
 * the distinct thresholds from the first full-recall point back up and takes numpy's argmin of
 * |recall − tpr|, whose first minimum wins: the highest recall on equal distance and, among thresholds
 * with equal recall, the lowest (most OOD accepted). Recall is tps/n and the distance is computed
 * with the same float64 operations, because near-ties such as |0.9 − 0.95| < |1 − 0.95| decide it.
 * The original appends a sentinel (recall 1, fps 0) that could report FPR 0; it is not a candidate
 * here. (It cannot win anyway: the slice starts at a point with recall exactly 1 and the same distance.)
 */
function hendrycks(g: Groups, tpr: number): FprAtTpr {
  const tps = cumulative(g.id);
  const fps = cumulative(g.ood);
  let last = 0;
  while (tps[last]! < g.n) last++;
  let pick = last;
  let best = Infinity;
  for (let k = last; k >= 0; k--) {
    const d = Math.abs(tps[k]! / g.n - tpr);
    if (d < best) {
      best = d;
      pick = k;
    }
  }
  return { fpr: fps[pick]! / g.m, tpr: tps[pick]! / g.n, threshold: g.values[pick]! };
}

/**
 * OpenOOD v1.5 (auc_and_fpr_recall): OOD positive on −score through sklearn roc_curve with
 * drop_intermediate=True — a point is dropped when both second differences of its cumulative
 * counts are zero, which can skip the point that first reaches the target and so changes the answer —
 * then (0, 0) prepended and the first point with OOD recall ≥ tpr taken. Reported FPR = the
 * fraction of ID flagged as OOD there.
 */
function openood(g: Groups, tpr: number): FprAtTpr {
  // roc_curve on −score sees the groups lowest score first: tps = OOD ≤ v, fps = ID ≤ v.
  const G = g.values.length;
  const tps = new Float64Array(G);
  const fps = new Float64Array(G);
  for (let k = 0, t = 0, f = 0; k < G; k++) {
    tps[k] = t += g.ood[G - 1 - k]!;
    fps[k] = f += g.id[G - 1 - k]!;
  }
  const kept = (k: number): boolean =>
    G <= 2 || k === 0 || k === G - 1 || fps[k - 1]! - 2 * fps[k]! + fps[k + 1]! !== 0 || tps[k - 1]! - 2 * tps[k]! + tps[k + 1]! !== 0;
  // The prepended (0, 0) point only qualifies for tpr ≤ 0, which the options reject.
  let k = 0;
  while (!(kept(k) && tps[k]! / g.m >= tpr)) k++;
  // Flagged OOD ⇔ score ≤ values[G−1−k]; accepted ⇔ score ≥ the next higher distinct score.
  const above = G - 2 - k;
  return { fpr: fps[k]! / g.n, tpr: (g.n - fps[k]!) / g.n, threshold: above >= 0 ? g.values[above]! : Infinity };
}

function checkOptions(opts: FprOptions): { tpr: number; convention: FprConvention } {
  const tpr = opts.tpr ?? 0.95;
  const convention = opts.convention ?? "hendrycks";
  if (!(tpr > 0 && tpr <= 1)) throw new ClipOodError("USAGE", `the TPR to read FPR at must be in (0, 1], got ${tpr}`, { hint: "e.g. 0.95" });
  if (!FPR_CONVENTIONS.includes(convention)) {
    throw new ClipOodError("USAGE", `unknown FPR convention "${String(convention)}"`, { hint: `use one of: ${FPR_CONVENTIONS.join(", ")}` });
  }
  return { tpr, convention };
}

function fprAtTpr_(g: Groups, tpr: number, convention: FprConvention): FprAtTpr {
  return convention === "openood" ? openood(g, tpr) : hendrycks(g, tpr);
}

/** FPR at a TPR (default 95%) under either codebase's convention; the two are not comparable (METHODS.md §9). */
export function fprAtTpr(id: ArrayLike<number>, ood: ArrayLike<number>, opts: FprOptions = {}): FprAtTpr {
  const { tpr, convention } = checkOptions(opts);
  return fprAtTpr_(groups(id, ood), tpr, convention);
}

/**
 * sklearn.metrics.auc(recall, precision) over precision_recall_curve as sklearn 1.2 builds it (the
 * version OpenOOD's numbers are checked against here): one point per distinct threshold, none dropped
 * and no truncation at full recall (either would only remove zero-width or collinear trapezoids),
 * reversed, then (recall 0, precision 1) appended; precision is 0 where no input passes, which
 * unweighted samples never produce. `tps`/`fps` are cumulative, highest positive-class score first.
 */
function prArea(tps: Float64Array, fps: Float64Array): number {
  const K = tps.length;
  const total = tps[K - 1]!;
  const x = new Float64Array(K + 1);
  const y = new Float64Array(K + 1);
  for (let k = 0; k < K; k++) {
    const t = tps[K - 1 - k]!;
    const ps = t + fps[K - 1 - k]!;
    x[k] = t / total;
    y[k] = ps === 0 ? 0 : t / ps;
  }
  x[K] = 0;
  y[K] = 1;
  // np.trapz: (diff(x) · (y[1:] + y[:-1]) / 2).sum(); recall decreases, so auc negates it.
  const terms = new Float64Array(K);
  for (let k = 0; k < K; k++) terms[k] = ((x[k + 1]! - x[k]!) * (y[k + 1]! + y[k]!)) / 2;
  return -numpySum(terms);
}

function auprIn_(g: Groups): number {
  return prArea(cumulative(g.id), cumulative(g.ood));
}

function auprOut_(g: Groups): number {
  return prArea(cumulative(g.ood.slice().reverse()), cumulative(g.id.slice().reverse()));
}

/** OpenOOD v1.5's AUPR-In: trapezoidal area under the PR curve with ID positive on the score (not average precision). */
export function auprIn(id: ArrayLike<number>, ood: ArrayLike<number>): number {
  return auprIn_(groups(id, ood));
}

/** OpenOOD v1.5's AUPR-Out (after its fix #211): the same with OOD positive on −score. */
export function auprOut(id: ArrayLike<number>, ood: ArrayLike<number>): number {
  return auprOut_(groups(id, ood));
}

export interface DetectionAccuracy {
  accuracy: number;
  /** The highest threshold reaching it; +Infinity (everything rejected, accuracy ½) when none beats ½. */
  threshold: number;
}

function detection_(g: Groups): DetectionAccuracy {
  let best = 0.5;
  let threshold = Infinity;
  for (let k = 0, tp = 0, fp = 0; k < g.values.length; k++) {
    tp += g.id[k]!;
    fp += g.ood[k]!;
    const acc = 0.5 * (tp / g.n + (g.m - fp) / g.m);
    if (acc > best) {
      best = acc;
      threshold = g.values[k]!;
    }
  }
  return { accuracy: best, threshold };
}

/**
 * ODIN-lineage detection accuracy, max_θ ½[P_ID(S ≥ θ) + P_OOD(S < θ)], searched exactly over every
 * distinct score rather than OpenOOD's 100k-point grid; class-balanced, unlike KNN's DTERR.
 */
export function detectionAccuracy(id: ArrayLike<number>, ood: ArrayLike<number>): DetectionAccuracy {
  return detection_(groups(id, ood));
}

export interface RocCurve {
  fpr: Float64Array;
  tpr: Float64Array;
  /** Highest first; +Infinity for the (0, 0) point. */
  thresholds: Float64Array;
}

/** The ID-positive ROC for plotting: every distinct threshold (sklearn's drop_intermediate=False), from (0, 0) to (1, 1). */
export function rocCurve(id: ArrayLike<number>, ood: ArrayLike<number>): RocCurve {
  const g = groups(id, ood);
  const G = g.values.length;
  const fpr = new Float64Array(G + 1);
  const tpr = new Float64Array(G + 1);
  const thresholds = new Float64Array(G + 1);
  thresholds[0] = Infinity;
  for (let k = 0, tp = 0, fp = 0; k < G; k++) {
    tp += g.id[k]!;
    fp += g.ood[k]!;
    tpr[k + 1] = tp / g.n;
    fpr[k + 1] = fp / g.m;
    thresholds[k + 1] = g.values[k]!;
  }
  return { fpr, tpr, thresholds };
}

export interface Histogram {
  /** bins + 1 edges; bin i is [edges[i], edges[i+1]), the last one closed. */
  edges: Float64Array;
  counts: Uint32Array;
}

/**
 * numpy.histogram with an integer bin count, down to its arithmetic (linspace edges, index =
 * trunc((v − min)·bins/(max − min)) corrected against the edges), so plots agree with numpy's.
 * Values outside the range are left out; a zero-width range is widened by ½ on each side.
 */
export function histogram(values: ArrayLike<number>, bins: number, range?: readonly [number, number]): Histogram {
  if (!(Number.isInteger(bins) && bins >= 1)) throw new ClipOodError("USAGE", `histogram bins must be a positive integer, got ${bins}`, { hint: "e.g. 50" });
  const v = Float64Array.from(values);
  const nan = v.findIndex((x) => Number.isNaN(x));
  if (nan >= 0) throw new ClipOodError("INPUT", `histogram value ${nan} is NaN`, { hint: "check the scores for NaN values" });
  let lo: number;
  let hi: number;
  if (range) {
    [lo, hi] = range;
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi)) {
      throw new ClipOodError("USAGE", `histogram range [${lo}, ${hi}] must be finite with min ≤ max`, { hint: "e.g. [0, 1]" });
    }
  } else if (v.length === 0) {
    [lo, hi] = [0, 1];
  } else {
    lo = v.reduce((a, b) => Math.min(a, b));
    hi = v.reduce((a, b) => Math.max(a, b));
    if (!(Number.isFinite(lo) && Number.isFinite(hi))) {
      throw new ClipOodError("INPUT", `histogram values span [${lo}, ${hi}], which is not finite`, { hint: "give a finite range, or drop the infinite values" });
    }
  }
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const delta = hi - lo;
  const step = delta / bins;
  const edges = new Float64Array(bins + 1);
  for (let i = 0; i < bins; i++) edges[i] = (step === 0 ? (i / bins) * delta : i * step) + lo;
  edges[bins] = hi;
  const norm = bins / delta;
  const counts = new Uint32Array(bins);
  for (const x of v) {
    if (!(x >= lo && x <= hi)) continue;
    let i = Math.trunc((x - lo) * norm);
    if (i === bins) i--;
    if (x < edges[i]!) i--;
    if (x >= edges[i + 1]! && i !== bins - 1) i++;
    counts[i]!++;
  }
  return { edges, counts };
}

/** Every metric of one ID/OOD pair at 95% TPR, from one sort; `threshold` is the FPR@95 operating point. */
export function oodMetrics(id: ArrayLike<number>, ood: ArrayLike<number>, convention: FprConvention = "hendrycks"): OodMetrics {
  checkOptions({ convention });
  const g = groups(id, ood);
  const fpr = fprAtTpr_(g, 0.95, convention);
  return {
    auroc: auroc_(g),
    fpr95: fpr.fpr,
    auprIn: auprIn_(g),
    auprOut: auprOut_(g),
    detectionAccuracy: detection_(g).accuracy,
    threshold: fpr.threshold,
  };
}

/** The unweighted mean of each field over the OOD sets, as the papers average their four sets. */
export function meanMetrics(list: readonly OodMetrics[]): OodMetrics {
  if (list.length === 0) throw new ClipOodError("INPUT", "no metrics to average: the list of OOD sets is empty", { hint: "evaluate at least one OOD set" });
  const mean = (key: keyof OodMetrics): number => list.reduce((s, x) => s + x[key], 0) / list.length;
  return {
    auroc: mean("auroc"),
    fpr95: mean("fpr95"),
    auprIn: mean("auprIn"),
    auprOut: mean("auprOut"),
    detectionAccuracy: mean("detectionAccuracy"),
    threshold: mean("threshold"),
  };
}
