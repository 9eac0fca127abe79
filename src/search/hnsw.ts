/**
 * An HNSW graph kept in step with a collection whose rows come and go, without ever rebuilding it.
 *
 * Keys are contents, not rows: the store keeps one embedding per content (hash) and may list it under
 * several paths, so the graph holds each content once, under a key that is its position in the
 * `covered` list (key i ↔ covered[i]; null once removed). Keys are handed out in order and never
 * reused, so two contents can never share one (no hash-derived keys, hence no collisions to detect),
 * and a row's position in the store, which every insertion before it shifts, never matters.
 *
 * Against the collection's current rows the graph has three kinds of contents: those it holds (each
 * key's row in `rowOfKey`), `pending` ones it lacks (new since the graph was last saved) and `gone`
 * keys whose content left the collection. A search asks the graph for candidates, drops gone ones,
 * adds every pending content, and ranks them all by their exact score from the rows (so an f16 graph's
 * approximate distances never decide the order, and scores equal the exact engine's). `applyChanges`
 * folds pending and gone into the graph itself (usearch frees removed nodes and reuses them for the
 * next additions); the caller (src/store/ann-files.ts) decides when, from `changes`.
 *
 * Recall self-check: when a graph is built, and when changes fold in enough new contents, a seeded
 * sample of the contents being inserted is held back, searched at growing widths against exact answers
 * (the neighbour engine, engine.ts), and inserted after. The width kept is the smallest whose
 * recall@10 reaches the target with margin. Held back, not merely sampled: a query that is already a
 * node of the graph leads the search to itself, whose links are its nearest neighbours, and measured
 * ~0.005 more recall than new queries get (even after usearch's remove, which keeps the node as a
 * waypoint).
 */
import { mulberry32 } from "../maths/random.js";
import { AnnIndex } from "./ann.js";
import type { AnnAddOptions, AnnOptions } from "./ann.js";
import { exactTopKBatch } from "./engine.js";
import type { SearchHit } from "./exact.js";

/** The rows a graph serves: a content hash per row, and the rows' vectors (rows × dim). */
export interface ContentRows {
  hashes: readonly string[];
  dim: number;
  data: Float32Array;
}

/** A hit: the content's first row (in the rows' order) and its exact score. */
export interface ContentHit {
  row: number;
  score: number;
}

/** Recall@10 is what the self-check measures, as the issue and the bench report it. */
export const RECALL_K = 10;
/** The recall@10 the width must reach. */
export const RECALL_TARGET = 0.98;
/**
 * What the self-check aims at on its own sample. Its sample is contents of the collection, and queries
 * from outside it found fewer of their neighbours at the chosen width: on held-out queries of the
 * CLIP-shaped bench data, recall@10 came out 0.009–0.014 below the sample's (200k rows: 0.979 on 2,000
 * queries against 0.989; 1M: 0.974 and 0.979 on 200 against 0.987 and 0.991), a gap beyond the sample's
 * ±0.004 that we have not explained. Text queries, across CLIP's modality gap, are likely further out
 * still. Aiming one point higher costs ~1.5× the width (~2 ms a query at 1M) and gave held-out queries
 * ≥ 0.98 (docs/PERFORMANCE.md).
 */
export const RECALL_AIM = 0.99;
/**
 * Contents held back and searched by the self-check. Per-query recall on CLIP-shaped data has a standard
 * deviation of 0.05–0.09 (a few queries in sparse regions lose several neighbours), so 500 queries
 * measure recall@10 to ±0.004 (one standard error), a few seconds of exact answers even at a million.
 */
export const RECALL_SAMPLE = 500;
/** Fewer new contents than this do not make a sample worth measuring on. */
export const MIN_RECALL_SAMPLE = 100;
/** Widest search the self-check tries; past it the index reports the recall it reached. */
export const MAX_WIDTH = 4096;
const WIDTH_LADDER = [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096];

export interface WidthCheck {
  width: number;
  /** Recall@10 measured at that width. */
  recall: number;
  /** Queries it was measured on. */
  queries: number;
  /** Whether the target was reached (else `width` is MAX_WIDTH, or the widest tried). */
  reached: boolean;
  /** What the measuring took (exact answers and every width tried), seconds. */
  seconds?: number;
}

/** How the self-check runs: its sample's size and seed, and the widths it may try. */
export interface CheckOptions {
  sample?: number;
  seed?: number;
  start?: number;
  max?: number;
}

/**
 * Whether per-query recalls reach the target with their sampling error: their mean less two standard
 * errors of it must be ≥ RECALL_TARGET, so that a width chosen on a few hundred queries holds on
 * others. Per query, not per neighbour: a query's ten neighbours are found or missed together (one
 * hard region misses several), so a binomial error over the 3,000 neighbours would be too small.
 * Returns the mean too. Pure.
 */
