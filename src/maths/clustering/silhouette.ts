/**
 * The silhouette (Rousseeuw 1987) of a clustering, from a precomputed distance matrix: for row i with
 * a(i) the mean distance to the other rows of its cluster and b(i) the least mean distance to the rows
 * of another cluster, s(i) = (b − a) / max(a, b), and 0 for a row alone in its cluster (scikit-learn's
 * convention). The score is the mean of s(i). Pure; the distances come from
 * kmeans-kernel.ts's `pairwiseDistances`, once for every clustering of the same rows.
 */
import { ClipOodError } from "../../errors.js";

/** Mean silhouette of `labels` (cluster indices ≥ 0) over n rows; `distances` is n × n, row-major. Needs 2 ≤ clusters used ≤ n − 1. */
export function silhouetteScore(distances: ArrayLike<number>, labels: Int32Array): number {
  const n = labels.length;
  if (distances.length !== n * n) throw new ClipOodError("INPUT", `silhouette: ${distances.length} distances for ${n} rows`, { hint: "pass the n × n distance matrix" });
  let clusters = 0;
  for (let i = 0; i < n; i++) {
    if (!(labels[i]! >= 0)) throw new ClipOodError("INPUT", `silhouette: row ${i} has cluster ${labels[i]}`, { hint: "clusters are indices from 0" });
    clusters = Math.max(clusters, labels[i]! + 1);
  }
  const sizes = new Int32Array(clusters);
  for (let i = 0; i < n; i++) sizes[labels[i]!]! += 1;
  const used = sizes.reduce((s, c) => s + (c > 0 ? 1 : 0), 0);
  if (used < 2 || used > n - 1) {
    throw new ClipOodError("INPUT", `silhouette: ${used} ${used === 1 ? "cluster" : "clusters"} of ${n} rows`, { hint: "the silhouette needs between 2 and n − 1 clusters" });
  }
  const sums = new Float64Array(clusters);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const own = labels[i]!;
    if (sizes[own] === 1) continue;
    sums.fill(0);
    for (let j = 0; j < n; j++) sums[labels[j]!]! += distances[i * n + j]!;
    const a = sums[own]! / (sizes[own]! - 1);
    let b = Infinity;
    for (let c = 0; c < clusters; c++) if (c !== own && sizes[c]! > 0) b = Math.min(b, sums[c]! / sizes[c]!);
    const m = Math.max(a, b);
    total += m === 0 ? 0 : (b - a) / m;
  }
  return total / n;
}
