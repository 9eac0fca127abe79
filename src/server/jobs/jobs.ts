/**
 * Evaluation and discovery run as asynchronous jobs: they take minutes, so a request starts one and
 * polls it. Jobs of both kinds run one after another (each already uses the whole inference pool) and
 * the finished ones are kept until `maxJobs` newer ones push them out.
 *
 * With a job table (a PostgreSQL store), each job's state and report are also written there as they
 * change, so that any `serve` process on that database answers for it; the job still runs here, and
 * while this process has unfinished jobs it refreshes their heartbeat there, so that the others can
 * tell a running job from one whose process died (./job-table.ts). Without a table, jobs live and die
 * with this process.
 */
import { randomUUID } from "node:crypto";
import { ClipOodError, isClipOodError, messageOf } from "../../errors.js";
import { evalRows } from "../../eval/evaluate.js";
import type { EvalRow, NamedDetector } from "../../eval/evaluate.js";
import { renderReport } from "../../eval/report.js";
import { evaluate } from "../../eval/run.js";
import type { EvalResult } from "../../eval/types.js";
import { FPR_CONVENTIONS } from "../../maths/metrics.js";
import type { FprConvention } from "../../maths/metrics.js";
import { classesFromLabels } from "../../eval/datasets.js";
import type { Dataset } from "../../eval/datasets.js";
import type { EmbeddingStore } from "../../store/store.js";
import { parseDiscovery } from "../../discover/discovery-file.js";
import type { DiscoveryResult } from "../../discover/types.js";
import { runDiscovery } from "./discover-job.js";
import type { DiscoveryJobSpec } from "./discover-job.js";
import { JOB_HEARTBEAT_MS } from "./job-table.js";
import type { JobTable } from "./job-table.js";
import { REQUEST_METHODS } from "../service.js";
import { ConflictError, NotFoundError } from "../service-errors.js";
import type { ClipService } from "../service.js";

export interface EvalRequest {
  id: string;
  ood: Record<string, string>;
  methods?: string[];
  detectors?: string[];
  classes?: string | string[];
  templates?: string | string[];
  fprConvention?: string;
}

export type JobKind = "eval" | "discover";

export interface JobView {
  job: string;
  /** What the job runs; absent on jobs recorded before discovery jobs existed, which are all evaluations. */
  kind?: JobKind;
  status: "queued" | "running" | "done" | "failed";
  /** eval: the set being embedded; discover: the stage ("embedding", "vocabulary", "clustering"). */
  progress: { set?: string; stage?: string; done: number; total: number } | null;
  rows?: EvalRow[];
  /** A done discovery job's result (the CLI's discovery.json). */
  discovery?: DiscoveryResult;
  error?: { code: string; message: string; hint?: string };
  /** Problems that did not stop the job, such as a store that could no longer be written. */
  warnings?: string[];
}

interface Job extends JobView {
  result?: EvalResult;
  /** The write to the job table in flight, and whether the job changed since it began. */
  recording?: Promise<void>;
  changed?: boolean;
}

/** How a running job reports: each call is recorded for the servers polling it. */
interface JobReports {
  progress(p: NonNullable<JobView["progress"]>): void;
  warning(message: string): void;
}

