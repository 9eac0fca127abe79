/**
 * The shared store: a PostgreSQL database that many machines read and fill at once (`--store
 * postgres://…`). Same records as the SQLite store (./store.ts), in the schema `clip_ood`, through a
 * node-postgres pool.
 *
 * - Migrations (./postgres-migrations.ts) run on first use, once however many machines start together.
 * - Every batch is one transaction; embeddings are inserted with ON CONFLICT DO NOTHING, so two machines
 *   embedding the same content store it once.
 * - Paths are compared in byte order (COLLATE "C"), so a folder is a contiguous key range as in SQLite.
 * - Where the `vector` extension (pgvector) can be had, each embedding is also kept as a `vector`
 *   column, and `nearest` searches with an HNSW index (cosine) per model key, built on first search.
 *   Elsewhere the rows are ranked in this process as for SQLite, from a copy kept on this machine
 *   (./row-copies.ts) and checked against the database's change stamp on every read: only rows changed
 *   since are read again, or all of them after a deletion.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import type pg from "pg";
import { ClipOodError, messageOf } from "../errors.js";
import { withPoolClient } from "./db-retry.js";
import type { StoreStamp } from "./local-rows.js";
import { migrate } from "./postgres-migrations.js";
import { RowCopies } from "./row-copies.js";
import type { StampedRows } from "./row-copies.js";
import { checkDimension, damagedStore, decodeStoredVector, decodeVectorRows, encodeVector, isGone, rootRow, underRange } from "./store.js";
import type { EmbeddingStore, IndexedRoot, NearestHit, PathRecord, RowScope, StoredRow, StoreRows, StoreStats, VectorRow } from "./store.js";

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** The URL without its password, for messages and file names. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "";
    return u.toString().replace(/^(postgres(?:ql)?:\/\/[^:@/]*):@/i, "$1@");
  } catch {
    return "postgres://…";
  }
}

const PG_HINT = "check that PostgreSQL runs there and the URL's user, password and database are right (postgres://user:password@host:5432/db)";

/**
 * pg is loaded with the first PostgreSQL store rather than with this module, which every clip-ood
 * command imports (store/open.ts) whether or not it uses PostgreSQL.
 */
function loadPg(): Promise<typeof pg> {
  return import("pg").then((m) => m.default);
}

export type Queryable = Pick<pg.PoolClient, "query">;

/** Thrown inside a transaction to roll it back without an error. */
const ROLLBACK = Symbol("rollback");

/**
 * The store's database for records kept beside the embeddings (the server's detectors and eval jobs):
 * queries through the store's pool, failures as ClipOodErrors naming the database.
 */
export interface PostgresDatabase {
  /** The URL without its password. */
  readonly location: string;
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** `fn` inside BEGIN … COMMIT on one connection; rolled back if it throws. */
  transaction<T>(fn: (c: Queryable) => Promise<T>): Promise<T>;
}

export class PostgresStore implements EmbeddingStore, PostgresDatabase {
  readonly backend = "postgres";
  readonly location: string;
  readonly localFilesBase: string;
  private readonly pool: pg.Pool;
  /** pgvector's version where the extension is installed in the database, else undefined. */
  private readonly pgvector: string | undefined;
  private readonly hnswReady = new Set<string>();
  /** The rows kept on this machine (without pgvector, unless turned off). */
  private readonly copies: RowCopies | undefined;
  private closed = false;

  private constructor(location: string, localFilesBase: string, pool: pg.Pool, pgvector: string | undefined, localCopy: boolean) {
    this.location = location;
    this.localFilesBase = localFilesBase;
    this.pool = pool;
    this.pgvector = pgvector;
    this.copies = localCopy && !pgvector ? new RowCopies(this.stampedRows(), location, localFilesBase) : undefined;
  }

