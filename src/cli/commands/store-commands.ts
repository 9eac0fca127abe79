/**
 * The embedding store from the command line: index, search, export, store stats/prune/vacuum.
 */
import path from "node:path";
import { Option } from "commander";
import type { Command } from "commander";
import { ClipOodError } from "../../errors.js";
import { writeEmbeddingsNpy } from "../../io/embeddings.js";
import { modelIdFor } from "../../model/resolve.js";
import type { EmbeddingStore } from "../../store/store.js";
import { embedWithStore, storeModelKey } from "../../store/cached.js";
import { prepareAnnIndex, search, searchScope } from "../../store/search.js";
import { contentsOf } from "../../store/store.js";
import type { CommonOptions } from "../commands.js";
import { forgetGone, format, images, openModel, queryImages, recordIndexedRoots, reportFailure, requireStore, say } from "../commands.js";
import { outputFile, plural, rowWriter, widest } from "../output.js";
import { progress } from "../progress.js";
import { LATENCY_BUDGET_MS, MIN_ANN_ROWS } from "../../search/choose.js";
import { annIndexStatus } from "../../store/ann-files.js";
import { EXIT_HELP } from "../exit.js";
import { collect, int, withCommonOptions, withFormatOptions, withQueueBatchOptions } from "../options.js";
import type { SetStatus } from "../options.js";
import { runQueuedIndex } from "./queue-commands.js";
import type { QueueCommandOptions } from "./queue-commands.js";

export interface IndexCommandOptions extends CommonOptions {
  annThreshold?: number;
}

/**
 * Embeds every image of the inputs that the store does not have yet, one committed batch at a time,
 * and forgets files that have disappeared from the folders indexed.
 */
export async function runIndex(inputs: string[], opts: IndexCommandOptions): Promise<number> {
  const { files, failed: skipped } = await images(inputs, opts);
  const store = await requireStore(opts);
  const bars = progress(!opts.quiet);
  const model = await openModel(opts, bars);
  try {
    const gone = await forgetGone(store, inputs, files);
    await recordIndexedRoots(store, model, inputs, files);
    let stored = 0;
    let fresh = 0;
    let failed = 0;
    const started = Date.now();
    for await (const r of embedWithStore(model, store, files, {
      batchSize: Math.max(opts.batchSize, 64),
      onProgress: (done, total) => bars.count(`indexing (${(done / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1)} files/s)`, done, total),
    })) {
      if (!r.embedding) {
        failed++;
        reportFailure(r.input, r.error?.message ?? "cannot be embedded", bars);
      } else if (r.cached) stored++;
      else fresh++;
    }
    bars.stop();
    const ann = await prepareAnnIndex(model, store, {
      ...(opts.annThreshold === undefined ? {} : { annThreshold: opts.annThreshold }),
      onProgress: (done, total) => bars.count("updating the search index", done, total),
    });
    bars.stop();
    const summary = { files: files.length, embedded: fresh, alreadyStored: stored, failed: failed + skipped, forgotten: gone.length, annIndex: ann, store: store.location };
    if (opts.json) process.stdout.write(JSON.stringify(summary) + "\n");
    else say(opts, `indexed ${plural(files.length, "file")} into ${store.location}: ${fresh} embedded now, ${stored} already stored, ${failed + skipped} failed, ${plural(gone.length, "removed file")} forgotten`);
    return failed + skipped > 0 ? 1 : 0;
  } finally {
    await store.close();
    await model.close();
  }
}

export interface SearchCommandOptions extends CommonOptions {
  image: string[];
  add: string[];
  subtract: string[];
  top: number;
  in?: string;
  all?: boolean;
  paths?: boolean;
  annThreshold?: number;
}

