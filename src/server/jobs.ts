/**
 * Evaluation runs as asynchronous jobs: they take minutes, so a request starts one and polls it. Jobs
 * run one after another (each already uses the whole inference pool) and the finished ones are kept
 * until `maxJobs` newer ones push them out.
 */
import { randomUUID } from "node:crypto";
import { ClipOodError, isClipOodError, messageOf } from "../errors.js";
import { evalRows } from "../eval/evaluate.js";
import type { EvalRow, NamedDetector } from "../eval/evaluate.js";
import { renderReport } from "../eval/report.js";
import { evaluate } from "../eval/run.js";
import { FPR_CONVENTIONS } from "../eval/types.js";
import type { EvalResult, FprConvention } from "../eval/types.js";
import { classesFromLabels } from "../io/datasets.js";
import type { Dataset } from "../io/datasets.js";
import type { EmbeddingStore } from "../store/store.js";
import { NotFoundError, REQUEST_METHODS } from "./service.js";
import type { ClipService } from "./service.js";

export interface EvalRequest {
  id: string;
  ood: Record<string, string>;
  methods?: string[];
  detectors?: string[];
  classes?: string | string[];
  templates?: string | string[];
  fprConvention?: string;
}

export interface JobView {
  job: string;
  status: "queued" | "running" | "done" | "failed";
  progress: { set: string; done: number; total: number } | null;
  rows?: EvalRow[];
  error?: { code: string; message: string; hint?: string };
  /** Problems that did not stop the job, such as a store that could no longer be written. */
  warnings?: string[];
}

interface Job extends JobView {
  result?: EvalResult;
}

export class EvalJobs {
  private readonly jobs = new Map<string, Job>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly service: ClipService,
    private readonly store: EmbeddingStore | undefined,
    private readonly maxJobs = 50,
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
    const named: NamedDetector[] = (req.detectors ?? []).map((name) => ({ name, detector: this.service.get(name) }));
    const idSet = await this.service.dataset(req.id, "ID set");
    const oodSets: { name: string; dataset: Dataset }[] = [];
    for (const [name, spec] of oodEntries) oodSets.push({ name, dataset: await this.service.dataset(spec, `OOD set ${name}`) });
    const classes = req.classes !== undefined ? this.service.classes(req.classes) : classesFromLabels([idSet]);
    if (methods.length > 0 && !classes) throw new ClipOodError("USAGE", "eval needs class names for its methods", { hint: 'send "classes", or an ID set of class folders' });
    const templates = req.templates === undefined ? undefined : this.service.templates(req.templates);

    const job: Job = { job: randomUUID(), status: "queued", progress: null };
    this.jobs.set(job.job, job);
    for (const old of [...this.jobs.keys()].slice(0, Math.max(0, this.jobs.size - this.maxJobs))) {
      if (this.jobs.get(old)!.status === "done" || this.jobs.get(old)!.status === "failed") this.jobs.delete(old);
    }
    this.chain = this.chain.then(async () => {
      job.status = "running";
      try {
        const detectors = [...named];
        for (const method of methods) detectors.push({ name: method, detector: await this.service.requestDetector({ method, classes: classes!, ...(templates ? { templates } : {}) }) });
        job.result = await evaluate(this.service.model, {
          id: { name: req.id, dataset: idSet },
          ood: oodSets,
          detectors,
          convention,
          ...(this.store ? { store: this.store } : {}),
          onProgress: (set, done, total) => (job.progress = { set, done, total }),
          onWarning: (message) => (job.warnings ??= []).push(message),
        });
        job.rows = evalRows(job.result);
        job.status = "done";
      } catch (e) {
        job.status = "failed";
        job.error = isClipOodError(e) ? { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } : { code: "INTERNAL", message: messageOf(e) };
      }
    });
    return view(job);
  }

  get(id: string): JobView {
    return view(this.find(id));
  }

  async report(id: string): Promise<string> {
    const job = this.find(id);
    if (!job.result) throw new NotFoundError(`job ${id} has no report${job.status === "failed" ? ": it failed" : " yet: it is " + job.status}`);
    return renderReport(job.result);
  }

  /** Resolves when every queued job has finished (graceful shutdown). */
  idle(): Promise<void> {
    return this.chain;
  }

  private find(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw new NotFoundError(`no job ${id}`);
    return job;
  }
}

function view(j: Job): JobView {
  return { job: j.job, status: j.status, progress: j.progress, ...(j.rows ? { rows: j.rows } : {}), ...(j.error ? { error: j.error } : {}), ...(j.warnings ? { warnings: j.warnings } : {}) };
}
