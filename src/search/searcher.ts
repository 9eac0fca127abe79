/**
 * The choice of scan behind one interface: a caller (the store's search, KNN) makes a searcher from its
 * bank once and asks it for the top k of any number of queries, without knowing which scan runs.
 * `SCAN_COSTS` records what each costs here, so the caller can choose by bank size and free memory.
 */
import { compressedTopKBatch, quantizeBank } from "./compressed.js";
import type { CompressedSearchOptions } from "./compressed.js";
import { checkBank, exactTopKBatch } from "./engine.js";
import type { ExactSearchOptions } from "./engine.js";
import type { TopKResult } from "./topk.js";

export type ScanKind = "exact" | "int8";

export interface NeighbourSearcher {
  readonly kind: ScanKind;
  readonly rows: number;
  readonly dim: number;
  /** Memory the searcher holds besides the float32 bank (which it reads in place, never copies). */
  readonly extraBytes: number;
  /** Each query's top k by dot product, as exactTopKBatch answers: best first, ties to the lower row. */
  search(queries: Float32Array, k: number): Promise<TopKResult>;
}

/**
 * Measured with `npm run bench -- scan` at 1 M × 512 on this 2-core machine (Xeon with AVX-512 VNNI),
 * shared with other work, 2026-12-07; docs/PERFORMANCE.md has the figures. Each is the int8 search's
 * time (selection and rerank included) as a fraction of the exact search's: `single` one query (k =
 * 10 or 1000), `batched` a batch of 256 at k = 10, `batchedLargeK` at k = 1000, where re-scoring
 * 1,500 rows per query eats the scan's gain. `extraBytesPerValue`: memory held beside the float32
 * bank, per bank value; `buildSecondsPerMillionRows`: quantising 512-wide rows.
 */
export const SCAN_COSTS: Readonly<Record<ScanKind, { single: number; batched: number; batchedLargeK: number; extraBytesPerValue: number; buildSecondsPerMillionRows: number }>> = {
  exact: { single: 1, batched: 1, batchedLargeK: 1, extraBytesPerValue: 0, buildSecondsPerMillionRows: 0 },
  int8: { single: 0.75, batched: 0.7, batchedLargeK: 1, extraBytesPerValue: 1, buildSecondsPerMillionRows: 8 },
};

/** The exact float32 scan (engine.ts): nothing to build, nothing held. */
export function exactSearcher(bank: Float32Array, dim: number, options: ExactSearchOptions = {}): NeighbourSearcher {
  return { kind: "exact", rows: checkBank(bank, dim), dim, extraBytes: 0, search: (queries, k) => exactTopKBatch(bank, dim, queries, k, options) };
}

/**
 * The int8 scan with exact rerank (compressed.ts): quantises the bank now (one pass on onnxruntime,
 * 6–9 s per million 512-wide rows here) and holds a quarter of its size more. The bank must not change
 * afterwards.
 */
export async function int8Searcher(bank: Float32Array, dim: number, options: CompressedSearchOptions = {}): Promise<NeighbourSearcher> {
  const index = await quantizeBank(bank, dim);
  return {
    kind: "int8",
    rows: index.rows,
    dim,
    extraBytes: index.codes.byteLength + index.scales.byteLength,
    search: (queries, k) => compressedTopKBatch(index, bank, queries, k, options),
  };
}

export async function makeSearcher(kind: ScanKind, bank: Float32Array, dim: number): Promise<NeighbourSearcher> {
  return kind === "int8" ? await int8Searcher(bank, dim) : exactSearcher(bank, dim);
}
