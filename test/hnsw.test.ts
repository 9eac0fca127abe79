/**
 * The HNSW graph kept in step with a changing collection (src/search/hnsw.ts), its files beside the
 * store (src/store/ann-files.ts) and the engine choice (src/search/choose.ts): a graph grown in place
 * answers like a fresh build, the recall self-check's width holds on held-out queries and is used on
 * reload, damaged files are rebuilt, and a process killed with SIGKILL at any step of an update leaves
 * files from which the next search is exactly right. References are brute-force rankings written here.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { readFile, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { mulberry32 } from "../src/maths/random.js";
import { chooseEngine, KEEP_INDEX_FRACTION, LATENCY_BUDGET_MS, MIN_ANN_ROWS } from "../src/search/choose.js";
import { exactSearch, exactTopK } from "../src/search/exact.js";
import { ContentGraph, RECALL_AIM, RECALL_SAMPLE, RECALL_TARGET, recallPasses, smallestWidth } from "../src/search/hnsw.js";
import type { ContentRows } from "../src/search/hnsw.js";
import { annFilesBase, contentGraphFor, goneLimit, parseAnnRecord, parseCovered, pendingLimit } from "../src/store/ann-files.js";
import { openEmbeddingStore } from "../src/store/open.js";
import type { EmbeddingStore, StoreRows } from "../src/store/store.js";
import { withTempDir } from "./support/assertions.js";
import { repoRoot } from "./support/shared.js";
import { ANN_CHILD_MODEL, annChildRows } from "./support/ann-child.js";

/**
 * Clustered unit vectors (a shared direction, one of `classes` class directions, isotropic noise), the
 * kind of data the store's graphs are tuned on; content i is row i.
 */
function clustered(n: number, dim: number, seed: number, classes = 16): Float32Array {
  const shared = mulberry32(99);
  const normal = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const axis = Float64Array.from({ length: dim }, () => normal(shared));
  const centres = Array.from({ length: classes }, () => Float64Array.from({ length: dim }, () => normal(shared)));
  const r = mulberry32(seed);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = centres[Math.floor(r() * classes)]!;
    let ss = 0;
    for (let j = 0; j < dim; j++) {
      const v = 0.5 * axis[j]! + 0.6 * c[j]! + 0.9 * normal(r);
      out[i * dim + j] = v;
      ss += v * v;
    }
    for (let j = 0; j < dim; j++) out[i * dim + j]! /= Math.sqrt(ss);
  }
  return out;
}

/** Rows of contents `ids` (content id → its vector in `pool`), each listed once, plus `copies` extra rows of the first contents. */
function rowsOf(pool: Float32Array, dim: number, ids: readonly number[], copies = 0): StoreRows {
  const list = [...ids.map((id) => ({ id, copy: 0 })), ...ids.slice(0, copies).map((id) => ({ id, copy: 1 }))];
  const paths = list.map((x) => `/p/${String(x.id).padStart(6, "0")}-${x.copy}.jpg`);
  const order = paths.map((_, i) => i).sort((a, b) => (paths[a]! < paths[b]! ? -1 : 1));
  const data = new Float32Array(order.length * dim);
  order.forEach((src, i) => data.set(pool.subarray(list[src]!.id * dim, (list[src]!.id + 1) * dim), i * dim));
  return { paths: order.map((i) => paths[i]!), hashes: order.map((i) => `h${list[i]!.id}`), dim, data };
}

/** The reference: every content's score (its first row's float64 dot product), best first, ties to the lower row. */
function bruteContents(rows: ContentRows, query: Float32Array): { row: number; score: number }[] {
  const seen = new Set<string>();
  const out: { row: number; score: number }[] = [];
  rows.hashes.forEach((h, row) => {
    if (seen.has(h)) return;
    seen.add(h);
    let s = 0;
    for (let j = 0; j < rows.dim; j++) s += rows.data[row * rows.dim + j]! * query[j]!;
    out.push({ row, score: s });
  });
  return out.sort((a, b) => b.score - a.score || a.row - b.row);
}

function recallOf(graph: ContentGraph, rows: ContentRows, queries: Float32Array, width?: number): number {
  const { dim } = rows;
  let found = 0;
  const n = queries.length / dim;
  for (let q = 0; q < n; q++) {
    const query = queries.subarray(q * dim, (q + 1) * dim);
    const truth = new Set(bruteContents(rows, query).slice(0, 10).map((h) => h.row));
    found += graph.search(query, 10, width).filter((h) => truth.has(h.row)).length;
  }
  return found / (10 * n);
}

