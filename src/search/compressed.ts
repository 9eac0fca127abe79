/**
 * The compressed scan: a bank kept a second time as int8 codes with one scale per row (a quarter of
 * the float32 bytes), scanned first, and the best candidates of each query re-scored exactly against
 * the float32 rows. The scan reads 4× less memory than an exact one, and its int8 products run on the
 * machine's integer dot-product instructions (AVX-512 VNNI here) through onnxruntime's
 * MatMulIntegerToFloat, which also applies the row scales in the same pass.
 *
 * Why this path and not another: measured at 1 M × 512 on this machine (docs/PERFORMANCE.md, "scan";
 * the 2 cores shared with other work, so only ratios within one run count): onnxruntime's int8 kernels
 * scanned ~1.5–2× faster than its float32 Gemm, for one query and for a batch of 256. Its three int8
 * operators (MatMulInteger, MatMulIntegerToFloat, DynamicQuantizeMatMul) came within ~25% of each
 * other, in changing order from run to run; MatMulIntegerToFloat is kept because it applies the row
 * scales in the kernel and takes each query on its own scale. float16 Gemm was no faster than float32
 * batched and 2× slower for one query (x86 has no float16 arithmetic, so it converts); usearch's exact
 * search over int8 was the fastest single query (~1.5× the int8 Gemm) but ~6× slower batched, and it
 * ranks by raw int8 products, which cannot apply a scale per row; a JavaScript loop over an Int8Array
 * ran at ~0.1–0.2 GMAC/s, 10× slower than any of them.
 *
 * Exactness: a true neighbour is missed only when quantisation moves it below candidateCount(k) other
 * rows. The rerank then gives exact scores in float64 (equal to exactTopKOne's to within float64
 * rounding), and hits are ordered by those scores (ties to the lower row).
 */
import * as ort from "onnxruntime-node";
import { ClipOodError } from "../errors.js";
import { FLOAT, GraphBuilder, INT8, kernelSession, UINT8 } from "../maths/kernels/onnx-graph.js";
import { checkBank, checkQueries } from "./engine.js";
import { TopKSelector } from "./topk.js";
import type { TopKResult } from "./topk.js";

/** A bank's int8 copy: row i ≈ scales[i] · codes of row i. */
export interface Int8Bank {
  readonly rows: number;
  readonly dim: number;
  /**
   * Rows per block. Each block's codes are stored dimension-major ([dim × rows in the block]): the
   * layout MatMulIntegerToFloat reads as its right-hand matrix, so a scan passes views, never copies.
   */
  readonly block: number;
  readonly codes: Int8Array;
  /** max |x| / 127 per row; NaN for a row holding a non-finite value, which is then never a candidate. */
  readonly scales: Float32Array;
}

/** Rows per block of the int8 scan: 8 MiB of codes at 512 dimensions, as the float32 engine's 16,384-row blocks. */
export const INT8_BLOCK = 16384;

/**
 * Candidates per query are k × oversample, at least k + MIN_EXTRA_CANDIDATES. The int8 score's error
 * (half a code per dimension, on the row's and the query's side) was 4.6e-4 RMS on 512-wide unit
 * vectors, and reorders rows whose exact scores are that close; on 200,000 such rows (uniform and
 * clip-like, scripts/bench) the exact top 10 always lay within the int8 top 13, the top 1,000 within
 * the top 1,115. The margin above that allows for real CLIP embeddings, whose few large dimensions
 * set the row scale and leave the others coarser codes. `npm run bench -- scan` measures the recall.
 */
export const DEFAULT_OVERSAMPLE = 1.5;
export const MIN_EXTRA_CANDIDATES = 64;

/** How many int8-best rows are re-scored exactly for k hits (never more than the bank holds). */
export function candidateCount(k: number, rows: number, oversample = DEFAULT_OVERSAMPLE): number {
  return Math.min(rows, Math.max(Math.ceil(k * oversample), k + MIN_EXTRA_CANDIDATES));
}

/**
 * Per block of rows: scales = max |x| / 127 per row (NaN where the row holds NaN or ±Infinity, found
 * as a sum of x·0, which is 0 for a finite row and NaN otherwise), and codes = round(x / scale), half
 * to even, transposed to [dim × rows].
 */
