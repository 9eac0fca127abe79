/**
 * The embedding store: incremental indexing (add, modify, move, copy, delete), crash safety under
 * SIGKILL, and the inputs it must refuse with a clear message.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { chmod, mkdir, readFile, rename, stat, unlink, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { TestContext } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import { ClipOodError } from "../src/errors.js";
import { hashFile } from "../src/store/hash.js";
import { openEmbeddingStore } from "../src/store/open.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { STORE_SCHEMA_VERSION, defaultStorePath } from "../src/store/store.js";
import type { EmbeddingStore, StoredRow } from "../src/store/store.js";
import { writeOldStore } from "./support/old-store.js";
import { CRASH_MODEL, crashHash, crashRow, crashVector } from "./support/store-child.js";
import { repoRoot } from "./support/shared.js";
import { skipUnlessPostgres, startPostgres } from "./support/postgres.js";
import type { PostgresServer } from "./support/postgres.js";

const dirs: string[] = [];
let server: PostgresServer | undefined;
before(async () => {
  if (!skipUnlessPostgres) server = await startPostgres();
});
after(async () => {
  await server?.stop();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

/**
 * The two back ends behind one interface. Each test directory gets its own store: a file in it, or a
 * fresh database on the test's PostgreSQL server (started from Debian's package, see support/postgres.ts).
 */
interface Backend {
  name: "sqlite" | "postgres";
  skip: string | false;
  location(dir: string): Promise<string>;
}
const databases = new Map<string, string>();
const BACKENDS: Backend[] = [
  { name: "sqlite", skip: false, location: async (dir) => path.join(dir, "store.sqlite") },
  {
    name: "postgres",
    skip: skipUnlessPostgres,
    async location(dir) {
      let url = databases.get(dir);
      if (!url) databases.set(dir, (url = await server!.createDatabase(`store_${databases.size + 1}`)));
      return url;
    },
  },
];

/** The stored bytes of the only embedding, read past the store's own code. */
async function rawVectorBytes(b: Backend, dir: string): Promise<Buffer> {
  if (b.name === "sqlite") {
    const raw = new Database(await b.location(dir), { readonly: true });
    const blob = raw.prepare("SELECT vector FROM embeddings").pluck().get() as Buffer;
    raw.close();
    return blob;
  }
  const client = new pg.Client({ connectionString: await b.location(dir) });
  await client.connect();
  try {
    return (await client.query<{ vector: Buffer }>("SELECT vector FROM clip_ood.embeddings")).rows[0]!.vector;
  } finally {
    await client.end();
  }
}

/** Registers the test once per back end. */
function backendTest(name: string, fn: (b: Backend, t: TestContext) => Promise<void>): void {
  for (const b of BACKENDS) test(`${b.name}: ${name}`, { skip: b.skip }, (t) => fn(b, t));
}

async function openIn(b: Backend, dir: string): Promise<EmbeddingStore> {
  return openEmbeddingStore(await b.location(dir), { cacheDir: dir });
}

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "clip-ood-store-"));
  dirs.push(d);
  return d;
}

function open(dir: string): SqliteStore {
  return SqliteStore.open(path.join(dir, "store.sqlite"));
}

function vec(...values: number[]): Float32Array {
  return Float32Array.from(values);
}

function row(p: string, hash: string, modelKey: string, embedding: Float32Array, size = 10, mtimeMs = 1000): StoredRow {
  return { path: p, size, mtimeMs, hash, modelKey, embedding };
}

function isInputError(pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ClipOodError, `expected a ClipOodError, got ${String(e)}`);
    assert.equal(e.code, "INPUT");
    assert.match(e.message, pattern);
    assert.ok(e.hint, "a hint says how to fix it");
    return true;
  };
}

/**
 * What the indexer does with the store (as src/store/cached.ts does): a path record whose size and
 * mtime match gives the hash without reading the file; otherwise the file is hashed, and an embedding of
 * that content is reused. Returns the files that had to be embedded and the files that had to be hashed.
 */
