/**
 * What every bench shares: the block format written into docs/PERFORMANCE.md, the machine line, and
 * small statistics and formatting helpers.
 */
import os from "node:os";

export interface BenchBlock {
  /** Unique within the bench; a rerun replaces the block with the same key. */
  key: string;
  markdown: string;
}

export interface Bench {
  /** The section's heading and its standing text (what is measured and how to read it). */
  title: string;
  intro: string;
  run(argv: string[], command: string): Promise<BenchBlock[]>;
}

// ---------------------------------------------------------------------------------------------------
// Shared helpers

/** One line naming the machine and the date, for every block of figures. */
export function machineLine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  const gib = (os.totalmem() / 2 ** 30).toFixed(0);
  return `${cpu}, ${os.availableParallelism()} cores, ${gib} GiB RAM, ${os.platform()} ${os.release()}, Node ${process.version}; ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/**
 * How busy the machine was around a measurement, from the 1-minute load average read at its start
 * (`atStart`, `os.loadavg()[0]` then) and now: on a shared machine the figures mean little without it.
 */
export function loadNote(atStart: number): string {
  const cores = os.availableParallelism();
  const now = os.loadavg()[0]!;
  const busy = Math.max(atStart, now) > cores + 0.5 ? "the machine was shared with other work" : "no other heavy work ran";
  return `load average ${atStart.toFixed(1)} at the start and ${now.toFixed(1)} at the end on ${cores} cores: ${busy}`;
}

/**
 * The opening of a block of figures: heading, machine, the command that measured them (`note` follows
 * it, e.g. the seed), and the header of the table for the rows that follow (`columns`, by default
 * measure and value).
 */
export function figuresHead(heading: string, command: string, note = "", columns: readonly string[] = ["measure", "value"]): string[] {
  return [`### ${heading}`, "", `Machine: ${machineLine()}.`, `Command: \`${command}\`${note}.`, "", `| ${columns.join(" | ")} |`, `|${"---|".repeat(columns.length)}`];
}

export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
export const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
export const seconds = (t0: number) => (performance.now() - t0) / 1000;
export const count = (n: number) => n.toLocaleString("en");

export function ints(flag: string, v: string): number[] {
  const xs = v.split(",").map((s) => Number(s.replace(/_/g, "")));
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--${flag} takes positive integers separated by commas, got "${v}"`);
  return xs;
}

export function log(msg: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}
