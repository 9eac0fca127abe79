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
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { ClipOodError } from "../src/errors.js";
import { hashFile } from "../src/store/hash.js";
import { EmbeddingStore, STORE_SCHEMA_VERSION, defaultStorePath } from "../src/store/store.js";
import type { StoredRow } from "../src/store/store.js";
import { CRASH_MODEL, crashHash, crashRow, crashVector } from "./support/store-child.js";
import { repoRoot } from "./support/shared.js";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "clip-ood-store-"));
  dirs.push(d);
  return d;
}

function open(dir: string): EmbeddingStore {
  return EmbeddingStore.open(path.join(dir, "store.sqlite"));
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
    let hash = store.lookupPath(f, s.size, s.mtimeMs);
    if (hash === undefined) {
      hash = await hashFile(f);
      hashed.push(f);
    }
    let embedding = store.getEmbedding(hash, modelKey);
    if (!embedding) {
      embedded.push(f);
      // A stand-in model: the first two bytes of the content and its length.
      const bytes = await readFile(f);
      embedding = vec(bytes[0] ?? 0, bytes[1] ?? 0, bytes.length);
    }
    rows.push(row(f, hash, modelKey, embedding, s.size, s.mtimeMs));
  }
  store.putBatch(rows);
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

test("defaultStorePath puts store.sqlite in the cache folder", () => {
  assert.equal(defaultStorePath("/var/cache/clip-ood"), "/var/cache/clip-ood/store.sqlite");
});

test("a new store is empty, in WAL mode, and carries its schema version", () => {
  const dir = tempDir();
  const file = path.join(dir, "nested", "deeper", "store.sqlite");
  const store = EmbeddingStore.open(file);
  assert.equal(store.file, file);
  const s = store.stats();
  assert.deepEqual({ ...s, bytes: 0 }, { file, bytes: 0, paths: 0, embeddings: 0, models: [] });
  assert.ok(s.bytes > 0);
  assert.deepEqual(store.paths(), []);
  const none = store.embeddingsFor("m");
  assert.deepEqual({ ...none, data: [...none.data] }, { paths: [], hashes: [], dim: 0, data: [] });
  store.putBatch([]);
  store.recordPaths([]);
  store.forgetPaths([]);
  assert.deepEqual(store.prune(), { paths: 0, embeddings: 0 });
  store.close();
  const raw = new Database(file, { readonly: true });
  assert.equal(raw.pragma("journal_mode", { simple: true }), "wal");
  assert.equal(raw.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get(), String(STORE_SCHEMA_VERSION));
  raw.close();
});

test("embeddings round-trip exactly, as little-endian float32 BLOBs, across reopening", () => {
  const dir = tempDir();
  const v = vec(1 / 3, -0, 1e-30, -123.456, 3.4e38);
  let store = open(dir);
  store.putBatch([row("/data/a.jpg", "h1", "m", v, 42, 1732860000123.25)]);
  store.close();
  store = open(dir);
  assert.deepEqual(store.getEmbedding("h1", "m"), v);
  assert.equal(store.getEmbedding("h1", "other-model"), undefined);
  assert.equal(store.getEmbedding("h2", "m"), undefined);
  assert.equal(store.lookupPath("/data/a.jpg", 42, 1732860000123.25), "h1");
  assert.equal(store.lookupPath("/data/a.jpg", 43, 1732860000123.25), undefined, "size changed");
  assert.equal(store.lookupPath("/data/a.jpg", 42, 1732860000123.5), undefined, "mtime changed");
  assert.equal(store.lookupPath("/data/b.jpg", 42, 1732860000123.25), undefined, "unknown path");
  store.close();
  // Reference encoding written independently with DataView.
  const expected = new Uint8Array(v.length * 4);
  const view = new DataView(expected.buffer);
  v.forEach((x, i) => view.setFloat32(i * 4, x, true));
  const raw = new Database(path.join(dir, "store.sqlite"), { readonly: true });
  const blob = raw.prepare("SELECT vector FROM embeddings").pluck().get() as Buffer;
  raw.close();
  assert.deepEqual(new Uint8Array(blob), expected);
});

test("paths are stored absolute", () => {
  const dir = tempDir();
  const store = open(dir);
  store.recordPaths([{ path: "relative/x.jpg", size: 1, mtimeMs: 2, hash: "h" }]);
  assert.deepEqual(
    store.paths().map((r) => r.path),
    [path.resolve("relative/x.jpg")],
  );
  assert.equal(store.lookupPath(path.resolve("relative/x.jpg"), 1, 2), "h");
  store.close();
});

