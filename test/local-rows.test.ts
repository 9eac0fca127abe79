/**
 * The copies of a store's rows kept between searches (src/store/local-rows.ts, row-copies.ts), for both
 * back ends: the copy file's format, what a refresh reads, merging changed rows and the scope filter;
 * and, against a real SQLite file and a real PostgreSQL server (without pgvector), that a copy never
 * outlives a change made through another connection or process, that a damaged copy file or another
 * store put in the place of the one copied is never trusted, and that an SQLite store of an older schema
 * is migrated and read right.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { readFile, readdir, rename, rm, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import { compareCodePoints, encodeLocalRows, mergeRows, planRefresh, rowsInScope } from "../src/store/local-rows.js";
import type { LocalRows } from "../src/store/local-rows.js";
import { PostgresStore } from "../src/store/postgres-store.js";
import { readCopyFile } from "../src/store/row-copies.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { STORE_SCHEMA_VERSION } from "../src/store/store.js";
import type { EmbeddingStore, RowScope, StoredRow, StoreRows } from "../src/store/store.js";
import { writeOldStore } from "./support/old-store.js";
import { skipUnlessPostgres, startPostgres } from "./support/postgres.js";
import type { PostgresServer } from "./support/postgres.js";
import { ROWS_CHILD_DIM, runRowsChild } from "./support/rows-child.js";
import { CRASH_MODEL, crashRow } from "./support/store-child.js";

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
  const d = mkdtempSync(path.join(os.tmpdir(), "clip-ood-rows-"));
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

test("a copy file reads back what was written, in pieces of any size; a truncated, padded, garbled or foreign one reads as nothing", async () => {
  const dir = tempDir();
  const file = path.join(dir, "copy");
  const copy: LocalRows = { ...rowsOf([["/a/1.jpg", "h1", [1, 2, 3]], ["/a/é.jpg", "h2", [4, 5, 6]], ["/b", "h3", [7, 8, 9]]]), storeId: "s", stamp: 7, modelKey: "m#1" };
  const whole = (c: LocalRows | undefined) => c && { ...plain(c), storeId: c.storeId, stamp: c.stamp, modelKey: c.modelKey };
  // 36 bytes of rows: in one piece, and in pieces of 8 (a row split across two) both ways.
  const pieces = encodeLocalRows(copy, 8);
  assert.deepEqual(pieces.slice(3).map((p) => p.length), [8, 8, 8, 8, 4]);
  await writeFile(file, pieces);
  const bytes = await readFile(file);
  assert.deepEqual(bytes, Buffer.concat(encodeLocalRows(copy)));
  assert.deepEqual(whole(await readCopyFile(file, "m#1")), whole(copy));
  assert.deepEqual(whole(await readCopyFile(file, "m#1", 8)), whole(copy));
  assert.equal(await readCopyFile(file, "m#2"), undefined, "another model's");
  const nothing = async (b: Buffer, what: string) => {
    await writeFile(file, b);
    assert.equal(await readCopyFile(file, "m#1"), undefined, what);
  };
  await nothing(bytes.subarray(0, bytes.length - 4), "truncated");
  await nothing(Buffer.concat([bytes, Buffer.alloc(4)]), "padded");
  const listsAt = bytes.indexOf(10) + 1;
  await nothing(Buffer.concat([bytes.subarray(0, listsAt), Buffer.from("[garbled"), bytes.subarray(listsAt + 8)]), "garbled lists");
  await nothing(Buffer.from("not a copy\n"), "not a copy");
  await nothing(Buffer.alloc(0), "empty");
  assert.equal(await readCopyFile(path.join(dir, "missing"), "m#1"), undefined);
});

test("paths compare in UTF-8 byte order, as PostgreSQL's COLLATE \"C\" and SQLite's BINARY sort them", () => {
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

test("a refresh reads nothing for a current copy, the changes for an older one, every row otherwise", () => {
  const now = { storeId: "s", stamp: 9, lastDelete: 5 };
  assert.deepEqual(planRefresh({ storeId: "s", stamp: 9 }, now), { kind: "current" });
  assert.deepEqual(planRefresh({ storeId: "s", stamp: 7 }, now), { kind: "since", stamp: 7 });
  assert.deepEqual(planRefresh({ storeId: "s", stamp: 5 }, now), { kind: "since", stamp: 5 }, "made at the removal's stamp: it has it");
  assert.deepEqual(planRefresh({ storeId: "s", stamp: 4 }, now), { kind: "whole" }, "older than a removal");
  assert.deepEqual(planRefresh({ storeId: "s", stamp: 10 }, now), { kind: "whole" }, "newer than the store: a file restored from a backup");
  assert.deepEqual(planRefresh({ storeId: "t", stamp: 9 }, now), { kind: "whole" }, "another store's");
  assert.deepEqual(planRefresh(undefined, now), { kind: "whole" });
});

// ---------------------------------------------------------------------------------------------------------
// Against a real SQLite file and a real PostgreSQL (without pgvector)

const KEY = "model#1";

function row(p: string, hash: string, ...embedding: number[]): StoredRow {
  return { path: p, size: 1, mtimeMs: 1, hash, modelKey: KEY, embedding: Float32Array.from(embedding) };
}

/** One store under test: where it is, and how a process opens it. */
interface Rig {
  location: string;
  /**
   * A connection of its own, as another process has. With `cache`, a PostgreSQL store keeps its copy
   * files there (an SQLite store keeps them beside its file); `localCopy: false` reads the store itself.
   */
  open(opts?: { cache?: string; localCopy?: boolean }): Promise<EmbeddingStore>;
  /** The copy files, where `cache` (PostgreSQL) or the store's folder (SQLite) holds them. */
  copyFiles(cache: string): Promise<string[]>;
}

