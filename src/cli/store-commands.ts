/**
 * The embedding store from the command line: index, search, export, store stats/prune/vacuum.
 */
import path from "node:path";
import { writeEmbeddingsNpy } from "../io/embeddings.js";
import { embedWithStore, storeModelKey } from "../store/cached.js";
import { prepareAnnIndex, search } from "../store/search.js";
import type { CommonOptions } from "./commands.js";
import { forgetGone, format, images, openModel, requireStore, say } from "./commands.js";
import { outputFile, rowWriter } from "./output.js";
import { progress } from "./progress.js";

export interface IndexCommandOptions extends CommonOptions {
  annThreshold: number;
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
        bars.stop();
        process.stderr.write(`failed ${r.error?.message ?? r.input}\n`);
      } else if (r.cached) stored++;
      else fresh++;
    }
    bars.stop();
    const ann = await prepareAnnIndex(model, store, {
      annThreshold: opts.annThreshold,
      onProgress: (done, total) => bars.count("building the search index", done, total),
    });
    bars.stop();
    const summary = { files: files.length, embedded: fresh, alreadyStored: stored, failed: failed + skipped, forgotten: gone.length, annIndex: ann, store: store.location };
    if (opts.json) process.stdout.write(JSON.stringify(summary) + "\n");
    else say(opts, `indexed ${files.length} files into ${store.location}: ${fresh} embedded now, ${stored} already stored, ${failed + skipped} failed, ${gone.length} removed files forgotten`);
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
  paths?: boolean;
  annThreshold: number;
}

export async function runSearch(text: string[], opts: SearchCommandOptions): Promise<number> {
  const store = await requireStore(opts);
  const model = await openModel(opts, progress(!opts.quiet));
  try {
    const results = await search(
      model,
      store,
      { text: text.length > 0 ? [text.join(" ")] : [], images: opts.image, add: opts.add, subtract: opts.subtract },
      { top: opts.top, annThreshold: opts.annThreshold, ...(opts.in === undefined ? {} : { under: path.resolve(opts.in) }) },
    );
    if (results.length === 0) say(opts, `no indexed images${opts.in ? ` under ${opts.in}` : ""} for this model in ${store.location}: run clip-ood index <folders> first`);
    if (opts.paths) {
      for (const r of results) process.stdout.write(r.input + "\n");
      return 0;
    }
    const out = rowWriter(format(opts), process.stdout, ["input", "score"], [Math.min(80, Math.max(5, ...results.map((r) => r.input.length))), 8]);
    for (const r of results) out.row([r.input, r.score.toFixed(6)], { input: r.input, score: r.score });
    return 0;
  } finally {
    await store.close();
    await model.close();
  }
}

/** Writes the store's embeddings of the model (optionally under a folder) as .npy + sidecar or JSON Lines. */
export async function runExport(opts: CommonOptions & { out: string; in?: string }): Promise<number> {
  const store = await requireStore(opts);
  const model = await openModel(opts, progress(false));
  try {
    const key = await storeModelKey(model);
    const rows = await store.embeddingsFor(key, opts.in === undefined ? {} : { under: path.resolve(opts.in) });
    const n = rows.paths.length;
    if (opts.out.toLowerCase().endsWith(".npy")) {
      await writeEmbeddingsNpy(opts.out, rows.data, rows.dim, { model: model.id, dtype: model.model.dtype, rows: rows.paths.map((p, i) => ({ input: p, kind: "image", hash: rows.hashes[i]! })) });
    } else {
      const out = outputFile(opts.out);
      try {
        for (let i = 0; i < n; i++) {
          out.stream.write(JSON.stringify({ input: rows.paths[i], kind: "image", model: model.id, hash: rows.hashes[i], embedding: Array.from(rows.data.subarray(i * rows.dim, (i + 1) * rows.dim)) }) + "\n");
        }
      } catch (e) {
        await out.abort();
        throw e;
      }
      await out.close();
    }
    say(opts, `exported ${n} embeddings of ${model.id} to ${opts.out}`);
    return 0;
  } finally {
    await store.close();
    await model.close();
  }
}

export async function runStore(action: "stats" | "prune" | "vacuum", opts: CommonOptions): Promise<number> {
  const store = await requireStore(opts);
  try {
    if (action === "prune") process.stdout.write(JSON.stringify({ removed: await store.prune() }) + "\n");
    else if (action === "vacuum") await store.vacuum();
    process.stdout.write(JSON.stringify(await store.stats(), null, 2) + "\n");
    return 0;
  } finally {
    await store.close();
  }
}
