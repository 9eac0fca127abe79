/**
 * k-means' assignment step as matrix products on onnxruntime: for unit rows x and centroids c_j, the
 * nearest centroid in Euclidean distance is argmax_j (x·c_j − ‖c_j‖²/2), since ‖x − c‖² = ‖x‖² − 2x·c + ‖c‖².
 * One Gemm per block of rows, then ArgMax and ReduceMax in the same graph, so JavaScript never walks
 * the rows × centroids scores. `nearestCentroidsScalar` is the same in float64 scalar loops: the
 * reference the tests hold the kernel to, and what small problems use without a session.
 */
import * as ort from "onnxruntime-node";
import { FLOAT, GraphBuilder, INT64, kernelSession } from "./onnx-graph.js";
import { matrix } from "../vectors.js";
import type { Matrix } from "../vectors.js";

export interface NearestCentroids {
  /** Each row's nearest centroid (the first of equals). */
  index: Int32Array;
  /** Each row's squared distance to it. */
  distance2: Float64Array;
}

/** x [n,d], c [k,d], half [k] (‖c_j‖²/2) → index [n] (int64), best [n] = max_j x·c_j − half_j. */
function nearestGraph(): Uint8Array {
  const g = new GraphBuilder("kmeans-nearest");
  const x = g.input("x", FLOAT, ["n", "d"]);
  const c = g.input("c", FLOAT, ["k", "d"]);
  const half = g.input("half", FLOAT, ["k"]);
  const scores = g.op("Sub", [g.op("Gemm", [x, c], { transB: 1 }), half]);
  g.output(g.op("ArgMax", [scores], { axis: 1, keepdims: 0 }), "index", INT64, ["n"]);
  g.output(g.op("ReduceMax", [scores], { axes: [1], keepdims: 0 }), "best", FLOAT, ["n"]);
  return g.encode();
}

/** Rows per Gemm: bounds the scores block (rows × centroids floats) whatever n is. */
const ROW_BLOCK = 16384;
/** Output values per Gemm where the other side is large (a vocabulary, all rows): 64 MB of float32. */
const BLOCK_VALUES = 2 ** 24;

/** Squared norms of the rows of x, in float64. */
export function squaredNorms(x: Matrix): Float64Array {
  const out = new Float64Array(x.rows);
  for (let i = 0; i < x.rows; i++) {
    let s = 0;
    for (let j = i * x.cols, end = j + x.cols; j < end; j++) s += x.data[j]! * x.data[j]!;
    out[i] = s;
  }
  return out;
}

/** The nearest of `centroids` to every row of `x`, by matrix products on onnxruntime. `norms2`: the rows' squared norms, if known. */
export async function nearestCentroids(x: Matrix, centroids: Matrix, norms2: Float64Array = squaredNorms(x)): Promise<NearestCentroids> {
  const index = new Int32Array(x.rows);
  const distance2 = new Float64Array(x.rows);
  if (x.rows === 0) return { index, distance2 };
  const half = new Float32Array(centroids.rows);
  for (let j = 0; j < centroids.rows; j++) {
    let s = 0;
    for (let t = j * centroids.cols, end = t + centroids.cols; t < end; t++) s += centroids.data[t]! * centroids.data[t]!;
    half[j] = s / 2;
  }
  const session = await kernelSession("kmeans-nearest-f32", nearestGraph);
  const c = new ort.Tensor("float32", centroids.data.subarray(0, centroids.rows * centroids.cols), [centroids.rows, centroids.cols]);
  const h = new ort.Tensor("float32", half, [centroids.rows]);
  for (let r0 = 0; r0 < x.rows; r0 += ROW_BLOCK) {
    const b = Math.min(ROW_BLOCK, x.rows - r0);
    const out = await session.run({ x: new ort.Tensor("float32", x.data.subarray(r0 * x.cols, (r0 + b) * x.cols), [b, x.cols]), c, half: h });
    const idx = out["index"]!.data as BigInt64Array;
    const best = out["best"]!.data as Float32Array;
    for (let i = 0; i < b; i++) {
      index[r0 + i] = Number(idx[i]!);
      // Rounding can take a distance a hair below 0 for a row on its centroid.
      distance2[r0 + i] = Math.max(0, norms2[r0 + i]! - 2 * best[i]!);
    }
  }
  return { index, distance2 };
}

