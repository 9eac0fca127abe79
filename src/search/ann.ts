/**
 * Approximate nearest neighbours: a thin wrapper over usearch's HNSW graph (cosine metric, f32), keyed
 * by row index, so its hits are interchangeable with `exactTopK`'s. The index holds its own copy of the
 * vectors; the caller keeps it in step with the store by rebuilding it whenever the store's row set
 * changes (`annCacheKey` names one row set).
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, readSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import type * as Usearch from "usearch";
import { ClipOodError, messageOf } from "../errors.js";
import type { SearchHit } from "./exact.js";

/**
 * Collections larger than this are searched with the HNSW index, smaller ones exactly. Measured on two
 * cores (docs/PERFORMANCE.md, 512-d): exact search costs about 0.45 µs a row on one core, so about
 * 23 ms at 50k — interactive, and without recall loss — while an HNSW query at the default ef costs
 * 25–30 ms on worst-case (random) data and its graph takes minutes to build (210 s for 100k). Below
 * about 50k the index cannot repay that; above it exact search grows linearly with the collection and
 * the graph's query time barely does.
 */
export const DEFAULT_ANN_THRESHOLD = 50_000;

export interface AnnOptions {
  /** HNSW's M: links per node. More links: better recall, a larger and slower-to-build graph. */
  connectivity?: number;
  /** Candidate list length while inserting (efConstruction). */
  expansionAdd?: number;
  /** Candidate list length while searching (ef). Not stored in the saved file: pass it to `load` too. */
  expansionSearch?: number;
  /** Build threads; 0 = every core. */
  threads?: number;
}

export interface AnnBuildOptions extends AnnOptions {
  /** Called after each batch of inserted rows: a large build takes minutes. */
  onProgress?: (done: number, total: number) => void;
  /** Checked between batches; an aborted build throws the signal's reason. */
  signal?: AbortSignal;
}

/** Rows inserted per native call: small enough for timely progress and aborts, large enough to keep every thread busy. */
const BUILD_BATCH = 10_000;

/**
 * Defaults measured with `npm run bench -- ann` (docs/PERFORMANCE.md) on 100k random 512-d unit vectors,
 * the hardest case for a graph index (no cluster structure; a query's neighbours are barely closer than
 * the rest): they reach recall@10 ≥ 0.98 against exact search there. On that data, links mattered more
 * than build effort: connectivity 96 with expansion_add 128 beat 32 with 256 at the same search cost and
 * built faster. Real CLIP embeddings cluster, so they reach higher recall with the same settings.
 */
export const ANN_DEFAULTS: Readonly<Required<Omit<AnnOptions, "threads">>> = {
  connectivity: 96,
  expansionAdd: 128,
  expansionSearch: 1536,
};

/** Whether a collection of `rows` vectors is searched with the ANN index. */
export function useAnn(rows: number, threshold = DEFAULT_ANN_THRESHOLD): boolean {
  return rows > threshold;
}

/**
 * A file-name-safe key for one row set of the store: any insert, update or delete changes `lastChange`
 * (or `rows`), so a cached index under a stale key is never loaded.
 */
