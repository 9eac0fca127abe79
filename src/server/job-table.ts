/**
 * Eval jobs as rows of `clip_ood.eval_jobs` in the store's database, so that every `serve` process on it
 * answers for every job: the process running a job writes its state (and, once done, its HTML report);
 * the others read it. A job runs only on the process that received it.
 */
import type { PostgresDatabase } from "../store/postgres-store.js";
import type { JobView } from "./jobs.js";

export interface JobTable {
  /** Records a new job; the job's id is its key. */
  insert(job: JobView): Promise<void>;
  /** Records the job's newest state, with its report once there is one. */
  update(job: JobView, report?: string): Promise<void>;
  get(id: string): Promise<JobView | undefined>;
  /** The job's report, undefined while it has none; the job itself undefined when there is no such job. */
  report(id: string): Promise<{ job: JobView; html: string | undefined } | undefined>;
}

export class PostgresJobTable implements JobTable {
  /**
   * `keep`: finished jobs kept in the table, newest first; older finished ones (and their reports) are
   * deleted as new jobs arrive.
   */
  constructor(
    private readonly db: PostgresDatabase,
    private readonly keep: number,
  ) {}

  async insert(job: JobView): Promise<void> {
    await this.db.transaction(async (c) => {
      await c.query("INSERT INTO clip_ood.eval_jobs (id, status, view) VALUES ($1, $2, $3)", [job.job, job.status, JSON.stringify(job)]);
      await c.query(
        `DELETE FROM clip_ood.eval_jobs WHERE status IN ('done', 'failed') AND id NOT IN (
           SELECT id FROM clip_ood.eval_jobs WHERE status IN ('done', 'failed') ORDER BY created_at DESC LIMIT $1)`,
        [this.keep],
      );
    });
  }

  async update(job: JobView, report?: string): Promise<void> {
    await this.db.query("UPDATE clip_ood.eval_jobs SET status = $2, view = $3, report = coalesce($4, report), updated_at = now() WHERE id = $1", [
      job.job,
      job.status,
      JSON.stringify(job),
      report ?? null,
    ]);
  }

  async get(id: string): Promise<JobView | undefined> {
    return (await this.db.query<{ view: JobView }>("SELECT view FROM clip_ood.eval_jobs WHERE id = $1", [id])).rows[0]?.view;
  }

  async report(id: string): Promise<{ job: JobView; html: string | undefined } | undefined> {
    const row = (await this.db.query<{ view: JobView; report: string | null }>("SELECT view, report FROM clip_ood.eval_jobs WHERE id = $1", [id])).rows[0];
    return row && { job: row.view, html: row.report ?? undefined };
  }
}
