/**
 * The embedded store: one SQLite file (WAL), the default. What it keeps is described in ./store.ts.
 *
 * Crash safety is SQLite's: every batch is one transaction, so a process killed at any moment (even
 * SIGKILL) leaves the file consistent, without the batch in flight, and a rerun fills in the rest.
 */
import { accessSync, closeSync, constants, mkdirSync, openSync, readSync, statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { ClipOodError, messageOf } from "../errors.js";
import { checkDimension, damagedStore, decodeStoredVector, encodeVector, isGone, isMissingError, rootRow, STORE_HINT, STORE_SCHEMA_VERSION, underRange } from "./store.js";
import type { EmbeddingStore, IndexedRoot, PathRecord, RowScope, StoredRow, StoreRows, StoreStats } from "./store.js";

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS paths (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ms REAL NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS paths_by_hash ON paths (hash);
  CREATE TABLE IF NOT EXISTS embeddings (
    model_key TEXT NOT NULL,
    hash TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model_key, hash)
  );
`;

/** Schema 2: the roots given to \`index\` per model key; a folder's path range is kept beside it (store.ts rootRow). */
const INDEXED_ROOTS = `
  CREATE TABLE IF NOT EXISTS indexed_roots (
    model_key TEXT NOT NULL,
    root TEXT NOT NULL,
    folder INTEGER NOT NULL,
    prefix TEXT,
    prefix_end TEXT,
    PRIMARY KEY (model_key, root)
  );
`;

const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1");

type PathRow = { path: string; size: number; mtimeMs: number; hash: string };
type VectorRow = { path: string; hash: string; dim: number; vector: Buffer };

export class SqliteStore implements EmbeddingStore {
  readonly backend = "sqlite";
  readonly file: string;
  private readonly db: Database.Database;
  private readonly readonly: boolean;
  /** False only for a schema-1 store opened read-only: it has no indexed roots and cannot be given the table. */
  private readonly hasRoots: boolean;

  private readonly selectPath: Database.Statement<[string], { size: number; mtimeMs: number; hash: string }>;
  private readonly selectEmbedding: Database.Statement<[string, string], { dim: number; vector: Buffer }>;
  private readonly selectDim: Database.Statement<[string], number>;
  private readonly upsertPath: Database.Statement<[string, number, number, string]>;
  private readonly insertEmbedding: Database.Statement<[string, string, number, Buffer]>;
  private readonly deletePath: Database.Statement<[string]>;

  private constructor(file: string, db: Database.Database, readonly: boolean) {
    this.file = file;
    this.db = db;
    this.readonly = readonly;
    this.hasRoots = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'indexed_roots'").get() !== undefined;
    this.selectPath = db.prepare("SELECT size, mtime_ms AS mtimeMs, hash FROM paths WHERE path = ?");
    this.selectEmbedding = db.prepare("SELECT dim, vector FROM embeddings WHERE hash = ? AND model_key = ?");
    this.selectDim = db.prepare<[string], number>("SELECT dim FROM embeddings WHERE model_key = ? LIMIT 1").pluck();
    this.upsertPath = db.prepare(
      `INSERT INTO paths (path, size, mtime_ms, hash) VALUES (?, ?, ?, ?)
       ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, hash = excluded.hash`,
    );
    this.insertEmbedding = db.prepare("INSERT OR IGNORE INTO embeddings (model_key, hash, dim, vector) VALUES (?, ?, ?, ?)");
    this.deletePath = db.prepare("DELETE FROM paths WHERE path = ?");
  }

  get location(): string {
    return this.file;
  }

  get localFilesBase(): string {
    return this.file;
  }

  static open(file: string, opts: { readonly?: boolean } = {}): SqliteStore {
    const resolved = path.resolve(file);
    const readonly = opts.readonly ?? false;
    checkLocation(resolved, readonly);
    let db: Database.Database;
    try {
      db = new Database(resolved, { readonly, fileMustExist: readonly, timeout: 5000 });
    } catch (e) {
      throw openError(resolved, e);
    }
    try {
      db.pragma("busy_timeout = 5000");
      if (!readonly) {
        db.pragma("journal_mode = WAL");
        // With WAL, NORMAL still never corrupts; it only lets a power cut (not a killed process) undo the last commits.
        db.pragma("synchronous = NORMAL");
      }
      ensureSchema(db, resolved, readonly);
      return new SqliteStore(resolved, db, readonly);
    } catch (e) {
      db.close();
      throw openError(resolved, e);
    }
  }

  async lookupPath(file: string, size: number, mtimeMs: number): Promise<string | undefined> {
    const row = this.selectPath.get(path.resolve(file));
    return row && row.size === size && row.mtimeMs === mtimeMs ? row.hash : undefined;
  }

  async getEmbedding(hash: string, modelKey: string): Promise<Float32Array | undefined> {
    const row = this.selectEmbedding.get(hash, modelKey);
    if (!row) return undefined;
    const out = new Float32Array(row.dim);
    decodeStoredVector(this.file, row.vector, row.dim, out, 0);
    return out;
  }

  async putBatch(rows: readonly StoredRow[]): Promise<void> {
    if (rows.length === 0) return;
    this.write(() => this.putTx.immediate(rows));
  }

  async recordPaths(rows: readonly PathRecord[]): Promise<void> {
    if (rows.length === 0) return;
    this.write(() => this.recordTx.immediate(rows));
  }

  async forgetPaths(paths: readonly string[]): Promise<void> {
    if (paths.length === 0) return;
    this.write(() => this.forgetTx.immediate(paths));
  }

  async paths(opts: { under?: string } = {}): Promise<PathRecord[]> {
    return this.pathRows(opts.under);
  }

  private pathRows(under: string | undefined): PathRecord[] {
    const scope = scopeClause(undefined, { ...(under === undefined ? {} : { under }) });
    const sql = `SELECT path, size, mtime_ms AS mtimeMs, hash FROM paths p ${scope.where} ORDER BY path`;
    return this.db.prepare<unknown[], PathRow>(sql).all(...scope.params);
  }

  async embeddingsFor(modelKey: string, opts: RowScope = {}): Promise<StoreRows> {
    if (opts.indexed && !this.hasRoots) return { paths: [], hashes: [], dim: 0, data: new Float32Array(0) };
    const scope = scopeClause(modelKey, opts);
    const from = `FROM paths p JOIN embeddings e ON e.hash = p.hash AND e.model_key = ? ${scope.where}`;
    const params = [modelKey, ...scope.params];
    const count = this.db.prepare<unknown[], number>(`SELECT count(*) ${from}`).pluck();
    const rows = this.db.prepare<unknown[], VectorRow>(`SELECT p.path, p.hash, e.dim, e.vector ${from} ORDER BY p.path`);
    // Counted and read in one read transaction (one WAL snapshot), so a concurrent writer cannot change the count in between.
    return this.db.transaction(() => {
      const n = count.get(...params) ?? 0;
      const dim = this.selectDim.get(modelKey) ?? 0;
      const paths: string[] = [];
      const hashes: string[] = [];
      const data = new Float32Array(n * dim);
      for (const row of rows.iterate(...params)) {
        if (row.dim !== dim || paths.length >= n) throw damagedStore(this.file, `embeddings of model ${modelKey} disagree on their dimension`);
        decodeStoredVector(this.file, row.vector, dim, data, paths.length * dim);
        paths.push(row.path);
        hashes.push(row.hash);
      }
      return { paths, hashes, dim, data };
    })();
  }

  async addIndexedRoots(modelKey: string, roots: readonly IndexedRoot[]): Promise<void> {
    if (roots.length === 0) return;
    this.write(() => this.rootsTx.immediate({ modelKey, roots }));
  }

  async indexedRoots(modelKey: string): Promise<IndexedRoot[]> {
    if (!this.hasRoots) return [];
    return this.db
      .prepare<[string], { path: string; folder: number }>("SELECT root AS path, folder FROM indexed_roots WHERE model_key = ? ORDER BY root")
      .all(modelKey)
      .map((r) => ({ path: r.path, folder: r.folder === 1 }));
  }

  async stats(): Promise<StoreStats> {
    const count = (sql: string) => this.db.prepare<[], number>(sql).pluck().get() ?? 0;
    const models = this.db
      .prepare<[], { modelKey: string; embeddings: number; dim: number }>(
        "SELECT model_key AS modelKey, count(*) AS embeddings, max(dim) AS dim FROM embeddings GROUP BY model_key ORDER BY model_key",
      )
      .all();
    return {
      backend: "sqlite",
      location: this.file,
      search: "exact, or for large collections an HNSW index (usearch) beside the store, updated in place (models[].annIndex: its search width and measured recall)",
      bytes: fileSize(this.file) + fileSize(`${this.file}-wal`),
      paths: count("SELECT count(*) FROM paths"),
      embeddings: count("SELECT count(*) FROM embeddings"),
      models,
    };
  }

  async prune(): Promise<{ paths: number; embeddings: number }> {
    const missing = this.pathRows(undefined)
      .map((r) => r.path)
      .filter(isGone);
    return this.write(() =>
      this.db.transaction(() => {
        for (const p of missing) this.deletePath.run(p);
        const orphans = this.db.prepare("DELETE FROM embeddings WHERE hash NOT IN (SELECT hash FROM paths)").run();
        return { paths: missing.length, embeddings: orphans.changes };
      }).immediate(),
    );
  }

  async vacuum(): Promise<void> {
    this.write(() => {
      this.db.exec("VACUUM");
      // The rewrite goes through the WAL; fold it back so the file on disk actually shrinks.
      this.db.pragma("wal_checkpoint(TRUNCATE)");
    });
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private readonly putTx = this.txn((rows: readonly StoredRow[]) => {
    const dims = new Map<string, number>();
    for (const r of rows) {
      let dim = dims.get(r.modelKey);
      if (dim === undefined) {
        dim = this.selectDim.get(r.modelKey) ?? r.embedding.length;
        dims.set(r.modelKey, dim);
      }
      checkDimension(this.file, r, dim);
      this.upsertPath.run(path.resolve(r.path), r.size, r.mtimeMs, r.hash);
      this.insertEmbedding.run(r.modelKey, r.hash, dim, encodeVector(r.embedding));
    }
  });

  private readonly recordTx = this.txn((rows: readonly PathRecord[]) => {
    for (const r of rows) this.upsertPath.run(path.resolve(r.path), r.size, r.mtimeMs, r.hash);
  });

  private readonly rootsTx = this.txn((a: { modelKey: string; roots: readonly IndexedRoot[] }) => {
    const insert = this.db.prepare(
      `INSERT INTO indexed_roots (model_key, root, folder, prefix, prefix_end) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (model_key, root) DO UPDATE SET folder = excluded.folder, prefix = excluded.prefix, prefix_end = excluded.prefix_end`,
    );
    for (const r of a.roots) {
      const row = rootRow(r);
      insert.run(a.modelKey, row.root, row.folder, row.prefix, row.end);
    }
  });

  private readonly forgetTx = this.txn((paths: readonly string[]) => {
    for (const p of paths) this.deletePath.run(path.resolve(p));
  });

  /** Transactions are built lazily: field initialisers run before the constructor sets `db`. */
  private txn<A>(fn: (arg: A) => void): { immediate: (arg: A) => void } {
    let tx: Database.Transaction<(arg: A) => void> | undefined;
    return { immediate: (arg: A) => (tx ??= this.db.transaction(fn)).immediate(arg) };
  }

  /** Runs a write, turning SQLite's failures (read-only, full disk, locked) into errors a user can act on. */
  private write<T>(fn: () => T): T {
    if (this.readonly) throw new ClipOodError("INPUT", `${this.file}: the store was opened read-only`, { hint: "open it without readonly to change it" });
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof Database.SqliteError)) throw e;
      if (e.code.startsWith("SQLITE_BUSY")) {
        throw new ClipOodError("INPUT", `${this.file}: the store is locked by another clip-ood process`, {
          hint: "wait for the other run to finish, or pass --store <file> to use another store",
          cause: e,
        });
      }
      if (e.code.startsWith("SQLITE_CORRUPT") || e.code === "SQLITE_NOTADB") throw damagedStore(this.file, e.message, e);
      if (e.code === "SQLITE_FULL" || e.code.startsWith("SQLITE_IOERR")) {
        // SQLite rolled the transaction back: what was committed before is intact, and a rerun resumes.
        throw new ClipOodError("INPUT", `${this.file}: cannot write the store (${e.message}); everything stored before is kept`, {
          hint: `free some disk space and run again (stored images are not embedded twice), or ${STORE_HINT}`,
          cause: e,
        });
      }
      throw new ClipOodError("INPUT", `${this.file}: cannot write the store (${e.message})`, { hint: STORE_HINT, cause: e });
    }
  }


}

/** Refuses, before SQLite sees it, a location that cannot hold a store or a file that is not one. */
function checkLocation(file: string, readonly: boolean): void {
  const info = statOrUndefined(file);
  if (info?.isDirectory()) throw new ClipOodError("INPUT", `${file} is a folder, not a store file`, { hint: STORE_HINT });
  if (info && info.size > 0 && !hasSqliteHeader(file)) {
    throw new ClipOodError("INPUT", `${file} is not a clip-ood store (not an SQLite database)`, {
      hint: `move that file away, or ${STORE_HINT}`,
    });
  }
  if (readonly) {
    if (!info) throw new ClipOodError("INPUT", `no store at ${file}`, { hint: "index some images first, or pass --store <file> to name the store" });
    return;
  }
  const dir = path.dirname(file);
  try {
    mkdirSync(dir, { recursive: true });
    // SQLite writes -wal and -shm files beside the store, so the folder itself must be writable too.
    accessSync(dir, constants.W_OK);
    if (info) accessSync(file, constants.R_OK | constants.W_OK);
  } catch (e) {
    throw new ClipOodError("INPUT", `cannot write the store ${file} (${messageOf(e)})`, { hint: STORE_HINT, cause: e });
  }
}

function hasSqliteHeader(file: string): boolean {
  const head = Buffer.alloc(SQLITE_HEADER.length);
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(SQLITE_HEADER);
  } catch (e) {
    throw new ClipOodError("INPUT", `cannot read the store ${file} (${messageOf(e)})`, { hint: STORE_HINT, cause: e });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function ensureSchema(db: Database.Database, file: string, readonly: boolean): void {
  const tables = () => new Set(db.prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all());
  let names = tables();
  if (names.size === 0) {
    if (readonly) throw new ClipOodError("INPUT", `${file} is an empty database, not yet a clip-ood store`, { hint: "index some images into it first" });
    db.transaction(() => {
      // Two processes may create the store at once; the second finds the first's tables and keeps them.
      db.exec(SCHEMA + INDEXED_ROOTS);
      db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?), ('created_by', 'clip-ood')").run(String(STORE_SCHEMA_VERSION));
    }).immediate();
    names = tables();
  }
  const version = names.has("meta")
    ? db.prepare<[], string>("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()
    : undefined;
  const n = version === undefined ? NaN : Number(version);
  if (!Number.isInteger(n) || n < 1) {
    throw new ClipOodError("INPUT", `${file} is not a clip-ood store (an SQLite database without its schema version)`, {
      hint: `move that file away, or ${STORE_HINT}`,
    });
  }
  if (n > STORE_SCHEMA_VERSION) {
    throw new ClipOodError("INPUT", `${file} was written by a newer clip-ood (store schema ${n}; this version reads up to ${STORE_SCHEMA_VERSION})`, {
      hint: `upgrade clip-ood, or ${STORE_HINT}`,
    });
  }
  // Forward-only, one version at a time, each in one transaction; a read-only store is read as it is.
  if (n < 2 && !readonly) {
    db.transaction(() => {
      db.exec(INDEXED_ROOTS);
      db.prepare("UPDATE meta SET value = '2' WHERE key = 'schema_version'").run();
    }).immediate();
  }
}

function openError(file: string, e: unknown): unknown {
  if (e instanceof ClipOodError) return e;
  const code = e instanceof Database.SqliteError ? e.code : "";
  if (code === "SQLITE_NOTADB") {
    return new ClipOodError("INPUT", `${file} is not a clip-ood store (not an SQLite database)`, { hint: `move that file away, or ${STORE_HINT}`, cause: e });
  }
  if (code.startsWith("SQLITE_CORRUPT")) {
    return damagedStore(file, messageOf(e), e);
  }
  if (code.startsWith("SQLITE_BUSY")) {
    return new ClipOodError("INPUT", `${file}: the store is locked by another clip-ood process`, {
      hint: "wait for the other run to finish, or pass --store <file> to use another store",
      cause: e,
    });
  }
  return new ClipOodError("INPUT", `cannot open the store ${file} (${messageOf(e)})`, { hint: STORE_HINT, cause: e });
}

/**
 * The WHERE clause on `p.path` for a scope, with its parameters: `under` as a range on the path index
 * (everything below the folder, on a separator boundary); `indexed` as a path equal to one of the model
 * key's file roots (a primary-key lookup) or inside one of its folder roots' ranges.
 */
function scopeClause(modelKey: string | undefined, scope: RowScope): { where: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  if (scope.under !== undefined) {
    conditions.push("((p.path >= ? AND p.path < ?) OR p.path = ?)");
    params.push(...underRange(scope.under));
  }
  if (scope.indexed) {
    conditions.push(`(EXISTS (SELECT 1 FROM indexed_roots r WHERE r.model_key = ? AND r.root = p.path)
      OR EXISTS (SELECT 1 FROM indexed_roots r WHERE r.model_key = ? AND r.folder = 1 AND p.path >= r.prefix AND p.path < r.prefix_end))`);
    params.push(modelKey, modelKey);
  }
  return { where: conditions.length === 0 ? "" : `WHERE ${conditions.join(" AND ")}`, params };
}

function statOrUndefined(file: string) {
  try {
    return statSync(file);
  } catch (e) {
    if (isMissingError(e)) return undefined;
    throw new ClipOodError("INPUT", `cannot use the store ${file} (${messageOf(e)})`, { hint: STORE_HINT, cause: e });
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
