/**
 * The CLI commands: parse what the user gave, run the library, write results as they arrive.
 * Each returns its exit status (0 all done, 1 some inputs failed).
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import type { Writable } from "node:stream";
import { ClipModel } from "../clip.js";
import type { ClassFeatures, ClipOptions, ImageEmbeddingResult } from "../clip.js";
import { ClipOodError, isClipOodError } from "../errors.js";
import { expandInputs, IMAGE_EXTENSIONS } from "../image/inputs.js";
import type { InputProblem } from "../image/inputs.js";
import { readDataset } from "../io/datasets.js";
import { writeEmbeddingsNpy } from "../io/embeddings.js";
import { stackRows } from "../maths/vectors.js";
import { DEFAULT_DTYPE, parseDtype } from "../model/folder.js";
import { DEFAULT_MODEL_ID, defaultCacheDir } from "../model/hub.js";
import { recordedModelRef } from "../model/resolve.js";
import { embedWithStore } from "../store/cached.js";
import { openEmbeddingStore } from "../store/open.js";
import { defaultStorePath } from "../store/store.js";
import type { EmbeddingStore } from "../store/store.js";
import { loadClasses } from "../text/classes.js";
import type { Scoring } from "../maths/scores.js";
import type { ClassSpec } from "../text/classes.js";
import { resolveTemplates } from "../text/templates.js";
import { classify } from "../zeroshot.js";
import type { Format } from "./output.js";
import { outputFile, rowWriter, stdoutClosed } from "./output.js";
import { progress } from "./progress.js";
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

const INPUT_WIDTH = 48;

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
    dtype: parseDtype(opts.dtype ?? fallback?.dtype ?? DEFAULT_DTYPE),
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

/** Expands inputs; reports each unusable one on stderr. */
export async function images(inputs: readonly string[], opts: CommonOptions): Promise<{ files: string[]; failed: number; problems: InputProblem[] }> {
  const extensions = extensionsOf(opts);
  const { files, problems } = await expandInputs(inputs, { extensions });
  // Only empty folders and nothing else is a mistake in the command, not a batch with bad inputs.
  if (files.length === 0 && problems.every((p) => p.empty)) {
    throw new ClipOodError("INPUT", `no images found in ${inputs.join(", ")}`, {
      hint: `folders are searched recursively for ${extensions.join(" ")}; use --ext to change that`,
    });
  }
  for (const p of problems) process.stderr.write(`skipped ${p.input}: ${p.reason}${p.empty ? "; --ext changes which extensions count" : ""}\n`);
  return { files, failed: problems.length, problems };
}

/** A problem that does not stop the command, on stderr; a progress bar in the way is stopped first. */
export function warn(message: string, bars?: Progress): void {
  bars?.stop();
  process.stderr.write(`warning: ${message}\n`);
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
      bars.stop();
      process.stderr.write(`failed ${reason}\n`);
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
    process.stderr.write(`${failed} of ${total} inputs could not be processed (see above); the others' results are complete.\n`);
    return 1;
  }
  return 0;
}

/** A zero-shot job's columns, and the row each image's embedding becomes. */
interface ZeroShotJob {
  header: string[];
  widths: number[];
  row(embedding: Float32Array, features: ClassFeatures, scoring: Scoring): { cells: string[]; json: Record<string, unknown> };
  finish?(): void;
}

/** The classify pipeline: classes → inputs → model → class features → a row per image. */
async function runZeroShot(
  inputs: string[],
  opts: CommonOptions,
  makeJob: (classes: ClassSpec[], fmt: Format, inputWidth: number) => Promise<ZeroShotJob> | ZeroShotJob,
): Promise<number> {
  const classes = await loadClasses(opts.classes ?? "");
  const templates = await resolveTemplates(opts.templates);
  const fmt = format(opts);
  const { files, failed: skipped, problems } = await images(inputs, opts);
  const job = await makeJob(classes, fmt, Math.min(INPUT_WIDTH, Math.max(5, ...files.map((f) => f.length))));
  const bars = progress(!opts.quiet);
  const model = await openModel(opts, bars);
  try {
    const scoring = await model.scoring();
    const features = await model.classFeatures(classes, templates);
    const out = rowWriter(fmt, process.stdout, job.header, job.widths);
    // Inputs that could not even be listed (missing files, broken links) get their row too, so that
    // JSON output has one line per input.
    for (const p of problems) out.failure(p.input, p.reason);
    const failed = await eachImage(
      model,
      files,
      bars,
      (r) => {
        const { cells, json } = job.row(r.embedding, features, scoring);
        out.row([r.input, ...cells], { input: r.input, ...json });
      },
      (input, reason) => out.failure(input, reason),
      opts,
    );
    job.finish?.();
    return summary(opts, files.length + skipped, failed + skipped);
  } finally {
    await model.close();
  }
}

