/**
 * The evaluation's charts as Vega-Lite specs, rendered without a browser: Vega draws them to an SVG
 * string (renderer "none", so no canvas or DOM is needed) and resvg turns that SVG into a PNG. All data
 * is inlined in the spec, so rendering never loads anything.
 */
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile } from "vega-lite";
import type { TopLevelSpec } from "vega-lite";
import { ClipOodError, messageOf } from "../errors.js";
import { writeFileAtomic } from "../io/atomic-file.js";
import { histogram, rocCurve } from "../maths/metrics.js";
import type { EvalResult, FprConvention, MethodResult, ScoredSample, SetResult, ShotsRow } from "./types.js";

export type ChartSpec = TopLevelSpec;

/** ROC curves longer than this are thinned before they go into a spec (an SVG path per point). */
export const MAX_CURVE_POINTS = 2000;

/**
 * Fonts that exist on the usual Linux, macOS and Windows machines; resvg takes the first one it has,
 * and the default family below covers machines with none of them.
 */
const FONT = "DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif";
const PNG_DEFAULT_FONT = "DejaVu Sans";
/** PNGs are drawn at twice the SVG's size so that they stay sharp on high-density screens. */
const PNG_ZOOM = 2;

const ID_COLOUR = "#3b73b9";
const OOD_COLOUR = "#e4572e";
const THRESHOLD_COLOUR = "#222222";

const CONFIG = {
  font: FONT,
  background: "white",
  padding: 8,
  title: { fontSize: 16, subtitleFontSize: 12, subtitleColor: "#555", anchor: "start", offset: 10 },
  axis: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: "normal", titlePadding: 8, gridColor: "#e6e6e6" },
  legend: { labelFontSize: 12, titleFontSize: 12, labelLimit: 320, symbolStrokeWidth: 3 },
  view: { stroke: "#cccccc" },
} as const;

/** Percent with two decimals, the way the report's table shows metrics. */
export function formatPercent(v: number): string {
  return Number.isFinite(v) ? (v * 100).toFixed(2) : "—";
}

/** A score or threshold in a short form that still tells close values apart. */
export function formatScore(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}

const scoresOf = (samples: readonly ScoredSample[]): Float64Array => Float64Array.from(samples, (s) => s.score);
/** The metrics refuse NaN and ±∞; a chart draws what it can rather than failing the whole report. */
const finite = (a: Float64Array): Float64Array => a.filter((v) => Number.isFinite(v));

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

/** The OOD sets in the order they first appear over the methods. */
export function oodNames(result: EvalResult): string[] {
  const names: string[] = [];
  for (const m of result.methods) for (const s of m.sets) if (!names.includes(s.ood)) names.push(s.ood);
  return names;
}

function findSet(method: MethodResult, oodName: string): SetResult | undefined {
  return method.sets.find((s) => s.ood === oodName);
}