/** `nearestCentroids` in float64 scalar loops (pure, synchronous). */
export function nearestCentroidsScalar(x: Matrix, centroids: Matrix): NearestCentroids {
  const index = new Int32Array(x.rows);
  const distance2 = new Float64Array(x.rows);
  const d = x.cols;
  for (let i = 0; i < x.rows; i++) {
    let best = Infinity;
    let at = 0;
    for (let j = 0; j < centroids.rows; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) {
        const diff = x.data[i * d + t]! - centroids.data[j * d + t]!;
        s += diff * diff;
      }
      if (s < best) {
        best = s;
        at = j;
      }
    }
    index[i] = at;
    distance2[i] = best;
  }
  return { index, distance2 };
}

/**
 * Pairwise Euclidean distances of the rows of x (n × n, float32), from one Gram matrix on
 * onnxruntime: the silhouette's input. n is kept small by the caller (a sample): n² floats.
 */
export async function pairwiseDistances(x: Matrix): Promise<Float32Array> {
  const n = x.rows;
  const out = new Float32Array(n * n);
  if (n === 0) return out;
  const norms2 = squaredNorms(x);
  const session = await kernelSession("pairwise-gram-f32", gramGraph);
  const xt = new ort.Tensor("float32", x.data.subarray(0, n * x.cols), [n, x.cols]);
  const block = Math.max(1, Math.floor(BLOCK_VALUES / n));
  for (let r0 = 0; r0 < n; r0 += block) {
    const b = Math.min(block, n - r0);
    const res = await session.run({ a: new ort.Tensor("float32", x.data.subarray(r0 * x.cols, (r0 + b) * x.cols), [b, x.cols]), b: xt });
    const gram = res["gram"]!.data as Float32Array;
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < n; j++) {
        const d2 = norms2[r0 + i]! + norms2[j]! - 2 * gram[i * n + j]!;
        out[(r0 + i) * n + j] = r0 + i === j ? 0 : Math.sqrt(Math.max(0, d2));
      }
    }
  }
  return out;
}

/** a · bᵀ (a.rows × b.rows, float32) by Gemm on onnxruntime, a's rows in blocks: centroids against a vocabulary of 10⁵ words. */
export async function dotProducts(a: Matrix, b: Matrix): Promise<Matrix> {
  const out = new Float32Array(a.rows * b.rows);
  if (a.rows === 0 || b.rows === 0) return matrix(a.rows, b.rows, out);
  const session = await kernelSession("pairwise-gram-f32", gramGraph);
  const bt = new ort.Tensor("float32", b.data.subarray(0, b.rows * b.cols), [b.rows, b.cols]);
  const block = Math.max(1, Math.floor(BLOCK_VALUES / b.rows));
  for (let r0 = 0; r0 < a.rows; r0 += block) {
    const rows = Math.min(block, a.rows - r0);
    const res = await session.run({ a: new ort.Tensor("float32", a.data.subarray(r0 * a.cols, (r0 + rows) * a.cols), [rows, a.cols]), b: bt });
    out.set(res["gram"]!.data as Float32Array, r0 * b.rows);
  }
  return matrix(a.rows, b.rows, out);
}

function gramGraph(): Uint8Array {
  const g = new GraphBuilder("pairwise-gram");
  const a = g.input("a", FLOAT, ["m", "d"]);
  const b = g.input("b", FLOAT, ["n", "d"]);
  g.output(g.op("Gemm", [a, b], { transB: 1 }), "gram", FLOAT, ["m", "n"]);
  return g.encode();
}