export class Jobs {
  private readonly jobs = new Map<string, Job>();
  private chain: Promise<void> = Promise.resolve();
  /** Jobs started here and not yet finished, and the timer refreshing their heartbeat meanwhile. */
  private unfinished = 0;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly service: ClipService,
    private readonly store: EmbeddingStore | undefined,
    private readonly maxJobs = 50,
    private readonly table?: JobTable,
    private readonly heartbeatMs = JOB_HEARTBEAT_MS,
  ) {}

  /** Validates the request (sets exist inside the data roots, methods are known) and queues it. */
  async start(req: EvalRequest): Promise<JobView> {
    if (typeof req.id !== "string" || req.id === "") throw new ClipOodError("USAGE", '"id" must name the in-distribution set', { hint: '{"id": "val", "ood": {"textures": "dtd"}}' });
    const oodEntries = Object.entries(req.ood ?? {});
    if (oodEntries.length === 0) throw new ClipOodError("USAGE", '"ood" must name at least one OOD set', { hint: '"ood": {"textures": "dtd"}' });
    const convention = (req.fprConvention ?? "hendrycks") as FprConvention;
    if (!FPR_CONVENTIONS.includes(convention)) throw new ClipOodError("USAGE", `unknown fprConvention "${req.fprConvention}"`, { hint: FPR_CONVENTIONS.join(" or ") });
    const methods = req.methods ?? (req.detectors?.length ? [] : ["mcm"]);
    for (const m of methods) {
      if (!(REQUEST_METHODS as readonly string[]).includes(m)) throw new ClipOodError("USAGE", `method "${m}" cannot be evaluated by the server`, { hint: `use ${REQUEST_METHODS.join(", ")}, or a server detector` });
    }
    const named: NamedDetector[] = await Promise.all((req.detectors ?? []).map(async (name) => ({ name, detector: await this.service.get(name) })));
    const idSet = await this.service.dataset(req.id, "ID set");
    const oodSets: { name: string; dataset: Dataset }[] = [];
    for (const [name, spec] of oodEntries) oodSets.push({ name, dataset: await this.service.dataset(spec, `OOD set ${name}`) });
    const classes = req.classes !== undefined ? this.service.classes(req.classes) : classesFromLabels([idSet]);
    if (methods.length > 0 && !classes) throw new ClipOodError("USAGE", "eval needs class names for its methods", { hint: 'send "classes", or an ID set of class folders' });
    const templates = req.templates === undefined ? undefined : this.service.templates(req.templates);

    return this.enqueue("eval", async (job, reports) => {
      const detectors = [...named];
      for (const method of methods) detectors.push({ name: method, detector: await this.service.requestDetector({ method, classes: classes!, ...(templates ? { templates } : {}) }) });
      job.result = await evaluate(this.service.model, {
        id: { name: req.id, dataset: idSet },
        ood: oodSets,
        detectors,
        convention,
        ...(this.store ? { store: this.store } : {}),
        onProgress: (set, done, total) => reports.progress({ set, done, total }),
        onWarning: (message) => reports.warning(message),
      });
      job.rows = evalRows(job.result);
    });
  }

  /** Queues a discovery whose request discover-job.ts has read and checked. */
  async startDiscovery(spec: DiscoveryJobSpec): Promise<JobView> {
    return this.enqueue("discover", async (job, reports) => {
      job.discovery = await runDiscovery(this.service, spec, this.store, (stage, done, total) => reports.progress({ stage, done, total }));
    });
  }

  /**
   * Records a new job, answers for it at once, and runs `work` after the jobs queued before it; what
   * `work` throws becomes the job's error.
   */
  private async enqueue(kind: JobKind, work: (job: Job, reports: JobReports) => Promise<void>): Promise<JobView> {
    const job: Job = { job: randomUUID(), kind, status: "queued", progress: null };
    // Recorded before it is answered, so that the next request may poll any process.
    await this.table?.insert(view(job));
    this.jobs.set(job.job, job);
    for (const old of [...this.jobs.keys()].slice(0, Math.max(0, this.jobs.size - this.maxJobs))) {
      if (this.jobs.get(old)!.status === "done" || this.jobs.get(old)!.status === "failed") this.jobs.delete(old);
    }
    this.beating(+1);
    const reports: JobReports = {
      progress: (p) => {
        job.progress = p;
        void this.record(job);
      },
      warning: (message) => {
        (job.warnings ??= []).push(message);
        void this.record(job);
      },
    };
    this.chain = this.chain.then(async () => {
      job.status = "running";
      void this.record(job);
      try {
        await work(job, reports);
        job.status = "done";
      } catch (e) {
        job.status = "failed";
        job.error = isClipOodError(e) ? { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } : { code: "INTERNAL", message: messageOf(e) };
      }
      // The final state is written before the next job starts (and before idle() resolves).
      await this.record(job);
      this.beating(-1);
    });
    return view(job);
  }

  async get(id: string): Promise<JobView> {
    const job = this.jobs.get(id);
    if (job) return view(job);
    return (await this.table?.get(id)) ?? this.notFound(id);
  }

  async report(id: string): Promise<string> {
    const job = this.jobs.get(id);
    if (job?.result) return renderReport(job.result);
    const shared = job ? undefined : await this.table?.report(id);
    if (shared?.html !== undefined) return shared.html;
    const known = job ?? shared?.job ?? this.notFound(id);
    if (known.kind === "discover") throw new NotFoundError(`job ${id} is a discovery: it has no HTML report (its clusters are in GET /v1/jobs/${id})`);
    throw new NotFoundError(`job ${id} has no report${known.status === "failed" ? ": it failed" : " yet: it is " + known.status}`);
  }

  /**
   * A done discovery job's result, for adding its clusters to a detector. One read from the job table
   * (written by this or another server version) is checked as a discovery file is.
   */
  async discovery(id: string): Promise<DiscoveryResult> {
    const local = this.jobs.get(id);
    const job = local ?? (await this.table?.get(id)) ?? this.notFound(id);
    if (job.kind !== "discover") throw new ClipOodError("USAGE", `job ${id} is an evaluation, not a discovery`, { hint: "name a job started with POST /v1/discover" });
    if (job.status === "failed") throw new ClipOodError("USAGE", `discovery job ${id} failed: it has no clusters to add`, { hint: `see its error (GET /v1/jobs/${id}), fix the request and start it again` });
    if (job.status !== "done" || !job.discovery) throw new ConflictError(`discovery job ${id} is ${job.status}: it has no clusters yet`, `poll GET /v1/jobs/${id} until its status is "done"`);
    return local ? job.discovery : parseDiscovery(JSON.stringify(job.discovery), `discovery job ${id}`);
  }

  /** Resolves when every queued job has finished (graceful shutdown). */
  idle(): Promise<void> {
    return this.chain;
  }

  private notFound(id: string): never {
    // Without a table a restarted server has forgotten every job; a client polling one should hear why.
    throw new NotFoundError(this.table ? `no job ${id}` : `no job ${id} on this server: without a PostgreSQL store, jobs live in the serve process that ran them and are forgotten when it stops`);
  }

  /** Counts unfinished jobs; the heartbeat runs while there are any, and never keeps the process alive. */
  private beating(change: 1 | -1): void {
    const table = this.table;
    this.unfinished += change;
    if (!table) return;
    if (this.unfinished > 0 && !this.heartbeat) {
      // A failed heartbeat (the database away) is not reported: the job's next write says so.
      this.heartbeat = setInterval(() => void table.heartbeat().catch(() => {}), this.heartbeatMs).unref();
    } else if (this.unfinished === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  /**
   * Writes the job's state to the job table, one write at a time: changes made during a write are
   * written by one more write after it, so the table skips intermediate progress under load but always
   * ends at the newest state. Resolves when the table holds the state of the call's moment.
   */
  private record(job: Job): Promise<void> {
    const table = this.table;
    if (!table) return Promise.resolve();
    job.changed = true;
    job.recording ??= (async () => {
      while (job.changed) {
        job.changed = false;
        try {
          // Rendered once, by the process that has the result; the others serve the stored HTML.
          const report = job.status === "done" && job.result ? await renderReport(job.result) : undefined;
          if (!(await table.update(view(job), report))) {
            // Another server took this process for dead (its heartbeats were late) and marked the job failed there.
            warn(job, "other servers report this job failed: its heartbeats reached the database too late; its result is kept on this server only");
            break;
          }
        } catch (e) {
          // The job goes on; what the table could not take is said where the job is polled here.
          warn(job, `the job's state could not be recorded for other servers: ${messageOf(e)}`);
        }
      }
      job.recording = undefined;
    })();
    return job.recording;
  }
}

function warn(job: Job, warning: string): void {
  if (!job.warnings?.includes(warning)) (job.warnings ??= []).push(warning);
}


function view(j: Job): JobView {
  return {
    job: j.job,
    ...(j.kind ? { kind: j.kind } : {}),
    status: j.status,
    progress: j.progress,
    ...(j.rows ? { rows: j.rows } : {}),
    ...(j.discovery ? { discovery: j.discovery } : {}),
    ...(j.error ? { error: j.error } : {}),
    ...(j.warnings ? { warnings: j.warnings } : {}),
  };
}