function unknown(what: string, name: string, known: string[]): ClipOodError {
  return new ClipOodError("USAGE", `the evaluation has no ${what} named "${name}"`, {
    hint: known.length > 0 ? `use one of: ${known.map((k) => `"${k}"`).join(", ")}` : "the evaluation is empty",
  });
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

/** What a few-shot chart plots against shots: AUROC averaged over the OOD sets, or ID accuracy. */
export type ShotsMetric = "auroc" | "idAccuracy";

const SHOTS_METRIC_TITLE: Record<ShotsMetric, string> = { auroc: "AUROC (average over the OOD sets)", idAccuracy: "ID accuracy" };

/** A row's value of the metric and its spread over the seeds; null where the row has none (no labels). */
function shotsValue(r: ShotsRow, metric: ShotsMetric): { mean: number; std: number } | null {
  const mean = metric === "auroc" ? r.auroc : r.idAccuracy;
  if (mean === null || !Number.isFinite(mean)) return null;
  return { mean, std: (metric === "auroc" ? r.std?.auroc : r.std?.idAccuracy) ?? 0 };
}

/** Whether the evaluation has few-shot rows to draw for the metric (ID accuracy needs a labelled ID set). */
export function hasShotsChart(result: EvalResult, metric: ShotsMetric): boolean {
  return result.shots?.rows.some((r) => r.shots !== null && r.ood === "average" && shotsValue(r, metric) !== null) ?? false;
}

/**
 * A metric against the number of fitting examples per class on a log2 axis: one line per few-shot
 * method at its mean over the seeds, with a band and error bars of ± one standard deviation (clipped to
 * [0, 1]), and each method evaluated once (zero-shot methods, saved detectors) as a dashed horizontal line.
 */
export function shotsChart(result: EvalResult, metric: ShotsMetric): ChartSpec {
  const summary = result.shots;
  if (summary === undefined || !hasShotsChart(result, metric)) {
    throw new ClipOodError("USAGE", `the evaluation has no few-shot ${metric === "auroc" ? "AUROC" : "ID accuracy"} to plot`, {
      hint: metric === "auroc" ? "run eval with --shots and --fit" : "run eval --shots with a labelled --id set",
    });
  }
  // The per-OOD-set rows repeat the ID accuracy; the averages carry both metrics once per method and k.
  const averages = summary.rows.filter((r) => r.ood === "average");
  const points = averages.flatMap((r) => {
    const v = r.shots === null ? null : shotsValue(r, metric);
    return v === null ? [] : [{ series: r.method, shots: r.shots!, mean: v.mean, std: v.std, lo: Math.max(0, v.mean - v.std), hi: Math.min(1, v.mean + v.std) }];
  });
  const fixed = averages.flatMap((r) => {
    const v = r.shots === null ? shotsValue(r, metric) : null;
    return v === null ? [] : [{ series: `${r.method} (fixed)`, value: v.mean }];
  });
  const legend = [...new Set([...points.map((p) => p.series), ...fixed.map((f) => f.series)])];
  const lo = Math.min(...summary.shots);
  const hi = Math.max(...summary.shots);
  // A single shot count would give the log scale an empty domain: an octave either side of it.
  const domain = lo === hi ? [lo / 2, hi * 2] : [lo, hi];
  const x = { field: "shots", type: "quantitative" as const, scale: { type: "log" as const, base: 2, domain }, axis: { values: summary.shots, format: "d" }, title: "Fitting examples per class (log2)" };
  const y = { type: "quantitative" as const, scale: { zero: false, nice: true }, axis: { format: ".0%" }, title: SHOTS_METRIC_TITLE[metric] };
  const colour = {
    field: "series",
    type: "nominal" as const,
    scale: { domain: legend },
    // A stroke per entry at full opacity: the band's faint fill would otherwise set the legend's symbols.
    legend: { title: "Method", orient: "bottom-right" as const, fillColor: "rgba(255,255,255,0.85)", padding: 6, strokeColor: "#ccc", symbolType: "stroke", symbolOpacity: 1, symbolStrokeWidth: 3 },
  };
  const tooltip = [
    { field: "series", type: "nominal" as const, title: "method" },
    { field: "shots", type: "quantitative" as const, title: "shots" },
    { field: "mean", type: "quantitative" as const, format: ".2%", title: "mean" },
    { field: "std", type: "quantitative" as const, format: ".2%", title: "std" },
  ];
  return {
    width: 420,
    height: 300,
    config: CONFIG,
    title: {
      text: `${SHOTS_METRIC_TITLE[metric]} against shots: ${result.idSet}`,
      subtitle: `${result.model} · mean over ${summary.seeds} seed${summary.seeds === 1 ? "" : "s"}, band ± 1 std · dashed: evaluated once`,
    },
    datasets: { points, fixed },
    layer: [
      { data: { name: "points" }, mark: { type: "area", opacity: 0.15 }, encoding: { x, y: { ...y, field: "lo" }, y2: { field: "hi" }, color: colour } },
      { data: { name: "points" }, mark: { type: "rule", strokeWidth: 1.5 }, encoding: { x, y: { ...y, field: "lo" }, y2: { field: "hi" }, color: colour } },
      { data: { name: "points" }, mark: { type: "line", strokeWidth: 2.2, point: { filled: true, size: 50 } }, encoding: { x, y: { ...y, field: "mean" }, color: colour, tooltip } },
      {
        data: { name: "fixed" },
        mark: { type: "rule", strokeDash: [6, 4], strokeWidth: 2 },
        encoding: { y: { ...y, field: "value" }, color: colour, tooltip: [{ field: "series", type: "nominal", title: "method" }, { field: "value", type: "quantitative", format: ".2%", title: "value" }] },
      },
    ],
  };
}

/**
 * Advance widths of DejaVu Sans (the PNGs' font, first in the charts' font list) for U+0020…U+007E, in
 * thousandths of an em, regular then bold, measured with a canvas in Chromium.
 */
const ADVANCE_REGULAR =
  "318,401,460,838,636,950,780,275,390,390,500,838,318,361,318,337,636,636,636,636,636,636,636,636,636,636,337,337,838,838,838,531,1000,684,686,698,770,632,575,775,752,295,295,656,557,863,748,787,603,787,695,635,611,732,684,989,685,611,685,390,337,390,838,500,500,613,635,550,635,615,352,635,634,278,278,579,278,974,634,612,635,635,411,521,392,634,592,818,592,592,525,636,337,636,838"
    .split(",")
    .map(Number);
const ADVANCE_BOLD =
  "348,456,521,838,696,1002,872,306,457,457,523,838,380,415,380,365,696,696,696,696,696,696,696,696,696,696,400,400,838,838,838,580,1000,774,762,734,830,683,683,821,837,372,372,775,637,995,837,850,733,850,770,720,682,812,774,1103,771,724,725,457,365,457,838,500,500,675,716,593,716,678,435,716,712,343,343,665,343,1042,712,687,716,716,493,595,478,712,652,924,645,652,582,712,365,712,838"
    .split(",")
    .map(Number);

/** East Asian wide characters and emoji take a full em. */
function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    cp >= 0x20000
  );
}