const DIM = 24;
const POOL = clustered(6000, DIM, 1);
const QUERIES = clustered(30, DIM, 2);
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

test("a graph grown in place answers like a fresh build; pending and removed contents count before the change is folded in", async () => {
  const v1 = rowsOf(POOL, DIM, range(0, 3000), 200);
  const { graph: grown } = await ContentGraph.build(v1, { threads: 1 });
  assert.equal(grown.contents, 3000);
  assert.deepEqual([grown.ann.size, grown.covered.length], [3000, 3000]);
  // 400 contents leave (and with them the copies of some), 900 arrive.
  const v2 = rowsOf(POOL, DIM, [...range(400, 3000), ...range(3000, 3900)], 150);
  const changed = ContentGraph.attach(grown.ann, [...grown.covered], v2);
  assert.deepEqual(changed.changes(), { pending: 900, gone: 400, held: 2600 });
  // Exhaustive width: every node visited, so the answers must be exactly the brute-force ones.
  const all = 10_000;
  for (let q = 0; q < 10; q++) {
    const query = QUERIES.subarray(q * DIM, (q + 1) * DIM);
    assert.deepEqual(changed.search(query, 10, all), bruteContents(v2, query).slice(0, 10), `query ${q}, changes pending`);
  }
  assert.deepEqual(await changed.applyChanges({ threads: 1 }), { added: 900, removed: 400 });
  assert.deepEqual(changed.changes(), { pending: 0, gone: 0, held: 3500 });
  assert.equal(changed.covered.length, 3900, "keys are never reused");
  assert.equal(changed.covered.filter((h) => h === null).length, 400);
  assert.deepEqual([changed.ann.size, changed.ann.nodes], [3500, 3500], "the 400 freed nodes took 400 of the additions");
  const { graph: fresh } = await ContentGraph.build(v2, { threads: 1 });
  for (let q = 0; q < 10; q++) {
    const query = QUERIES.subarray(q * DIM, (q + 1) * DIM);
    assert.deepEqual(changed.search(query, 10, all), bruteContents(v2, query).slice(0, 10), `query ${q}, changes folded in`);
  }
  // One native call for many queries gives what the queries give one by one.
  assert.deepEqual(changed.searchBatch(QUERIES, 10, 32), range(0, 30).map((q) => changed.search(QUERIES.subarray(q * DIM, (q + 1) * DIM), 10, 32)));
  const rGrown = recallOf(changed, v2, QUERIES, 32);
  const rFresh = recallOf(fresh, v2, QUERIES, 32);
  assert.ok(rGrown >= 0.95 && rGrown >= rFresh - 0.03, `recall@10 at width 32: grown ${rGrown}, fresh ${rFresh}`);
});

test("a content under several paths is one hit, with every row listed by copiesOf", async () => {
  const rows = rowsOf(POOL, DIM, range(0, 500), 500);
  const { graph } = await ContentGraph.build(rows, { threads: 1 });
  assert.equal(graph.contents, 500);
  const query = POOL.subarray(7 * DIM, 8 * DIM);
  const [best] = graph.search(query, 3, 1000);
  assert.ok(best && Math.abs(best.score - 1) < 1e-6);
  assert.deepEqual(graph.copiesOf(best.row).map((r) => rows.paths[r]), ["/p/000007-0.jpg", "/p/000007-1.jpg"]);
  const hits = graph.search(query, 500, 1000);
  assert.equal(new Set(hits.map((h) => rows.hashes[h.row])).size, 500, "each content once");
});

test("recallPasses: the mean per-query recall less two standard errors must reach the target (figures computed by hand)", () => {
  assert.equal(RECALL_TARGET, 0.98);
  // 300 queries: 285 at 1, 15 at 0.8: mean 0.99; sample sd √(15·0.2²·285/300 … ) computed as
  // Σ(x − 0.99)² = 285·0.01² + 15·0.19² = 0.0285 + 0.5415 = 0.57; /299 = 0.0019064; /300 → SE 0.0025208;
  // 0.99 − 0.0050416 = 0.98496 ≥ 0.98.
  const good = [...Array<number>(285).fill(1), ...Array<number>(15).fill(0.8)];
  assert.ok(Math.abs(recallPasses(good).recall - 0.99) < 1e-12);
  assert.equal(recallPasses(good).passes, true);
  // 285 at 1, 15 at 0.7: mean 0.985; Σ(x − 0.985)² = 285·0.015² + 15·0.285² = 0.064125 + 1.218375 = 1.2825;
  // /299/300 → SE 0.0037813; 0.985 − 0.0075626 = 0.97744 < 0.98: the mean alone would pass.
  const shaky = [...Array<number>(285).fill(1), ...Array<number>(15).fill(0.7)];
  assert.deepEqual(recallPasses(shaky).passes, false);
  assert.equal(recallPasses(Array<number>(300).fill(1)).passes, true);
  assert.equal(recallPasses([]).passes, true, "nothing to measure");
});