export async function runSearch(text: string[], opts: SearchCommandOptions): Promise<number> {
  await queryImages("--image", opts.image, opts);
  const store = await requireStore(opts);
  const model = await openModel(opts, progress(!opts.quiet));
  try {
    const results = await search(
      model,
      store,
      { text: text.length > 0 ? [text.join(" ")] : [], images: opts.image, add: opts.add, subtract: opts.subtract },
      { top: opts.top, ...(opts.annThreshold === undefined ? {} : { annThreshold: opts.annThreshold }), ...scopeOf(opts) },
    );
    if (results.length === 0) say(opts, `no ${opts.all || opts.in ? "stored" : "indexed"} images${opts.in ? ` under ${opts.in}` : ""} for this model in ${store.location}: run clip-ood index <folders> first`);
    if (opts.paths) {
      for (const r of results) process.stdout.write(r.input + "\n");
      return 0;
    }
    // One row per content; its other paths (copies) are counted here and listed by --json.
    const out = rowWriter(format(opts), process.stdout, ["input", "score", "copies"], [Math.min(80, widest(results.map((r) => r.input))), 8, 6]);
    for (const r of results) out.row([r.input, r.score.toFixed(6), r.paths.length > 1 ? `+${r.paths.length - 1}` : ""], { input: r.input, score: r.score, paths: r.paths });
    return 0;
  } finally {
    await store.close();
    await model.close();
  }
}

/** Where search and export look: under --in, else everywhere with --all, else under the indexed roots. */
function scopeOf(opts: { in?: string; all?: boolean }): { under?: string; all?: boolean } {
  return { ...(opts.in === undefined ? {} : { under: path.resolve(opts.in) }), ...(opts.all ? { all: true } : {}) };
}

/**
 * Writes the store's embeddings of the model (under the indexed roots unless --all, under --in if
 * given), one row per content with its paths, as .npy + sidecar or JSON Lines.
 */
export async function runExport(opts: CommonOptions & { out: string; in?: string; all?: boolean }): Promise<number> {
  const store = await requireStore(opts);
  try {
    const { key, model } = await exportedModel(store, opts);
    const rows = await store.embeddingsFor(key, await searchScope(store, key, model.id, scopeOf(opts)));
    const contents = contentsOf(rows);
    const n = contents.length;
    const vector = (row: number) => rows.data.subarray(row * rows.dim, (row + 1) * rows.dim);
    const dtype = model.dtype === undefined ? {} : { dtype: model.dtype };
    if (opts.out.toLowerCase().endsWith(".npy")) {
      const data = new Float32Array(n * rows.dim);
      contents.forEach((c, i) => data.set(vector(c.row), i * rows.dim));
      await writeEmbeddingsNpy(opts.out, data, rows.dim, { model: model.id, ...dtype, rows: contents.map((c) => ({ input: c.paths[0]!, kind: "image", hash: rows.hashes[c.row]!, paths: c.paths })) });
    } else {
      const out = outputFile(opts.out);
      try {
        for (const c of contents) {
          out.stream.write(JSON.stringify({ input: c.paths[0], kind: "image", model: model.id, ...dtype, hash: rows.hashes[c.row], paths: c.paths, embedding: Array.from(vector(c.row)) }) + "\n");
        }
      } catch (e) {
        await out.abort();
        throw e;
      }
      await out.close();
    }
    say(opts, `exported ${plural(n, "embedding")} of ${model.id} to ${opts.out} (one per content: ${plural(rows.paths.length, "path")}${opts.in !== undefined ? ` under ${opts.in}` : opts.all ? "" : " under the indexed folders"})`);
    return 0;
  } finally {
    await store.close();
  }
}

/**
 * The store's model key that export writes, and the model it stands for: the one key of --model (or
 * $CLIP_OOD_MODEL), or the store's only key without them, read from the store alone so that no model
 * is loaded or downloaded. Only where that leaves several keys (one model at several dtypes or
 * settings) and --model names one, or with --dtype, is the model loaded to compute its exact key.
 * The dtype is known only then: a key does not spell it out.
 */
async function exportedModel(store: EmbeddingStore, opts: CommonOptions): Promise<{ key: string; model: { id: string; dtype?: string } }> {
  const keys = (await store.stats()).models.map((m) => m.modelKey);
  const idOf = (key: string) => key.slice(0, key.lastIndexOf("#"));
  const ref = opts.model ?? process.env["CLIP_OOD_MODEL"];
  const candidates = ref === undefined ? keys : keys.filter((k) => idOf(k) === modelIdFor(ref));
  if (candidates.length === 1 && opts.dtype === undefined) return { key: candidates[0]!, model: { id: idOf(candidates[0]!) } };
  if (ref === undefined) {
    throw new ClipOodError("USAGE", keys.length === 0 ? `the store ${store.location} holds no embeddings` : `the store ${store.location} holds embeddings of several models: ${keys.join(", ")}`, {
      hint: keys.length === 0 ? "index images first: clip-ood index <folder>" : "pass --model <id> to choose one",
    });
  }
  const model = await openModel(opts, progress(false));
  try {
    return { key: await storeModelKey(model), model: { id: model.id, dtype: model.model.dtype } };
  } finally {
    await model.close();
  }
}

