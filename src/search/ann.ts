/**
 * Approximate nearest neighbours: a thin wrapper over usearch's HNSW graph (cosine metric), keyed by
 * caller-chosen integer keys. A graph grows in place: rows are added under new keys and removed by key
 * (usearch marks the node free and reuses it for the next addition), so a collection that changes never
 * needs a new graph. src/search/hnsw.ts keeps a graph in step with a store's contents; this module only
 * holds the graph, its file format and its search width.
 *
 * Search width: usearch explores max(expansion_search, wanted) candidates, so a search that asks for
 * `max(k, width)` hits and keeps the best k runs at that width without rebuilding or reloading the
 * graph. That is what lets the recall self-check (hnsw.ts) try widths on the graph it just built.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import type * as Usearch from "usearch";
import { ClipOodError, messageOf } from "../errors.js";
import type { SearchHit } from "./exact.js";

/**
 * With `--ann-threshold` given, collections larger than it are searched with the HNSW index, smaller
 * ones exactly; without it the choice is made from the measured speed of the exact scan
 * (src/search/choose.ts). Kept for the library's `useAnn` and as the documented override's example.
 */
export const DEFAULT_ANN_THRESHOLD = 50_000;

/** How a graph stores its vectors: f16 halves the memory, the file and the build's work (docs/PERFORMANCE.md). */
export type AnnScalar = "f32" | "f16";

export interface AnnOptions {
  /** HNSW's M: links per node. More links: better recall, a larger graph. */
  connectivity?: number;
  /** Candidate list length while inserting (efConstruction). */
  expansionAdd?: number;
  /** Candidate list length while searching (ef): the search width. Not stored in the graph's file. */
  expansionSearch?: number;
  /** Vector storage in the graph. Scores of an f16 graph are approximate; hnsw.ts re-scores its hits exactly. */
  scalar?: AnnScalar;
  /** Build threads; 0 = every core. */
  threads?: number;
}

export interface AnnAddOptions {
  /** Threads inserting; 0 = every core. */
  threads?: number;
  /** Called after each batch of inserted rows: a large build takes minutes. */
  onProgress?: (done: number, total: number) => void;
  /** Checked between batches; an aborted insertion throws the signal's reason (the rows already in stay). */
  signal?: AbortSignal;
}

export interface AnnBuildOptions extends AnnOptions, Omit<AnnAddOptions, "threads"> {}

/** Rows inserted per native call: small enough for timely progress and aborts, large enough to keep every thread busy. */
const BUILD_BATCH = 10_000;

/**
 * Defaults measured with `npm run bench -- ann` and a sweep of settings (docs/PERFORMANCE.md) on
 * clustered vectors shaped like CLIP image embeddings (scripts/bench/vectors.ts). On those, 32 links
 * with expansion_add 96 cost no more build time than 16 links (each insertion's search converges in
 * fewer hops) and reached recall@10 ≥ 0.98 at a width of about 64 where 16 links needed 128–256;
 * expansion_add 32 built faster but left a graph that stalled below 0.95 at any width. f16 vectors
 * cut the build's time by about a quarter against f32 at the same recall once hits are re-scored.
 * The width here is only where a fresh graph starts: the self-check sets the one it keeps.
 * Uniformly random vectors, the worst case, need far wider searches; the self-check finds that too.
 */
export const ANN_DEFAULTS: Readonly<Required<Omit<AnnOptions, "threads">>> = {
  connectivity: 32,
  expansionAdd: 96,
  expansionSearch: 64,
  scalar: "f16",
};

/** Whether a collection of `rows` vectors is searched with the ANN index when `--ann-threshold` is `threshold`. */
export function useAnn(rows: number, threshold = DEFAULT_ANN_THRESHOLD): boolean {
  return rows > threshold;
}

function checkedInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new ClipOodError("USAGE", `${name} must be an integer ≥ ${min}, got ${v}`, { hint: `e.g. ${name} ${Math.max(min, 64)}` });
  return v;
}

let usearch: typeof Usearch | undefined;

/**
 * usearch's CommonJS build, loaded on first use. Not its ES module build: that one finds its native
 * binding from `__dirname`, expecting it to be undefined in a module, but under `node -e` and piped
 * stdin Node defines a global `__dirname` of "." and usearch then climbs ".", "..", "../..", … for ever
 * (RangeError: Maximum call stack size exceeded), so `import("clip-ood")` crashed there. In the
 * CommonJS build `__dirname` is the module's own folder. Loading it only when an index is made also
 * keeps the native library out of every process that never searches with one.
 */
function loadUsearch(): typeof Usearch {
  usearch ??= createRequire(import.meta.url)("usearch") as typeof Usearch;
  return usearch;
}

