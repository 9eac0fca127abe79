/**
 * The neighbour engine (src/search/engine.ts, topk.ts) against a brute-force reference written here:
 * every dot product in float64, all rows sorted by (score desc, index asc), the first k kept.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../src/maths/random.js";
import { exactTopKBatch } from "../src/search/engine.js";
import { TopKSelector } from "../src/search/topk.js";
import { rejectsWithCode } from "./support/assertions.js";

function randomRows(n: number, dim: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n * dim }, () => r() * 2 - 1);
}

/** The reference: a full sort of float64 dot products. */
function bruteForce(bank: Float32Array, dim: number, queries: Float32Array, k: number): { index: number; score: number }[][] {
  const rows = bank.length / dim;
  const out = [];
  for (let q = 0; q < queries.length / dim; q++) {
    const all = Array.from({ length: rows }, (_, i) => {
      let s = 0;
      for (let j = 0; j < dim; j++) s += bank[i * dim + j]! * queries[q * dim + j]!;
      return { index: i, score: s };
    });
    out.push(all.sort((a, b) => b.score - a.score || a.index - b.index).slice(0, k));
  }
  return out;
}

/**
 * The engine's float32 products may reorder hits whose float64 scores are within rounding of each
 * other, so hits are compared by score (1e-5 absolute at these sizes), and indices wherever the
 * reference's neighbours in rank differ by more than that.
 */
function assertMatches(got: Awaited<ReturnType<typeof exactTopKBatch>>, want: { index: number; score: number }[][], label: string): void {
  assert.equal(got.queries, want.length, label);
  for (let q = 0; q < want.length; q++) {
    const w = want[q]!;
    assert.equal(got.count, w.length, `${label}: count`);
    for (let i = 0; i < w.length; i++) {
      const s = got.scores[q * got.count + i]!;
      assert.ok(Math.abs(s - w[i]!.score) < 1e-5, `${label} q=${q} rank ${i}: ${s} vs ${w[i]!.score}`);
      const gap = Math.min(i > 0 ? w[i - 1]!.score - w[i]!.score : Infinity, i + 1 < w.length ? w[i]!.score - w[i + 1]!.score : Infinity);
      if (gap > 1e-5) assert.equal(got.indices[q * got.count + i], w[i]!.index, `${label} q=${q} rank ${i}: index`);
    }
  }
}

test("exactTopKBatch equals the brute-force reference across block boundaries, odd dimensions and k up to 1000", async () => {
  for (const [n, dim, nq, ks] of [
    [3000, 7, 5, [1, 10, 1000]],
    [1500, 513, 3, [1, 999]],
    [257, 1, 4, [1, 3]],
  ] as const) {
    const bank = randomRows(n, dim, n + dim);
    const queries = randomRows(nq, dim, 99);
    for (const k of ks) {
      const want = bruteForce(bank, dim, queries, k);
      // Blocks that do not divide the bank or the queries: the last block of each is short.
      assertMatches(await exactTopKBatch(bank, dim, queries, k, { queryBlock: 2, bankBlock: 333 }), want, `n=${n} d=${dim} k=${k} small blocks`);
      assertMatches(await exactTopKBatch(bank, dim, queries, k), want, `n=${n} d=${dim} k=${k} default blocks`);
      // Blocks of whole 64-row chunks take the chunk-maximum path (the last, short one the plain path).
      assertMatches(await exactTopKBatch(bank, dim, queries, k, { queryBlock: 3, bankBlock: 128 }), want, `n=${n} d=${dim} k=${k} chunked blocks`);
    }
  }
});

test("exactTopKBatch: exact ties keep the lower row first, in and across blocks; k > n gives every row", async () => {
  // Rows 0, 2, 3 and 5 score 1 against (1, 0); rows 1 and 4 score 0; row 6 scores −1.
  const bank = Float32Array.from([1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, -1, 0]);
  const q = Float32Array.from([1, 0]);
  for (const bankBlock of [1, 2, 3, 16384]) {
    const r = await exactTopKBatch(bank, 2, q, 3, { bankBlock });
    assert.deepEqual(Array.from(r.indices), [0, 2, 3], `bankBlock=${bankBlock}`);
    const all = await exactTopKBatch(bank, 2, q, 50, { bankBlock });
    assert.equal(all.count, 7);
    assert.deepEqual(Array.from(all.indices), [0, 2, 3, 5, 1, 4, 6], `bankBlock=${bankBlock}: every row, best first`);
    assert.deepEqual(Array.from(all.scores), [1, 1, 1, 1, 0, 0, -1]);
  }
});

