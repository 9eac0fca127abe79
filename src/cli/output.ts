/**
 * Result writers for the CLI: aligned tables for people, JSON Lines and CSV for scripts, and the
 * wording of counts. Rows are written as results arrive, so a long job's output is never held back or lost.
 */
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { partialPath } from "../io/atomic-file.js";

export type Format = "table" | "json" | "csv";

let closed = false;

/**
 * Once stdout's reader has gone (EPIPE from `clip-ood … | head`), further output is pointless:
 * writes are dropped and image loops stop, instead of crashing with an unhandled stream error.
 */
export function watchStdout(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") closed = true;
    else throw e;
  });
}

export function stdoutClosed(): boolean {
  return closed;
}

export interface RowWriter {
  /** One result; `cells` feed the table and CSV, `json` the JSON Lines output. */
  row(cells: readonly string[], json: Record<string, unknown>): void;
  /** A failed input: JSON Lines carries it as {input, error}; tables and CSV leave it to stderr. */
  failure(input: string, error: string): void;
}

export function csvCell(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A count and its noun in the right number: "1 class", "2 classes", "1 embedding". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * The width of a column holding these cells: the longest, at least `min`. A loop, not Math.max(...):
 * spreading the paths of a large folder into one call overflows the stack.
 */
export function widest(cells: Iterable<string>, min = 5): number {
  let w = min;
  for (const c of cells) if (c.length > w) w = c.length;
  return w;
}

/** Each column's width for a table whose rows are all known: its widest cell, header included. */
export function columnWidths(rows: readonly (readonly string[])[]): number[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return widths;
}

export function rowWriter(format: Format, out: Writable, header: readonly string[], widths: readonly number[]): RowWriter {
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    if (format === "csv") out.write(header.map(csvCell).join(",") + "\n");
    if (format === "table") out.write(formatTableRow(header, widths) + "\n");
  };
  return {
    row(cells, json) {
      if (closed) return;
      start();
      if (format === "json") out.write(JSON.stringify(json) + "\n");
      else if (format === "csv") out.write(cells.map(csvCell).join(",") + "\n");
      else out.write(formatTableRow(cells, widths) + "\n");
    },
    failure(input, error) {
      if (!closed && format === "json") out.write(JSON.stringify({ input, error }) + "\n");
    },
  };
}

/**
 * A table row, each cell padded to its column's width. A cell wider than its column is shown whole and
 * pushes the rest of its row: a path cut short could not be copied or told from its neighbours.
 */
function formatTableRow(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i] ?? c.length) : c))
    .join("  ")
    .trimEnd();
}

/**
 * A file written as results come in (embed --out, export), under a temporary name until `close`
 * renames it into place: a run that fails or is killed leaves no partial file that reads as complete.
 * The error listener is attached at once, so a write failing between results (a full disk) is kept and
 * thrown by `close`, never left unhandled; `abort` removes the partial file.
 */
export function outputFile(file: string): { stream: Writable; close(): Promise<void>; abort(): Promise<void> } {
  const part = partialPath(file);
  const stream = createWriteStream(part);
  let failure: unknown;
  stream.on("error", (e) => (failure ??= e));
  const abort = async () => {
    stream.destroy();
    await rm(part, { force: true }).catch(() => {});
  };
  return {
    stream,
    abort,
    async close() {
      if (failure === undefined) {
        stream.end();
        await finished(stream).catch((e: unknown) => (failure ??= e));
      }
      if (failure === undefined) await rename(part, file).catch((e: unknown) => (failure = e));
      if (failure !== undefined) {
        await abort();
        throw failure;
      }
    },
  };
}
