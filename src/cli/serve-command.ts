/**
 * clip-ood serve: the HTTP API and web UI until SIGINT/SIGTERM, then a graceful shutdown (requests in
 * flight finish; new ones get 503).
 */
import { ClipOodError, messageOf } from "../errors.js";
import { parseDtype } from "../model/folder.js";
import { startServer } from "../server/app.js";
import type { Limits } from "../server/limits.js";
import type { CommonOptions } from "./commands.js";
import { say, storeLocation } from "./commands.js";

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
    say(opts, `warning: serving on ${opts.host} without an API key: anyone who can reach it can use it (--api-key or CLIP_OOD_API_KEY)`);
  }
  let server;
  try {
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
