/**
 * Combining detectors (src/ood/combine.ts). Every expected value is worked out by hand in the comments;
 * AUROC is P(ID score > OOD score) with ties counted ½.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { chooseWeights, combineScores, standardize, weightGridSteps } from "../src/ood/combine.js";
import { rejectsWithCode } from "./support/assertions.js";

function close(actual: number, expected: number, tol: number, what = ""): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} vs ${expected}`);
}

test("standardize and combineScores", () => {
  // [1,2,3]: mean 2, population variance (1+0+1)/3 = 2/3.
  const st = standardize(Float32Array.from([1, 2, 3]));
  close(st.mean, 2, 1e-12);
  close(st.std, Math.sqrt(2 / 3), 1e-12);
  // No spread: std 1, only centring.
  assert.deepEqual(standardize(Float32Array.from([4, 4])), { mean: 4, std: 1 });
  assert.throws(() => standardize(new Float32Array(0)), rejectsWithCode("INPUT", "no scores"));
  assert.throws(() => standardize(Float32Array.from([1, NaN])), rejectsWithCode("INPUT", "score 1"));
  // 2·(3−2)/√(2/3) + 0.5·(2−4)/1 = 2.449490 − 1 = 1.449490
  const combined = combineScores([
    { score: 3, standardizer: st, weight: 2 },
    { score: 2, standardizer: { mean: 4, std: 1 }, weight: 0.5 },
  ]);
  close(combined, 2 / Math.sqrt(2 / 3) - 1, 1e-12);
  assert.equal(combineScores([]), 0);
  assert.throws(() => combineScores([{ score: 1, standardizer: { mean: 0, std: 0 }, weight: 1 }]), rejectsWithCode("USAGE", "part 0"));
});

test("standardize: a spread of float32 rounding noise counts as none, and is reported", () => {
  // A knn part scoring its own fitting rows: every score 0 up to rounding (~1e-8).
  const constant: number[] = [];
  const st = standardize(Float32Array.from([1e-8, 1.2e-8, 0.9e-8, 1.1e-8]), (mean) => constant.push(mean));
  assert.equal(st.std, 1);
  close(st.mean, 1.05e-8, 1e-12);
  assert.equal(constant.length, 1);
  // Relative to the scores' magnitude: energy-like scores near 20 with a spread of 1e-5 are constant too.
  assert.equal(standardize(Float32Array.from([20, 20.00002]), () => constant.push(20)).std, 1);
  // A small but real spread is kept, and not reported.
  const small = standardize(Float32Array.from([0.001, 0.0012, 0.0009]), () => constant.push(-1));
  assert.ok(small.std < 1e-3 && small.std > 1e-5, String(small.std));
  assert.deepEqual(constant.length, 2);
});

const unit = { mean: 0, std: 1 };

test("chooseWeights: two parts each right on one ID input; the evenest of the tied best weights wins", () => {
  // A alone: ID {2, 0} vs OOD {0.5, 0.5} → 2 of 4 pairs → 0.5; B alone is the mirror image → 0.5.
  // w·A + (1−w)·B gives ID {2w, 2(1−w)} vs OOD {0.5, 0.5}: every pair right (AUROC 1) for 0.25 < w < 0.75;
  // among those grid points the evenest is w = 0.5.
  const parts = [
    { id: [2, 0], ood: [0.5, 0.5], standardizer: unit },
    { id: [0, 2], ood: [0.5, 0.5], standardizer: unit },
  ];
  const c = chooseWeights(parts);
  assert.deepEqual(c.weights, [0.5, 0.5]);
  assert.equal(c.auroc, 1);
  assert.deepEqual(c.partAuroc, [0.5, 0.5]);
  assert.equal(c.tried, 21); // steps of 0.05: w = 0, 0.05, …, 1
});

test("chooseWeights: a harmful part gets the least weight that keeps the best AUROC", () => {
  // A: ID {1, 2} vs OOD {0, −1}: AUROC 1. B: ID {0, −3} vs OOD {0, 3}: one tie of four pairs → 0.125.
  // With weights (a, 1−a): ID {a, 5a−3}, OOD {0, 3−4a}; all four pairs are right iff a > 2/3, so
  // AUROC 1 holds from a = 0.7 up, and 0.7 is the evenest of those grid points.
  const parts = [
    { id: [1, 2], ood: [0, -1], standardizer: unit },
    { id: [0, -3], ood: [0, 3], standardizer: unit },
  ];
  const c = chooseWeights(parts);
  close(c.weights[0]!, 0.7, 1e-12, "w_A");
  close(c.weights[1]!, 0.3, 1e-12, "w_B");
  assert.equal(c.auroc, 1);
  assert.deepEqual(c.partAuroc, [1, 0.125]);
});

test("chooseWeights: scores are standardised before weighting", () => {
  // B is A's mirror image as before but on a scale 100× larger, centred at 50: standardising with
  // (50, 100) brings it back to the first case, so the choice is again (0.5, 0.5).
  const parts = [
    { id: [2, 0], ood: [0.5, 0.5], standardizer: unit },
    { id: [50, 250], ood: [100, 100], standardizer: { mean: 50, std: 100 } },
  ];
  assert.deepEqual(chooseWeights(parts).weights, [0.5, 0.5]);
});

test("chooseWeights: the grid over three or more parts, and bad input", () => {
  assert.equal(weightGridSteps(2), 20);
  assert.equal(weightGridSteps(3), 10);
  assert.equal(weightGridSteps(21), 2);
  const p = { id: [1, 2], ood: [0], standardizer: unit };
  // Compositions of 10 steps into 3 parts: C(12, 2) = 66; all parts equal → every grid point ties,
  // and the evenest point on a 0.1 grid is (0.4, 0.3, 0.3) (first in grid order among the evenest).
  const c = chooseWeights([p, p, p]);
  assert.equal(c.tried, 66);
  assert.deepEqual(c.weights, [0.4, 0.3, 0.3]);
  assert.throws(() => chooseWeights([p]), rejectsWithCode("USAGE", "need two or more"));
  assert.throws(() => chooseWeights([p, { ...p, ood: [] }]), rejectsWithCode("INPUT", "part 1"));
  assert.throws(() => chooseWeights([{ ...p, ood: [] }, { ...p, ood: [] }]), rejectsWithCode("INPUT", "OOD validation"));
});
