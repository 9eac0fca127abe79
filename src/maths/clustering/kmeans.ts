/**
 * Semi-supervised k-means (SS-k-means) as GCD runs it (Vaze et al. 2022,
 * `faster_mix_k_means_pytorch.py`, METHODS.md §12): `known` anchored clusters come first, then `k` new
 * ones. Rows with a fixed cluster (labelled images) stay in it; the other rows go to the nearest of all
 * centroids; each centroid becomes the mean of its rows, fixed and free. Known centroids start at their
 * fixed rows' mean, or, for a known class with no labelled rows, at its given anchor, where it stays.
 * New centroids start by k-means++
 * (D² sampling of the free rows against every centroid so far). Stop when (Σ_j ‖Δc_j‖)² < tolerance
 * or after maxIterations; several seeded restarts, the least inertia kept.
 *
 * The assignment step is the onnxruntime kernel of kmeans-kernel.ts; the tests give it the scalar
 * reference instead and check both against an independent computation.
 */
import { ClipOodError } from "../../errors.js";
import { nearestCentroids, squaredNorms } from "../kernels/kmeans-kernel.js";
import type { NearestCentroids } from "../kernels/kmeans-kernel.js";
import { mulberry32 } from "../random.js";
import { matrix } from "../vectors.js";
import type { Matrix } from "../vectors.js";

/** GCD's K_Means defaults: tolerance 1e-4 on the squared summed centroid shift, 100 iterations. */
export const KMEANS_DEFAULTS = Object.freeze({ tolerance: 1e-4, maxIterations: 100, restarts: 4 });

export type NearestFn = (x: Matrix, centroids: Matrix, norms2: Float64Array) => Promise<NearestCentroids> | NearestCentroids;

export interface SemiSupervisedKMeansOptions {
  /** New clusters (≥ 0). */
  k: number;
  /** Anchored clusters, indices 0..known−1 (default 0: plain k-means). */
  known?: number;
  /** Per row: its fixed cluster in 0..known−1, or −1 for a free row. Default: every row free. */
  fixed?: Int32Array;
  /** known × d: where each known centroid starts when it has no fixed rows. */
  anchors?: Matrix;
  seed?: number;
  restarts?: number;
  maxIterations?: number;
  tolerance?: number;
  /** (known + k) × d centroids to start from instead of k-means++ (one run, no restarts). */
  initial?: Matrix;
  /** The assignment step (default: the onnxruntime kernel). */
  nearest?: NearestFn;
}

export interface KMeansResult {
  /** Each row's cluster, 0..known+k−1. */
  assignment: Int32Array;
  /** (known + k) × d; a cluster left empty keeps the centroid it last had. */
  centroids: Matrix;
  /** Σ of each row's squared distance to its cluster's centroid. */
  inertia: number;
  /** Lloyd iterations of the run kept. */
  iterations: number;
}