export function runClassify(inputs: string[], opts: CommonOptions & { topK: number }): Promise<number> {
  return runZeroShot(inputs, opts, (classes, fmt, width) => {
    const k = Math.min(opts.topK, classes.length);
    const ranks = Array.from({ length: k }, (_, i) => i + 1);
    return {
      header: ["input", ...(fmt === "csv" ? ranks.flatMap((r) => [`label_${r}`, `prob_${r}`]) : ranks.map((r) => `top-${r}`))],
      widths: [width, ...Array<number>(k).fill(22)],
      row(embedding, features, scoring) {
        const top = classify(embedding, features, k, scoring);
        const cells = fmt === "csv" ? top.flatMap((t) => [t.label, t.prob.toFixed(6)]) : top.map((t) => `${t.label} ${(100 * t.prob).toFixed(1)}%`);
        return { cells, json: { top } };
      },
    };
  });
}

/**
 * The images of labelled sets (class folders, labelled lists or CSVs, read as fit and eval read them)
 * and each image's label, for `embed --labelled`: the output can then be fitted on directly.
 */
async function labelledImages(specs: readonly string[], opts: CommonOptions): Promise<{ files: string[]; failed: number; labels: Map<string, string> }> {
  const labels = new Map<string, string>();
  const files: string[] = [];
  let failed = 0;
  for (const spec of specs) {
    const set = await readDataset(spec, { extensions: extensionsOf(opts) });
    if (set.layout === "embeddings") throw new ClipOodError("USAGE", `${spec} is an embeddings file already`, { hint: "give --labelled image sets: a folder of class folders, or a list/CSV with labels" });
    if (!set.labelled) {
      throw new ClipOodError("USAGE", `--labelled: ${spec} carries no class labels`, { hint: "give a folder with one sub-folder per class, or a list/CSV with a label column; leave out --labelled for unlabelled images" });
    }
    for (const p of set.problems) process.stderr.write(`skipped ${p.input}: ${p.reason}\n`);
    failed += set.problems.length;
    for (const img of set.images) {
      files.push(img.input);
      if (img.label !== undefined) labels.set(img.input, img.label);
    }
  }
  if (files.length === 0) throw new ClipOodError("INPUT", `no images found in ${specs.join(", ")}`, { hint: "check the class folders or the list's paths" });
  return { files, failed, labels };
}

export async function runEmbed(inputs: string[], opts: CommonOptions & { text: string[]; out?: string; labelled?: boolean }): Promise<number> {
  if (inputs.length === 0 && opts.text.length === 0) {
    throw new ClipOodError("USAGE", "nothing to embed", { hint: 'give image paths and/or --text "…"' });
  }
  if (opts.labelled && inputs.length === 0) throw new ClipOodError("USAGE", "--labelled needs image sets to read labels from", { hint: "e.g. clip-ood embed --labelled ./train --out train.jsonl" });
  const { files, failed: skipped, labels } = opts.labelled ? await labelledImages(inputs, opts) : inputs.length > 0 ? { ...(await images(inputs, opts)), labels: undefined } : { files: [], failed: 0, labels: undefined };
  const bars = progress(!opts.quiet);
  const model = await openModel(opts, bars);
  const npy = opts.out?.toLowerCase().endsWith(".npy") ?? false;
  const file = opts.out && !npy ? outputFile(opts.out) : undefined;
  const sink: Writable = file?.stream ?? process.stdout;
  const rows: { input: string; kind: "image" | "text"; label?: string }[] = [];
  const vectors: Float32Array[] = [];
  let count = 0;
  const emit = (input: string, kind: "image" | "text", embedding: Float32Array) => {
    count++;
    const label = kind === "image" ? labels?.get(input) : undefined;
    const described = { input, kind, ...(label === undefined ? {} : { label }) };
    if (npy) {
      rows.push(described);
      vectors.push(embedding);
    } else sink.write(JSON.stringify({ ...described, model: model.id, embedding: Array.from(embedding) }) + "\n");
  };
  try {
    if (opts.text.length > 0) {
      const m = await model.embedTexts(opts.text);
      opts.text.forEach((t, i) => emit(t, "text", m.data.slice(i * m.cols, (i + 1) * m.cols)));
    }
    const failed = await eachImage(
      model,
      files,
      bars,
      (r) => emit(r.input, "image", r.embedding),
      () => {},
      opts,
    );
    if (npy && opts.out) {
      const dim = vectors[0]?.length ?? (await model.embeddingDim());
      await writeEmbeddingsNpy(opts.out, stackRows(vectors, dim).data, dim, { model: model.id, dtype: model.model.dtype, rows });
    }
    await file?.close();
    if (opts.out) say(opts, `wrote ${count} embeddings to ${opts.out}`);
    return summary(opts, files.length + skipped + opts.text.length, failed + skipped);
  } catch (e) {
    await file?.abort();
    throw e;
  } finally {
    await model.close();
  }
}