export function recallPasses(perQuery: readonly number[], target = RECALL_TARGET): { recall: number; passes: boolean } {
  const n = perQuery.length;
  if (n === 0) return { recall: 1, passes: true };
  const mean = perQuery.reduce((s, x) => s + x, 0) / n;
  const variance = n > 1 ? perQuery.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
  return { recall: mean, passes: mean - 2 * Math.sqrt(variance / n) >= target };
}

/**
 * The smallest width in [start, max] that passes, to within 1/16, assuming recall does not fall as the
 * width grows: up a ladder (each step ×1.33–1.5) to the first width that passes, then bisection between
 * it and the last one that failed until they are within 1/16 of each other (a few more evaluations,
 * each a few hundred searches). Returns the widest tried when none passes. Pure but for `measure`.
 */
export async function smallestWidth(
  measure: (width: number) => Promise<{ recall: number; passes: boolean }> | { recall: number; passes: boolean },
  start = WIDTH_LADDER[0]!,
  max = MAX_WIDTH,
): Promise<{ width: number; recall: number; reached: boolean }> {
  const ladder = [...new Set([Math.max(1, Math.floor(start)), ...WIDTH_LADDER.filter((w) => w > start && w < max), max])].filter((w) => w <= max);
  let failed = 0;
  let best: { width: number; recall: number } | undefined;
  for (const w of ladder) {
    const m = await measure(w);
    if (m.passes) {
      best = { width: w, recall: m.recall };
      break;
    }
    failed = w;
    if (w === ladder[ladder.length - 1]) return { width: w, recall: m.recall, reached: false };
  }
  if (!best) return { width: max, recall: 0, reached: false };
  let lo = failed;
  while (best.width - lo > Math.max(1, Math.floor(lo / 16))) {
    const mid = Math.floor((lo + best.width) / 2);
    const m = await measure(mid);
    if (m.passes) best = { width: mid, recall: m.recall };
    else lo = mid;
  }
  return { ...best, reached: true };
}

/** What the rows and the graph disagree on. */
export interface GraphChanges {
  /** Contents in the rows that the graph lacks. */
  pending: number;
  /** Keys in the graph whose content is no longer in the rows. */
  gone: number;
  /** Contents the graph holds that are still in the rows. */
  held: number;
}

/** Dot product in float64, summed in the order exact.ts sums it, so scores equal the exact engine's. */
function dot(data: Float32Array, row: number, dim: number, query: Float32Array): number {
  let s = 0;
  const o = row * dim;
  for (let j = 0; j < dim; j++) s += data[o + j]! * query[j]!;
  return s;
}

export class ContentGraph {
  /** Contents the graph holds that are in the rows. */
  private heldCount = 0;
  /** First row of each pending content. */
  private pendingRows: number[] = [];
  /** Keys whose content left the rows. */
  private gone = new Set<number>();
  /** First row of each key's content (−1: gone or removed). */
  private rowOfKey: Int32Array = new Int32Array(0);
  /** Each content's first row, in row order. */
  private readonly first = new Map<string, number>();
  /** The next row with the same content (−1: none). */
  private readonly nextCopy: Int32Array;

  private constructor(
    private index: AnnIndex,
    /** Key i ↔ covered[i]; null for removed keys. */
    readonly covered: (string | null)[],
    readonly rows: ContentRows,
  ) {
    // One Map over the rows (the cost of a diff at a million rows is mostly building it): copies are
    // chained through typed arrays indexed by row.
    const n = rows.hashes.length;
    this.nextCopy = new Int32Array(n).fill(-1);
    const lastCopy = new Int32Array(n);
    rows.hashes.forEach((h, row) => {
      const f = this.first.get(h);
      if (f === undefined) {
        this.first.set(h, row);
        lastCopy[row] = row;
      } else {
        this.nextCopy[lastCopy[f]!] = row;
        lastCopy[f] = row;
      }
    });
    this.attach();
  }

  /**
   * A graph of `rows`' contents (keys in the order of their first rows). With `check`, the self-check
   * sets its width (a sample held back until measured); without, it keeps the options' width.
   */
  static async build(rows: ContentRows, options: AnnOptions & AnnAddOptions = {}, check?: CheckOptions): Promise<{ graph: ContentGraph; check?: WidthCheck }> {
    const contents = [...new Set(rows.hashes)];
    const graph = new ContentGraph(AnnIndex.create(rows.dim, options), contents, rows);
    const keys = contents.map((_, i) => i);
    const firstRows = contents.map((h) => graph.first.get(h)!);
    if (!check) {
      graph.insert(keys, firstRows, options);
      return { graph };
    }
    const measured = await graph.insertChecked(keys, firstRows, options, check);
    return { graph, check: measured ?? graph.exhaustive() };
  }