test("incremental indexing: added, unchanged, modified, moved, copied and deleted files", async () => {
  const dir = tempDir();
  const images = path.join(dir, "images");
  await mkdir(images);
  const a = path.join(images, "a.jpg");
  const b = path.join(images, "b.jpg");
  await writeFile(a, "AAAA content");
  await writeFile(b, "BBBB content");
  const store = open(dir);
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
  assert.equal(store.lookupPath(a, sa.size, sa.mtimeMs), undefined);
  r = await index(store, [a, b], key);
  assert.deepEqual(r, { embedded: [a], hashed: [a] });
  assert.deepEqual(store.getEmbedding(await hashFile(a), key), vec(65, 65, 12));

  // A touched file (mtime only) is re-hashed, but its content is known: no new embedding.
  await utimes(b, later, later);
  r = await index(store, [a, b], key);
  assert.deepEqual(r, { embedded: [], hashed: [b] });

  // Moved: the new path has no record, but hashing it finds the embedding of its content.
  const moved = path.join(images, "sub", "b-moved.jpg");
  await mkdir(path.dirname(moved));
  await rename(b, moved);
  const sm = await stat(moved);
  assert.equal(store.lookupPath(moved, sm.size, sm.mtimeMs), undefined);
  assert.ok(store.getEmbedding(await hashFile(moved), key), "the moved file's embedding is found by content");
  r = await index(store, [a, moved], key);
  assert.deepEqual(r, { embedded: [], hashed: [moved] });

  // Copied: a second path with the same content shares the one embedding.
  const copy = path.join(images, "a-copy.jpg");
  await writeFile(copy, await readFile(a));
  r = await index(store, [copy], key);
  assert.deepEqual(r, { embedded: [], hashed: [copy] });
  assert.equal(store.stats().embeddings, 3, "AAAA, AAAZ and BBBB: three contents, one embedding each");

  // The old path of the moved file is gone: prune drops it but keeps the embedding the new path uses.
  // The original AAAA content has no path left referring to it (a was modified, the copy is of AAAZ): dropped.
  assert.deepEqual(store.prune(), { paths: 1, embeddings: 1 });
  assert.ok(store.getEmbedding(await hashFile(moved), key));
  const all = store.embeddingsFor(key);
  assert.deepEqual(all.paths, [copy, a, moved].sort());
  assert.equal(all.dim, 3);

  // Deleted: a path record whose file is gone is pruned, and so is an embedding that no path refers to.
  await unlink(moved);
  const pruned = store.prune();
  assert.deepEqual(pruned, { paths: 1, embeddings: 1 }, "b's content is no longer referenced");
  assert.deepEqual(
    store.paths().map((p) => p.path),
    [copy, a].sort(),
  );
  assert.equal(store.stats().embeddings, 1);
  store.close();
});

test("prune keeps records of files that changed but still exist; forgetPaths drops them explicitly", async () => {
  const dir = tempDir();
  const f = path.join(dir, "x.jpg");
  await writeFile(f, "x");
  const store = open(dir);
  store.putBatch([row(f, "old-hash", "m", vec(1), 999, 1)]);
  assert.deepEqual(store.prune(), { paths: 0, embeddings: 0 });
  assert.equal(store.paths().length, 1);
  store.forgetPaths([f]);
  assert.equal(store.paths().length, 0);
  assert.deepEqual(store.prune(), { paths: 0, embeddings: 1 });
  store.close();
});

