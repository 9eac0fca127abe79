/**
 * The embedding job queue on the store's PostgreSQL database (pg-boss 10, schema `clip_ood_queue`):
 * `index --queue` enqueues batches of image paths, `worker` processes take them.
 *
 * Guarantees, and what gives them:
 * - A job's results and its completion are one transaction (pg-boss's `complete` runs on the worker's
 *   transaction client), so a worker killed mid-batch writes nothing and the job is taken again once
 *   its lease (pg-boss's expiry) runs out; a stale worker whose job was taken over cannot complete it a
 *   second time (the completion touches no row, and its transaction is rolled back).
 * - Jobs that fail (the worker throws) are retried `retries` times, then stay `failed`; images that
 *   cannot be read do not fail their batch: they are listed in the completed job's output, once.
 */
import { createHash, randomUUID } from "node:crypto";
import path from "node:path";
import type PgBoss from "pg-boss";
import { ClipOodError, messageOf } from "../errors.js";
import { isTransientDbError } from "../store/db-retry.js";
import { redactUrl } from "../store/postgres-store.js";
import type { Queryable } from "../store/postgres-store.js";

/** Every model key has its own queue, so that a worker only ever takes batches for the model it runs. */
export const EMBED_QUEUE_PREFIX = "clip_ood_embed_";
const SCHEMA = "clip_ood_queue";

export function embedQueueName(modelKey: string): string {
  return EMBED_QUEUE_PREFIX + createHash("sha256").update(modelKey).digest("hex").slice(0, 24);
}

export interface QueueSettings {
  /** Attempts after the first for a batch whose worker failed or vanished. */
  retries: number;
  /** Seconds a worker holds a batch before it is given to another (the lease). */
  leaseSeconds: number;
}

export const QUEUE_DEFAULTS: QueueSettings = { retries: 2, leaseSeconds: 600 };

export interface EmbedJobData {
  files: string[];
  /** The store key of the model the enqueuing command used; a worker with another refuses the batch. */
  modelKey: string;
  model: string;
}

export interface EmbedJob {
  id: string;
  data: EmbedJobData;
}

/** What a completed job records: images that could not be embedded, with the reason. */
export interface EmbedJobOutput {
  stored: number;
  failed: { input: string; reason: string }[];
}

export interface QueueProgress {
  jobs: number;
  /** Jobs by pg-boss state: created, retry, active, completed, failed, cancelled. */
  states: Record<string, number>;
  files: number;
  /** Files in jobs that are completed or failed for good. */
  filesDone: number;
}

export interface FailedInput {
  input: string;
  reason: string;
  job: string;
  /** "image": the file could not be embedded; "batch": its whole batch failed on every attempt. */
  kind: "image" | "batch";
}

/** What `queue retry` and `queue clear` acted on. */
export interface FailureCounts {
  /** Images no worker could read, from completed batches. */
  images: number;
  /** Batches that failed on every attempt, and their files. */
  batches: number;
  batchFiles: number;
}

interface FailedJobRow {
  id: string;
  name: string;
  state: "completed" | "failed";
  data: EmbedJobData;
  output: Partial<EmbedJobOutput> | null;
  retry_limit: number;
  expire: number;
}

export class EmbedQueue {
  private constructor(
    private readonly boss: PgBoss,
    private readonly location: string,
    /** The queue of one model key; undefined for a process that only looks at all of them. */
    private readonly name: string | undefined,
  ) {}

  /**
   * Connects and creates the schema and queue where missing. `supervise` makes this process one of those
   * that hand expired leases back (workers do; `index --queue` does not need to), every `checkSeconds`.
   */
  static async open(url: string, opts: { supervise: boolean; checkSeconds?: number; modelKey?: string }): Promise<EmbedQueue> {
    const name = opts.modelKey === undefined ? undefined : embedQueueName(opts.modelKey);
    const location = redactUrl(url);
    // Loaded here rather than with the module: the CLI imports this module for every command.
    const { default: PgBoss } = await import("pg-boss");
    const boss = new PgBoss({
      connectionString: url,
      schema: SCHEMA,
      max: 2,
      schedule: false,
      supervise: opts.supervise,
      ...(opts.checkSeconds === undefined ? {} : { maintenanceIntervalSeconds: opts.checkSeconds }),
    });
    // pg-boss reports background failures (a lost connection) as events; they must not crash the process.
    boss.on("error", () => {});
    try {
      await boss.start();
      if (name !== undefined && !(await boss.getQueue(name))) {
        // Machines starting together may both create it: the loser finds the winner's queue. Two creates
        // can also deadlock, and the victim may look before the winner has committed: so look again, a
        // few times, before giving up.
        for (let attempt = 1; ; attempt++) {
          try {
            await boss.createQueue(name, { name, policy: "standard" });
            break;
          } catch (e) {
            if (await boss.getQueue(name)) break;
            if (attempt >= 5) throw e;
            await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
          }
        }
      }
    } catch (e) {
      await boss.stop({ graceful: false, wait: true }).catch(() => {});
      throw new ClipOodError("INPUT", `cannot open the job queue on ${location}: ${messageOf(e)}`, {
        hint: "the queue lives in the store's PostgreSQL database: check that it runs and the URL is right",
        cause: e,
      });
    }
    return new EmbedQueue(boss, location, name);
  }