export async function semiSupervisedKMeans(x: Matrix, o: SemiSupervisedKMeansOptions): Promise<KMeansResult> {
  const known = o.known ?? 0;
  const total = known + o.k;
  const n = x.rows;
  const d = x.cols;
  if (!Number.isInteger(o.k) || o.k < 0 || !Number.isInteger(known) || known < 0) {
    throw new ClipOodError("USAGE", `k-means: cluster counts must be whole numbers ≥ 0, got k = ${o.k}, known = ${known}`, { hint: "ask for at least one cluster" });
  }
  if (total === 0) throw new ClipOodError("USAGE", "k-means: no clusters asked for", { hint: "ask for at least one cluster" });
  const fixed = o.fixed ?? new Int32Array(n).fill(-1);
  if (fixed.length !== n) throw new ClipOodError("INPUT", `k-means: ${fixed.length} fixed labels for ${n} rows`, { hint: "give one label (or −1) per row" });
  const free: number[] = [];
  const fixedCount = new Int32Array(known);
  for (let i = 0; i < n; i++) {
    const f = fixed[i]!;
    if (f === -1) free.push(i);
    else if (Number.isInteger(f) && f >= 0 && f < known) fixedCount[f]! += 1;
    else throw new ClipOodError("INPUT", `k-means: row ${i} is fixed to cluster ${f}, outside the ${known} known clusters`, { hint: "fixed labels index the known clusters, −1 for free rows" });
  }
  for (let c = 0; c < known; c++) {
    if (fixedCount[c] === 0 && (!o.anchors || o.anchors.rows !== known || o.anchors.cols !== d)) {
      throw new ClipOodError("INPUT", `k-means: known cluster ${c} has no fixed rows and no anchor`, { hint: `give anchors, a ${known} × ${d} matrix` });
    }
  }
  if (free.length < o.k) {
    throw new ClipOodError("INPUT", `k-means: ${free.length} free ${free.length === 1 ? "row" : "rows"} cannot seed ${o.k} new clusters`, { hint: "ask for at most as many new clusters as there are free rows" });
  }
  const nearest = o.nearest ?? nearestCentroids;
  const xFree = free.length === n ? x : gatherRows(x, free);
  const norms2 = squaredNorms(xFree);
  const restarts = o.initial ? 1 : Math.max(1, o.restarts ?? KMEANS_DEFAULTS.restarts);
  const rand = mulberry32(o.seed ?? 0);
  const knownStart = knownCentroids(x, fixed, fixedCount, o.anchors, known);
  let best: KMeansResult | undefined;
  for (let r = 0; r < restarts; r++) {
    const start = o.initial ? copyMatrix(o.initial) : await kMeansPlusPlus(xFree, norms2, knownStart, o.k, rand, nearest);
    const run = await lloyd(x, xFree, norms2, free, fixed, fixedCount, start, o, nearest);
    if (!best || run.inertia < best.inertia) best = run;
  }
  return best!;
}

function gatherRows(x: Matrix, rows: readonly number[]): Matrix {
  const out = new Float32Array(rows.length * x.cols);
  rows.forEach((r, i) => out.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), i * x.cols));
  return matrix(rows.length, x.cols, out);
}

function copyMatrix(m: Matrix): Matrix {
  return matrix(m.rows, m.cols, m.data.slice(0, m.rows * m.cols));
}

/** known × d: each known cluster's fixed rows' mean, or its anchor. */
function knownCentroids(x: Matrix, fixed: Int32Array, fixedCount: Int32Array, anchors: Matrix | undefined, known: number): Matrix {
  const d = x.cols;
  const sums = new Float64Array(known * d);
  for (let i = 0; i < x.rows; i++) {
    const f = fixed[i]!;
    if (f < 0) continue;
    for (let t = 0; t < d; t++) sums[f * d + t]! += x.data[i * d + t]!;
  }
  const out = new Float32Array(known * d);
  for (let c = 0; c < known; c++) {
    for (let t = 0; t < d; t++) out[c * d + t] = fixedCount[c]! > 0 ? sums[c * d + t]! / fixedCount[c]! : anchors!.data[c * d + t]!;
  }
  return matrix(known, d, out);
}

/**
 * k-means++ as GCD's `kpp`: from the given centroids (or, with none, one free row drawn uniformly),
 * each new centroid is a free row drawn with probability ∝ its squared distance to the nearest
 * centroid so far (the first row whose cumulative share reaches a uniform draw). Rows all on centroids
 * (every distance 0) are drawn uniformly.
 */
