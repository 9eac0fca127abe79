/** Number and text formatting shared by the tabs. */

export function fmtScore(x: number): string {
  return Math.abs(x) >= 1000 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toFixed(4);
}

export function fmtPct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** Comma list or, when the text has several lines, one item per line. */
export function splitList(text: string): string[] {
  const items = /\n/.test(text.trim()) ? text.split(/\r?\n/) : text.split(",");
  return items.map((s) => s.trim()).filter((s) => s !== "");
}
