/**
 * The PostgreSQL store's schema: numbered migrations, recorded in `clip_ood.migrations` and run on first
 * use inside one transaction under an advisory lock, so that machines starting together migrate once;
 * and pgvector's column where the extension can be had.
 */
import type pg from "pg";
import { ClipOodError } from "../errors.js";
import { withPoolClient } from "./db-retry.js";
import { STORE_SCHEMA_VERSION } from "./store.js";

/**
 * Numbered migrations; each runs once per database. Schema version 1 is what STORE_SCHEMA_VERSION 1
 * means in SQLite: path records and float32 embeddings; migration 4 makes it 2, as in SQLite. Migration 5
 * adds the change stamp (older clip-oods, which would not bump it, refuse the database by its migration
 * count); migration 6 only records that as schema 3, the version of SQLite's change stamp.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE clip_ood.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE clip_ood.paths (
     path TEXT COLLATE "C" PRIMARY KEY,
     size BIGINT NOT NULL,
     mtime_ms DOUBLE PRECISION NOT NULL,
     hash TEXT NOT NULL
   );
   CREATE INDEX paths_by_hash ON clip_ood.paths (hash);
   CREATE TABLE clip_ood.embeddings (
     model_key TEXT NOT NULL,
     hash TEXT NOT NULL,
     dim INTEGER NOT NULL,
     vector BYTEA NOT NULL,
     PRIMARY KEY (model_key, hash)
   );
   INSERT INTO clip_ood.meta (key, value) VALUES ('schema_version', '1'), ('created_by', 'clip-ood');`,
  // What `clip-ood serve` processes on one database share (src/server/detector-catalog.ts, jobs/jobs.ts).
  // Every write of a detector takes a new number from one sequence, so a name deleted and created
  // again never repeats a version that a process has cached.
  `CREATE SEQUENCE clip_ood.detector_versions;
   CREATE TABLE clip_ood.detectors (
     name TEXT COLLATE "C" PRIMARY KEY,
     version BIGINT NOT NULL,
     detector TEXT NOT NULL,
     arrays BYTEA NOT NULL,
     updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
   );
   CREATE TABLE clip_ood.eval_jobs (
     id TEXT PRIMARY KEY,
     status TEXT NOT NULL,
     view JSONB NOT NULL,
     report TEXT,
     created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
     updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
   );
   CREATE INDEX eval_jobs_by_age ON clip_ood.eval_jobs (created_at);`,
  // Which serve process runs an eval job, and when it last said it still does: a job whose process died
  // is then told apart from one still running (src/server/jobs/job-table.ts). Jobs recorded before have no
  // owner; their last write stands for their last heartbeat (every server is stopped for an upgrade).
  `ALTER TABLE clip_ood.eval_jobs ADD COLUMN owner TEXT, ADD COLUMN heartbeat_at TIMESTAMPTZ;
   UPDATE clip_ood.eval_jobs SET heartbeat_at = updated_at;`,
  // Store schema 2: the roots given to `index` per model key, what search and export cover by default
  // (as SQLite's schema 2, src/store/sqlite-store.ts). Byte order, as the paths they bound.
  `CREATE TABLE clip_ood.indexed_roots (
     model_key TEXT NOT NULL,
     root TEXT COLLATE "C" NOT NULL,
     folder BOOLEAN NOT NULL,
     prefix TEXT COLLATE "C",
     prefix_end TEXT COLLATE "C",
     PRIMARY KEY (model_key, root)
   );
   UPDATE clip_ood.meta SET value = '2' WHERE key = 'schema_version';`,
  // The change stamp that copies of the rows kept on machines without pgvector are checked against
  // (src/store/row-copies.ts): every transaction that changes rows locks the one stamp row, tags the
  // paths and embeddings it writes with stamp + 1, and sets the stamp to that on commit (and
  // last_delete too when it removed rows), so the rows changed since a copy's stamp are those tagged
  // above it. Rows from before carry 0. store_id tells a database created again under the same URL apart.
  `CREATE TABLE clip_ood.change_stamp (
     one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
     store_id TEXT NOT NULL,
     stamp BIGINT NOT NULL,
     last_delete BIGINT NOT NULL
   );
   INSERT INTO clip_ood.change_stamp (store_id, stamp, last_delete) VALUES (md5(random()::text || clock_timestamp()::text), 0, 0);
   ALTER TABLE clip_ood.paths ADD COLUMN stamp BIGINT NOT NULL DEFAULT 0;
   ALTER TABLE clip_ood.embeddings ADD COLUMN stamp BIGINT NOT NULL DEFAULT 0;
   CREATE INDEX paths_by_stamp ON clip_ood.paths (stamp);
   CREATE INDEX embeddings_by_stamp ON clip_ood.embeddings (model_key, stamp);`,
  // Store schema 3: the change stamp, as SQLite's (src/store/sqlite-store.ts), which migration 5 added.
  `UPDATE clip_ood.meta SET value = '3' WHERE key = 'schema_version';`,
];

/** Serialises migrations across machines: any constant both sides agree on. */
const MIGRATION_LOCK = 0x636c6970; // "clip"

