/**
 * Prometheus metrics of one server (requests by route and status, latency, the inference queue and
 * images embedded) or one queue worker (batches, the database's state), each plus prom-client's process
 * metrics (memory, CPU, handles, event-loop lag). A registry per server or worker, so several in one
 * process (tests) do not share counters.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { WorkerState } from "../queue/worker.js";
import type { Gate } from "./gate.js";

function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "clip_ood_" });
  return registry;
}

export interface ServerMetrics {
  registry: Registry;
  requests: Counter<"route" | "method" | "status">;
  latency: Histogram<"route" | "method">;
  images: Counter;
}

export function serverMetrics(gate: Gate): ServerMetrics {
  const registry = processRegistry();
  const requests = new Counter({ name: "clip_ood_http_requests_total", help: "HTTP requests answered, by route, method and status", labelNames: ["route", "method", "status"], registers: [registry] });
  const latency = new Histogram({
    name: "clip_ood_http_request_duration_seconds",
    help: "Time to answer a request, by route and method",
    labelNames: ["route", "method"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const images = new Counter({ name: "clip_ood_images_embedded_total", help: "Images run through the vision tower", registers: [registry] });
  new Gauge({ name: "clip_ood_inference_queue_depth", help: "Requests waiting for an inference slot", registers: [registry], collect() { this.set(gate.depth); } });
  new Gauge({ name: "clip_ood_inference_active", help: "Requests running inference", registers: [registry], collect() { this.set(gate.active); } });
  return { registry, requests, latency, images };
}

/** A worker's metrics, read from its state when scraped: the worker loop keeps one set of numbers. */
export function workerMetrics(state: WorkerState): Registry {
  const registry = processRegistry();
  const counter = (name: string, help: string, value: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  const gauge = (name: string, help: string, value: () => number) => new Gauge({ name, help, registers: [registry], collect() { this.set(value()); } });
  counter("clip_ood_worker_batches_done_total", "Batches this worker committed (or found completed by another worker)", () => state.batchesDone);
  counter("clip_ood_worker_batches_failed_total", "Batches this worker failed (handed back to the queue, or failed for good after their retries)", () => state.batchesFailed);
  counter("clip_ood_worker_db_retries_total", "Database operations retried because the database was unreachable", () => state.dbRetries);
  gauge("clip_ood_worker_batches_in_flight", "Batches this worker holds now", () => state.inFlight);
  gauge("clip_ood_worker_last_batch_timestamp_seconds", "When this worker last finished a batch, in seconds since the epoch (0: none yet)", () => (state.lastBatchAt ?? 0) / 1000);
  gauge("clip_ood_worker_database_up", "1 while the database answers, 0 while the worker waits for it", () => (state.dbDown === undefined ? 1 : 0));
  return registry;
}
