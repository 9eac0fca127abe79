/**
 * The compressed scan (src/search/compressed.ts, searcher.ts) against a brute-force reference written
 * here: every dot product in float64, summed in dimension order, all rows sorted by (score desc, index
 * asc), the first k kept. The rerank sums in float64 too (four partial sums), so wherever the true
 * neighbours are among the candidates the indices equal the reference's and the scores agree to float64
 * rounding.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 } from "../src/maths/random.js";
import { candidateCount, compressedTopKBatch, MIN_EXTRA_CANDIDATES, quantizeBank } from "../src/search/compressed.js";
import type { Int8Bank } from "../src/search/compressed.js";
import { exactSearcher, int8Searcher, makeSearcher } from "../src/search/searcher.js";
import type { TopKResult } from "../src/search/topk.js";
import { rejectsWithCode } from "./support/assertions.js";

function randomRows(n: number, dim: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n * dim }, () => r() * 2 - 1);
}

function bruteForce(bank: Float32Array, dim: number, queries: Float32Array, k: number): { indices: number[]; scores: number[] }[] {
  const rows = bank.length / dim;
  const out = [];
  for (let q = 0; q < queries.length / dim; q++) {
    const all = Array.from({ length: rows }, (_, i) => {
      let s = 0;
      for (let j = 0; j < dim; j++) s += bank[i * dim + j]! * queries[q * dim + j]!;
      return { index: i, score: s };
    });
    const top = all.filter((h) => !Number.isNaN(h.score)).sort((a, b) => b.score - a.score || a.index - b.index).slice(0, k);
    out.push({ indices: top.map((h) => h.index), scores: top.map((h) => h.score) });
  }
  return out;
}

/** Same rows in the same order; scores within 1e-12 (float64 sums in another order differ in the 16th digit). */
function assertMatches(got: TopKResult, want: { indices: number[]; scores: number[] }[], label: string): void {
  assert.equal(got.queries, want.length, label);
  for (let q = 0; q < want.length; q++) {
    assert.deepEqual(Array.from(got.indices.subarray(q * got.count, (q + 1) * got.count)), want[q]!.indices, `${label} q=${q}`);
    want[q]!.scores.forEach((w, i) => assert.ok(Math.abs(got.scores[q * got.count + i]! - w) < 1e-12, `${label} q=${q} rank ${i}: ${got.scores[q * got.count + i]} vs ${w}`));
  }
}

/** The int8 scan's score of one row, read back from the codes' block layout (the query's codes as compressed.ts makes them). */
function int8Score(index: Int8Bank, row: number, query: Float32Array): number {
  const { dim, block } = index;
  const r0 = Math.floor(row / block) * block;
  const n = Math.min(block, index.rows - r0);
  let max = 0;
  for (const x of query) max = Math.max(max, Math.abs(x));
  let s = 0;
  for (let j = 0; j < dim; j++) s += index.codes[r0 * dim + j * n + (row - r0)]! * Math.round((query[j]! * 127) / max);
  return s * index.scales[row]!;
}

test("quantizeBank, hand-worked: one scale per row (max |x| / 127), codes rounded half to even, blocks stored dimension-major; zero and non-finite rows", async () => {
  // Block 3: rows 0–2, then rows 3–4. Rows 0 and 3 have max |x| = 127, so scale 1 and codes = x rounded:
  // 63.5 → 64, 31.75 → 32, −62.5 → −62, 2.5 → 2 (halves to the even code). Row 1 is zero: scale 0,
  // codes 0. Rows 2 (NaN) and 4 (Infinity) get a NaN scale, whatever their codes.
  const bank = Float32Array.of(63.5, -127, 31.75, 0, 0, 0, 2, 1, NaN, 127, -62.5, 2.5, Infinity, 0, 0);
  const q = await quantizeBank(bank, 3, 3);
  assert.deepEqual([q.rows, q.dim, q.block], [5, 3, 3]);
  assert.deepEqual(Array.from(q.scales), [1, 0, NaN, 1, NaN]);
  // Block 0 is [dim × 3]: dimension 0 of rows 0, 1, 2, then dimension 1, then 2; block 1 is [dim × 2].
  const at = (block0: number, rowsIn: number, row: number) => [0, 1, 2].map((j) => q.codes[block0 * 3 + j * rowsIn + row]);
  assert.deepEqual([at(0, 3, 0), at(0, 3, 1), at(3, 2, 0)], [[64, -127, 32], [0, 0, 0], [127, -62, 2]]);
  await assert.rejects(quantizeBank(bank.subarray(0, 5), 3), rejectsWithCode("INPUT", "not whole rows of 3"));
});

test("compressedTopKBatch equals the brute-force reference across blocks, odd dimensions and k up to 1000", async () => {
  for (const [n, dim, nq, ks] of [
    [3000, 7, 5, [1, 10, 1000]],
    [1500, 513, 3, [1, 999]],
    [257, 1, 4, [1, 3]],
  ] as const) {
    const bank = randomRows(n, dim, n + dim);
    const queries = randomRows(nq, dim, 99);
    for (const k of ks) {
      const want = bruteForce(bank, dim, queries, k);
      for (const block of [333, 16384]) {
        const index = await quantizeBank(bank, dim, block);
        for (const queryBlock of [2, 256]) {
          const got = await compressedTopKBatch(index, bank, queries, k, { queryBlock });
          assert.equal(got.count, Math.min(k, n));
          assertMatches(got, want, `n=${n} d=${dim} k=${k} block=${block} queryBlock=${queryBlock}`);
        }
      }
    }
  }
});

