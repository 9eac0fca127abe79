/**
 * The /v1/ routes of docs/API.md: each reads its request (multipart or JSON), checks what the service
 * cannot, and hands the work to ClipService (inference through `infer`, so behind the gate and the
 * request timeout). The server's set-up around them (auth, admission, errors, the rest of the routes)
 * is app.ts's.
 */
import type { FastifyInstance } from "fastify";
import { ClipOodError } from "../../errors.js";
import { readAddDiscoveredRequest, readDiscoverRequest } from "../jobs/discover-job.js";
import type { EvalRequest, Jobs } from "../jobs/jobs.js";
import type { Limits } from "../limits.js";
import { readInput } from "./request.js";
import type { ClipService } from "../service.js";

export interface RouteContext {
  limits: Limits;
  /** The loaded service; a BusyError while the model loads. */
  service: () => ClipService;
  /** Inference behind the gate, within the request timeout. */
  infer: <T>(work: (s: ClipService) => Promise<T>) => Promise<T>;
  jobs: () => Jobs;
  /** Whether /v1/ needs the API key, which the OpenAPI document states per route. */
  secured: boolean;
}

export function registerApiRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { limits, service, infer, jobs } = ctx;
  const tags = (t: string) => ({ tags: [t], ...(ctx.secured ? { security: [{ apiKey: [] }] } : {}) });
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
    const all = input.text("all");
    if (all !== undefined && all !== "true" && all !== "false") throw new ClipOodError("USAGE", `all must be true or false, got ${all}`, { hint: '"all": true searches every image the store has embedded' });
    const query = { images: uploads.length > 0 ? s.images(uploads) : [], add: input.list("add") ?? [], subtract: input.list("subtract") ?? [], top, all: all === "true", ...(text ? { text } : {}), ...(under ? { in: under } : {}) };
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
    async (req, reply) => reply.code(202).send(await jobs().start(req.body as EvalRequest)),
  );

  app.post(
    "/v1/discover",
    {
      schema: {
        summary: "Start a discovery job: cluster images the known classes do not explain and name the clusters",
        ...tags("discovery"),
        ...multipartOrJson,
      },
    },
    async (req, reply) => {
      const input = await readInput(req, limits);
      return reply.code(202).send(await jobs().startDiscovery(await readDiscoverRequest(input, service(), limits)));
    },
  );
  app.post(
    "/v1/detectors/:name/discovered",
    {
      schema: {
        summary: "Add a discovery's chosen clusters to a detector as classes",
        ...tags("discovery"),
        params: nameParam,
        body: {
          type: "object",
          properties: {
            job: { type: "string" },
            discovery: { type: "object" },
            clusters: { type: "array", items: { type: "integer" } },
            names: { type: "object", additionalProperties: { type: "string" } },
          },
        },
      },
    },
    async (req) => {
      const { name } = req.params as { name: string };
      const r = readAddDiscoveredRequest(req.body, limits);
      const s = service();
      await s.get(name);
      const discovery = "job" in r.source ? await jobs().discovery(r.source.job) : r.source.discovery;
      const done = await infer((sv) => sv.addDiscovered(name, discovery, { ...(r.clusters ? { clusters: r.clusters } : {}), ...(r.names ? { names: r.names } : {}) }));
      return {
        ...done,
        note: `${name}'s threshold was set for its classes before: calibrate it again (POST /v1/detectors/${name}/calibrate) before relying on its verdicts`,
      };
    },
  );
  app.get("/v1/jobs/:id", { schema: { summary: "An evaluation or discovery job's status, progress and result", ...tags("jobs") } }, async (req) => jobs().get((req.params as { id: string }).id));
  app.get("/v1/jobs/:id/report", { schema: { summary: "A finished evaluation job's HTML report", ...tags("jobs") } }, async (req, reply) =>
    reply.type("text/html; charset=utf-8").header("content-security-policy", "default-src 'none'; img-src data:; style-src 'unsafe-inline'").send(await jobs().report((req.params as { id: string }).id)),
  );
}
