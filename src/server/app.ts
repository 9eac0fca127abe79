/**
 * `clip-ood serve`: the HTTP API (docs/API.md) and the web UI on one loaded model. Fastify handles
 * HTTP; inference runs in the model's worker threads behind a bounded admission gate, so the event
 * loop stays free for health checks and for refusing work quickly when the queue is full.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import cors from "@fastify/cors";
import multipart from "@fastify/multipart";
import swagger from "@fastify/swagger";
import Fastify from "fastify";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ClipModel } from "../clip.js";
import type { ClipOptions } from "../clip.js";
import { ClipOodError, isClipOodError, messageOf } from "../errors.js";
import { openEmbeddingStore } from "../store/open.js";
import { PostgresStore } from "../store/postgres-store.js";
import type { EmbeddingStore } from "../store/store.js";
import { PostgresCatalog } from "./detector-catalog.js";
import { BusyError, Gate } from "./gate.js";
import { EvalJobs } from "./jobs.js";
import type { EvalRequest } from "./jobs.js";
import { PostgresJobTable } from "./job-table.js";
import { DEFAULT_LIMITS, LimitError } from "./limits.js";
import type { Limits } from "./limits.js";
import { serverMetrics } from "./metrics.js";
import type { ServerMetrics } from "./metrics.js";
import { readInput } from "./request.js";
import { ClipService } from "./service.js";
import { ConflictError, NotFoundError } from "./service-errors.js";

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
   * detectors created through the API and the eval jobs, shared by every server on that database.
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
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  /** Stops taking requests, finishes those in flight, then releases the model. */
  close(): Promise<void>;
}

class TimeoutError extends Error {}

/** Finished eval jobs kept for polling (per process, and in a shared database's job table). */
const MAX_JOBS = 50;