export async function kMeansPlusPlus(xFree: Matrix, norms2: Float64Array, start: Matrix, k: number, rand: () => number, nearest: NearestFn = nearestCentroids): Promise<Matrix> {
  const d = xFree.cols;
  const total = start.rows + k;
  const out = new Float32Array(total * d);
  out.set(start.data.subarray(0, start.rows * d));
  let count = start.rows;
  const n = xFree.rows;
  const minD2 = new Float64Array(n).fill(Infinity);
  const take = async (row: number) => {
    out.set(xFree.data.subarray(row * d, (row + 1) * d), count * d);
    count++;
    await lower(matrix(1, d, out.slice((count - 1) * d, count * d)));
  };
  const lower = async (centroids: Matrix) => {
    const r = await nearest(xFree, centroids, norms2);
    for (let i = 0; i < n; i++) if (r.distance2[i]! < minD2[i]!) minD2[i] = r.distance2[i]!;
  };
  if (count > 0) await lower(matrix(count, d, out.slice(0, count * d)));
  else if (k > 0) await take(Math.min(n - 1, Math.floor(rand() * n)));
  while (count < total) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += minD2[i]!;
    const r = rand();
    let pick = -1;
    if (sum > 0) {
      let cum = 0;
      for (let i = 0; i < n; i++) {
        cum += minD2[i]! / sum;
        if (cum >= r) {
          pick = i;
          break;
        }
      }
      // Rounding can leave the cumulative share a hair under a draw near 1: the last row with weight.
      if (pick < 0) for (let i = n - 1; i >= 0 && pick < 0; i--) if (minD2[i]! > 0) pick = i;
    } else pick = Math.min(n - 1, Math.floor(r * n));
    await take(pick);
  }
  return matrix(total, d, out);
}

async function lloyd(
  x: Matrix,
  xFree: Matrix,
  norms2: Float64Array,
  free: readonly number[],
  fixed: Int32Array,
  fixedCount: Int32Array,
  start: Matrix,
  o: SemiSupervisedKMeansOptions,
  nearest: NearestFn,
): Promise<KMeansResult> {
  const d = x.cols;
  const total = start.rows;
  const known = o.known ?? 0;
  const maxIterations = o.maxIterations ?? KMEANS_DEFAULTS.maxIterations;
  const tolerance = o.tolerance ?? KMEANS_DEFAULTS.tolerance;
  let centroids = start;
  const assignment = Int32Array.from(fixed);
  let iterations = 0;
  const sums = new Float64Array(total * d);
  const counts = new Int32Array(total);
  while (iterations < maxIterations) {
    iterations++;
    const r = await nearest(xFree, centroids, norms2);
    for (let i = 0; i < free.length; i++) assignment[free[i]!] = r.index[i]!;
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < x.rows; i++) {
      const c = assignment[i]!;
      counts[c]! += 1;
      const base = c * d;
      const from = i * d;
      for (let t = 0; t < d; t++) sums[base + t]! += x.data[from + t]!;
    }
    const next = new Float32Array(total * d);
    let shift = 0;
    for (let c = 0; c < total; c++) {
      const stays = counts[c] === 0 || (c < known && fixedCount[c] === 0);
      let s2 = 0;
      for (let t = 0; t < d; t++) {
        const v = stays ? centroids.data[c * d + t]! : sums[c * d + t]! / counts[c]!;
        next[c * d + t] = v;
        const diff = v - centroids.data[c * d + t]!;
        s2 += diff * diff;
      }
      shift += Math.sqrt(s2);
    }
    centroids = matrix(total, d, next);
    if (shift * shift < tolerance) break;
  }
  // One more assignment, so that the rows returned are the ones nearest the centroids returned.
  const r = await nearest(xFree, centroids, norms2);
  let inertia = 0;
  for (let i = 0; i < free.length; i++) {
    assignment[free[i]!] = r.index[i]!;
    inertia += r.distance2[i]!;
  }
  for (let i = 0; i < x.rows; i++) {
    const f = fixed[i]!;
    if (f < 0) continue;
    let s = 0;
    for (let t = 0; t < d; t++) {
      const diff = x.data[i * d + t]! - centroids.data[f * d + t]!;
      s += diff * diff;
    }
    inertia += s;
  }
  return { assignment, centroids, inertia, iterations };
}
