/**
 * The linear-probe detector (src/ood/heads/linear-probe.ts): scores from its logits, determinism, the
 * detector round trip through files, and bad input. The optimiser itself is checked against
 * scikit-learn in test/logistic.test.ts.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { logSumExp } from "../src/maths/optimise/logistic.js";
import { mulberry32 } from "../src/maths/random.js";
import { matrix, normalizeRows, row } from "../src/maths/vectors.js";
import type { Matrix } from "../src/maths/vectors.js";
import { removeClasses } from "../src/ood/build.js";
import { predict, scoreBatch } from "../src/ood/detector.js";
import type { Detector } from "../src/ood/detector.js";
import { loadDetector, saveDetector } from "../src/ood/detector-file.js";
import { fitLinearProbe, linearProbePredict, linearProbeScore, linearProbeScores } from "../src/ood/heads/linear-probe.js";
import { rejectsWithCode, withTempDir } from "./support/assertions.js";

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

/** perClass points around each of the unit axes 0..classes−1 in d dims, plus their labels. */
function clusters(seed: number, classes: number, perClass: number, d: number, sd: number): { x: Matrix; labels: Int32Array } {
  const next = mulberry32(seed);
  const data: number[] = [];
  const labels: number[] = [];
  for (let k = 0; k < classes; k++) {
    for (let i = 0; i < perClass; i++) {
      for (let j = 0; j < d; j++) data.push((j === k ? 1 : 0) + sd * gaussian(next));
      labels.push(k);
    }
  }
  return { x: matrix(labels.length, d, Float32Array.from(data)), labels: Int32Array.from(labels) };
}

/** OOD points: around the axes no class uses. */
function outliers(seed: number, n: number, d: number, from: number, sd: number): Matrix {
  const next = mulberry32(seed);
  const data: number[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) data.push((j === from + (i % (d - from)) ? 1 : 0) + sd * gaussian(next));
  return matrix(n, d, Float32Array.from(data));
}

test("linear-probe: classifies by its logits; msp, maxlogit and energy are the logits' max softmax, max and logsumexp; ID above OOD", async () => {
  const { x, labels } = clusters(1, 3, 8, 12, 0.15);
  const ood = outliers(2, 9, 12, 3, 0.15);
  const msp = await fitLinearProbe(x, labels);
  assert.ok(msp.cv && msp.cv.folds === 5 && msp.cv.tried.includes(msp.c), JSON.stringify(msp.cv));
  for (let i = 0; i < x.rows; i++) assert.equal(linearProbePredict(msp, row(x, i)).index, labels[i]);
  const maxlogit = { ...msp, score: "maxlogit" as const };
  const energy = { ...msp, score: "energy" as const };
  for (let i = 0; i < 3; i++) {
    const e = row(x, i);
    // Logits from the weights directly, on the embedding normalised in float32 (the probe does it in float64).
    const v = row(normalizeRows(x), i);
    const z = Array.from({ length: 3 }, (_, k) => msp.intercepts[k]! + Array.from(v).reduce((s, vj, j) => s + vj * msp.weights[k * 12 + j]!, 0));
    const lse = logSumExp(z);
    assert.ok(Math.abs(linearProbeScore(maxlogit, e) - Math.max(...z)) < 1e-6);
    assert.ok(Math.abs(linearProbeScore(energy, e) - lse) < 1e-6);
    assert.ok(Math.abs(linearProbeScore(msp, e) - Math.exp(Math.max(...z) - lse)) < 1e-6);
  }
  for (const state of [msp, maxlogit, energy]) {
    const id = linearProbeScores(state, x);
    const out = linearProbeScores(state, ood);
    assert.ok(Math.min(...id) > Math.max(...out), `${state.score}: ID min ${Math.min(...id)} vs OOD max ${Math.max(...out)}`);
  }
});

