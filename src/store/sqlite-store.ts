/**
 * The embedded store: one SQLite file (WAL), the default. What it keeps is described in ./store.ts.
 *
 * Crash safety is SQLite's: every batch is one transaction, so a process killed at any moment (even
 * SIGKILL) leaves the file consistent, without the batch in flight, and a rerun fills in the rest.
 *
 * Several processes may write one file (WAL; a writer waits for another's transaction). Each write
 * transaction is IMMEDIATE, holding the write lock from its start: it reads the change stamp there,
 * tags the rows it changes with the next one and publishes it on commit, so that a copy of the rows kept
 * between searches (./row-copies.ts) is refreshed with exactly the rows changed since its stamp.
 */
import { accessSync, closeSync, constants, mkdirSync, openSync, readSync, statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { ClipOodError, messageOf } from "../errors.js";
import type { Refresh, StoreStamp } from "./local-rows.js";
import { RowCopies } from "./row-copies.js";
import type { RefreshRead, StampedRows } from "./row-copies.js";
import { checkDimension, damagedStore, decodeStoredVector, decodeVectorRows, encodeVector, isGone, isMissingError, rootRow, STORE_HINT, STORE_SCHEMA_VERSION, underRange } from "./store.js";
import type { EmbeddingStore, IndexedRoot, PathRecord, RowScope, StoredRow, StoreRows, StoreStats, VectorRow } from "./store.js";

/** Schema 1: path records and float32 embeddings. */
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

/** What a trigger does on a write that carries no stamp: a new stamp, published as a removal. */
const UNSTAMPED_WRITE = `
  UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'stamp';
  UPDATE meta SET value = (SELECT value FROM meta WHERE key = 'stamp') WHERE key = 'last_delete';`;

/**
 * Schema 3: the change stamp (in meta: `stamp`, `last_delete` and `store_id`, a random id that tells
 * another file put in this one's place apart) and the stamp that last wrote each row. Rows from before
 * carry 0. Older clip-oods, which would write without bumping it, refuse the file by its version; one
 * that had it open before the migration (a `serve` left running through an upgrade) still writes, and
 * the triggers catch that: a row written without a stamp (0, or an update that kept a published stamp)
 * counts as a removal, so that copies are read again whole rather than miss it. This version's writes,
 * tagged with the stamp they are about to publish, never fire them. (A path such a process deletes
 * stays in copies until the next removal; search drops paths whose files are gone.)
 */
const CHANGE_STAMP = `
  ALTER TABLE paths ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE embeddings ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX paths_by_stamp ON paths (stamp);
  CREATE INDEX embeddings_by_stamp ON embeddings (model_key, stamp);
  INSERT INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(16)))), ('stamp', '0'), ('last_delete', '0');
  ${["paths", "embeddings"].map((table) => `CREATE TRIGGER ${table}_inserted_unstamped AFTER INSERT ON ${table} WHEN NEW.stamp = 0 BEGIN ${UNSTAMPED_WRITE} END;`).join("\n  ")}
  CREATE TRIGGER paths_updated_unstamped AFTER UPDATE ON paths
    WHEN NEW.stamp = OLD.stamp AND NEW.stamp <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'stamp')
      AND (NEW.size IS NOT OLD.size OR NEW.mtime_ms IS NOT OLD.mtime_ms OR NEW.hash IS NOT OLD.hash)
    BEGIN ${UNSTAMPED_WRITE} END;
`;

/** What takes a store of version n − 1 to version n; run in order, each in the transaction of the whole climb. */
const MIGRATIONS: Readonly<Record<number, string>> = { 2: INDEXED_ROOTS, 3: CHANGE_STAMP };

const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1");

type PathRow = { path: string; size: number; mtimeMs: number; hash: string };
/** What a write transaction did to the rows copies hold. */
type Change = "none" | "changed" | "deleted";
type ChangedRow = { path: string; hash: string; dim: number | null; vector: Buffer | null };

/** The statements that write rows, prepared on the first write: a read-only store of an older schema has not their columns. */
interface Writes {
  upsertPath: Database.Statement<[string, number, number, string, number]>;
  insertEmbedding: Database.Statement<[string, string, number, Buffer, number]>;
  deletePath: Database.Statement<[string]>;
  stamp: Database.Statement<[], string>;
  publish: Database.Statement<[string, string]>;
}

export class SqliteStore implements EmbeddingStore {
  readonly backend = "sqlite";
  readonly file: string;
  private readonly db: Database.Database;
  private readonly readonly: boolean;
  /** False only for a schema-1 store opened read-only: it has no indexed roots and cannot be given the table. */
  private readonly hasRoots: boolean;
  /**
   * The rows kept between searches (./row-copies.ts); undefined for a store of an older schema opened
   * read-only (it has no change stamp), or when turned off.
   */
  private readonly copies: RowCopies | undefined;

  private readonly selectPath: Database.Statement<[string], { size: number; mtimeMs: number; hash: string }>;
  private readonly selectEmbedding: Database.Statement<[string, string], { dim: number; vector: Buffer }>;
  private readonly selectDim: Database.Statement<[string], number>;
  private writes: Writes | undefined;

  private constructor(file: string, db: Database.Database, readonly: boolean, version: number, localCopy: boolean) {
    this.file = file;
    this.db = db;
    this.readonly = readonly;
    this.hasRoots = version >= 2;
    this.selectPath = db.prepare("SELECT size, mtime_ms AS mtimeMs, hash FROM paths WHERE path = ?");
    this.selectEmbedding = db.prepare("SELECT dim, vector FROM embeddings WHERE hash = ? AND model_key = ?");
    this.selectDim = db.prepare<[string], number>("SELECT dim FROM embeddings WHERE model_key = ? LIMIT 1").pluck();
    this.copies = localCopy && version >= 3 ? new RowCopies(this.stampedRows(), file, file) : undefined;
  }

  get location(): string {
    return this.file;
  }

  get localFilesBase(): string {
    return this.file;
  }

  /**
   * Opens (creating or migrating) the store. `localCopy: false` reads every row from the file on every
   * read, as before copies (the bench's baseline).
   */
  static open(file: string, opts: { readonly?: boolean; localCopy?: boolean } = {}): SqliteStore {
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
      const version = ensureSchema(db, resolved, readonly);
      return new SqliteStore(resolved, db, readonly, version, opts.localCopy ?? true);
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
    if (this.copies) return this.copies.rows(modelKey, opts, () => this.indexedRoots(modelKey));
    // Counted and read in one read transaction (one WAL snapshot), so a concurrent writer cannot change the count in between.
    return this.db.transaction(() => this.readRows(modelKey, opts))();
  }

  /** The model's rows in the scope, read from the file; inside a read transaction, so that they agree. */
  private readRows(modelKey: string, opts: RowScope): StoreRows {
    if (opts.indexed && !this.hasRoots) return { paths: [], hashes: [], dim: 0, data: new Float32Array(0) };
    const scope = scopeClause(modelKey, opts);
    const from = `FROM paths p JOIN embeddings e ON e.hash = p.hash AND e.model_key = ? ${scope.where}`;
    const params = [modelKey, ...scope.params];
    const n = this.db.prepare<unknown[], number>(`SELECT count(*) ${from}`).pluck().get(...params) ?? 0;
    const dim = this.selectDim.get(modelKey) ?? 0;
    const paths: string[] = [];
    const hashes: string[] = [];
    const data = new Float32Array(n * dim);
    for (const row of this.db.prepare<unknown[], VectorRow>(`SELECT p.path, p.hash, e.dim, e.vector ${from} ORDER BY p.path`).iterate(...params)) {
      if (row.dim !== dim || paths.length >= n) throw damagedStore(this.file, `embeddings of model ${modelKey} disagree on their dimension`);
      decodeStoredVector(this.file, row.vector, dim, data, paths.length * dim);
      paths.push(row.path);
      hashes.push(row.hash);
    }
    return { paths, hashes, dim, data };
  }

  /**
   * The change stamp and the rows a copy's refresh reads (./row-copies.ts). One read transaction is one
   * WAL snapshot, so the rows read are exactly those of the stamp read first in it; and it runs
   * synchronously, so nothing else of this process runs on the connection meanwhile.
   */
  private stampedRows(): StampedRows {
    const changedSince = this.db.prepare<[{ key: string; since: number }], ChangedRow>(
      // Paths changed since (their new content's row, if the model has one) and the model's new
      // embeddings of paths recorded before; ORDER BY 1 sorts in the paths' byte order (BINARY). Left
      // to itself, the planner would rather scan every path in path order than sort the few changed.
      `SELECT p.path, p.hash, e.dim, e.vector FROM paths p INDEXED BY paths_by_stamp
         LEFT JOIN embeddings e ON e.hash = p.hash AND e.model_key = @key WHERE p.stamp > @since
       UNION ALL
       SELECT p.path, p.hash, e.dim, e.vector FROM embeddings e
         JOIN paths p ON p.hash = e.hash WHERE e.model_key = @key AND e.stamp > @since AND p.stamp <= @since
       ORDER BY 1`,
    );
    const read = this.db.transaction((modelKey: string, plan: (now: StoreStamp) => Refresh): RefreshRead => {
      const now = this.stampNow();
      const want = plan(now);
      if (want.kind === "current") return { now, kind: "current" };
      if (want.kind === "whole") return { now, kind: "whole", rows: this.readRows(modelKey, {}) };
      const r = changedSince.all({ key: modelKey, since: want.stamp });
      return { now, kind: "since", changed: r.map((x) => x.path), rows: decodeVectorRows(this.file, modelKey, r.filter((x): x is VectorRow => x.vector !== null)) };
    });
    return {
      stamp: async () => this.stampNow(),
      read: async (modelKey, plan) => read(modelKey, plan),
    };
  }

  private stampNow(): StoreStamp {
    const meta = new Map(this.db.prepare<[], [string, string]>("SELECT key, value FROM meta WHERE key IN ('store_id', 'stamp', 'last_delete')").raw().all());
    const [storeId, stamp, lastDelete] = [meta.get("store_id"), Number(meta.get("stamp")), Number(meta.get("last_delete"))];
    if (storeId === undefined || !Number.isSafeInteger(stamp) || !Number.isSafeInteger(lastDelete)) throw damagedStore(this.file, "its change stamp is missing from meta");
    return { storeId, stamp, lastDelete };
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
      search:
        "exact, or for large collections an HNSW index (usearch) beside the store, updated in place (models[].annIndex: its search width and measured recall); the rows from a copy beside the store, refreshed when they change",
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
        const w = this.writeStatements();
        const stamp = Number(w.stamp.get()) + 1;
        let gone = 0;
        for (const p of missing) gone += w.deletePath.run(p).changes;
        this.publish(stamp, gone > 0 ? "deleted" : "none");
        // Embeddings no path refers to are in no copy: removing them changes no stamp.
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
    await this.copies?.close();
    if (this.db.open) this.db.close();
  }

  private readonly putTx = this.stampedTxn((rows: readonly StoredRow[], stamp, w) => {
    const dims = new Map<string, number>();
    let changed = 0;
    for (const r of rows) {
      let dim = dims.get(r.modelKey);
      if (dim === undefined) {
        dim = this.selectDim.get(r.modelKey) ?? r.embedding.length;
        dims.set(r.modelKey, dim);
      }
      checkDimension(this.file, r, dim);
      changed += w.upsertPath.run(path.resolve(r.path), r.size, r.mtimeMs, r.hash, stamp).changes;
      changed += w.insertEmbedding.run(r.modelKey, r.hash, dim, encodeVector(r.embedding), stamp).changes;
    }
    return changed > 0 ? "changed" : "none";
  });

  private readonly recordTx = this.stampedTxn((rows: readonly PathRecord[], stamp, w) => {
    let changed = 0;
    for (const r of rows) changed += w.upsertPath.run(path.resolve(r.path), r.size, r.mtimeMs, r.hash, stamp).changes;
    return changed > 0 ? "changed" : "none";
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

  private readonly forgetTx = this.stampedTxn((paths: readonly string[], stamp, w) => {
    let gone = 0;
    for (const p of paths) gone += w.deletePath.run(path.resolve(p)).changes;
    return gone > 0 ? "deleted" : "none";
  });

  /** Transactions are built lazily: field initialisers run before the constructor sets `db`. */
  private txn<A>(fn: (arg: A) => void): { immediate: (arg: A) => void } {
    let tx: Database.Transaction<(arg: A) => void> | undefined;
    return { immediate: (arg: A) => (tx ??= this.db.transaction(fn)).immediate(arg) };
  }

  /**
   * A transaction that changes rows: run IMMEDIATE (txn), so that it holds the write lock from its start
   * and no other writer commits between its reading the stamp and its publishing the next one. `fn` tags
   * what it writes with `stamp` and says what it did.
   */
  private stampedTxn<A>(fn: (arg: A, stamp: number, w: Writes) => Change): { immediate: (arg: A) => void } {
    return this.txn((arg: A) => {
      const w = this.writeStatements();
      const stamp = Number(w.stamp.get()) + 1;
      this.publish(stamp, fn(arg, stamp, w));
    });
  }

  /** Publishes `stamp` when the transaction changed rows; after a removal, copies older than it are read again whole. */
  private publish(stamp: number, change: Change): void {
    if (change === "none") return;
    const w = this.writeStatements();
    w.publish.run(String(stamp), "stamp");
    if (change === "deleted") w.publish.run(String(stamp), "last_delete");
  }

  private writeStatements(): Writes {
    return (this.writes ??= {
      // A record written again unchanged (every run of detect over known images) keeps its stamp, so
      // that it does not send every copy to refresh.
      upsertPath: this.db.prepare(
        `INSERT INTO paths (path, size, mtime_ms, hash, stamp) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, hash = excluded.hash, stamp = excluded.stamp
         WHERE paths.size IS NOT excluded.size OR paths.mtime_ms IS NOT excluded.mtime_ms OR paths.hash IS NOT excluded.hash`,
      ),
      insertEmbedding: this.db.prepare("INSERT OR IGNORE INTO embeddings (model_key, hash, dim, vector, stamp) VALUES (?, ?, ?, ?, ?)"),
      deletePath: this.db.prepare("DELETE FROM paths WHERE path = ?"),
      stamp: this.db.prepare<[], string>("SELECT value FROM meta WHERE key = 'stamp'").pluck(),
      publish: this.db.prepare("UPDATE meta SET value = ? WHERE key = ?"),
    });
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

/** Creates or migrates the schema (a read-only store is read as it is); returns the version the store is at. */
function ensureSchema(db: Database.Database, file: string, readonly: boolean): number {
  const tables = () => new Set(db.prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all());
  const schemaVersion = () => db.prepare<[], string>("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get();
  let names = tables();
  if (names.size === 0) {
    if (readonly) throw new ClipOodError("INPUT", `${file} is an empty database, not yet a clip-ood store`, { hint: "index some images into it first" });
    db.transaction(() => {
      // Two processes may create the store at once; the second finds the first's tables and keeps them.
      if (tables().size > 0) return;
      db.exec(SCHEMA);
      db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', '1'), ('created_by', 'clip-ood')").run();
      migrateFrom(db, 1);
    }).immediate();
    names = tables();
  }
  const version = names.has("meta") ? schemaVersion() : undefined;
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
  if (n === STORE_SCHEMA_VERSION || readonly) return n;
  // Forward-only, in one transaction that holds the write lock; the version is read again under it, as
  // another process opening the file at the same moment may have migrated it meanwhile.
  db.transaction(() => migrateFrom(db, Number(schemaVersion()))).immediate();
  return STORE_SCHEMA_VERSION;
}

/** Takes a store at `version` to STORE_SCHEMA_VERSION, one version at a time; inside a write transaction. */
function migrateFrom(db: Database.Database, version: number): void {
  const setVersion = db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'");
  for (let v = version + 1; v <= STORE_SCHEMA_VERSION; v++) {
    db.exec(MIGRATIONS[v]!);
    setVersion.run(String(v));
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
