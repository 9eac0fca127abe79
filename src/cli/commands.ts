/**
 * What the commands share: the options they all take, loading the model, expanding inputs, the
 * embedding store, the image loop and the exit status of a batch. Each command's own module parses
 * what the user gave, runs the library and writes results as they arrive.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { ClipModel } from "../clip.js";
import type { ClipOptions, ImageEmbeddingResult } from "../clip.js";
import { ClipOodError, isClipOodError } from "../errors.js";
import { expandInputs, IMAGE_EXTENSIONS } from "../image/inputs.js";
import type { InputProblem } from "../image/inputs.js";
import { constantScoreReason } from "../ood/detector.js";
import type { Detector } from "../ood/detector.js";
import { DEFAULT_DTYPE, parseDtype } from "../model/folder.js";
import { DEFAULT_MODEL_ID, defaultCacheDir } from "../model/hub-cache.js";
import { recordedModelRef } from "../model/resolve.js";
import { UNKNOWN_DTYPE } from "../ood/detector.js";
import { embedWithStore, storeModelKey } from "../store/cached.js";
import { openEmbeddingStore } from "../store/open.js";
import { defaultStorePath } from "../store/store.js";
import type { EmbeddingStore, IndexedRoot } from "../store/store.js";
import type { Format } from "./output.js";
import { plural, stdoutClosed } from "./output.js";
import type { Progress } from "./progress.js";

export interface CommonOptions {
  /** Unset: $CLIP_OOD_MODEL, the detector's model, or DEFAULT_MODEL_ID. */
  model?: string;
  dtype?: string;
  cacheDir?: string;
  offline?: boolean;
  threads?: number;
  device?: "cpu" | "cuda";
  workers: number;
  batchSize: number;
  exifRotate: boolean;
  maxPixels: number;
  ext?: string;
  textCache: boolean;
  /** --store <file>, or false with --no-store; unset: <cache-dir>/store.sqlite. */
  store?: string | boolean;
  quiet?: boolean;
  json?: boolean;
  csv?: boolean;
  classes?: string;
  templates?: string;
  /** SigLIP: override the logit scale and bias read from the model folder. */
  logitScale?: number;
  logitBias?: number;
}

/**
 * A note (what was saved, what to run next, how to pick a threshold) on stderr, whether or not it is a
 * terminal: `> out.jsonl` keeps it on screen, `2> log` keeps it in the log; --quiet drops it. Progress
 * bars, which redraw, are the only terminal-only output (progress.ts).
 */
export function say(opts: CommonOptions, message: string): void {
  if (!opts.quiet) process.stderr.write(message + "\n");
}

export function format(opts: CommonOptions): Format {
  return opts.json ? "json" : opts.csv ? "csv" : "table";
}

/**
 * Loads the model; `fallback` (a detector's model, with the file it came from) applies where
 * --model/--dtype were not given.
 */
export async function openModel(opts: CommonOptions, bars: Progress, fallback?: { id: string; dtype: string; source: string }): Promise<ClipModel> {
  const recorded = opts.model === undefined && fallback ? recordedModelRef(fallback.id, fallback.source) : undefined;
  if (recorded !== undefined && path.isAbsolute(recorded)) say(opts, `using the model folder ${recorded} that ${fallback!.source} records (--model chooses another)`);
  const options: ClipOptions = {
    model: opts.model ?? recorded ?? process.env["CLIP_OOD_MODEL"] ?? DEFAULT_MODEL_ID,
    // A detector fitted on embeddings that did not record their dtype says UNKNOWN_DTYPE: the default then.
    dtype: parseDtype(opts.dtype ?? (fallback?.dtype === UNKNOWN_DTYPE ? undefined : fallback?.dtype) ?? DEFAULT_DTYPE),
    workers: opts.workers,
    batchSize: opts.batchSize,
    ...(opts.device ? { device: opts.device } : {}),
    exifRotate: opts.exifRotate,
    maxPixels: opts.maxPixels,
    textCache: opts.textCache,
    onDownloadProgress: (p) => bars.download(p),
    onWarning: (m) => warn(m),
  };
  if (opts.cacheDir !== undefined) options.cacheDir = opts.cacheDir;
  if (opts.offline) options.offline = true;
  if (opts.threads !== undefined) options.threads = opts.threads;
  if (opts.logitScale !== undefined) options.logitScale = opts.logitScale;
  if (opts.logitBias !== undefined) options.logitBias = opts.logitBias;
  return ClipModel.load(options);
}