test("smallestWidth: the smallest passing width to within 1/16, by ladder then bisection; the widest tried when none passes", async () => {
  const tried: number[] = [];
  const step = (limit: number) => (w: number) => (tried.push(w), { recall: w >= limit ? 1 : 0, passes: w >= limit });
  for (const limit of [1, 8, 9, 40, 100, 1000, 4096]) {
    tried.length = 0;
    const r = await smallestWidth(step(limit), 1);
    assert.equal(r.reached, true);
    assert.ok(r.width >= limit && r.width <= Math.max(limit + 1, (limit * 17) / 16), `limit ${limit}: width ${r.width}, tried ${tried}`);
    assert.ok(tried.length <= 24, `limit ${limit}: ${tried.length} evaluations`);
  }
  assert.deepEqual(await smallestWidth(step(5000), 1), { width: 4096, recall: 0, reached: false });
  const r = await smallestWidth(step(70), 64, 256);
  assert.ok(r.reached && r.width >= 70 && r.width <= 74, JSON.stringify(r));
});

test("the self-check: from a forced width of 1 it settles on a width that reaches recall@10 ≥ 0.98 on held-out queries", async () => {
  const rows = rowsOf(POOL, DIM, range(0, 6000));
  // Few links and a short insertion list: a graph that needs a real search width.
  const { graph, check } = await ContentGraph.build(rows, { threads: 1, connectivity: 6, expansionAdd: 16 }, { start: 1 });
  assert.ok(check?.reached, JSON.stringify(check));
  assert.ok(check.recall >= RECALL_AIM, `the sample's recall ${check.recall} is held to the aim, above the target`);
  assert.equal(check.queries, RECALL_SAMPLE);
  assert.ok(check.width > 1 && graph.width === check.width, JSON.stringify(check));
  assert.ok(recallOf(graph, rows, QUERIES, 1) < 0.9, "width 1 is far from enough, or the test proves nothing");
  // 1,000 new queries: their mean recall's standard error is about 0.0015.
  const heldOut = clustered(1000, DIM, 3);
  const recall = recallOf(graph, rows, heldOut);
  assert.ok(recall >= RECALL_TARGET, `held-out recall@10 ${recall} at width ${check.width}`);
  // A graph too small to sample searches every node.
  const tiny = await ContentGraph.build(rowsOf(POOL, DIM, range(0, 50)), { threads: 1 }, {});
  assert.deepEqual([tiny.check?.width, tiny.check?.queries], [50, 0]);
});

test("chooseEngine: --ann-threshold decides when given; else size, then the measured exact speed against the budget", () => {
  assert.equal(chooseEngine({ rows: 10, annThreshold: 5 }).engine, "hnsw");
  assert.equal(chooseEngine({ rows: 5, annThreshold: 5 }).engine, "exact");
  assert.equal(chooseEngine({ rows: 10_000_000, annThreshold: 20_000_000, exactRowsPerSecond: 1 }).engine, "exact", "the override beats the speed");
  assert.equal(chooseEngine({ rows: MIN_ANN_ROWS, exactRowsPerSecond: 1 }).engine, "exact", "small collections are scanned");
  const rate = 1_000_000; // rows per second: the budget holds budget/1000 × rate rows
  const limit = (LATENCY_BUDGET_MS / 1000) * rate;
  assert.equal(chooseEngine({ rows: limit, exactRowsPerSecond: rate }).engine, "exact");
  assert.equal(chooseEngine({ rows: limit + 1000, exactRowsPerSecond: rate }).engine, "hnsw");
  const c = chooseEngine({ rows: 2 * limit, exactRowsPerSecond: rate });
  assert.ok(Math.abs(c.predictedExactMs! - 2 * LATENCY_BUDGET_MS) < 1e-6, JSON.stringify(c));
  // A kept index stays in use down to KEEP_INDEX_FRACTION of the budget.
  const between = Math.round(limit * (1 + KEEP_INDEX_FRACTION) / 2);
  assert.equal(chooseEngine({ rows: between, exactRowsPerSecond: rate, indexExists: true }).engine, "hnsw");
  assert.equal(chooseEngine({ rows: between, exactRowsPerSecond: rate, indexExists: false }).engine, "exact");
  assert.equal(chooseEngine({ rows: 10 * MIN_ANN_ROWS }).engine, "hnsw", "unknown speed on a large collection");
});