const rigs: { name: string; skip: string | false; make(name: string): Promise<Rig> }[] = [
  {
    name: "sqlite",
    skip: false,
    async make() {
      const file = path.join(tempDir(), "store.sqlite");
      return {
        location: file,
        open: async (o = {}) => SqliteStore.open(file, { localCopy: o.localCopy ?? true }),
        copyFiles: () => copyFilesIn(path.dirname(file)),
      };
    },
  },
  {
    name: "postgres",
    skip: skipUnlessPostgres,
    async make(name) {
      const url = await server!.createDatabase(name);
      return {
        location: url,
        open: (o = {}) => PostgresStore.open(url, { localDir: o.cache ?? tempDir(), vector: false, localCopy: o.localCopy ?? true }),
        copyFiles: copyFilesIn,
      };
    },
  },
];

async function copyFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.includes(".rows-") && !f.endsWith(".lock") && !f.endsWith(".part")).map((f) => path.join(dir, f));
}

/** Registers the test once per back end; `name` also names its PostgreSQL database. */
function rigTest(title: string, name: string, fn: (rig: Rig) => Promise<void>): void {
  for (const r of rigs) test(`${r.name}: ${title}`, { skip: r.skip }, async () => fn(await r.make(name)));
}

rigTest("a search's rows follow every change made through another connection, in every scope", "follow", async (rig) => {
  const files = tempDir();
  const p = (name: string) => path.join(files, name);
  // Two machines (each its own cache folder) and a reader without a copy, which reads the store itself.
  const reader = await rig.open();
  const writer = await rig.open();
  const truth = await rig.open({ localCopy: false });
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
    // Another model's rows, and a root added, change nothing of this model's but the default scope.
    await writer.putBatch([{ ...row(p("out/c.jpg"), "hc", 9, 9, 9), modelKey: "other" }]);
    await writer.addIndexedRoots(KEY, [{ path: p("out"), folder: true }]);
    await same("after another model's rows and a new root");
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

rigTest("a copy file is used while the stamp stands; a truncated one is read again and rewritten", "files", async (rig) => {
  const cache = tempDir();
  const first = await rig.open({ cache });
  const expected = [row("/x/1.jpg", "h1", 1, 2, 3), row("/x/2.jpg", "h2", 4, 5, 6)];
  try {
    await first.putBatch(expected);
    await first.embeddingsFor(KEY);
  } finally {
    await first.close();
  }
  const [file] = await rig.copyFiles(cache);
  assert.ok(file, "the copy is saved");
  const bytes = await readFile(file);
  const whole = bytes.length;

  // Another process with the same files reads the copy file, not the store: a value changed in the
  // file (same size) shows, which it would not if the rows were read again.
  const marked = Buffer.from(bytes);
  marked.writeFloatLE(42, whole - 4);
  await writeFile(file, marked);
  const second = await rig.open({ cache });
  try {
    assert.equal((await second.embeddingsFor(KEY)).data.at(-1), 42);
  } finally {
    await second.close();
  }

  // What a writer killed mid-write leaves: removed by the next writer of the file.
  const part = `${file}.4194999.part`;
  await writeFile(part, bytes.subarray(0, 100));
  for (const harm of [() => truncate(file, whole - 8), () => writeFile(file, Buffer.concat([bytes.subarray(0, 40), Buffer.from("garbled"), bytes.subarray(47)]))]) {
    await harm();
    const third = await rig.open({ cache });
    try {
      assert.deepEqual(plain(await third.embeddingsFor(KEY)), plain(rowsOf([["/x/1.jpg", "h1", [1, 2, 3]], ["/x/2.jpg", "h2", [4, 5, 6]]])));
    } finally {
      await third.close();
    }
    assert.deepEqual(await readFile(file), bytes, "the damaged file is replaced by a whole one");
    assert.equal(existsSync(part), false, "a killed writer's part file is removed");
  }
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

test("sqlite: a copy of a store file that another store file replaced is not trusted", async () => {
  const dir = tempDir();
  const file = path.join(dir, "store.sqlite");
  const store = SqliteStore.open(file);
  try {
    await store.putBatch([row("/old.jpg", "old", 1, 0)]);
    assert.deepEqual((await store.embeddingsFor(KEY)).paths, ["/old.jpg"]);
  } finally {
    await store.close();
  }
  assert.equal((await copyFilesIn(dir)).length, 1);
  // Another store, written as many times (the same stamp) with other rows, moved into its place.
  const other = path.join(tempDir(), "other.sqlite");
  const replacement = SqliteStore.open(other);
  await replacement.putBatch([row("/new.jpg", "new", 0, 1)]);
  await replacement.close();
  for (const suffix of ["-wal", "-shm"]) await rm(file + suffix, { force: true });
  await rename(other, file);
  const reopened = SqliteStore.open(file);
  try {
    assert.deepEqual(plain(await reopened.embeddingsFor(KEY)), plain(rowsOf([["/new.jpg", "new", [0, 1]]])));
  } finally {
    await reopened.close();
  }
});

test("sqlite: rows written by other processes, several at once, reach a copy refreshed while they write", async () => {
  const dir = tempDir();
  const file = path.join(dir, "store.sqlite");
  const reader = SqliteStore.open(file);
  const truth = SqliteStore.open(file, { localCopy: false });
  try {
    await reader.putBatch([crashRow(0, ROWS_CHILD_DIM)]);
    await reader.embeddingsFor(CRASH_MODEL);
    // Two writers committing 40 batches each, interleaved, while this process keeps refreshing its copy.
    let writing = true;
    const writers = Promise.all([runRowsChild(file, [{ put: [1, 201, 5] }]), runRowsChild(file, [{ put: [201, 401, 5] }])]).finally(() => (writing = false));
    let refreshes = 0;
    while (writing) {
      await reader.embeddingsFor(CRASH_MODEL);
      refreshes++;
      await new Promise((r) => setTimeout(r, 5));
    }
    await writers;
    assert.ok(refreshes > 1, `refreshed ${refreshes} times`);
    assert.deepEqual(plain(await reader.embeddingsFor(CRASH_MODEL)), plain(await truth.embeddingsFor(CRASH_MODEL)));
    assert.equal((await reader.embeddingsFor(CRASH_MODEL)).paths.length, 401);
    // Each transaction took its own stamp: the first batch, then 80 batches of new rows.
    const raw = new Database(file, { readonly: true });
    assert.equal(raw.prepare("SELECT value FROM meta WHERE key = 'stamp'").pluck().get(), "81");
    assert.equal(raw.prepare("SELECT count(DISTINCT stamp) FROM paths").pluck().get(), 81);
    raw.close();
    // A removal by another process: the copy is read again whole.
    await runRowsChild(file, [{ forget: [crashRow(7, ROWS_CHILD_DIM).path] }]);
    assert.deepEqual(plain(await reader.embeddingsFor(CRASH_MODEL)), plain(await truth.embeddingsFor(CRASH_MODEL)));
    assert.equal((await reader.embeddingsFor(CRASH_MODEL)).paths.length, 400);
  } finally {
    await Promise.all([reader.close(), truth.close()]);
  }
});

test("sqlite: a store of schema 2 is migrated on opening and its copies follow changes; read-only, it is read as it is", async () => {
  const dir = tempDir();
  const file = path.join(dir, "v2.sqlite");
  const rows = [row("/p/b.jpg", "hb", 0, 1), row("/p/a.jpg", "ha", 1, 0), row("/q/c.jpg", "ha", 1, 0)];
  writeOldStore(file, 2, rows);
  const expected = rowsOf([["/p/a.jpg", "ha", [1, 0]], ["/p/b.jpg", "hb", [0, 1]], ["/q/c.jpg", "ha", [1, 0]]]);
  const readonly = SqliteStore.open(file, { readonly: true });
  try {
    assert.deepEqual(plain(await readonly.embeddingsFor(KEY)), plain(expected));
    assert.deepEqual((await readonly.embeddingsFor(KEY, { under: "/q" })).paths, ["/q/c.jpg"]);
  } finally {
    await readonly.close();
  }
  assert.deepEqual(await copyFilesIn(dir), [], "no stamp, no copy");
  const raw = () => new Database(file, { readonly: true });
  const db = raw();
  assert.equal(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get(), "2", "read-only: not migrated");
  db.close();

  const store = SqliteStore.open(file);
  const writer = SqliteStore.open(file);
  try {
    const migrated = raw();
    assert.equal(migrated.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get(), String(STORE_SCHEMA_VERSION));
    assert.match(String(migrated.prepare("SELECT value FROM meta WHERE key = 'store_id'").pluck().get()), /^[0-9a-f]{32}$/);
    migrated.close();
    await store.addIndexedRoots(KEY, [{ path: "/p", folder: true }]);
    assert.deepEqual(plain(await store.embeddingsFor(KEY)), plain(expected));
    assert.deepEqual((await store.embeddingsFor(KEY, { indexed: true })).paths, ["/p/a.jpg", "/p/b.jpg"]);
    // The rows from before the migration carry stamp 0; those written after are merged in.
    await writer.putBatch([row("/p/c.jpg", "hc", 1, 1)]);
    await writer.recordPaths([{ path: "/q/d.jpg", size: 1, mtimeMs: 1, hash: "hb" }]);
    assert.deepEqual(
      plain(await store.embeddingsFor(KEY)),
      plain(rowsOf([["/p/a.jpg", "ha", [1, 0]], ["/p/b.jpg", "hb", [0, 1]], ["/p/c.jpg", "hc", [1, 1]], ["/q/c.jpg", "ha", [1, 0]], ["/q/d.jpg", "hb", [0, 1]]])),
    );
    assert.equal((await copyFilesIn(dir)).length, 1);
  } finally {
    await Promise.all([store.close(), writer.close()]);
  }
});

test("sqlite: rows that a clip-ood of the previous schema, open since before the migration, writes without a stamp are not missed", async () => {
  const file = path.join(tempDir(), "store.sqlite");
  const reader = SqliteStore.open(file);
  const truth = SqliteStore.open(file, { localCopy: false });
  // Its statements, as clip-ood wrote them before the change stamp (prepared before the migration, they
  // go on running after it).
  const old = new Database(file);
  const upsert = old.prepare(
    `INSERT INTO paths (path, size, mtime_ms, hash) VALUES (?, ?, ?, ?)
     ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, hash = excluded.hash`,
  );
  const embed = old.prepare("INSERT OR IGNORE INTO embeddings (model_key, hash, dim, vector) VALUES (?, ?, ?, ?)");
  const oldPut = (p: string, hash: string, ...v: number[]) =>
    old.transaction(() => {
      upsert.run(p, 1, 1, hash);
      embed.run(KEY, hash, v.length, Buffer.from(Float32Array.from(v).buffer));
    })();
  const same = async (step: string) => assert.deepEqual(plain(await reader.embeddingsFor(KEY)), plain(await truth.embeddingsFor(KEY)), step);
  try {
    await reader.putBatch([row("/a.jpg", "ha", 1, 0), row("/b.jpg", "hb", 0, 1)]);
    await same("first read");
    oldPut("/c.jpg", "hc", 1, 1);
    await same("after a new path and embedding");
    assert.equal((await reader.embeddingsFor(KEY)).paths.length, 3);
    oldPut("/a.jpg", "hb", 0, 1);
    await same("after a path's content changed");
    // Written again unchanged (every detect over known images): no reason to read everything again.
    const stamp = () => old.prepare("SELECT value FROM meta WHERE key IN ('stamp', 'last_delete') ORDER BY key").pluck().all();
    const before = stamp();
    oldPut("/a.jpg", "hb", 0, 1);
    assert.deepEqual(stamp(), before);
    // This version's writes, a batch writing one path twice included, are not taken for such writes.
    await reader.putBatch([row("/d.jpg", "hd", 2, 2), row("/d.jpg", "he", 3, 3)]);
    assert.deepEqual(stamp(), [before[0], String(Number(before[1]) + 1)], "last_delete, then stamp: only the stamp moved");
    await same("after this version's batch");
  } finally {
    old.close();
    await Promise.all([reader.close(), truth.close()]);
  }
});

test("sqlite: writing rows that are already there, as every detect over known images does, leaves the stamp and the copies alone", async () => {
  const file = path.join(tempDir(), "store.sqlite");
  const store = SqliteStore.open(file);
  const stamp = () => {
    const db = new Database(file, { readonly: true });
    const v = db.prepare("SELECT value FROM meta WHERE key = 'stamp'").pluck().get();
    db.close();
    return v;
  };
  try {
    const rows = [row("/a.jpg", "ha", 1, 0), row("/b.jpg", "hb", 0, 1)];
    await store.putBatch(rows);
    assert.equal(stamp(), "1");
    await store.putBatch(rows);
    await store.recordPaths(rows);
    await store.forgetPaths(["/none.jpg"]);
    await store.addIndexedRoots(KEY, [{ path: "/", folder: true }]);
    assert.equal(stamp(), "1");
    await store.recordPaths([{ ...rows[0]!, mtimeMs: 2 }]);
    assert.equal(stamp(), "2", "a changed mtime is a change");
  } finally {
    await store.close();
  }
});
