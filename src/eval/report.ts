/**
 * The evaluation as one self-contained HTML page: charts are inline SVG, thumbnails are data URIs and the
 * style sheet is inline, so the file opens from disk, offline, anywhere. A Content-Security-Policy that
 * allows no source but `data:` images and the inline style makes that a guarantee rather than a habit.
 * This file gathers the pieces (charts rendered to SVG, the hardest inputs and their thumbnails) and
 * writes the file; the markup is report-html.ts's.
 */
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { writeFileAtomic } from "../io/atomic-file.js";
import { ClipOodError, messageOf } from "../errors.js";
import { renderSvg } from "./chart-render.js";
import { chartsOf } from "./plots.js";
import { chartSections, header, hardestSection, metricsTable, reportPage } from "./report-html.js";
import type { HardestPick, Thumbnail } from "./report-html.js";
import type { EvalResult, ScoredSample } from "./types.js";

export interface ReportOptions {
  /** Thumbnails per list of hardest inputs (worst false positives, worst false negatives); default 8. */
  thumbnails?: number;
}

const DEFAULT_THUMBNAILS = 8;
const THUMB_SIZE = 128;
/** Images decoded at once: each decode holds a full-size bitmap in memory. */
const THUMB_CONCURRENCY = 4;

/** The k samples with the highest (or lowest) scores, ties in input order, NaN scores never chosen. */
export function extremeSamples(samples: readonly ScoredSample[], k: number, which: "highest" | "lowest"): ScoredSample[] {
  const sign = which === "highest" ? -1 : 1;
  return samples
    .map((s, i) => ({ s, i }))
    .filter(({ s }) => !Number.isNaN(s.score))
    .sort((a, b) => sign * (a.s.score - b.s.score) || a.i - b.i)
    .slice(0, Math.max(0, k))
    .map(({ s }) => s);
}

/** A JPEG data URI of an input that fits in THUMB_SIZE², or why there is none; never throws. */
async function thumbnail(input: string): Promise<Thumbnail> {
  try {
    const st = await stat(input);
    if (!st.isFile()) return { ok: false, reason: "not a file" };
  } catch {
    return { ok: false, reason: "file not found" };
  }
  try {
    const { data, info } = await sharp(input)
      .rotate()
      .resize({ width: THUMB_SIZE, height: THUMB_SIZE, fit: "inside", withoutEnlargement: true })
      .flatten({ background: "#ffffff" })
      .jpeg({ quality: 80 })
      .toBuffer({ resolveWithObject: true });
    return { ok: true, uri: `data:image/jpeg;base64,${data.toString("base64")}`, width: info.width, height: info.height };
  } catch {
    return { ok: false, reason: "not a readable image" };
  }
}

/** Thumbnails of distinct inputs, a few decodes at a time (the discovery report's too); never throws. */
export async function thumbnails(inputs: Iterable<string>): Promise<Map<string, Thumbnail>> {
  const queue = [...new Set(inputs)];
  const out = new Map<string, Thumbnail>();
  let next = 0;
  const worker = async () => {
    while (next < queue.length) {
      const input = queue[next++]!;
      out.set(input, await thumbnail(input));
    }
  };
  await Promise.all(Array.from({ length: Math.min(THUMB_CONCURRENCY, queue.length) }, worker));
  return out;
}

/** The hardest inputs of every method against every OOD set, with thumbnails of those in image sets. */
async function hardest(result: EvalResult, k: number): Promise<string> {
  const picks: HardestPick[] = result.methods.flatMap((m) =>
    m.sets.map((s) => ({
      method: m,
      set: s,
      fp: extremeSamples(s.samples, k, "highest"),
      fn: extremeSamples(m.id, k, "lowest"),
    })),
  );
  const opened = new Set(result.imageSets ?? []);
  const thumbs = await thumbnails(
    picks.flatMap((p) => [...(opened.has(p.set.ood) ? p.fp : []), ...(opened.has(result.idSet) ? p.fn : [])].map((s) => s.input)),
  );
  return hardestSection(result, picks, thumbs);
}

function validThumbnails(opts: ReportOptions): number {
  const k = opts.thumbnails ?? DEFAULT_THUMBNAILS;
  if (!Number.isInteger(k) || k < 0) {
    throw new ClipOodError("USAGE", `thumbnails per list must be a whole number ≥ 0, got ${String(opts.thumbnails)}`, {
      hint: "pass e.g. 8, or 0 to leave the hardest inputs out",
    });
  }
  return k;
}

/** The report as one offline HTML document. */
export async function renderReport(result: EvalResult, opts: ReportOptions = {}): Promise<string> {
  const k = validThumbnails(opts);
  const rendered = [];
  for (const chart of chartsOf(result)) rendered.push({ chart, svg: await renderSvg(chart.spec) });
  const parts = [header(result), metricsTable(result), chartSections(result, rendered)];
  if (k > 0) parts.push(await hardest(result, k));
  return reportPage(result, parts);
}

/** Writes the report to file (its folder is created when missing); returns the file's path. */
export async function writeReport(result: EvalResult, file: string, opts: ReportOptions = {}): Promise<string> {
  const html = await renderReport(result, opts);
  try {
    await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    // Whole or not at all: a half-written page would open as a broken report.
    await writeFileAtomic(file, html);
  } catch (e) {
    throw new ClipOodError("INPUT", `cannot write the report ${file}: ${messageOf(e)}`, {
      hint: "check that the folder is writable and the disk is not full",
      cause: e,
    });
  }
  return file;
}
