/**
 * The distributed path from the command line: `index --queue` enqueues batches on the PostgreSQL
 * store's job queue (and with --wait follows every worker's progress), `worker` embeds them on any
 * machine, `queue status` and `queue failed` look at the queue.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import type { ClipModel } from "../../clip.js";
import { ClipOodError } from "../../errors.js";
import { EmbedQueue, QUEUE_DEFAULTS } from "../../queue/embed-queue.js";
import type { FailedInput, QueueProgress } from "../../queue/embed-queue.js";
import { newWorkerState, runWorker } from "../../queue/worker.js";
import type { HealthServer } from "../../server/worker-health.js";
import { storeModelKey } from "../../store/cached.js";
import { dbRetrySeconds, withDbRetry } from "../../store/db-retry.js";
import { isPostgresUrl } from "../../store/postgres-store.js";
import type { PostgresStore } from "../../store/postgres-store.js";
import type { EmbeddingStore } from "../../store/store.js";
import type { CommonOptions } from "../commands.js";
import { forgetGone, images, openModel, recordIndexedRoots, reportFailure, requireStore, say, storeLocation, warn } from "../commands.js";
import { plural } from "../output.js";
import { progress } from "../progress.js";
import type { Progress } from "../progress.js";
import { WORKER_EXIT_HELP } from "../exit.js";
import { dbRetryOption, int, seconds, withCommonOptions } from "../options.js";
import type { SetStatus } from "../options.js";

export interface QueueCommandOptions {
  /** Images per queued batch. */
  jobSize?: number;
  retries?: number;
  lease?: number;
  wait?: boolean;
  /** --db-retry: seconds the database may be away while the command follows the queue. */
  dbRetry?: number;
}

/** The store and its URL, refused unless it is PostgreSQL: the queue lives in that database. */
export async function queueStore(opts: CommonOptions, what: string): Promise<{ store: PostgresStore; url: string }> {
  // Refused before anything is opened: opening an SQLite path would create the file.
  const location = storeLocation(opts);
  if (location !== undefined && !isPostgresUrl(location)) {
    throw new ClipOodError("USAGE", `${what} needs a PostgreSQL store, and ${path.resolve(location)} is an SQLite file`, {
      hint: "pass --store postgres://user:password@host/db (or set CLIP_OOD_STORE) on every machine",
    });
  }
  const store = await requireStore(opts);
  // requireStore opens a postgres:// location as a PostgresStore (and refuses --no-store).
  return { store: store as PostgresStore, url: location! };
}

/** Files whose current content the store already has for this model: nothing to queue for them. */
async function alreadyStored(store: EmbeddingStore, key: string, file: string): Promise<boolean> {
  const s = await stat(file).catch(() => undefined);
  if (!s?.isFile()) return false;
  const hash = await store.lookupPath(file, s.size, s.mtimeMs);
  return hash !== undefined && (await store.getEmbedding(hash, key)) !== undefined;
}

/** How long a wait with nothing taken from the queue goes before the command says that no worker seems to run. */
export const WORKERLESS_NOTE_SECONDS = 30;

/**
 * Tells a wait on the queue from one where no worker runs: stalled once, when no batch has been
 * active and no file finished for `afterMs` since the first look. Says it once: a worker may be starting
 * (loading a model takes a while), so the wait goes on.
 */
export class IdleWatch {
  private since: number | undefined;
  private done = -1;
  private said = false;

  constructor(private readonly afterMs: number) {}

  stalled(p: Pick<QueueProgress, "states" | "filesDone">, now: number): boolean {
    if ((p.states["active"] ?? 0) > 0 || p.filesDone !== this.done) {
      this.done = p.filesDone;
      this.since = now;
      return false;
    }
    this.since ??= now;
    if (this.said || now - this.since < this.afterMs) return false;
    this.said = true;
    return true;
  }
}

export interface QueuedRun {
  queued: number;
  jobs: number;
  alreadyStored: number;
  /** With `wait`: the images no worker could embed. */
  failures: FailedInput[];
}

/**
 * Enqueues the files whose current content the store lacks for the model and, with `opts.wait`,
 * follows the workers until every batch is done (one progress bar over all of them).
 */