/** The width in pixels of a line of text in DejaVu Sans. */
export function textWidth(text: string, fontSize: number, bold = false): number {
  const table = bold ? ADVANCE_BOLD : ADVANCE_REGULAR;
  let em = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    em += cp >= 0x20 && cp <= 0x7e ? table[cp - 0x20]! : isWide(cp) ? 1000 : bold ? 680 : 620;
  }
  // A few percent of slack, so that a title set in a slightly wider fallback font still fits.
  return (em / 1000) * fontSize * 1.03;
}

interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
}
type WidthFn = (item: TextItem, text: string) => number;

/**
 * Vega lays out titles, legends and labels with text widths. Without a canvas it guesses 0.8 em per
 * character, which leaves wide empty margins; a width function of its own is Vega's supported way out
 * (vl-convert does the same). It is swapped in only while this module renders, so other users of Vega
 * in the process keep theirs.
 */
const vegaTextMetrics = (vega as unknown as { textMetrics: { width: WidthFn } }).textMetrics;
let rendering = 0;
let savedWidth: WidthFn | undefined;
const measure: WidthFn = (item, text) => {
  const weight = item.fontWeight;
  const bold = weight === "bold" || weight === "bolder" || (typeof weight === "number" && weight >= 600) || Number(weight) >= 600;
  return textWidth(String(text ?? ""), item.fontSize ?? 11, bold);
};

/** Silences Vega-Lite's compile-time warnings (e.g. merged legends), which would go to the console. */
const quietLogger = vega.logger(vega.Error);

/** Renders a Vega-Lite spec to a standalone SVG document string. */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const { spec: vgSpec } = compile(spec, { logger: quietLogger });
  if (rendering++ === 0) {
    savedWidth = vegaTextMetrics.width;
    vegaTextMetrics.width = measure;
  }
  const view = new vega.View(vega.parse(vgSpec), { renderer: "none", logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
    if (--rendering === 0 && savedWidth !== undefined) vegaTextMetrics.width = savedWidth;
  }
}

