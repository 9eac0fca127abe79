/**
 * Prometheus metrics of one server: requests by route and status, latency, the inference queue and
 * images embedded, plus prom-client's process metrics (memory, CPU, handles, event-loop lag). A registry
 * per server, so several servers in one process (tests) do not share counters.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Gate } from "./gate.js";

export interface ServerMetrics {
  registry: Registry;
  requests: Counter<"route" | "method" | "status">;
  latency: Histogram<"route" | "method">;
  images: Counter;
}

export function serverMetrics(gate: Gate): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "clip_ood_" });
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