export async function queueMissing(store: PostgresStore, url: string, model: ClipModel, files: readonly string[], opts: QueueCommandOptions, bars: Progress): Promise<QueuedRun> {
  const key = await storeModelKey(model);
  const known = await Promise.all(files.map((f) => alreadyStored(store, key, f)));
  const todo = files.filter((_, i) => !known[i]);
  const queue = await EmbedQueue.open(url, { supervise: false, modelKey: key });
  try {
    const settings = { retries: opts.retries ?? QUEUE_DEFAULTS.retries, leaseSeconds: opts.lease ?? QUEUE_DEFAULTS.leaseSeconds };
    const ids = await queue.enqueue(todo, { modelKey: key, model: model.id }, opts.jobSize ?? 64, settings);
    const run: QueuedRun = { queued: todo.length, jobs: ids.length, alreadyStored: files.length - todo.length, failures: [] };
    if (!opts.wait) return run;
    const retry = { limitSeconds: dbRetrySeconds(opts.dbRetry), log: (line: string) => warn(line, bars) };
    const idle = new IdleWatch(WORKERLESS_NOTE_SECONDS * 1000);
    for (;;) {
      const p = await withDbRetry(() => queue.progress(ids), { ...retry, what: "following the workers" });
      bars.count("embedding on the workers", p.filesDone, p.files);
      if (p.filesDone >= p.files) break;
      if (idle.stalled(p, Date.now())) {
        warn(
          `no worker has embedded anything from the queue in ${WORKERLESS_NOTE_SECONDS} s (${plural(p.files - p.filesDone, "image")} waiting); still waiting. Is a worker running? Start one on any machine: clip-ood worker --store ${store.location} --model ${model.id} (Ctrl-C stops waiting; the batches stay queued)`,
          bars,
        );
      }
      await sleep(500);
    }
    bars.stop();
    const mine = new Set(ids);
    run.failures = (await withDbRetry(() => queue.failures(), { ...retry, what: "reading the failures" })).filter((f) => mine.has(f.job));
    return run;
  } finally {
    await queue.close();
  }
}

export async function runQueuedIndex(inputs: string[], opts: CommonOptions & QueueCommandOptions & { json?: boolean }): Promise<number> {
  const { files, failed: skipped } = await images(inputs, opts);
  const { store, url } = await queueStore(opts, "index --queue");
  const bars = progress(!opts.quiet);
  const model = await openModel(opts, bars).catch(async (e: unknown) => {
    await store.close();
    throw e;
  });
  try {
    const gone = await forgetGone(store, inputs, files);
    await recordIndexedRoots(store, model, inputs, files);
    const run = await queueMissing(store, url, model, files, opts, bars);
    for (const f of run.failures) reportFailure(f.input, f.reason, bars);
    const failed = skipped + run.failures.length;
    const summary: Record<string, unknown> = { files: files.length, queued: run.queued, jobs: run.jobs, alreadyStored: run.alreadyStored, failed, forgotten: gone.length, store: store.location };
    if (opts.wait) summary["embedded"] = run.queued - run.failures.length;
    if (opts.json) process.stdout.write(JSON.stringify(summary) + "\n");
    else if (opts.wait) say(opts, `indexed ${plural(files.length, "file")} into ${store.location} through the queue: ${run.queued - run.failures.length} embedded by the workers, ${run.alreadyStored} already stored, ${failed} failed`);
    else say(opts, `queued ${run.queued} of ${plural(files.length, "file")} in ${plural(run.jobs, "batch", "batches")} on ${store.location} (${run.alreadyStored} already stored); start \`clip-ood worker\` on the machines that embed them`);
    return failed > 0 ? 1 : 0;
  } finally {
    await store.close();
    await model.close();
  }
}

export interface WorkerCommandOptions extends CommonOptions {
  once?: boolean;
  poll: number;
  checkEvery: number;
  dbRetry?: number;
  healthPort?: number;
  healthHost: string;
  json?: boolean;
}