function makeIndex(dim: number, o: Required<Omit<AnnOptions, "threads">>): Usearch.Index {
  const { Index, MetricKind, ScalarKind } = loadUsearch();
  return new Index({
    dimensions: checkedInt("dimensions", dim, 1),
    metric: MetricKind.Cos,
    quantization: o.scalar === "f16" ? ScalarKind.F16 : ScalarKind.F32,
    connectivity: checkedInt("connectivity", o.connectivity, 2),
    expansion_add: checkedInt("expansionAdd", o.expansionAdd, 1),
    // The width is applied per search (see the module comment); 1 lets every width below the default work.
    expansion_search: 1,
    multi: false,
  });
}

/** What usearch counts as every core (std::thread::hardware_concurrency: the online CPUs). */
function hardwareThreads(): number {
  return Math.max(1, os.cpus().length);
}

/** usearch's scalar kind codes in a file head (include/usearch/index_plugins.hpp, scalar_kind_t). */
const SCALAR_CODES: Record<AnnScalar, number> = { f32: 11, f16: 12 };
const SCALAR_BYTES: Record<AnnScalar, number> = { f32: 4, f16: 2 };

/** What a graph file's head says, once the whole file has been checked. */
export interface AnnFileHead {
  scalar: AnnScalar;
  /** Keys present. */
  present: number;
  /** Freed nodes (removed keys), reused by the next additions. */
  freed: number;
  connectivity: number;
}

/**
 * usearch's loader trusts its input: a truncated or foreign file crashes the whole process (measured:
 * glibc aborts on a file one byte short), so a file is checked against the layout usearch 2.x writes
 * before it is handed over. Layout (include/usearch/index_dense.hpp and index.hpp, 32-bit dimensions,
 * u64 keys, u32 slots): [slots u32][bytes per vector u32][the vectors][a 64-byte head: "usearch",
 * version u16×3, metric, scalar, key and slot kinds (1 byte each), present u64, deleted u64, dimensions
 * u64, multi][the graph: size, connectivity, connectivity_base, max_level, entry_slot (u64 each)]
 * [a level i16 per node][the nodes: key u64, level i16, then per level a u32 count and slots]. Checked:
 * every header field this wrapper relies on, and that the file is exactly as long as the levels say.
 * Bytes corrupted inside the node lists are not detected; saves are atomic, so they come only from
 * damage outside this program.
 */
export function annFileHead(file: string, dim: number): AnnFileHead | string {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const at = (offset: number, length: number): Buffer | undefined => {
      if (offset + length > size) return undefined;
      const b = Buffer.alloc(length);
      return readSync(fd, b, 0, length, offset) === length ? b : undefined;
    };
    const matrix = at(0, 8);
    if (!matrix) return "too short to be an index";
    const slots = matrix.readUInt32LE(0);
    const rowBytes = matrix.readUInt32LE(4);
    const scalar = (Object.keys(SCALAR_BYTES) as AnnScalar[]).find((s) => rowBytes === dim * SCALAR_BYTES[s]);
    if (!scalar) return `holds vectors of ${rowBytes} bytes, expected ${dim} dimensions of f32 or f16`;
    const headAt = 8 + slots * rowBytes;
    const head = at(headAt, 64 + 40);
    if (!head || head.toString("latin1", 0, 7) !== "usearch") return "not a usearch index";
    if (head.readUInt16LE(7) !== 2) return `written by usearch ${head.readUInt16LE(7)}.x, this build reads 2.x`;
    if (String.fromCharCode(head[13]!) !== "c" || head[14] !== SCALAR_CODES[scalar] || head[15] !== 14 || head[16] !== 15) return `not a cosine/${scalar} index with 64-bit keys`;
    const u64 = (o: number) => Number(head.readBigUInt64LE(o));
    const present = u64(17);
    const freed = u64(25);
    if (present + freed !== slots || u64(33) !== dim || head[41] !== 0) return "its header does not match its vectors";
    const nodes = u64(64);
    const m = u64(72);
    const mBase = u64(80);
    if (nodes !== slots) return "its graph and its vectors differ in size";
    let expected = headAt + 64 + 40;
    if (nodes > 0) {
      if (m < 2 || mBase < m || u64(96) >= nodes) return "its graph header is damaged";
      const levels = at(expected, 2 * nodes);
      if (!levels) return "truncated";
      expected += 2 * nodes;
      for (let i = 0; i < nodes; i++) {
        const level = levels.readInt16LE(2 * i);
        if (level < 0 || level > 64) return "its graph levels are damaged";
        expected += 10 + (4 + 4 * mBase) + level * (4 + 4 * m);
      }
    }
    if (size !== expected) return size < expected ? "truncated" : "longer than its header says";
    return { scalar, present, freed, connectivity: m };
  } finally {
    closeSync(fd);
  }
}