/**
 * Runs the migrations not yet applied, under an advisory lock, and sets up pgvector where it can be had.
 * Returns pgvector's version when the embeddings carry a vector column.
 */
export async function migrate(pool: pg.Pool, location: string, wantVector: boolean): Promise<string | undefined> {
  return withPoolClient(pool, async (c) => {
    try {
      await c.query("BEGIN");
      await c.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
      await c.query("CREATE SCHEMA IF NOT EXISTS clip_ood");
      await c.query("CREATE TABLE IF NOT EXISTS clip_ood.migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
      const applied = new Set((await c.query<{ version: number }>("SELECT version FROM clip_ood.migrations")).rows.map((r) => r.version));
      const newest = Math.max(0, ...applied);
      if (newest > MIGRATIONS.length) {
        throw new ClipOodError("INPUT", `${location} was written by a newer clip-ood (store migration ${newest}; this version knows ${MIGRATIONS.length})`, {
          hint: "upgrade clip-ood on this machine, or pass --store to use another store",
        });
      }
      for (let v = 1; v <= MIGRATIONS.length; v++) {
        if (applied.has(v)) continue;
        await c.query(MIGRATIONS[v - 1]!);
        await c.query("INSERT INTO clip_ood.migrations (version) VALUES ($1)", [v]);
      }
      const version = (await c.query<{ value: string }>("SELECT value FROM clip_ood.meta WHERE key = 'schema_version'")).rows[0]?.value;
      if (Number(version) > STORE_SCHEMA_VERSION) {
        throw new ClipOodError("INPUT", `${location} holds store schema ${version}; this clip-ood reads up to ${STORE_SCHEMA_VERSION}`, { hint: "upgrade clip-ood on this machine" });
      }
      const pgvector = wantVector ? await enableVector(c) : undefined;
      await c.query("COMMIT");
      return pgvector;
    } catch (e) {
      await c.query("ROLLBACK").catch(() => {});
      throw e;
    }
  });
}

/**
 * pgvector where the server has it: the extension is created if the user may (a savepoint keeps a
 * refusal from spoiling the migration), and the embeddings get their `vec` column.
 */
async function enableVector(c: pg.PoolClient): Promise<string | undefined> {
  const available = await c.query<{ installed: string | null }>("SELECT installed_version AS installed FROM pg_available_extensions WHERE name = 'vector'");
  if (available.rows.length === 0) return undefined;
  if (available.rows[0]!.installed === null) {
    await c.query("SAVEPOINT vector_extension");
    try {
      await c.query("CREATE EXTENSION IF NOT EXISTS vector");
      await c.query("RELEASE SAVEPOINT vector_extension");
    } catch {
      await c.query("ROLLBACK TO SAVEPOINT vector_extension");
      return undefined;
    }
  }
  await c.query("ALTER TABLE clip_ood.embeddings ADD COLUMN IF NOT EXISTS vec vector");
  return (await c.query<{ v: string }>("SELECT extversion AS v FROM pg_extension WHERE extname = 'vector'")).rows[0]?.v;
}