/** `clip-ood worker`: embeds queued batches until SIGTERM/SIGINT (or, with --once, an empty queue). */
export async function runWorkerCommand(opts: WorkerCommandOptions): Promise<number> {
  const { store, url } = await queueStore(opts, "worker");
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stop.signal.aborted) process.stderr.write(`worker: ${signal}: finishing the batch in hand, taking no more\n`);
    stop.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  let queue: EmbedQueue | undefined;
  let model;
  let health: HealthServer | undefined;
  try {
    model = await openModel(opts, progress(!opts.quiet));
    const modelKey = await storeModelKey(model);
    queue = await EmbedQueue.open(url, { supervise: true, checkSeconds: opts.checkEvery, modelKey });
    const state = newWorkerState();
    if (opts.healthPort !== undefined) {
      // Loaded only when asked for: prom-client would slow every other command's start.
      const { startWorkerHealth } = await import("../../server/worker-health.js");
      health = await startWorkerHealth(state, { host: opts.healthHost, port: opts.healthPort });
      // Even with --quiet: with --health-port 0 this line is the only way to learn the port.
      process.stderr.write(`worker: health on ${health.url}/healthz, metrics on ${health.url}/metrics\n`);
    }
    say(opts, `worker: taking batches from ${store.location} with ${model.id}`);
    const totals = await runWorker(model, store, queue, {
      state,
      modelKey,
      signal: stop.signal,
      once: opts.once ?? false,
      pollMs: opts.poll * 1000,
      dbRetrySeconds: dbRetrySeconds(opts.dbRetry),
      log: (line) => process.stderr.write(`worker: ${line}\n`),
      onBatch: (r) => {
        if (opts.json) process.stdout.write(JSON.stringify(r) + "\n");
        else if (!opts.quiet) {
          process.stderr.write(`worker: batch ${r.job}: ${r.outcome}, ${plural(r.files, "file")} (${r.embedded} embedded, ${r.alreadyStored} already stored, ${r.failed} failed) in ${r.ms} ms${r.reason ? `: ${r.reason}` : ""}\n`);
        }
      },
    });
    say(opts, `worker: stopped after ${plural(totals.batches, "batch", "batches")}: ${totals.embedded} embedded, ${totals.alreadyStored} already stored, ${totals.failed} failed`);
    return 0;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    await health?.close();
    await queue?.close();
    await store.close();
    await model?.close();
  }
}

type QueueAction = "status" | "failed" | "retry" | "clear";

/** `clip-ood queue status|failed|retry|clear`. */
export async function runQueueCommand(action: QueueAction, opts: CommonOptions & { json?: boolean }): Promise<number> {
  const { store, url } = await queueStore(opts, `queue ${action}`);
  let queue: EmbedQueue | undefined;
  try {
    queue = await EmbedQueue.open(url, { supervise: false });
    const q = queue;
    if (action === "status") {
      process.stdout.write(JSON.stringify(await q.progress(), null, 2) + "\n");
    } else if (action === "failed") {
      for (const f of await q.failures()) {
        process.stdout.write(opts.json ? JSON.stringify(f) + "\n" : `${f.input}\t${f.kind}\t${f.reason}\n`);
      }
    } else if (action === "retry") {
      const r = await store.transaction((db) => q.retryFailures(db));
      const files = r.images + r.batchFiles;
      if (opts.json) process.stdout.write(JSON.stringify({ requeued: files, jobs: r.jobs.length, images: r.images, batches: r.batches, batchFiles: r.batchFiles }) + "\n");
      else {
        process.stdout.write(`queued ${files} files again in ${r.jobs.length} batches (${r.images} images no worker could read, ${r.batchFiles} files of ${r.batches} failed batches) on ${store.location}\n`);
        if (files > 0) say(opts, "`clip-ood worker` processes with the same --model and --dtype take them; `clip-ood queue failed` lists what fails again");
      }
    } else {
      const r = await store.transaction((db) => q.clearFailures(db));
      if (opts.json) process.stdout.write(JSON.stringify(r) + "\n");
      else process.stdout.write(`forgot ${r.images + r.batchFiles} failed files (${r.images} images no worker could read, ${r.batchFiles} files of ${r.batches} failed batches) on ${store.location}; nothing was queued\n`);
    }
    return 0;
  } finally {
    await queue?.close();
    await store.close();
  }
}

