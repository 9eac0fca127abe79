/**
 * The report's markup: everything the page says, as strings from an EvalResult and the pieces that
 * report.ts gathers (charts rendered to SVG, thumbnails). Pure, so that what the page shows can be read
 * and changed without the rendering and file reading around it. Every text from the data passes
 * through escapeHtml.
 */
import path from "node:path";
import type { FprConvention, OodMetrics } from "../maths/metrics.js";
import { formatPercent, formatScore, oodNames } from "./chart-common.js";
import type { Chart, ChartKind } from "./plots.js";
import { STYLE } from "./report-style.js";
import type { EvalResult, MethodResult, ScoredSample, SetResult, ShotsSummary } from "./types.js";

const CONVENTION_TEXT: Record<FprConvention, string> = {
  hendrycks:
    "FPR@95TPR is the fraction of OOD inputs accepted as in-distribution at the threshold that keeps 95% of the ID inputs (ID is the positive class, as in the CLIP OOD papers).",
  openood:
    "FPR@95TPR is the fraction of ID inputs rejected as OOD at the threshold that catches 95% of the OOD inputs (OOD is the positive class, as in OpenOOD v1.5); it is not comparable with the CLIP OOD papers' numbers.",
};

/** Escapes text for HTML element content and quoted attribute values alike. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const esc = escapeHtml;

interface MetricColumn {
  key: keyof OodMetrics;
  label: string;
  better: "higher" | "lower";
}

const METRIC_COLUMNS: MetricColumn[] = [
  { key: "auroc", label: "AUROC", better: "higher" },
  { key: "fpr95", label: "FPR@95TPR", better: "lower" },
  { key: "auprIn", label: "AUPR-In", better: "higher" },
  { key: "auprOut", label: "AUPR-Out", better: "higher" },
  { key: "detectionAccuracy", label: "Detection acc.", better: "higher" },
];

/**
 * The indices of the best rows for a column, judged on the values as displayed (two decimals in %), so
 * that two cells that read the same are both marked. Nothing is marked when there is nothing to compare.
 */
export function bestIndices(values: readonly number[], better: "higher" | "lower"): Set<number> {
  const shown = values.map((v) => (Number.isFinite(v) ? Math.round(v * 10000) : Number.NaN));
  const finite = shown.filter((v) => !Number.isNaN(v));
  if (finite.length < 2) return new Set();
  const best = better === "higher" ? Math.max(...finite) : Math.min(...finite);
  return new Set(shown.flatMap((v, i) => (v === best ? [i] : [])));
}

/** A thumbnail as a data URI, or why there is none (shown in its place). */
export type Thumbnail = { ok: true; uri: string; width: number; height: number } | { ok: false; reason: string };

function formatDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

export function header(result: EvalResult): string {
  const sets = oodNames(result);
  const first = result.methods[0];
  const nId = first?.id.length ?? 0;
  const setCounts = sets.map((name) => {
    const s = result.methods.flatMap((m) => m.sets).find((x) => x.ood === name);
    return `<li><span class="set">${esc(name)}</span>: ${s?.n.ood ?? 0} inputs</li>`;
  });
  return `<header>
<h1>OOD evaluation report</h1>
<dl class="facts" id="summary">
<dt>Model</dt><dd data-field="model">${esc(result.model)}</dd>
<dt>ID set</dt><dd data-field="id-set">${esc(result.idSet)} (${nId} inputs)</dd>
<dt>OOD sets</dt><dd data-field="ood-sets">${sets.length}<ul class="counts">${setCounts.join("")}</ul></dd>
<dt>Methods</dt><dd data-field="methods">${result.methods.length}: ${result.methods.map((m) => esc(m.method)).join(", ")}</dd>
<dt>FPR convention</dt><dd data-field="convention"><code>${esc(result.convention)}</code>. ${esc(CONVENTION_TEXT[result.convention])}</dd>
<dt>Date</dt><dd data-field="date"><time datetime="${esc(result.createdAt)}">${esc(formatDate(result.createdAt))}</time></dd>
</dl>
<nav><a href="#metrics">Metrics</a> · ${result.shots ? `<a href="#shots">Few-shot curves</a> · ` : ""}<a href="#roc">ROC curves</a> · <a href="#histograms">Score histograms</a> · <a href="#hardest">Hardest inputs</a></nav>
</header>`;
}

