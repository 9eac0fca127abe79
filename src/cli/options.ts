/**
 * Options that several commands declare, each written once so that its flag, help text, parser and
 * default cannot differ from one command to the next.
 */
import { InvalidArgumentError, Option } from "commander";
import type { Command } from "commander";
import { DEFAULT_BATCH_SIZE } from "../clip.js";
import { DEFAULT_MAX_PIXELS } from "../image/preprocess.js";
import { DTYPE_SUFFIX } from "../model/folder.js";
import { DEFAULT_MODEL_ID } from "../model/hub-cache.js";
import { presetNames } from "../model/presets.js";
import { QUEUE_DEFAULTS } from "../queue/embed-queue.js";
import { DEFAULT_DB_RETRY_SECONDS } from "../store/db-retry.js";
import { DEFAULT_TEMPLATES, TEMPLATE_PRESETS } from "../text/templates.js";

/** Commander drops what an action returns, so each command hands its exit status to main through this. */
export type SetStatus = (status: number) => void;

export function int(name: string, min = 1) {
  const what = min === 1 ? "a positive integer" : `an integer of at least ${min}`;
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be ${what}`);
    return n;
  };
}

export function num(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

/** Repeatable options (`--id a --id b`) collect into a list; one value each, so they never swallow the inputs. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The common options a command may leave out, where they would mean nothing to it (a queue worker takes no inputs). */
export type CommonFlag = "--ext" | "--no-text-cache" | "--no-store" | "--logit-scale" | "--logit-bias";

export function withCommonOptions(cmd: Command, without: readonly CommonFlag[] = []): Command {
  const options = [
    new Option("-m, --model <preset|id|folder>", `a preset (${presetNames()}; see \`clip-ood models\`), a Hub id, or a local model folder (Hugging Face ONNX layout) (default: $CLIP_OOD_MODEL, a detector's own model, or ${DEFAULT_MODEL_ID})`),
    new Option("--dtype <dtype>", "ONNX variant, picked by file suffix (default: fp32, or a detector's own)").choices(Object.keys(DTYPE_SUFFIX)),
    new Option("--cache-dir <dir>", "model and text-embedding cache (default $CLIP_OOD_CACHE or ~/.cache/clip-ood)"),
    new Option("--offline", "never use the network; use cached or local models only (also CLIP_OOD_OFFLINE=1)"),
    new Option("--device <device>", "where the graphs run; cuda needs onnxruntime's CUDA provider and falls back to the CPU with a warning").choices(["cpu", "cuda"]).default("cpu"),
    new Option("--threads <n>", "onnxruntime threads per worker (default: cores / workers)").argParser(int("--threads")),
    new Option("--workers <n>", "inference worker threads").argParser(int("--workers")).default(1),
    new Option("--batch-size <n>", "images or prompts per inference call").argParser(int("--batch-size")).default(DEFAULT_BATCH_SIZE),
    new Option("--no-exif-rotate", "ignore EXIF orientation (matches plain PIL loading)"),
    new Option("--logit-scale <s>", "SigLIP: the logit scale as used (exp of the stored logit_scale), overriding the folder's onnx/model.onnx").argParser(num("--logit-scale")),
    new Option("--logit-bias <b>", "SigLIP: the logit bias, overriding the folder's onnx/model.onnx").argParser(num("--logit-bias")),
    new Option("--max-pixels <n>", "refuse images with more pixels than this (decompression bombs)").argParser(int("--max-pixels")).default(DEFAULT_MAX_PIXELS),
    new Option("--ext <list>", "extensions to take from folders, comma-separated (default: jpg,jpeg,png,webp,gif,tif,tiff,avif)"),
    new Option("--no-text-cache", "do not read or write the on-disk text-embedding cache"),
    new Option("--store <file|url>", "embedding store, an SQLite file or a postgres:// URL shared by many machines: image embeddings are reused across runs (default $CLIP_OOD_STORE, else <cache-dir>/store.sqlite)"),
    new Option("--no-store", "neither read nor write the embedding store"),
    new Option("-q, --quiet", "no progress bars or notes on stderr (warnings and errors still show)"),
  ];
  for (const o of options) if (!(without as readonly string[]).includes(o.long ?? "")) cmd.addOption(o);
  return cmd;
}

/** A duration in seconds that may be fractional (`--poll 0.5`), and must be above zero. */
export function seconds(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number of seconds above 0, like 1 or 0.5`);
    return n;
  };
}

const CLASSES_HELP = "class names: a,b,c or a file (one per line: `label [= synonym …][: description | …]`, or JSON)";

export function withClassOptions(cmd: Command, required = true): Command {
  return (required ? cmd.requiredOption("-c, --classes <list|file>", CLASSES_HELP) : cmd.option("-c, --classes <list|file>", CLASSES_HELP))
    .option("-t, --templates <preset|file|template>", `prompt templates: a preset (${Object.keys(TEMPLATE_PRESETS).join(", ")}), a file, or a literal like "a blurry photo of a {}."`, DEFAULT_TEMPLATES);
}

export function withFormatOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--json", "JSON Lines on stdout, one object per input").conflicts("csv"))
    .option("--csv", "CSV on stdout");
}

/** How queued batches are cut and retried (index --queue, eval --queue); each command words its own --queue. */
export function withQueueBatchOptions(cmd: Command): Command {
  return cmd
    .option("--job-size <n>", "with --queue: images per queued batch", int("--job-size"), 64)
    .option("--retries <n>", "with --queue: attempts after the first for a batch whose worker failed or vanished", int("--retries", 0), QUEUE_DEFAULTS.retries)
    .option("--lease <seconds>", "with --queue: how long a worker holds a batch before another may take it", int("--lease"), QUEUE_DEFAULTS.leaseSeconds)
    .addOption(dbRetryOption("with --queue, while following the workers: "));
}

/** How long a command that follows the queue rides out a database restart or failover (worker, index --queue --wait). */
export function dbRetryOption(prefix = ""): Option {
  return new Option(
    "--db-retry <seconds>",
    `${prefix}how long to keep retrying, with backoff, while the PostgreSQL database is unreachable (a restart, a failover) before giving up; 0: never (default $CLIP_OOD_DB_RETRY, else ${DEFAULT_DB_RETRY_SECONDS})`,
  ).argParser(int("--db-retry", 0));
}