test("compressedTopKBatch: the rerank puts the exact order back where the int8 scan reverses two rows", async () => {
  // Query (1, 0). Row 1 = (0.9995, 0) scores 0.9995 exactly and in int8 (code 127 at scale 0.9995/127).
  // Row 0 = (0.998, 1) scores 0.998, but its scale is 1/127 and 0.998·127 = 126.75 rounds to 127: the
  // int8 scan gives it 1.0, above row 1. 300 rows of (−1, 0) follow, so only the best
  // candidateCount(1) = 65 rows are re-scored.
  const rows = [0.998, 1, 0.9995, 0, ...Array.from({ length: 300 }, () => [-1, 0]).flat()];
  const bank = Float32Array.from(rows);
  const query = Float32Array.of(1, 0);
  const index = await quantizeBank(bank, 2);
  assert.ok(int8Score(index, 0, query) > int8Score(index, 1, query), "the int8 scan ranks row 0 first");
  assert.equal(candidateCount(1, 302), 1 + MIN_EXTRA_CANDIDATES);
  const r = await compressedTopKBatch(index, bank, query, 2);
  assert.deepEqual(Array.from(r.indices), [1, 0]);
  // The scores are the float32 rows' exact products, not the int8 ones.
  assert.deepEqual(Array.from(r.scores), [Math.fround(0.9995), Math.fround(0.998)]);
  assertMatches(r, bruteForce(bank, 2, query, 2), "as the reference");
});

test("compressedTopKBatch: exact ties keep the lower row first, in and across blocks; k > n gives every row", async () => {
  // Rows 0, 2, 3 and 5 score 1 against (1, 0); rows 1 and 4 score 0; row 6 scores −1.
  const bank = Float32Array.from([1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, -1, 0]);
  const q = Float32Array.from([1, 0]);
  for (const block of [1, 2, 3, 16384]) {
    const index = await quantizeBank(bank, 2, block);
    const r = await compressedTopKBatch(index, bank, q, 3);
    assert.deepEqual(Array.from(r.indices), [0, 2, 3], `block=${block}`);
    const all = await compressedTopKBatch(index, bank, q, 50);
    assert.equal(all.count, 7);
    assert.deepEqual(Array.from(all.indices), [0, 2, 3, 5, 1, 4, 6], `block=${block}: every row, best first`);
    assert.deepEqual(Array.from(all.scores), [1, 1, 1, 1, 0, 0, -1]);
  }
});

test("compressedTopKBatch: non-finite queries refused before any work; NaN and infinite bank rows never hits; bad k, oversample and shapes refused", async () => {
  const bank = Float32Array.from([1, 0, NaN, 0, 0, 1, Infinity, 0]);
  const index = await quantizeBank(bank, 2);
  await assert.rejects(compressedTopKBatch(index, bank, Float32Array.from([1, 0, 0, NaN]), 1), rejectsWithCode("INPUT", "query 1 has a non-finite value (NaN) at dimension 1"));
  await assert.rejects(compressedTopKBatch(index, bank, Float32Array.from([-Infinity, 0]), 1), rejectsWithCode("INPUT", "non-finite"));
  await assert.rejects(compressedTopKBatch(index, bank, Float32Array.from([1, 0, 0]), 1), rejectsWithCode("INPUT", "not whole rows of 2"));
  await assert.rejects(compressedTopKBatch(index, bank, Float32Array.from([1, 0]), 0), rejectsWithCode("USAGE", "positive integer"));
  await assert.rejects(compressedTopKBatch(index, bank, Float32Array.from([1, 0]), 1, { oversample: 0.5 }), rejectsWithCode("USAGE", "oversample"));
  await assert.rejects(compressedTopKBatch(index, bank.subarray(0, 6), Float32Array.from([1, 0]), 1), rejectsWithCode("INPUT", "the int8 copy holds 4 rows × 2, the float32 bank 6 values"));
  const r = await compressedTopKBatch(index, bank, Float32Array.from([1, 0]), 4);
  assert.deepEqual(Array.from(r.indices), [0, 2], "rows 1 (NaN) and 3 (Infinity) are left out");
  const emptyBank = new Float32Array(0);
  const empty = await compressedTopKBatch(await quantizeBank(emptyBank, 2), emptyBank, Float32Array.from([1, 0]), 3);
  assert.equal(empty.count, 0);
});

test("searchers: the exact and int8 scans answer alike through one interface; the int8 one holds a quarter of the bank more", async () => {
  const dim = 33;
  const bank = randomRows(2000, dim, 5);
  const queries = randomRows(6, dim, 6);
  const exact = exactSearcher(bank, dim);
  const int8 = await int8Searcher(bank, dim);
  assert.deepEqual([exact.kind, exact.rows, exact.dim, exact.extraBytes], ["exact", 2000, dim, 0]);
  // Codes: one byte per value; scales: 4 bytes per row.
  assert.deepEqual([int8.kind, int8.rows, int8.extraBytes], ["int8", 2000, 2000 * dim + 2000 * 4]);
  assert.equal((await makeSearcher("int8", bank, dim)).kind, "int8");
  const a = await exact.search(queries, 10);
  const b = await int8.search(queries, 10);
  // The exact engine's scores are float32 products; the int8 searcher's float64: the same rows, close scores.
  assert.deepEqual(Array.from(b.indices), Array.from(a.indices));
  for (let i = 0; i < a.scores.length; i++) assert.ok(Math.abs(a.scores[i]! - b.scores[i]!) < 1e-5);
  assert.throws(() => exactSearcher(bank, 7), rejectsWithCode("INPUT", "not whole rows of 7"));
});
