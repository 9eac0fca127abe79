/**
 * Opens the store a location names: a postgres:// (or postgresql://) URL is the shared PostgreSQL
 * store, anything else an SQLite file on this machine.
 */
import path from "node:path";
import { defaultCacheDir } from "../model/hub-cache.js";
import { isPostgresUrl, PostgresStore } from "./postgres-store.js";
import { SqliteStore } from "./sqlite-store.js";
import type { EmbeddingStore } from "./store.js";

export interface OpenStoreOptions {
  /** SQLite only: read, never write. */
  readonly?: boolean;
  /** Folder for this machine's files of a database store (its usearch index without pgvector); default: the model cache. */
  cacheDir?: string;
  /** PostgreSQL only: connections kept in the pool (default 4). */
  poolSize?: number;
}

export async function openEmbeddingStore(location: string, opts: OpenStoreOptions = {}): Promise<EmbeddingStore> {
  if (isPostgresUrl(location)) {
    return PostgresStore.open(location, {
      localDir: path.join(opts.cacheDir ?? defaultCacheDir(), "stores"),
      ...(opts.poolSize === undefined ? {} : { poolSize: opts.poolSize }),
    });
  }
  return SqliteStore.open(location, opts.readonly === undefined ? {} : { readonly: opts.readonly });
}
