/**
 * `clip-ood serve`: the HTTP API (docs/API.md) and the web UI on one loaded model. Fastify handles
 * HTTP; inference runs in the model's worker threads behind a bounded admission gate, so the event
 * loop stays free for health checks and for refusing work quickly when the queue is full. The /v1/
 * routes are api-routes.ts's and the UI's files ui-files.ts's; this file sets the server up around them.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import cors from "@fastify/cors";
import multipart from "@fastify/multipart";
import swagger from "@fastify/swagger";
import Fastify from "fastify";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ClipModel } from "../clip.js";
import type { ClipOptions } from "../clip.js";
import { ClipOodError } from "../errors.js";
import { openEmbeddingStore } from "../store/open.js";
import { PostgresStore } from "../store/postgres-store.js";
import type { EmbeddingStore } from "../store/store.js";
import { registerApiRoutes } from "./http/api-routes.js";
import { PostgresCatalog } from "./detector-catalog.js";
import { BusyError, Gate } from "./gate.js";
import { TimeoutError, toHttpError } from "./http/http-errors.js";
import { Jobs } from "./jobs/jobs.js";
import { PostgresJobTable, processOwner } from "./jobs/job-table.js";
import { DEFAULT_LIMITS } from "./limits.js";
import type { Limits } from "./limits.js";
import { serverMetrics } from "./metrics.js";
import type { ServerMetrics } from "./metrics.js";
import { ClipService } from "./service.js";
import { loadUi, registerUi } from "./ui-files.js";

export interface ServerOptions {
  /** Model id or folder, as --model. */
  model?: string;
  dtype?: ClipOptions["dtype"];
  cacheDir?: string;
  offline?: boolean;
  threads?: number;
  workers?: number;
  device?: ClipOptions["device"];
  batchSize?: number;
  /** Detector files to serve by name (their file name without .json); they stay this process's own. */
  detectors?: readonly string[];
  /** Where detectors created or edited through the API are saved (not with a PostgreSQL store, which keeps them). */
  detectorsDir?: string;
  /**
   * Embedding store file or postgres:// URL, or false for none. A PostgreSQL store also holds the
   * detectors created through the API and the eval and discovery jobs, shared by every server on that database.
   */
  store?: string | false;
  host?: string;
  port?: number;
  /** Bearer key required on /v1/ (constant-time compared). */
  apiKey?: string;
  /** Origins allowed by CORS; none: CORS off. */
  cors?: readonly string[];
  /** Folders that server-side paths (eval sets, calibration folders, thumbnails) must lie in. */
  dataRoots?: readonly string[];
  limits?: Partial<Limits>;
  /** Log requests (pino, JSON lines on stdout). */
  log?: boolean;
  /**
   * With a PostgreSQL store: how often this process refreshes the heartbeat of its unfinished
   * jobs (default 5 s), and how old another process's heartbeat may be before its job is reported
   * failed (default 30 s). Keep the second several times the first.
   */
  jobHeartbeatMs?: number;
  jobStaleAfterMs?: number;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  /** Stops taking requests, finishes those in flight, then releases the model. */
  close(): Promise<void>;
}

/** Finished jobs kept for polling (per process, and in a shared database's job table). */
const MAX_JOBS = 50;

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

interface Deps {
  limits: Limits;
  gate: Gate;
  metrics: ServerMetrics;
  jobs: () => Jobs;
  service: () => ClipService | undefined;
  ui: Map<string, Buffer>;
  apiKey?: string;
  cors?: readonly string[];
  log?: boolean;
}

