/**
 * The linear assignment problem (Kuhn's Hungarian method with Munkres' potentials, in the O(n²·m)
 * shortest-augmenting-path form) and GCD's clustering accuracy built on it. Pure.
 *
 * Written here rather than taken from npm: no assignment package is installed, and the algorithm is
 * short; the tests hold it to brute force over every permutation and to scipy's
 * `linear_sum_assignment` (scripts/discovery-fixtures.py).
 */
import { ClipOodError } from "../../errors.js";

export interface Assignment {
  /** Row i is assigned column `colOf[i]`, or -1 when there are more rows than columns and row i got none. */
  colOf: Int32Array;
  /** Sum of the assigned costs. */
  total: number;
}

/**
 * The assignment of rows to distinct columns with the least total cost (or the greatest, with
 * `maximize`), for a rows × cols cost matrix, row-major. With rows ≤ cols every row is assigned; with
 * more rows than columns every column is, as scipy's linear_sum_assignment does.
 */
export function linearSumAssignment(cost: ArrayLike<number>, rows: number, cols: number, maximize = false): Assignment {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || cost.length !== rows * cols) {
    throw new ClipOodError("INPUT", `assignment: a ${rows} × ${cols} cost matrix needs ${rows * cols} values, got ${cost.length}`, { hint: "pass the matrix row-major" });
  }
  for (let i = 0; i < cost.length; i++) {
    if (!Number.isFinite(cost[i]!)) {
      throw new ClipOodError("INPUT", `assignment: cost [${Math.floor(i / cols)}, ${i % cols}] is ${cost[i]}`, { hint: "every cost must be a finite number" });
    }
  }
  const sign = maximize ? -1 : 1;
  const colOf = new Int32Array(rows).fill(-1);
  if (rows === 0 || cols === 0) return { colOf, total: 0 };
  // The method below needs rows ≤ cols: solve the transpose otherwise and invert the answer.
  const transpose = rows > cols;
  const n = transpose ? cols : rows;
  const m = transpose ? rows : cols;
  const a = (i: number, j: number) => sign * (transpose ? cost[j * cols + i]! : cost[i * cols + j]!);
  const match = shortestAugmentingPaths(n, m, a);
  let total = 0;
  for (let j = 0; j < m; j++) {
    const i = match[j]!;
    if (i < 0) continue;
    if (transpose) colOf[j] = i;
    else colOf[i] = j;
    total += transpose ? cost[j * cols + i]! : cost[i * cols + j]!;
  }
  return { colOf, total };
}

/**
 * For n ≤ m: rowOfCol[j] = the row assigned column j, or -1. Row potentials u, column potentials v keep
 * every reduced cost a(i,j) − u_i − v_j ≥ 0; each row is added by a Dijkstra-like search for the
 * cheapest augmenting path in reduced costs, and the potentials are shifted so that it stays tight.
 * Index 0 of the column arrays is a virtual column holding the row being added (1-based otherwise).
 */
function shortestAugmentingPaths(n: number, m: number, a: (i: number, j: number) => number): Int32Array {
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1); // p[j]: 1-based row matched to column j (0: none)
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = a(i0 - 1, j - 1) - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]!]! += delta;
          v[j]! -= delta;
        } else minv[j]! -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const rowOfCol = new Int32Array(m).fill(-1);
  for (let j = 1; j <= m; j++) if (p[j]! > 0) rowOfCol[j - 1] = p[j]! - 1;
  return rowOfCol;
}

export interface ClusteringAccuracy {
  /** Share of images whose cluster maps to their class. */
  all: number;
  /** The same, among images of old (known) classes and of new classes; null where there are none. */
  old: number | null;
  new: number | null;
  /** For each true class, the cluster matched to it, or -1. */
  clusterOfClass: Int32Array;
}

/**
 * GCD's clustering accuracy, "v2" (Vaze et al. 2022, `split_cluster_acc_v2`): one Hungarian matching of
 * clusters to classes that maximises the images agreeing, over all images; then the agreeing share
 * over all images and over those whose class is old (`isOld[class]`) and new, under that one map.
 * Classes and clusters are indices from 0.
 */
export function clusteringAccuracy(truth: Int32Array, clusters: Int32Array, isOld: (cls: number) => boolean = () => false): ClusteringAccuracy {
  if (truth.length !== clusters.length) {
    throw new ClipOodError("INPUT", `clustering accuracy: ${truth.length} true classes for ${clusters.length} cluster assignments`, { hint: "give one class and one cluster per image" });
  }
  const n = truth.length;
  if (n === 0) throw new ClipOodError("INPUT", "clustering accuracy of no images", { hint: "score at least one labelled image" });
  let size = 0;
  for (let i = 0; i < n; i++) {
    if (truth[i]! < 0 || clusters[i]! < 0) throw new ClipOodError("INPUT", `clustering accuracy: image ${i} has a negative class or cluster`, { hint: "classes and clusters are indices from 0" });
    size = Math.max(size, truth[i]! + 1, clusters[i]! + 1);
  }
  // w[cluster, class]: the contingency table, square as GCD makes it.
  const w = new Float64Array(size * size);
  for (let i = 0; i < n; i++) w[clusters[i]! * size + truth[i]!]! += 1;
  const { colOf } = linearSumAssignment(w, size, size, true);
  const clusterOfClass = new Int32Array(size).fill(-1);
  for (let c = 0; c < size; c++) if (colOf[c]! >= 0) clusterOfClass[colOf[c]!] = c;
  let right = 0;
  const part = { old: [0, 0], new: [0, 0] };
  for (let i = 0; i < n; i++) {
    const ok = clusterOfClass[truth[i]!] === clusters[i] ? 1 : 0;
    right += ok;
    const p = isOld(truth[i]!) ? part.old : part.new;
    p[0]! += ok;
    p[1]! += 1;
  }
  const share = ([ok, count]: number[]) => (count! === 0 ? null : ok! / count!);
  return { all: right / n, old: share(part.old), new: share(part.new), clusterOfClass: clusterOfClass.slice(0, size) };
}