  /**
   * Enqueues `files` in batches of `batchSize`; returns the job ids. Paths are made absolute here: a
   * worker runs in another directory, often on another machine, and opens exactly what the job says.
   */
  async enqueue(files: readonly string[], job: Omit<EmbedJobData, "files">, batchSize: number, settings: QueueSettings): Promise<string[]> {
    const name = this.own();
    const absolute = files.map((f) => path.resolve(f));
    const jobs: PgBoss.JobInsert<EmbedJobData>[] = [];
    for (let i = 0; i < absolute.length; i += batchSize) {
      jobs.push({
        id: randomUUID(),
        name,
        data: { ...job, files: absolute.slice(i, i + batchSize) },
        retryLimit: settings.retries,
        expireInSeconds: settings.leaseSeconds,
      });
    }
    for (let i = 0; i < jobs.length; i += 500) await this.boss.insert(jobs.slice(i, i + 500));
    return jobs.map((j) => j.id!);
  }

  /** The next batch, leased to this worker until it completes or fails it, or the lease runs out. */
  async take(): Promise<EmbedJob | undefined> {
    // pg-boss's fetch answers "nothing to do" when its query fails, so a database that went away would
    // look like an empty queue: such a failure is caught on its way through and thrown here instead.
    let failure: unknown;
    const db: PgBoss.Db = {
      executeSql: (text, values) =>
        this.boss
          .getDb()
          .executeSql(text, values)
          .catch((e: unknown) => {
            failure = e;
            throw e;
          }),
    };
    const [job] = await this.boss.fetch<EmbedJobData>(this.own(), { batchSize: 1, db });
    if (isTransientDbError(failure)) throw this.unreadable(failure);
    return job ? { id: job.id, data: job.data } : undefined;
  }

  /**
   * Completes the job on the caller's transaction; false when this worker no longer holds it (its
   * lease ran out and another took it), and then the caller must roll back.
   */
  async complete(job: EmbedJob, output: EmbedJobOutput, db: Queryable): Promise<boolean> {
    const executor: PgBoss.Db = { executeSql: (text, values) => db.query(text, values) };
    // pg-boss 10 types complete() as void; it resolves to the counts of the UPDATE it ran.
    const r = (await this.boss.complete(this.own(), job.id, output as unknown as object, { db: executor })) as unknown as { affected?: number };
    return r.affected === 1;
  }

  async fail(job: EmbedJob, reason: string): Promise<void> {
    await this.boss.fail(this.own(), job.id, { reason });
  }

  /** Progress of the given jobs (or of every embedding job of every model), archived ones included. */
  async progress(ids?: readonly string[]): Promise<QueueProgress> {
    const filter = ids ? "AND id = ANY($2::uuid[])" : "";
    const sql = `SELECT state::text AS state, count(*)::int AS jobs, coalesce(sum(jsonb_array_length(data->'files')), 0)::int AS files
      FROM (SELECT state, data FROM ${SCHEMA}.job WHERE starts_with(name, $1) ${filter}
            UNION ALL SELECT state, data FROM ${SCHEMA}.archive WHERE starts_with(name, $1) ${filter}) j GROUP BY state`;
    const rows = await this.rows<{ state: string; jobs: number; files: number }>(sql, ids ? [EMBED_QUEUE_PREFIX, ids] : [EMBED_QUEUE_PREFIX]);
    const states: Record<string, number> = {};
    let jobs = 0;
    let files = 0;
    let filesDone = 0;
    for (const r of rows) {
      states[r.state] = r.jobs;
      jobs += r.jobs;
      files += r.files;
      if (r.state === "completed" || r.state === "failed" || r.state === "cancelled") filesDone += r.files;
    }
    return { jobs, states, files, filesDone };
  }

  /** This model's batches waiting, waiting for a retry, or held by a worker. */
  async pending(): Promise<number> {
    const rows = await this.rows<{ n: number }>(`SELECT count(*)::int AS n FROM ${SCHEMA}.job WHERE name = $1 AND state < 'completed'`, [this.own()]);
    return rows[0]?.n ?? 0;
  }

