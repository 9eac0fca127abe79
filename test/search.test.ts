/**
 * Search: exact top-k on data full of ties, query arithmetic with weights, and the HNSW index checked
 * against exact search (recall, cosine scores, save/load). test/exact-search.test.ts holds the basic
 * exact-search cases; these add what it does not cover.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { mulberry32 } from "../src/maths/random.js";
import { AnnIndex, DEFAULT_ANN_THRESHOLD, useAnn } from "../src/search/ann.js";
import { combineQueries, exactTopK } from "../src/search/exact.js";
import type { SearchHit } from "../src/search/exact.js";
import { rejectsWithCode, withTempDir } from "./support/assertions.js";

/** Uniformly distributed unit vectors (Gaussian components, normalised), seeded. */
function unitRows(n: number, dim: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < dim; j++) {
      const g = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
      out[i * dim + j] = g;
      ss += g * g;
    }
    for (let j = 0; j < dim; j++) out[i * dim + j]! /= Math.sqrt(ss);
  }
  return out;
}

/** The reference ranking: every dot product (float64, in the same order of terms), fully sorted. */
function fullSort(data: Float32Array, dim: number, query: Float32Array, filter: (i: number) => boolean = () => true): SearchHit[] {
  const hits: SearchHit[] = [];
  for (let i = 0; i < data.length / dim; i++) {
    if (!filter(i)) continue;
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[i * dim + j]! * query[j]!;
    hits.push({ index: i, score: s });
  }
  return hits.sort((a, b) => b.score - a.score || a.index - b.index);
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, j) => s + x * b[j]!, 0);
const rowOf = (data: Float32Array, dim: number, i: number) => data.subarray(i * dim, (i + 1) * dim);

test("exactTopK on data with many exact ties matches a full sort for every k and filter", () => {
  // Components in {−1, 0, 1}: only a handful of distinct dot products, so most ranks are ties and the
  // heap's tie order (lower index first) is exercised at every k.
  const dim = 4;
  const rows = 200;
  const r = mulberry32(7);
  const data = Float32Array.from({ length: rows * dim }, () => Math.floor(r() * 3) - 1);
  const query = Float32Array.from([1, 1, 0, -1]);
  const filters: [string, ((i: number) => boolean) | undefined][] = [
    ["none", undefined],
    ["every third", (i) => i % 3 === 0],
    ["none pass", () => false],
  ];
  for (const [name, filter] of filters) {
    const sorted = fullSort(data, dim, query, filter);
    for (const k of [1, 3, 7, 50, 66, 67, 199, 200, 1000]) {
      assert.deepEqual(exactTopK(data, dim, query, k, filter), sorted.slice(0, k), `filter ${name}, k=${k}`);
    }
  }
  assert.deepEqual(exactTopK(new Float32Array(0), dim, query, 5), []);
});

test("combineQueries weights normalised parts: 2·a + b, a zero weight, three parts", () => {
  const close = (got: Float32Array, want: number[]) => want.forEach((w, j) => assert.ok(Math.abs(got[j]! - w) < 1e-7, `${Array.from(got)} vs ${want}`));
  // (3,0)→(1,0) weighted 2, (0,5)→(0,1) weighted 1: (2,1)/√5, whatever the lengths were.
  close(combineQueries([{ vector: Float32Array.from([3, 0]), weight: 2 }, { vector: Float32Array.from([0, 5]), weight: 1 }]), [2 / Math.sqrt(5), 1 / Math.sqrt(5)]);
  // A long vector does not dominate a short one: (100,0) and (0,0.01) meet at 45°.
  close(combineQueries([{ vector: Float32Array.from([100, 0]), weight: 1 }, { vector: Float32Array.from([0, 0.01]), weight: 1 }]), [Math.SQRT1_2, Math.SQRT1_2]);
  // Weight 0 drops a part.
  close(combineQueries([{ vector: Float32Array.from([0, 7]), weight: 1 }, { vector: Float32Array.from([4, 0]), weight: 0 }]), [0, 1]);
  // (1,0,0) + (0,1,0) − (0,0,2)/2 = (1,1,−1) → /√3.
  const s = 1 / Math.sqrt(3);
  close(
    combineQueries([
      { vector: Float32Array.from([2, 0, 0]), weight: 1 },
      { vector: Float32Array.from([0, 0.5, 0]), weight: 1 },
      { vector: Float32Array.from([0, 0, 2]), weight: -1 },
    ]),
    [s, s, -s],
  );
  // A single part comes back as a unit vector.
  const one = combineQueries([{ vector: Float32Array.from([3, 4]), weight: 1 }]);
  close(one, [0.6, 0.8]);
});