/** Rasterises an SVG with the system fonts. */
export function renderPng(svg: string): Buffer {
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: PNG_DEFAULT_FONT, sansSerifFamily: PNG_DEFAULT_FONT },
    fitTo: { mode: "zoom", value: PNG_ZOOM },
    background: "white",
    logLevel: "off",
  });
  return resvg.render().asPng();
}

const SLUG_MAX = 60;
/** Latin letters that NFKD leaves whole, spelt the usual ASCII way. */
const LETTERS_WITHOUT_DECOMPOSITION: Record<string, string> = { ø: "o", æ: "ae", œ: "oe", ß: "ss", đ: "d", ł: "l", þ: "th", ð: "d" };

/**
 * A file-name-safe form of a display name: ASCII letters, digits and dashes, lower case (so that it is
 * also unique on case-insensitive file systems). A name with nothing ASCII left (e.g. all CJK) gets a
 * short hash instead, so different such names stay apart.
 */
export function slugify(name: string): string {
  const ascii = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[øæœßđłþð]/g, (c) => LETTERS_WITHOUT_DECOMPOSITION[c] ?? "")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, SLUG_MAX)
    .replace(/-+$/, "");
  return ascii.length > 0 ? ascii : `u${createHash("sha256").update(name).digest("hex").slice(0, 8)}`;
}

/** Hands out file stems, appending -2, -3… to any that were already taken. */
function stemAllocator(): (stem: string) => string {
  const used = new Set<string>();
  return (stem) => {
    let candidate = stem;
    for (let k = 2; used.has(candidate); k++) candidate = `${stem}-${k}`;
    used.add(candidate);
    return candidate;
  };
}

export type ChartKind = "shots" | "roc" | "histogram";

/**
 * Every chart of an evaluation with a unique file stem: with --shots, AUROC and ID accuracy against
 * shots first; then one ROC per OOD set and one histogram per method × set.
 */
export interface Chart {
  stem: string;
  spec: ChartSpec;
  kind: ChartKind;
  /** Histograms: the method drawn. */
  method?: string;
  /** The OOD set drawn ("average" for the few-shot charts, which average over them). */
  ood: string;
  /** Few-shot charts: the metric against shots. */
  metric?: ShotsMetric;
}

export function chartsOf(result: EvalResult): Chart[] {
  const allocate = stemAllocator();
  const charts: Chart[] = [];
  for (const metric of ["auroc", "idAccuracy"] as const) {
    if (hasShotsChart(result, metric)) charts.push({ stem: allocate(`shots-${metric === "auroc" ? "auroc" : "id-accuracy"}`), spec: shotsChart(result, metric), kind: "shots", ood: "average", metric });
  }
  for (const ood of oodNames(result)) charts.push({ stem: allocate(`roc-${slugify(ood)}`), spec: rocChart(result, ood), kind: "roc", ood });
  for (const m of result.methods) {
    for (const s of m.sets) {
      charts.push({
        stem: allocate(`hist-${slugify(m.method)}--${slugify(s.ood)}`),
        spec: histogramChart(result, m.method, s.ood),
        kind: "histogram",
        method: m.method,
        ood: s.ood,
      });
    }
  }
  return charts;
}

/** Writes every chart as .svg and .png into dir (created when missing); returns the files written. */
export async function writePlots(result: EvalResult, dir: string): Promise<string[]> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new ClipOodError("INPUT", `cannot create the plot folder ${dir}: ${messageOf(e)}`, {
      hint: "choose a folder you can write to",
      cause: e,
    });
  }
  const written: string[] = [];
  for (const chart of chartsOf(result)) {
    const svg = await renderSvg(chart.spec);
    const png = renderPng(svg);
    for (const [ext, body] of [
      ["svg", svg],
      ["png", png],
    ] as const) {
      const file = path.join(dir, `${chart.stem}.${ext}`);
      try {
        await writeFileAtomic(file, body);
      } catch (e) {
        throw new ClipOodError("INPUT", `cannot write the plot ${file}: ${messageOf(e)}`, {
          hint: "check that the folder is writable and the disk is not full",
          cause: e,
        });
      }
      written.push(file);
    }
  }
  return written;
}
