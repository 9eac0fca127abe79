import { test } from "node:test";
import assert from "node:assert/strict";
import { ClipOodError } from "../src/errors.js";
import { matrix, meanOfNormalized, normalizeRows, type Matrix } from "../src/maths/vectors.js";
import { mulberry32 } from "../src/maths/random.js";
import {
  conjugatedLabels,
  CSP_ADJ_WRAPPERS,
  CSP_EXCLUDED_LEX_FILES,
  CSP_NOUN_TEMPLATES,
  CSP_SUPERCLASSES,
  meanOfRaw,
  mineNegativeLabels,
  NEGLABEL_ADJ_TEMPLATE,
  NEGLABEL_ID_TEMPLATE,
  NEGLABEL_NOUN_TEMPLATE,
  negLabelGroups,
  negLabelScore,
  quantileLinear,
  seededPermutation,
} from "../src/ood/zero-shot/neglabel.js";

const close = (actual: number, expected: number, tol = 1e-12): void =>
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} is not within ${tol} of ${expected}`);

/** Unit vectors in the plane at the given angles (degrees), one per row. */
function atAngles(degrees: readonly number[]): Matrix {
  const data = new Float32Array(degrees.length * 2);
  degrees.forEach((d, i) => {
    data[2 * i] = Math.cos((d * Math.PI) / 180);
    data[2 * i + 1] = Math.sin((d * Math.PI) / 180);
  });
  return matrix(degrees.length, 2, data);
}

test("prompt constants are the reference's", () => {
  assert.equal(NEGLABEL_NOUN_TEMPLATE, "the nice {}");
  assert.equal(NEGLABEL_ID_TEMPLATE, "the nice {}");
  assert.equal(NEGLABEL_ADJ_TEMPLATE, "This is a {} photo");
  assert.equal(CSP_SUPERCLASSES.length, 14);
  assert.equal(CSP_NOUN_TEMPLATES.length, 8);
  assert.equal(CSP_ADJ_WRAPPERS.length, 4);
  assert.deepEqual([...CSP_EXCLUDED_LEX_FILES].sort(), ["adj.pert", "noun.group", "noun.person", "noun.quantity"]);
});

test("quantileLinear matches numpy.quantile(method='linear')", () => {
  // numpy 2.4.6: np.quantile([3,1,4,1,5,9,2,6], q) for q = 0, .25, .5, .95, 1.
  const sorted = [1, 1, 2, 3, 4, 5, 6, 9];
  close(quantileLinear(sorted, 0), 1.0);
  close(quantileLinear(sorted, 0.25), 1.75);
  close(quantileLinear(sorted, 0.5), 3.5);
  close(quantileLinear(sorted, 0.95), 7.949999999999998);
  close(quantileLinear(sorted, 1), 9.0);
  close(quantileLinear([42], 0.95), 42);

  // K = 1000, x_i = sin(1.7 i): numpy gives 0.9876338159159996, which is also
  // sorted[949] + 0.05·(sorted[950] − sorted[949]) (METHODS.md §4), computed there with numpy.
  const x = Float64Array.from({ length: 1000 }, (_, i) => Math.sin(i * 1.7)).sort();
  close(quantileLinear(x, 0.95), 0.9876338159159996);
  close(quantileLinear(x, 0.95), x[949]! + 0.05 * (x[950]! - x[949]!));

  assert.throws(() => quantileLinear([], 0.5), RangeError);
  assert.throws(() => quantileLinear([1, 2], 1.5), RangeError);
});

/*
 * Mining fixture in the plane: three ID classes at 0°, 10°, 20°. Candidates (nouns n, adjectives a)
 * interleaved at angles chosen so that distance from the ID cone orders them. Their 0.95-quantile
 * scores, computed with numpy (np.quantile of the three cosines):
 *   nouns  185°:−0.969 200°:−0.944 120°:−0.191 270°:−0.017 90°:0.325 60°:0.754 30°:0.980 15°:0.996
 *   adjs   170°:−0.873 250°:−0.358 100°:0.156 300°:0.484 45°:0.898 10°:0.999
 */
const ids = atAngles([0, 10, 20]);
const fixture: { deg: number; pos: "noun" | "adj" }[] = [
  { deg: 185, pos: "noun" }, // 0
  { deg: 170, pos: "adj" }, // 1
  { deg: 90, pos: "noun" }, // 2
  { deg: 30, pos: "noun" }, // 3  max cos 0.985
  { deg: 45, pos: "adj" }, // 4  max cos 0.906
  { deg: 200, pos: "noun" }, // 5
  { deg: 100, pos: "adj" }, // 6
  { deg: 120, pos: "noun" }, // 7
  { deg: 15, pos: "noun" }, // 8  max cos 0.996
  { deg: 10, pos: "adj" }, // 9  max cos 1
  { deg: 270, pos: "noun" }, // 10
  { deg: 250, pos: "adj" }, // 11
  { deg: 60, pos: "noun" }, // 12
  { deg: 300, pos: "adj" }, // 13
];
const candidates = fixture.map((c) => ({ word: `w${c.deg}`, pos: c.pos }));
const candidateFeatures = atAngles(fixture.map((c) => c.deg));
const NOUNS_RANKED = [0, 5, 7, 10, 2, 12, 3, 8];
const ADJS_RANKED = [1, 11, 6, 13, 4, 9];

test("mining keeps the farthest nouns, then the farthest adjectives, each in ascending order", () => {
  assert.deepEqual(mineNegativeLabels(ids, candidates, candidateFeatures, { fraction: 1 }), [...NOUNS_RANKED, ...ADJS_RANKED]);
  // floor(8·0.5) = 4 nouns, floor(6·0.5) = 3 adjectives.
  assert.deepEqual(mineNegativeLabels(ids, candidates, candidateFeatures, { fraction: 0.5 }), [0, 5, 7, 10, 1, 11, 6]);
  // Default 15%: floor(1.2) = 1 noun, floor(0.9) = 0 adjectives.
  assert.deepEqual(mineNegativeLabels(ids, candidates, candidateFeatures), [0]);
  assert.deepEqual(mineNegativeLabels(ids, candidates, candidateFeatures, { fraction: 0 }), []);
});

test("mining with quantile 0 ranks by the smallest cosine instead", () => {
  // The minimum cosine puts 200° first (180° from the 20° class, cos −1) ahead of 185° (175° away,
  // cos −0.996), the reverse of their 0.95-quantile order.
  const mined = mineNegativeLabels(ids, candidates, candidateFeatures, { fraction: 1, quantile: 0 });
  assert.deepEqual(mined.slice(0, 2), [5, 0]);
});

test("CSP's maxCosine never selects near-ID candidates and keeps the quota of the full type count", () => {
  // 30°, 15° (nouns) and 10° (adjective) have a cosine above 0.95 to some ID class.
  assert.deepEqual(mineNegativeLabels(ids, candidates, candidateFeatures, { fraction: 1, maxCosine: 0.95 }), [0, 5, 7, 10, 2, 12, 1, 11, 6, 13, 4]);
  // Quota floor(8·0.75) = 6 nouns (not floor(6 eligible·0.75) = 4) and floor(6·0.75) = 4 adjectives.
  assert.deepEqual(mineNegativeLabels(ids, candidates, candidateFeatures, { fraction: 0.75, maxCosine: 0.95 }), [0, 5, 7, 10, 2, 12, 1, 11, 6, 13]);
});

test("mining checks its inputs", () => {
  assert.throws(() => mineNegativeLabels(ids, candidates.slice(1), candidateFeatures), RangeError);
  assert.throws(() => mineNegativeLabels(matrix(0, 2), candidates, candidateFeatures), RangeError);
  assert.throws(() => mineNegativeLabels(ids, candidates, candidateFeatures, { fraction: 1.5 }), (e: unknown) => e instanceof ClipOodError && e.code === "USAGE");
});

test("mining handles more candidates than one chunk", () => {
  // 1,300 nouns spread over the circle: with fraction 0.1, the 130 kept must all lie far from the ID cone.
  const degs = Array.from({ length: 1300 }, (_, i) => (i * 360) / 1300);
  const mined = mineNegativeLabels(ids, degs.map(() => ({ pos: "noun" as const })), atAngles(degs), { fraction: 0.1 });
  assert.equal(mined.length, 130);
  for (const i of mined) assert.ok(degs[i]! > 140 && degs[i]! < 240, `${degs[i]}° is not among the farthest`);
});

test("negLabelScore matches hand computation, with and without groups", () => {
  // Python math: S = Σ_ID e^{100c} / (Σ_ID e^{100c} + Σ_neg e^{100c̃}).
  close(negLabelScore([0.3, 0.2], [0.25, 0.1], undefined), 0.9933074488498459);
  close(negLabelScore([0.3, 0.2], [0.25, 0.1], [[0], [1]]), 0.9966537244111753);
  close(negLabelScore([0.5, -0.5], [0.0, 1.0, -1.0], undefined, 1), 0.3556386974432419);
  close(negLabelScore([0.5, -0.5], [0.0, 1.0, -1.0], [[0, 2], [1]], 1), 0.5379549719678375);
  // A group with no negatives leaves all mass on the ID labels.
  close(negLabelScore([0.5], [0.9], [[]]), 1);
});

test("negLabelScore stays finite for logits far beyond exp's range", () => {
  close(negLabelScore([50], [50], undefined), 0.5); // e^5000 on both sides
  close(negLabelScore([60, 60], [50], undefined), 1);
  const low = negLabelScore([50], [60, 60], [[0], [1]]);
  assert.ok(Number.isFinite(low) && low >= 0 && low < 1e-300, `expected ≈0, got ${low}`);
  assert.throws(() => negLabelScore([], [0.1], undefined), RangeError);
  assert.throws(() => negLabelScore([0.1], [0.1], []), RangeError);
  assert.throws(() => negLabelScore([0.1], [0.1], [[3]]), RangeError);
});

test("negLabelScore ranks an ID-like image above an OOD-like one", () => {
  // 3 ID labels and 40 negatives spread over the plane, grouped as NegLabel does.
  const idT = atAngles([0, 10, 20]);
  const negDegs = Array.from({ length: 40 }, (_, i) => 60 + i * 6);
  const negT = atAngles(negDegs);
  const groups = negLabelGroups(40, 4);
  const cos = (m: Matrix, deg: number): number[] =>
    Array.from({ length: m.rows }, (_, i) => m.data[2 * i]! * Math.cos((deg * Math.PI) / 180) + m.data[2 * i + 1]! * Math.sin((deg * Math.PI) / 180));
  const score = (deg: number): number => negLabelScore(cos(idT, deg), cos(negT, deg), groups);
  assert.ok(score(8) > 0.99);
  assert.ok(score(8) > score(45));
  assert.ok(score(45) > score(180));
  assert.ok(score(180) < 0.01);
});

test("mulberry32 and the permutation are the documented generator", () => {
  // Reference: an independent Python port of mulberry32 (32-bit masks in place of Math.imul).
  const r = mulberry32(0);
  for (const want of [0.26642920868471265, 0.0003297457005828619, 0.2232720274478197, 0.1462021479383111]) assert.equal(r(), want);
  const r42 = mulberry32(42);
  assert.equal(r42(), 0.6011037519201636);
  assert.equal(r42(), 0.44829055899754167);
  // The same port's Fisher–Yates (j = floor(r·(i+1)) for i = n−1 … 1).
  assert.deepEqual(seededPermutation(10, 0), [3, 8, 6, 4, 5, 9, 7, 1, 0, 2]);
});

test("negLabelGroups drops the tail, uses every kept index once, and is deterministic", () => {
  const groups = negLabelGroups(10499);
  assert.equal(groups.length, 100);
  for (const g of groups) assert.equal(g.length, 104);
  const all = groups.flat().sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: 10400 }, (_, i) => i)); // 99 last dropped
  assert.deepEqual(negLabelGroups(10499), groups);
  assert.notDeepEqual(negLabelGroups(10499, 100, 1), groups);
  // Groups are consecutive slices of one permutation.
  assert.deepEqual(negLabelGroups(10, 5, 0), [[3, 8], [6, 4], [5, 9], [7, 1], [0, 2]]);

  const small = negLabelGroups(250, 100);
  assert.equal(small.length, 100);
  assert.ok(small.every((g) => g.length === 2));
  assert.ok(small.flat().every((i) => i < 200));
});

test("negLabelGroups with fewer negatives than groups gives one group per negative", () => {
  const groups = negLabelGroups(7, 100);
  assert.equal(groups.length, 7);
  assert.deepEqual(groups.flat().sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(negLabelGroups(5, 1), [seededPermutation(5, 0)]);
  assert.throws(() => negLabelGroups(0), (e: unknown) => e instanceof ClipOodError && e.code === "INPUT" && /at least one negative/.test(e.message));
  assert.throws(() => negLabelGroups(10, 0), (e: unknown) => e instanceof ClipOodError && e.code === "USAGE");
});

test("conjugatedLabels pairs each adjective with a seeded superclass", () => {
  const adjs = ["rutted", "bacchanalian", "green", "cold", "dead"];
  const labels = conjugatedLabels(adjs);
  // floor(14·r) over the Python port's mulberry32(0) outputs.
  assert.deepEqual(labels, ["rutted scene", "bacchanalian environment", "green scene", "cold object", "dead area"]);
  assert.deepEqual(conjugatedLabels(adjs, 0), labels);
  const many = conjugatedLabels(Array.from({ length: 500 }, (_, i) => `a${i}`), 7);
  const used = new Set(many.map((l) => l.split(" ")[1]!));
  for (const s of used) assert.ok(CSP_SUPERCLASSES.includes(s), s);
  assert.equal(used.size, 14);
  assert.notDeepEqual(conjugatedLabels(adjs, 1), labels);
});

test("meanOfRaw averages unnormalised rows, unlike meanOfNormalized", () => {
  const m = matrix(2, 2, Float32Array.from([3, 0, 0, 1]));
  // mean (1.5, 0.5) / √2.5 = (0.9487, 0.3162); the normalised-first mean is (0.7071, 0.7071).
  const raw = meanOfRaw(m);
  close(raw[0]!, 1.5 / Math.sqrt(2.5), 1e-6);
  close(raw[1]!, 0.5 / Math.sqrt(2.5), 1e-6);
  close(meanOfNormalized(m)[0]!, Math.SQRT1_2, 1e-6);
  // On unit rows, which is what ClipModel returns, the two agree.
  const unit = normalizeRows(m);
  assert.deepEqual(Array.from(meanOfRaw(unit)), Array.from(meanOfNormalized(unit)));
  assert.throws(() => meanOfRaw(matrix(0, 2)), RangeError);
});
