/**
 * Image embeddings through the store: a file whose size and mtime match its path record reuses the
 * recorded content hash; any file whose content was embedded before by the same model and
 * preprocessing (a copy, a moved file) reuses that embedding. Only the rest reach the model, and each
 * model batch is committed as one transaction, so an interrupted run loses at most that batch.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { ClipModel, ImageEmbeddingResult } from "../clip.js";
import { messageOf } from "../errors.js";
import type { ClipOodError } from "../errors.js";
import { writeCacheFile } from "../io/atomic-file.js";
import { hashFile } from "./hash.js";
import type { EmbeddingStore, PathRecord, StoredRow } from "./store.js";

/**
 * The store key of the model's image embeddings: the model id, then a digest of what makes embeddings
 * interchangeable — the vision graph's content (so a replaced graph is never mistaken for the old one,
 * and two machines with the same download share embeddings whatever the files' dates), the variant,
 * EXIF handling and preprocessing.
 */
export async function storeModelKey(model: ClipModel): Promise<string> {
  const settings = JSON.stringify([await graphDigest(model), model.model.dtype, model.exifRotate, model.model.preprocess]);
  return `${model.id}#${createHash("sha256").update(settings).digest("hex").slice(0, 16)}`;
}

/** SHA-256 of the vision graph, remembered in the cache per (path, size, mtime) so each file is read once. */
async function graphDigest(model: ClipModel): Promise<string> {
  const file = path.resolve(model.model.visionModel);
  const s = await stat(file);
  const memo = path.join(model.cacheDir, "graph-digests", createHash("sha256").update(`${file}\0${s.size}\0${s.mtimeMs}`).digest("hex").slice(0, 32));
  const known = await readFile(memo, "utf8").catch(() => "");
  if (/^[0-9a-f]{64}$/.test(known)) return known;
  const digest = await hashFile(file);
  await writeCacheFile(memo, digest, (m) => model.warn(m));
  return digest;
}

export interface CachedEmbeddingResult extends ImageEmbeddingResult {
  /** Whether the embedding came from the store instead of the model. */
  cached: boolean;
}

interface Pending {
  input: string;
  record: PathRecord | null;
  error: ClipOodError | null;
  embedding: Float32Array | null;
  cached: boolean;
}

/**
 * Embeddings of `inputs` in input order, from the store where possible. Batches of `batchSize`
 * inputs are looked up, the misses embedded and stored, then yielded.
 */
export async function* embedWithStore(
  model: ClipModel,
  store: EmbeddingStore,
  inputs: readonly string[],
  options: {
    batchSize?: number;
    onProgress?: (done: number, total: number) => void;
    /**
     * Where the store is only a cache (detect, classify, eval), a failed write — a full disk — is
     * reported here once, as a message, and the run goes on without storing; without it, the failure
     * is thrown.
     */
    onStoreError?: (message: string) => void;
  } = {},
): AsyncGenerator<CachedEmbeddingResult> {
  const key = await storeModelKey(model);
  const size = options.batchSize ?? 64;
  let done = 0;
  let storing = true;
  const save = async (write: () => Promise<void>) => {
    if (!storing) return;
    try {
      await write();
    } catch (e) {
      if (!options.onStoreError) throw e;
      storing = false;
      options.onStoreError(`${messageOf(e)}; going on without storing embeddings`);
    }
  };
  for (let start = 0; start < inputs.length; start += size) {
    const batch = await embedBatch(model, store, key, inputs.slice(start, start + size));
    await save(() => store.putBatch(batch.fresh));
    await save(() => store.recordPaths(batch.known));
    for (const r of batch.results) yield r;
    done += batch.results.length;
    options.onProgress?.(done, inputs.length);
  }
}

/** One batch of inputs looked up in the store and, where missing, embedded: nothing is written yet. */
export interface EmbeddedBatch {
  /** Per input, in input order. */
  results: CachedEmbeddingResult[];
  /** Rows the model embedded now, to store. */
  fresh: StoredRow[];
  /** Path records of inputs whose content the store had, to record under their (new) path. */
  known: PathRecord[];
}

/**
 * Looks up `inputs` in the store and embeds the rest, leaving the writing to the caller, so that a
 * queue worker can write the rows and complete its job in one transaction.
 */
export async function embedBatch(model: ClipModel, store: EmbeddingStore, key: string, inputs: readonly string[]): Promise<EmbeddedBatch> {
  const batch = await Promise.all(inputs.map((input) => lookUp(store, key, input)));
  const misses = batch.filter((p) => !p.embedding);
  const fresh: StoredRow[] = [];
  if (misses.length > 0) {
    let i = 0;
    for await (const r of model.embedImages(misses.map((m) => m.input))) {
      const m = misses[i++]!;
      if (r.embedding) {
        m.embedding = r.embedding;
        if (m.record) fresh.push({ ...m.record, modelKey: key, embedding: r.embedding });
      } else m.error = r.error;
    }
  }
  return {
    results: batch.map((p) => ({ input: p.input, embedding: p.embedding, error: p.error, cached: p.cached })),
    fresh,
    known: batch.filter((p) => p.cached && p.record).map((p) => p.record!),
  };
}

async function lookUp(store: EmbeddingStore, key: string, input: string): Promise<Pending> {
  const file = path.resolve(input);
  // An unreadable file is not stored; the model's own decoder then reports it with its usual message.
  const unreadable: Pending = { input, record: null, error: null, embedding: null, cached: false };
  const s = await stat(file).catch(() => undefined);
  if (!s?.isFile()) return unreadable;
  // The store's own failures (a database that went away) propagate: swallowed, they would have the
  // image embedded and reported done without a record to write it under.
  const hash = (await store.lookupPath(file, s.size, s.mtimeMs)) ?? (await hashFile(file).catch(() => undefined));
  if (hash === undefined) return unreadable;
  const record = { path: file, size: s.size, mtimeMs: s.mtimeMs, hash };
  const embedding = (await store.getEmbedding(hash, key)) ?? null;
  return { input, record, error: null, embedding, cached: embedding !== null };
}