export async function buildApp(d: Deps): Promise<FastifyInstance> {
  const { limits, gate, metrics } = d;
  const app = Fastify({ logger: d.log ?? false, bodyLimit: limits.maxBodyBytes, return503OnClosing: true, forceCloseConnections: "idle" });
  await app.register(multipart, { limits: { fileSize: limits.maxBodyBytes, files: limits.maxImages * 2, fields: 200, fieldSize: 1024 * 1024 } });
  if (d.cors?.length) await app.register(cors, { origin: [...d.cors] });
  await app.register(swagger, {
    openapi: {
      info: { title: "clip-ood", version: "0.1.0", description: "CLIP zero-shot classification, OOD detection, retrieval and evaluation. Field names as the CLI's --json; see docs/API.md." },
      components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer" } } },
    },
  });

  const service = (): ClipService => {
    const s = d.service();
    if (!s) throw new BusyError(2);
    return s;
  };
  /** Inference behind the gate, within the request timeout. */
  const infer = async <T>(work: (s: ClipService) => Promise<T>): Promise<T> => {
    const s = service();
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ac.abort();
        reject(new TimeoutError(`the request took longer than ${limits.requestTimeoutMs / 1000} s`));
      }, limits.requestTimeoutMs);
    });
    try {
      return await Promise.race([gate.run(() => work(s), ac.signal), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  app.addHook("onRequest", async (req: FastifyRequest) => {
    // The matched route, not the raw URL: the router decodes %-escapes, so "/%761/…" reaches /v1/ routes.
    if (!d.apiKey || !(req.routeOptions.url ?? req.url).startsWith("/v1/")) return;
    const header = req.headers.authorization;
    const given = header?.startsWith("Bearer ") ? header.slice(7) : (req.headers["x-api-key"] as string | undefined);
    if (given === undefined || !timingSafeEqual(digest(given), digest(d.apiKey))) {
      throw Object.assign(new Error(given === undefined ? "this server needs an API key" : "wrong API key"), { statusCode: 401, auth: true });
    }
  });
  // A full queue refuses inference requests before their bodies are parsed: under overload, turning
  // work away must cost far less than doing it, or refusals alone saturate the event loop.
  const INFERENCE_ROUTES = new Set(["/v1/classify", "/v1/detect", "/v1/embed", "/v1/search", "/v1/detectors/:name/calibrate"]);
  app.addHook("onRequest", async (req: FastifyRequest) => {
    if (req.method === "POST" && gate.full && INFERENCE_ROUTES.has(req.routeOptions.url ?? "")) throw new BusyError(gate.retryAfterSeconds);
  });
  // Answers finished while closing end their connection, so close() need not wait out keep-alive.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onSend", async (_req: FastifyRequest, reply: FastifyReply) => {
    if (closing) reply.header("connection", "close");
  });
  app.addHook("onResponse", async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url ?? "unmatched";
    metrics.requests.inc({ route, method: req.method, status: String(reply.statusCode) });
    metrics.latency.observe({ route, method: req.method }, reply.elapsedTime / 1000);
  });
  app.setErrorHandler((e: unknown, req: FastifyRequest, reply: FastifyReply) => {
    if ((e as { auth?: boolean }).auth) {
      return reply.code(401).header("www-authenticate", "Bearer").send({ error: { code: "AUTH", message: (e as Error).message, hint: "send Authorization: Bearer <key> (or X-API-Key)" } });
    }
    const h = toHttpError(e);
    if (h.status >= 500 && h.status !== 503 && h.status !== 504) req.log.error(e);
    return reply.code(h.status).headers(h.headers ?? {}).send(h.body);
  });
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => reply.code(404).send({ error: { code: "NOT_FOUND", message: `no route ${req.method} ${req.url.split("?")[0]}`, hint: "see /openapi.json" } }));

  registerApiRoutes(app, { limits, service, infer, jobs: d.jobs, secured: Boolean(d.apiKey) });

  app.get("/healthz", { schema: { summary: "Liveness", tags: ["operations"] } }, async () => ({ status: "ok" }));
  app.get("/readyz", { schema: { summary: "Readiness: the model is loaded", tags: ["operations"] } }, async (_req, reply) => {
    const s = d.service();
    return s ? { status: "ready", model: s.model.id } : reply.code(503).header("retry-after", "2").send({ status: "loading" });
  });
  app.get("/metrics", { schema: { summary: "Prometheus metrics", tags: ["operations"] } }, async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  registerUi(app, d.ui);
  return app;
}

/**
 * Listens first (so /healthz and /readyz answer while the model loads), then loads the model,
 * the store and the detectors; resolves when ready.
 */
export async function startServer(o: ServerOptions = {}): Promise<RunningServer> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...o.limits };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isInteger(v) || v < 1) throw new ClipOodError("USAGE", `limit ${k} must be a positive integer, got ${v}`, { hint: "check the --max-… options" });
  }
  const gate = new Gate(limits.concurrency, limits.maxQueue);
  const metrics = serverMetrics(gate);
  let service: ClipService | undefined;
  let jobs: Jobs | undefined;
  const app = await buildApp({
    limits,
    gate,
    metrics,
    service: () => service,
    jobs: () => {
      if (!jobs) throw new BusyError(2);
      return jobs;
    },
    ui: await loadUi(),
    ...(o.apiKey ? { apiKey: o.apiKey } : {}),
    ...(o.cors ? { cors: o.cors } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
  const address = await app.listen({ host: o.host ?? "127.0.0.1", port: o.port ?? 8080 });
  let model: ClipModel | undefined;
  let store: EmbeddingStore | undefined;
  try {
    model = await ClipModel.load({
      ...(o.model ? { model: o.model } : {}),
      ...(o.dtype ? { dtype: o.dtype } : {}),
      ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
      ...(o.offline ? { offline: true } : {}),
      ...(o.threads ? { threads: o.threads } : {}),
      ...(o.device ? { device: o.device } : {}),
      onWarning: (m: string) => process.stderr.write(`warning: ${m}\n`),
      ...(o.workers ? { workers: o.workers } : {}),
      ...(o.batchSize ? { batchSize: o.batchSize } : {}),
      maxPixels: limits.maxPixels,
    });
    store = o.store ? await openEmbeddingStore(o.store, o.cacheDir ? { cacheDir: o.cacheDir } : {}) : undefined;
    const shared = store instanceof PostgresStore ? store : undefined;
    if (shared && o.detectorsDir) {
      throw new ClipOodError("USAGE", `--detectors-dir ${o.detectorsDir} is not used with the PostgreSQL store ${shared.location}: detectors created through the API are kept in the database`, {
        hint: "leave out --detectors-dir (every server on the database shares its detectors), or pass --store <file> to keep them in the folder",
      });
    }
    const s = new ClipService({
      model,
      limits,
      ...(store ? { store } : {}),
      ...(o.dataRoots ? { dataRoots: o.dataRoots } : {}),
      ...(o.detectorsDir ? { detectorsDir: o.detectorsDir } : {}),
      ...(shared ? { catalog: new PostgresCatalog(shared) } : {}),
      onImages: (n) => metrics.images.inc(n),
    });
    await s.loadDetectors(o.detectors ?? []);
    const table = shared ? new PostgresJobTable(shared, processOwner(), { keep: MAX_JOBS, ...(o.jobStaleAfterMs ? { staleAfterMs: o.jobStaleAfterMs } : {}) }) : undefined;
    jobs = new Jobs(s, store, MAX_JOBS, table, o.jobHeartbeatMs);
    service = s;
  } catch (e) {
    await app.close();
    await store?.close();
    await model?.close();
    throw e;
  }
  const url = address.replace("://[::1]", "://localhost");
  return {
    url,
    app,
    async close() {
      await app.close();
      await gate.idle();
      await store?.close();
      await model?.close();
    },
  };
}
