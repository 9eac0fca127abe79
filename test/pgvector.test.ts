/**
 * The PostgreSQL store's pgvector path. Debian 12 packages no pgvector, so it runs on PGlite (Postgres
 * compiled to WASM, with pgvector 0.8 as an extension package) behind its wire-protocol socket server:
 * the store talks to it through node-postgres exactly as to a real server. PGlite has one backend, so
 * the store's pool is kept at one connection (see the helper below).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import pg from "pg";
import { mulberry32 } from "../src/maths/random.js";
import { openEmbeddingStore } from "../src/store/open.js";
import { PostgresStore } from "../src/store/postgres-store.js";
import type { StoredRow } from "../src/store/store.js";

let db: PGlite;
let server: PGLiteSocketServer;
let url: string;
let dir: string;

before(async () => {
  db = await PGlite.create({ extensions: { vector } });
  // More slots than the store's one connection: a connection the pool drops after an error is freed late.
  server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 3 });
  await server.start();
  url = `postgres://postgres@127.0.0.1:${server.getServerConn().split(":").pop()}/postgres`;
  dir = mkdtempSync(path.join(os.tmpdir(), "clip-ood-pgvector-"));
});

after(async () => {
  await server?.stop();
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Seeded random unit vectors (Gaussian components, normalised). */
function unitVectors(n: number, dim: number, seed: number): Float32Array[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const v = Float32Array.from({ length: dim }, () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}

/** One row per vector, each its own content (hash) and path. */
function rows(vectors: Float32Array[], modelKey: string, name: string, folder: (i: number) => string): StoredRow[] {
  return vectors.map((embedding, i) => ({ path: `${folder(i)}/${name}-${i}.jpg`, size: 1, mtimeMs: 1, hash: `${name}-${i}`, modelKey, embedding }));
}

/** Exact cosine ranking computed here in doubles: the reference for the database's HNSW answers. */
function exactTop(stored: StoredRow[], q: Float32Array, k: number): { path: string; score: number }[] {
  return stored
    .map((r) => ({ path: r.path, score: r.embedding.reduce((s, x, j) => s + x * (q[j] as number), 0) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}

const open = () => openEmbeddingStore(url, { cacheDir: dir, poolSize: 1 });

test("pgvector: rows stored before the extension are filled in, then an HNSW index per model answers like exact search", async () => {
  const older = rows(unitVectors(100, 16, 1), "clip-a", "older", (i) => (i % 2 ? "/set/a" : "/set/b"));
  const newer = rows(unitVectors(200, 16, 2), "clip-a", "newer", (i) => (i % 2 ? "/set/a/more" : "/set/ab"));
  const other = rows(unitVectors(50, 8, 3), "clip-b", "other", () => "/set/a");

  // A store opened without pgvector keeps only the float32 bytes.
  const plain = await PostgresStore.open(url, { localDir: dir, poolSize: 1, vector: false });
  assert.equal(plain.nearest, undefined);
  await plain.putBatch(older);
  await plain.close();

  const store = await open();
  try {
    assert.match((await store.stats()).search, /^pgvector 0\.\d+\.\d+: an HNSW index \(cosine\)/);
    await store.putBatch([...newer, ...other]);
    const all = [...older, ...newer];
    const nearest = store.nearest!.bind(store);
    let found = 0;
    for (const q of unitVectors(20, 16, 4)) {
      const want = exactTop(all, q, 10);
      const got = await nearest("clip-a", q, 10);
      assert.equal(got.length, 10);
      const exact = new Map(all.map((r) => [r.path, r.embedding.reduce((s, x, j) => s + x * (q[j] as number), 0)]));
      for (let i = 0; i < got.length; i++) {
        assert.ok(Math.abs(got[i]!.score - exact.get(got[i]!.path)!) < 1e-5, "scores are cosines");
        if (i > 0) assert.ok(got[i - 1]!.score >= got[i]!.score - 1e-7, "best first");
      }
      found += got.filter((h) => want.some((w) => w.path === h.path)).length;
    }
    // 300 points in 16 dimensions with a candidate list of 40: the graph search is all but exact.
    assert.ok(found / 200 >= 0.95, `recall@10 ${found / 200}`);

    // `under` keeps folder boundaries (/set/ab is not under /set/a), and model keys do not mix.
    const q = unitVectors(1, 16, 5)[0]!;
    const under = await nearest("clip-a", q, 500, { under: "/set/a" });
    assert.equal(under.length, 150, "50 older and 100 newer rows lie under /set/a");
    assert.ok(under.every((h) => h.path.startsWith("/set/a/")), "only paths under /set/a");
    const b = await nearest("clip-b", unitVectors(1, 8, 6)[0]!, 100);
    assert.deepEqual(b.map((h) => h.path).sort(), other.map((r) => r.path).sort());
    // The indexed scope filters the index's candidates: a third of the rows, and more asked for than
    // the filtered candidates hold, so the exact search behind it answers, with the exact ranking.
    await store.addIndexedRoots("clip-a", [{ path: "/set/ab", folder: true }]);
    const scope = newer.filter((r) => r.path.startsWith("/set/ab/"));
    const scoped = await nearest("clip-a", q, 90, { indexed: true });
    assert.deepEqual(scoped.map((h) => h.path), exactTop(scope, q, 90).map((h) => h.path));
    assert.equal((await nearest("clip-a", q, 500, { indexed: true })).length, scope.length, "all of the scope, and no more");
  } finally {
    await store.close();
  }

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const indexes = await client.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE schemaname = 'clip_ood' AND indexname LIKE 'embeddings_hnsw_%' ORDER BY indexdef");
    assert.equal(indexes.rows.length, 2, "one HNSW index per model key");
    assert.match(indexes.rows[0]!.indexdef, /USING hnsw .*vector_cosine_ops/);
    const missing = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM clip_ood.embeddings WHERE vec IS NULL");
    assert.equal(missing.rows[0]!.n, 0, "the rows stored before pgvector were filled in");
  } finally {
    await client.end();
  }
});

test("pgvector: search ranks a text query's image first through the database, and drops files deleted since", async () => {
  const { makeImages, makeModel } = await import("./support/model.js");
  const { ClipModel, embedWithStore, search, storeModelKey } = await import("../src/index.js");
  const { rm } = await import("node:fs/promises");
  const images = await makeImages(["red", "green", "blue", "yellow"].map((colour) => ({ colour, texture: "plain" as const })), 91);
  const model = await ClipModel.load({ model: await makeModel(), cacheDir: dir, threads: 1 });
  const store = await open();
  try {
    for await (const r of embedWithStore(model, store, images.map((i) => i.file))) assert.ok(r.embedding, r.input);
    await store.addIndexedRoots(await storeModelKey(model), [{ path: path.dirname(images[0]!.file), folder: true }]);
    for (const img of images) {
      const [best] = await search(model, store, { text: [img.colour] }, { top: 1 });
      assert.equal(best?.input, img.file, img.colour);
    }
    await rm(images[0]!.file);
    const hits = await search(model, store, { text: [images[0]!.colour] }, { top: 4 });
    assert.deepEqual(hits.map((h) => h.input).sort(), images.slice(1).map((i) => i.file).sort(), "the deleted file drops out, the others fill in");
  } finally {
    await store.close();
    await model.close();
  }
});
