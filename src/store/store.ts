/**
 * The embedding store: remembers, per absolute path, the content hash seen at a given size and mtime,
 * and per (content hash, model key) the embedding. Content keys make moved files and copies free; path
 * records make unchanged files free without even hashing them.
 *
 * One interface, two back ends: an SQLite file on this machine (./sqlite-store.ts, the default) and a
 * PostgreSQL database shared by many machines (./postgres-store.ts, `--store postgres://…`). Both commit
 * each batch as one transaction. `openEmbeddingStore` (./open.ts) picks one from the location.
 */
import { statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ClipOodError } from "../errors.js";

/**
 * The schema version both back ends write; a store of a newer version is refused. 2 added the roots
 * given to `index` per model key (what `search` and `export` cover by default); 3 the change stamp that
 * every write bumps, which the copies of the rows kept between searches are checked against
 * (./row-copies.ts), so that a clip-ood that would write without bumping it refuses the store.
 */
export const STORE_SCHEMA_VERSION = 3;

export const STORE_HINT = "pass --store <file or postgres:// URL> to use another store, or --no-store to run without one";
const DAMAGED_HINT = "delete or move the store away; it is a cache, and indexing again rebuilds it";

export function defaultStorePath(cacheDir: string): string {
  return path.join(cacheDir, "store.sqlite");
}

export interface PathRecord {
  path: string;
  size: number;
  mtimeMs: number;
  hash: string;
}

export interface StoredRow extends PathRecord {
  modelKey: string;
  embedding: Float32Array;
}

/**
 * A model's stored embeddings, one row per path, in path order. Read-only: a store may hand out the
 * copy it keeps (the PostgreSQL store's local rows).
 */
export interface StoreRows {
  paths: string[];
  hashes: string[];
  dim: number;
  /** paths.length × dim, row-major. */
  data: Float32Array;
}

/**
 * The rows' contents, one per content hash, in the order of their first path: the row each is read
 * from (its first path, in path order) and all its paths.
 */
export function contentsOf(rows: StoreRows): { row: number; paths: string[] }[] {
  const byHash = new Map<string, { row: number; paths: string[] }>();
  rows.hashes.forEach((hash, row) => {
    const c = byHash.get(hash);
    if (c) c.paths.push(rows.paths[row]!);
    else byHash.set(hash, { row, paths: [rows.paths[row]!] });
  });
  return [...byHash.values()];
}

export interface StoreStats {
  backend: "sqlite" | "postgres";
  /** The file, or the database URL without its password. */
  location: string;
  /** How `search` ranks this store's rows. */
  search: string;
  bytes: number;
  paths: number;
  embeddings: number;
  models: { modelKey: string; embeddings: number; dim: number }[];
}

export interface NearestHit {
  path: string;
  hash: string;
  score: number;
}

/**
 * A folder or file given to `clip-ood index` for a model key: what `search` and `export` cover by
 * default, as opposed to images embedded on the way by detect, eval, fit and the rest.
 */
export interface IndexedRoot {
  /** Absolute. */
  path: string;
  /** A folder covers every path below it; a file only itself. */
  folder: boolean;
}

/** Which of a model's stored rows a read covers. */
export interface RowScope {
  /** Only paths under this folder. */
  under?: string;
  /** Only paths under the model key's indexed roots; without it, every row of the model. */
  indexed?: boolean;
}

export interface EmbeddingStore {
  readonly backend: "sqlite" | "postgres";
  /** What messages name: the file, or the database URL without its password. */
  readonly location: string;
  /** Prefix for files kept on this machine for the store (the HNSW index built from its rows). */
  readonly localFilesBase: string;
  /** The recorded content hash of `file` if its size and mtime are still the recorded ones. */
  lookupPath(file: string, size: number, mtimeMs: number): Promise<string | undefined>;
  getEmbedding(hash: string, modelKey: string): Promise<Float32Array | undefined>;
  /** Path records and embeddings, in one transaction. */
  putBatch(rows: readonly StoredRow[]): Promise<void>;
  recordPaths(rows: readonly PathRecord[]): Promise<void>;
  forgetPaths(paths: readonly string[]): Promise<void>;
  paths(opts?: { under?: string }): Promise<PathRecord[]>;
  embeddingsFor(modelKey: string, opts?: RowScope): Promise<StoreRows>;
  /**
   * The database's own nearest-neighbour search by cosine, best first (pgvector): the k best rows in
   * the scope, fewer only when the scope has fewer; absent where the store has none, and then the rows
   * are ranked in this process.
   */
  nearest?(modelKey: string, query: Float32Array, k: number, opts?: RowScope): Promise<NearestHit[]>;
  /** Records roots given to `index` for the model key (again: no change). */
  addIndexedRoots(modelKey: string, roots: readonly IndexedRoot[]): Promise<void>;
  /** The model key's indexed roots, in path order. */
  indexedRoots(modelKey: string): Promise<IndexedRoot[]>;
  stats(): Promise<StoreStats>;
  /** Forgets path records of files gone from this machine, then embeddings no path refers to. */
  prune(): Promise<{ paths: number; embeddings: number }>;
  vacuum(): Promise<void>;
  close(): Promise<void>;
}

