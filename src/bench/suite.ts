/**
 * The throughput suite behind `clip-ood bench`: sweeps dtype × batch size × workers × threads for the
 * raw-against-end-to-end image comparison, and measures text encoding, cold start, peak memory and the
 * ensemble cache once per dtype. Every figure of one report comes from one run on one machine.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expandInputs } from "../image/inputs.js";
import { TEXT_CONTRACTS } from "../model/family.js";
import { openModelFolder } from "../model/folder.js";
import type { Dtype } from "../model/folder.js";
import { agreement, cliRun, endToEndRate, ensembleTimes, makePhotos, preprocessRate, rawVisionRate, textRates, typicalPrompts } from "./throughput.js";
import type { ModelSettings } from "./throughput.js";

export interface SuiteOptions {
  /** A model folder (generated or real). */
  model: string;
  dtypes: Dtype[];
  batchSizes: number[];
  workers: number[];
  /** Intra-op threads per worker; undefined: cores / workers. */
  threads?: number[];
  /** A folder of photos; without it, `count` generated JPEGs of 500–1000 px. */
  images?: string;
  count: number;
  /** Seconds per raw measurement. */
  seconds: number;
  /** Prompts for the text rates. */
  texts: number;
  /** Parts to leave out. */
  skip: ReadonlySet<"text" | "cold" | "rss" | "ensemble">;
  log?: (message: string) => void;
}

export interface ImageRow {
  dtype: Dtype;
  batchSize: number;
  workers: number;
  threads: number;
  rawImagesPerSecond: number;
  endToEndImagesPerSecond: number;
  /** end-to-end ÷ raw. */
  ratio: number;
  /** Decoding and preprocessing alone on the same images, all cores. */
  preprocessImagesPerSecond: number;
}

export interface DtypeRow {
  dtype: Dtype;
  /** The lowest cosine between this variant's image embeddings and the first variant's. */
  lowestCosineToFirst?: number;
  /**
   * Padded to the context length (`contextLength` tokens: CLIP's 77, SigLIP's 64) and to the batch's
   * longest; the latter, its speed-up and the embeddings' largest difference are absent for models
   * whose prompts are always padded to the context.
   */
  text?: { paddedToContextPromptsPerSecond: number; contextLength: number; longestPromptsPerSecond?: number; speedup?: number; maxAbsDiff?: number; prompts: number };
  coldStartSeconds?: number;
  detectPeakRssBytes?: number;
  detectImages?: number;
  ensemble?: { prompts: number; encodeSeconds: number; cachedSeconds: number };
}

export interface SuiteReport {
  model: string;
  images: { source: string; count: number };
  machine: { cpu: string; cores: number; memoryBytes: number; platform: string; node: string };
  date: string;
  imageRuns: ImageRow[];
  dtypes: DtypeRow[];
}

const CLI = fileURLToPath(new URL(import.meta.url.endsWith(".ts") ? "../../dist/cli/main.js" : "../cli/main.js", import.meta.url));

