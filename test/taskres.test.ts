/**
 * TaskRes (src/ood/heads/taskres.ts): starts at zero-shot CLIP, the hand-written residual gradient against
 * finite differences, seeded determinism, learning from the shots, the detector round trip through
 * files, and bad input. Also the optimiser pieces it shares with Tip-Adapter-F (src/maths/optimise/optim.ts).
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { adamState, adamStep, cosineRate, epochBatches } from "../src/maths/optimise/optim.js";
import { mulberry32 } from "../src/maths/random.js";
import { matrix, normalizeRows, row } from "../src/maths/vectors.js";
import { predict, scoreBatch } from "../src/ood/detector.js";
import type { Detector } from "../src/ood/detector.js";
import { loadDetector, saveDetector } from "../src/ood/detector-file.js";
import { taskResBatchKernel } from "../src/maths/kernels/taskres-kernel.js";
import { fitTaskRes, taskResDefaultEpochs, taskResLoss, taskResPredict, taskResScores } from "../src/ood/heads/taskres.js";
import { rejectsWithCode, withTempDir } from "./support/assertions.js";
import { gradientError, headWorld } from "./support/heads.js";

test("optim: Adam's first step moves each parameter by lr·g/(|g| + ε); AdamW decays first; cosine and batches as documented", () => {
  // Step 1: m̂ = g and v̂ = g², so θ ← θ − lr·g/(|g| + ε) (Kingma & Ba 2015, Algorithm 1), decoupled decay θ·(1 − lr·wd) first.
  const theta = Float64Array.from([1, -2, 0]);
  adamStep(theta, Float64Array.from([0.5, -3, 0]), adamState(3), 0.1, { eps: 1e-4, weightDecay: 0.01 });
  const expect = [1 * (1 - 0.001) - (0.1 * 0.5) / (0.5 + 1e-4), -2 * (1 - 0.001) + (0.1 * 3) / (3 + 1e-4), 0];
  theta.forEach((t, i) => assert.ok(Math.abs(t - expect[i]!) < 1e-12, `${t} vs ${expect[i]}`));
  // Second step with the same gradient: m = g(1 − β1²)... bias-corrected m̂ = g and v̂ = g² again, so the same move.
  const s = adamState(1);
  const p = Float64Array.from([0]);
  adamStep(p, Float64Array.from([2]), s, 0.01);
  adamStep(p, Float64Array.from([2]), s, 0.01);
  assert.ok(Math.abs(p[0]! + 0.02) < 1e-9, String(p[0]));
  assert.equal(cosineRate(1, 0, 10), 1);
  assert.ok(Math.abs(cosineRate(1, 5, 10) - 0.5) < 1e-15);
  const batches = [...epochBatches(5, 2, 2, 1)];
  assert.deepEqual(batches.map((b) => [b.epoch, b.step, b.rows.length]), [[0, 0, 2], [0, 1, 2], [0, 2, 1], [1, 3, 2], [1, 4, 2], [1, 5, 1]]);
  for (const e of [0, 1]) assert.deepEqual([...batches.filter((b) => b.epoch === e).flatMap((b) => Array.from(b.rows))].sort(), [0, 1, 2, 3, 4]);
  assert.deepEqual([...epochBatches(5, 2, 2, 1)], batches, "seeded");
});

test("taskres: the hand-written residual gradient (through t'/‖t'‖ and the L2 penalty) matches central finite differences", () => {
  const next = mulberry32(5);
  const d = 4;
  // Nearly equal class texts and a small random residual: logits within a few units, softmax not saturated.
  const text = Float64Array.from(normalizeRows(matrix(3, d, Float32Array.from([1, 0.01, 0, 0, 1, 0, 0.01, 0, 1, 0, 0, 0.01]))).data);
  const prior = { dim: d, classes: 3, text, alpha: 0.5, l2: 0.1 };
  const residual = Float64Array.from({ length: 3 * d }, () => 0.1 * (next() - 0.5));
  const x = Float64Array.from(normalizeRows(matrix(7, d, Float32Array.from({ length: 7 * d }, () => next() - 0.5))).data);
  const y = Int32Array.from([0, 1, 2, 0, 1, 2, 0]);
  const rows = [6, 1, 2, 4, 0];
  const grad = new Float64Array(residual.length);
  const loss = taskResLoss(prior, residual, x, y, rows, grad);
  assert.ok(loss > 0.1, `not saturated: ${loss}`);
  const scratch = new Float64Array(residual.length);
  const { maxError, maxGrad } = gradientError((r) => taskResLoss(prior, r, x, y, rows, scratch), residual, grad);
  assert.ok(maxGrad > 1e-2, `a non-trivial gradient: ${maxGrad}`);
  assert.ok(maxError < 1e-6, `max |analytic − numeric| = ${maxError}`);
});

test("taskres: the onnxruntime batch step matches the scalar loss and residual gradient", async () => {
  const next = mulberry32(12);
  for (const [d, classes, n] of [
    [4, 3, 7],
    [37, 5, 23],
  ] as const) {
    const text = Float64Array.from(normalizeRows(matrix(classes, d, Float32Array.from({ length: classes * d }, () => next() - 0.5))).data);
    const prior = { dim: d, classes, text, alpha: 0.5, l2: 0.01 };
    // The kernel trains a float32 residual: the reference reads the same rounded values.
    const residual32 = Float32Array.from({ length: classes * d }, () => 0.2 * (next() - 0.5));
    const residual = Float64Array.from(residual32);
    const x = Float64Array.from(normalizeRows(matrix(n, d, Float32Array.from({ length: n * d }, () => next() - 0.5))).data);
    const y = Int32Array.from({ length: n }, (_, i) => (i * 3) % classes);
    const rows = Array.from({ length: n - 2 }, (_, r) => (r * 5 + 2) % n);
    const want = new Float64Array(residual.length);
    const loss = taskResLoss(prior, residual, x, y, rows, want);
    const got = new Float32Array(residual.length);
    const kernelLoss = await taskResBatchKernel({ ...prior, x, y }).run(residual32, rows, got);
    assert.ok(Math.abs(kernelLoss - loss) <= 1e-5 * Math.max(1, loss), `${d}×${classes}: loss ${kernelLoss} vs ${loss}`);
    const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(scale > 1e-3, `a non-trivial gradient ${scale}`);
    want.forEach((v, t) => assert.ok(Math.abs(got[t]! - v) <= 1e-5 * scale, `${d}×${classes}: ∂x[${t}] ${got[t]} vs ${v}`));
  }
});

test("taskres: deterministic under a seed; official defaults; learns from the shots where the text prior is wrong", async () => {
  const w = headWorld(2, 3, 4, 8, 0.15);
  // Class 1's text lies between axes 1 and 2 (cos 0.71 with class-2 shots), class 2's mostly on axis 3
  // (cos 0.55): zero-shot CLIP calls the class-2 shots class 1.
  const text = normalizeRows(matrix(3, 8, Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1.5, 0, 0, 0, 0])));
  const zeroShot = await fitTaskRes(w.x, w.labels, text, { epochs: 1, lr: 1e-12 });
  const wrong = [8, 9, 10, 11].filter((i) => taskResPredict(zeroShot, row(w.x, i)).index !== 2).length;
  assert.ok(wrong >= 3, `zero-shot gets class 2 wrong (${wrong} of 4)`);
  // In 8 dimensions a step of lr per coordinate is a small turn of a unit vector (in CLIP's 512 a large
  // one), so this strongly wrong prior needs more than the default 100 epochs.
  const opts = { batchSize: 5, seed: 3, epochs: 300 };
  const a = await fitTaskRes(w.x, w.labels, text, opts);
  const b = await fitTaskRes(w.x, w.labels, text, opts);
  assert.deepEqual(a, b);
  assert.equal(a.alpha, 0.5);
  assert.deepEqual({ ...a.training, losses: [] }, { epochs: 300, lr: 2e-3, batchSize: 5, seed: 3, l2: 5e-4, losses: [] });
  assert.equal((await fitTaskRes(w.x, w.labels, text, { epochs: 1 })).training.epochs, 1);
  assert.equal((await fitTaskRes(w.x, w.labels, text, { lr: 1e-12 })).training.epochs, 100, "the default for 4 shots per class");
  for (let i = 0; i < w.x.rows; i++) assert.equal(taskResPredict(a, row(w.x, i)).index, w.labels[i], `row ${i}`);
  assert.ok(a.training.losses.at(-1)! < a.training.losses[0]! / 10, `loss ${a.training.losses[0]} → ${a.training.losses.at(-1)}`);
  assert.notDeepEqual((await fitTaskRes(w.x, w.labels, text, { ...opts, seed: 4 })).residuals, a.residuals);
  assert.equal(taskResDefaultEpochs([1, 4, 2]), 100);
  assert.equal(taskResDefaultEpochs([8, 16]), 200);
});

test("taskres: one shot per class works; ID scores above OOD; a detector round-trips through files and scores identically", async () => {
  const w = headWorld(6, 3, 1, 10);
  const fitted = await fitTaskRes(w.x, w.labels, w.text, { score: "energy" });
  assert.equal(fitted.training.epochs, 100);
  const id = taskResScores(fitted, w.x);
  const ood = taskResScores(fitted, w.ood);
  assert.ok(Math.min(...id) > Math.max(...ood), `ID ${Array.from(id)} vs OOD ${Array.from(ood)}`);
  const labels = ["a", "b", "c"];
  const detector: Detector = {
    method: "taskres",
    params: { headScore: "energy" },
    model: { id: "test/model", dtype: "fp32", dim: 10, exifRotate: true },
    templates: ["a photo of a {}"],
    classes: labels.map((label) => ({ label, names: [label], descriptions: [] })),
    classFeatures: { labels, prompts: labels.map((l) => [l]), matrix: w.text },
    fitted,
    fitRows: w.x.rows,
  };
  await withTempDir(async (dir) => {
    const file = path.join(dir, "taskres.json");
    await saveDetector(detector, file);
    const back = await loadDetector(file);
    assert.deepEqual(back, detector);
    assert.deepEqual(await scoreBatch(back, w.ood), await scoreBatch(detector, w.ood));
    assert.deepEqual(await scoreBatch(back, w.x), await scoreBatch(detector, w.x));
    assert.equal(predict(back, row(w.x, 1)).label, "b");
  });
});

test("taskres: bad input gives ClipOodErrors with hints", async () => {
  const w = headWorld(9, 2, 2, 4);
  await assert.rejects(fitTaskRes(w.x, new Int32Array(w.x.rows), w.text), rejectsWithCode("INPUT", "one class"));
  const nan = matrix(w.x.rows, w.x.cols, w.x.data.slice());
  nan.data[0] = Infinity;
  await assert.rejects(fitTaskRes(nan, w.labels, w.text), rejectsWithCode("INPUT", "non-finite"));
  await assert.rejects(fitTaskRes(w.x, w.labels, matrix(2, 3)), rejectsWithCode("INPUT", "4 dimensions, the class text embeddings 3"));
  await assert.rejects(fitTaskRes(w.x, w.labels, w.text, { alpha: 0 }), rejectsWithCode("USAGE", "α must be a positive number"));
  await assert.rejects(fitTaskRes(w.x, w.labels, w.text, { epochs: 2.5 }), rejectsWithCode("USAGE", "epochs must be a positive integer"));
  await assert.rejects(fitTaskRes(w.x, w.labels, w.text, { l2: -1 }), rejectsWithCode("USAGE", "L2 penalty"));
  const state = await fitTaskRes(w.x, w.labels, w.text, { epochs: 2 });
  assert.throws(() => taskResPredict(state, new Float32Array(3)), rejectsWithCode("INPUT", "expected an embedding of 4 dimensions, got 3"));
  assert.throws(() => taskResScores(state, matrix(1, 5)), rejectsWithCode("INPUT", "expected embeddings of 4 dimensions, got 5"));
});
