/**
 * A queue worker's health endpoint (`worker --health-port`): GET /healthz and Prometheus GET /metrics,
 * the same two routes `serve` answers, on node's own HTTP server (a worker needs nothing more).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ClipOodError, messageOf } from "../errors.js";
import type { WorkerState } from "../queue/worker.js";
import { workerMetrics } from "./metrics.js";

export interface HealthServer {
  /** http://host:port, with the port the system gave for 0. */
  url: string;
  close(): Promise<void>;
}

/** 200 while the loop runs and the database answers; 503 with the reason otherwise. */
export function workerHealth(state: WorkerState): { status: number; body: Record<string, unknown> } {
  const reason = !state.running ? "the worker's loop has stopped" : state.dbDown !== undefined ? `the database is unreachable (${state.dbDown}); the worker is retrying` : undefined;
  const numbers = { batchesDone: state.batchesDone, batchesFailed: state.batchesFailed, inFlight: state.inFlight, lastBatchAt: state.lastBatchAt === undefined ? null : new Date(state.lastBatchAt).toISOString(), dbRetries: state.dbRetries };
  return reason === undefined ? { status: 200, body: { status: "ok", ...numbers } } : { status: 503, body: { status: "unavailable", reason, ...numbers } };
}

export async function startWorkerHealth(state: WorkerState, o: { host: string; port: number }): Promise<HealthServer> {
  const registry = workerMetrics(state);
  const server = http.createServer((req, res) => {
    const route = (req.url ?? "/").split("?")[0];
    const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(body));
    if (req.method !== "GET" && req.method !== "HEAD") return json(405, { error: { code: "USAGE", message: `${req.method} is not answered here`, hint: "GET /healthz or /metrics" } });
    if (route === "/healthz") {
      const h = workerHealth(state);
      return json(h.status, h.body);
    }
    if (route === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        (e: unknown) => json(500, { error: { code: "INTERNAL", message: `internal error: ${messageOf(e)}` } }),
      );
      return;
    }
    return json(404, { error: { code: "NOT_FOUND", message: `no route GET ${route}`, hint: "GET /healthz or /metrics" } });
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException) => reject(new ClipOodError("USAGE", `cannot listen on ${o.host}:${o.port} for --health-port (${e.code ?? messageOf(e)})`, { hint: "choose a free port (1–65535), or 0 for any", cause: e }));
    server.once("error", fail);
    try {
      server.listen(o.port, o.host, () => resolve());
    } catch (e) {
      // A port out of range throws here rather than emitting "error".
      fail(e as NodeJS.ErrnoException);
    }
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
