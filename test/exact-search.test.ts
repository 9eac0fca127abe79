/**
 * Exact search against a brute-force full sort, and query arithmetic on hand-worked vectors.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../src/maths/random.js";
import { normalizeRows, matrix } from "../src/maths/vectors.js";
import { combineQueries, exactTopK } from "../src/search/exact.js";
import { rejectsWithCode } from "./support/assertions.js";

function unitRows(n: number, dim: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return normalizeRows(matrix(n, dim, Float32Array.from({ length: n * dim }, () => r() * 2 - 1))).data;
}

test("exactTopK equals a full sort of dot products for every k, with a filter, best first", () => {
  const dim = 16;
  const data = unitRows(300, dim, 1);
  const query = unitRows(1, dim, 2);
  const all = Array.from({ length: 300 }, (_, i) => ({ index: i, score: data.subarray(i * dim, (i + 1) * dim).reduce((s, x, j) => s + x * query[j]!, 0) }));
  const sorted = [...all].sort((a, b) => b.score - a.score || a.index - b.index);
  for (const k of [1, 2, 10, 299, 300, 500]) assert.deepEqual(exactTopK(data, dim, query, k), sorted.slice(0, k), `k=${k}`);
  const even = (i: number) => i % 2 === 0;
  assert.deepEqual(exactTopK(data, dim, query, 5, even), sorted.filter((h) => even(h.index)).slice(0, 5));
  assert.deepEqual(exactTopK(data, dim, query, 0), []);
});

test("exactTopK: ties keep the lower index first; a query of the wrong size is refused", () => {
  const data = Float32Array.from([1, 0, 0, 1, 1, 0, 1, 0]);
  assert.deepEqual(exactTopK(data, 2, Float32Array.from([1, 0]), 3).map((h) => h.index), [0, 2, 3]);
  assert.throws(() => exactTopK(data, 2, Float32Array.from([1, 0, 0]), 1), rejectsWithCode("INPUT", "3 dimensions"));
});

test("combineQueries: parts are normalised before weighting, subtract is −1, the sum is normalised", () => {
  // (10, 0) and (0, 1) count equally: (1,0)+(0,1) → (1/√2, 1/√2).
  const q = combineQueries([{ vector: Float32Array.from([10, 0]), weight: 1 }, { vector: Float32Array.from([0, 1]), weight: 1 }]);
  assert.ok(Math.abs(q[0]! - Math.SQRT1_2) < 1e-7 && Math.abs(q[1]! - Math.SQRT1_2) < 1e-7, String(q));
  // (1,1)/√2 − (1,0) = (1/√2 − 1, 1/√2) → normalised.
  const d = combineQueries([{ vector: Float32Array.from([1, 1]), weight: 1 }, { vector: Float32Array.from([2, 0]), weight: -1 }]);
  const x = Math.SQRT1_2 - 1;
  const n = Math.hypot(x, Math.SQRT1_2);
  assert.ok(Math.abs(d[0]! - x / n) < 1e-7 && Math.abs(d[1]! - Math.SQRT1_2 / n) < 1e-7, String(d));
  assert.throws(() => combineQueries([{ vector: Float32Array.from([1, 0]), weight: 1 }, { vector: Float32Array.from([3, 0]), weight: -1 }]), rejectsWithCode("USAGE", "cancel out"));
  assert.throws(() => combineQueries([]), rejectsWithCode("USAGE", "empty query"));
});