  /** An existing graph (loaded or viewed) whose keys are `covered`, against the current `rows`. */
  static attach(index: AnnIndex, covered: (string | null)[], rows: ContentRows): ContentGraph {
    return new ContentGraph(index, covered, rows);
  }

  /** Distinct contents in the rows. */
  get contents(): number {
    return this.first.size;
  }

  get ann(): AnnIndex {
    return this.index;
  }

  get width(): number {
    return this.index.width;
  }

  set width(w: number) {
    this.index.width = w;
  }

  /** Every row with the content of `row` (its first row), in row order. */
  copiesOf(row: number): number[] {
    const rows: number[] = [];
    for (let r = row; r >= 0; r = this.nextCopy[r]!) rows.push(r);
    return rows;
  }

  /** Counts the graph and the rows disagree on. */
  changes(): GraphChanges {
    return { pending: this.pendingRows.length, gone: this.gone.size, held: this.heldCount };
  }

  /** Recomputes what the graph holds, pending and gone from `covered` and the rows. */
  private attach(): void {
    const held = new Uint8Array(this.rows.hashes.length);
    const rowOfKey = new Int32Array(this.covered.length).fill(-1);
    const gone = new Set<number>();
    let heldCount = 0;
    this.covered.forEach((hash, key) => {
      if (hash === null) return;
      const row = this.first.get(hash);
      // A content listed under a second key (only a damaged list could) is dropped like a gone one.
      if (row === undefined || held[row] === 1) gone.add(key);
      else {
        held[row] = 1;
        heldCount++;
        rowOfKey[key] = row;
      }
    });
    const pending: number[] = [];
    for (const row of this.first.values()) if (held[row] === 0) pending.push(row);
    this.heldCount = heldCount;
    this.rowOfKey = rowOfKey;
    this.gone = gone;
    this.pendingRows = pending;
  }

  /**
   * Folds the differences into the graph: gone keys removed, pending contents added under new keys.
   * With `check`, and enough new contents to sample, the width is measured again on them. The index
   * must be loaded, not memory-mapped.
   */
  async applyChanges(options: AnnAddOptions = {}, check?: CheckOptions): Promise<{ added: number; removed: number; check?: WidthCheck }> {
    const removed = [...this.gone];
    this.index.remove(removed);
    for (const key of removed) this.covered[key] = null;
    const rows = this.pendingRows;
    const keys = rows.map((_, i) => this.covered.length + i);
    for (const row of rows) this.covered.push(this.rows.hashes[row]!);
    this.attach();
    const measured = check ? await this.insertChecked(keys, rows, options, check) : (this.insert(keys, rows, options), undefined);
    return { added: rows.length, removed: removed.length, ...(measured ? { check: measured } : {}) };
  }

  /** Inserts contents; progress counts from `done` of `total` (an insertion in two parts reports as one). */
  private insert(keys: readonly number[], rows: readonly number[], options: AnnAddOptions, done = 0, total = keys.length): void {
    const report = options.onProgress;
    this.index.add(keys, this.rows.data, { rows, ...addOptions({ ...options, ...(report ? { onProgress: (d: number) => report(done + d, total) } : {}) }) });
  }

  /**
   * Inserts these contents with a seeded sample of them held back, measures the width on the sample,
   * then inserts it. Without enough contents to sample, inserts them all and returns undefined.
   */
  private async insertChecked(keys: readonly number[], rows: readonly number[], options: AnnAddOptions, o: CheckOptions): Promise<WidthCheck | undefined> {
    const n = Math.min(o.sample ?? RECALL_SAMPLE, Math.floor(keys.length / 10));
    if (n < Math.min(MIN_RECALL_SAMPLE, o.sample ?? MIN_RECALL_SAMPLE)) {
      this.insert(keys, rows, options);
      return undefined;
    }
    // A seeded sample without replacement (partial Fisher–Yates over positions), so a check repeats.
    const order = keys.map((_, i) => i);
    const r = mulberry32(o.seed ?? 1);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(r() * (order.length - i));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const held = new Set(order.slice(0, n));
    const rest = keys.flatMap((_, i) => (held.has(i) ? [] : [i]));
    this.insert(rest.map((i) => keys[i]!), rest.map((i) => rows[i]!), options, 0, keys.length);
    const sample = order.slice(0, n);
    const check = await this.measureWidth(sample.map((i) => rows[i]!), o);
    this.insert(sample.map((i) => keys[i]!), sample.map((i) => rows[i]!), options, rest.length, keys.length);
    return check;
  }

  /** A width that visits every node: for graphs too small to sample. */
  private exhaustive(): WidthCheck {
    this.index.width = Math.max(1, this.index.size);
    return { width: this.index.width, recall: 1, queries: 0, reached: true };
  }