// 2,000 random 64-d unit vectors: small enough to build in well under a second, large enough that a
// broken graph (wrong keys, wrong metric) would miss most true neighbours.
const dim = 64;
const data = unitRows(2000, dim, 11);
const queries = unitRows(40, dim, 12);
// An f32 graph, whose scores are usearch's own cosines; the store's graphs are f16 (see below).
let built: AnnIndex | undefined;
const index = () => (built ??= AnnIndex.build(data, dim, { scalar: "f32", expansionSearch: 256 }));

test("AnnIndex: recall@10 against exact search is at least 0.95; scores are the exact cosines, best first", () => {
  for (const [ann, tolerance] of [
    [index(), 1e-5],
    // f16 vectors: scores within f16 rounding of a cosine (components ~0.1, 11-bit mantissas).
    [AnnIndex.build(data, dim, { expansionSearch: 256 }), 2e-3],
  ] as const) {
    assert.equal(ann.size, 2000);
    let found = 0;
    for (let q = 0; q < queries.length / dim; q++) {
      const query = rowOf(queries, dim, q);
      const approx = ann.search(query, 10);
      assert.equal(approx.length, 10);
      const truth = new Set(exactTopK(data, dim, query, 10).map((h) => h.index));
      found += approx.filter((h) => truth.has(h.index)).length;
      for (let i = 0; i < approx.length; i++) {
        const h = approx[i]!;
        // usearch reports distances (1 − cos); the wrapper must turn them back into cosines.
        assert.ok(Math.abs(h.score - dot(rowOf(data, dim, h.index), query)) < tolerance, `${ann.scalar} query ${q} hit ${h.index}: ${h.score}`);
        if (i > 0) assert.ok(approx[i - 1]!.score >= h.score, "hits are best first");
      }
    }
    const recall = found / (10 * (queries.length / dim));
    assert.ok(recall >= 0.95, `${ann.scalar} recall@10 ${recall}`);
  }
});

test("AnnIndex: keys removed are never found again; additions reuse their nodes; a search's width is per call", async () => {
  const ann = AnnIndex.build(data, dim, { scalar: "f32" });
  const query = rowOf(data, dim, 5);
  assert.equal(ann.search(query, 1)[0]?.index, 5);
  assert.equal(ann.remove([5, 6, 5000]), 2, "absent keys are not counted");
  assert.deepEqual([ann.size, ann.nodes], [1998, 2000]);
  assert.ok(ann.search(query, 50).every((h) => h.index !== 5 && h.index !== 6), "removed keys are not hits");
  ann.add([7005], data, { rows: [5] });
  assert.deepEqual([ann.size, ann.nodes], [1999, 2000], "the new key took a freed node");
  assert.equal(ann.search(query, 1)[0]?.index, 7005);
  // A width as wide as the graph visits every node: exact answers.
  const wide = ann.search(rowOf(queries, dim, 0), 10, 2000).map((h) => h.index);
  const truth = fullSort(data, dim, rowOf(queries, dim, 0), (i) => i !== 6).map((h) => (h.index === 5 ? 7005 : h.index));
  assert.deepEqual(wide, truth.slice(0, 10));
  await withTempDir(async (dir) => {
    const file = path.join(dir, "g.usearch");
    ann.save(file);
    for (const view of [false, true]) {
      const back = AnnIndex.load(file, dim, { view, expansionSearch: 2000 });
      assert.deepEqual([back.size, back.nodes, back.readOnly], [1999, 2000, view]);
      assert.deepEqual(back.search(rowOf(queries, dim, 0), 10).map((h) => h.index), wide, view ? "memory-mapped" : "loaded");
    }
    assert.throws(() => AnnIndex.load(file, dim, { view: true }).add([1], data), /cannot be changed/);
  });
});

test("AnnIndex: a stored row finds itself with cosine 1; k above the size returns every row", () => {
  const ann = index();
  for (const i of [0, 777, 1999]) {
    const [top] = ann.search(rowOf(data, dim, i), 1);
    assert.equal(top?.index, i);
    assert.ok(Math.abs(top.score - 1) < 1e-5, String(top.score));
  }
  const tiny = unitRows(5, 3, 3);
  const small = AnnIndex.build(tiny, 3);
  const q = unitRows(1, 3, 4);
  const got = small.search(q, 10);
  const want = fullSort(tiny, 3, q);
  assert.deepEqual(got.map((h) => h.index), want.map((h) => h.index));
  assert.deepEqual(small.search(q, 0), []);
  assert.deepEqual(AnnIndex.build(new Float32Array(0), 3).search(q, 5), []);
});

