/**
 * Synthetic outlier classes for the learned heads (src/ood/heads/heads.ts readLogits, withOutlierRows,
 * withOutlierText, and their use in linear-probe, tip-adapter and taskres). Expected numbers are worked
 * out by hand in the comments; the trained cases assert what the construction guarantees.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { readLogits, withOutlierRows, withOutlierText } from "../src/ood/heads/heads.js";
import { fitLinearProbe, linearProbePredict } from "../src/ood/heads/linear-probe.js";
import { fitTaskRes, taskResPredict } from "../src/ood/heads/taskres.js";
import { fitTipAdapter, tipAdapterLogits, tipAdapterPredict } from "../src/ood/heads/tip-adapter.js";
import { matrix, row } from "../src/maths/vectors.js";
import { headWorld } from "./support/heads.js";
import { rejectsWithCode } from "./support/assertions.js";

const close = (a: number, b: number, tol: number, what = "") => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

test("readLogits with outlier classes: the label among the ID classes, scores against the outliers", () => {
  // z = [2, 1, 3] with 2 ID classes: label 0. e² = 7.389056, e = 2.718282, e³ = 20.085537, sum 30.192875.
  const z = Float64Array.from([2, 1, 3]);
  const msp = readLogits(z, "msp", 2);
  assert.equal(msp.index, 0);
  close(msp.score, 7.389056 / 30.192875, 1e-6, "msp = e²/(e² + e + e³)"); // 0.244728
  close(readLogits(z, "maxlogit", 2).score, -1, 1e-12, "maxlogit = 2 − 3");
  close(readLogits(z, "energy", 2).score, Math.log(10.107338 / 30.192875), 1e-6, "energy = log((e² + e)/(e² + e + e³))"); // −1.094420
  // Without outlier classes, the plain scores: label 2, msp e³/sum, maxlogit 3, energy log(sum).
  const plain = readLogits(z, "msp");
  assert.equal(plain.index, 2);
  close(plain.score, 20.085537 / 30.192875, 1e-6);
  close(readLogits(z, "energy").score, Math.log(30.192875), 1e-6);
});

test("withOutlierRows and withOutlierText append, label and check", () => {
  const x = matrix(2, 2, Float32Array.from([1, 0, 0, 1]));
  const r = withOutlierRows(x, Int32Array.from([0, 1]), matrix(1, 2, Float32Array.from([0.6, 0.8])), 2, "m");
  assert.deepEqual(Array.from(r.labels), [0, 1, 2]);
  assert.deepEqual(Array.from(r.x.data), [1, 0, 0, 1, 0.6000000238418579, 0.800000011920929]);
  assert.throws(() => withOutlierRows(x, Int32Array.from([0, 1]), matrix(1, 3), 2, "m"), rejectsWithCode("INPUT", "3 dimensions"));
  assert.throws(() => withOutlierRows(x, Int32Array.from([0, 1]), matrix(0, 2), 2, "m"), rejectsWithCode("INPUT", "outlier set is empty"));
  assert.throws(() => withOutlierRows(x, Int32Array.from([0, 1]), matrix(1, 2, Float32Array.from([NaN, 1])), 2, "m"), rejectsWithCode("INPUT", "non-finite"));
  assert.equal(withOutlierText(x, undefined, "m"), x);
  assert.equal(withOutlierText(x, matrix(3, 2), "m").rows, 5);
  assert.throws(() => withOutlierText(x, matrix(1, 4), "m"), rejectsWithCode("INPUT", "4 dimensions"));
});

test("tip-adapter with a negative-label class: the formula, and an outlier loses its probability", () => {
  // Classes e1, e2; one negative e3; shots e1 (class 0) and e2 (class 1); α = β = 1.
  const text = matrix(2, 3, Float32Array.from([1, 0, 0, 0, 1, 0]));
  const shots = matrix(2, 3, Float32Array.from([1, 0, 0, 0, 1, 0]));
  const negatives = matrix(1, 3, Float32Array.from([0, 0, 1]));
  const plain = fitTipAdapter(shots, Int32Array.from([0, 1]), text, { alpha: 1, beta: 1 });
  const withNeg = fitTipAdapter(shots, Int32Array.from([0, 1]), text, { alpha: 1, beta: 1, negatives });
  assert.equal(withNeg.outlierClasses, 1);
  assert.equal(withNeg.classes, 2);
  const e3 = Float32Array.from([0, 0, 1]);
  // f = e3: zero-shot 100·[0, 0, 1]; both keys at cosine 0 give affinity e^{−1} = 0.367879 to their class.
  const z = tipAdapterLogits(withNeg, e3);
  close(z[0]!, Math.exp(-1), 1e-6);
  close(z[1]!, Math.exp(-1), 1e-6);
  close(z[2]!, 100, 1e-4);
  // Without the negative the two classes tie: msp 0.5, the floor for two classes. With it, e^{0.37}/(2e^{0.37} + e^{100}) ≈ 0.
  close(tipAdapterPredict(plain, e3).score, 0.5, 1e-9);
  assert.ok(tipAdapterPredict(withNeg, e3).score < 1e-40);
  // f = e1: [100 + 1, e^{−1}, 0]: class 0, msp ≈ 1 either way.
  const e1 = Float32Array.from([1, 0, 0]);
  assert.equal(tipAdapterPredict(withNeg, e1).index, 0);
  close(tipAdapterPredict(withNeg, e1).score, 1, 1e-9);
});

test("linear-probe and taskres trained with outliers: outlier-like inputs score lower, ID inputs keep their label", async () => {
  // Classes around axes 0–2 of 8 dims, OOD around axes 3–7; the synthetic outliers lie around the OOD
  // axes too, so the trained outlier class covers where the OOD inputs are.
  const w = headWorld(7, 3, 6, 8);
  const outliers = headWorld(8, 3, 6, 8).ood;
  const probe = await fitLinearProbe(w.x, w.labels, { c: 10 });
  const probeOut = await fitLinearProbe(w.x, w.labels, { c: 10, outliers });
  assert.equal(probeOut.outlierClasses, 1);
  assert.equal(probeOut.weights.length, 4 * 8);
  const neg = headWorld(9, 3, 6, 8).ood;
  const res = await fitTaskRes(w.x, w.labels, w.text, { epochs: 30 });
  const resOut = await fitTaskRes(w.x, w.labels, w.text, { epochs: 30, negatives: neg });
  assert.equal(resOut.outlierClasses, 6);
  for (const [name, without, withOut] of [
    ["linear-probe", (e: Float32Array) => linearProbePredict(probe, e), (e: Float32Array) => linearProbePredict(probeOut, e)],
    ["taskres", (e: Float32Array) => taskResPredict(res, e), (e: Float32Array) => taskResPredict(resOut, e)],
  ] as const) {
    for (let i = 0; i < w.ood.rows; i++) {
      const e = row(w.ood, i);
      assert.ok(withOut(e).score < without(e).score, `${name}: OOD ${i} ${withOut(e).score} vs ${without(e).score}`);
    }
    for (let i = 0; i < w.x.rows; i++) assert.equal(withOut(row(w.x, i)).index, w.labels[i], `${name}: shot ${i}`);
  }
});