  /**
   * Connects, migrates and checks the schema version. `localDir` holds this machine's files for the
   * store (the rows' copy and the usearch index when there is no pgvector). `vector: false` never uses
   * pgvector; `localCopy: false` reads every row from the database on every read, as before copies
   * (the bench's baseline).
   */
  static async open(url: string, opts: { localDir: string; poolSize?: number; vector?: boolean; localCopy?: boolean }): Promise<PostgresStore> {
    const location = redactUrl(url);
    const { Pool } = await loadPg();
    const pool = new Pool({ connectionString: url, max: opts.poolSize ?? 4, connectionTimeoutMillis: 10_000 });
    // An idle client's connection dropping (a restarted server) must not crash the process.
    pool.on("error", () => {});
    try {
      const pgvector = await migrate(pool, location, opts.vector ?? true);
      const base = path.join(opts.localDir, `pg-${createHash("sha256").update(location).digest("hex").slice(0, 16)}`);
      return new PostgresStore(location, base, pool, pgvector, opts.localCopy ?? true);
    } catch (e) {
      await pool.end().catch(() => {});
      throw connectionError(location, e);
    }
  }

  async lookupPath(file: string, size: number, mtimeMs: number): Promise<string | undefined> {
    const r = await this.query<{ size: string; mtime_ms: number; hash: string }>("SELECT size, mtime_ms, hash FROM clip_ood.paths WHERE path = $1", [path.resolve(file)]);
    const row = r.rows[0];
    return row && Number(row.size) === size && row.mtime_ms === mtimeMs ? row.hash : undefined;
  }

  async getEmbedding(hash: string, modelKey: string): Promise<Float32Array | undefined> {
    const r = await this.query<{ dim: number; vector: Buffer }>("SELECT dim, vector FROM clip_ood.embeddings WHERE hash = $1 AND model_key = $2", [hash, modelKey]);
    const row = r.rows[0];
    if (!row) return undefined;
    const out = new Float32Array(row.dim);
    decodeStoredVector(this.location, row.vector, row.dim, out, 0);
    return out;
  }

  async putBatch(rows: readonly StoredRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.transaction(async (c) => {
      const stamp = await lockStamp(c);
      await commitStamp(c, stamp, (await this.writeRows(c, rows, stamp)) > 0 ? "changed" : "none");
    });
  }

  /**
   * Stores `rows`, records `known` paths and runs `also` in one transaction, committed only when `also`
   * returns true: a queue worker completes its job there, so that its results and the job's completion
   * are written together or not at all. Returns whether it committed.
   */
  async putBatchWith(rows: readonly StoredRow[], known: readonly PathRecord[], also: (db: Queryable) => Promise<boolean>): Promise<boolean> {
    let committed = true;
    try {
      await this.transaction(async (c) => {
        const stamp = await lockStamp(c);
        const changed = (await this.writeRows(c, rows, stamp)) + (await upsertPaths(c, known, stamp));
        await commitStamp(c, stamp, changed > 0 ? "changed" : "none");
        if (!(await also(c))) throw ROLLBACK;
      });
    } catch (e) {
      if (e !== ROLLBACK) throw e;
      committed = false;
    }
    return committed;
  }

  /** Writes rows tagged with `stamp` (./local-rows.ts); returns how many path or embedding rows changed. */
  private async writeRows(c: Queryable, rows: readonly StoredRow[], stamp: number): Promise<number> {
    if (rows.length === 0) return 0;
    const dims = new Map<string, number>();
    for (const r of rows) {
      let dim = dims.get(r.modelKey);
      if (dim === undefined) {
        const d = await c.query<{ dim: number }>("SELECT dim FROM clip_ood.embeddings WHERE model_key = $1 LIMIT 1", [r.modelKey]);
        dim = d.rows[0]?.dim ?? r.embedding.length;
        dims.set(r.modelKey, dim);
      }
      checkDimension(this.location, r, dim);
    }
    let changed = await upsertPaths(c, rows, stamp);
    const vectorColumn = this.pgvector ? ", vec" : "";
    for (const chunk of chunks(rows)) {
      const values: unknown[] = [stamp];
      const tuples = chunk.map((r) => {
        const n = values.push(r.modelKey, r.hash, r.embedding.length, encodeVector(r.embedding));
        if (!this.pgvector) return `($${n - 3}, $${n - 2}, $${n - 1}, $${n}, $1)`;
        values.push(vectorLiteral(r.embedding));
        return `($${n - 3}, $${n - 2}, $${n - 1}, $${n}, $1, $${n + 1}::vector)`;
      });
      const r = await c.query(`INSERT INTO clip_ood.embeddings (model_key, hash, dim, vector, stamp${vectorColumn}) VALUES ${tuples.join(", ")} ON CONFLICT DO NOTHING`, values);
      changed += r.rowCount ?? 0;
    }
    return changed;
  }

