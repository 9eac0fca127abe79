/**
 * Few-shot detectors (src/ood/feature-space/mahalanobis.ts, knn.ts, ocsvm.ts and the dispatch in fewshot.ts). Reference
 * values come from three independent sources, named at each use:
 *  - hand calculation, worked out in the comments;
 *  - scikit-learn 1.9.1 / numpy 2.4.6 (LedoitWolf, numpy.linalg.inv, OneClassSVM), run once outside the
 *    project on the literal data below, rows cast to float32 then normalised in float64, and pasted here;
 *  - properties a correct solution must have (KKT conditions, symmetry, invariances).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { fitOnEmbeddings, prepareWithoutModel } from "../src/ood/build.js";
import { fewShotScore, fewShotScores } from "../src/ood/feature-space/fewshot.js";
import { checkBankMemory, fitKnn, float32DotErrorBound, kthExactCosine, knnScore, knnScores } from "../src/ood/feature-space/knn.js";
import { fitMahalanobis, mahalanobisScore, mahalanobisScores, MIN_AUTO_SHRINKAGE } from "../src/ood/feature-space/mahalanobis.js";
import { fitOcsvm, ocsvmScore, ocsvmScores } from "../src/ood/feature-space/ocsvm.js";
import type { FewShotState } from "../src/ood/feature-space/fewshot.js";
import { matrix, normalizeRows, row } from "../src/maths/vectors.js";
import type { Matrix } from "../src/maths/vectors.js";
import { rejectsWithCode } from "./support/assertions.js";
import { mulberry32 } from "../src/maths/random.js";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what} ${a} ≠ ${b} (tol ${tol})`);

const rows = (r: number[][]): Matrix => matrix(r.length, r[0]!.length, Float32Array.from(r.flat()));
const vec = (v: number[]) => Float32Array.from(v);

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

/** n points around the unit vector e_axis in d dims, Gaussian noise of the given sd per coordinate. */
function cluster(next: () => number, n: number, d: number, axis: number, sd: number): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: d }, (_, j) => (j === axis ? 1 : 0) + sd * gaussian(next)));
}