  /** The dead-letter listing: images no worker could embed, and the files of batches that failed for good. */
  async failures(): Promise<FailedInput[]> {
    const from = (table: string) => `SELECT id::text AS id, state::text AS state, data, output FROM ${SCHEMA}.${table} WHERE starts_with(name, $1) AND state IN ('completed', 'failed')`;
    const rows = await this.rows<{ id: string; state: string; data: EmbedJobData; output: unknown }>(`${from("job")} UNION ALL ${from("archive")}`, [EMBED_QUEUE_PREFIX]);
    const out: FailedInput[] = [];
    for (const r of rows) {
      if (r.state === "completed") {
        for (const f of (r.output as Partial<EmbedJobOutput> | null)?.failed ?? []) out.push({ input: f.input, reason: f.reason, job: r.id, kind: "image" });
      } else {
        // Our own fail() records { reason }; pg-boss's shutdowns record { message }, and its lease
        // timeouts { value: { message } }.
        const output = r.output as { reason?: unknown; message?: unknown; value?: { message?: unknown } } | null;
        const reason = String(output?.reason ?? output?.message ?? output?.value?.message ?? "failed");
        for (const input of r.data.files) out.push({ input, reason, job: r.id, kind: "batch" });
      }
    }
    return out.sort((a, b) => (a.input < b.input ? -1 : a.input > b.input ? 1 : 0));
  }

  /**
   * Queues every failure `failures()` lists again, on the queue of the model key it was queued for (one
   * new batch per failed job, with that job's retries and lease), and forgets the old records, in one
   * transaction on `db`: a failure is either still listed or queued again, never both or neither.
   */
  async retryFailures(db: Queryable): Promise<FailureCounts & { jobs: string[] }> {
    const rows = await this.failedJobs(db);
    const jobs: PgBoss.JobInsert<EmbedJobData>[] = [];
    for (const r of rows) {
      const files = r.state === "failed" ? r.data.files : (r.output?.failed ?? []).map((f) => f.input);
      if (files.length === 0) continue;
      jobs.push({ id: randomUUID(), name: r.name, data: { ...r.data, files }, retryLimit: r.retry_limit, expireInSeconds: r.expire });
    }
    const executor: PgBoss.Db = { executeSql: (text, values) => db.query(text, values) };
    for (let i = 0; i < jobs.length; i += 500) await this.boss.insert(jobs.slice(i, i + 500), { db: executor });
    const counts = await this.forget(db, rows);
    return { ...counts, jobs: jobs.map((j) => j.id!) };
  }

  /** Forgets every failure `failures()` lists, queuing nothing: the images stay unembedded. */
  async clearFailures(db: Queryable): Promise<FailureCounts> {
    return this.forget(db, await this.failedJobs(db));
  }

  /**
   * Completed jobs keep their counts and lose their list of failed images; failed jobs are deleted,
   * so `queue status` no longer counts them either.
   */
  private async forget(db: Queryable, rows: readonly FailedJobRow[]): Promise<FailureCounts> {
    const completed = rows.filter((r) => r.state === "completed").map((r) => r.id);
    const failed = rows.filter((r) => r.state === "failed").map((r) => r.id);
    for (const table of ["job", "archive"]) {
      await db.query(`UPDATE ${SCHEMA}.${table} SET output = output - 'failed' WHERE starts_with(name, $1) AND id = ANY($2::uuid[])`, [EMBED_QUEUE_PREFIX, completed]);
      await db.query(`DELETE FROM ${SCHEMA}.${table} WHERE starts_with(name, $1) AND id = ANY($2::uuid[]) AND state = 'failed'`, [EMBED_QUEUE_PREFIX, failed]);
    }
    return {
      images: rows.reduce((n, r) => n + (r.state === "completed" ? (r.output?.failed?.length ?? 0) : 0), 0),
      batchFiles: rows.reduce((n, r) => n + (r.state === "failed" ? r.data.files.length : 0), 0),
      batches: failed.length,
    };
  }

  /** The jobs behind `failures()`, locked until the caller's transaction ends. */
  private async failedJobs(db: Queryable): Promise<FailedJobRow[]> {
    const out: FailedJobRow[] = [];
    try {
      for (const table of ["job", "archive"]) {
        const r = await db.query(
          `SELECT id::text AS id, name, state::text AS state, data, output, retry_limit, extract(epoch FROM expire_in)::int AS expire FROM ${SCHEMA}.${table}
           WHERE starts_with(name, $1) AND (state = 'failed' OR (state = 'completed' AND jsonb_array_length(coalesce(output->'failed', '[]'::jsonb)) > 0)) FOR UPDATE`,
          [EMBED_QUEUE_PREFIX],
        );
        out.push(...(r.rows as FailedJobRow[]));
      }
    } catch (e) {
      throw this.unreadable(e);
    }
    return out;
  }

  /** Stops pg-boss; jobs this process fetched and did not finish go back when their lease runs out. */
  async close(): Promise<void> {
    await this.boss.stop({ graceful: false, wait: true, close: true });
  }

  private own(): string {
    if (this.name === undefined) throw new Error("this queue handle was opened without a model key");
    return this.name;
  }

  private async rows<R>(sql: string, values: unknown[]): Promise<R[]> {
    try {
      const r = await this.boss.getDb().executeSql(sql, values);
      return r.rows as R[];
    } catch (e) {
      throw this.unreadable(e);
    }
  }

  private unreadable(e: unknown): unknown {
    if (e instanceof ClipOodError) return e;
    return new ClipOodError("INPUT", `${this.location}: cannot read the job queue (${messageOf(e)})`, { hint: "check that the database runs", cause: e });
  }
}