function quantizeGraph(dim: number): Uint8Array {
  const g = new GraphBuilder("search-int8-quantize", 13);
  const x = g.input("x", FLOAT, ["r", dim]);
  const max = g.op("ReduceMax", [g.op("Abs", [x])], { axes: [1], keepdims: 1 });
  const finite = g.op("ReduceSum", [g.op("Mul", [x, g.scalar(0)]), g.ints([1])], { keepdims: 1 });
  const scale = g.op("Add", [g.op("Div", [max, g.scalar(127)]), finite]);
  // A zero row's scale is 0: dividing by the smallest normal float instead gives it codes of 0.
  const divisor = g.op("Max", [scale, g.scalar(1.1754944e-38)]);
  const codes = g.op("Cast", [g.op("Round", [g.op("Div", [x, divisor])])], { to: INT8 });
  g.output(g.op("Transpose", [codes], { perm: [1, 0] }), "codes", INT8, [dim, "r"]);
  g.output(g.op("Squeeze", [scale, g.ints([1])]), "scales", FLOAT, ["r"]);
  return g.encode();
}

/**
 * The int8 copy of `bank` (rows × dim, row-major): symmetric per-row quantisation, code = round(x /
 * scale) with scale = max |x| / 127, so every row uses the full code range whatever its length. Runs
 * on onnxruntime a block at a time (a JavaScript loop took ~25 s for 1 M × 512 here, this ~4× less).
 */
export async function quantizeBank(bank: Float32Array, dim: number, block = INT8_BLOCK): Promise<Int8Bank> {
  const rows = checkBank(bank, dim);
  if (!Number.isInteger(block) || block < 1) throw new RangeError(`quantizeBank: block must be a positive integer, got ${block}`);
  const codes = new Int8Array(bank.length);
  const scales = new Float32Array(rows);
  if (rows === 0) return { rows, dim, block, codes, scales };
  const session = await kernelSession(`search-int8-quantize-${dim}`, () => quantizeGraph(dim));
  for (let r0 = 0; r0 < rows; r0 += block) {
    const n = Math.min(block, rows - r0);
    const out = await session.run({ x: new ort.Tensor("float32", bank.subarray(r0 * dim, (r0 + n) * dim), [n, dim]) });
    codes.set(out["codes"]!.data as Int8Array, r0 * dim);
    scales.set(out["scales"]!.data as Float32Array, r0);
  }
  return { rows, dim, block, codes, scales };
}

/** Y[b, r] = (A − 128) · B · scale_b[r]: uint8 queries with zero point 128 against one int8 block. */
function int8ScanGraph(dim: number): Uint8Array {
  const g = new GraphBuilder("search-int8", 13);
  g.importDomain("com.microsoft", 1);
  const a = g.input("q", UINT8, ["b", dim]);
  const b = g.input("codes", INT8, [dim, "r"]);
  const aScale = g.input("qScale", FLOAT, []);
  const bScale = g.input("scales", FLOAT, ["r"]);
  const aZero = g.input("qZero", UINT8, []);
  const [y] = g.ops("MatMulIntegerToFloat", [a, b, aScale, bScale, aZero], 1, {}, "com.microsoft");
  g.output(y!, "scores", FLOAT, ["b", "r"]);
  return g.encode();
}

/**
 * Each query quantised on its own scale to uint8 with zero point 128 (codes −127…127 + 128). The
 * query's scale multiplies all of its scores alike, so it is left out: the scan ranks, it does not score.
 */
function quantizeQueries(queries: Float32Array, dim: number): Uint8Array {
  const out = new Uint8Array(queries.length);
  for (let o = 0; o < queries.length; o += dim) {
    let max = 0;
    for (let j = 0; j < dim; j++) max = Math.max(max, Math.abs(queries[o + j]!));
    const inv = max === 0 ? 0 : 127 / max;
    for (let j = 0; j < dim; j++) out[o + j] = 128 + Math.round(queries[o + j]! * inv);
  }
  return out;
}

export interface CompressedSearchOptions {
  /** Candidates per query: k × oversample, at least k + MIN_EXTRA_CANDIDATES (default DEFAULT_OVERSAMPLE). */
  oversample?: number;
  /** Queries per matrix product (default 256). */
  queryBlock?: number;
}