  async recordPaths(rows: readonly PathRecord[]): Promise<void> {
    if (rows.length === 0) return;
    await this.transaction(async (c) => {
      const stamp = await lockStamp(c);
      await commitStamp(c, stamp, (await upsertPaths(c, rows, stamp)) > 0 ? "changed" : "none");
    });
  }

  async forgetPaths(paths: readonly string[]): Promise<void> {
    if (paths.length === 0) return;
    await this.transaction(async (c) => {
      const stamp = await lockStamp(c);
      const r = await c.query("DELETE FROM clip_ood.paths WHERE path = ANY($1::text[])", [paths.map((p) => path.resolve(p))]);
      await commitStamp(c, stamp, (r.rowCount ?? 0) > 0 ? "deleted" : "none");
    });
  }

  async paths(opts: { under?: string } = {}): Promise<PathRecord[]> {
    const [clause, params] = scope(undefined, opts, 1);
    const r = await this.query<{ path: string; size: string; mtime_ms: number; hash: string }>(
      `SELECT path, size, mtime_ms, hash FROM clip_ood.paths p ${clause ? `WHERE ${clause}` : ""} ORDER BY path`,
      params,
    );
    return r.rows.map((x) => ({ path: x.path, size: Number(x.size), mtimeMs: x.mtime_ms, hash: x.hash }));
  }

  async embeddingsFor(modelKey: string, opts: RowScope = {}): Promise<StoreRows> {
    if (!this.copies) return this.transaction((c) => this.readRows(c, modelKey, opts));
    return this.copies.rows(modelKey, opts, () => this.indexedRoots(modelKey));
  }

  private async readRows(c: Queryable, modelKey: string, opts: RowScope): Promise<StoreRows> {
    const [clause, params] = scope(modelKey, opts, 2);
    // One statement reads one snapshot, so the rows agree with each other however busy the writers are.
    const r = await c.query<VectorRow>(
      `SELECT p.path, p.hash, e.dim, e.vector FROM clip_ood.paths p JOIN clip_ood.embeddings e ON e.hash = p.hash AND e.model_key = $1
       ${clause ? `WHERE ${clause}` : ""} ORDER BY p.path`,
      [modelKey, ...params],
    );
    return decodeVectorRows(this.location, modelKey, r.rows);
  }

  /**
   * The change stamp and the rows a copy's refresh reads (./row-copies.ts): in one snapshot (repeatable
   * read), so that the rows are exactly those of the stamp read with them.
   */
  private stampedRows(): StampedRows {
    return {
      stamp: async () => this.stampOf((await this.query<StampRow>(STAMP_QUERY)).rows[0]),
      read: (modelKey, plan) =>
        this.transaction(async (c) => {
          await c.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
          const now = this.stampOf((await c.query<StampRow>(STAMP_QUERY)).rows[0]);
          const want = plan(now);
          if (want.kind === "current") return { now, kind: "current" };
          if (want.kind === "whole") return { now, kind: "whole", rows: await this.readRows(c, modelKey, {}) };
          // Paths changed since (their new content's row, if the model has one) and the model's new
          // embeddings of paths recorded before; ORDER BY 1 sorts in the paths' byte order (COLLATE "C").
          const r = await c.query<{ path: string; hash: string; dim: number | null; vector: Buffer | null }>(
            `SELECT p.path, p.hash, e.dim, e.vector FROM clip_ood.paths p
               LEFT JOIN clip_ood.embeddings e ON e.hash = p.hash AND e.model_key = $1 WHERE p.stamp > $2
             UNION ALL
             SELECT p.path, p.hash, e.dim, e.vector FROM clip_ood.embeddings e
               JOIN clip_ood.paths p ON p.hash = e.hash WHERE e.model_key = $1 AND e.stamp > $2 AND p.stamp <= $2
             ORDER BY 1`,
            [modelKey, want.stamp],
          );
          const rows = decodeVectorRows(this.location, modelKey, r.rows.filter((x): x is VectorRow => x.vector !== null));
          return { now, kind: "since", changed: r.rows.map((x) => x.path), rows };
        }),
    };
  }