export async function runStore(action: "stats" | "prune" | "vacuum", opts: CommonOptions): Promise<number> {
  const store = await requireStore(opts);
  // Indented for people; --json: one object per line, for scripts.
  const print = (value: unknown) => process.stdout.write(JSON.stringify(value, null, opts.json ? undefined : 2) + "\n");
  try {
    if (action === "prune") print({ removed: await store.prune() });
    else if (action === "vacuum") await store.vacuum();
    const stats = await store.stats();
    // What search and export cover per model (the folders given to index, and how many single files),
    // and the HNSW index kept for it beside the store, if any (its search width and measured recall).
    const models = await Promise.all(
      stats.models.map(async (m) => {
        const roots = await store.indexedRoots(m.modelKey);
        const annIndex = store.nearest ? null : ((await annIndexStatus(store, m.modelKey)) ?? null);
        return { ...m, indexed: { folders: roots.filter((r) => r.folder).map((r) => r.path), files: roots.filter((r) => !r.folder).length }, annIndex };
      }),
    );
    print({ ...stats, models });
    return 0;
  } finally {
    await store.close();
  }
}

/**
 * index builds or updates a collection's HNSW index where search would use it, so the two take parser
 * and default from one place; each says what it does at the threshold. No default: without it the
 * choice follows the exact scan's measured speed (src/search/choose.ts).
 */
function annThresholdOption(what: string): Option {
  return new Option("--ann-threshold <n>", `${what} (default: chosen by measured speed: exact while one scan takes under ${LATENCY_BUDGET_MS} ms, always up to ${MIN_ANN_ROWS.toLocaleString("en")} images)`).argParser(int("--ann-threshold"));
}

function inFolderOption(): Option {
  return new Option("--in <folder>", "the images the store holds under this folder, indexed there or stored by other commands");
}

function allImagesOption(): Option {
  return new Option("--all", "every image the store has embedded for the model, not only those under the folders given to `clip-ood index` (detect, eval, fit and the rest store theirs too)");
}

export function addIndexCommand(program: Command, setStatus: SetStatus): void {
  const indexCmd = withFormatOptions(withCommonOptions(program.command("index")))
    .description("Embed images into the store once: later classify, detect, fit, calibrate and search reuse them.")
    .argument("<inputs...>", "image files, folders (recursive), globs, or - to read paths from stdin")
    .addOption(annThresholdOption("collection size above which the HNSW search index is built"))
    .option("--queue", "enqueue the images on the PostgreSQL store's job queue for `clip-ood worker` processes instead of embedding here")
    .option("--wait", "with --queue: follow the workers' progress until every batch is done");
  withQueueBatchOptions(indexCmd)
    .addHelpText("after", `
Unchanged files (same size and modification time) are skipped without reading them; moved or copied
files are recognised by their content. Each batch is committed on its own: an interrupted run loses
at most the batch in flight, and running it again finishes the rest. Files gone from an indexed folder
are forgotten. The folders and files given are recorded as indexed for the model: \`search\` and
\`export\` cover them (not what detect, eval or fit stored on the way). --json prints a summary line.
A collection large enough for search to use its HNSW index (see \`clip-ood search --help\`) gets it
built here the first time, so that searches find it ready; later runs add and remove files in the
index in place (seconds, not a rebuild).

With --queue (PostgreSQL stores only) the images the store lacks are enqueued in batches of --job-size,
and any number of \`clip-ood worker\` processes on any machines that see the same paths embed them;
--wait shows one progress bar over all of them and exits 1 if some images failed (\`clip-ood queue
failed\` lists them).

Examples:
  clip-ood index ~/Pictures
  clip-ood index ./dataset --store ./dataset.sqlite --dtype q8
  clip-ood index /mnt/photos --store postgres://clip@db/clip --queue --wait
${EXIT_HELP}`)
    .action(async (inputs: string[], opts: IndexCommandOptions & QueueCommandOptions & { queue?: boolean }) => {
      setStatus(opts.queue ? await runQueuedIndex(inputs, opts) : await runIndex(inputs, opts));
    });
}

