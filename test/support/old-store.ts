/**
 * SQLite store files as older clip-oods wrote them (their schema, copied from those versions' source),
 * for the tests of opening and migrating them.
 */
import Database from "better-sqlite3";
import type { StoredRow } from "../../src/store/store.js";

/** Schema 1 (clip-ood before indexed roots) and what schema 2 added. */
const SCHEMA_1 = `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE paths (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ms REAL NOT NULL, hash TEXT NOT NULL);
  CREATE INDEX paths_by_hash ON paths (hash);
  CREATE TABLE embeddings (model_key TEXT NOT NULL, hash TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model_key, hash));
`;
const SCHEMA_2 = `
  CREATE TABLE indexed_roots (model_key TEXT NOT NULL, root TEXT NOT NULL, folder INTEGER NOT NULL, prefix TEXT, prefix_end TEXT, PRIMARY KEY (model_key, root));
`;

/** A store of schema `version` holding `rows` (paths taken as given: absolute). */
export function writeOldStore(file: string, version: 1 | 2, rows: readonly StoredRow[]): void {
  const db = new Database(file);
  try {
    db.pragma("journal_mode = WAL");
    db.exec(version === 1 ? SCHEMA_1 : SCHEMA_1 + SCHEMA_2);
    db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?), ('created_by', 'clip-ood')").run(String(version));
    const path = db.prepare("INSERT OR REPLACE INTO paths (path, size, mtime_ms, hash) VALUES (?, ?, ?, ?)");
    const embedding = db.prepare("INSERT OR IGNORE INTO embeddings (model_key, hash, dim, vector) VALUES (?, ?, ?, ?)");
    for (const r of rows) {
      path.run(r.path, r.size, r.mtimeMs, r.hash);
      embedding.run(r.modelKey, r.hash, r.embedding.length, Buffer.from(r.embedding.buffer, r.embedding.byteOffset, r.embedding.byteLength));
    }
  } finally {
    db.close();
  }
}
