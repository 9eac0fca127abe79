/**
 * Throughput measurements of clip-ood on one model folder, side by side in one run so that their
 * ratios mean something on a shared, noisy machine: the raw vision graph (onnxruntime alone, tensors
 * already made) against the end-to-end image path (read → decode → preprocess → infer → score), text
 * prompts padded to the batch's longest against padded to the context length (77 for CLIP; SigLIP and
 * fixed-length graphs are only ever padded to theirs), cold start, peak memory, and the prompt-ensemble
 * text cache. Used by `clip-ood bench` and `npm run bench -- throughput`.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { ClipModel } from "../clip.js";
import type { ClipOptions } from "../clip.js";
import { sessionOptions } from "../engine/worker.js";
import { DEFAULT_MAX_PIXELS, preprocessImage } from "../image/preprocess.js";
import type { PreprocessConfig } from "../model/preprocessor-config.js";
import { mcmScore } from "../maths/scores.js";
import type { Dtype } from "../model/folder.js";
import { mulberry32 } from "../maths/random.js";
import { IMAGENET_1K } from "../text/imagenet1k.js";
import { TEMPLATE_PRESETS } from "../text/templates.js";
import { classCosines } from "../zeroshot.js";

export interface ModelSettings {
  model: string;
  dtype: Dtype;
  cacheDir: string;
  batchSize: number;
  workers: number;
  threads: number;
}

function load(s: ModelSettings, extra: Partial<ClipOptions> = {}): Promise<ClipModel> {
  return ClipModel.load({ model: s.model, dtype: s.dtype, cacheDir: s.cacheDir, batchSize: s.batchSize, workers: s.workers, threads: s.threads, offline: true, ...extra });
}

/** Runs `step` (one batch) until `seconds` have passed and at least `minSteps` ran; returns steps per second. */
async function rate(step: () => Promise<unknown>, seconds: number, minSteps = 3): Promise<number> {
  await step(); // warm-up: allocations, thread pools, kernel choice
  let n = 0;
  const t0 = performance.now();
  while (n < minSteps || performance.now() - t0 < seconds * 1000) {
    await step();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

/**
 * The vision graph alone: onnxruntime with clip-ood's session options and `workers × threads` cores,
 * fed one pre-made random batch again and again, fetching the family's embedding `output`. The ceiling
 * the end-to-end path is measured against.
 */
export async function rawVisionRate(visionFile: string, batch: number, threads: number, seconds: number, crop = 224, output = "image_embeds"): Promise<number> {
  const session = await ort.InferenceSession.create(visionFile, sessionOptions(threads));
  try {
    const r = mulberry32(1);
    const pixels = Float32Array.from({ length: batch * 3 * crop * crop }, () => r() * 4 - 2);
    const feeds = { pixel_values: new ort.Tensor("float32", pixels, [batch, 3, crop, crop]) };
    return batch * (await rate(() => session.run(feeds, [output]), seconds));
  } finally {
    await session.release();
  }
}

/** Images per second from file paths to MCM scores against three classes, through ClipModel (no store). */
export async function endToEndRate(s: ModelSettings, files: readonly string[]): Promise<{ imagesPerSecond: number; failed: number }> {
  const model = await load(s, { textCache: false });
  try {
    const features = await model.classFeatures(["cat", "dog", "car"].map((n) => ({ label: n, names: [n], descriptions: [] })), ["a photo of a {}."]);
    // Warm-up batch, outside the timing: sessions are created on first use.
    for await (const r of model.embedImages(files.slice(0, s.batchSize))) void r;
    let failed = 0;
    let sink = 0;
    const t0 = performance.now();
    for await (const r of model.embedImages(files)) {
      if (r.embedding) sink += mcmScore(classCosines(r.embedding, features)).score;
      else failed++;
    }
    const elapsed = (performance.now() - t0) / 1000;
    if (!Number.isFinite(sink)) throw new Error("non-finite scores");
    return { imagesPerSecond: (files.length - failed) / elapsed, failed };
  } finally {
    await model.close();
  }
}

/**
 * Decoding and preprocessing alone, `concurrency` images at a time as ClipModel prepares a batch: what
 * the end-to-end path spends besides inference, on the same cores.
 */
export async function preprocessRate(files: readonly string[], cfg: PreprocessConfig, concurrency: number): Promise<number> {
  const opts = { exifRotate: true, maxPixels: DEFAULT_MAX_PIXELS };
  const t0 = performance.now();
  for (let i = 0; i < files.length; i += concurrency) {
    await Promise.all(files.slice(i, i + concurrency).map((f) => preprocessImage(f, cfg, opts)));
  }
  return files.length / ((performance.now() - t0) / 1000);
}

/** The lowest cosine between two models' embeddings of the same images (q8 against fp32). */
export async function agreement(a: ModelSettings, b: ModelSettings, files: readonly string[]): Promise<number> {
  const embed = async (s: ModelSettings) => {
    const m = await load(s, { textCache: false });
    try {
      const rows: Float32Array[] = [];
      for await (const r of m.embedImages(files)) if (r.embedding) rows.push(r.embedding);
      return rows;
    } finally {
      await m.close();
    }
  };
  const [x, y] = [await embed(a), await embed(b)];
  let lowest = 1;
  x.forEach((v, i) => {
    let dot = 0;
    for (let j = 0; j < v.length; j++) dot += v[j]! * y[i]![j]!;
    lowest = Math.min(lowest, dot);
  });
  return lowest;
}

/** Typical prompts: ImageNet class names in the 80 templates, cycled. */
export function typicalPrompts(n: number): string[] {
  const templates = TEMPLATE_PRESETS["imagenet-80"]!;
  return Array.from({ length: n }, (_, i) => templates[i % templates.length]!.replace("{}", IMAGENET_1K[(i * 7) % IMAGENET_1K.length]!));
}

/**
 * Prompts per second padded to the context length (`contextLength` tokens) and, where the model allows
 * it, to the batch's longest, with the largest difference between the two runs' embeddings. A model
 * whose prompts are always padded to the context (SigLIP, a fixed-length text graph) has no "longest":
 * it would time the same padding again under another name.
 */
export async function textRates(s: ModelSettings, prompts: readonly string[]): Promise<{ contextLength: number; max: number; longest?: { rate: number; maxAbsDiff: number } }> {
  const model = await load(s, { textCache: false });
  try {
    const run = async (padding: "longest" | "max") => {
      await model.embedTexts(prompts.slice(0, s.batchSize), { cache: false, padding });
      const t0 = performance.now();
      const m = await model.embedTexts(prompts, { cache: false, padding });
      return { rate: prompts.length / ((performance.now() - t0) / 1000), m };
    };
    const longest = (await model.textPadding("longest")) === "longest" ? await run("longest") : undefined;
    const max = await run("max");
    const contextLength = model.tokenizer.maxLength;
    if (!longest) return { contextLength, max: max.rate };
    let maxAbsDiff = 0;
    for (let i = 0; i < longest.m.data.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(longest.m.data[i]! - max.m.data[i]!));
    return { contextLength, max: max.rate, longest: { rate: longest.rate, maxAbsDiff } };
  } finally {
    await model.close();
  }
}

/**
 * The 1000-class × 80-template ensemble (80,000 prompts): encoded once into an empty text cache, then
 * served from it by a freshly loaded model (as a second CLI run would).
 */
export async function ensembleTimes(s: ModelSettings, onProgress?: (done: number, total: number) => void): Promise<{ encodeSeconds: number; cachedSeconds: number; prompts: number }> {
  const classes = IMAGENET_1K.map((n) => ({ label: n, names: [n], descriptions: [] }));
  const templates = [...TEMPLATE_PRESETS["imagenet-80"]!];
  const timed = async (progress?: (done: number, total: number) => void) => {
    const model = await load(s);
    try {
      const t0 = performance.now();
      const f = await model.classFeatures(classes, templates, progress);
      return { seconds: (performance.now() - t0) / 1000, prompts: f.prompts.flat().length };
    } finally {
      await model.close();
    }
  };
  const first = await timed(onProgress);
  const cached = await timed();
  return { encodeSeconds: first.seconds, cachedSeconds: cached.seconds, prompts: first.prompts };
}

/** Peak resident memory (VmHWM) of a child process, from /proc while it runs; NaN where /proc is missing. */
async function peakRss(pid: number, done: Promise<unknown>): Promise<number> {
  let peak = NaN;
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    if (m) peak = Math.max(Number.isNaN(peak) ? 0 : peak, Number(m[1]) * 1024);
    await new Promise((r) => setTimeout(r, 50));
  }
  return peak;
}

/**
 * Runs the CLI as a user would: seconds from process start to the first result line on stdout, the
 * whole run's seconds, and its peak resident memory.
 */
export async function cliRun(cli: string, args: readonly string[]): Promise<{ firstResultSeconds: number; totalSeconds: number; peakRssBytes: number; code: number | null }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let first = NaN;
  let stderr = "";
  child.stdout.on("data", () => {
    if (Number.isNaN(first)) first = (performance.now() - t0) / 1000;
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const peak = await peakRss(child.pid!, exited);
  const { code, signal } = await exited;
  if (code !== 0) throw new Error(`clip-ood ${args[0]} exited with ${code ?? signal}: ${stderr.slice(-500)}`);
  return { firstResultSeconds: first, totalSeconds: (performance.now() - t0) / 1000, peakRssBytes: peak, code };
}

/**
 * Ordinary-photo stand-ins: `n` JPEGs of 500–1000 px (seeded smooth colour fields with noise and
 * edges, so JPEG decoding costs what it costs for photos, unlike flat synthetic images).
 */
export async function makePhotos(dir: string, n: number, seed = 1): Promise<string[]> {
  const r = mulberry32(seed);
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const w = 500 + Math.floor(r() * 500);
    const h = 500 + Math.floor(r() * 500);
    const small = 24;
    const base = Buffer.from(Array.from({ length: small * small * 3 }, () => Math.floor(r() * 256)));
    const noise = Buffer.from(Array.from({ length: 64 * 64 * 3 }, () => Math.floor(r() * 256)));
    const file = path.join(dir, `photo-${String(i).padStart(4, "0")}.jpg`);
    const texture = await sharp(noise, { raw: { width: 64, height: 64, channels: 3 } }).resize(w, h, { kernel: "nearest" }).png().toBuffer();
    await sharp(base, { raw: { width: small, height: small, channels: 3 } })
      .resize(w, h, { kernel: "cubic" })
      .composite([{ input: texture, blend: "overlay" }])
      .jpeg({ quality: 90 })
      .toFile(file);
    files.push(file);
  }
  return files;
}