export class AnnIndex {
  /** The search width (ef): every search explores at least this many candidates. */
  width: number;

  private constructor(
    private readonly index: Usearch.Index,
    readonly dim: number,
    readonly scalar: AnnScalar,
    width: number,
    /** Freed nodes: what usearch's own size() leaves out of the graph's node count. */
    private freed: number,
    /** A memory-mapped file: searchable, not changeable. */
    readonly readOnly: boolean,
    /**
     * Threads usearch holds a slot for. It sizes its pool when it grows the graph, with the thread
     * count of that insertion (a loaded graph: every core), and an insertion or a batched search on
     * more threads than the pool fails ("Reserve capacity ahead of insertions!"), so later ones are
     * held to it.
     */
    private threadSlots: number | undefined,
  ) {
    this.width = checkedInt("expansionSearch", width, 1);
  }

  /** Keys present. */
  get size(): number {
    return this.index.size();
  }

  /** Nodes in the graph, freed ones included: what the file and memory hold. */
  get nodes(): number {
    return this.size + this.freed;
  }

  /** An empty graph. */
  static create(dim: number, opts: AnnOptions = {}): AnnIndex {
    const o = { ...ANN_DEFAULTS, ...opts };
    return new AnnIndex(makeIndex(dim, o), dim, o.scalar, o.expansionSearch, 0, false, undefined);
  }