export function addWorkerCommand(program: Command, setStatus: SetStatus): void {
  // A worker takes no inputs and prints no table: the options about folders, text and output formats would mean nothing.
  withCommonOptions(program.command("worker"), ["--ext", "--no-text-cache", "--no-store", "--logit-scale", "--logit-bias"])
    .description("Embed batches from the PostgreSQL store's job queue (filled by `index --queue`) until stopped.")
    .option("--json", "one JSON line per batch on stdout, instead of a line on stderr")
    .option("--once", "exit once no batch is waiting or held by any worker")
    .option("--poll <seconds>", "how often an idle worker looks for new batches (fractions allowed)", seconds("--poll"), 1)
    .option("--check-every <seconds>", "how often this worker hands expired leases (batches of vanished workers) back to the queue", int("--check-every"), 30)
    .addOption(dbRetryOption())
    .option("--health-port <port>", "serve GET /healthz (200 while the loop runs and the database answers, else 503 with the reason) and Prometheus GET /metrics on this port; 0: any free port (printed on stderr)", int("--health-port", 0))
    .option("--health-host <host>", "address for --health-port (0.0.0.0 for a scraper on another machine)", "127.0.0.1")
    .addHelpText("after", `
Each batch's embeddings are written and its job completed in one transaction: a worker killed at any
moment leaves nothing half-written, and its batch is taken again when its lease (index --lease) runs
out. Images that cannot be read are recorded once with the batch (\`clip-ood queue failed\`), not
retried. SIGTERM or SIGINT: the batch in hand is finished, then the worker exits. Start workers with
the same --model and --dtype as the index command; a worker with another model refuses the batch.
One line per batch on stderr (--json: on stdout).

A database that goes away once the worker runs (a restart, a failover) is waited for: each step is
retried with backoff (0.25 s doubling to 5 s), one line on stderr per retry, for up to --db-retry
seconds; the batch in hand is committed once the database is back. --health-port's /healthz answers
503 meanwhile. At start the database must answer.

Examples:
  CLIP_OOD_STORE=postgres://clip@db/clip clip-ood worker
  clip-ood worker --store postgres://clip@db/clip --dtype q8 --once
  clip-ood worker --health-port 9464 --db-retry 300
${WORKER_EXIT_HELP}`)
    .action(async (opts: WorkerCommandOptions) => {
      setStatus(await runWorkerCommand(opts));
    });
}

export function addQueueCommand(program: Command, setStatus: SetStatus): void {
  const queueCmd = program.command("queue").description("Look at the PostgreSQL store's embedding queue (--store postgres://…, or $CLIP_OOD_STORE).");
  for (const [action, text] of [
    ["status", "print the number of batches and files by state as JSON"],
    ["failed", "list the images no worker could embed, and the files of batches that failed on every attempt (input, kind, reason)"],
    ["retry", "queue every failure `queue failed` lists again (each on its own model's queue) and take it off the list"],
    ["clear", "forget every failure `queue failed` lists, without queuing anything"],
  ] as const) {
    queueCmd
      .command(action)
      .description(text)
      .option("--store <url>", "the PostgreSQL store (default $CLIP_OOD_STORE)")
      .option("--json", action === "failed" ? "JSON Lines on stdout" : "one JSON object on stdout")
      .action(async (opts: CommonOptions & { json?: boolean }) => {
        setStatus(await runQueueCommand(action, opts));
      });
  }
  queueCmd.addHelpText(
    "after",
    `
Failures stay listed (for a week, while pg-boss keeps finished jobs) until \`queue retry\` or \`queue clear\`.
retry queues the files again in one transaction with forgetting them: fix what failed first (a
missing mount, an unreadable file), then retry, and start workers if none runs. Both print what they
did (--json: {"requeued", "jobs", "images", "batches", "batchFiles"} and {"images", "batches", "batchFiles"}).

Examples:
  clip-ood queue failed --json | jq -r .input
  clip-ood queue retry
  clip-ood queue clear --json`,
  );
}
