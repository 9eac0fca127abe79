/**
 * Thresholds worked out by hand on small score lists (the reasoning is in each comment).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { thresholdAtFpr, thresholdAtTpr } from "../src/ood/calibration.js";
import { rejectsWithCode } from "./support/assertions.js";

test("thresholdAtTpr: the ceil(tpr·n)-th highest ID score", () => {
  const id = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
  // tpr 0.95 of 10 → keep ceil(9.5) = 10 → the lowest score, 0.1.
  assert.equal(thresholdAtTpr(id, 0.95).value, 0.1);
  // tpr 0.8 → keep 8 → the 8th highest = 0.3; 8 of 10 scores are ≥ 0.3.
  const t = thresholdAtTpr(id, 0.8, [0.05, 0.35, 0.95]);
  assert.equal(t.value, 0.3);
  assert.equal(t.tpr, 0.8);
  // OOD scores ≥ 0.3: 0.35 and 0.95 → 2 of 3.
  assert.equal(t.fpr, 2 / 3);
  // Order of the input does not matter.
  assert.equal(thresholdAtTpr([...id].reverse(), 0.8).value, 0.3);
});

test("thresholdAtTpr: ties raise the achieved TPR, never lower it", () => {
  const t = thresholdAtTpr([0.5, 0.5, 0.5, 0.9], 0.5);
  // keep 2 → the 2nd highest is 0.5, and all four are ≥ 0.5.
  assert.equal(t.value, 0.5);
  assert.equal(t.tpr, 1);
});

test("thresholdAtFpr: just above the highest OOD score that must be blocked", () => {
  const id = [0.6, 0.7, 0.8, 0.9];
  const ood = [0.1, 0.2, 0.3, 0.65, 0.75];
  // fpr 0.2 of 5 → 1 OOD may pass (0.75); 0.65 must be blocked; the next higher score is 0.7 → θ = 0.675.
  const t = thresholdAtFpr(id, ood, 0.2);
  assert.ok(Math.abs(t.value - 0.675) < 1e-12, String(t.value));
  assert.equal(t.fpr, 0.2);
  assert.equal(t.tpr, 0.75);
  // fpr 0.05 of 5 → none may pass: above 0.75, halfway to 0.8.
  assert.ok(Math.abs(thresholdAtFpr(id, ood, 0.05).value - 0.775) < 1e-12, "θ between 0.75 and 0.8");
});

test("bad validation data and rates are clear errors", () => {
  assert.throws(() => thresholdAtTpr([], 0.95), rejectsWithCode("INPUT", "no in-distribution validation scores"));
  assert.throws(() => thresholdAtTpr([0.1, NaN], 0.95), rejectsWithCode("INPUT", "score 1 is NaN"));
  assert.throws(() => thresholdAtTpr([0.1], 1.5), rejectsWithCode("USAGE", "--tpr must be in (0, 1]"));
  assert.throws(() => thresholdAtFpr([0.1], [], 0.05), rejectsWithCode("INPUT", "no out-of-distribution"));
});
