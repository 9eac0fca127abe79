/**
 * A queue worker: takes batches of image paths from the embedding queue, embeds what the store does not
 * have, and writes the rows and completes the job in one transaction (see ./embed-queue.ts).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ClipModel } from "../clip.js";
import { messageOf } from "../errors.js";
import { embedBatch } from "../store/cached.js";
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
  while (!o.signal.aborted) {
    const job = await queue.take();
    if (!job) {
      // --once waits for batches other workers hold too: one whose worker died comes back when its lease runs out.
      if (o.once && (await queue.pending()) === 0) break;
      await sleep(o.pollMs ?? 1000, undefined, { signal: o.signal }).catch(() => {});
      continue;
    }
    const started = Date.now();
    const report = (r: Omit<BatchReport, "job" | "files" | "ms">) => o.onBatch?.({ job: job.id, files: job.data.files.length, ms: Date.now() - started, ...r });
    if (job.data.modelKey !== key) {
      // Queues are per model key, so only a damaged or hand-made job gets here; it must not be stored under the wrong key.
      const reason = `this worker's model (${model.id}, key ${key}) is not the one the batch was queued for (${job.data.model}, key ${job.data.modelKey}); start workers with the same --model and --dtype as \`index --queue\``;
      await queue.fail(job, reason);
      report({ embedded: 0, alreadyStored: 0, failed: 0, outcome: "failed", reason });
      continue;
    }
    try {
      const batch = await embedBatch(model, store, key, job.data.files);
      const failed = batch.results.filter((r) => !r.embedding).map((r) => ({ input: r.input, reason: r.error?.message ?? "cannot be embedded" }));
      const committed = await store.putBatchWith(batch.fresh, batch.known, (db) => queue.complete(job, { stored: batch.fresh.length + batch.known.length, failed }, db));
      const counts = { embedded: batch.fresh.length, alreadyStored: batch.known.length, failed: failed.length };
      if (committed) {
        totals.batches++;
        totals.embedded += counts.embedded;
        totals.alreadyStored += counts.alreadyStored;
        totals.failed += counts.failed;
      }
      report({ ...counts, outcome: committed ? "completed" : "lost" });
    } catch (e) {
      // The batch goes back to the queue (or to the failed list after its retries).
      const reason = messageOf(e);
      await queue.fail(job, reason).catch(() => {});
      report({ embedded: 0, alreadyStored: 0, failed: 0, outcome: "failed", reason });
    }
  }
  return totals;
}