  /** Indexes the rows of `data` (rows × dim) under keys 0 … rows−1. */
  static build(data: Float32Array, dim: number, opts: AnnBuildOptions = {}): AnnIndex {
    if (!Number.isInteger(dim) || dim < 1 || data.length % dim !== 0) {
      throw new ClipOodError("INPUT", `${data.length} values do not make rows of ${dim} dimensions`, { hint: "pass the collection's rows × dim matrix and its dim" });
    }
    const index = AnnIndex.create(dim, opts);
    const rows = data.length / dim;
    const keys = Float64Array.from({ length: rows }, (_, i) => i);
    index.add(keys, data, { threads: opts.threads ?? 0, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    return index;
  }

  /**
   * Inserts rows of `data` (rows × dim): `keys[i]` for row `rows[i]` (by default row i). Keys must be new
   * to the graph. Batches of BUILD_BATCH rows, each on `threads` threads.
   */
  add(keys: ArrayLike<number>, data: Float32Array, opts: AnnAddOptions & { rows?: ArrayLike<number> } = {}): void {
    if (this.readOnly) throw new Error("AnnIndex: a memory-mapped index cannot be changed; load it instead");
    const asked = checkedInt("threads", opts.threads ?? 0, 0) || hardwareThreads();
    const { dim } = this;
    const count = keys.length;
    const rowOf = (i: number) => (opts.rows ? opts.rows[i]! : i);
    if (opts.rows && opts.rows.length !== count) throw new RangeError(`AnnIndex.add: ${count} keys for ${opts.rows.length} rows`);
    let block: Float32Array | undefined;
    for (let start = 0; start < count; start += BUILD_BATCH) {
      opts.signal?.throwIfAborted();
      const end = Math.min(count, start + BUILD_BATCH);
      const batchKeys = new BigUint64Array(end - start);
      let contiguous = true;
      for (let i = start; i < end; i++) {
        batchKeys[i - start] = BigInt(keys[i]!);
        if (rowOf(i) !== rowOf(start) + (i - start)) contiguous = false;
      }
      let vectors: Float32Array;
      if (contiguous) {
        // A view of the caller's rows: no copy for a build from a whole matrix.
        vectors = data.subarray(rowOf(start) * dim, (rowOf(start) + end - start) * dim);
      } else {
        block ??= new Float32Array(Math.min(count, BUILD_BATCH) * dim);
        for (let i = start; i < end; i++) block.set(data.subarray(rowOf(i) * dim, (rowOf(i) + 1) * dim), (i - start) * dim);
        vectors = block.subarray(0, (end - start) * dim);
      }
      const before = this.size;
      const threads = Math.min(asked, this.threadSlots ?? asked);
      // usearch grows the graph, and sizes its thread pool anew, when the batch does not fit.
      if (this.size + (end - start) >= this.index.capacity()) this.threadSlots = threads;
      this.index.add(batchKeys, vectors, threads);
      // usearch fills freed nodes before growing the graph.
      this.freed = Math.max(0, this.freed - (this.size - before));
      opts.onProgress?.(end, count);
    }
  }

  /** Removes these keys (usearch frees their nodes for reuse); returns how many were present. */
  remove(keys: readonly number[]): number {
    if (this.readOnly) throw new Error("AnnIndex: a memory-mapped index cannot be changed; load it instead");
    if (keys.length === 0) return 0;
    const removed = this.index.remove(BigUint64Array.from(keys, (k) => BigInt(k)));
    const n = (Array.isArray(removed) ? removed : [removed]).reduce((s: number, x) => s + Number(x), 0);
    this.freed += n;
    return n;
  }

  /**
   * The (about) k keys most similar to `query` at this index's width (or `width`), best first, scores
   * as cosine similarities (approximate in an f16 graph).
   */
  search(query: Float32Array, k: number, width = this.width): SearchHit[] {
    if (query.length !== this.dim) throw new ClipOodError("INPUT", `query has ${query.length} dimensions, the index ${this.dim}`, { hint: "search with the model that indexed the collection" });
    const want = Math.min(Math.floor(k), this.size);
    if (!(want > 0)) return [];
    // One thread: a single query gains nothing from a thread pool but its start-up cost.
    const m = this.index.search(query, Math.max(want, Math.floor(width)), 1);
    const hits: SearchHit[] = [];
    // usearch's cosine distance is 1 − cos.
    for (let i = 0; i < Math.min(want, m.keys.length); i++) hits.push({ index: Number(m.keys[i]!), score: 1 - m.distances[i]! });
    return hits.sort((a, b) => b.score - a.score || a.index - b.index);
  }

  /**
   * `search` for many queries (rows of `queries`) in one native call on `threads` threads (0: every
   * core), each query's hits as `search` returns them.
   */
  searchBatch(queries: Float32Array, k: number, width = this.width, threads = 0): SearchHit[][] {
    const nq = queries.length / this.dim;
    if (!Number.isInteger(nq)) throw new ClipOodError("INPUT", `${queries.length} query values are not whole rows of ${this.dim} dimensions`, { hint: "search with the model that indexed the collection" });
    const want = Math.min(Math.floor(k), this.size);
    if (!(want > 0) || nq === 0) return Array.from({ length: nq }, () => []);
    if (nq === 1) return [this.search(queries, k, width)];
    const wide = Math.max(want, Math.floor(width));
    // Searches take a thread slot too: no more threads than the graph holds slots for.
    const asked = checkedInt("threads", threads, 0) || hardwareThreads();
    const m = this.index.search(queries, wide, Math.min(asked, this.threadSlots ?? asked)) as Usearch.BatchMatches;
    return Array.from({ length: nq }, (_, q) => {
      const hits: SearchHit[] = [];
      const n = Math.min(want, Number(m.counts[q]));
      for (let i = 0; i < n; i++) hits.push({ index: Number(m.keys[q * wide + i]!), score: 1 - m.distances[q * wide + i]! });
      return hits.sort((a, b) => b.score - a.score || a.index - b.index);
    });
  }

  /** Writes the index to `file` atomically, so an interrupted save never leaves a truncated index behind. */
  save(file: string): void {
    const part = `${file}.${process.pid}.part`;
    try {
      this.index.save(part);
      renameSync(part, file);
    } catch (e) {
      rmSync(part, { force: true });
      throw new ClipOodError("INPUT", `cannot write the ANN index ${file}: ${messageOf(e)}`, { hint: "check that its folder exists and is writable", cause: e });
    }
  }

  /**
   * Reads an index written by `save`, into memory (`view`: memory-mapped, read-only, opened at once and
   * shared with other processes through the page cache). `opts.expansionSearch` is its width.
   */
  static load(file: string, dim: number, opts: Pick<AnnOptions, "expansionSearch"> & { view?: boolean } = {}): AnnIndex {
    const broken = (why: string, cause?: unknown) =>
      new ClipOodError("INPUT", `${file}: ${why}`, { hint: "delete the file; the index is rebuilt from the store", cause });
    if (!existsSync(file)) throw new ClipOodError("INPUT", `${file}: no such ANN index`, { hint: "build the index first" });
    let head: AnnFileHead | string;
    try {
      head = annFileHead(file, dim);
    } catch (e) {
      throw broken(`cannot be read (${messageOf(e)})`, e);
    }
    if (typeof head === "string") throw broken(head);
    const index = makeIndex(dim, { ...ANN_DEFAULTS, scalar: head.scalar, connectivity: head.connectivity });
    try {
      if (opts.view) index.view(file);
      else index.load(file);
    } catch (e) {
      throw broken(`not a readable usearch index (${messageOf(e)})`, e);
    }
    return new AnnIndex(index, dim, head.scalar, opts.expansionSearch ?? ANN_DEFAULTS.expansionSearch, head.freed, opts.view === true, hardwareThreads());
  }
}