/** The file extensions taken from folders: --ext, or every image format the decoder reads. */
export function extensionsOf(opts: CommonOptions): string[] {
  return opts.ext ? opts.ext.split(",").map((e) => "." + e.trim().replace(/^\./, "").toLowerCase()).filter((e) => e.length > 1) : IMAGE_EXTENSIONS;
}

/**
 * Expands inputs and reports each unusable one on stderr. When no input gives an image — missing files,
 * globs matching nothing, empty folders, in any mix — the command itself is wrong, not a batch with bad
 * inputs: it stops with a usage error naming each input and why, before any model is loaded. `others`:
 * something else the command was given yields results (texts, embeddings files), so no images is no error.
 */
export async function images(inputs: readonly string[], opts: CommonOptions, others = false): Promise<{ files: string[]; failed: number; problems: InputProblem[] }> {
  const extensions = extensionsOf(opts);
  const { files, problems } = await expandInputs(inputs, { extensions });
  if (files.length === 0 && !others) throw noImages(inputs, problems, extensions);
  for (const p of problems) process.stderr.write(`skipped ${p.input}: ${p.reason}${p.empty ? "; --ext changes which extensions count" : ""}\n`);
  return { files, failed: problems.length, problems };
}

/**
 * Images that are each part of one query (search --image): every one must be there, since a query
 * without one would search for something else; a missing one is a usage error, before any model loads.
 */
export async function queryImages(flag: string, inputs: readonly string[], opts: CommonOptions): Promise<void> {
  const { problems } = await expandInputs(inputs, { extensions: extensionsOf(opts) });
  if (problems.length > 0) {
    throw new ClipOodError("INPUT", problems.map((p) => `${flag} ${p.input}: ${p.reason}`).join("; "), { hint: "give an image file for each " + flag });
  }
}

function noImages(inputs: readonly string[], problems: readonly InputProblem[], extensions: readonly string[]): ClipOodError {
  const hint = `check the paths; folders and globs take files ending in ${extensions.join(" ")} (--ext changes that)`;
  if (problems.length === 0) return new ClipOodError("INPUT", `no images found in ${inputs.join(", ")}`, { hint });
  if (problems.length === 1) return new ClipOodError("INPUT", `no images found in ${problems[0]!.input}: ${problems[0]!.reason}`, { hint });
  const lines = problems.map((p) => `\n  ${p.input}: ${p.reason}`).join("");
  return new ClipOodError("INPUT", `no images found in any input:${lines}`, { hint });
}

/**
 * An input that failed, on stderr, named once: image errors already begin with the path, other
 * reasons (a queued batch that failed, a skipped input) do not. A progress bar in the way is stopped first.
 */
export function reportFailure(input: string, reason: string, bars?: Progress): void {
  bars?.stop();
  process.stderr.write(`failed ${reason.startsWith(`${input}: `) ? reason : `${input}: ${reason}`}\n`);
}

/** A problem that does not stop the command, on stderr; a progress bar in the way is stopped first. */
export function warn(message: string, bars?: Progress): void {
  bars?.stop();
  process.stderr.write(`warning: ${message}\n`);
}

/**
 * A detector that scores every input alike is warned about even under --quiet: it is a result the user
 * would misread, not a progress note.
 */
export function warnConstantScore(detector: Detector, bars?: Progress): void {
  const why = constantScoreReason(detector);
  if (why !== undefined) warn(why, bars);
}

/**
 * Where the options put the store: --store <file or postgres:// URL>, else $CLIP_OOD_STORE, else
 * store.sqlite in the cache folder; undefined with --no-store.
 */
export function storeLocation(opts: CommonOptions): string | undefined {
  if (opts.store === false) return undefined;
  if (typeof opts.store === "string") return opts.store;
  return process.env["CLIP_OOD_STORE"] || defaultStorePath(opts.cacheDir ?? defaultCacheDir());
}