/**
 * The k rows of `bank` with the largest dot product with each query, as exactTopKBatch answers
 * (best first, ties to the lower row, k > rows gives every row, NaN rows never hits, non-finite
 * queries refused), found by scanning `index` (quantizeBank(bank)) and re-scoring each query's
 * candidateCount(k) int8-best rows exactly against `bank`, in float64. Rows holding ±Infinity are
 * never hits either (the exact engine may rank them first).
 */
export async function compressedTopKBatch(index: Int8Bank, bank: Float32Array, queries: Float32Array, k: number, options: CompressedSearchOptions = {}): Promise<TopKResult> {
  const { rows, dim } = index;
  const nq = checkQueries(queries, dim);
  if (bank.length !== rows * dim) {
    throw new ClipOodError("INPUT", `the int8 copy holds ${rows} rows × ${dim}, the float32 bank ${bank.length} values`, { hint: "quantise the bank again after changing it" });
  }
  if (!Number.isInteger(k) || k < 1) throw new ClipOodError("USAGE", `search: k must be a positive integer, got ${k}`, { hint: "ask for at least one neighbour" });
  const oversample = options.oversample ?? DEFAULT_OVERSAMPLE;
  if (!(oversample >= 1)) throw new ClipOodError("USAGE", `search: oversample must be at least 1, got ${oversample}`, { hint: "re-score at least k candidates per query" });
  const hits = new TopKSelector(nq, Math.min(k, Math.max(rows, 1)));
  if (nq === 0 || rows === 0) return hits.finish();
  const c = candidateCount(k, rows, oversample);
  const qb = Math.max(1, Math.floor(options.queryBlock ?? 256));
  const session = await kernelSession(`search-int8-${dim}`, () => int8ScanGraph(dim));
  const one = new ort.Tensor("float32", Float32Array.of(1), []);
  const zero = new ort.Tensor("uint8", Uint8Array.of(128), []);
  const exact = new Float64Array(1);
  const query = new Float64Array(dim);
  for (let q0 = 0; q0 < nq; q0 += qb) {
    const b = Math.min(qb, nq - q0);
    const block = queries.subarray(q0 * dim, (q0 + b) * dim);
    const q = new ort.Tensor("uint8", quantizeQueries(block, dim), [b, dim]);
    const candidates = new TopKSelector(b, c);
    for (let r0 = 0; r0 < rows; r0 += index.block) {
      const r = Math.min(index.block, rows - r0);
      const out = await session.run({
        q,
        codes: new ort.Tensor("int8", index.codes.subarray(r0 * dim, (r0 + r) * dim), [dim, r]),
        qScale: one,
        scales: new ort.Tensor("float32", index.scales.subarray(r0, r0 + r), [r]),
        qZero: zero,
      });
      const scores = out["scores"]!.data as Float32Array;
      for (let i = 0; i < b; i++) candidates.offer(i, scores, i * r, r, r0);
    }
    const found = candidates.finish();
    for (let i = 0; i < b; i++) {
      query.set(block.subarray(i * dim, (i + 1) * dim));
      // In row order: the rows are read from memory front to back, not in the scan's score order.
      const rowsOf = found.indices.subarray(i * found.count, (i + 1) * found.count).sort();
      for (const row of rowsOf) {
        exact[0] = dot64(bank, row * dim, query);
        hits.offer(q0 + i, exact, 0, 1, row);
      }
    }
  }
  return hits.finish();
}

/**
 * The bank row at `offset` · query, in float64 with four running sums added pairwise at the end: the
 * rerank reads c rows of the float32 bank per query from scattered places, and one sum, waiting on
 * each addition, made it ~1.6× slower (k = 1000 re-scores 1,500 rows per query). The result equals a
 * sequential float64 sum to within rounding (a few units in the 16th digit).
 */
function dot64(bank: Float32Array, offset: number, query: Float64Array): number {
  const dim = query.length;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let t = 0;
  for (; t + 3 < dim; t += 4) {
    s0 += bank[offset + t]! * query[t]!;
    s1 += bank[offset + t + 1]! * query[t + 1]!;
    s2 += bank[offset + t + 2]! * query[t + 2]!;
    s3 += bank[offset + t + 3]! * query[t + 3]!;
  }
  for (; t < dim; t++) s0 += bank[offset + t]! * query[t]!;
  return s0 + s1 + (s2 + s3);
}
