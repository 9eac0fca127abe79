/** The few-shot chart: a metric against the number of fitting examples per class (`eval --shots`). */
import { ClipOodError } from "../errors.js";
import { CONFIG } from "./chart-common.js";
import type { ChartSpec } from "./chart-common.js";
import type { EvalResult, ShotsRow } from "./types.js";

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