  private stampOf(row: StampRow | undefined): StoreStamp {
    if (!row) throw damagedStore(this.location, "clip_ood.change_stamp has no row");
    return { storeId: row.store_id, stamp: Number(row.stamp), lastDelete: Number(row.last_delete) };
  }

  async addIndexedRoots(modelKey: string, roots: readonly IndexedRoot[]): Promise<void> {
    const rows = [...new Map(roots.map((r) => [path.resolve(r.path), rootRow(r)])).values()];
    await this.transaction(async (c) => {
      for (const chunk of chunks(rows)) {
        const values: unknown[] = [];
        const tuples = chunk.map((r) => {
          const n = values.push(modelKey, r.root, r.folder === 1, r.prefix, r.end);
          return `($${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
        });
        await c.query(
          `INSERT INTO clip_ood.indexed_roots (model_key, root, folder, prefix, prefix_end) VALUES ${tuples.join(", ")}
           ON CONFLICT (model_key, root) DO UPDATE SET folder = excluded.folder, prefix = excluded.prefix, prefix_end = excluded.prefix_end`,
          values,
        );
      }
    });
  }

  async indexedRoots(modelKey: string): Promise<IndexedRoot[]> {
    const r = await this.query<{ root: string; folder: boolean }>("SELECT root, folder FROM clip_ood.indexed_roots WHERE model_key = $1 ORDER BY root", [modelKey]);
    return r.rows.map((x) => ({ path: x.root, folder: x.folder }));
  }

  async stats(): Promise<StoreStats> {
    const count = async (table: string) => Number((await this.query<{ n: string }>(`SELECT count(*) AS n FROM clip_ood.${table}`)).rows[0]?.n ?? 0);
    const models = await this.query<{ model_key: string; n: string; dim: number }>(
      "SELECT model_key, count(*) AS n, max(dim) AS dim FROM clip_ood.embeddings GROUP BY model_key ORDER BY model_key COLLATE \"C\"",
    );
    const bytes = await this.query<{ n: string }>(
      "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'clip_ood' AND c.relkind = 'r'",
    );
    return {
      backend: "postgres",
      location: this.location,
      search: this.pgvector
        ? `pgvector ${this.pgvector}: an HNSW index (cosine) in the database per model`
        : "no pgvector in this database: a copy of the rows on this machine, refreshed when they change, ranked exactly or, for large collections, with an HNSW index (usearch) kept beside the copy and updated in place (models[].annIndex)",
      bytes: Number(bytes.rows[0]?.n ?? 0),
      paths: await count("paths"),
      embeddings: await count("embeddings"),
      models: models.rows.map((m) => ({ modelKey: m.model_key, embeddings: Number(m.n), dim: m.dim })),
    };
  }

  async prune(): Promise<{ paths: number; embeddings: number }> {
    const missing = (await this.paths()).map((r) => r.path).filter(isGone);
    return this.transaction(async (c) => {
      const stamp = await lockStamp(c);
      const gone = await c.query("DELETE FROM clip_ood.paths WHERE path = ANY($1::text[])", [missing]);
      await commitStamp(c, stamp, (gone.rowCount ?? 0) > 0 ? "deleted" : "none");
      // Embeddings no path refers to are in no copy: removing them changes no stamp.
      const orphans = await c.query("DELETE FROM clip_ood.embeddings e WHERE NOT EXISTS (SELECT 1 FROM clip_ood.paths p WHERE p.hash = e.hash)");
      return { paths: missing.length, embeddings: orphans.rowCount ?? 0 };
    });
  }

  async vacuum(): Promise<void> {
    await this.query("VACUUM (ANALYZE) clip_ood.paths");
    await this.query("VACUUM (ANALYZE) clip_ood.embeddings");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.copies?.close();
    await this.pool.end();
  }

  /** pgvector's search, present only where the database has the extension. */
  get nearest(): EmbeddingStore["nearest"] {
    return this.pgvector ? (modelKey, query, k, opts) => this.searchVectors(modelKey, query, k, opts ?? {}) : undefined;
  }

  /**
   * The HNSW index first; the scope filters its candidates, so fewer than k rows back may only mean
   * that too few candidates were in the scope (or that k is above ef_search's cap): then the same query
   * runs exactly, without the index, which returns fewer than k only when the scope holds fewer.
   */
  private async searchVectors(modelKey: string, query: Float32Array, k: number, rows: RowScope): Promise<NearestHit[]> {
    const dim = query.length;
    const key = (await loadPg()).escapeLiteral(modelKey);
    await this.ensureHnsw(modelKey, dim);
    const [clause, params] = scope(modelKey, rows, 2);
    const run = (exact: boolean) =>
      this.transaction(async (c) => {
        if (exact) await c.query("SET LOCAL enable_indexscan = off");
        // The candidate list must hold the k asked for; pgvector's default (40) would cap the results.
        else await c.query(`SET LOCAL hnsw.ef_search = ${Math.min(1000, Math.max(40, 2 * k))}`);
        // The model key is a literal, not a parameter, so that the planner matches the partial index.
        const r = await c.query<{ path: string; hash: string; distance: number }>(
          `SELECT p.path, p.hash, e.vec::vector(${dim}) <=> $1::vector(${dim}) AS distance
           FROM clip_ood.embeddings e JOIN clip_ood.paths p ON p.hash = e.hash
           WHERE e.model_key = ${key} AND e.dim = ${dim} ${clause ? `AND (${clause})` : ""}
           ORDER BY e.vec::vector(${dim}) <=> $1::vector(${dim}), p.path LIMIT ${Math.floor(k)}`,
          [vectorLiteral(query), ...params],
        );
        return r.rows.map((x) => ({ path: x.path, hash: x.hash, score: 1 - Number(x.distance) }));
      });
    const approximate = await run(false);
    return approximate.length < k ? run(true) : approximate;
  }

  /** The model key's HNSW index, created once; rows stored before pgvector was installed are filled in first. */
  private async ensureHnsw(modelKey: string, dim: number): Promise<void> {
    if (this.hnswReady.has(modelKey)) return;
    const name = `embeddings_hnsw_${createHash("sha256").update(modelKey).digest("hex").slice(0, 16)}`;
    const key = (await loadPg()).escapeLiteral(modelKey);
    for (;;) {
      const r = await this.query<{ hash: string; dim: number; vector: Buffer }>(
        `SELECT hash, dim, vector FROM clip_ood.embeddings WHERE model_key = $1 AND vec IS NULL LIMIT 1000`,
        [modelKey],
      );
      if (r.rows.length === 0) break;
      await this.transaction(async (c) => {
        for (const row of r.rows) {
          const v = new Float32Array(row.dim);
          decodeStoredVector(this.location, row.vector, row.dim, v, 0);
          await c.query("UPDATE clip_ood.embeddings SET vec = $1::vector WHERE model_key = $2 AND hash = $3", [vectorLiteral(v), modelKey, row.hash]);
        }
      });
    }
    await this.query(
      `CREATE INDEX IF NOT EXISTS ${name} ON clip_ood.embeddings USING hnsw ((vec::vector(${dim})) vector_cosine_ops) WHERE model_key = ${key} AND dim = ${dim}`,
    );
    this.hnswReady.add(modelKey);
  }

  async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (e) {
      throw this.failure(e);
    }
  }

  async transaction<T>(fn: (c: Queryable) => Promise<T>): Promise<T> {
    try {
      return await withPoolClient(this.pool, async (client) => {
        try {
          await client.query("BEGIN");
          const out = await fn(client);
          await client.query("COMMIT");
          return out;
        } catch (e) {
          await client.query("ROLLBACK").catch(() => {});
          throw e;
        }
      });
    } catch (e) {
      throw e === ROLLBACK ? e : this.failure(e);
    }
  }

  private failure(e: unknown): unknown {
    if (e instanceof ClipOodError) return e;
    return new ClipOodError("INPUT", `${this.location}: ${messageOf(e)}; everything committed before is kept`, { hint: PG_HINT, cause: e });
  }
}

/** Rows per statement: PostgreSQL takes at most 65,535 parameters in one. */
const ROWS_PER_STATEMENT = 1000;

interface StampRow {
  store_id: string;
  stamp: string;
  last_delete: string;
}

const STAMP_QUERY = "SELECT store_id, stamp, last_delete FROM clip_ood.change_stamp";

/**
 * Takes the change stamp's row lock for the rest of the transaction and returns the stamp its writes
 * are tagged with. Writers holding the lock one after another, a row tagged above a copy's stamp was
 * committed after it: the copy's refresh reads exactly the rows it lacks.
 */
async function lockStamp(c: Queryable): Promise<number> {
  const r = await c.query<{ stamp: string }>("SELECT stamp FROM clip_ood.change_stamp FOR UPDATE");
  return Number(r.rows[0]?.stamp ?? 0) + 1;
}

/** Publishes `stamp` when the transaction changed rows; after a removal, copies older than it are read again whole. */
async function commitStamp(c: Queryable, stamp: number, change: "none" | "changed" | "deleted"): Promise<void> {
  if (change === "none") return;
  await c.query(`UPDATE clip_ood.change_stamp SET stamp = $1${change === "deleted" ? ", last_delete = $1" : ""}`, [stamp]);
}

function chunks<T>(rows: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) out.push(rows.slice(i, i + ROWS_PER_STATEMENT));
  return out;
}

/** Upserts path records tagged with `stamp`; returns how many were new or different. */
async function upsertPaths(c: Queryable, rows: readonly PathRecord[], stamp: number): Promise<number> {
  // The last record of a path wins, as with one upsert per row (one statement cannot touch a row twice).
  const byPath = [...new Map(rows.map((r) => [path.resolve(r.path), r]))];
  let changed = 0;
  for (const chunk of chunks(byPath)) {
    const values: unknown[] = [stamp];
    const tuples = chunk.map(([p, r]) => {
      const n = values.push(p, r.size, r.mtimeMs, r.hash);
      return `($${n - 3}, $${n - 2}, $${n - 1}, $${n}, $1)`;
    });
    // A record written again unchanged (every run of detect over known images) keeps its stamp, so
    // that it does not send every copy to refresh.
    const r = await c.query(
      `INSERT INTO clip_ood.paths AS old (path, size, mtime_ms, hash, stamp) VALUES ${tuples.join(", ")}
       ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, hash = excluded.hash, stamp = excluded.stamp
       WHERE (old.size, old.mtime_ms, old.hash) IS DISTINCT FROM (excluded.size, excluded.mtime_ms, excluded.hash)`,
      values,
    );
    changed += r.rowCount ?? 0;
  }
  return changed;
}

/**
 * The scope's condition on p.path with its parameters numbered from `first`: `under` as a path range;
 * `indexed` as a path equal to one of the model key's file roots or inside one of its folder roots.
 */
function scope(modelKey: string | undefined, rows: RowScope, first: number): [string, string[]] {
  const conditions: string[] = [];
  const params: string[] = [];
  /** The placeholder of the next parameter pushed, plus `ahead`. */
  const at = (ahead = 0) => `$${first + params.length + ahead}`;
  const range = underRange(rows.under);
  if (range.length > 0) {
    conditions.push(`((p.path >= ${at()} AND p.path < ${at(1)}) OR p.path = ${at(2)})`);
    params.push(...range);
  }
  if (rows.indexed && modelKey !== undefined) {
    const k = at();
    conditions.push(`(EXISTS (SELECT 1 FROM clip_ood.indexed_roots r WHERE r.model_key = ${k} AND r.root = p.path)
      OR EXISTS (SELECT 1 FROM clip_ood.indexed_roots r WHERE r.model_key = ${k} AND r.folder AND p.path >= r.prefix AND p.path < r.prefix_end))`);
    params.push(modelKey);
  }
  return [conditions.join(" AND "), params];
}

/** pgvector's text form; float32 values print exactly in JavaScript's shortest round-trip form. */
function vectorLiteral(v: Float32Array): string {
  return `[${Array.from(v).join(",")}]`;
}

function connectionError(location: string, e: unknown): unknown {
  if (e instanceof ClipOodError) return e;
  const code = (e as { code?: string }).code;
  const why =
    code === "ECONNREFUSED"
      ? "nothing listens there (connection refused)"
      : code === "ENOTFOUND"
        ? "the host name does not resolve"
        : code === "28P01" || code === "28000"
          ? "the server refused the user or password"
          : code === "3D000"
            ? "the database does not exist"
            : messageOf(e);
  return new ClipOodError("INPUT", `cannot open the store ${location}: ${why}`, { hint: PG_HINT, cause: e });
}
