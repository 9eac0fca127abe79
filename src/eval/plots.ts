/**
 * Every chart of an evaluation under a unique file stem, and writing them as SVG and PNG files; the
 * charts themselves are built in roc-chart.ts, histogram-chart.ts and shots-chart.ts.
 */
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { ClipOodError, messageOf } from "../errors.js";
import { writeFileAtomic } from "../io/atomic-file.js";
import { oodNames } from "./chart-common.js";
import type { ChartSpec } from "./chart-common.js";
import { renderPng, renderSvg } from "./chart-render.js";
import { histogramChart } from "./histogram-chart.js";
import { rocChart } from "./roc-chart.js";
import { hasShotsChart, shotsChart } from "./shots-chart.js";
import type { ShotsMetric } from "./shots-chart.js";
import type { EvalResult } from "./types.js";

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