interface TableRow {
  method: MethodResult;
  metrics: OodMetrics;
  nId: number;
  nOod: number;
}

function metricsGroup(title: string, ood: string | undefined, rows: TableRow[], withAccuracy: boolean): string {
  const best = METRIC_COLUMNS.map((c) => bestIndices(rows.map((r) => r.metrics[c.key]), c.better));
  const bestAccuracy = bestIndices(rows.map((r) => r.method.idAccuracy ?? Number.NaN), "higher");
  const span = 3 + METRIC_COLUMNS.length + (withAccuracy ? 1 : 0);
  const body = rows.map((r, i) => {
    const attrs = ood === undefined ? `data-average="true" class="avg"` : `data-ood="${esc(ood)}"`;
    const cells = METRIC_COLUMNS.map((c, j) => {
      const isBest = best[j]!.has(i);
      return `<td data-metric="${c.key}"${isBest ? ` class="best" title="best ${esc(c.label)} for this set"` : ""}>${formatPercent(r.metrics[c.key])}</td>`;
    });
    const accuracy = withAccuracy
      ? `<td data-metric="idAccuracy"${bestAccuracy.has(i) ? ` class="best"` : ""}>${r.method.idAccuracy === null ? "—" : formatPercent(r.method.idAccuracy)}</td>`
      : "";
    return `<tr data-method="${esc(r.method.method)}" ${attrs}><th scope="row">${esc(r.method.method)}</th>${cells.join("")}<td data-metric="threshold" class="num">${esc(formatScore(r.metrics.threshold))}</td><td data-metric="n" class="num">${r.nId} / ${r.nOod}</td>${accuracy}</tr>`;
  });
  return `<tbody${ood === undefined ? ` data-average="true"` : ` data-ood="${esc(ood)}"`}><tr class="group"><th colspan="${span}" scope="rowgroup">${title}</th></tr>${body.join("")}</tbody>`;
}

export function metricsTable(result: EvalResult): string {
  const withAccuracy = result.methods.some((m) => m.idAccuracy !== null);
  const groups = oodNames(result).map((ood) => {
    const rows = result.methods.flatMap((method) => {
      const s = method.sets.find((x) => x.ood === ood);
      return s === undefined ? [] : [{ method, metrics: s.metrics, nId: s.n.id, nOod: s.n.ood }];
    });
    return metricsGroup(`OOD set: ${esc(ood)}`, ood, rows, withAccuracy);
  });
  const averages = result.methods.map((method) => ({
    method,
    metrics: method.average,
    nId: method.id.length,
    nOod: method.sets.reduce((a, s) => a + s.n.ood, 0),
  }));
  const nSets = oodNames(result).length;
  groups.push(metricsGroup(`Average over ${nSets} OOD set${nSets === 1 ? "" : "s"} (unweighted)`, undefined, averages, withAccuracy));
  const heads = METRIC_COLUMNS.map((c) => `<th scope="col" title="${c.better} is better">${esc(c.label)} ${c.better === "higher" ? "↑" : "↓"}</th>`);
  return `<section id="metrics-section">
<h2 id="metrics-title">Metrics</h2>
<p class="note">All metrics in %, two decimals; <span class="best">highlighted</span>: best per column within an OOD set. Threshold: the score at which FPR@95TPR was read (score ≥ threshold → accepted as ID).${withAccuracy ? " ID acc.: top-1 zero-shot accuracy over the labelled ID inputs." : ""}</p>
<div class="table-wrap"><table id="metrics" data-testid="metrics-table">
<thead><tr><th scope="col">Method</th>${heads.join("")}<th scope="col">Threshold</th><th scope="col">n ID / n OOD</th>${withAccuracy ? `<th scope="col">ID acc. ↑</th>` : ""}</tr></thead>
${groups.join("\n")}
</table></div>
</section>`;
}

/** Makes the ids inside one inline SVG unique in the page: SVGs from the same renderer reuse them. */
export function scopeSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}

