/**
 * Tip-Adapter and Tip-Adapter-F (src/ood/heads/tip-adapter.ts): the blended logits against the formula on a
 * hand-made case, the hand-written key gradient against finite differences, seeded determinism, the
 * detector round trip through files, and bad input. Shared head scoring is in src/ood/heads/heads.ts.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { mulberry32 } from "../src/maths/random.js";
import { matrix, normalizeRows, row } from "../src/maths/vectors.js";
import { removeClasses } from "../src/ood/build.js";
import { predict, scoreBatch } from "../src/ood/detector.js";
import type { Detector } from "../src/ood/detector.js";
import { loadDetector, saveDetector } from "../src/ood/detector-file.js";
import { tipBatchKernel } from "../src/maths/kernels/tip-adapter-kernel.js";
import { fitTipAdapter, fitTipAdapterF, tipAdapterFLoss, tipAdapterLogits, tipAdapterPredict, tipAdapterScores } from "../src/ood/heads/tip-adapter.js";
import type { TipAdapterState } from "../src/ood/heads/tip-adapter.js";
import { rejectsWithCode, withTempDir } from "./support/assertions.js";
import { gradientError, headWorld } from "./support/heads.js";

test("tip-adapter: logits = 100·f·W_cᵀ + α·exp(−β(1 − f·Fᵀ))·L on a hand-made case; msp, maxlogit, energy read them", () => {
  // Two classes in 2-D: texts e1, e2; keys (1,0) of class 0 and (0.6,0.8), (0,1) of class 1; α = 2, β = 3;
  // the query f = (1,1)/√2. By hand: f·e1 = f·e2 = 0.707107, so the zero-shot logits are 70.7107 each.
  // Affinities: f·(1,0) = f·(0,1) = 0.707107 → exp(−3·0.292893) = 0.415331; f·(0.6,0.8) = 1.4/√2 = 0.989949
  // → exp(−3·0.010051) = 0.970299. z0 = 70.7107 + 2·0.415331 = 71.54134, z1 = 70.7107 + 2·(0.970299 +
  // 0.415331) = 73.48194. energy = z1 + log(1 + e^{z0−z1}) = 73.48194 + log(1 + e^{−1.94060}) = 73.61613;
  // msp = e^{z1 − energy} = 0.874418. (The same numbers from Python's math module to 1e-12:
  // 71.54133997732244, 73.48193698479221, 73.61613406596611, 0.8744177163505813.)
  const state = fitTipAdapter(matrix(3, 2, Float32Array.from([1, 0, 0.6, 0.8, 0, 1])), Int32Array.from([0, 1, 1]), matrix(2, 2, Float32Array.from([1, 0, 0, 1])), {
    alpha: 2,
    beta: 3,
  });
  const f = Float32Array.from([1, 1]); // normalised by the head
  const z = tipAdapterLogits(state, f);
  assert.ok(Math.abs(z[0]! - 71.54133997732244) < 1e-5, String(z[0]));
  assert.ok(Math.abs(z[1]! - 73.48193698479221) < 1e-5, String(z[1]));
  const msp = tipAdapterPredict(state, f);
  assert.equal(msp.index, 1);
  assert.ok(Math.abs(msp.score - 0.8744177163505813) < 1e-6, String(msp.score));
  assert.ok(Math.abs(tipAdapterPredict({ ...state, score: "maxlogit" }, f).score - 73.48193698479221) < 1e-5);
  assert.ok(Math.abs(tipAdapterPredict({ ...state, score: "energy" }, f).score - 73.61613406596611) < 1e-5);
  // α = 0 is zero-shot CLIP: logits 100·cos.
  assert.deepEqual(Array.from(tipAdapterLogits({ ...state, alpha: 0 }, Float32Array.from([0.6, 0.8]))).map((v) => Math.round(v * 1e4) / 1e4), [60, 80]);
});

test("tip-adapter: the defaults are the official init (α 1.17, β 1); one shot per class works; ID scores above OOD", () => {
  const w = headWorld(1, 3, 1, 12);
  const state = fitTipAdapter(w.x, w.labels, w.text, { score: "energy" });
  assert.equal(state.alpha, 1.17);
  assert.equal(state.beta, 1);
  assert.equal(state.training, null);
  assert.deepEqual(state.keyLabels, [0, 1, 2]);
  for (let i = 0; i < w.x.rows; i++) assert.equal(tipAdapterPredict(state, row(w.x, i)).index, w.labels[i]);
  const id = tipAdapterScores(state, w.x);
  const ood = tipAdapterScores(state, w.ood);
  assert.ok(Math.min(...id) > Math.max(...ood), `ID ${Array.from(id)} vs OOD ${Array.from(ood)}`);
});

test("tip-adapter-f: the hand-written key gradient matches central finite differences", () => {
  // Nearly equal class texts, so the zero-shot logits differ by < 1 and the softmax is not saturated.
  const next = mulberry32(3);
  const d = 4;
  const text = normalizeRows(matrix(2, d, Float32Array.from([1, 0.01, 0, 0, 1, 0, 0.01, 0])));
  const keys = Float64Array.from({ length: 5 * d }, () => next() - 0.5);
  const x = Float64Array.from(normalizeRows(matrix(6, d, Float32Array.from({ length: 6 * d }, () => next() - 0.5))).data);
  const y = Int32Array.from([0, 1, 1, 0, 1, 0]);
  const cache = { dim: d, classes: 2, text: text.data, keys, keyLabels: [0, 1, 0, 1, 1], alpha: 2, beta: 3 };
  const rows = [5, 0, 2, 3];
  const grad = new Float64Array(keys.length);
  const loss = tipAdapterFLoss(cache, x, y, rows, grad);
  assert.ok(loss > 0.1, `not saturated: ${loss}`);
  const scratch = new Float64Array(keys.length);
  const { maxError, maxGrad } = gradientError((k) => tipAdapterFLoss({ ...cache, keys: k }, x, y, rows, scratch), keys, grad);
  assert.ok(maxGrad > 1e-2, `a non-trivial gradient: ${maxGrad}`);
  assert.ok(maxError < 1e-7, `max |analytic − numeric| = ${maxError}`);
});

test("tip-adapter-f: the onnxruntime batch kernel matches the scalar loss and key gradient", async () => {
  // Odd shapes (no SIMD width), more keys than classes, a batch that is not the whole set, α and β away from 1.
  const next = mulberry32(9);
  for (const [d, classes, keysN, rowsN] of [
    [5, 3, 7, 6],
    [33, 4, 19, 11],
  ] as const) {
    const text = normalizeRows(matrix(classes, d, Float32Array.from({ length: classes * d }, () => next() - 0.5)));
    const keyData = normalizeRows(matrix(keysN, d, Float32Array.from({ length: keysN * d }, () => next() - 0.5))).data;
    const keyLabels = Array.from({ length: keysN }, (_, n) => n % classes);
    const x = Float64Array.from(normalizeRows(matrix(rowsN, d, Float32Array.from({ length: rowsN * d }, () => next() - 0.5))).data);
    const y = Int32Array.from({ length: rowsN }, (_, i) => (i * 7) % classes);
    const rows = Array.from({ length: rowsN - 2 }, (_, r) => (r * 5 + 1) % rowsN);
    const cache = { dim: d, classes, text: text.data, keys: Float64Array.from(keyData), keyLabels, alpha: 1.7, beta: 4 };
    const want = new Float64Array(keyData.length);
    const loss = tipAdapterFLoss(cache, x, y, rows, want);
    const got = new Float32Array(keyData.length);
    const kernelLoss = await tipBatchKernel({ ...cache, x, y }).run(keyData, rows, got);
    assert.ok(Math.abs(kernelLoss - loss) <= 1e-5 * Math.max(1, loss), `${d}×${classes}: loss ${kernelLoss} vs ${loss}`);
    const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(scale > 1e-3, `a non-trivial gradient ${scale}`);
    want.forEach((v, t) => assert.ok(Math.abs(got[t]! - v) <= 1e-5 * scale, `${d}×${classes}: ∂F[${t}] ${got[t]} vs ${v}`));
  }
});

test("tip-adapter-f: training is deterministic under a seed, lowers the loss, and another seed orders batches differently", async () => {
  // Texts far from their classes' shots (a poor zero-shot prior), so there is something to learn.
  const w = headWorld(4, 3, 4, 8, 0.3);
  const text = normalizeRows(matrix(3, 8, Float32Array.from([1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0])));
  const opts = { batchSize: 5, epochs: 10, alpha: 3, beta: 5, seed: 11 };
  const a = await fitTipAdapterF(w.x, w.labels, text, opts);
  const b = await fitTipAdapterF(w.x, w.labels, text, opts);
  assert.deepEqual(a, b);
  assert.equal(a.kind, "tip-adapter-f");
  assert.deepEqual({ ...a.training, losses: [] }, { epochs: 10, lr: 1e-3, eps: 1e-4, batchSize: 5, weightDecay: 0.01, seed: 11, losses: [] });
  const losses = a.training!.losses;
  assert.equal(losses.length, 10);
  assert.ok(losses.at(-1)! < losses[0]!, `loss ${losses[0]} → ${losses.at(-1)}`);
  const untrained = fitTipAdapter(w.x, w.labels, text, opts);
  assert.notDeepEqual(a.keys, untrained.keys, "the keys moved");
  const other = await fitTipAdapterF(w.x, w.labels, text, { ...opts, seed: 12 });
  assert.notDeepEqual(other.keys, a.keys);
});

function detectorOf(fitted: TipAdapterState, d: number): Detector {
  const labels = Array.from({ length: fitted.classes }, (_, k) => `c${k}`);
  return {
    method: fitted.kind,
    params: { headScore: fitted.score },
    model: { id: "test/model", dtype: "fp32", dim: d, exifRotate: true },
    templates: ["a photo of a {}"],
    classes: labels.map((label) => ({ label, names: [label], descriptions: [] })),
    classFeatures: { labels, prompts: labels.map((l) => [l]), matrix: matrix(fitted.classes, d, fitted.text.slice()) },
    fitted,
    fitRows: fitted.keyLabels.length,
  };
}

test("tip-adapter, tip-adapter-f: detectors round-trip through files and score identically; their class lists cannot be edited", async () => {
  const w = headWorld(5, 3, 2, 8);
  await withTempDir(async (dir) => {
    for (const fitted of [fitTipAdapter(w.x, w.labels, w.text, { score: "maxlogit" }), await fitTipAdapterF(w.x, w.labels, w.text, { epochs: 3 })]) {
      const detector = detectorOf(fitted, 8);
      const file = path.join(dir, `${fitted.kind}.json`);
      await saveDetector(detector, file);
      const back = await loadDetector(file);
      assert.deepEqual(back, detector);
      assert.deepEqual(await scoreBatch(back, w.ood), await scoreBatch(detector, w.ood));
      assert.deepEqual(await scoreBatch(back, w.x), await scoreBatch(detector, w.x));
      assert.equal(predict(back, row(w.x, 2)).label, "c1", "the label is the head's class");
      assert.throws(() => removeClasses(detector, ["c2"]), rejectsWithCode("USAGE", fitted.kind, "trained on exactly these classes"));
    }
  });
});

test("tip-adapter: bad input gives ClipOodErrors with hints", async () => {
  const w = headWorld(8, 2, 2, 4);
  assert.throws(() => fitTipAdapter(w.x, new Int32Array(w.x.rows), w.text), rejectsWithCode("INPUT", "one class"));
  assert.throws(() => fitTipAdapter(w.x, new Int32Array(w.x.rows), matrix(1, 4, Float32Array.from([1, 0, 0, 0]))), rejectsWithCode("INPUT", "one class"));
  const nan = matrix(w.x.rows, w.x.cols, w.x.data.slice());
  nan.data[3] = NaN;
  assert.throws(() => fitTipAdapter(nan, w.labels, w.text), rejectsWithCode("INPUT", "non-finite"));
  await assert.rejects(fitTipAdapterF(nan, w.labels, w.text), rejectsWithCode("INPUT", "non-finite"));
  assert.throws(() => fitTipAdapter(w.x, w.labels, matrix(2, 5)), rejectsWithCode("INPUT", "4 dimensions, the class text embeddings 5"));
  assert.throws(() => fitTipAdapter(w.x, w.labels.slice(1), w.text), rejectsWithCode("INPUT", "labels for"));
  assert.throws(() => fitTipAdapter(matrix(0, 4), new Int32Array(0), w.text), rejectsWithCode("INPUT", "no in-distribution embeddings"));
  const three = normalizeRows(matrix(3, 4, Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0])));
  assert.throws(() => fitTipAdapter(w.x, w.labels, three), rejectsWithCode("INPUT", "class 2 has no embeddings"));
  assert.throws(() => fitTipAdapter(w.x, w.labels, w.text, { alpha: -1 }), rejectsWithCode("USAGE", "α must be"));
  assert.throws(() => fitTipAdapter(w.x, w.labels, w.text, { beta: NaN }), rejectsWithCode("USAGE", "β must be"));
  await assert.rejects(fitTipAdapterF(w.x, w.labels, w.text, { epochs: 0 }), rejectsWithCode("USAGE", "epochs must be a positive integer"));
  const state = fitTipAdapter(w.x, w.labels, w.text);
  assert.throws(() => tipAdapterPredict(state, new Float32Array(5)), rejectsWithCode("INPUT", "expected an embedding of 4 dimensions, got 5"));
  assert.throws(() => tipAdapterPredict(state, Float32Array.from([NaN, 0, 0, 0])), rejectsWithCode("INPUT", "non-finite"));
  assert.throws(() => tipAdapterScores(state, matrix(1, 3)), rejectsWithCode("INPUT", "expected embeddings of 4 dimensions, got 3"));
});
