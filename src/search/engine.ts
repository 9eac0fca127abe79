/**
 * The exact neighbour engine: top-k by dot product of many queries over a bank of rows, with the
 * products computed as matrix products on onnxruntime (MLAS sgemm, every core) and the selection in
 * topk.ts. Queries go in blocks of `queryBlock` rows, the bank in blocks of `bankBlock` rows; each pair is
 * one Gemm(Q, Bᵀ) whose inputs are views of the caller's arrays (no copy of the bank), and whose
 * [queryBlock × bankBlock] scores are selected from before the next block is asked for.
 *
 * Why onnxruntime: the scalar JavaScript loop this replaces ran at ~0.4 GMAC/s; sgemm reaches the
 * machine's arithmetic limit (docs/PERFORMANCE.md, "KNN at full-training-set scale"). usearch's exact
 * search was measured against it there too.
 */
import * as ort from "onnxruntime-node";
import { ClipOodError } from "../errors.js";
import { FLOAT, GraphBuilder, kernelSession } from "../maths/kernels/onnx-graph.js";
import { TopKSelector } from "./topk.js";
import type { TopKResult } from "./topk.js";

export interface ExactSearchOptions {
  /** Queries per matrix product (default 256). */
  queryBlock?: number;
  /** Bank rows per matrix product (default 16384). */
  bankBlock?: number;
  /** Scan every score instead of skipping chunks whose maximum cannot enter (for tests and benches). */
  scanAll?: boolean;
}

/** Y = Q · Bᵀ for Q [b, d] and B [r, d], both graph inputs so that the bank is never copied into the session. */
function gemmGraph(): Uint8Array {
  const g = new GraphBuilder("search-gemm");
  const q = g.input("q", FLOAT, ["b", "d"]);
  const bank = g.input("bank", FLOAT, ["r", "d"]);
  g.output(g.op("Gemm", [q, bank], { transB: 1 }), "scores", FLOAT, ["b", "r"]);
  return g.encode();
}

/**
 * Bank rows per chunk whose best score the graph also returns: a query's chunk is scanned only when its
 * best could enter the query's top k. The selection is then a scan of r/64 maxima instead of r scores
 * per query: JavaScript scanned ~2 ns a score, a quarter of the products' own time at 512-d.
 */
const CHUNK = 64;

/** `gemmGraph`'s scores, plus each row's maximum over every CHUNK columns (r a multiple of CHUNK). */
function gemmChunkMaxGraph(): Uint8Array {
  const g = new GraphBuilder("search-gemm-chunk-max");
  const q = g.input("q", FLOAT, ["b", "d"]);
  const bank = g.input("bank", FLOAT, ["r", "d"]);
  const scores = g.op("Gemm", [q, bank], { transB: 1 });
  g.output(scores, "scores", FLOAT, ["b", "r"]);
  const chunks = g.op("Reshape", [scores, g.ints([0, -1, CHUNK])]);
  g.output(g.op("ReduceMax", [chunks], { axes: [2], keepdims: 0 }), "chunkMax", FLOAT, ["b", "c"]);
  return g.encode();
}

/** Rejects queries of the wrong width or with non-finite values, naming the first bad one. */
export function checkQueries(queries: Float32Array, dim: number, what = "query"): number {
  if (!Number.isInteger(dim) || dim < 1) throw new ClipOodError("INPUT", `search: dimension must be a positive integer, got ${dim}`, { hint: "pass the bank's row width" });
  if (queries.length % dim !== 0) {
    throw new ClipOodError("INPUT", `${queries.length} query values are not whole rows of ${dim} dimensions`, { hint: "search with embeddings from the model that made the bank" });
  }
  for (let i = 0; i < queries.length; i++) {
    const v = queries[i]!;
    if (!Number.isFinite(v)) {
      throw new ClipOodError("INPUT", `${what} ${Math.floor(i / dim)} has a non-finite value (${v}) at dimension ${i % dim}`, {
        hint: "drop or re-embed that image; NaN/Infinity usually means a broken export or a corrupt embeddings file",
      });
    }
  }
  return queries.length / dim;
}

/** The number of rows in a bank of `dim`-wide rows, or an INPUT error when it is not whole rows. */
export function checkBank(bank: ArrayLike<number>, dim: number): number {
  if (!Number.isInteger(dim) || dim < 1) throw new ClipOodError("INPUT", `search: dimension must be a positive integer, got ${dim}`, { hint: "pass the bank's row width" });
  if (bank.length % dim !== 0) throw new ClipOodError("INPUT", `a bank of ${bank.length} values is not whole rows of ${dim} dimensions`, { hint: "check the bank's dimension" });
  return bank.length / dim;
}

/**
 * The k bank rows with the largest dot product with each query (queries × dim, row-major), best first,
 * ties to the lower row. k larger than the bank gives every row. Bank rows holding NaN are never hits.
 */
export async function exactTopKBatch(bank: Float32Array, dim: number, queries: Float32Array, k: number, options: ExactSearchOptions = {}): Promise<TopKResult> {
  const nq = checkQueries(queries, dim);
  const rows = checkBank(bank, dim);
  if (!Number.isInteger(k) || k < 1) throw new ClipOodError("USAGE", `search: k must be a positive integer, got ${k}`, { hint: "ask for at least one neighbour" });
  const selector = new TopKSelector(nq, Math.min(k, Math.max(rows, 1)));
  if (nq === 0 || rows === 0) return selector.finish();
  const qb = Math.max(1, Math.floor(options.queryBlock ?? 256));
  const rb = Math.max(1, Math.floor(options.bankBlock ?? 16384));
  const session = await kernelSession("search-gemm-f32", gemmGraph);
  const chunked = await kernelSession("search-gemm-chunk-max-f32", gemmChunkMaxGraph);
  for (let q0 = 0; q0 < nq; q0 += qb) {
    const b = Math.min(qb, nq - q0);
    const q = new ort.Tensor("float32", queries.subarray(q0 * dim, (q0 + b) * dim), [b, dim]);
    for (let r0 = 0; r0 < rows; r0 += rb) {
      const r = Math.min(rb, rows - r0);
      const feeds = { q, bank: new ort.Tensor("float32", bank.subarray(r0 * dim, (r0 + r) * dim), [r, dim]) };
      if (options.scanAll || r % CHUNK !== 0) {
        const scores = (await session.run(feeds))["scores"]!.data as Float32Array;
        for (let i = 0; i < b; i++) selector.offer(q0 + i, scores, i * r, r, r0);
        continue;
      }
      const out = await chunked.run(feeds);
      const scores = out["scores"]!.data as Float32Array;
      const maxima = out["chunkMax"]!.data as Float32Array;
      const chunks = r / CHUNK;
      for (let i = 0; i < b; i++) {
        const at = i * chunks;
        for (let c = 0; c < chunks; c++) {
          // `!(max < bound)`: a chunk whose maximum is NaN (a NaN row) is scanned, so its other rows count.
          if (!(maxima[at + c]! < selector.bound(q0 + i))) selector.offer(q0 + i, scores, i * r + c * CHUNK, CHUNK, r0 + c * CHUNK);
        }
      }
    }
  }
  return selector.finish();
}