function figure(kind: ChartKind, svg: string, label: string, attrs: string): string {
  return `<figure class="chart" data-chart="${kind}" data-testid="chart-${kind}" ${attrs} role="img" aria-label="${esc(label)}">${svg}</figure>`;
}

/** mean ± std in %, or the mean alone for a row evaluated once. */
function meanStdCell(mean: number | null, std: number | null | undefined): string {
  if (mean === null) return "—";
  return std === null || std === undefined ? formatPercent(mean) : `${formatPercent(mean)} ± ${formatPercent(std)}`;
}

/** The few-shot section: the curves, and each method's averages over the OOD sets per shot count. */
function shotsSection(summary: ShotsSummary, figures: readonly string[]): string {
  const rows = summary.rows
    .filter((r) => r.ood === "average")
    .map(
      (r) =>
        `<tr data-method="${esc(r.method)}" data-shots="${r.shots ?? ""}"><th scope="row">${esc(r.method)}</th><td data-metric="shots" class="num">${r.shots ?? "—"}</td>` +
        `<td data-metric="auroc">${meanStdCell(r.auroc, r.std?.auroc)}</td><td data-metric="fpr95">${meanStdCell(r.fpr95, r.std?.fpr95)}</td><td data-metric="idAccuracy">${meanStdCell(r.idAccuracy, r.std?.idAccuracy)}</td></tr>`,
    );
  return `<section id="shots">
<h2>Few-shot curves</h2>
<p class="note">Each fitted method was fitted on ${summary.shots.join(", ")} examples per class drawn from the fitting data, ${summary.seeds} seed${summary.seeds === 1 ? "" : "s"} each; values are means ± sample standard deviations over the seeds, AUROC and FPR@95TPR averaged over the OOD sets. Methods without fitting data were evaluated once (dashed lines). The other sections show each fitted method at ${summary.shots[summary.shots.length - 1]} shots, seed 0.</p>
<div class="charts">${figures.join("")}</div>
<div class="table-wrap"><table id="shots-table" data-testid="shots-table">
<thead><tr><th scope="col">Method</th><th scope="col">Shots</th><th scope="col">AUROC ↑</th><th scope="col">FPR@95TPR ↓</th><th scope="col">ID acc. ↑</th></tr></thead>
<tbody>${rows.join("")}</tbody>
</table></div>
</section>`;
}

/** The few-shot, ROC and histogram sections from the charts of chartsOf(result), rendered to SVG in its order. */
export function chartSections(result: EvalResult, rendered: readonly { chart: Chart; svg: string }[]): string {
  const shots: string[] = [];
  const roc: string[] = [];
  const hist = new Map<string, string[]>();
  let n = 0;
  for (const { chart, svg: raw } of rendered) {
    const svg = scopeSvgIds(raw, `c${n++}`);
    if (chart.kind === "shots") {
      shots.push(figure("shots", svg, `${chart.metric === "auroc" ? "AUROC" : "ID accuracy"} against shots`, `data-metric="${chart.metric ?? ""}"`));
    } else if (chart.kind === "roc") {
      roc.push(figure("roc", svg, `ROC curves against ${chart.ood}`, `data-ood="${esc(chart.ood)}"`));
    } else {
      const list = hist.get(chart.ood) ?? [];
      list.push(figure("histogram", svg, `Score histogram of ${chart.method ?? ""} against ${chart.ood}`, `data-method="${esc(chart.method ?? "")}" data-ood="${esc(chart.ood)}"`));
      hist.set(chart.ood, list);
    }
  }
  const histBlocks = [...hist].map(([ood, figs]) => `<h3>OOD set: ${esc(ood)}</h3><div class="charts">${figs.join("")}</div>`);
  return `${result.shots ? shotsSection(result.shots, shots) + "\n" : ""}<section id="roc">
<h2>ROC curves</h2>
<p class="note">ID is the positive class. The legend gives each method's AUROC; dots mark each method's operating point at its threshold.</p>
<div class="charts">${roc.join("")}</div>
</section>
<section id="histograms">
<h2>Score histograms</h2>
<p class="note">Each bar is the share of its set in that score bin, so sets of different sizes compare; the dashed rule is the method's threshold for that OOD set.</p>
${histBlocks.join("\n")}
</section>`;
}