/** Refuses an embedding whose length differs from the model key's stored dimension. */
export function checkDimension(location: string, r: StoredRow, dim: number): void {
  if (r.embedding.length === 0 || r.embedding.length !== dim) {
    throw new ClipOodError("INPUT", `${location}: an embedding of ${r.path} has ${r.embedding.length} values, but model ${r.modelKey} stores ${dim}`, {
      hint: "embeddings of one model key must share a dimension; include the model variant in the key",
    });
  }
}

/**
 * `under` as a range of absolute paths: [prefix, end) covers exactly the paths below the folder (on a
 * separator boundary, in byte order), plus the folder itself. Empty when there is no `under`.
 */
export function underRange(under: string | undefined): [] | [string, string, string] {
  if (under === undefined) return [];
  const dir = path.resolve(under);
  const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
  // The separator's successor bounds exactly the strings that start with `prefix`.
  const end = prefix.slice(0, -1) + String.fromCharCode(path.sep.charCodeAt(0) + 1);
  return [prefix, end, dir];
}

/** A root's stored form: with a folder's path range (as `underRange`), so that rows under it are found by range. */
export function rootRow(r: IndexedRoot): { root: string; folder: number; prefix: string | null; end: string | null } {
  const root = path.resolve(r.path);
  if (!r.folder) return { root, folder: 0, prefix: null, end: null };
  const [prefix, end] = underRange(root) as [string, string, string];
  return { root, folder: 1, prefix, end };
}

const LITTLE_ENDIAN = os.endianness() === "LE";

/** A vector as little-endian float32 bytes. */
export function encodeVector(v: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const b = Buffer.allocUnsafe(v.length * 4);
  v.forEach((x, i) => b.writeFloatLE(x, i * 4));
  return b;
}

/** The store at `location` holds something it could not have written. */
export function damagedStore(location: string, detail: string, cause?: unknown): ClipOodError {
  return new ClipOodError("INPUT", `${location}: the store is damaged (${detail})`, { hint: DAMAGED_HINT, ...(cause === undefined ? {} : { cause }) });
}

/** A stored vector's bytes into `out` at `offset`, refused when their length does not match `dim`. */
export function decodeStoredVector(location: string, blob: Buffer, dim: number, out: Float32Array, offset: number): void {
  if (blob.length !== dim * 4) throw damagedStore(location, `a vector of ${blob.length} bytes where dimension ${dim} needs ${dim * 4}`);
  decodeVector(blob, out, offset);
}

/** A row as both back ends select it: a path, its content and the model's stored vector of it. */
export interface VectorRow {
  path: string;
  hash: string;
  dim: number;
  vector: Buffer;
}

/** Selected rows, in their order, as StoreRows; refused when their dimensions disagree. */
export function decodeVectorRows(location: string, modelKey: string, rows: readonly VectorRow[]): StoreRows {
  const dim = rows[0]?.dim ?? 0;
  const data = new Float32Array(rows.length * dim);
  rows.forEach((row, i) => {
    if (row.dim !== dim) throw damagedStore(location, `embeddings of model ${modelKey} disagree on their dimension`);
    decodeStoredVector(location, row.vector, dim, data, i * dim);
  });
  return { paths: rows.map((x) => x.path), hashes: rows.map((x) => x.hash), dim, data };
}

function decodeVector(blob: Buffer, out: Float32Array, offset: number): void {
  if (LITTLE_ENDIAN) {
    // The blob's own offset may not be 4-byte aligned, so copy bytes rather than view them as floats.
    new Uint8Array(out.buffer, out.byteOffset + offset * 4, blob.length).set(blob);
    return;
  }
  for (let i = 0; i < blob.length / 4; i++) out[offset + i] = blob.readFloatLE(i * 4);
}

export function isMissingError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** A path record is stale when its file is gone; one that is merely unreadable (permissions) is kept. */
export function isGone(file: string): boolean {
  try {
    return !statSync(file).isFile();
  } catch (e) {
    return isMissingError(e);
  }
}
