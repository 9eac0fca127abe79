/**
 * The PostgreSQL store's local copy of its rows (without pgvector): the copy file's format, merging
 * changed rows, the scope filter, and against a real server that a copy never outlives a change made
 * through another connection, and that a damaged copy file is rebuilt.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile, readdir, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import pg from "pg";
import { compareCodePoints, decodeLocalRows, encodeLocalRows, mergeRows, rowsInScope } from "../src/store/local-rows.js";
import type { LocalRows } from "../src/store/local-rows.js";
import { PostgresStore } from "../src/store/postgres-store.js";
import type { RowScope, StoredRow, StoreRows } from "../src/store/store.js";
import { skipUnlessPostgres, startPostgres } from "./support/postgres.js";
import type { PostgresServer } from "./support/postgres.js";

let server: PostgresServer | undefined;
const dirs: string[] = [];
before(async () => {
  if (!skipUnlessPostgres) server = await startPostgres();
});
after(async () => {
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "clip-ood-pgrows-"));
  dirs.push(d);
  return d;
}

function rowsOf(entries: [string, string, number[]][]): StoreRows {
  const dim = entries[0]?.[2].length ?? 0;
  return { paths: entries.map((e) => e[0]), hashes: entries.map((e) => e[1]), dim, data: Float32Array.from(entries.flatMap((e) => e[2])) };
}

function plain(rows: StoreRows): { paths: string[]; hashes: string[]; dim: number; data: number[] } {
  return { paths: [...rows.paths], hashes: [...rows.hashes], dim: rows.paths.length > 0 ? rows.dim : 0, data: Array.from(rows.data) };
}

// ---------------------------------------------------------------------------------------------------------
// Pure parts

test("a copy file decodes to what was encoded; a truncated, padded or foreign one decodes to nothing", () => {
  const copy: LocalRows = { ...rowsOf([["/a/1.jpg", "h1", [1, 2]], ["/a/é.jpg", "h2", [3, 4]]]), storeId: "s", stamp: 7, modelKey: "m#1" };
  const bytes = Buffer.concat(encodeLocalRows(copy));
  const back = decodeLocalRows(bytes);
  assert.ok(back);
  assert.deepEqual({ ...plain(back), storeId: back.storeId, stamp: back.stamp, modelKey: back.modelKey }, { ...plain(copy), storeId: "s", stamp: 7, modelKey: "m#1" });
  // Not 4-byte aligned in memory: still read.
  const shifted = Buffer.concat([Buffer.alloc(1), bytes]).subarray(1);
  assert.deepEqual(plain(decodeLocalRows(shifted)!), plain(copy));
  assert.equal(decodeLocalRows(bytes.subarray(0, bytes.length - 4)), undefined);
  assert.equal(decodeLocalRows(Buffer.concat([bytes, Buffer.alloc(4)])), undefined);
  assert.equal(decodeLocalRows(Buffer.from("not a copy\n")), undefined);
  assert.equal(decodeLocalRows(Buffer.alloc(0)), undefined);
});

test("paths compare in UTF-8 byte order, as PostgreSQL's COLLATE \"C\" sorts them", () => {
  const paths = ["/a", "/a/b", "/a\uffff", "/a\u{1f600}", "/a\ue000", "/a/\u00e9", "/b", "/a-", "/"];
  const bytes = [...paths].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual([...paths].sort(compareCodePoints), bytes);
});

test("merging changed rows replaces and removes rows by path and keeps path order", () => {
  const base = rowsOf([["/a", "h1", [1, 0]], ["/c", "h3", [3, 0]], ["/e", "h5", [5, 0]]]);
  const added = rowsOf([["/b", "h2", [2, 0]], ["/c", "h9", [9, 0]], ["/f", "h6", [6, 0]]]);
  const merged = mergeRows(base, new Set(["/b", "/c", "/e", "/f"]), added);
  assert.deepEqual(plain(merged), plain(rowsOf([["/a", "h1", [1, 0]], ["/b", "h2", [2, 0]], ["/c", "h9", [9, 0]], ["/f", "h6", [6, 0]]])));
  assert.deepEqual(plain(mergeRows(rowsOf([]), new Set(["/x"]), rowsOf([["/x", "h", [1, 2, 3]]]))), plain(rowsOf([["/x", "h", [1, 2, 3]]])));
});

test("the scope filter keeps what the database's scope condition keeps", () => {
  const rows = rowsOf([["/data/a.jpg", "1", [1]], ["/data/sub/b.jpg", "2", [2]], ["/data2/c.jpg", "3", [3]], ["/one.jpg", "4", [4]], ["/data", "5", [5]]]);
  const roots = [{ path: "/data", folder: true }, { path: "/one.jpg", folder: false }];
  assert.deepEqual(rowsInScope(rows, { under: "/data" }, []).paths, ["/data/a.jpg", "/data/sub/b.jpg", "/data"]);
  assert.deepEqual(rowsInScope(rows, { indexed: true }, roots).paths, ["/data/a.jpg", "/data/sub/b.jpg", "/one.jpg", "/data"]);
  assert.deepEqual(Array.from(rowsInScope(rows, { indexed: true, under: "/data/sub" }, roots).data), [2]);
  assert.equal(rowsInScope(rows, {}, []), rows, "everything in scope: the rows themselves, not a copy");
});

// ---------------------------------------------------------------------------------------------------------
// Against a real PostgreSQL (without pgvector)

const KEY = "model#1";

function row(p: string, hash: string, ...embedding: number[]): StoredRow {
  return { path: p, size: 1, mtimeMs: 1, hash, modelKey: KEY, embedding: Float32Array.from(embedding) };
}

test("postgres: a search's rows follow every change made through another connection, in every scope", { skip: skipUnlessPostgres }, async () => {
  const url = await server!.createDatabase("follow");
  const files = tempDir();
  const p = (name: string) => path.join(files, name);
  // Two machines (each its own cache folder) and a reader without a copy, which reads the database itself.
  const reader = await PostgresStore.open(url, { localDir: tempDir(), vector: false });
  const writer = await PostgresStore.open(url, { localDir: tempDir(), vector: false });
  const truth = await PostgresStore.open(url, { localDir: tempDir(), vector: false, localCopy: false });
  try {
    await writer.putBatch([row(p("in/a.jpg"), "ha", 1, 0), row(p("in/b.jpg"), "hb", 0, 1), row(p("out/c.jpg"), "hc", 1, 1)]);
    await writer.addIndexedRoots(KEY, [{ path: p("in"), folder: true }]);
    const scopes: RowScope[] = [{}, { indexed: true }, { under: p("out") }];
    const same = async (step: string) => {
      for (const s of scopes) assert.deepEqual(plain(await reader.embeddingsFor(KEY, s)), plain(await truth.embeddingsFor(KEY, s)), `${step}, scope ${JSON.stringify(s)}`);
    };
    await same("first read");
    await writer.putBatch([row(p("in/a2.jpg"), "hd", 2, 2), row(p("z.jpg"), "hz", 3, 3)]);
    await same("after inserts");
    assert.ok((await reader.embeddingsFor(KEY)).paths.includes(p("z.jpg")));
    // A path recorded again with another content that this model has not embedded leaves its rows.
    await writer.recordPaths([{ path: p("in/b.jpg"), size: 2, mtimeMs: 2, hash: "new" }]);
    await same("after a path's content changed");
    assert.ok(!(await reader.embeddingsFor(KEY)).paths.includes(p("in/b.jpg")));
    // An embedding stored for a content whose path was recorded before brings its row.
    await writer.putBatch([row(p("in/b.jpg"), "new", 5, 5)]);
    await same("after the new content was embedded");
    await writer.forgetPaths([p("in/a.jpg")]);
    await same("after forget");
    assert.ok(!(await reader.embeddingsFor(KEY)).paths.includes(p("in/a.jpg")));
    // prune forgets paths of files gone from this machine: none of these exist.
    await writer.prune();
    await same("after prune");
    assert.equal((await reader.embeddingsFor(KEY)).paths.length, 0);
  } finally {
    await Promise.all([reader.close(), writer.close(), truth.close()]);
  }
});

test("postgres: a copy file is used while the stamp stands; a truncated one is read again and rewritten", { skip: skipUnlessPostgres }, async () => {
  const url = await server!.createDatabase("files");
  const cache = tempDir();
  const first = await PostgresStore.open(url, { localDir: cache, vector: false });
  const expected = [row("/x/1.jpg", "h1", 1, 2, 3), row("/x/2.jpg", "h2", 4, 5, 6)];
  try {
    await first.putBatch(expected);
    await first.embeddingsFor(KEY);
  } finally {
    await first.close();
  }
  const [name] = (await readdir(cache)).filter((f) => f.includes(".rows-") && !f.endsWith(".lock"));
  assert.ok(name, "the copy is saved in the cache folder");
  const file = path.join(cache, name);
  const bytes = await readFile(file);
  const whole = bytes.length;

  // Another process with the same cache folder reads the file, not the database: a value changed in
  // the file (same size) shows, which it would not if the rows were read again.
  const marked = Buffer.from(bytes);
  marked.writeFloatLE(42, whole - 4);
  await writeFile(file, marked);
  const second = await PostgresStore.open(url, { localDir: cache, vector: false });
  try {
    assert.equal((await second.embeddingsFor(KEY)).data.at(-1), 42);
  } finally {
    await second.close();
  }

  await truncate(file, whole - 8);
  const third = await PostgresStore.open(url, { localDir: cache, vector: false });
  try {
    assert.deepEqual(plain(await third.embeddingsFor(KEY)), plain(rowsOf([["/x/1.jpg", "h1", [1, 2, 3]], ["/x/2.jpg", "h2", [4, 5, 6]]])));
  } finally {
    await third.close();
  }
  assert.equal((await readFile(file)).length, whole, "the damaged file is replaced by a whole one");
});

test("postgres: a copy of a database dropped and created again under the same URL is not trusted", { skip: skipUnlessPostgres }, async () => {
  const url = await server!.createDatabase("again");
  const cache = tempDir();
  const before = await PostgresStore.open(url, { localDir: cache, vector: false });
  try {
    await before.putBatch([row("/old.jpg", "old", 1, 0)]);
    assert.deepEqual((await before.embeddingsFor(KEY)).paths, ["/old.jpg"]);
  } finally {
    await before.close();
  }
  const admin = new pg.Client({ connectionString: server!.url });
  await admin.connect();
  try {
    await admin.query("DROP DATABASE again");
    await admin.query("CREATE DATABASE again");
  } finally {
    await admin.end();
  }
  // The new database reaches the same stamp with other rows: only its id tells the copies apart.
  const after = await PostgresStore.open(url, { localDir: cache, vector: false });
  try {
    await after.putBatch([row("/new.jpg", "new", 0, 1)]);
    assert.deepEqual(plain(await after.embeddingsFor(KEY)), plain(rowsOf([["/new.jpg", "new", [0, 1]]])));
  } finally {
    await after.close();
  }
});