function permuteRows(x: Matrix, order: number[]): Matrix {
  const out = matrix(x.rows, x.cols);
  order.forEach((from, to) => out.data.set(row(x, from), to * x.cols));
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Mahalanobis
// ---------------------------------------------------------------------------------------------------

// Unit 2-D points: class 0 = (1,0),(0,1), class 1 = (−1,0),(0,−1). Means ±(½,½); every centred row is
// ±(½,−½), so Σ = [[¼,−¼],[−¼,¼]] (rank 1, eigenvalue ½ along u = (1,−1)/√2, 0 along w = (1,1)/√2), μ = ¼.
const square = rows([
  [1, 0],
  [0, 1],
  [-1, 0],
  [0, -1],
]);
const squareLabels = Int32Array.from([0, 0, 1, 1]);

test("mahalanobis: hand-computed 2-D case with fixed shrinkage ½", () => {
  const s = fitMahalanobis(square, squareLabels, { shrinkage: 0.5 });
  // Σ_shrunk = ½Σ + ½·¼·I = [[¼,−⅛],[−⅛,¼]]; det = 3/64; inverse = (64/3)·[[¼,⅛],[⅛,¼]] = [[16/3, 8/3],[8/3, 16/3]].
  [16 / 3, 8 / 3, 8 / 3, 16 / 3].forEach((v, i) => close(s.precision[i]!, v, 1e-6, `P[${i}]`));
  assert.deepEqual(Array.from(s.means), [0.5, 0.5, -0.5, -0.5]);
  assert.equal(s.shrinkage, 0.5);
  assert.equal(s.classes, 2);
  // Query (1,0): x−μ_0 = (½,−½) = u/√2 → d² = ½·(1/⅜) = 4/3. x−μ_1 = (3/2,½): u-part (1/√2)² = ½ → ½·8/3,
  // w-part (2/√2)² = 2 → 2·8 → d² = 4/3 + 16 = 52/3. Score −min = −4/3.
  close(mahalanobisScore(s, vec([1, 0])), -4 / 3, 1e-6);
  // The query is normalised first: (5,0) scores as (1,0).
  close(mahalanobisScore(s, vec([5, 0])), -4 / 3, 1e-6);
  // Query (0.6,0.8): x−μ_0 = (0.1,0.3), d² = 16/3·0.1² + 2·8/3·0.1·0.3 + 16/3·0.3² = 0.05333 + 0.16 + 0.48
  // = 0.69333 (μ_1 is much farther: x−μ_1 = (1.1,1.3)).
  close(mahalanobisScore(s, vec([0.6, 0.8])), -(16 / 3) * 0.01 - 2 * (8 / 3) * 0.03 - (16 / 3) * 0.09, 1e-6);
});

test("mahalanobis: Ledoit–Wolf returning 0 (mirrored centred rows) is floored and stays finite", () => {
  // Hand: Σ‖r_k‖⁴/n = ¼ and ‖Σ‖²_F = 4·(¼)² = ¼, so LW's β = 0 and α = 0; the floor gives α = 1e-3.
  const s = fitMahalanobis(square, squareLabels);
  assert.equal(s.shrinkage, MIN_AUTO_SHRINKAGE);
  // Along u the shrunk variance is 0.999·½ + 0.001·¼ = 0.49975, so (1,0) (x−μ_0 = u/√2) has d² = ½/0.49975.
  close(mahalanobisScore(s, vec([1, 0])), -0.5 / 0.49975, 2e-5);
  for (const v of s.precision) assert.ok(Number.isFinite(v));
});

// Reference data for Ledoit–Wolf: numpy default_rng(3) around two centres, rounded to 2 decimals.
const lwX = rows([
  [1.61, -0.44, 0.02, 0.04],
  [0.86, 0.15, -0.1, 0.08],
  [0.74, 1.03, 0.01, 0.06],
  [0.92, 0.03, -0.05, 0.06],
  [1.14, 0.14, 0.05, 0.08],
  [1.01, 0.59, 0.03, 0.05],
  [-0.05, 1.14, 0.4, -0.03],
  [-0.07, 1.25, 0.26, -0.03],
  [0.26, 1.15, 0.3, 0.07],
  [-0.85, 1.26, 0.25, -0.17],
  [0.08, 1.18, 0.28, -0.11],
]);
const lwLabels = Int32Array.from([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
const lwQueries = rows([
  [0.85, 0.15, 0.25, -0.05],
  [0.1, 0.95, 0.1, 0.3],
  [0.3, 0.3, -0.9, 0.1],
]);

test("mahalanobis: Ledoit–Wolf shrinkage, precision and scores match scikit-learn + numpy", () => {
  const s = fitMahalanobis(lwX, lwLabels);
  // sklearn LedoitWolf(assume_centered=True).fit(R) on the class-centred unit rows R: shrinkage_,
  // numpy.linalg.inv(covariance_), and −min_c (q−μ_c)ᵀP(q−μ_c) for the unit queries.
  close(s.shrinkage, 0.5843854842360848, 1e-6, "α");
  const P = [
    31.135077073510605, 5.264646128587801, -2.0690892849348126, -4.259142848746623, 5.264646128587802, 23.665055070516484,
    -1.6417087026910828, -1.2321858227960367, -2.0690892849348126, -1.641708702691083, 56.6727508006881, -0.04163833280787777,
    -4.259142848746623, -1.2321858227960365, -0.04163833280787782, 58.68441010849756,
  ];
  P.forEach((v, i) => close(s.precision[i]!, v, 1e-5, `P[${i}]`));
  const expected = [-5.701157782168794, -8.226001153566793, -53.62161147193349];
  expected.forEach((v, i) => close(mahalanobisScore(s, row(lwQueries, i)), v, 1e-5, `score ${i}`));
  // The stored precision is exactly symmetric.
  for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) assert.equal(s.precision[a * 4 + b], s.precision[b * 4 + a]);
});

test("mahalanobis: one shot per class (tr Σ = 0) falls back to Σ = I: negative squared distance to the nearest mean", () => {
  const s = fitMahalanobis(rows([[1, 0, 0], [0, 1, 0]]), Int32Array.from([0, 1]));
  assert.equal(s.shrinkage, 1);
  // (0.6, 0.8, 0): to (1,0,0) 0.16+0.64 = 0.8; to (0,1,0) 0.36+0.04 = 0.4 → −0.4.
  close(mahalanobisScore(s, vec([0.6, 0.8, 0])), -0.4, 1e-6);
  // Also with a single sample in all.
  const one = fitMahalanobis(rows([[0, 0, 2]]), Int32Array.from([0]));
  close(mahalanobisScore(one, vec([0, 1, 0])), -2, 1e-6);
});

test("mahalanobis: zero-variance features and identical samples give finite scores", () => {
  // Feature 2 is 0 in every sample (zero variance); feature 3 is constant.
  const x = rows([
    [0.9, 0.1, 0, 0.2],
    [0.8, 0.3, 0, 0.2],
    [0.1, 0.9, 0, 0.2],
    [0.3, 0.7, 0, 0.2],
  ]);
  const s = fitMahalanobis(x, Int32Array.from([0, 0, 1, 1]));
  for (const v of s.precision) assert.ok(Number.isFinite(v));
  assert.ok(Number.isFinite(mahalanobisScore(s, vec([0, 0, 1, 0]))));
  // All samples identical.
  const same = fitMahalanobis(rows([[1, 2, 3], [1, 2, 3], [1, 2, 3]]), Int32Array.from([0, 0, 0]));
  close(mahalanobisScore(same, vec([1, 2, 3])), 0, 1e-6);
  assert.ok(Number.isFinite(mahalanobisScore(same, vec([-1, 0, 0]))));
  // An explicit shrinkage of 0 on a singular covariance is refused rather than inverted.
  assert.throws(() => fitMahalanobis(x, Int32Array.from([0, 0, 1, 1]), { shrinkage: 0 }), rejectsWithCode("USAGE", "singular"));
});

test("mahalanobis: class numbering and row order do not change scores", () => {
  const base = fitMahalanobis(lwX, lwLabels);
  const order = [10, 3, 7, 0, 5, 9, 1, 8, 2, 6, 4];
  const swapped = Int32Array.from(order, (i) => 1 - lwLabels[i]!);
  const other = fitMahalanobis(permuteRows(lwX, order), swapped);
  for (let i = 0; i < lwQueries.rows; i++) {
    close(mahalanobisScore(other, row(lwQueries, i)), mahalanobisScore(base, row(lwQueries, i)), 1e-5);
  }
});

test("mahalanobis: bad input", () => {
  assert.throws(() => fitMahalanobis(matrix(0, 4), new Int32Array(0)), rejectsWithCode("INPUT", "no in-distribution"));
  assert.throws(() => fitMahalanobis(lwX, Int32Array.from([0, 1])), rejectsWithCode("INPUT", "2 labels for 11"));
  const bad = Int32Array.from(lwLabels);
  bad[4] = 5;
  assert.throws(() => fitMahalanobis(lwX, bad, { classes: 2 }), rejectsWithCode("INPUT", "label 5 of row 4", "0..1"));
  bad[4] = -1;
  assert.throws(() => fitMahalanobis(lwX, bad), rejectsWithCode("INPUT", "label -1 of row 4"));
  assert.throws(() => fitMahalanobis(lwX, lwLabels, { classes: 3 }), rejectsWithCode("INPUT", "class 2 has no embeddings"));
  assert.throws(() => fitMahalanobis(lwX, lwLabels, { shrinkage: 1.5 }), rejectsWithCode("USAGE", "shrinkage"));
  const nan = rows([[1, 0], [0, 1], [NaN, 1]]);
  assert.throws(() => fitMahalanobis(nan, Int32Array.from([0, 0, 1])), rejectsWithCode("INPUT", "row 2", "NaN"));
  const s = fitMahalanobis(lwX, lwLabels);
  assert.throws(() => mahalanobisScore(s, vec([1, 0, 0])), rejectsWithCode("INPUT", "expected an embedding of 4 dimensions, got 3"));
  assert.throws(() => mahalanobisScores(s, rows([[1, 0, 0]])), rejectsWithCode("INPUT", "expected embeddings of 4 dimensions, got 3"));
  assert.throws(() => mahalanobisScores(s, rows([[1, 0, 0, 0], [Infinity, 0, 0, 0]])), rejectsWithCode("INPUT", "row 1", "Infinity"));
});

// ---------------------------------------------------------------------------------------------------
// KNN
// ---------------------------------------------------------------------------------------------------

test("knn: −‖z − z_(k)‖² = 2·cos_(k) − 2, hand-computed", () => {
  // Bank at 0°, 60°, 180° (the second given unnormalised); query at 0°: cosines 1, ½, −1.
  const bank = rows([
    [1, 0],
    [1, Math.sqrt(3)],
    [-2, 0],
  ]);
  const q = vec([3, 0]);
  close(knnScore(fitKnn(bank), q), 0, 1e-7); // k=1: distance 0
  close(knnScore(fitKnn(bank, 2), q), -1, 1e-6); // k=2: ‖(1,0)−(½,√3/2)‖² = ¼+¾ = 1
  close(knnScore(fitKnn(bank, 3), q), -4, 1e-6); // k=3: ‖(1,0)−(−1,0)‖² = 4
  // k-th neighbour counts duplicates separately: two copies of the query direction make k=2 exact too.
  const dup = rows([[1, 0], [2, 0], [0, 1]]);
  close(knnScore(fitKnn(dup, 2), q), 0, 1e-7);
  close(knnScore(fitKnn(dup, 3), q), -2, 1e-6); // ‖(1,0)−(0,1)‖² = 2
  assert.equal(fitKnn(bank).k, 1);
});

test("knn: heap selection agrees with a full sort; batch (engine + float64 rerank) = single; row order irrelevant", async () => {
  const next = mulberry32(7);
  const n = 300;
  const d = 12;
  const bank = rows(Array.from({ length: n }, () => Array.from({ length: d }, () => gaussian(next))));
  const queries = rows(Array.from({ length: 20 }, () => Array.from({ length: d }, () => gaussian(next))));
  const unitBank = normalizeRows(bank);
  const order = Array.from({ length: n }, (_, i) => (i * 37) % n);
  for (const k of [1, 5, 50, n]) {
    const s = fitKnn(bank, k);
    const permuted = fitKnn(permuteRows(bank, order), k);
    const batch = await knnScores(s, queries);
    for (let qi = 0; qi < queries.rows; qi++) {
      const q = normalizeRows(matrix(1, d, row(queries, qi).slice())).data;
      // Independent: every cosine, sorted descending, take the k-th.
      const cos = Array.from({ length: n }, (_, i) => row(unitBank, i).reduce((acc, v, j) => acc + v * q[j]!, 0)).sort((a, b) => b - a);
      close(knnScore(s, row(queries, qi)), 2 * cos[k - 1]! - 2, 1e-6, `k=${k} q=${qi}`);
      assert.equal(batch[qi], knnScore(s, row(queries, qi)), `batch k=${k} q=${qi}`);
      assert.equal(knnScore(permuted, row(queries, qi)), knnScore(s, row(queries, qi)));
    }
  }
});

test("knn fitted in place: the bank is the fitting rows' own memory, normalised to the same values a copy gets; FitData.owned asks for it", async () => {
  const x = rows([[3, 4], [0, 2], [1, 1]]);
  const copied = fitKnn(x, 1);
  assert.deepEqual(Array.from(x.data), [3, 4, 0, 2, 1, 1], "a copy leaves x alone");
  const own = fitKnn(x, 1, undefined, { inPlace: true });
  assert.equal(own.bank.buffer, x.data.buffer, "no second copy");
  assert.deepEqual(own.bank, copied.bank);
  // Nothing is copied, so free memory is not asked for one more copy.
  fitKnn(rows([[1, 0]]), 1, { free: 8, total: 2 ** 30 }, { inPlace: true });
  // Through the detector's fit: owned data becomes the bank, other data is copied.
  const model = { id: "m", dtype: "fp32", dim: 2, exifRotate: true };
  const fit = async (owned: boolean) => {
    const data = { embeddings: rows([[0.6, 0.8], [0, 1]]), labels: Int32Array.of(0, 0), ...(owned ? { owned } : {}) };
    const prepared = prepareWithoutModel({ method: "knn", classes: [{ label: "a", names: ["a"], descriptions: [] }], model }, data);
    const fitted = (await fitOnEmbeddings(prepared, data)).fitted as { bank: Float32Array };
    return fitted.bank.buffer === data.embeddings.data.buffer;
  };
  assert.deepEqual([await fit(true), await fit(false)], [true, false]);
});

test("knn: bad input", () => {
  const bank = rows([[1, 0], [0, 1]]);
  assert.throws(() => fitKnn(bank, 3), rejectsWithCode("USAGE", "k = 3 is larger than the bank of 2"));
  assert.throws(() => fitKnn(bank, 0), rejectsWithCode("USAGE", "positive integer"));
  assert.throws(() => fitKnn(matrix(0, 2)), rejectsWithCode("INPUT", "no in-distribution"));
  assert.throws(() => fitKnn(rows([[1, 0], [0, NaN]])), rejectsWithCode("INPUT", "row 1"));
  assert.throws(() => knnScore(fitKnn(bank), vec([1, 0, 0])), rejectsWithCode("INPUT", "expected an embedding of 2 dimensions, got 3"));
  // A bank the free memory cannot hold is refused before it is copied, naming its size and the machine's.
  const gib = 2 ** 30;
  assert.throws(
    () => fitKnn(bank, 1, { free: 8, total: 4 * gib }),
    rejectsWithCode("INPUT", "knn: a bank of 2 rows × 2 dimensions (1 float32 copy) needs 0.00 GiB, but this machine has 0.00 GiB free of 4.00 GiB"),
  );
  // 1,281,167 × 512 float32 (ImageNet-1k's training set) is 2.44 GiB: refused with 2 GiB free, fine with 3.
  assert.throws(() => checkBankMemory(1_281_167, 512, 1, "a bank", { free: 2 * gib, total: 24 * gib }), rejectsWithCode("INPUT", "1,281,167 rows × 512 dimensions (1 float32 copy) needs 2.44 GiB"));
  checkBankMemory(1_281_167, 512, 1, "a bank", { free: 3 * gib, total: 24 * gib });
  // A single sample with k = 1 works.
  close(knnScore(fitKnn(rows([[0, 1]])), vec([0, 1])), 0, 1e-7);
});

// ---------------------------------------------------------------------------------------------------
// One-class SVM
// ---------------------------------------------------------------------------------------------------

const svX = rows([
  [0.9, 0.2, 0.1],
  [0.8, 0.4, -0.1],
  [0.7, 0.1, 0.3],
  [1.0, 0.0, 0.0],
  [0.6, 0.5, 0.2],
  [0.95, -0.2, 0.1],
  [0.5, 0.3, 0.5],
  [0.85, 0.3, 0.3],
]);
const svQ = rows([
  [1, 0.1, 0.1],
  [0, 1, 0],
  [0.7, 0.3, 0.2],
  [-1, 0, 0.2],
]);

test("ocsvm: matches scikit-learn OneClassSVM (gamma, rho, decision_function)", () => {
  // sklearn OneClassSVM(nu, gamma="scale" or 2.0, tol=1e-10).fit(unit rows): _gamma, −intercept_,
  // dual_coef_.sum(), decision_function(unit queries).
  const cases = [
    { nu: 0.3, gamma: "scale" as const, g: 2.4437477111894563, rho: 1.1545356970813279, dec: [0.20215003660332265, -1.0456296916909897, 0.22652038197912105, -1.1538684660559253] },
    { nu: 0.5, gamma: "scale" as const, g: 2.4437477111894563, rho: 2.153483919799328, dec: [0.17882162451078987, -1.9246050710759246, 0.30362517358983254, -2.152483982029545] },
    { nu: 0.5, gamma: 2, g: 2, rho: 2.3520670160651207, dec: [0.19199447053199048, -1.9935400503706158, 0.3198882590856367, -2.3478086361761425] },
  ];
  for (const c of cases) {
    const s = fitOcsvm(svX, { nu: c.nu, gamma: c.gamma, tol: 1e-10 });
    close(s.gamma, c.g, 1e-6, "gamma");
    close(s.rho, c.rho, 1e-6, "rho");
    close(s.coefficients.reduce((a, b) => a + b, 0), c.nu * svX.rows, 1e-6, "Σα");
    c.dec.forEach((v, i) => close(ocsvmScore(s, row(svQ, i)), v, 1e-6, `nu=${c.nu} dec ${i}`));
  }
});

test("ocsvm: one training sample (sklearn: α = ν, ρ = ν)", () => {
  const s = fitOcsvm(matrix(1, 3, row(svX, 0).slice()), { tol: 1e-10 });
  // sklearn OneClassSVM(nu=0.1, tol=1e-10).fit(first unit row): _gamma 2.2631579401420447, rho 0.1.
  close(s.gamma, 2.2631579401420447, 1e-6);
  close(s.rho, 0.1, 1e-7);
  [-0.003134404264560714, -0.09712795381756369, -0.011772130958113913, -0.09998396347709304].forEach((v, i) =>
    close(ocsvmScore(s, row(svQ, i)), v, 1e-6),
  );
  close(ocsvmScore(s, row(svX, 0)), 0, 1e-7);
});

test("ocsvm: symmetric square, hand-computed", () => {
  // Four unit points at 0°, 90°, 180°, 270°, ν = ½, γ = 1. By symmetry (and uniqueness: K is positive
  // definite) every α = νN/N = ½, all free, so ρ = Σ_j ½K(x_0, x_j) = ½(1 + 2e^{−2} + e^{−4}).
  const s = fitOcsvm(square, { nu: 0.5, gamma: 1, tol: 1e-10 });
  const rho = 0.5 * (1 + 2 * Math.exp(-2) + Math.exp(-4));
  close(s.rho, rho, 1e-7);
  for (const a of s.coefficients) close(a, 0.5, 1e-7);
  for (let i = 0; i < 4; i++) close(ocsvmScore(s, row(square, i)), 0, 1e-7);
  // At 45°: squared distances 2 − √2 (twice) and 2 + √2 (twice).
  const diag = 0.5 * (2 * Math.exp(-(2 - Math.SQRT2)) + 2 * Math.exp(-(2 + Math.SQRT2))) - rho;
  close(ocsvmScore(s, vec([1, 1])), diag, 1e-7);
  // The zero vector stays zero after normalisation: distance 1 to each point.
  close(ocsvmScore(s, vec([0, 0])), 2 * Math.exp(-1) - rho, 1e-7);
});

test("ocsvm: the solution satisfies the KKT conditions; duplicates are harmless; row order irrelevant", () => {
  const next = mulberry32(11);
  const d = 8;
  const base = cluster(next, 30, d, 0, 0.4);
  const x = rows([...base, base[3]!, base[3]!, base[17]!]); // three duplicate rows
  const nu = 0.2;
  const tol = 1e-7;
  const s = fitOcsvm(x, { nu, tol });
  const unit = normalizeRows(x);
  // α per training row: support vectors are copies of unit rows; duplicates share one α-sum.
  const sumAlpha = s.coefficients.reduce((a, b) => a + b, 0);
  close(sumAlpha, nu * x.rows, 1e-5, "Σα = νN");
  for (const a of s.coefficients) assert.ok(a > 0 && a <= 1, `α = ${a} outside (0, 1]`);
  const alphaOf = (i: number): number[] => {
    const r = row(unit, i);
    const found: number[] = [];
    for (let k = 0; k < s.coefficients.length; k++) {
      const sv = s.supportVectors.subarray(k * d, (k + 1) * d);
      if (sv.every((v, j) => v === r[j])) found.push(s.coefficients[k]!);
    }
    return found;
  };
  const slack = 1e-5; // solver tol plus float32 rounding of the stored α
  for (let i = 0; i < 30; i++) {
    if (i === 3 || i === 17) continue; // duplicated rows: their α may be split between copies
    const f = ocsvmScore(s, row(x, i));
    const a = alphaOf(i);
    if (a.length === 0) assert.ok(f >= -slack, `α=0 but f=${f} (row ${i})`);
    else if (a[0]! >= 1) assert.ok(f <= slack, `α=1 but f=${f} (row ${i})`);
    else assert.ok(Math.abs(f) <= slack, `free α but f=${f} (row ${i})`);
  }
  const order = Array.from({ length: x.rows }, (_, i) => (i * 7) % x.rows);
  const p = fitOcsvm(permuteRows(x, order), { nu, tol });
  const queries = rows(cluster(next, 10, d, 0, 0.6));
  for (let i = 0; i < queries.rows; i++) close(ocsvmScore(p, row(queries, i)), ocsvmScore(s, row(queries, i)), 1e-5);
  const batch = ocsvmScores(s, queries);
  for (let i = 0; i < queries.rows; i++) assert.equal(batch[i], Math.fround(ocsvmScore(s, row(queries, i))));
});

test("ocsvm: identical samples, ν = 1, and bad options", () => {
  const same = fitOcsvm(rows([[1, 1], [1, 1], [1, 1]]));
  assert.equal(same.gamma, 1); // Var(X) = 0 → sklearn's fallback γ = 1
  close(ocsvmScore(same, vec([1, 1])), 0, 1e-6);
  assert.ok(ocsvmScore(same, vec([1, -1])) < 0);
  const all = fitOcsvm(svX, { nu: 1 });
  assert.ok(Number.isFinite(all.rho));
  assert.throws(() => fitOcsvm(svX, { nu: 0 }), rejectsWithCode("USAGE", "nu"));
  assert.throws(() => fitOcsvm(svX, { gamma: -1 }), rejectsWithCode("USAGE", "gamma"));
  assert.throws(() => fitOcsvm(matrix(0, 3)), rejectsWithCode("INPUT", "no in-distribution"));
  assert.throws(() => fitOcsvm(rows([[1, 0], [NaN, 0]])), rejectsWithCode("INPUT", "row 1"));
  assert.throws(() => ocsvmScore(fitOcsvm(svX), vec([1, 0])), rejectsWithCode("INPUT", "expected an embedding of 3 dimensions, got 2"));
});

// ---------------------------------------------------------------------------------------------------
// All detectors
// ---------------------------------------------------------------------------------------------------

test("synthetic 16-D: every detector ranks every ID point above every OOD point", async () => {
  const next = mulberry32(2024);
  const d = 16;
  const train = rows([0, 1, 2].flatMap((c) => cluster(next, 8, d, c, 0.12)));
  const labels = Int32Array.from([0, 1, 2].flatMap((c) => Array<number>(8).fill(c)));
  const id = rows([0, 1, 2].flatMap((c) => cluster(next, 10, d, c, 0.12)));
  const ood = rows(cluster(next, 30, d, 3, 0.12));
  const states: FewShotState[] = [fitMahalanobis(train, labels), fitKnn(train), fitKnn(train, 3), fitOcsvm(train)];
  for (const s of states) {
    const idScores = await fewShotScores(s, id);
    const oodScores = await fewShotScores(s, ood);
    const minId = Math.min(...idScores);
    const maxOod = Math.max(...oodScores);
    assert.ok(minId > maxOod, `${s.kind}: min ID ${minId} ≤ max OOD ${maxOod}`);
  }
});

test("batch = single, batch splits agree, and a copied state scores bit-identically", async () => {
  const next = mulberry32(5);
  const d = 6;
  const train = rows([...cluster(next, 5, d, 0, 0.3), ...cluster(next, 4, d, 1, 0.3)]);
  const labels = Int32Array.from([0, 0, 0, 0, 0, 1, 1, 1, 1]);
  const queries = rows(cluster(next, 9, d, 2, 0.8));
  const states: FewShotState[] = [fitMahalanobis(train, labels), fitKnn(train, 2), fitOcsvm(train, { nu: 0.3 })];
  for (const s of states) {
    const all = await fewShotScores(s, queries);
    const head = await fewShotScores(s, matrix(4, d, queries.data.slice(0, 4 * d)));
    const tail = await fewShotScores(s, matrix(5, d, queries.data.slice(4 * d)));
    assert.deepEqual(Array.from(all), [...head, ...tail], s.kind);
    // What a save/load does: fresh arrays with the same bits (and, for Mahalanobis, a fresh cache).
    const copy = structuredClone(s);
    for (let i = 0; i < queries.rows; i++) {
      const single = fewShotScore(s, row(queries, i));
      // KNN's batch takes candidates from float32 matrix products and re-scores them in float64: the same bits.
      assert.equal(all[i], Math.fround(single), s.kind);
      assert.ok(Object.is(fewShotScore(copy, row(queries, i)), single), `${s.kind}: copy differs`);
    }
  }
});

test("kthExactCosine: the k-th exact cosine from float32 candidates, re-scoring only those near the float32 k-th", () => {
  // Exact cosines, then float32-like scores off by at most eps, listed best first by that score.
  const eps = 1e-4;
  const exactOf = [0.9, 0.8, 0.70004, 0.70002, 0.7, 0.69997, 0.5, 0.4];
  const noisy = [0.9, 0.8, 0.69995, 0.70008, 0.70001, 0.69999, 0.5, 0.4]; // rows 2 and 3 swap order
  const order = noisy.map((_, i) => i).sort((a, b) => noisy[b]! - noisy[a]!);
  const f32 = order.map((i) => noisy[i]!);
  const truth = [...exactOf].sort((a, b) => b - a);
  for (const k of [1, 2, 3, 4, 5, 6]) {
    const scored: number[] = [];
    const got = kthExactCosine(f32, k, eps, true, (c) => (scored.push(c), exactOf[order[c]!]!));
    assert.equal(got, truth[k - 1], `k = ${k}`);
    // Only candidates within 2·eps of the float32 k-th were scored exactly.
    assert.ok(scored.every((c) => Math.abs(f32[c]! - f32[k - 1]!) <= 2 * eps), `k = ${k}: scored ${scored.join(",")}`);
    if (k <= 2) assert.equal(scored.length, 1, "a clear k-th is the only one re-scored");
  }
  // Rows beyond the candidates may be within reach of the k-th: no answer, the caller re-scores all.
  assert.equal(kthExactCosine(f32.slice(0, 5), 3, eps, false, (c) => exactOf[order[c]!]!), undefined);
  assert.equal(kthExactCosine(f32, 2, eps, false, (c) => exactOf[order[c]!]!), 0.8, "the last candidate is far below: an answer");
  assert.equal(kthExactCosine(f32, 9, eps, true, () => 0), undefined, "k beyond the candidates");
});

test("kthExactCosine on random perturbations up to the bound equals a full re-score; the bound covers the engine's float32 error", () => {
  const r = mulberry32(5);
  for (let trial = 0; trial < 200; trial++) {
    const m = 40;
    const eps = 1e-3;
    const exactOf = Array.from({ length: m }, () => 0.6 + 0.02 * r());
    const noisy = exactOf.map((e) => e + (2 * r() - 1) * eps);
    const order = noisy.map((_, i) => i).sort((a, b) => noisy[b]! - noisy[a]! || a - b);
    const k = 1 + Math.floor(r() * (m - 8));
    const got = kthExactCosine(order.map((i) => noisy[i]!), k, eps, true, (c) => exactOf[order[c]!]!);
    assert.equal(got, [...exactOf].sort((a, b) => b - a)[k - 1], `trial ${trial}`);
  }
  // 512-d: the worst-case bound is about 3.1e-5 (Higham's γ_n with the query's float32 rounding).
  const eps512 = float32DotErrorBound(512);
  assert.ok(eps512 > 3.0e-5 && eps512 < 3.2e-5, String(eps512));
});
