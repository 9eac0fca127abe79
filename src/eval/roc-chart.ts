/** The ROC chart: every method's curve against one OOD set, with each method's operating point. */
import { rocCurve } from "../maths/metrics.js";
import type { FprConvention } from "../maths/metrics.js";
import { CONFIG, finite, findSet, formatPercent, formatScore, oodNames, scoresOf, unknown } from "./chart-common.js";
import type { ChartSpec } from "./chart-common.js";
import type { EvalResult } from "./types.js";

/** ROC curves longer than this are thinned before they go into a spec (an SVG path per point). */
export const MAX_CURVE_POINTS = 2000;

/**
 * Thins a monotone curve (such as a ROC) to at most maxPoints vertices. A vertex is kept when it lies at
 * least `step` (L1) away from the last kept one, with `step` the curve's L1 length over maxPoints − 2:
 * every dropped vertex then lies within `step` of the polyline that remains, and since each kept vertex
 * uses up at least `step` of the length, no more than maxPoints survive. The ends are always kept.
 */
export function downsampleCurve(
  x: Float64Array,
  y: Float64Array,
  maxPoints = MAX_CURVE_POINTS,
): { x: Float64Array; y: Float64Array } {
  const n = Math.min(x.length, y.length);
  if (n <= maxPoints || maxPoints < 3) return { x: x.slice(0, n), y: y.slice(0, n) };
  let length = 0;
  for (let i = 1; i < n; i++) length += Math.abs(x[i]! - x[i - 1]!) + Math.abs(y[i]! - y[i - 1]!);
  const step = length / (maxPoints - 2);
  const keep: number[] = [0];
  let lx = x[0]!;
  let ly = y[0]!;
  for (let i = 1; i < n - 1; i++) {
    if (Math.abs(x[i]! - lx) + Math.abs(y[i]! - ly) >= step) {
      keep.push(i);
      lx = x[i]!;
      ly = y[i]!;
    }
  }
  // The kept vertices are ≤ maxPoints − 2 by the length argument, but rounding in `step` could add one.
  if (keep.length > maxPoints - 1) keep.length = maxPoints - 1;
  keep.push(n - 1);
  return { x: Float64Array.from(keep, (i) => x[i]!), y: Float64Array.from(keep, (i) => y[i]!) };
}

/** The fractions of ID and OOD inputs accepted at a threshold (score ≥ θ), i.e. the ROC's operating point. */
export function operatingPoint(id: Float64Array, ood: Float64Array, threshold: number): { tpr: number; fpr: number } {
  const accepted = (a: Float64Array) => {
    let k = 0;
    for (const v of a) if (v >= threshold) k++;
    return a.length === 0 ? Number.NaN : k / a.length;
  };
  return { tpr: accepted(id), fpr: accepted(ood) };
}

/** The "95%" reference line: ID-positive TPR for the papers' convention, OOD-positive TPR for OpenOOD's. */
function reference95(convention: FprConvention): { axis: "x" | "y"; value: number; label: string } {
  // With ID positive, catching 95% of the OOD inputs (OpenOOD's TPR) means accepting 5% of them: FPR = 0.05.
  return convention === "openood"
    ? { axis: "x", value: 0.05, label: "95% of OOD caught (OpenOOD's TPR 95%)" }
    : { axis: "y", value: 0.95, label: "TPR 95%" };
}

/**
 * ROC curves of every method against one OOD set (ID positive), with the chance diagonal, the 95% line of
 * the run's FPR@95TPR convention and each method's operating point at its threshold.
 */