test("exactSearch: the batched path gives exactTopK's hits and float64 scores", async () => {
  const rows = 20_000;
  const bank = clustered(rows, DIM, 5);
  for (let q = 0; q < 3; q++) {
    const query = QUERIES.subarray(q * DIM, (q + 1) * DIM);
    assert.deepEqual(await exactSearch(bank, DIM, query, 25), exactTopK(bank, DIM, query, 25), `query ${q}`);
  }
});

/** Only the local files' location matters to ann-files.ts. */
const fakeStore = (dir: string) => ({ localFilesBase: path.join(dir, "store") }) as unknown as EmbeddingStore;

const MODEL = "test-model-key";

async function record(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(`${annFilesBase(fakeStore(dir), MODEL)}.hnsw.json`, "utf8")) as Record<string, unknown>;
}

test("files beside the store: built once with a measured width, reopened with the recorded width, small changes wait, large ones make a new generation", async () => {
  await withTempDir(async (dir) => {
    const store = fakeStore(dir);
    const warnings: string[] = [];
    const o = { threads: 1, onWarning: (m: string) => warnings.push(m) };
    const v1 = rowsOf(POOL, DIM, range(0, 3000));
    const first = await contentGraphFor(store, MODEL, v1, o);
    const r1 = await record(dir);
    assert.ok(parseAnnRecord(JSON.stringify(r1), MODEL, DIM), JSON.stringify(r1));
    assert.deepEqual([r1["contents"], r1["keys"], r1["width"]], [3000, 3000, first.width]);
    assert.ok((r1["recall"] as number) >= RECALL_TARGET && r1["widthReached"] === true, JSON.stringify(r1));
    const listing = () => readdirSync(dir).sort();
    assert.equal(listing().length, 3, listing().join(", "));

    // The recorded width is the one used: change it in the record, and a reopen searches at it.
    const edited = { ...r1, width: 7 };
    await writeFile(`${annFilesBase(store, MODEL)}.hnsw.json`, JSON.stringify(edited));
    assert.equal((await contentGraphFor(store, MODEL, v1, o)).width, 7);

    // 500 new contents: below pendingLimit, ranked beside the graph without touching its files.
    assert.ok(500 <= pendingLimit(3000));
    const before = listing();
    const v2 = rowsOf(POOL, DIM, range(0, 3500));
    const waiting = await contentGraphFor(store, MODEL, v2, o);
    assert.deepEqual(waiting.changes(), { pending: 500, gone: 0, held: 3000 });
    assert.deepEqual(listing(), before, "no file written");
    const query = POOL.subarray(3200 * DIM, 3201 * DIM);
    assert.equal(v2.hashes[waiting.search(query, 1)[0]!.row], "h3200", "a pending content is found");

    // 1,500 more and 400 fewer: past the limits, folded into the graph as a new generation.
    assert.ok(1_500 > pendingLimit(3000) || 400 > goneLimit(3000));
    const v3 = rowsOf(POOL, DIM, range(400, 5000));
    const updated = await contentGraphFor(store, MODEL, v3, o);
    assert.deepEqual(updated.changes(), { pending: 0, gone: 0, held: 4600 });
    const r3 = await record(dir);
    assert.notEqual(r3["generation"], r1["generation"]);
    assert.deepEqual([r3["contents"], r3["keys"], r3["built"]], [4600, 5000, r1["built"]]);
    assert.equal(listing().length, 3, `the old generation is removed: ${listing().join(", ")}`);
    // 2,000 changes on 3,000 contents is past RECHECK_FRACTION: the width was measured again.
    assert.ok((r3["width"] as number) !== 7 && r3["changedSinceCheck"] === 0, JSON.stringify(r3));
    for (let q = 0; q < 10; q++) {
      const qv = QUERIES.subarray(q * DIM, (q + 1) * DIM);
      assert.deepEqual(updated.search(qv, 10, 100_000), bruteContents(v3, qv).slice(0, 10), `query ${q}`);
    }
    assert.deepEqual(warnings, []);
  });
});

