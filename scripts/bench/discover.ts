/**
 * discover: clustering 100,000 CLIP-like embeddings — the k search on its sample, SS-k-means on every
 * row, and one assignment step as matrix products against the scalar loops it replaced.
 */
import os from "node:os";
import { parseArgs } from "node:util";
import { clusterAll, K_SEARCH_SAMPLE, sampleRows } from "../../src/discover/discover.js";
import { estimateK } from "../../src/discover/estimate-k.js";
import { clusteringAccuracy } from "../../src/maths/clustering/hungarian.js";
import { nearestCentroids, nearestCentroidsScalar, squaredNorms } from "../../src/maths/kernels/kmeans-kernel.js";
import { mulberry32 } from "../../src/maths/random.js";
import { matrix } from "../../src/maths/vectors.js";
import type { Matrix } from "../../src/maths/vectors.js";
import { randomUnitVectors } from "./ann.js";
import { count, figuresHead, ints, log, mb, seconds } from "./kit.js";
import type { Bench } from "./kit.js";

/**
 * Unit vectors in `classes` clusters shaped as scripts/bench/knn.ts's clipLikeVectors (a shared
 * direction of weight α = 0.5, a class direction of weight β, isotropic noise for the rest), with
 * each row's class.
 */
function labelledClipLike(n: number, dim: number, classes: number, beta: number, seed: number): { x: Matrix; labels: Int32Array } {
  const alpha = 0.5;
  const shared = randomUnitVectors(1 + classes, dim, 7);
  const r = mulberry32(seed);
  const data = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const sa = Math.sqrt(alpha);
  const sb = Math.sqrt(beta);
  const sg = Math.sqrt((1 - alpha - beta) / dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * classes);
    labels[i] = c;
    let ss = 0;
    for (let j = 0; j < dim; j++) {
      const g = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
      const v = sa * shared[j]! + sb * shared[(1 + c) * dim + j]! + sg * g;
      data[i * dim + j] = v;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss);
    for (let j = 0; j < dim; j++) data[i * dim + j]! *= inv;
  }
  return { x: matrix(n, dim, data), labels };
}

export const discoverBench: Bench = {
  title: "discover: clustering 100,000 embeddings",
  intro: [
    "`clip-ood discover` clusters with semi-supervised k-means (src/maths/clustering/kmeans.ts) whose assignment step is",
    "one onnxruntime Gemm + ArgMax per block of rows (src/maths/kernels/kmeans-kernel.ts). The bench clusters",
    "clustered unit vectors shaped like CLIP image embeddings (as the knn bench's clip-like data: a shared",
    "direction of weight 0.5, one direction per class of weight β, isotropic noise; β = 0.1 puts same-class",
    "pairs at cosine ≈ 0.6 against ≈ 0.5 across classes, harder than the knn bench's 0.25), no known classes,",
    "in the steps discover takes: the k search (silhouette for k = 0…20 new clusters on a seeded sample of",
    `${count(K_SEARCH_SAMPLE)} rows, each k with its restarts), then SS-k-means on every row with the k found (restarts on a`,
    "sample of 10,000 rows beyond 20,000, the best refined on all). Accuracy is GCD's clustering accuracy against",
    "the generator's classes. The last line times one assignment step (every row to its nearest of the",
    "centroids) as matrix products and as the float64 scalar loops, on the same rows.",
  ].join("\n"),

  async run(argv, command) {
    const { values } = parseArgs({
      args: argv,
      options: {
        n: { type: "string", default: "100000" },
        dim: { type: "string", default: "512" },
        classes: { type: "string", default: "10" },
        seed: { type: "string", default: "1" },
        restarts: { type: "string", default: "4" },
      },
      strict: true,
    });
    const [n] = ints("n", values.n);
    const [dim] = ints("dim", values.dim);
    const [classes] = ints("classes", values.classes);
    const [seed] = ints("seed", values.seed);
    const [restarts] = ints("restarts", values.restarts);
    log(`discover: generating ${count(n!)} × ${dim} in ${classes} classes`);
    const { x, labels } = labelledClipLike(n!, dim!, classes!, 0.1, seed!);
    const fixed = new Int32Array(n!).fill(-1);
    log("discover: k search");
    let t0 = performance.now();
    const sample = sampleRows(x, fixed, K_SEARCH_SAMPLE, seed!);
    const found = await estimateK({ x: sample.x, fixed: sample.fixed, known: 0 }, { method: "silhouette", kMax: 20, seed: seed!, restarts: restarts! });
    const searchS = seconds(t0);
    log(`discover: k = ${found.k} in ${searchS.toFixed(1)} s; clustering every row`);
    t0 = performance.now();
    const clustering = await clusterAll(x, fixed, 0, found.k, seed!, restarts!);
    const clusterS = seconds(t0);
    const acc = clusteringAccuracy(labels, clustering.assignment).all;
    log(`discover: clustered in ${clusterS.toFixed(1)} s (${clustering.iterations} iterations), accuracy ${acc.toFixed(4)}`);
    const centroids = clustering.centroids;
    const norms2 = squaredNorms(x);
    t0 = performance.now();
    await nearestCentroids(x, centroids, norms2);
    const gemmS = seconds(t0);
    t0 = performance.now();
    nearestCentroidsScalar(x, centroids);
    const scalarS = seconds(t0);
    return [
      {
        key: `n=${n},dim=${dim},classes=${classes}`,
        markdown: [
          ...figuresHead(`${count(n!)} × ${dim}, ${classes} classes`, command, ` (seed ${seed}, ${restarts} restarts; the machine was shared with other work while measuring)`),
          `| data | ${mb(x.data.byteLength)} float32 |`,
          `| threads | onnxruntime intra-op ${os.availableParallelism()} |`,
          `| k search (silhouette, k = 0…20 on ${count(sample.x.rows)} rows) | ${searchS.toFixed(1)} s; k = ${found.k} (true ${classes}) |`,
          `| SS-k-means on every row, k = ${found.k} | ${clusterS.toFixed(1)} s; ${clustering.iterations} Lloyd iterations in the run kept; clustering accuracy ${acc.toFixed(4)} |`,
          `| total | ${(searchS + clusterS).toFixed(1)} s |`,
          `| one assignment step, ${count(n!)} rows × ${centroids.rows} centroids | Gemm ${(gemmS * 1000).toFixed(0)} ms; scalar loops ${(scalarS * 1000).toFixed(0)} ms (${(scalarS / gemmS).toFixed(0)}×) |`,
        ].join("\n"),
      },
    ];
  },
};
