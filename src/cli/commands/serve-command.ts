/**
 * clip-ood serve: the HTTP API and web UI until SIGINT/SIGTERM, then a graceful shutdown (requests in
 * flight finish; new ones get 503).
 */
import { InvalidArgumentError } from "commander";
import type { Command } from "commander";
import { ClipOodError, messageOf } from "../../errors.js";
import { parseDtype } from "../../model/folder.js";
import type { Limits } from "../../server/limits.js";
import type { CommonOptions } from "../commands.js";
import { say, storeLocation, warn } from "../commands.js";
import { EXIT_HELP } from "../exit.js";
import { collect, int, withCommonOptions } from "../options.js";
import type { SetStatus } from "../options.js";

export interface ServeOptions extends CommonOptions {
  host: string;
  port: number;
  detector?: string[];
  detectorsDir?: string;
  apiKey?: string;
  cors?: string;
  dataRoot?: string[];
  maxBodyBytes?: number;
  maxImages?: number;
  maxClasses?: number;
  maxPromptLength?: number;
  maxQueue?: number;
  concurrency?: number;
  timeout?: number;
  log?: boolean;
}

export async function runServe(opts: ServeOptions): Promise<number> {
  const limits: Partial<Limits> = { maxPixels: opts.maxPixels };
  for (const k of ["maxBodyBytes", "maxImages", "maxClasses", "maxPromptLength", "maxQueue", "concurrency"] as const) {
    if (opts[k] !== undefined) limits[k] = opts[k];
  }
  if (opts.timeout !== undefined) limits.requestTimeoutMs = opts.timeout * 1000;
  const apiKey = opts.apiKey ?? process.env["CLIP_OOD_API_KEY"];
  if (opts.host !== "127.0.0.1" && opts.host !== "localhost" && opts.host !== "::1" && !apiKey) {
    warn(`serving on ${opts.host} without an API key: anyone who can reach it can use it (--api-key or CLIP_OOD_API_KEY)`);
  }
  let server;
  try {
    // Loaded here rather than with the CLI: Fastify and its plugins would slow every other command's start.
    const { startServer } = await import("../../server/app.js");
    server = await startServer({
      host: opts.host,
      port: opts.port,
      ...(opts.model ? { model: opts.model } : process.env["CLIP_OOD_MODEL"] ? { model: process.env["CLIP_OOD_MODEL"] } : {}),
      ...(opts.dtype ? { dtype: parseDtype(opts.dtype) } : {}),
      ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
      ...(opts.offline ? { offline: true } : {}),
      ...(opts.threads ? { threads: opts.threads } : {}),
      ...(opts.device ? { device: opts.device } : {}),
      workers: opts.workers,
      batchSize: opts.batchSize,
      store: storeLocation(opts) ?? false,
      ...(opts.detector ? { detectors: opts.detector } : {}),
      ...(opts.detectorsDir ? { detectorsDir: opts.detectorsDir } : {}),
      ...(apiKey ? { apiKey } : {}),
      ...(opts.cors ? { cors: opts.cors.split(",").map((s) => s.trim()).filter(Boolean) } : {}),
      ...(opts.dataRoot ? { dataRoots: opts.dataRoot } : {}),
      limits,
      ...(opts.log ? { log: true } : {}),
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      throw new ClipOodError("USAGE", `cannot listen on ${opts.host}:${opts.port}: ${messageOf(e)}`, { hint: "choose another --port (or --host)" });
    }
    throw e;
  }
  // Printed even with --quiet: with --port 0 it is the only way to learn the port.
  process.stderr.write(`clip-ood serving ${server.url} (model ${opts.model ?? "default"}); web UI at ${server.url}/, API docs at ${server.url}/openapi.json; Ctrl+C stops\n`);
  const running = server;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      say(opts, `${signal}: finishing requests in flight…`);
      void running.close().then(resolve, resolve);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  return 0;
}

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("--port must be an integer in 0…65535");
  return n;
}

export function addServeCommand(program: Command, setStatus: SetStatus): void {
  withCommonOptions(program.command("serve"))
    .description("Serve the HTTP API (docs/API.md) and the web UI on one loaded model.")
    .option("--host <host>", "address to listen on (127.0.0.1: this machine only)", "127.0.0.1")
    .option("--port <port>", "port to listen on (0: any free port, printed at start)", port, 8080)
    .option("-d, --detector <file>", "serve this saved detector under its file name (repeatable)", collect)
    .option("--detectors-dir <dir>", "save detectors created or edited through the API here, and load those saved before (not with a PostgreSQL --store, which keeps them for every server on it)")
    .option("--api-key <key>", "require Authorization: Bearer <key> on /v1/ (default $CLIP_OOD_API_KEY)")
    .option("--cors <origins>", "allow these browser origins, comma-separated (default: CORS off)")
    .option("--data-root <dir>", "a folder whose files requests may name (eval sets, calibration folders, thumbnails); repeatable", collect)
    .option("--max-body-bytes <n>", "largest request body", int("--max-body-bytes"))
    .option("--max-images <n>", "images per request", int("--max-images"))
    .option("--max-classes <n>", "classes per request", int("--max-classes"))
    .option("--max-prompt-length <n>", "characters per class name, template or search text", int("--max-prompt-length"))
    .option("--max-queue <n>", "requests waiting for inference before 503 + Retry-After", int("--max-queue"))
    .option("--concurrency <n>", "requests running inference at once", int("--concurrency"))
    .option("--timeout <s>", "seconds a request may take, queueing included, before 504", int("--timeout"))
    .option("--log", "log every request as a JSON line on stdout")
    .addHelpText("after", `
Endpoints: POST /v1/classify, /v1/detect, /v1/embed, /v1/search; /v1/detectors (GET, POST, DELETE,
…/classes, …/calibrate); POST /v1/eval + GET /v1/jobs/:id; GET /healthz, /readyz, /metrics (Prometheus),
/openapi.json. Images come as multipart file fields named "image" or as base64 in JSON; the server
never fetches URLs. Limits answer 4xx with a JSON error naming the limit; a full queue answers 503.
/v1/search and eval jobs use the embedding store (--store, default <cache-dir>/store.sqlite); search
covers the folders given to \`clip-ood index\` unless the request says "all": true. With a PostgreSQL
store, servers on it share detectors and eval jobs; a job whose server stops is reported failed by the
others once its heartbeat is 30 s old (submit it again). Defaults: max body 50 MB, 64 images, 2000
classes, 1000 characters, queue 32, concurrency 2, timeout 120 s.

Examples:
  clip-ood serve                                   # http://127.0.0.1:8080/
  clip-ood serve --detector pets.json --api-key "$KEY" --host 0.0.0.0
  curl -F image=@cat.jpg -F classes=cat,dog http://127.0.0.1:8080/v1/detect
${EXIT_HELP}`)
    .action(async (opts: ServeOptions) => {
      setStatus(await runServe(opts));
    });
}