test("AnnIndex: a graph grown on one thread answers batched searches on many (usearch holds a slot per thread)", () => {
  // usearch sized its pool with the insertion's one thread: a batch searched on more threads failed
  // whenever two queries met ("Reserve capacity ahead of searches!"), which CI hit by chance.
  const one = AnnIndex.build(data, dim, { scalar: "f32", expansionSearch: 256, threads: 1 });
  const many = unitRows(2000, dim, 13);
  for (const threads of [0, 4, 16]) {
    const batched = one.searchBatch(many, 10, 256, threads);
    assert.equal(batched.length, 2000);
    for (const q of [0, 999, 1999]) assert.deepEqual(batched[q], one.search(rowOf(many, dim, q), 10, 256), `query ${q} on ${threads} threads`);
  }
});

test("AnnIndex: save and load give the same hits; bad files, dims and queries are refused", async () => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, "index.usearch");
    const ann = index();
    ann.save(file);
    // The width is not in the file: the caller keeps it (the store keeps it in its record).
    const back = AnnIndex.load(file, dim, { expansionSearch: ann.width });
    assert.equal(back.size, ann.size);
    for (let q = 0; q < 10; q++) assert.deepEqual(back.search(rowOf(queries, dim, q), 10), ann.search(rowOf(queries, dim, q), 10), `query ${q}`);

    assert.throws(() => AnnIndex.load(file, dim + 1), rejectsWithCode("INPUT", "65"));
    assert.throws(() => AnnIndex.load(path.join(dir, "missing.usearch"), dim), rejectsWithCode("INPUT", "missing.usearch"));
    const junk = path.join(dir, "junk.usearch");
    await writeFile(junk, "not an index at all, just text");
    assert.throws(() => AnnIndex.load(junk, dim), rejectsWithCode("INPUT", "junk.usearch"));
    // usearch's own loader aborts the process on a short file; the wrapper must refuse it first.
    const bytes = await readFile(file);
    const cut = path.join(dir, "cut.usearch");
    for (const n of [1, 4096, bytes.length - 8]) {
      await writeFile(cut, bytes.subarray(0, bytes.length - n));
      assert.throws(() => AnnIndex.load(cut, dim), rejectsWithCode("INPUT", "cut.usearch"), `${n} bytes short`);
    }
    await writeFile(cut, Buffer.concat([bytes, Buffer.alloc(1)]));
    assert.throws(() => AnnIndex.load(cut, dim), rejectsWithCode("INPUT", "longer"));
    assert.throws(() => ann.save(path.join(dir, "no", "such", "folder", "i.usearch")), rejectsWithCode("INPUT", "i.usearch"));
  });
  assert.throws(() => index().search(new Float32Array(dim + 1), 3), rejectsWithCode("INPUT", "65 dimensions"));
  assert.throws(() => AnnIndex.build(new Float32Array(10), 3), rejectsWithCode("INPUT", "10 values"));
  assert.throws(() => AnnIndex.build(data, dim, { connectivity: 1.5 }), rejectsWithCode("USAGE", "connectivity"));
});

test("AnnIndex.build inserts in batches: keys stay row indices across batches; progress; abort", () => {
  // Just over one batch (10,000 rows), so the second batch's keys must continue from 10,000.
  const d = 8;
  const rows = 10_003;
  const many = unitRows(rows, d, 21);
  const seen: number[] = [];
  const ann = AnnIndex.build(many, d, { connectivity: 8, expansionAdd: 32, expansionSearch: 64, onProgress: (done, total) => seen.push(done, total) });
  assert.deepEqual(seen, [10_000, rows, rows, rows]);
  assert.equal(ann.size, rows);
  for (const i of [0, 9_999, 10_000, 10_002]) assert.equal(ann.search(rowOf(many, d, i), 1)[0]?.index, i, `row ${i}`);

  const stop = new AbortController();
  const reason = new Error("stopped by the test");
  const progress: number[] = [];
  assert.throws(
    () => AnnIndex.build(many, d, { connectivity: 8, signal: stop.signal, onProgress: (done) => (progress.push(done), stop.abort(reason)) }),
    (e) => e === reason,
  );
  assert.deepEqual(progress, [10_000], "no batch runs after the abort");
});

test("useAnn: the --ann-threshold rule", () => {
  assert.equal(useAnn(DEFAULT_ANN_THRESHOLD), false);
  assert.equal(useAnn(DEFAULT_ANN_THRESHOLD + 1), true);
  assert.equal(useAnn(10, 5), true);
});
