/**
 * A queue worker: takes batches of image paths from the embedding queue, embeds what the store does not
 * have, and writes the rows and completes the job in one transaction (see ./embed-queue.ts).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ClipModel } from "../clip.js";
import { messageOf } from "../errors.js";
import { embedBatch } from "../store/cached.js";
import { DEFAULT_DB_RETRY_SECONDS, isTransientDbError, withDbRetry } from "../store/db-retry.js";
import type { PostgresStore } from "../store/postgres-store.js";
import type { EmbedQueue } from "./embed-queue.js";

export interface BatchReport {
  job: string;
  files: number;
  embedded: number;
  alreadyStored: number;
  failed: number;
  /** "completed", "lost" (the lease ran out and another worker completed the batch) or "failed". */
  outcome: "completed" | "lost" | "failed";
  reason?: string;
  ms: number;
}

export interface WorkerOptions {
  /** The model's store key (`storeModelKey`), the one the queue was opened with. */
  modelKey: string;
  /** Stops taking batches once set; the batch in hand is finished first. */
  signal: AbortSignal;
  /** Exit once no batch is waiting or held by any worker, instead of waiting for more. */
  once?: boolean;
  /** Milliseconds between looks at an empty queue. */
  pollMs?: number;
  onBatch?: (report: BatchReport) => void;
  /** Seconds the database may be away before the worker gives up (each step is retried until then). */
  dbRetrySeconds?: number;
  /** One line per database retry (default: stderr). */
  log?: (line: string) => void;
  /** Kept up to date for health checks and metrics. */
  state?: WorkerState;
}

/** What a worker's /healthz and /metrics report. */
export interface WorkerState {
  /** False once the loop has ended (stopped, or failed). */
  running: boolean;
  batchesDone: number;
  batchesFailed: number;
  inFlight: number;
  /** Milliseconds since the epoch when the last batch ended, if one has. */
  lastBatchAt: number | undefined;
  dbRetries: number;
  /** Why the database is unreachable while the worker waits for it; undefined while it is reachable. */
  dbDown: string | undefined;
}

export function newWorkerState(): WorkerState {
  return { running: true, batchesDone: 0, batchesFailed: 0, inFlight: 0, lastBatchAt: undefined, dbRetries: 0, dbDown: undefined };
}

export interface WorkerTotals {
  batches: number;
  embedded: number;
  alreadyStored: number;
  failed: number;
}

export async function runWorker(model: ClipModel, store: PostgresStore, queue: EmbedQueue, o: WorkerOptions): Promise<WorkerTotals> {
  const key = o.modelKey;
  const totals: WorkerTotals = { batches: 0, embedded: 0, alreadyStored: 0, failed: 0 };
  const state = o.state ?? newWorkerState();
  // Every database step rides out a restart or failover; past the bound its error ends the worker.
  const retry = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    withDbRetry(fn, {
      what,
      limitSeconds: o.dbRetrySeconds ?? DEFAULT_DB_RETRY_SECONDS,
      signal: o.signal,
      ...(o.log ? { log: o.log } : {}),
      onState: (down) => {
        state.dbDown = down;
        if (down !== undefined) state.dbRetries++;
      },
    });
  try {
    while (!o.signal.aborted) {
      const job = await retry("taking a batch", () => queue.take());
      if (!job) {
        // --once waits for batches other workers hold too: one whose worker died comes back when its lease runs out.
        if (o.once && (await retry("looking for batches", () => queue.pending())) === 0) break;
        await sleep(o.pollMs ?? 1000, undefined, { signal: o.signal }).catch(() => {});
        continue;
      }
      const started = Date.now();
      state.inFlight++;
      const report = (r: Omit<BatchReport, "job" | "files" | "ms">) => {
        state.inFlight--;
        state.lastBatchAt = Date.now();
        if (r.outcome === "failed") state.batchesFailed++;
        else state.batchesDone++;
        o.onBatch?.({ job: job.id, files: job.data.files.length, ms: Date.now() - started, ...r });
      };
      if (job.data.modelKey !== key) {
        // Queues are per model key, so only a damaged or hand-made job gets here; it must not be stored under the wrong key.
        const reason = `this worker's model (${model.id}, key ${key}) is not the one the batch was queued for (${job.data.model}, key ${job.data.modelKey}); start workers with the same --model and --dtype as \`index --queue\``;
        await retry("failing a batch", () => queue.fail(job, reason));
        report({ embedded: 0, alreadyStored: 0, failed: 0, outcome: "failed", reason });
        continue;
      }
      try {
        const batch = await retry("reading the store", () => embedBatch(model, store, key, job.data.files));
        const failed = batch.results.filter((r) => !r.embedding).map((r) => ({ input: r.input, reason: r.error?.message ?? "cannot be embedded" }));
        // A commit cut off by the database going away is done again: if it had gone through, the job is
        // no longer this worker's, the completion touches no row and the retry rolls back ("lost").
        const committed = await retry("committing a batch", () =>
          store.putBatchWith(batch.fresh, batch.known, (db) => queue.complete(job, { stored: batch.fresh.length + batch.known.length, failed }, db)),
        );
        const counts = { embedded: batch.fresh.length, alreadyStored: batch.known.length, failed: failed.length };
        if (committed) {
          totals.batches++;
          totals.embedded += counts.embedded;
          totals.alreadyStored += counts.alreadyStored;
          totals.failed += counts.failed;
        }
        report({ ...counts, outcome: committed ? "completed" : "lost" });
      } catch (e) {
        // The database stayed away past the bound: nothing to record the failure in; the lease hands the batch back.
        if (isTransientDbError(e)) throw e;
        // The batch goes back to the queue (or to the failed list after its retries).
        const reason = messageOf(e);
        await queue.fail(job, reason).catch(() => {});
        report({ embedded: 0, alreadyStored: 0, failed: 0, outcome: "failed", reason });
      }
    }
    return totals;
  } finally {
    state.running = false;
  }
}
