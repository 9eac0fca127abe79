/** The score histogram chart: ID and OOD scores of one method overlaid, with its threshold. */
import { histogram } from "../maths/metrics.js";
import { CONFIG, finite, findSet, formatScore, scoresOf, unknown } from "./chart-common.js";
import type { ChartSpec } from "./chart-common.js";
import type { EvalResult } from "./types.js";

const ID_COLOUR = "#3b73b9";
const OOD_COLOUR = "#e4572e";
const THRESHOLD_COLOUR = "#222222";

/** Bins for n values: about √n, kept readable. */
function binCount(n: number): number {
  return Math.max(10, Math.min(60, Math.ceil(Math.sqrt(n))));
}

/** The range the histogram spans: every finite score and the threshold, widened when it is a point. */
function scoreRange(values: Float64Array[], threshold: number): [number, number] | undefined {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const a of values) {
    for (const v of a) {
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo > hi) return undefined;
  if (Number.isFinite(threshold)) {
    lo = Math.min(lo, threshold);
    hi = Math.max(hi, threshold);
  }
  // numpy.histogram widens a zero-width range by ±0.5 the same way.
  return lo === hi ? [lo - 0.5, hi + 0.5] : [lo, hi];
}

/** Each bin's share of the set, so that sets of different sizes can be overlaid. */
function binRows(
  set: string,
  scores: Float64Array,
  bins: number,
  range: [number, number],
): { set: string; x0: number; x1: number; fraction: number; count: number }[] {
  const values = finite(scores);
  const h = histogram(values, bins, range);
  const rows = [];
  for (let i = 0; i < h.counts.length; i++) {
    const count = h.counts[i]!;
    rows.push({ set, x0: h.edges[i]!, x1: h.edges[i + 1]!, fraction: values.length === 0 ? 0 : count / values.length, count });
  }
  return rows;
}

/**
 * Overlaid score histograms of the ID set and one OOD set for one method, each bin as a fraction of its
 * set, with the method's threshold for that set as a labelled vertical rule.
 */
export function histogramChart(result: EvalResult, method: string, oodName: string): ChartSpec {
  const m = result.methods.find((r) => r.method === method);
  if (m === undefined) throw unknown("method", method, result.methods.map((r) => r.method));
  const set = findSet(m, oodName);
  if (set === undefined) throw unknown("OOD set", oodName, m.sets.map((s) => s.ood));
  const id = scoresOf(m.id);
  const ood = scoresOf(set.samples);
  const threshold = set.metrics.threshold;
  const range = scoreRange([id, ood], threshold);
  const idLabel = `ID: ${result.idSet} (n = ${id.length})`;
  const oodLabel = `OOD: ${oodName} (n = ${ood.length})`;
  const bins = binCount(Math.max(id.length, ood.length));
  const rows = range === undefined ? [] : [...binRows(idLabel, id, bins, range), ...binRows(oodLabel, ood, bins, range)];
  const dropped = id.length + ood.length - rows.reduce((a, r) => a + r.count, 0);
  const ruleShown = Number.isFinite(threshold) && range !== undefined;
  const notes = [`threshold = ${formatScore(threshold)} (score ≥ threshold → accepted as ID)`];
  if (dropped > 0) notes.push(`${dropped} non-finite score(s) not drawn`);
  const x = { field: "x0", type: "quantitative" as const, title: "Score (higher = more in-distribution)", scale: { zero: false, nice: false } };
  return {
    width: 420,
    height: 260,
    config: CONFIG,
    title: { text: `Scores of ${method}: ${result.idSet} vs ${oodName}`, subtitle: notes.join(" · ") },
    datasets: { bins: rows, threshold: ruleShown ? [{ threshold, label: `threshold ${formatScore(threshold)}` }] : [] },
    layer: [
      {
        data: { name: "bins" },
        mark: { type: "bar", opacity: 0.55, binSpacing: 0, stroke: "white", strokeWidth: 0.3 },
        encoding: {
          x,
          x2: { field: "x1" },
          y: { field: "fraction", type: "quantitative", stack: null, title: "Fraction of the set per bin", axis: { format: ".0%" } },
          y2: { datum: 0 },
          color: {
            field: "set",
            type: "nominal",
            scale: { domain: [idLabel, oodLabel], range: [ID_COLOUR, OOD_COLOUR] },
            legend: { title: null, orient: "top", direction: "vertical" },
          },
          tooltip: [
            { field: "set", type: "nominal" },
            { field: "count", type: "quantitative", title: "inputs" },
            { field: "fraction", type: "quantitative", format: ".1%", title: "share" },
          ],
        },
      },
      {
        data: { name: "threshold" },
        mark: { type: "rule", color: THRESHOLD_COLOUR, strokeWidth: 2, strokeDash: [6, 3] },
        encoding: { x: { field: "threshold", type: "quantitative" } },
      },
      {
        data: { name: "threshold" },
        mark: { type: "text", align: "left", baseline: "top", dx: 5, y: 4, fontSize: 12, fontWeight: "bold", color: THRESHOLD_COLOUR },
        encoding: { x: { field: "threshold", type: "quantitative" }, text: { field: "label" } },
      },
    ],
  };
}
