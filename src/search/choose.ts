/**
 * Which neighbour engine ranks a collection: the exact scan (exact.ts's `exactSearch`: every row,
 * exact scores, no index to build or keep) or the HNSW graph (hnsw.ts: a few milliseconds a query at
 * any size, but a graph built once and kept beside the store). The exact scan is preferred while one
 * query's scan fits the latency budget; its speed is measured in this process on the collection's own
 * rows, so the switch happens where this machine needs it, not at a size guessed for another.
 *
 * The compressed scan (src/search/compressed.ts: an int8 copy scanned first, the best candidates
 * re-ranked exactly) is measured but not chosen here (`npm run bench -- scan`, docs/PERFORMANCE.md): on
 * this CPU it is only 1.3–1.4× faster than the exact scan for one query, its int8 copy costs 6–9 s per
 * million rows to build in each process (longer than the searches a CLI run makes), and the band of
 * sizes where it would meet the budget and the exact scan would not is narrow (about 1.4× in rows),
 * above which the graph answers in milliseconds anyway. Library users holding a bank for many
 * searches can use it through searcher.ts. `EngineKind` and `chooseEngine` are where it would slot in
 * if a faster kernel changes those figures.
 */
import { exactSearch } from "./exact.js";

export type EngineKind = "exact" | "hnsw";

/** One query's exact scan may take this long before the graph is preferred. */
export const LATENCY_BUDGET_MS = 100;

/**
 * Collections up to this size are always scanned: a scan of 20,000 × 512 reads 40 MB, a few
 * milliseconds on any machine, and an index there would cost more to keep than it saves.
 */
export const MIN_ANN_ROWS = 20_000;

/**
 * Once a graph exists it is kept in use down to half the budget, so that a collection near the switch
 * (or a machine whose measured speed varies with its load) does not alternate between building and
 * dropping its index.
 */
export const KEEP_INDEX_FRACTION = 0.5;

export interface EngineChoice {
  engine: EngineKind;
  /** Why, in words (for notes and stats). */
  why: string;
  /** The exact scan's predicted time for one query, when it was measured. */
  predictedExactMs?: number;
}

export interface EngineChoiceInput {
  /** Rows a query is ranked against. */
  rows: number;
  /** The user's `--ann-threshold`: above it the graph, up to it the exact scan, whatever the speed. */
  annThreshold?: number;
  /** The exact scan's measured speed, rows per second (measureExactRate). */
  exactRowsPerSecond?: number;
  /** Whether a graph is already kept for this collection. */
  indexExists?: boolean;
  budgetMs?: number;
}

/** The engine for one collection. Pure. */
export function chooseEngine(o: EngineChoiceInput): EngineChoice {
  if (o.annThreshold !== undefined) {
    return o.rows > o.annThreshold
      ? { engine: "hnsw", why: `${o.rows} rows, above --ann-threshold ${o.annThreshold}` }
      : { engine: "exact", why: `${o.rows} rows, not above --ann-threshold ${o.annThreshold}` };
  }
  if (o.rows <= MIN_ANN_ROWS) return { engine: "exact", why: `${o.rows} rows: small enough to scan` };
  if (!(o.exactRowsPerSecond !== undefined && o.exactRowsPerSecond > 0)) return { engine: "hnsw", why: "the exact scan's speed is unknown" };
  const budget = o.budgetMs ?? LATENCY_BUDGET_MS;
  const predictedExactMs = (o.rows / o.exactRowsPerSecond) * 1000;
  const limit = o.indexExists ? budget * KEEP_INDEX_FRACTION : budget;
  const ms = predictedExactMs.toFixed(0);
  return predictedExactMs > limit
    ? { engine: "hnsw", why: `an exact scan would take about ${ms} ms, over the ${limit} ms budget`, predictedExactMs }
    : { engine: "exact", why: `an exact scan takes about ${ms} ms, within the ${limit} ms budget`, predictedExactMs };
}

/** Rows scanned to measure the speed: enough to run the batched engine as a full scan does. */
const PROBE_ROWS = 65_536;
const measured = new Map<number, number>();

/**
 * The exact scan's speed on this machine now, in rows per second, measured once per process and
 * dimension on (up to PROBE_ROWS of) the collection's own rows: the faster of two timed scans, the
 * first of which also pays for the engine's start-up. About 20–60 ms, spent only when a collection is
 * large enough for the answer to matter.
 */
export async function measureExactRate(data: Float32Array, dim: number): Promise<number> {
  const known = measured.get(dim);
  if (known !== undefined) return known;
  const rows = Math.min(PROBE_ROWS, Math.floor(data.length / dim));
  if (rows === 0) return Infinity;
  const bank = data.subarray(0, rows * dim);
  const query = bank.subarray(0, dim);
  let best = Infinity;
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now();
    await exactSearch(bank, dim, query, 10);
    best = Math.min(best, performance.now() - t0);
  }
  const rate = rows / (Math.max(best, 0.01) / 1000);
  measured.set(dim, rate);
  return rate;
}