export async function runSuite(o: SuiteOptions): Promise<SuiteReport> {
  const log = o.log ?? (() => {});
  const work = await mkdtemp(path.join(os.tmpdir(), "clip-ood-bench-"));
  try {
    let files: string[];
    if (o.images) files = (await expandInputs([o.images])).files.slice(0, o.count);
    else {
      log(`making ${o.count} photo-like JPEGs of 500–1000 px`);
      await mkdir(path.join(work, "photos"));
      files = await makePhotos(path.join(work, "photos"), o.count);
    }
    const imageRows: ImageRow[] = [];
    const dtypeRows: DtypeRow[] = [];
    for (const dtype of o.dtypes) {
      const folder = await openModelFolder(o.model, dtype);
      for (const workers of o.workers) {
        for (const threads of o.threads ?? [Math.max(1, Math.floor(os.availableParallelism() / workers))]) {
          for (const batchSize of o.batchSizes) {
            const s: ModelSettings = { model: o.model, dtype, cacheDir: path.join(work, "cache"), batchSize, workers, threads };
            log(`${dtype} batch ${batchSize}, ${workers} worker(s) × ${threads} thread(s): raw graph`);
            const raw = await rawVisionRate(folder.visionModel, batchSize, workers * threads, o.seconds, folder.preprocess.cropHeight, TEXT_CONTRACTS[folder.family].visionOutput);
            log(`  raw ${raw.toFixed(1)} images/s; end to end over ${files.length} images`);
            const e2e = await endToEndRate(s, files);
            log(`  end to end ${e2e.imagesPerSecond.toFixed(1)} images/s (${((100 * e2e.imagesPerSecond) / raw).toFixed(0)}% of raw); decoding alone`);
            const pre = await preprocessRate(files, folder.preprocess, batchSize);
            imageRows.push({ dtype, batchSize, workers, threads, rawImagesPerSecond: raw, endToEndImagesPerSecond: e2e.imagesPerSecond, ratio: e2e.imagesPerSecond / raw, preprocessImagesPerSecond: pre });
          }
        }
      }
      const s: ModelSettings = { model: o.model, dtype, cacheDir: path.join(work, `cache-${dtype}`), batchSize: Math.max(...o.batchSizes), workers: 1, threads: os.availableParallelism() };
      const row: DtypeRow = { dtype };
      if (dtype !== o.dtypes[0]) {
        log(`${dtype}: lowest cosine to ${o.dtypes[0]} over ${Math.min(files.length, 64)} images`);
        row.lowestCosineToFirst = await agreement({ ...s, dtype: o.dtypes[0]! }, s, files.slice(0, 64));
      }
      if (!o.skip.has("text")) {
        log(`${dtype}: text, ${o.texts} prompts padded to the longest (unless the model forbids it) and to the context length`);
        const t = await textRates(s, typicalPrompts(o.texts));
        row.text = {
          paddedToContextPromptsPerSecond: t.max,
          contextLength: t.contextLength,
          ...(t.longest && { longestPromptsPerSecond: t.longest.rate, speedup: t.longest.rate / t.max, maxAbsDiff: t.longest.maxAbsDiff }),
          prompts: o.texts,
        };
      }
      const common = ["--model", o.model, "--dtype", dtype, "--cache-dir", path.join(work, `cli-${dtype}`), "--no-store", "--json", "--quiet", "--classes", "cat,dog,car"];
      if (!o.skip.has("cold")) {
        log(`${dtype}: cold start of clip-ood detect on one image`);
        row.coldStartSeconds = (await cliRun(CLI, ["detect", files[0]!, ...common])).firstResultSeconds;
      }
      if (!o.skip.has("rss")) {
        log(`${dtype}: peak memory of clip-ood detect over ${files.length} images`);
        row.detectPeakRssBytes = (await cliRun(CLI, ["detect", ...files, ...common])).peakRssBytes;
        row.detectImages = files.length;
      }
      if (!o.skip.has("ensemble")) {
        log(`${dtype}: the 1000-class × 80-template ensemble, encoded, then from the cache`);
        const e = await ensembleTimes({ ...s, cacheDir: path.join(work, `ensemble-${dtype}`) });
        row.ensemble = { prompts: e.prompts, encodeSeconds: e.encodeSeconds, cachedSeconds: e.cachedSeconds };
      }
      dtypeRows.push(row);
    }
    return {
      model: o.model,
      images: { source: o.images ?? `${o.count} generated JPEGs, 500–1000 px`, count: files.length },
      machine: { cpu: os.cpus()[0]?.model.trim() ?? "unknown", cores: os.availableParallelism(), memoryBytes: os.totalmem(), platform: `${os.platform()} ${os.release()}`, node: process.version },
      date: new Date().toISOString(),
      imageRuns: imageRows,
      dtypes: dtypeRows,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