  /**
   * Recall@10 at growing widths for queries `sample` (rows whose contents are in the rows but not yet
   * in the graph), against exact answers over the rows without them; sets the width to the smallest
   * that passes `recallPasses` at RECALL_AIM (within 1/16), starting from `start`.
   */
  private async measureWidth(sample: readonly number[], o: CheckOptions): Promise<WidthCheck> {
    const t0 = performance.now();
    const { data, dim } = this.rows;
    const n = sample.length;
    const queries = new Float32Array(n * dim);
    sample.forEach((row, i) => queries.set(data.subarray(row * dim, (row + 1) * dim), i * dim));
    const hashes = this.rows.hashes;
    const outside = new Set(sample.map((row) => hashes[row]!));
    // Exact answers over the rows without the sample: one content may fill several rows (copies) and
    // sampled ones are skipped, so take enough rows to find RECALL_K others.
    const depth = Math.min(data.length / dim, 4 * RECALL_K + n);
    const exact = await exactTopKBatch(data, dim, queries, depth);
    const truth = sample.map((_, i) => {
      const set = new Set<string>();
      for (let j = 0; j < exact.count && set.size < RECALL_K; j++) {
        const h = hashes[exact.indices[i * exact.count + j]!]!;
        if (!outside.has(h)) set.add(h);
      }
      return set;
    });
    const perQuery = (width: number) =>
      sample.map((_, i) => {
        const query = queries.subarray(i * dim, (i + 1) * dim);
        // The graph's own answer, re-scored as `search` does, without the pending rows it adds.
        const ranked = this.index
          .search(query, Math.max(RECALL_K, width), width)
          .map((h) => this.rowOfKey[h.index] ?? -1)
          .filter((row) => row >= 0)
          .map((row) => ({ row, score: dot(data, row, dim, query) }))
          .sort((a, b) => b.score - a.score || a.row - b.row)
          .slice(0, RECALL_K);
        const want = truth[i]!;
        return want.size === 0 ? 1 : ranked.filter((h) => want.has(hashes[h.row]!)).length / want.size;
      });
    const best = await smallestWidth((width) => recallPasses(perQuery(width), RECALL_AIM), o.start, o.max);
    this.index.width = best.width;
    // Short of the aim at the widest search, the promise (RECALL_TARGET) may still hold there.
    const reached = best.reached || recallPasses(perQuery(best.width)).passes;
    return { ...best, reached, queries: n, seconds: (performance.now() - t0) / 1000 };
  }

  /**
   * The k contents most similar to `query`, best first, each as its first row with its exact score (ties
   * to the lower row). The graph's candidates at `width`, less gone ones, plus every pending content.
   */
  search(query: Float32Array, k: number, width = this.index.width): ContentHit[] {
    return this.rank(query, k, width, (ask) => this.index.search(query, ask, ask));
  }

  /** `search` for many queries (rows of `queries`), the graph searched in one native call on every core. */
  searchBatch(queries: Float32Array, k: number, width = this.index.width): ContentHit[][] {
    const { dim } = this.rows;
    const want = Math.min(Math.floor(k), this.contents);
    const ask = Math.max(want, Math.floor(width));
    const first = this.index.searchBatch(queries, ask, ask);
    return first.map((candidates, q) => {
      const query = queries.subarray(q * dim, (q + 1) * dim);
      let used = false;
      // The batch's own candidates first; a query that needs a wider look searches again on its own.
      return this.rank(query, k, width, (n) => (used || n !== ask ? this.index.search(query, n, n) : ((used = true), candidates)));
    });
  }

  private rank(query: Float32Array, k: number, width: number, candidatesAt: (ask: number) => SearchHit[]): ContentHit[] {
    const want = Math.min(Math.floor(k), this.contents);
    if (!(want > 0)) return [];
    const { data, dim } = this.rows;
    let ask = Math.max(want, Math.floor(width));
    for (;;) {
      // Every candidate the width explores: removed contents still in the graph take places among them.
      const candidates = candidatesAt(ask);
      const seen: ContentHit[] = [];
      for (const h of candidates) {
        const row = this.rowOfKey[h.index] ?? -1;
        if (row >= 0) seen.push({ row, score: dot(data, row, dim, query) });
      }
      if (seen.length < want && candidates.length < this.index.size) {
        ask *= 2;
        continue;
      }
      for (const row of this.pendingRows) seen.push({ row, score: dot(data, row, dim, query) });
      seen.sort((a, b) => b.score - a.score || a.row - b.row);
      return seen.slice(0, want);
    }
  }
}

function addOptions(o: AnnAddOptions): AnnAddOptions {
  return { ...(o.threads === undefined ? {} : { threads: o.threads }), ...(o.onProgress ? { onProgress: o.onProgress } : {}), ...(o.signal ? { signal: o.signal } : {}) };
}