async function index(store: EmbeddingStore, files: string[], modelKey: string) {
  const embedded: string[] = [];
  const hashed: string[] = [];
  const rows: StoredRow[] = [];
  for (const f of files) {
    const s = await stat(f);
    let hash = await store.lookupPath(f, s.size, s.mtimeMs);
    if (hash === undefined) {
      hash = await hashFile(f);
      hashed.push(f);
    }
    let embedding = await store.getEmbedding(hash, modelKey);
    if (!embedding) {
      embedded.push(f);
      // A stand-in model: the first two bytes of the content and its length.
      const bytes = await readFile(f);
      embedding = vec(bytes[0] ?? 0, bytes[1] ?? 0, bytes.length);
    }
    rows.push(row(f, hash, modelKey, embedding, s.size, s.mtimeMs));
  }
  await store.putBatch(rows);
  return { embedded, hashed };
}

test("hashFile is SHA-256 of the content, streamed over chunk boundaries", async () => {
  const dir = tempDir();
  const abc = path.join(dir, "abc");
  await writeFile(abc, "abc");
  // FIPS 180-2, appendix B.1.
  assert.equal(await hashFile(abc), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const empty = path.join(dir, "empty");
  await writeFile(empty, "");
  // SHA-256 of the empty string (FIPS 180-4 test vectors).
  assert.equal(await hashFile(empty), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Larger than the 1 MiB read chunk; reference: node's hash over the whole buffer at once.
  const big = randomBytes(3 * (1 << 20) + 7);
  const bigFile = path.join(dir, "big");
  await writeFile(bigFile, big);
  assert.equal(await hashFile(bigFile), createHash("sha256").update(big).digest("hex"));
  await assert.rejects(hashFile(path.join(dir, "missing")), isInputError(/missing: cannot be read/));
});

test("defaultStorePath puts store.sqlite in the cache folder", async () => {
  assert.equal(defaultStorePath("/var/cache/clip-ood"), "/var/cache/clip-ood/store.sqlite");
});

test("a new store is empty, in WAL mode, and carries its schema version", async () => {
  const dir = tempDir();
  const file = path.join(dir, "nested", "deeper", "store.sqlite");
  const store = SqliteStore.open(file);
  assert.equal(store.file, file);
  const s = await store.stats();
  assert.deepEqual({ ...s, bytes: 0, search: "" }, { backend: "sqlite", location: file, search: "", bytes: 0, paths: 0, embeddings: 0, models: [] });
  assert.match(s.search, /exact, or for large collections an HNSW index \(usearch\) beside the store, updated in place.*; the rows from a copy beside the store, refreshed when they change/);
  assert.ok(s.bytes > 0);
  assert.deepEqual(await store.paths(), []);
  const none = await store.embeddingsFor("m");
  assert.deepEqual({ ...none, data: [...none.data] }, { paths: [], hashes: [], dim: 0, data: [] });
  await store.putBatch([]);
  await store.recordPaths([]);
  await store.forgetPaths([]);
  assert.deepEqual(await store.prune(), { paths: 0, embeddings: 0 });
  await store.close();
  const raw = new Database(file, { readonly: true });
  assert.equal(raw.pragma("journal_mode", { simple: true }), "wal");
  assert.equal(raw.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get(), String(STORE_SCHEMA_VERSION));
  raw.close();
});

backendTest("indexed roots: a folder covers the paths below it (on a separator boundary), a file only itself, per model key; --in narrows them", async (be) => {
  const dir = tempDir();
  const store = await openIn(be, dir);
  try {
    const paths = ["/p/a.jpg", "/p/sub/b.jpg", "/p-other/c.jpg", "/q/d.jpg", "/q/e.jpg", "/r/f.jpg"];
    await store.putBatch(paths.map((p, i) => row(p, `h${i}`, "m", vec(i + 1, 1))));
    await store.putBatch([row("/p/a.jpg", "h0", "other", vec(1, 1))]);
    const scoped = async (scope: { under?: string; indexed?: boolean }, key = "m") => (await store.embeddingsFor(key, scope)).paths;
    assert.deepEqual(await scoped({ indexed: true }), [], "nothing indexed yet");
    await store.addIndexedRoots("m", [
      { path: "/p", folder: true },
      { path: "/q/d.jpg", folder: false },
    ]);
    // Given again, and a nested root: no change.
    await store.addIndexedRoots("m", [{ path: "/p/sub", folder: true }, { path: "/p", folder: true }]);
    assert.deepEqual(await store.indexedRoots("m"), [
      { path: "/p", folder: true },
      { path: "/p/sub", folder: true },
      { path: "/q/d.jpg", folder: false },
    ]);
    assert.deepEqual(await store.indexedRoots("other"), []);
    assert.deepEqual(await scoped({ indexed: true }), ["/p/a.jpg", "/p/sub/b.jpg", "/q/d.jpg"]);
    const rows = await store.embeddingsFor("m", { indexed: true });
    assert.deepEqual([...rows.data], [1, 1, 2, 1, 4, 1], "each row's own vector");
    assert.deepEqual(await scoped({ indexed: true, under: "/p/sub" }), ["/p/sub/b.jpg"]);
    assert.deepEqual(await scoped({ indexed: true, under: "/r" }), []);
    assert.deepEqual(await scoped({ under: "/r" }), ["/r/f.jpg"]);
    assert.deepEqual(await scoped({}), paths.slice().sort());
    assert.deepEqual(await scoped({ indexed: true }, "other"), [], "roots are per model key");
  } finally {
    await store.close();
  }
});

test("sqlite: a schema-1 store is migrated to the current schema on opening (read-only: read as it is, with nothing indexed)", async () => {
  const dir = tempDir();
  const file = path.join(dir, "v1.sqlite");
  writeOldStore(file, 1, [row("/p/a.jpg", "h0", "m", vec(1, 0))]);
  const readonly = SqliteStore.open(file, { readonly: true });
  assert.deepEqual(await readonly.indexedRoots("m"), []);
  assert.deepEqual((await readonly.embeddingsFor("m", { indexed: true })).paths, []);
  assert.deepEqual((await readonly.embeddingsFor("m")).paths, ["/p/a.jpg"]);
  await readonly.close();
  const store = SqliteStore.open(file);
  await store.addIndexedRoots("m", [{ path: "/p", folder: true }]);
  assert.deepEqual((await store.embeddingsFor("m", { indexed: true })).paths, ["/p/a.jpg"]);
  await store.close();
  const raw = new Database(file, { readonly: true });
  assert.equal(raw.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get(), String(STORE_SCHEMA_VERSION));
  raw.close();
});

backendTest("embeddings round-trip exactly, as little-endian float32 BLOBs, across reopening", async (be) => {
  const dir = tempDir();
  const v = vec(1 / 3, -0, 1e-30, -123.456, 3.4e38);
  let store = await openIn(be, dir);
  await store.putBatch([row("/data/a.jpg", "h1", "m", v, 42, 1732860000123.25)]);
  await store.close();
  store = await openIn(be, dir);
  assert.deepEqual(await store.getEmbedding("h1", "m"), v);
  assert.equal(await store.getEmbedding("h1", "other-model"), undefined);
  assert.equal(await store.getEmbedding("h2", "m"), undefined);
  assert.equal(await store.lookupPath("/data/a.jpg", 42, 1732860000123.25), "h1");
  assert.equal(await store.lookupPath("/data/a.jpg", 43, 1732860000123.25), undefined, "size changed");
  assert.equal(await store.lookupPath("/data/a.jpg", 42, 1732860000123.5), undefined, "mtime changed");
  assert.equal(await store.lookupPath("/data/b.jpg", 42, 1732860000123.25), undefined, "unknown path");
  await store.close();
  // Reference encoding written independently with DataView.
  const expected = new Uint8Array(v.length * 4);
  const view = new DataView(expected.buffer);
  v.forEach((x, i) => view.setFloat32(i * 4, x, true));
  assert.deepEqual(new Uint8Array(await rawVectorBytes(be, dir)), expected);
});

backendTest("paths are stored absolute", async (be) => {
  const dir = tempDir();
  const store = await openIn(be, dir);
  await store.recordPaths([{ path: "relative/x.jpg", size: 1, mtimeMs: 2, hash: "h" }]);
  assert.deepEqual(
    (await store.paths()).map((r) => r.path),
    [path.resolve("relative/x.jpg")],
  );
  assert.equal(await store.lookupPath(path.resolve("relative/x.jpg"), 1, 2), "h");
  await store.close();
});

backendTest("incremental indexing: added, unchanged, modified, moved, copied and deleted files", async (be) => {
  const dir = tempDir();
  const images = path.join(dir, "images");
  await mkdir(images);
  const a = path.join(images, "a.jpg");
  const b = path.join(images, "b.jpg");
  await writeFile(a, "AAAA content");
  await writeFile(b, "BBBB content");
  const store = await openIn(be, dir);
  const key = "model#1";

  // Added files are hashed and embedded.
  let r = await index(store, [a, b], key);
  assert.deepEqual(r, { embedded: [a, b], hashed: [a, b] });

  // Unchanged files are neither hashed nor embedded.
  r = await index(store, [a, b], key);
  assert.deepEqual(r, { embedded: [], hashed: [] });

  // Modified (same size, new content and mtime): the path record no longer matches, so it is re-hashed and re-embedded.
  await writeFile(a, "AAAZ content");
  const later = new Date(Date.now() + 5000);
  await utimes(a, later, later);
  const sa = await stat(a);
  assert.equal(await store.lookupPath(a, sa.size, sa.mtimeMs), undefined);
  r = await index(store, [a, b], key);
  assert.deepEqual(r, { embedded: [a], hashed: [a] });
  assert.deepEqual(await store.getEmbedding(await hashFile(a), key), vec(65, 65, 12));

  // A touched file (mtime only) is re-hashed, but its content is known: no new embedding.
  await utimes(b, later, later);
  r = await index(store, [a, b], key);
  assert.deepEqual(r, { embedded: [], hashed: [b] });

  // Moved: the new path has no record, but hashing it finds the embedding of its content.
  const moved = path.join(images, "sub", "b-moved.jpg");
  await mkdir(path.dirname(moved));
  await rename(b, moved);
  const sm = await stat(moved);
  assert.equal(await store.lookupPath(moved, sm.size, sm.mtimeMs), undefined);
  assert.ok(await store.getEmbedding(await hashFile(moved), key), "the moved file's embedding is found by content");
  r = await index(store, [a, moved], key);
  assert.deepEqual(r, { embedded: [], hashed: [moved] });

  // Copied: a second path with the same content shares the one embedding.
  const copy = path.join(images, "a-copy.jpg");
  await writeFile(copy, await readFile(a));
  r = await index(store, [copy], key);
  assert.deepEqual(r, { embedded: [], hashed: [copy] });
  assert.equal((await store.stats()).embeddings, 3, "AAAA, AAAZ and BBBB: three contents, one embedding each");

  // The old path of the moved file is gone: prune drops it but keeps the embedding the new path uses.
  // The original AAAA content has no path left referring to it (a was modified, the copy is of AAAZ): dropped.
  assert.deepEqual(await store.prune(), { paths: 1, embeddings: 1 });
  assert.ok(await store.getEmbedding(await hashFile(moved), key));
  const all = await store.embeddingsFor(key);
  assert.deepEqual(all.paths, [copy, a, moved].sort());
  assert.equal(all.dim, 3);

  // Deleted: a path record whose file is gone is pruned, and so is an embedding that no path refers to.
  await unlink(moved);
  const pruned = await store.prune();
  assert.deepEqual(pruned, { paths: 1, embeddings: 1 }, "b's content is no longer referenced");
  assert.deepEqual(
    (await store.paths()).map((p) => p.path),
    [copy, a].sort(),
  );
  assert.equal((await store.stats()).embeddings, 1);
  await store.close();
});

backendTest("prune keeps records of files that changed but still exist; forgetPaths drops them explicitly", async (be) => {
  const dir = tempDir();
  const f = path.join(dir, "x.jpg");
  await writeFile(f, "x");
  const store = await openIn(be, dir);
  await store.putBatch([row(f, "old-hash", "m", vec(1), 999, 1)]);
  assert.deepEqual(await store.prune(), { paths: 0, embeddings: 0 });
  assert.equal((await store.paths()).length, 1);
  await store.forgetPaths([f]);
  assert.equal((await store.paths()).length, 0);
  assert.deepEqual(await store.prune(), { paths: 0, embeddings: 1 });
  await store.close();
});

backendTest("embeddingsFor: copies share a hash, rows are in path order, `under` respects folder boundaries", async (be) => {
  const dir = tempDir();
  const store = await openIn(be, dir);
  await store.putBatch([
    row("/d/x/2.jpg", "h2", "m", vec(2, 0)),
    row("/d/x/1.jpg", "h1", "m", vec(1, 0)),
    row("/d/x/sub/copy-of-1.jpg", "h1", "m", vec(9, 9)), // same content: the first embedding stays
    row("/d/xy/3.jpg", "h3", "m", vec(3, 0)),
    row("/d/x/4.jpg", "h4", "other", vec(4, 0, 0)),
  ]);
  const all = await store.embeddingsFor("m");
  assert.deepEqual(all.paths, ["/d/x/1.jpg", "/d/x/2.jpg", "/d/x/sub/copy-of-1.jpg", "/d/xy/3.jpg"]);
  assert.deepEqual(all.hashes, ["h1", "h2", "h1", "h3"]);
  assert.equal(all.dim, 2);
  assert.deepEqual([...all.data], [1, 0, 2, 0, 1, 0, 3, 0]);

  for (const under of ["/d/x", "/d/x/", "/d/./x"]) {
    const x = await store.embeddingsFor("m", { under });
    assert.deepEqual(x.paths, ["/d/x/1.jpg", "/d/x/2.jpg", "/d/x/sub/copy-of-1.jpg"], `under ${under}`);
    assert.deepEqual([...x.data], [1, 0, 2, 0, 1, 0]);
  }
  assert.deepEqual((await store.embeddingsFor("m", { under: "/d/x/sub" })).paths, ["/d/x/sub/copy-of-1.jpg"]);
  assert.deepEqual((await store.embeddingsFor("m", { under: "/d/x/s" })).paths, [], "a name prefix is not a folder");
  assert.deepEqual((await store.embeddingsFor("m", { under: "/" })).paths.length, 4);
  assert.deepEqual(
    (await store.paths({ under: "/d/x" })).map((p) => p.path),
    ["/d/x/1.jpg", "/d/x/2.jpg", "/d/x/4.jpg", "/d/x/sub/copy-of-1.jpg"],
  );
  assert.deepEqual((await store.embeddingsFor("other")).paths, ["/d/x/4.jpg"]);
  await store.close();
});

backendTest("stats count paths and embeddings per model; a dimension mismatch is refused without a partial write", async (be) => {
  const dir = tempDir();
  const store = await openIn(be, dir);
  await store.putBatch([row("/a", "h1", "small", vec(1, 2)), row("/b", "h2", "small", vec(3, 4)), row("/a", "h1", "big", vec(1, 2, 3, 4))]);
  const s = await store.stats();
  assert.equal(s.paths, 2);
  assert.equal(s.embeddings, 3);
  assert.deepEqual(s.models, [
    { modelKey: "big", embeddings: 1, dim: 4 },
    { modelKey: "small", embeddings: 2, dim: 2 },
  ]);

  await assert.rejects(store.putBatch([row("/c", "h3", "small", vec(5, 6)), row("/d", "h4", "small", vec(1, 2, 3))]), isInputError(/\/d has 3 values, but model small stores 2/));
  await assert.rejects(store.putBatch([row("/e", "h5", "new", vec(1)), row("/f", "h6", "new", vec(1, 2))]), isInputError(/model new stores 1/));
  await assert.rejects(store.putBatch([row("/g", "h7", "empty", vec())]), isInputError(/has 0 values/));
  const after = await store.stats();
  assert.equal(after.paths, 2, "the refused batches left no rows behind");
  assert.equal(after.embeddings, 3);
  await store.close();
});

test("vacuum keeps the data and shrinks the file after deletions", async () => {
  const dir = tempDir();
  const store = open(dir);
  // Only the first 10 files exist on disk, so prune drops the other 1,990 paths and their embeddings.
  const rows = Array.from({ length: 2000 }, (_, i) => row(path.join(dir, `${i}.jpg`), `h${i}`, "m", new Float32Array(256).fill(i)));
  await Promise.all(rows.slice(0, 10).map((r) => writeFile(r.path, "")));
  await store.putBatch(rows);
  assert.deepEqual(await store.prune(), { paths: 1990, embeddings: 1990 });
  const before = (await store.stats()).bytes;
  await store.vacuum();
  const s = await store.stats();
  assert.ok(s.bytes < before / 4, `${s.bytes} < ${before} / 4`);
  assert.equal(s.embeddings, 10);
  assert.deepEqual(await store.getEmbedding("h3", "m"), new Float32Array(256).fill(3));
  await store.close();
});

test("a read-only store reads, and refuses writes clearly", async () => {
  const dir = tempDir();
  let store = open(dir);
  await store.putBatch([row("/a", "h1", "m", vec(1, 2))]);
  await store.close();
  store = SqliteStore.open(path.join(dir, "store.sqlite"), { readonly: true });
  assert.deepEqual(await store.getEmbedding("h1", "m"), vec(1, 2));
  assert.equal((await store.stats()).embeddings, 1);
  await assert.rejects(store.putBatch([row("/b", "h2", "m", vec(1, 2))]), isInputError(/opened read-only/));
  await store.close();
  assert.throws(() => SqliteStore.open(path.join(dir, "nothing.sqlite"), { readonly: true }), isInputError(/no store at .*nothing\.sqlite/));
});

test("bad input: not SQLite, another application's database, a newer schema, a folder", async () => {
  const dir = tempDir();
  const file = path.join(dir, "store.sqlite");
  await writeFile(file, "hello");
  const notSqlite = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is not a clip-ood store \\(not an SQLite database\\)`);
  assert.throws(() => SqliteStore.open(file), isInputError(notSqlite));
  assert.throws(() => SqliteStore.open(file, { readonly: true }), isInputError(notSqlite));
  assert.equal(await readFile(file, "utf8"), "hello", "the foreign file is left untouched");

  const other = path.join(dir, "other.sqlite");
  const raw = new Database(other);
  raw.exec("CREATE TABLE notes (body TEXT)");
  raw.close();
  assert.throws(() => SqliteStore.open(other), isInputError(/other\.sqlite is not a clip-ood store/));

  const newer = path.join(dir, "newer.sqlite");
  await SqliteStore.open(newer).close();
  const db = new Database(newer);
  db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
  db.close();
  assert.throws(() => SqliteStore.open(newer), isInputError(new RegExp(`newer\\.sqlite was written by a newer clip-ood \\(store schema 99; this version reads up to ${STORE_SCHEMA_VERSION}\\)`)));

  const folder = path.join(dir, "a-folder");
  await mkdir(folder);
  assert.throws(() => SqliteStore.open(folder), isInputError(/a-folder is a folder/));
});

test("bad input: a location that cannot be written names the file and suggests --store or --no-store", async (t) => {
  const dir = tempDir();
  // A parent that is a file fails for every user, root included.
  const plain = path.join(dir, "plain-file");
  await writeFile(plain, "x");
  const underFile = path.join(plain, "store.sqlite");
  assert.throws(() => SqliteStore.open(underFile), (e: unknown) => {
    isInputError(/cannot write the store .*plain-file\/store\.sqlite/)(e);
    assert.match((e as ClipOodError).hint ?? "", /--store <file or postgres:\/\/ URL>.*--no-store/);
    return true;
  });

  // A folder without write permission: only meaningful when permissions bind (not for root).
  const locked = path.join(dir, "locked");
  await mkdir(locked);
  await chmod(locked, 0o555);
  let bound = true;
  try {
    await writeFile(path.join(locked, "probe"), "");
    bound = false;
  } catch {
    // Expected for a normal user.
  }
  if (!bound) {
    t.diagnostic("running with permission checks bypassed (root): the chmod 0555 case is not exercised");
  } else {
    assert.throws(() => SqliteStore.open(path.join(locked, "store.sqlite")), isInputError(/cannot write the store .*locked\/store\.sqlite/));
  }
  await chmod(locked, 0o755);
});

/** Runs the child indexer; with `killAfter`, SIGKILLs it as soon as it prints "begin <killAfter>". */
function runChild(args: string[], killAfter?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "test", "support", "store-child.ts"), ...args], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (killAfter !== undefined && stdout.includes(`begin ${killAfter}\n`)) child.kill("SIGKILL");
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

backendTest("crash safety: SIGKILL mid-batch loses only that batch, and a rerun completes with no duplicates", async (be, t) => {
  const dir = tempDir();
  const file = await be.location(dir);
  // Batches of 4 MB: more than SQLite's page cache, so uncommitted pages spill into the WAL before the kill.
  const batches = 6;
  const size = 4000;
  const dim = 256;
  const killAt = 3;
  const args = [file, String(batches), String(size), String(dim)];

  const killed = await runChild([...args, "run"], killAt);
  assert.equal(killed.signal, "SIGKILL", `the child was killed (stderr: ${killed.stderr})`);
  assert.match(killed.stdout, new RegExp(`done ${killAt - 1}\n`));
  const committed = killed.stdout.match(/^done \d+$/gm)?.length ?? 0;
  t.diagnostic(`killed after ${committed} committed batches; ${killed.stdout.includes(`done ${killAt}\n`) ? "the in-flight batch committed first" : "the in-flight batch was lost"}`);

  if (be.name === "sqlite") {
    // SQLite recovers from the WAL on the next open; the file is consistent.
    const raw = new Database(file);
    assert.equal(raw.pragma("integrity_check", { simple: true }), "ok");
    raw.close();
  }
  const after = await openIn(be, dir);
  const ids = (await after.paths()).map((p) => Number(path.basename(p.path, ".jpg")));
  const embeddings = (await after.stats()).embeddings;
  await after.close();
  assert.equal(ids.length % size, 0, `whole batches only, found ${ids.length} rows`);
  assert.ok(ids.length >= killAt * size && ids.length <= (killAt + 1) * size, `${ids.length} rows`);
  assert.ok(ids.length / size >= committed, "every batch reported as committed is there");
  assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => i), "batches are all-or-nothing, in order");
  assert.equal(embeddings, ids.length / 2, "copies share one embedding");

  const resumed = await runChild([...args, "resume"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(JSON.parse(resumed.stdout), { written: batches * size - ids.length }, "only the missing rows are written again");

  const store = await openIn(be, dir);
  const s = await store.stats();
  assert.equal(s.paths, batches * size);
  assert.equal(s.embeddings, (batches * size) / 2);
  assert.deepEqual(s.models, [{ modelKey: CRASH_MODEL, embeddings: (batches * size) / 2, dim }]);
  const all = await store.embeddingsFor(CRASH_MODEL);
  assert.equal(all.paths.length, batches * size);
  for (let i = 0; i < batches * size; i += 997) {
    const expected = crashRow(i, dim);
    assert.equal(all.paths[i], expected.path);
    assert.equal(all.hashes[i], crashHash(i >> 1));
    assert.deepEqual(all.data.subarray(i * dim, (i + 1) * dim), crashVector(i >> 1, dim));
  }
  await store.close();
});

// ---------------------------------------------------------------------------------------------------------
// PostgreSQL only: migrations, connection errors

test("postgres: machines opening a new database together migrate it once; a newer schema is refused", { skip: skipUnlessPostgres }, async () => {
  const url = await server!.createDatabase("migrations");
  const dir = tempDir();
  const stores = await Promise.all(Array.from({ length: 4 }, () => openEmbeddingStore(url, { cacheDir: dir })));
  await Promise.all(stores.map((s) => s.close()));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    assert.deepEqual((await client.query("SELECT version FROM clip_ood.migrations ORDER BY version")).rows, [1, 2, 3, 4, 5, 6].map((version) => ({ version })));
    assert.deepEqual((await client.query("SELECT value FROM clip_ood.meta WHERE key = 'schema_version'")).rows, [{ value: String(STORE_SCHEMA_VERSION) }]);
    const store = await openEmbeddingStore(url, { cacheDir: dir });
    const s = await store.stats();
    await store.close();
    assert.equal(s.backend, "postgres");
    assert.equal(s.location, url);
    // Debian's PostgreSQL has no pgvector package: the rows are ranked in this process.
    assert.match(s.search, /no pgvector in this database/);
    await client.query("INSERT INTO clip_ood.migrations (version) VALUES (99)");
  } finally {
    await client.end();
  }
  await assert.rejects(openEmbeddingStore(url, { cacheDir: dir }), isInputError(/was written by a newer clip-ood \(store migration 99; this version knows 6\)/));
});

test("postgres: a server that is not there or a missing database is one clear error, never showing the password", { skip: skipUnlessPostgres }, async () => {
  const dir = tempDir();
  const base = new URL(server!.url);
  const closed = `postgres://clipood:s3cret@127.0.0.1:9/postgres`;
  await assert.rejects(openEmbeddingStore(closed, { cacheDir: dir }), (e: unknown) => {
    isInputError(/^cannot open the store postgres:\/\/clipood@127\.0\.0\.1:9\/postgres: nothing listens there \(connection refused\)$/)(e);
    assert.ok(!(e as Error).message.includes("s3cret"), "the password is not shown");
    return true;
  });
  const missing = `postgres://clipood@${base.host}/no_such_db`;
  await assert.rejects(openEmbeddingStore(missing, { cacheDir: dir }), isInputError(/no_such_db: the database does not exist/));
});
