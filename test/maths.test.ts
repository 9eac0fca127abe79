/**
 * Pure maths against hand-computed values (worked out in the comments) and float16 bit patterns
 * from the IEEE 754 binary16 definition.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { fromFloat16Bits, toFloat16Bits } from "../src/maths/float16.js";
import { classProbabilities, energyScore, maxLogitScore, mcmScore, negativeEntropyScore, outlierPenaltyScore, unknownMassScore } from "../src/maths/scores.js";
import { argmax, cosineMatrix, matrix, meanOfNormalized, normalizeRows, softmax, topK } from "../src/maths/vectors.js";

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} ≠ ${b}`);

test("normalizeRows: unit rows; a zero row stays zero", () => {
  const m = normalizeRows(matrix(2, 2, Float32Array.from([3, 4, 0, 0])));
  assert.deepEqual(Array.from(m.data), [0.6000000238418579, 0.800000011920929, 0, 0]);
});

test("cosineMatrix: cos of (1,0),(1,1) against (0,2),(3,0)", () => {
  const c = cosineMatrix(matrix(2, 2, Float32Array.from([1, 0, 1, 1])), matrix(2, 2, Float32Array.from([0, 2, 3, 0])));
  // (1,0)·(0,1)=0, (1,0)·(1,0)=1, (1,1)/√2·(0,1)=1/√2, ·(1,0)=1/√2
  [0, 1, Math.SQRT1_2, Math.SQRT1_2].forEach((v, i) => close(c.data[i]!, v));
  assert.throws(() => cosineMatrix(matrix(1, 2), matrix(1, 3)), /dimension mismatch/);
});

test("meanOfNormalized: normalise → mean → renormalise, not the raw mean", () => {
  // (10,0) and (0,1): normalised (1,0),(0,1); mean (0.5,0.5); renormalised (1/√2,1/√2).
  // The raw mean (5,0.5) would point almost along x.
  const v = meanOfNormalized(matrix(2, 2, Float32Array.from([10, 0, 0, 1])));
  close(v[0]!, Math.SQRT1_2);
  close(v[1]!, Math.SQRT1_2);
  assert.throws(() => meanOfNormalized(matrix(0, 2)), /empty/);
});

test("softmax with scale, stable for large inputs", () => {
  // softmax(1,2,3) = e^k / (e + e² + e³) = 0.09003057, 0.24472847, 0.66524096
  const p = softmax([1, 2, 3]);
  [0.09003057, 0.24472847, 0.66524096].forEach((v, i) => close(p[i]!, v, 1e-8));
  const big = softmax([1000, 1000]);
  close(big[0]!, 0.5);
  // scale 100 on cosines 0.30 and 0.25: e^5/(e^5+1) ... = 1/(1+e^-5) = 0.99330715
  close(softmax([0.3, 0.25], 100)[0]!, 0.99330715, 1e-7);
});

test("topK and argmax: order, ties to the lower index, k clamped", () => {
  assert.deepEqual(topK([0.1, 0.5, 0.5, 0.2], 3), [1, 2, 3]);
  assert.deepEqual(topK([1, 2], 5), [1, 0]);
  assert.equal(argmax([3, 7, 7]), 1);
});

test("classProbabilities: softmax(100·cos), top k first", () => {
  const p = classProbabilities([0.25, 0.3, 0.2], 2);
  // e^{30}/(e^{25}+e^{30}+e^{20}) = 1/(1+e^-5+e^-10) = 0.99326236 (python3 math.exp)
  assert.equal(p[0]!.index, 1);
  close(p[0]!.prob, 0.99326236, 1e-7);
  assert.equal(p[1]!.index, 0);
  close(p[1]!.prob, 0.00669254, 1e-7);
});

test("mcmScore: max softmax(cos/T); T=1 by default", () => {
  // cos (0.3, 0.2): e^.3/(e^.3+e^.2) = 1/(1+e^-0.1) = 0.52497919
  const s = mcmScore([0.3, 0.2]);
  assert.equal(s.index, 0);
  close(s.score, 0.52497919, 1e-8);
  // T = 0.01 is CLIP's logit scale: 1/(1+e^-10) = 0.9999546
  close(mcmScore([0.3, 0.2], 0.01).score, 0.9999546, 1e-7);
  // K equal cosines give the floor 1/K.
  close(mcmScore([0.1, 0.1, 0.1, 0.1]).score, 0.25);
  assert.throws(() => mcmScore([0.1], 0), /temperature/);
  assert.throws(() => mcmScore([]), /at least one class/);
});

test("float16: exact bit patterns for known values, round trip within half precision", () => {
  // 1 = 0x3C00, -2 = 0xC000, 65504 = 0x7BFF (max), 2^-24 = 0x0001 (min subnormal), 1/3 ≈ 0x3555
  const values = Float32Array.from([1, -2, 65504, 2 ** -24, 1 / 3, 0, Infinity, 1e6]);
  assert.deepEqual(Array.from(toFloat16Bits(values)), [0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0, 0x7c00, 0x7c00]);
  const back = fromFloat16Bits(toFloat16Bits(Float32Array.from([0.1, -3.75, 1e-5])));
  close(back[0]!, 0.0999755859375, 0);
  close(back[1]!, -3.75, 0);
  close(back[2]!, 1e-5, 1e-7);
  assert.ok(Number.isNaN(fromFloat16Bits(Uint16Array.from([0x7e00]))[0]), "Number.isNaN(fromFloat16Bits(Uint16Array.from([0x7e00]))[0])");
});

// Reference values below: python3 with math.exp/math.log over the same cosines (0.3, 0.2, 0.25).
const cos = [0.3, 0.2, 0.25];

test("maxLogitScore: the largest cosine", () => {
  assert.equal(maxLogitScore(cos), 0.3);
  assert.throws(() => maxLogitScore([]), /at least one class/);
});

test("energyScore: T·logsumexp(s/T), stable at small T", () => {
  close(energyScore(cos), 1.3494454484529983, 1e-12);
  close(energyScore(cos, 0.01), 0.30006760443547126, 1e-12);
  assert.throws(() => energyScore(cos, -1), /temperature/);
});

test("negativeEntropyScore: Σ p log p of softmax(s/T)", () => {
  close(negativeEntropyScore(cos), -1.0977794758548305, 1e-12);
  close(negativeEntropyScore(cos, 0.01), -0.04067412954243138, 1e-12);
  // A uniform prediction has the lowest score, −log K.
  close(negativeEntropyScore([0.1, 0.1, 0.1, 0.1]), -Math.log(4), 1e-12);
});

test("unknownMassScore: mass on the real classes under softmax(100·cos) with the unknown prompts", () => {
  const a = unknownMassScore(cos, [0.28]);
  close(a.score, 0.8815050559003604, 1e-12);
  assert.deepEqual([a.index, a.extraWins], [0, false]);
  const b = unknownMassScore(cos, [0.35]);
  close(b.score, 0.0067379449518197845, 1e-12);
  assert.equal(b.extraWins, true);
});

test("outlierPenaltyScore: max p_ID − 0.25·max p_OUT over softmax([ID; OUT]/T)", () => {
  const r = outlierPenaltyScore(cos, [0.28, 0.1]);
  close(r.score, 0.16218065236994006, 1e-12);
  assert.deepEqual([r.index, r.extraWins], [0, false]);
  assert.throws(() => outlierPenaltyScore(cos, []), /at least one outlier/);
});