test("embeddingsFor: copies share a hash, rows are in path order, `under` respects folder boundaries", () => {
  const dir = tempDir();
  const store = open(dir);
  store.putBatch([
    row("/d/x/2.jpg", "h2", "m", vec(2, 0)),
    row("/d/x/1.jpg", "h1", "m", vec(1, 0)),
    row("/d/x/sub/copy-of-1.jpg", "h1", "m", vec(9, 9)), // same content: the first embedding stays
    row("/d/xy/3.jpg", "h3", "m", vec(3, 0)),
    row("/d/x/4.jpg", "h4", "other", vec(4, 0, 0)),
  ]);
  const all = store.embeddingsFor("m");
  assert.deepEqual(all.paths, ["/d/x/1.jpg", "/d/x/2.jpg", "/d/x/sub/copy-of-1.jpg", "/d/xy/3.jpg"]);
  assert.deepEqual(all.hashes, ["h1", "h2", "h1", "h3"]);
  assert.equal(all.dim, 2);
  assert.deepEqual([...all.data], [1, 0, 2, 0, 1, 0, 3, 0]);

  for (const under of ["/d/x", "/d/x/", "/d/./x"]) {
    const x = store.embeddingsFor("m", { under });
    assert.deepEqual(x.paths, ["/d/x/1.jpg", "/d/x/2.jpg", "/d/x/sub/copy-of-1.jpg"], `under ${under}`);
    assert.deepEqual([...x.data], [1, 0, 2, 0, 1, 0]);
  }
  assert.deepEqual(store.embeddingsFor("m", { under: "/d/x/sub" }).paths, ["/d/x/sub/copy-of-1.jpg"]);
  assert.deepEqual(store.embeddingsFor("m", { under: "/d/x/s" }).paths, [], "a name prefix is not a folder");
  assert.deepEqual(store.embeddingsFor("m", { under: "/" }).paths.length, 4);
  assert.deepEqual(
    store.paths({ under: "/d/x" }).map((p) => p.path),
    ["/d/x/1.jpg", "/d/x/2.jpg", "/d/x/4.jpg", "/d/x/sub/copy-of-1.jpg"],
  );
  assert.deepEqual(store.embeddingsFor("other").paths, ["/d/x/4.jpg"]);
  store.close();
});

test("stats count paths and embeddings per model; a dimension mismatch is refused without a partial write", () => {
  const dir = tempDir();
  const store = open(dir);
  store.putBatch([row("/a", "h1", "small", vec(1, 2)), row("/b", "h2", "small", vec(3, 4)), row("/a", "h1", "big", vec(1, 2, 3, 4))]);
  const s = store.stats();
  assert.equal(s.paths, 2);
  assert.equal(s.embeddings, 3);
  assert.deepEqual(s.models, [
    { modelKey: "big", embeddings: 1, dim: 4 },
    { modelKey: "small", embeddings: 2, dim: 2 },
  ]);

  assert.throws(() => store.putBatch([row("/c", "h3", "small", vec(5, 6)), row("/d", "h4", "small", vec(1, 2, 3))]), isInputError(/\/d has 3 values, but model small stores 2/));
  assert.throws(() => store.putBatch([row("/e", "h5", "new", vec(1)), row("/f", "h6", "new", vec(1, 2))]), isInputError(/model new stores 1/));
  assert.throws(() => store.putBatch([row("/g", "h7", "empty", vec())]), isInputError(/has 0 values/));
  const after = store.stats();
  assert.equal(after.paths, 2, "the refused batches left no rows behind");
  assert.equal(after.embeddings, 3);
  store.close();
});

test("vacuum keeps the data and shrinks the file after deletions", async () => {
  const dir = tempDir();
  const store = open(dir);
  // Only the first 10 files exist on disk, so prune drops the other 1,990 paths and their embeddings.
  const rows = Array.from({ length: 2000 }, (_, i) => row(path.join(dir, `${i}.jpg`), `h${i}`, "m", new Float32Array(256).fill(i)));
  await Promise.all(rows.slice(0, 10).map((r) => writeFile(r.path, "")));
  store.putBatch(rows);
  assert.deepEqual(store.prune(), { paths: 1990, embeddings: 1990 });
  const before = store.stats().bytes;
  store.vacuum();
  const s = store.stats();
  assert.ok(s.bytes < before / 4, `${s.bytes} < ${before} / 4`);
  assert.equal(s.embeddings, 10);
  assert.deepEqual(store.getEmbedding("h3", "m"), new Float32Array(256).fill(3));
  store.close();
});

test("a read-only store reads, and refuses writes clearly", () => {
  const dir = tempDir();
  let store = open(dir);
  store.putBatch([row("/a", "h1", "m", vec(1, 2))]);
  store.close();
  store = EmbeddingStore.open(path.join(dir, "store.sqlite"), { readonly: true });
  assert.deepEqual(store.getEmbedding("h1", "m"), vec(1, 2));
  assert.equal(store.stats().embeddings, 1);
  assert.throws(() => store.putBatch([row("/b", "h2", "m", vec(1, 2))]), isInputError(/opened read-only/));
  store.close();
  assert.throws(() => EmbeddingStore.open(path.join(dir, "nothing.sqlite"), { readonly: true }), isInputError(/no store at .*nothing\.sqlite/));
});