test("exactTopKBatch's chunk maxima: a chunk is skipped only when its best cannot enter; ties at the bound and NaN rows still scanned", async () => {
  // 256 rows of 2-d in blocks of 128 (two 64-row chunks each). Against (1, 0): rows 5, 70 and 200 score
  // 1 (a tie across chunks and blocks), row 130 scores 0.5, row 66 is NaN in the chunk of row 70, and
  // the rest score 0.25 or less.
  const n = 256;
  const bank = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) bank.set([0.25 * ((i % 5) / 4), 1], i * 2);
  for (const i of [5, 70, 200]) bank.set([1, 0], i * 2);
  bank.set([0.5, 0], 130 * 2);
  bank.set([NaN, 0], 66 * 2);
  const q = Float32Array.from([1, 0, 1, 0]);
  for (const k of [1, 2, 3, 4]) {
    const chunked = await exactTopKBatch(bank, 2, q, k, { bankBlock: 128 });
    const plain = await exactTopKBatch(bank, 2, q, k, { bankBlock: 128, scanAll: true });
    assert.deepEqual([Array.from(chunked.indices), Array.from(chunked.scores)], [Array.from(plain.indices), Array.from(plain.scores)], `k = ${k}`);
    assert.deepEqual(Array.from(chunked.indices.subarray(0, k)), [5, 70, 200, 130].slice(0, k), `k = ${k}: the lower row first among ties, NaN never`);
  }
});

test("exactTopKBatch: NaN and infinite queries are refused before any work; NaN bank rows are never hits; bad k and shapes refused", async () => {
  const bank = Float32Array.from([1, 0, NaN, 0, 0, 1]);
  await assert.rejects(exactTopKBatch(bank, 2, Float32Array.from([1, 0, 0, NaN]), 1), rejectsWithCode("INPUT", "query 1 has a non-finite value (NaN) at dimension 1"));
  await assert.rejects(exactTopKBatch(bank, 2, Float32Array.from([Infinity, 0]), 1), rejectsWithCode("INPUT", "non-finite"));
  await assert.rejects(exactTopKBatch(bank, 2, Float32Array.from([1, 0, 0]), 1), rejectsWithCode("INPUT", "not whole rows of 2"));
  await assert.rejects(exactTopKBatch(bank, 2, Float32Array.from([1, 0]), 0), rejectsWithCode("USAGE", "positive integer"));
  await assert.rejects(exactTopKBatch(bank.subarray(0, 5), 2, Float32Array.from([1, 0]), 1), rejectsWithCode("INPUT", "bank of 5 values"));
  const r = await exactTopKBatch(bank, 2, Float32Array.from([1, 0]), 3);
  assert.deepEqual(Array.from(r.indices), [0, 2]);
  const empty = await exactTopKBatch(new Float32Array(0), 2, Float32Array.from([1, 0]), 3);
  assert.equal(empty.count, 0);
});

test("TopKSelector, hand-worked: the bound is the k-th best so far; offers out of row order still tie to the lower row", () => {
  const s = new TopKSelector(2, 2);
  s.offer(0, [0.5, 0.9, 0.1], 0, 3, 10); // rows 10, 11, 12
  assert.equal(s.bound(0), 0.5);
  assert.equal(s.bound(1), -Infinity);
  s.offer(1, [NaN, 3], 0, 2, 0);
  s.offer(0, [0.9, 0.5], 0, 2, 4); // rows 4 and 5 tie rows 11 and 10, at lower indices
  const r = s.finish();
  assert.equal(r.count, 1, "query 1 kept one finite score");
  // count is the smallest heap: query 0's best is row 4 (0.9, lower than row 11).
  assert.deepEqual([r.indices[0], r.scores[0]], [4, 0.9]);
  assert.deepEqual([r.indices[1], r.scores[1]], [1, 3]);
  const t = new TopKSelector(1, 3);
  t.offer(0, [2, 7, 7, 1, 9, 7], 0, 6, 0);
  const u = t.finish();
  assert.deepEqual(Array.from(u.indices), [4, 1, 2]);
  assert.throws(() => new TopKSelector(1, 0), /positive integer/);
});

test("TopKSelector.finish over 300,000 queries: hits per query is the fewest any query got, without a spread call", () => {
  const n = 300_000;
  const s = new TopKSelector(n, 2);
  const scores = Float64Array.of(0.5, 0.25, 0.75);
  for (let q = 0; q < n; q++) s.offer(q, scores, 0, q === 7 ? 1 : 3, 0);
  const r = s.finish();
  // Query 7 saw one row, so every query reports one hit: its best.
  assert.equal(r.count, 1);
  assert.deepEqual([r.indices[0], r.scores[0], r.indices[7], r.scores[7]], [2, 0.75, 0, 0.5]);
});