test("linear-probe: the same data and seed give the same state; a fixed C skips cross-validation", async () => {
  const { x, labels } = clusters(3, 4, 6, 10, 0.4);
  const a = await fitLinearProbe(x, labels, { seed: 7 });
  const b = await fitLinearProbe(x, labels, { seed: 7 });
  assert.deepEqual(a, b);
  const fixed = await fitLinearProbe(x, labels, { c: 3 });
  assert.equal(fixed.c, 3);
  assert.equal(fixed.cv, null);
  // Folds are capped by the smallest class.
  assert.equal((await fitLinearProbe(x, labels, { folds: 10 })).cv!.folds, 6);
});

test("linear-probe: a detector round-trips through files and scores identically; its class list cannot be edited", async () => {
  const { x, labels } = clusters(5, 3, 5, 8, 0.3);
  const fitted = await fitLinearProbe(x, labels, { score: "energy" });
  const labelsText = ["a", "b", "c"];
  const detector: Detector = {
    method: "linear-probe",
    params: { headScore: "energy" },
    model: { id: "test/model", dtype: "fp32", dim: 8, exifRotate: true },
    templates: ["a photo of a {}"],
    classes: labelsText.map((label) => ({ label, names: [label], descriptions: [] })),
    classFeatures: { labels: labelsText, prompts: labelsText.map((l) => [l]), matrix: matrix(3, 8, new Float32Array(24).fill(0.25)) },
    fitted,
    fitRows: x.rows,
  };
  const query = outliers(6, 6, 8, 3, 0.3);
  await withTempDir(async (dir) => {
    const file = path.join(dir, "probe.json");
    await saveDetector(detector, file);
    const back = await loadDetector(file);
    assert.deepEqual(back, detector);
    assert.deepEqual(await scoreBatch(back, query), await scoreBatch(detector, query));
    assert.deepEqual(await scoreBatch(back, x), await scoreBatch(detector, x));
    assert.equal(predict(back, row(x, 0)).label, "a", "the label is the probe's class");
  });
  assert.throws(() => removeClasses(detector, ["c"]), rejectsWithCode("USAGE", "linear-probe", "trained on exactly these classes"));
});

test("linear-probe: bad input gives ClipOodErrors with hints", async () => {
  const { x, labels } = clusters(8, 2, 3, 4, 0.2);
  const one = matrix(1, 4, Float32Array.from([1, 0, 0, 0]));
  await assert.rejects(fitLinearProbe(one, Int32Array.from([0])), rejectsWithCode("INPUT", "not enough"));
  await assert.rejects(fitLinearProbe(x, new Int32Array(x.rows)), rejectsWithCode("INPUT", "one class"));
  const nan = matrix(x.rows, x.cols, x.data.slice());
  nan.data[5] = NaN;
  await assert.rejects(fitLinearProbe(nan, labels), rejectsWithCode("INPUT", "non-finite"));
  await assert.rejects(fitLinearProbe(matrix(0, 4), new Int32Array(0)), rejectsWithCode("INPUT", "no in-distribution embeddings"));
  await assert.rejects(fitLinearProbe(x, labels.slice(1)), rejectsWithCode("INPUT", "labels for"));
  await assert.rejects(fitLinearProbe(x, labels, { c: -1 }), rejectsWithCode("USAGE", "C must be a positive number"));
  // One class has a single shot: CV cannot hold it out, unless C is fixed.
  const single = Int32Array.from([0, 0, 0, 0, 0, 1]);
  await assert.rejects(fitLinearProbe(x, single), rejectsWithCode("INPUT", "too few to cross-validate", "class 1"));
  assert.equal((await fitLinearProbe(x, single, { c: 10 })).c, 10);
  const state = await fitLinearProbe(x, labels);
  assert.throws(() => linearProbeScore(state, new Float32Array(5)), rejectsWithCode("INPUT", "expected an embedding of 4 dimensions, got 5"));
  assert.throws(() => linearProbeScore(state, Float32Array.from([NaN, 0, 0, 0])), rejectsWithCode("INPUT", "non-finite"));
  assert.throws(() => linearProbeScores(state, matrix(1, 3)), rejectsWithCode("INPUT", "expected embeddings of 4 dimensions, got 3"));
});