test("bad input: not SQLite, another application's database, a newer schema, a folder", async () => {
  const dir = tempDir();
  const file = path.join(dir, "store.sqlite");
  await writeFile(file, "hello");
  const notSqlite = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is not a clip-ood store \\(not an SQLite database\\)`);
  assert.throws(() => EmbeddingStore.open(file), isInputError(notSqlite));
  assert.throws(() => EmbeddingStore.open(file, { readonly: true }), isInputError(notSqlite));
  assert.equal(await readFile(file, "utf8"), "hello", "the foreign file is left untouched");

  const other = path.join(dir, "other.sqlite");
  const raw = new Database(other);
  raw.exec("CREATE TABLE notes (body TEXT)");
  raw.close();
  assert.throws(() => EmbeddingStore.open(other), isInputError(/other\.sqlite is not a clip-ood store/));

  const newer = path.join(dir, "newer.sqlite");
  EmbeddingStore.open(newer).close();
  const db = new Database(newer);
  db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
  db.close();
  assert.throws(() => EmbeddingStore.open(newer), isInputError(/newer\.sqlite was written by a newer clip-ood \(store schema 99; this version reads up to 1\)/));

  const folder = path.join(dir, "a-folder");
  await mkdir(folder);
  assert.throws(() => EmbeddingStore.open(folder), isInputError(/a-folder is a folder/));
});

test("bad input: a location that cannot be written names the file and suggests --store or --no-store", async (t) => {
  const dir = tempDir();
  // A parent that is a file fails for every user, root included.
  const plain = path.join(dir, "plain-file");
  await writeFile(plain, "x");
  const underFile = path.join(plain, "store.sqlite");
  assert.throws(() => EmbeddingStore.open(underFile), (e: unknown) => {
    isInputError(/cannot write the store .*plain-file\/store\.sqlite/)(e);
    assert.match((e as ClipOodError).hint ?? "", /--store <file>.*--no-store/);
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
    assert.throws(() => EmbeddingStore.open(path.join(locked, "store.sqlite")), isInputError(/cannot write the store .*locked\/store\.sqlite/));
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

test("crash safety: SIGKILL mid-batch loses only that batch, and a rerun completes with no duplicates", async (t) => {
  const dir = tempDir();
  const file = path.join(dir, "store.sqlite");
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

  // SQLite recovers from the WAL on the next open; the file is consistent.
  const raw = new Database(file);
  assert.equal(raw.pragma("integrity_check", { simple: true }), "ok");
  const ids = raw
    .prepare("SELECT path FROM paths ORDER BY path")
    .pluck()
    .all()
    .map((p) => Number(path.basename(String(p), ".jpg")));
  const embeddings = raw.prepare("SELECT count(*) FROM embeddings").pluck().get();
  raw.close();
  assert.equal(ids.length % size, 0, `whole batches only, found ${ids.length} rows`);
  assert.ok(ids.length >= killAt * size && ids.length <= (killAt + 1) * size, `${ids.length} rows`);
  assert.ok(ids.length / size >= committed, "every batch reported as committed is there");
  assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => i), "batches are all-or-nothing, in order");
  assert.equal(embeddings, ids.length / 2, "copies share one embedding");

  const resumed = await runChild([...args, "resume"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(JSON.parse(resumed.stdout), { written: batches * size - ids.length }, "only the missing rows are written again");

  const store = EmbeddingStore.open(file);
  const s = store.stats();
  assert.equal(s.paths, batches * size);
  assert.equal(s.embeddings, (batches * size) / 2);
  assert.deepEqual(s.models, [{ modelKey: CRASH_MODEL, embeddings: (batches * size) / 2, dim }]);
  const all = store.embeddingsFor(CRASH_MODEL);
  assert.equal(all.paths.length, batches * size);
  for (let i = 0; i < batches * size; i += 997) {
    const expected = crashRow(i, dim);
    assert.equal(all.paths[i], expected.path);
    assert.equal(all.hashes[i], crashHash(i >> 1));
    assert.deepEqual(all.data.subarray(i * dim, (i + 1) * dim), crashVector(i >> 1, dim));
  }
  store.close();
});