export function addSearchCommand(program: Command, setStatus: SetStatus): void {
  withFormatOptions(withCommonOptions(program.command("search")))
    .description("Find indexed images by text, by image, or by their arithmetic, best first.")
    .argument("[text...]", "what to look for, e.g. a dog wearing sunglasses")
    .option("--image <file>", "look for images like this one (repeatable)", collect, [] as string[])
    .option("--add <text>", "add this text to the query (repeatable)", collect, [] as string[])
    .option("--subtract <text>", "subtract this text from the query (repeatable)", collect, [] as string[])
    .option("--top <k>", "results to show", int("--top"), 10)
    .addOption(inFolderOption())
    .addOption(allImagesOption())
    .option("--paths", "print bare paths, one per line (for pipes)")
    .addOption(annThresholdOption("collection size above which an approximate HNSW index is used instead of exact search"))
    .addHelpText("after", `
Search covers the images under the folders (and files) given to \`clip-ood index\` for this model;
--all covers every image the store has embedded for it (detect, eval and fit store theirs too), and
--in <folder> every one it holds under that folder. One image stored under several paths is one result: the first of
its paths in path order is shown, \`copies\` counts the others and --json lists them all (\`paths\`).
Each part of the query (text, --image, --add, --subtract) is normalised, then they are summed (subtract
counts −1) and normalised again. Scores are cosines. Search scans every image exactly while that is
fast (up to ${MIN_ANN_ROWS.toLocaleString("en")} images always, beyond while one scan, measured on this machine, takes
under ${LATENCY_BUDGET_MS} ms) and otherwise uses an HNSW index of the model's images kept beside the store,
tuned to find 98% of the true top 10 (it measures its recall on images held back from it when built
and sets its search width to reach 0.98; \`clip-ood store stats\` shows both). Files added or removed
later go into the index in place, never a rebuild. --ann-threshold <n> overrides the choice: exact up
to n images, the index above. Files deleted since they were indexed drop out of the results.

Examples:
  clip-ood search "a dog wearing sunglasses"
  clip-ood search --image cat.jpg --subtract "a cat" --add "a dog" --top 5 --json
  clip-ood search "sunset over the sea" --paths | xargs open
${EXIT_HELP}`)
    .action(async (text: string[], opts: SearchCommandOptions) => {
      setStatus(await runSearch(text, opts));
    });
}

export function addExportCommand(program: Command, setStatus: SetStatus): void {
  withCommonOptions(program.command("export"))
    .description("Write the embeddings of the indexed images of one model, one row per content: .npy (+ <file>.json listing the rows) or JSON Lines. Without --model: the store's only model; no model is loaded unless --model matches several keys or --dtype is given.")
    .requiredOption("-o, --out <file>", "output file (.npy or .jsonl)")
    .addOption(inFolderOption())
    .addOption(allImagesOption())
    .addHelpText("after", `
Exports what \`clip-ood search\` covers: the images under the folders given to \`clip-ood index\` (--all:
every image the store has embedded for the model; --in: every one it holds under that folder), one
row per content.
Each row's \`input\` is the first of its paths in path order and \`paths\` lists them all (in the
.npy's <file>.json sidecar, and on each JSON Lines row).
${EXIT_HELP}`)
    .action(async (opts: CommonOptions & { out: string; in?: string; all?: boolean }) => {
      setStatus(await runExport(opts));
    });
}

export function addStoreCommand(program: Command, setStatus: SetStatus): void {
  const storeCmd = program.command("store").description("Inspect and maintain the embedding store (--store <file or postgres:// URL>, default $CLIP_OOD_STORE or <cache-dir>/store.sqlite).");
  for (const [action, text] of [
    ["stats", "print counts per model (with the folders given to index for it) and the file size as JSON (indented; --json: one line)"],
    ["prune", "forget files that no longer exist and embeddings nothing refers to"],
    ["vacuum", "compact the database file"],
  ] as const) {
    storeCmd
      .command(action)
      .description(text)
      .option("--store <file|url>", "the store: an SQLite file or a postgres:// URL (default $CLIP_OOD_STORE, else <cache-dir>/store.sqlite)")
      .option("--cache-dir <dir>", "cache folder holding the default store")
      .option("--json", "one JSON object per line instead of indented JSON")
      .action(async (opts: CommonOptions) => {
        setStatus(await runStore(action, opts));
      });
  }
}