export function rocChart(result: EvalResult, oodName: string): ChartSpec {
  const methods = result.methods.filter((m) => findSet(m, oodName) !== undefined);
  if (methods.length === 0) throw unknown("OOD set", oodName, oodNames(result));
  const curves: { series: string; i: number; fpr: number; tpr: number }[] = [];
  const points: { series: string; method: string; fpr: number; tpr: number; threshold: string }[] = [];
  const legend: string[] = [];
  for (const m of methods) {
    const set = findSet(m, oodName)!;
    const series = `${m.method} (AUROC ${formatPercent(set.metrics.auroc)}%)`;
    legend.push(series);
    const id = finite(scoresOf(m.id));
    const ood = finite(scoresOf(set.samples));
    if (id.length > 0 && ood.length > 0) {
      const roc = rocCurve(id, ood);
      const thin = downsampleCurve(roc.fpr, roc.tpr);
      for (let i = 0; i < thin.x.length; i++) curves.push({ series, i, fpr: thin.x[i]!, tpr: thin.y[i]! });
      const op = operatingPoint(id, ood, set.metrics.threshold);
      points.push({ series, method: m.method, fpr: op.fpr, tpr: op.tpr, threshold: formatScore(set.metrics.threshold) });
    }
  }
  const ref = reference95(result.convention);
  const refEncoding =
    ref.axis === "y" ? { y: { datum: ref.value, type: "quantitative" as const } } : { x: { datum: ref.value, type: "quantitative" as const } };
  const x = { field: "fpr", type: "quantitative" as const, scale: { domain: [0, 1] }, title: "False positive rate (OOD accepted as ID)" };
  const y = { field: "tpr", type: "quantitative" as const, scale: { domain: [0, 1] }, title: "True positive rate (ID accepted)" };
  const colour = {
    field: "series",
    type: "nominal" as const,
    scale: { domain: legend },
    legend: { title: "Method", orient: "bottom-right" as const, fillColor: "rgba(255,255,255,0.85)", padding: 6, strokeColor: "#ccc" },
  };
  return {
    width: 420,
    height: 360,
    config: CONFIG,
    title: {
      text: `ROC: ${result.idSet} (ID) vs ${oodName} (OOD)`,
      subtitle: `${result.model} · dots: operating point at each method's threshold`,
    },
    datasets: { roc: curves, operating: points, diagonal: [{ fpr: 0, tpr: 0 }, { fpr: 1, tpr: 1 }], one: [{}] },
    layer: [
      {
        data: { name: "diagonal" },
        mark: { type: "line", color: "#999", strokeDash: [4, 4], strokeWidth: 1 },
        encoding: { x, y },
      },
      {
        // A layer draws once per datum, and a reference mark needs exactly one.
        data: { name: "one" },
        mark: { type: "rule", color: "#777", strokeDash: [2, 3], strokeWidth: 1.5 },
        encoding: refEncoding,
      },
      {
        data: { name: "one" },
        mark:
          ref.axis === "y"
            ? { type: "text", align: "left", baseline: "bottom", dx: 4, dy: -3, fontSize: 11, color: "#555", text: ref.label }
            : // Written up along the rule, in the strip left of it, where no legend or curve sits.
              { type: "text", align: "center", baseline: "bottom", angle: 270, dy: -3, fontSize: 11, color: "#555", text: ref.label },
        encoding:
          ref.axis === "y"
            ? { x: { datum: 0, type: "quantitative" }, y: { datum: ref.value, type: "quantitative" } }
            : { x: { datum: ref.value, type: "quantitative" }, y: { datum: 0.5, type: "quantitative" } },
      },
      {
        data: { name: "roc" },
        mark: { type: "line", strokeWidth: 2.2, interpolate: "linear" },
        encoding: { x, y, color: colour, // Vertical stretches share an FPR, so only the curve's own order draws them right.
          order: { field: "i", type: "quantitative" } },
      },
      {
        data: { name: "operating" },
        mark: { type: "point", filled: true, size: 70, stroke: "white", strokeWidth: 1, opacity: 1 },
        encoding: {
          x,
          y,
          color: colour,
          tooltip: [
            { field: "method", type: "nominal", title: "method" },
            { field: "threshold", type: "nominal", title: "threshold" },
            { field: "tpr", type: "quantitative", format: ".2%", title: "TPR" },
            { field: "fpr", type: "quantitative", format: ".2%", title: "FPR" },
          ],
        },
      },
    ],
  };
}