export function annCacheKey(rows: number, lastChange: string, options: AnnOptions = {}): string {
  const o = { ...ANN_DEFAULTS, ...options };
  return createHash("sha256")
    .update(JSON.stringify(["usearch-hnsw-cos-f32/1", rows, lastChange, o.connectivity, o.expansionAdd]))
    .digest("hex")
    .slice(0, 32);
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

function makeIndex(dim: number, opts: AnnOptions): Usearch.Index {
  const o = { ...ANN_DEFAULTS, ...opts };
  const { Index, MetricKind, ScalarKind } = loadUsearch();
  return new Index({
    dimensions: checkedInt("dimensions", dim, 1),
    metric: MetricKind.Cos,
    quantization: ScalarKind.F32,
    connectivity: checkedInt("connectivity", o.connectivity, 2),
    expansion_add: checkedInt("expansionAdd", o.expansionAdd, 1),
    expansion_search: checkedInt("expansionSearch", o.expansionSearch, 1),
    multi: false,
  });
}

/**
 * usearch's loader trusts its input: a truncated or foreign file crashes the whole process (measured:
 * glibc aborts on a file one byte short), so a file is checked against the layout usearch 2.x writes
 * before it is handed over. Layout (include/usearch/index_dense.hpp and index.hpp, 32-bit dimensions,
 * u64 keys, u32 slots): [rows u32][bytes per vector u32][the vectors][a 64-byte head: "usearch",
 * version u16×3, metric, scalar, key and slot kinds (1 byte each), present u64, deleted u64, dimensions
 * u64, multi][the graph: size, connectivity, connectivity_base, max_level, entry_slot (u64 each)]
 * [a level i16 per node][the nodes: key u64, level i16, then per level a u32 count and slots]. Checked:
 * every header field this wrapper relies on, and that the file is exactly as long as the levels say.
 * Bytes corrupted inside the node lists are not detected; saves are atomic, so they come only from
 * damage outside this program.
 */
function indexFileProblem(file: string, dim: number): string | undefined {
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
    const rows = matrix.readUInt32LE(0);
    const rowBytes = matrix.readUInt32LE(4);
    if (rowBytes !== dim * 4) return `holds ${rowBytes / 4}-dimensional vectors, expected ${dim}`;
    const headAt = 8 + rows * rowBytes;
    const head = at(headAt, 64 + 40);
    if (!head || head.toString("latin1", 0, 7) !== "usearch") return "not a usearch index";
    if (head.readUInt16LE(7) !== 2) return `written by usearch ${head.readUInt16LE(7)}.x, this build reads 2.x`;
    if (String.fromCharCode(head[13]!) !== "c" || head[14] !== 11 || head[15] !== 14 || head[16] !== 15) return "not a cosine/f32 index with 64-bit keys";
    const u64 = (o: number) => Number(head.readBigUInt64LE(o));
    if (u64(17) !== rows || u64(25) !== 0 || u64(33) !== dim || head[41] !== 0) return "its header does not match its vectors";
    const nodes = u64(64);
    const m = u64(72);
    const mBase = u64(80);
    if (nodes !== rows) return "its graph and its vectors differ in size";
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
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export class AnnIndex {
  private constructor(
    private readonly index: Usearch.Index,
    readonly dim: number,
  ) {}

  get size(): number {
    return this.index.size();
  }

  /** Indexes the rows of `data` (rows × dim) under keys 0 … rows−1. */
  static build(data: Float32Array, dim: number, opts: AnnBuildOptions = {}): AnnIndex {
    if (!Number.isInteger(dim) || dim < 1 || data.length % dim !== 0) {
      throw new ClipOodError("INPUT", `${data.length} values do not make rows of ${dim} dimensions`, { hint: "pass the collection's rows × dim matrix and its dim" });
    }
    const index = makeIndex(dim, opts);
    const threads = checkedInt("threads", opts.threads ?? 0, 0);
    const rows = data.length / dim;
    for (let start = 0; start < rows; start += BUILD_BATCH) {
      opts.signal?.throwIfAborted();
      const end = Math.min(rows, start + BUILD_BATCH);
      const keys = new BigUint64Array(end - start);
      for (let i = start; i < end; i++) keys[i - start] = BigInt(i);
      index.add(keys, data.subarray(start * dim, end * dim), threads);
      opts.onProgress?.(end, rows);
    }
    return new AnnIndex(index, dim);
  }

  /** The (about) k rows most similar to the unit `query`, best first, scores as cosine similarities. */
  search(query: Float32Array, k: number): SearchHit[] {
    if (query.length !== this.dim) throw new ClipOodError("INPUT", `query has ${query.length} dimensions, the index ${this.dim}`, { hint: "search with the model that indexed the collection" });
    const want = Math.min(Math.floor(k), this.size);
    if (!(want > 0)) return [];
    // One thread: a single query gains nothing from a thread pool but its start-up cost.
    const m = this.index.search(query, want, 1);
    const hits: SearchHit[] = [];
    // usearch's cosine distance is 1 − cos.
    for (let i = 0; i < m.keys.length; i++) hits.push({ index: Number(m.keys[i]!), score: 1 - m.distances[i]! });
    return hits.sort((a, b) => b.score - a.score || a.index - b.index);
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

  /** Reads an index written by `save`; `opts.expansionSearch` applies to this session's searches. */
  static load(file: string, dim: number, opts: Pick<AnnOptions, "expansionSearch"> = {}): AnnIndex {
    const broken = (why: string, cause?: unknown) =>
      new ClipOodError("INPUT", `${file}: ${why}`, { hint: "delete the file; the index is rebuilt from the store", cause });
    if (!existsSync(file)) throw new ClipOodError("INPUT", `${file}: no such ANN index`, { hint: "build the index first" });
    let problem: string | undefined;
    try {
      problem = indexFileProblem(file, dim);
    } catch (e) {
      throw broken(`cannot be read (${messageOf(e)})`, e);
    }
    if (problem) throw broken(problem);
    const index = makeIndex(dim, opts);
    try {
      index.load(file);
    } catch (e) {
      throw broken(`not a readable usearch index (${messageOf(e)})`, e);
    }
    return new AnnIndex(index, dim);
  }
}
