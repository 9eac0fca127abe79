/**
 * What every chart of the evaluation shares: one look (fonts, sizes, colours of the frame), the number
 * formats the report's table also uses, and lookups into an EvalResult that fail with a usable message.
 */
import type { TopLevelSpec } from "vega-lite";
import { ClipOodError } from "../errors.js";
import type { EvalResult, MethodResult, ScoredSample, SetResult } from "./types.js";

export type ChartSpec = TopLevelSpec;

/**
 * Fonts that exist on the usual Linux, macOS and Windows machines; resvg takes the first one it has,
 * and the PNG renderer's default family (chart-render.ts) covers machines with none of them.
 */
const FONT = "DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif";

export const CONFIG = {
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

export const scoresOf = (samples: readonly ScoredSample[]): Float64Array => Float64Array.from(samples, (s) => s.score);
/** The metrics refuse NaN and ±∞; a chart draws what it can rather than failing the whole report. */
export const finite = (a: Float64Array): Float64Array => a.filter((v) => Number.isFinite(v));

/** The OOD sets in the order they first appear over the methods. */
export function oodNames(result: EvalResult): string[] {
  const names: string[] = [];
  for (const m of result.methods) for (const s of m.sets) if (!names.includes(s.ood)) names.push(s.ood);
  return names;
}

export function findSet(method: MethodResult, oodName: string): SetResult | undefined {
  return method.sets.find((s) => s.ood === oodName);
}

export function unknown(what: string, name: string, known: string[]): ClipOodError {
  return new ClipOodError("USAGE", `the evaluation has no ${what} named "${name}"`, {
    hint: known.length > 0 ? `use one of: ${known.map((k) => `"${k}"`).join(", ")}` : "the evaluation is empty",
  });
}