/** Where the built web UI lies: beside the compiled server (dist/server → dist/ui), or dist/ui when run from src. */
const UI_DIRS = [new URL("../ui/", import.meta.url), new URL("../../dist/ui/", import.meta.url)];
/** The UI's ES modules (ui/*.ts): the browser fetches each import by its own URL, so each needs a route. */
const UI_MODULES = ["app", "dom", "json", "api", "messages", "format", "tabs", "detect", "search", "detectors", "evaluate"];
const UI_FILES: Record<string, string> = {
  "/": "index.html",
  "/index.html": "index.html",
  "/style.css": "style.css",
  ...Object.fromEntries(UI_MODULES.map((m) => [`/${m}.js`, `${m}.js`])),
};
const UI_TYPES: Record<string, string> = { html: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" };

async function loadUi(): Promise<Map<string, Buffer>> {
  for (const dir of UI_DIRS) {
    const files = new Map<string, Buffer>();
    for (const f of new Set(Object.values(UI_FILES))) {
      const data = await readFile(new URL(f, dir)).catch(() => undefined);
      if (data) files.set(f, data);
    }
    if (files.has("index.html")) return files;
  }
  return new Map();
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

interface ErrorBody {
  error: { code: string; message: string; hint?: string; limit?: string };
}

/** Every failure as the JSON error body of docs/API.md, with its status. */
function toHttpError(e: unknown): { status: number; body: ErrorBody; headers?: Record<string, string> } {
  const body = (code: string, message: string, hint?: string, limit?: string): ErrorBody => ({ error: { code, message, ...(hint ? { hint } : {}), ...(limit ? { limit } : {}) } });
  if (e instanceof LimitError) return { status: e.status, body: body("LIMIT", e.message, `the server's ${e.limit} limit; split the request or send smaller images`, e.limit) };
  if (e instanceof BusyError) return { status: 503, body: body("BUSY", e.message, `retry after ${e.retryAfterSeconds} s`), headers: { "retry-after": String(e.retryAfterSeconds) } };
  if (e instanceof TimeoutError) return { status: 504, body: body("TIMEOUT", e.message, "send fewer images per request, or retry when the server is less busy") };
  if (e instanceof NotFoundError) return { status: 404, body: body("NOT_FOUND", e.message) };
  if (e instanceof ConflictError) return { status: 409, body: body("CONFLICT", e.message, e.hint) };
  if (isClipOodError(e)) {
    const status = ["MODEL_FOLDER", "MODEL_VARIANT", "MODEL_GRAPH", "OFFLINE", "DOWNLOAD", "INFERENCE"].includes(e.code) ? 500 : 400;
    return { status, body: body(e.code, e.message, e.hint) };
  }
  const fe = e as Partial<FastifyError>;
  if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE") return { status: 413, body: body("LIMIT", "the request body is too large", "the server's maxBodyBytes limit; split the request", "maxBodyBytes") };
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) return { status: fe.statusCode, body: body("USAGE", fe.message ?? "bad request", "see /openapi.json for the request format") };
  return { status: 500, body: body("INTERNAL", `internal error: ${messageOf(e)}`) };
}

interface Deps {
  limits: Limits;
  gate: Gate;
  metrics: ServerMetrics;
  jobs: () => EvalJobs;
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

  const tags = (t: string) => ({ tags: [t], ...(d.apiKey ? { security: [{ apiKey: [] }] } : {}) });
  const multipartOrJson = { consumes: ["multipart/form-data", "application/json"] };

  app.post("/v1/classify", { schema: { summary: "Top-k classes per image, probabilities softmax(100·cos)", ...tags("inference"), ...multipartOrJson } }, async (req) => {
    const input = await readInput(req, limits);
    const s = service();
    const top = Number(input.text("top") ?? 5);
    if (!Number.isInteger(top) || top < 1) throw new ClipOodError("USAGE", `top must be a positive integer, got ${input.text("top")}`, { hint: "e.g. top=5" });
    const images = s.images(input.files("image"));
    const classes = s.classes(input.list("classes"));
    const templates = s.templates(input.list("templates"));
    return infer((sv) => sv.classify(images, classes, templates, top));
  });

  app.post("/v1/detect", { schema: { summary: "Class, OOD score and verdict per image, with a method or a server detector", ...tags("inference"), ...multipartOrJson } }, async (req) => {
    const input = await readInput(req, limits);
    const s = service();
    const images = s.images(input.files("image"));
    const name = input.text("detector");
    const thresholdText = input.text("threshold");
    const threshold = thresholdText === undefined || thresholdText === "" ? undefined : Number(thresholdText);
    if (threshold !== undefined && !Number.isFinite(threshold)) throw new ClipOodError("USAGE", `threshold must be a number, got ${thresholdText}`, { hint: "e.g. threshold=0.34" });
    const spec =
      name !== undefined && name !== ""
        ? { detector: name }
        : { classes: s.classes(input.list("classes")), ...(input.list("templates") ? { templates: s.templates(input.list("templates")) } : {}), method: input.text("method") || "mcm" };
    return infer(async (sv) => sv.detect(images, await sv.requestDetector(spec), threshold));
  });

  app.post("/v1/embed", { schema: { summary: "L2-normalised image and text embeddings", ...tags("inference"), ...multipartOrJson } }, async (req) => {
    const input = await readInput(req, limits);
    const s = service();
    const uploads = input.files("image");
    const texts = input.list("texts") ?? input.list("text") ?? [];
    if (uploads.length === 0 && texts.length === 0) throw new ClipOodError("USAGE", "nothing to embed", { hint: 'send images, or "texts": ["a photo of a cat"]' });
    const images = uploads.length > 0 ? s.images(uploads) : [];
    return infer((sv) => sv.embed(images, texts));
  });

  app.post("/v1/search", { schema: { summary: "Indexed images ranked by text, image, and their arithmetic", ...tags("retrieval"), ...multipartOrJson } }, async (req) => {
    const input = await readInput(req, limits);
    const s = service();
    const uploads = input.files("image");
    const top = Number(input.text("top") ?? 10);
    if (!Number.isInteger(top) || top < 1 || top > 1000) throw new ClipOodError("USAGE", `top must be an integer in 1…1000, got ${input.text("top")}`, { hint: "e.g. top=20" });
    const text = input.text("text");
    const under = input.text("in");
    const query = { images: uploads.length > 0 ? s.images(uploads) : [], add: input.list("add") ?? [], subtract: input.list("subtract") ?? [], top, ...(text ? { text } : {}), ...(under ? { in: under } : {}) };
    return infer((sv) => sv.search(query));
  });

  app.get("/v1/thumbnail", { schema: { summary: "JPEG thumbnail of an image inside a data root", ...tags("retrieval"), querystring: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } } }, async (req, reply) => {
    const { path } = req.query as { path: string };
    const jpeg = await service().thumbnail(path);
    return reply.type("image/jpeg").header("cache-control", "private, max-age=300").send(jpeg);
  });

  const nameParam = { type: "object", properties: { name: { type: "string" } }, required: ["name"] };
  app.get("/v1/detectors", { schema: { summary: "The server's detectors", ...tags("detectors") } }, async () => ({ detectors: await service().list() }));
  app.post(
    "/v1/detectors",
    {
      schema: {
        summary: "Create a detector from classes and a zero-shot method",
        ...tags("detectors"),
        body: {
          type: "object",
          required: ["name", "classes"],
          properties: { name: { type: "string" }, classes: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }] }, templates: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }] }, method: { type: "string" } },
        },
      },
    },
    async (req, reply) => {
      const b = req.body as { name: string; classes: string | string[]; templates?: string | string[]; method?: string };
      const s = service();
      const classes = s.classes(b.classes);
      const templates = b.templates === undefined ? undefined : s.templates(b.templates);
      const created = await infer((sv) => sv.create(b.name, classes, templates, b.method));
      return reply.code(201).send(created);
    },
  );
  app.get("/v1/detectors/:name", { schema: { summary: "One detector", ...tags("detectors"), params: nameParam } }, async (req) => service().summary((req.params as { name: string }).name));
  app.delete("/v1/detectors/:name", { schema: { summary: "Delete a detector", ...tags("detectors"), params: nameParam } }, async (req, reply) => {
    await service().remove((req.params as { name: string }).name);
    return reply.code(204).send();
  });
  app.post(
    "/v1/detectors/:name/classes",
    { schema: { summary: "Add and remove classes", ...tags("detectors"), params: nameParam, body: { type: "object", properties: { add: { type: "array", items: { type: "string" } }, remove: { type: "array", items: { type: "string" } } } } } },
    async (req) => {
      const { name } = req.params as { name: string };
      const b = req.body as { add?: string[]; remove?: string[] };
      const s = service();
      const add = b.add?.length ? s.classes(b.add) : [];
      if (add.length === 0 && !b.remove?.length) throw new ClipOodError("USAGE", "nothing to change", { hint: '{"add": ["ferret"], "remove": ["car"]}' });
      return infer((sv) => sv.editClasses(name, add, b.remove ?? []));
    },
  );
  app.post("/v1/detectors/:name/calibrate", { schema: { summary: "Set the threshold from ID (and OOD) validation images", ...tags("detectors"), params: nameParam, ...multipartOrJson } }, async (req) => {
    const { name } = req.params as { name: string };
    const input = await readInput(req, limits);
    const s = service();
    await s.get(name);
    const set = async (field: "id" | "ood") => {
      const uploads = input.files(field);
      if (uploads.length > 0) return s.images(uploads);
      const ref = input.raw(field) as { path?: unknown } | undefined;
      if (ref && typeof ref === "object" && typeof ref.path === "string") return (await s.dataset(ref.path, `${field} set`)).images.map((i) => i.input);
      return [];
    };
    const id = await set("id");
    if (id.length === 0) throw new ClipOodError("USAGE", "calibration needs in-distribution images", { hint: 'upload them in fields named "id", or send {"id": {"path": "<folder in a data root>"}}' });
    const ood = await set("ood");
    const num = (f: string) => (input.text(f) === undefined ? undefined : Number(input.text(f)));
    const tpr = num("tpr");
    const fpr = num("fpr");
    return infer((sv) => sv.calibrate(name, id, ood, { ...(tpr === undefined ? {} : { tpr }), ...(fpr === undefined ? {} : { fpr }) }));
  });

  app.post(
    "/v1/eval",
    {
      schema: {
        summary: "Start an evaluation job on server-side sets",
        ...tags("evaluation"),
        body: { type: "object", required: ["id", "ood"], properties: { id: { type: "string" }, ood: { type: "object", additionalProperties: { type: "string" } }, methods: { type: "array", items: { type: "string" } }, detectors: { type: "array", items: { type: "string" } }, fprConvention: { type: "string" } } },
      },
    },
    async (req, reply) => reply.code(202).send(await d.jobs().start(req.body as EvalRequest)),
  );
  app.get("/v1/jobs/:id", { schema: { summary: "An evaluation job's status, progress and rows", ...tags("evaluation") } }, async (req) => d.jobs().get((req.params as { id: string }).id));
  app.get("/v1/jobs/:id/report", { schema: { summary: "A finished job's HTML report", ...tags("evaluation") } }, async (req, reply) =>
    reply.type("text/html; charset=utf-8").header("content-security-policy", "default-src 'none'; img-src data:; style-src 'unsafe-inline'").send(await d.jobs().report((req.params as { id: string }).id)),
  );

  app.get("/healthz", { schema: { summary: "Liveness", tags: ["operations"] } }, async () => ({ status: "ok" }));
  app.get("/readyz", { schema: { summary: "Readiness: the model is loaded", tags: ["operations"] } }, async (_req, reply) => {
    const s = d.service();
    return s ? { status: "ready", model: s.model.id } : reply.code(503).header("retry-after", "2").send({ status: "loading" });
  });
  app.get("/metrics", { schema: { summary: "Prometheus metrics", tags: ["operations"] } }, async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  for (const [url, file] of Object.entries(UI_FILES)) {
    app.get(url, { schema: { hide: true } }, async (_req, reply) => {
      const data = d.ui.get(file);
      if (!data) return reply.code(404).type("text/plain").send("the web UI is not built: run npm run build");
      return reply.type(UI_TYPES[file.split(".").pop()!]!).header("content-security-policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'").send(data);
    });
  }
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
  let jobs: EvalJobs | undefined;
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
    jobs = new EvalJobs(s, store, MAX_JOBS, shared ? new PostgresJobTable(shared, MAX_JOBS) : undefined);
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