/** The embedding store the options name (see `storeLocation`), or none (--no-store). */
export async function openStore(opts: CommonOptions): Promise<EmbeddingStore | undefined> {
  const location = storeLocation(opts);
  return location === undefined ? undefined : openEmbeddingStore(location, opts.cacheDir === undefined ? {} : { cacheDir: opts.cacheDir });
}

/** The store the options name, for the commands whose job is the store: --no-store is a usage error. */
export async function requireStore(opts: CommonOptions): Promise<EmbeddingStore> {
  const store = await openStore(opts);
  if (!store) throw new ClipOodError("USAGE", "this command works on the embedding store, and --no-store was given", { hint: "leave out --no-store, or name one with --store <file or postgres:// URL>" });
  return store;
}

/**
 * The store where it only saves work (classify, detect, embed, eval, fit): one that cannot be opened —
 * a full disk, a read-only folder, a damaged file — is reported once and the command goes on without it.
 * Commands whose job is the store (index, search, export) use `openStore` and fail instead.
 */
export async function openCacheStore(opts: CommonOptions): Promise<EmbeddingStore | undefined> {
  try {
    return await openStore(opts);
  } catch (e) {
    if (!isClipOodError(e)) throw e;
    warn(`${e.message}; going on without the embedding store`);
    return undefined;
  }
}

/** Forgets the stored paths under the folders indexed that are no longer among their files; returns them. */
export async function forgetGone(store: EmbeddingStore, inputs: readonly string[], files: readonly string[]): Promise<string[]> {
  const seen = new Set(files.map((f) => path.resolve(f)));
  const gone: string[] = [];
  for (const input of inputs) {
    if (!(await stat(input).catch(() => undefined))?.isDirectory()) continue;
    for (const r of await store.paths({ under: path.resolve(input) })) if (!seen.has(r.path)) gone.push(r.path);
  }
  await store.forgetPaths(gone);
  return gone;
}

/**
 * Records what `index` was given as the model's indexed roots, which `search` and `export` cover by
 * default: each folder, and each file found otherwise (named, matched by a glob, read from stdin).
 */
export async function recordIndexedRoots(store: EmbeddingStore, model: ClipModel, inputs: readonly string[], files: readonly string[]): Promise<void> {
  const folders: string[] = [];
  for (const input of inputs) if (input !== "-" && (await stat(input).catch(() => undefined))?.isDirectory()) folders.push(path.resolve(input));
  const within = folders.map((f) => (f.endsWith(path.sep) ? f : f + path.sep));
  const roots: IndexedRoot[] = folders.map((f) => ({ path: f, folder: true }));
  for (const file of files) {
    const p = path.resolve(file);
    if (!within.some((w) => p.startsWith(w))) roots.push({ path: p, folder: false });
  }
  await store.addIndexedRoots(await storeModelKey(model), roots);
}

/**
 * Runs the image loop shared by the commands: embeddings from the store where it has them (patch
 * tokens always come from the model), progress, per-file failures. Returns the number that failed.
 */
export async function eachImage(
  model: ClipModel,
  files: readonly string[],
  bars: Progress,
  onResult: (r: ImageEmbeddingResult & { embedding: Float32Array }) => void,
  onFailure: (input: string, reason: string) => void,
  opts: CommonOptions,
  patches = false,
): Promise<number> {
  let failed = 0;
  const store = patches ? undefined : await openCacheStore(opts);
  const progressTo = (done: number, total: number) => bars.images(done, total);
  const results = store
    ? embedWithStore(model, store, files, { batchSize: Math.max(opts.batchSize, 64), onProgress: progressTo, onStoreError: (m) => warn(m, bars) })
    : model.embedImages(files, progressTo, { patches });
  try {
    for await (const r of results) {
    // The reader went away (`… | head`): stop working, shut down cleanly.
    if (stdoutClosed()) break;
    if (r.embedding) onResult({ ...r, embedding: r.embedding });
    else {
      failed++;
      const reason = r.error?.message ?? "unknown error";
      reportFailure(r.input, reason, bars);
      onFailure(r.input, reason);
    }
    }
  } finally {
    await store?.close();
  }
  bars.stop();
  return failed;
}

export function summary(opts: CommonOptions, total: number, failed: number): number {
  if (failed > 0) {
    process.stderr.write(`${failed} of ${plural(total, "input")} could not be processed (see above); the others' results are complete.\n`);
    return 1;
  }
  return 0;
}