test("files beside the store: two searches of one process that find the same changes fold them in once", async () => {
  await withTempDir(async (dir) => {
    const store = fakeStore(dir);
    await contentGraphFor(store, MODEL, rowsOf(POOL, DIM, range(0, 2000)), { threads: 1 });
    const v2 = rowsOf(POOL, DIM, range(0, 4000));
    const written: string[] = [];
    const o = { threads: 1, onStage: (s: string) => void (s === "record-written" && written.push(s)) };
    const [a, b] = await Promise.all([contentGraphFor(store, MODEL, v2, o), contentGraphFor(store, MODEL, v2, o)]);
    assert.equal(written.length, 1, "one new generation");
    assert.deepEqual([a.changes(), b.changes()], [{ pending: 0, gone: 0, held: 4000 }, { pending: 0, gone: 0, held: 4000 }]);
  });
});

test("files beside the store: a damaged, missing or foreign index is rebuilt, never used", async () => {
  await withTempDir(async (dir) => {
    const store = fakeStore(dir);
    const rows = rowsOf(POOL, DIM, range(0, 2000));
    const warnings: string[] = [];
    const o = { threads: 1, onWarning: (m: string) => warnings.push(m) };
    await contentGraphFor(store, MODEL, rows, o);
    const base = annFilesBase(store, MODEL);
    const r = await record(dir);
    const damage = [
      async () => truncate(`${base}.${String(r["generation"])}.usearch`, 100),
      async () => writeFile(`${base}.${String(r["generation"])}.covered.json`, '["h1"]'),
      async () => writeFile(`${base}.hnsw.json`, "{ not json"),
    ];
    for (const [i, harm] of damage.entries()) {
      await harm();
      warnings.length = 0;
      const graph = await contentGraphFor(store, MODEL, rows, o);
      assert.equal(warnings.length, 1, `case ${i}: ${warnings.join("; ")}`);
      assert.equal(graph.ann.size, 2000);
      const query = QUERIES.subarray(0, DIM);
      assert.deepEqual(graph.search(query, 10, 10_000), bruteContents(rows, query).slice(0, 10), `case ${i}`);
      Object.assign(r, await record(dir));
    }
  });
  assert.equal(parseCovered('["a", null, "b"]', 3, 2)?.length, 3);
  assert.equal(parseCovered('["a", null, "b"]', 3, 3), undefined);
  assert.equal(parseCovered('["a", 5]', 2, 1), undefined);
  assert.equal(parseAnnRecord('{"format":"clip-ood-hnsw/1"}', MODEL), undefined);
});

/** Runs the update child until it reports `stage`, then kills it with SIGKILL. */
function killAt(storeFile: string, stage: string): Promise<{ reached: boolean; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "test", "support", "ann-child.ts"), storeFile, stage], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let reached = false;
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (!reached && out.includes(`stage ${stage}`)) {
        reached = true;
        child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", () => resolve({ reached, out }));
  });
}

test("SIGKILL at each step of an incremental update: the next search is exactly right", async () => {
  for (const stage of ["loaded", "changed", "index-written", "covered-written", "record-written", "old-removed"]) {
    await withTempDir(async (dir) => {
      const storeFile = path.join(dir, "s.sqlite");
      const store = await openEmbeddingStore(storeFile);
      try {
        // A store with a graph, then 1,500 rows added and 300 removed: an update past the limits.
        await store.putBatch(annChildRows(0, 3000));
        await contentGraphFor(store, ANN_CHILD_MODEL, await store.embeddingsFor(ANN_CHILD_MODEL), { threads: 1 });
        await store.putBatch(annChildRows(3000, 4500));
        await store.forgetPaths(annChildRows(0, 300).map((r) => r.path));
        const run = await killAt(storeFile, stage);
        assert.ok(run.reached, `${stage}: the child never reached it:\n${run.out}`);
        const rows = await store.embeddingsFor(ANN_CHILD_MODEL);
        const warnings: string[] = [];
        const graph = await contentGraphFor(store, ANN_CHILD_MODEL, rows, { threads: 1, onWarning: (m) => warnings.push(m) });
        assert.deepEqual(warnings, [], stage);
        assert.equal(graph.contents, 4200);
        for (let q = 0; q < 8; q++) {
          const query = rows.data.subarray(q * 500 * rows.dim, (q * 500 + 1) * rows.dim);
          assert.deepEqual(graph.search(query, 10, 100_000), bruteContents(rows, query).slice(0, 10), `${stage}: query ${q}`);
        }
        // Whatever generation survived, the record names files that are there.
        const r = JSON.parse(await readFile(`${annFilesBase(store, ANN_CHILD_MODEL)}.hnsw.json`, "utf8")) as { generation: string };
        assert.ok(readdirSync(dir).some((f) => f.endsWith(`${r.generation}.usearch`)), stage);
      } finally {
        await store.close();
      }
    });
  }
});
