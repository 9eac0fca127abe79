/**
 * How many new clusters (docs/DISCOVERY.md, "Estimating k"): the silhouette of the SS-k-means
 * clustering for every k from 0 to kMax, or GCD's search (Vaze et al. 2022, estimate_k.py): plain
 * k-means of labelled and unlabelled rows for K clusters in all, scored by the clustering accuracy of
 * the labelled rows, maximised over K with Brent's bounded method. Both run on a seeded sample of the
 * rows, so the search costs the same for 10³ images or 10⁶.
 */
import { ClipOodError } from "../errors.js";
import { minimizeBounded } from "../maths/optimise/brent.js";
import { clusteringAccuracy } from "../maths/clustering/hungarian.js";
import { pairwiseDistances } from "../maths/kernels/kmeans-kernel.js";
import { semiSupervisedKMeans } from "../maths/clustering/kmeans.js";
import type { NearestFn } from "../maths/clustering/kmeans.js";
import { silhouetteScore } from "../maths/clustering/silhouette.js";
import type { Matrix } from "../maths/vectors.js";
import type { KMethod } from "./types.js";

export interface KSearchInput {
  /** Rows to cluster: free rows and labelled (fixed) rows. */
  x: Matrix;
  /** Per row: its known class when labelled, else −1. */
  fixed: Int32Array;
  /** Clusters of labelled known classes, indices 0…known−1 (each has fixed rows). */
  known: number;
}

export interface KSearch {
  k: number;
  tried: { k: number; score: number }[];
}

export interface KSearchOptions {
  method: Exclude<KMethod, "given">;
  /** The most new clusters tried. */
  kMax: number;
  seed: number;
  restarts: number;
  nearest?: NearestFn;
}

/** The number of new clusters: the silhouette's best (ties to fewer clusters), or where GCD's Brent search ends. */
export async function estimateK(input: KSearchInput, o: KSearchOptions): Promise<KSearch> {
  return o.method === "gcd" ? gcdSearch(input, o) : silhouetteSearch(input, o);
}

/**
 * The mean silhouette of the SS-k-means clustering for k = 0 … kMax new clusters. A clustering that
 * uses a single cluster has no silhouette and is skipped; so is one that would need more clusters than
 * rows. Without any scored k the answer is 0 new clusters.
 */
async function silhouetteSearch(input: KSearchInput, o: KSearchOptions): Promise<KSearch> {
  const distances = await pairwiseDistances(input.x);
  const tried: { k: number; score: number }[] = [];
  const free = input.fixed.reduce((s, f) => s + (f < 0 ? 1 : 0), 0);
  for (let k = 0; k <= Math.min(o.kMax, free); k++) {
    if (input.known + k === 0) continue;
    const r = await semiSupervisedKMeans(input.x, {
      k,
      known: input.known,
      fixed: input.fixed,
      seed: o.seed,
      restarts: o.restarts,
      ...(o.nearest ? { nearest: o.nearest } : {}),
    });
    const used = new Set(r.assignment).size;
    if (used < 2 || used > input.x.rows - 1) continue;
    tried.push({ k, score: silhouetteScore(distances, r.assignment) });
  }
  return { k: best(tried), tried };
}

/**
 * GCD's estimate: Brent's bounded search over K ∈ [max(known, 1), known + kMax] of minus the labelled
 * rows' clustering accuracy after plain k-means with trunc(K) clusters; each integer K is clustered once.
 */
async function gcdSearch(input: KSearchInput, o: KSearchOptions): Promise<KSearch> {
  const labelled: number[] = [];
  for (let i = 0; i < input.fixed.length; i++) if (input.fixed[i]! >= 0) labelled.push(i);
  const classes = new Set(labelled.map((i) => input.fixed[i]!));
  if (classes.size < 2) {
    throw new ClipOodError("USAGE", `GCD's estimate of k scores the clustering of labelled images, and ${classes.size === 0 ? "none were given" : "they are of one class only"}`, {
      hint: "give --id with labelled images of at least two known classes, use --k-method silhouette, or set --k",
    });
  }
  const truth = Int32Array.from(labelled, (i) => input.fixed[i]!);
  const lower = Math.max(input.known, 1);
  const upper = Math.min(input.known + o.kMax, input.x.rows);
  const memo = new Map<number, number>();
  const order: number[] = [];
  const score = async (total: number): Promise<number> => {
    const r = await semiSupervisedKMeans(input.x, { k: total, seed: o.seed, restarts: o.restarts, ...(o.nearest ? { nearest: o.nearest } : {}) });
    return clusteringAccuracy(truth, Int32Array.from(labelled, (i) => r.assignment[i]!)).all;
  };
  let chosen = lower;
  if (upper <= lower) {
    memo.set(lower, await score(lower));
    order.push(lower);
  } else {
    // Brent's method asks for points one at a time and is synchronous: it is replayed, each replay
    // stopping at the first K not yet clustered (what it asks after that is discarded), until it
    // finishes with every point it asked for known. Each replay's path up to there is the true one.
    for (;;) {
      let missing: number | undefined;
      const result = minimizeBounded((x) => {
        const total = Math.trunc(x);
        const seen = memo.get(total);
        if (seen !== undefined) return -seen;
        missing ??= total;
        return 0;
      }, lower, upper);
      if (missing === undefined) {
        chosen = Math.trunc(result.x);
        break;
      }
      memo.set(missing, await score(missing));
      order.push(missing);
    }
  }
  const tried = order.map((total) => ({ k: total - input.known, score: memo.get(total)! }));
  return { k: Math.max(0, chosen - input.known), tried };
}

/** The k that scores best; ties go to the fewer clusters. */
function best(tried: readonly { k: number; score: number }[]): number {
  let at: { k: number; score: number } | undefined;
  for (const t of tried) if (!at || t.score > at.score || (t.score === at.score && t.k < at.k)) at = t;
  return Math.max(0, at?.k ?? 0);
}
