/**
 * Approximate nearest neighbours: a thin wrapper over usearch's HNSW graph (cosine metric, f32), keyed
 * by row index, so its hits are interchangeable with `exactTopK`'s. The index holds its own copy of the
 * vectors; the caller keeps it in step with the store by rebuilding it whenever the store's row set
 * changes (`annCacheKey` names one row set).
 */
import { createHash } from "node:crypto";
import { existsSync, renameSync, rmSync } from "node:fs";
import { Index, MetricKind, ScalarKind } from "usearch";
import { ClipOodError, messageOf } from "../errors.js";
import type { SearchHit } from "./exact.js";

/**
 * Collections larger than this are searched with the ANN index, smaller ones exactly. At 50k×512 an
 * exact query costs about as long as an interactive lookup may (tens of ms on one core, see
 * docs/PERFORMANCE.md), while building the graph for it costs tens of seconds on two cores — a price
 * only worth paying where exact search starts to be slow. Exact search also has no recall loss, so
 * small collections stay exact.
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

/**
 * Defaults measured with `npm run bench -- ann` (docs/PERFORMANCE.md): on 100k random 512-d unit
 * vectors, the hardest case for a graph index (no cluster structure), they reach recall@10 ≥ 0.98 against
 * exact search. Real CLIP embeddings cluster, so they do at least as well there.
 */
export const ANN_DEFAULTS: Readonly<Required<Omit<AnnOptions, "threads">>> = {
  connectivity: 32,
  expansionAdd: 256,
  expansionSearch: 256,
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

function makeIndex(dim: number, opts: AnnOptions): Index {
  const o = { ...ANN_DEFAULTS, ...opts };
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

export class AnnIndex {
  private constructor(
    private readonly index: Index,
    readonly dim: number,
  ) {}

  get size(): number {
    return this.index.size();
  }

  /** Indexes the rows of `data` (rows × dim) under keys 0 … rows−1. */
  static build(data: Float32Array, dim: number, opts: AnnOptions = {}): AnnIndex {
    if (!Number.isInteger(dim) || dim < 1 || data.length % dim !== 0) {
      throw new ClipOodError("INPUT", `${data.length} values do not make rows of ${dim} dimensions`, { hint: "pass the collection's rows × dim matrix and its dim" });
    }
    const index = makeIndex(dim, opts);
    const rows = data.length / dim;
    if (rows > 0) {
      const keys = new BigUint64Array(rows);
      for (let i = 0; i < rows; i++) keys[i] = BigInt(i);
      index.add(keys, data, checkedInt("threads", opts.threads ?? 0, 0));
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
    const index = makeIndex(dim, opts);
    try {
      index.load(file);
    } catch (e) {
      throw broken(`not a readable usearch index (${messageOf(e)})`, e);
    }
    if (index.dimensions() !== dim) throw broken(`holds ${index.dimensions()}-dimensional vectors, expected ${dim}`);
    return new AnnIndex(index, dim);
  }
}
