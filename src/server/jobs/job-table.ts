/**
 * Eval and discovery jobs as rows of `clip_ood.eval_jobs` (named before there were discovery jobs) in
 * the store's database, so that every `serve` process on it answers for every job: the process running a job writes its state (and, once done, its HTML report);
 * the others read it. A job runs only on the process that received it.
 *
 * Each row names its owner (the process running it) and the owner's last heartbeat, refreshed while
 * the job is queued or running. A reader that finds an unfinished job whose heartbeat is older than
 * `staleAfterMs` marks it failed: its process stopped (killed, crashed, its machine gone), and nothing
 * else would ever finish it. The job is not run again elsewhere: its sets are paths inside the data roots
 * of the process that received it and its detectors may be that process's `--detector` files, which
 * another server may not have; the error asks the client to submit it again. Times are the database's
 * clock, so machines whose clocks disagree still agree on staleness, and no job is taken for dead
 * within the bound after the database itself started (its owners could not beat while it was down).
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { PostgresDatabase } from "../../store/postgres-store.js";
import type { JobView } from "./jobs.js";

export interface JobTable {
  /** Records a new job, owned by this process; the job's id is its key. */
  insert(job: JobView): Promise<void>;
  /**
   * Records the job's newest state, with its report once there is one. False when the job is no longer
   * this process's to write: another server marked it failed, its heartbeats having stopped.
   */
  update(job: JobView, report?: string): Promise<boolean>;
  /** Refreshes the heartbeat of every unfinished job this process owns. */
  heartbeat(): Promise<void>;
  get(id: string): Promise<JobView | undefined>;
  /** The job's report, undefined while it has none; the job itself undefined when there is no such job. */
  report(id: string): Promise<{ job: JobView; html: string | undefined } | undefined>;
}

export interface JobTableOptions {
  /** Finished jobs kept in the table, newest first; older finished ones (and their reports) are deleted as new jobs arrive. */
  keep: number;
  /** How old an unfinished job's heartbeat may be before its owner is taken for gone (default 30 s). */
  staleAfterMs?: number;
}

/** How often a serve process refreshes its jobs' heartbeats, and after how long readers give up on them. */
export const JOB_HEARTBEAT_MS = 5_000;
export const JOB_STALE_AFTER_MS = 30_000;

/** This process, as a job's owner: unique across machines, processes and restarts with a reused pid. */
export function processOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
}

type Row = { view: JobView; report: string | null; owner: string | null; heartbeat_at: Date | null; stale: boolean };

const UNFINISHED = "('queued', 'running')";

export class PostgresJobTable implements JobTable {
  private readonly keep: number;
  private readonly staleAfterMs: number;

  constructor(
    private readonly db: PostgresDatabase,
    private readonly owner: string,
    o: JobTableOptions,
  ) {
    this.keep = o.keep;
    this.staleAfterMs = o.staleAfterMs ?? JOB_STALE_AFTER_MS;
  }

  async insert(job: JobView): Promise<void> {
    await this.db.transaction(async (c) => {
      await c.query("INSERT INTO clip_ood.eval_jobs (id, status, view, owner, heartbeat_at) VALUES ($1, $2, $3, $4, now())", [job.job, job.status, JSON.stringify(job), this.owner]);
      await c.query(
        `DELETE FROM clip_ood.eval_jobs WHERE status IN ('done', 'failed') AND id NOT IN (
           SELECT id FROM clip_ood.eval_jobs WHERE status IN ('done', 'failed') ORDER BY created_at DESC LIMIT $1)`,
        [this.keep],
      );
    });
  }

  async update(job: JobView, report?: string): Promise<boolean> {
    const r = await this.db.query(
      `UPDATE clip_ood.eval_jobs SET status = $2, view = $3, report = coalesce($4, report), updated_at = now(), heartbeat_at = now()
       WHERE id = $1 AND owner = $5 AND status IN ${UNFINISHED}`,
      [job.job, job.status, JSON.stringify(job), report ?? null, this.owner],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async heartbeat(): Promise<void> {
    await this.db.query(`UPDATE clip_ood.eval_jobs SET heartbeat_at = now() WHERE owner = $1 AND status IN ${UNFINISHED}`, [this.owner]);
  }

  async get(id: string): Promise<JobView | undefined> {
    return (await this.read(id))?.view;
  }

  async report(id: string): Promise<{ job: JobView; html: string | undefined } | undefined> {
    const row = await this.read(id);
    return row && { job: row.view, html: row.report ?? undefined };
  }

  /** The job's row, an unfinished one whose owner has gone quiet marked failed first. */
  private async read(id: string): Promise<Row | undefined> {
    // A database restarted within the bound has not given owners the time to beat again since.
    const bound = "now() - make_interval(secs => $2::double precision / 1000)";
    const stale = `status IN ${UNFINISHED} AND heartbeat_at < ${bound} AND pg_postmaster_start_time() < ${bound}`;
    const select = `SELECT view, report, owner, heartbeat_at, ${stale} AS stale FROM clip_ood.eval_jobs WHERE id = $1`;
    const row = (await this.db.query<Row>(select, [id, this.staleAfterMs])).rows[0];
    if (!row?.stale) return row;
    const failed: JobView = { ...row.view, status: "failed", error: ownerGone(row.view, row.owner, row.heartbeat_at) };
    // Staleness is checked again in the write: an owner that wrote meanwhile keeps its job.
    await this.db.query(`UPDATE clip_ood.eval_jobs SET status = 'failed', view = $3, updated_at = now() WHERE id = $1 AND ${stale}`, [id, this.staleAfterMs, JSON.stringify(failed)]);
    return (await this.db.query<Row>(select, [id, this.staleAfterMs])).rows[0];
  }
}

function ownerGone(job: JobView, owner: string | null, heartbeat: Date | null): NonNullable<JobView["error"]> {
  return {
    code: "INTERRUPTED",
    message: `the serve process running this job stopped (owner ${owner ?? "unknown"}, last heartbeat ${heartbeat?.toISOString() ?? "never"})`,
    hint: `submit the job again (POST ${job.kind === "discover" ? "/v1/discover" : "/v1/eval"}); it runs on the server that receives it`,
  };
}
