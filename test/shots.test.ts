/**
 * eval --shots' pure parts: the stratified, seeded, nested draws and the mean ± sample standard
 * deviation over seeds, on hand-made inputs with hand-computed values.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { aggregateSeeds, byMethodThenShots, drawShots, meanStd, onceRows } from "../src/eval/shots.js";
import type { EvalResult, MethodResult } from "../src/eval/types.js";
import type { OodMetrics } from "../src/maths/metrics.js";
import { rejectsWithCode } from "./support/assertions.js";

const assertClose = (actual: number, expected: number, tol: number) => assert.ok(Math.abs(actual - expected) <= tol, `${actual} is not within ${tol} of ${expected}`);

test("meanStd: mean and sample standard deviation (n − 1)", () => {
  // 1,2,3,4: mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; 5 / 3 → √(5/3) = 1.2909944.
  const a = meanStd([1, 2, 3, 4]);
  assert.equal(a.mean, 2.5);
  assertClose(a.std, Math.sqrt(5 / 3), 1e-12);
  // 0.7, 0.8, 0.9: deviations ±0.1 and 0 → (0.01 + 0.01) / 2 = 0.01 → 0.1.
  const b = meanStd(Float64Array.of(0.7, 0.8, 0.9));
  assertClose(b.mean, 0.8, 1e-12);
  assertClose(b.std, 0.1, 1e-12);
  assert.deepEqual(meanStd([0.42]), { mean: 0.42, std: 0 });
  assert.throws(() => meanStd([]), rejectsWithCode("INPUT"));
});

test("drawShots: k per class, seeded, nested across k, short classes refused by name", () => {
  // Class a: rows 0, 2, 4, 6; b: 1, 3, 5; c: 7, 8.
  const labels = Int32Array.of(0, 1, 0, 1, 0, 1, 0, 2, 2);
  const names = ["a", "b", "c"];
  const classOf = (rows: Int32Array) => Array.from(rows, (i) => names[labels[i]!]);
  const two = drawShots(labels, 2, 0, names);
  assert.deepEqual(classOf(two).sort(), ["a", "a", "b", "b", "c", "c"]);
  assert.deepEqual([...two], [...two].sort((x, y) => x - y), "ascending");
  assert.equal(new Set(two).size, 6, "no row twice");
  assert.deepEqual(drawShots(labels, 2, 0, names), two, "same seed, same draw");
  for (let seed = 0; seed < 5; seed++) {
    const one = drawShots(labels, 1, seed, names);
    const more = new Set(drawShots(labels, 2, seed, names));
    assert.ok([...one].every((i) => more.has(i)), `seed ${seed}: the 1-shot draw lies inside the 2-shot draw`);
  }
  const draws = new Set(Array.from({ length: 8 }, (_, seed) => drawShots(labels, 1, seed, names).join(",")));
  assert.ok(draws.size > 1, "seeds draw differently");
  // With k equal to the smallest class, that class is drawn whole.
  assert.deepEqual(Array.from(two).filter((i) => labels[i] === 2), [7, 8]);
  assert.throws(() => drawShots(labels, 3, 0, names), rejectsWithCode("INPUT", `class "c" has only 2 fitting examples`));
  assert.throws(() => drawShots(labels, 0, 0, names), rejectsWithCode("USAGE"));
});

const metrics = (auroc: number, fpr95: number): OodMetrics => ({ auroc, fpr95, auprIn: auroc, auprOut: auroc, detectionAccuracy: auroc, threshold: fpr95 });

/** One seed's result: a method against one OOD set, with its average (the same set's metrics). */
function seedResult(method: string, auroc: number, fpr95: number, idAccuracy: number | null): EvalResult {
  const m: MethodResult = { method, id: [], sets: [{ ood: "dtd", metrics: metrics(auroc, fpr95), n: { id: 10, ood: 20 }, samples: [] }], average: metrics(auroc, fpr95), idAccuracy };
  return { model: "m", idSet: "val", convention: "hendrycks", methods: [m], createdAt: "2024-01-01T00:00:00Z" };
}

test("aggregateSeeds: each metric's mean and sample std over the seeds, per OOD set and average", () => {
  const rows = aggregateSeeds(4, [seedResult("knn", 0.7, 0.5, 0.5), seedResult("knn", 0.8, 0.3, 0.75), seedResult("knn", 0.9, 0.1, 1)]);
  assert.deepEqual(rows.map((r) => [r.method, r.ood, r.shots, r.seeds]), [["knn", "dtd", 4, 3], ["knn", "average", 4, 3]]);
  for (const r of rows) {
    // AUROC 0.7, 0.8, 0.9 → 0.8 ± 0.1; FPR 0.5, 0.3, 0.1 → 0.3 ± 0.2; ID accuracy 0.5, 0.75, 1 → 0.75 ± 0.25.
    assertClose(r.auroc, 0.8, 1e-12);
    assertClose(r.std!.auroc, 0.1, 1e-12);
    assertClose(r.fpr95, 0.3, 1e-12);
    assertClose(r.std!.fpr95, 0.2, 1e-12);
    assertClose(r.threshold, 0.3, 1e-12);
    assertClose(r.idAccuracy!, 0.75, 1e-12);
    assertClose(r.std!.idAccuracy!, 0.25, 1e-12);
  }
  assert.deepEqual(rows[0]!.n, { id: 10, ood: 20 });
  const noLabels = aggregateSeeds(1, [seedResult("knn", 0.6, 0.4, null), seedResult("knn", 0.6, 0.4, null)]);
  assert.equal(noLabels[0]!.idAccuracy, null);
  assert.equal(noLabels[0]!.std!.idAccuracy, null);
  assert.equal(noLabels[0]!.std!.auroc, 0);
  assert.throws(() => aggregateSeeds(1, [seedResult("knn", 0.6, 0.4, null), seedResult("ocsvm", 0.6, 0.4, null)]), rejectsWithCode("INPUT", "do not line up"));
});

test("onceRows and byMethodThenShots: rows evaluated once carry no shots; curves group by method", () => {
  const once = onceRows(seedResult("mcm", 0.9, 0.2, 0.5));
  assert.deepEqual(once.map((r) => [r.method, r.ood, r.shots, r.seeds, r.std]), [["mcm", "dtd", null, null, null], ["mcm", "average", null, null, null]]);
  const at = (k: number) => aggregateSeeds(k, [{ ...seedResult("knn", 0.7, 0.5, null), methods: [...seedResult("knn", 0.7, 0.5, null).methods, ...seedResult("ocsvm", 0.6, 0.5, null).methods] }]);
  const ordered = byMethodThenShots([...at(8), ...at(2)]);
  assert.deepEqual(ordered.map((r) => `${r.method}@${r.shots}/${r.ood}`), ["knn@2/dtd", "knn@2/average", "knn@8/dtd", "knn@8/average", "ocsvm@2/dtd", "ocsvm@2/average", "ocsvm@8/dtd", "ocsvm@8/average"]);
});