function caseItem(s: ScoredSample, thumb: Thumbnail | undefined, error: boolean): string {
  const name = path.basename(s.input) || s.input;
  const picture =
    thumb?.ok === true
      ? `<img class="thumb" src="${thumb.uri}" width="${thumb.width}" height="${thumb.height}" alt="${esc(name)}">`
      : `<div class="thumb placeholder" data-reason="${esc(thumb?.ok === false ? thumb.reason : "no preview")}">${esc(thumb?.ok === false ? thumb.reason : "no preview")}</div>`;
  const label = s.label === undefined ? "" : `<span class="meta">label: ${esc(s.label)}</span>`;
  return `<li class="case${error ? " error" : " ok"}" title="${esc(s.input)}">${picture}<span class="score">score ${esc(formatScore(s.score))}${error ? "" : " ✓"}</span><span class="file">${esc(name)}</span><span class="meta">predicted: ${esc(s.predicted)}</span>${label}</li>`;
}

function caseList(kind: "false-positives" | "false-negatives", title: string, items: string[]): string {
  const body = items.length > 0 ? `<ol class="cases" data-list="${kind}">${items.join("")}</ol>` : `<p class="empty" data-list="${kind}">No inputs.</p>`;
  return `<div class="case-list"><h4>${title}</h4>${body}</div>`;
}

/** The hardest inputs of one method against one OOD set. */
export interface HardestPick {
  method: MethodResult;
  set: SetResult;
  /** The set's inputs scored highest: the worst false positives. */
  fp: ScoredSample[];
  /** The ID inputs scored lowest: the worst false negatives. */
  fn: ScoredSample[];
}

export function hardestSection(result: EvalResult, picks: readonly HardestPick[], thumbs: ReadonlyMap<string, Thumbnail>): string {
  const blocks = oodNames(result).map((ood) => {
    const inner = picks
      .filter((p) => p.set.ood === ood)
      .map((p) => {
        const threshold = p.set.metrics.threshold;
        const fp = p.fp.map((s) => caseItem(s, thumbs.get(s.input), s.score >= threshold));
        const fn = p.method.id.length === 0 ? [] : p.fn.map((s) => caseItem(s, thumbs.get(s.input), !(s.score >= threshold)));
        return `<section class="hardest" data-testid="hardest" data-method="${esc(p.method.method)}" data-ood="${esc(ood)}">
<h4 class="pair">${esc(p.method.method)} <span class="muted">· threshold ${esc(formatScore(threshold))}</span></h4>
<div class="case-lists">${caseList("false-positives", `Worst false positives: ${esc(ood)} inputs scored highest`, fp)}${caseList("false-negatives", `Worst false negatives: ${esc(result.idSet)} inputs scored lowest`, fn)}</div>
</section>`;
      });
    return `<h3>OOD set: ${esc(ood)}</h3>${inner.join("\n")}`;
  });
  return `<section id="hardest">
<h2>Hardest inputs</h2>
<p class="note">Per method and OOD set: the OOD inputs accepted as ID most confidently and the ID inputs rejected most confidently. Entries marked ✓ are still on the right side of the threshold. Inputs that are not readable image files show a placeholder.</p>
${blocks.join("\n")}
</section>`;
}

/**
 * A self-contained page: the Content-Security-Policy (no network, images only as data: URLs), the style
 * sheet, the sections and a footer. Shared by the evaluation and discovery reports.
 */
export function htmlDocument(title: string, style: string, sections: readonly string[], footer: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="clip-ood">
<link rel="icon" href="data:,">
<title>${esc(title)}</title>
<style>${style}</style>
</head>
<body>
<main>
${sections.join("\n")}
<footer>${esc(footer)} Self-contained: no network needed.</footer>
</main>
</body>
</html>
`;
}

/** The evaluation report's page around its sections. */
export function reportPage(result: EvalResult, sections: readonly string[]): string {
  return htmlDocument(`OOD evaluation: ${result.idSet} · ${result.model}`, STYLE, sections, `Generated by clip-ood from the evaluation of ${formatDate(result.createdAt)}.`);
}
