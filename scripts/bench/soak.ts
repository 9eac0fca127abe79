/**
 * soak: `clip-ood serve` under a steady mix of valid and invalid requests at the worker pool's
 * capacity for a long time (10 minutes by default). Valid requests must never get a 5xx other than the
 * queue's 503, invalid ones must get 4xx; memory and open file descriptors must not grow after warm-up.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { generateModel, writeWorldImages } from "../make-test-model.js";
import { count, figuresHead, ints, log, mb } from "./kit.js";
import type { Bench } from "./kit.js";
import { detectBody, gauges, startServer, statusCounts } from "./serve.js";

interface Sample {
  t: number;
  rss: number;
  fds: number;
}

export const soakBench: Bench = {
  title: "soak: the server under a mix of valid and invalid requests for minutes",
  intro: [
    "`clip-ood serve` (generated test model, default limits) in its own process; autocannon cycles",
    "through valid requests (detect with one image, classify with JSON base64) and invalid ones (empty",
    "classes, bad base64, an unknown method, a text file as an image, malformed JSON, an unknown route)",
    "on `--connections` connections, about the pool's capacity, for `--duration` seconds. RSS and open",
    "file descriptors come from the server's /metrics every 10 s; growth is measured from the end of",
    "the first minute (warm-up) to the end.",
  ].join("\n"),
  async run(argv, command) {
    const { values } = parseArgs({ args: argv, options: { duration: { type: "string", default: "600" }, connections: { type: "string", default: "8" } }, strict: true });
    const [duration] = ints("duration", values.duration);
    const [connections] = ints("connections", values.connections);
    const dir = await mkdtemp(path.join(os.tmpdir(), "clip-ood-bench-soak-"));
    try {
      await generateModel(path.join(dir, "model"));
      const [red] = await writeWorldImages(path.join(dir, "images"), [{ colour: "red", texture: "plain", seed: 9100 }]);
      const detect = await detectBody([red!]);
      const { readFile } = await import("node:fs/promises");
      const b64 = (await readFile(red!)).toString("base64");
      const json = { "content-type": "application/json" };
      const valid = [
        { method: "POST" as const, path: "/v1/detect", headers: { "content-type": detect.contentType }, body: detect.body },
        { method: "POST" as const, path: "/v1/classify", headers: json, body: JSON.stringify({ images: [{ name: "r.png", data: b64 }], classes: ["red", "green"] }) },
      ];
      const invalid = [
        { method: "POST" as const, path: "/v1/classify", headers: json, body: JSON.stringify({ images: [{ name: "r.png", data: b64 }], classes: [] }) },
        { method: "POST" as const, path: "/v1/detect", headers: json, body: JSON.stringify({ images: [{ name: "x", data: "%%%not base64%%%" }], classes: "a,b" }) },
        { method: "POST" as const, path: "/v1/detect", headers: json, body: JSON.stringify({ images: [{ name: "r.png", data: b64 }], classes: "a,b", method: "nope" }) },
        { method: "POST" as const, path: "/v1/classify", headers: json, body: JSON.stringify({ images: [{ name: "t.png", data: Buffer.from("hello").toString("base64") }], classes: "a,b" }) },
        { method: "POST" as const, path: "/v1/classify", headers: json, body: "{not json" },
        { method: "GET" as const, path: "/v1/nowhere" },
      ];
      const server = await startServer(["--model", path.join(dir, "model"), "--cache-dir", path.join(dir, "cache"), "--no-store", "--quiet"]);
      try {
        const samples: Sample[] = [];
        const t0 = performance.now();
        const sample = async () => {
          const [rss, fds] = await gauges(server.url, ["clip_ood_process_resident_memory_bytes", "clip_ood_process_open_fds"]);
          samples.push({ t: (performance.now() - t0) / 1000, rss: rss!, fds: fds! });
        };
        await sample();
        const sampler = setInterval(() => void sample().catch(() => {}), 10_000);
        log(`soak: ${duration} s on ${connections} connections`);
        // Separate runs for valid and invalid traffic, concurrently, so that each one's statuses are known.
        const [ok, bad] = await Promise.all([
          autocannon({ url: server.url, connections: Math.max(1, connections! - 2), duration: duration!, requests: valid }),
          autocannon({ url: server.url, connections: 2, duration: duration!, requests: invalid }),
        ]);
        clearInterval(sampler);
        const died = server.exited();
        if (died) throw new Error(`the server died during the soak: ${died}`);
        await sample();
        const warm = samples.find((s) => s.t >= 60) ?? samples[0]!;
        const last = samples[samples.length - 1]!;
        const growth = (last.rss - warm.rss) / warm.rss;
        const validFive = Object.entries(ok.statusCodeStats ?? {}).filter(([c]) => c.startsWith("5") && c !== "503").reduce((a, [, s]) => a + (s.count ?? 0), 0);
        const invalidFive = Object.entries(bad.statusCodeStats ?? {}).filter(([c]) => c.startsWith("5")).reduce((a, [, s]) => a + (s.count ?? 0), 0);
        const markdown = [
          ...figuresHead(`${duration} s, ${connections} connections`, command),
          `| valid requests | ${count(ok.requests.total)} (${statusCounts(ok)}); 5xx other than 503: **${validFive}**; p50 ${ok.latency.p50} ms, p99 ${ok.latency.p99} ms, max ${ok.latency.max} ms |`,
          `| invalid requests | ${count(bad.requests.total)} (${statusCounts(bad)}); 5xx: **${invalidFive}** |`,
          `| connection errors / timeouts | ${ok.errors + bad.errors} / ${ok.timeouts + bad.timeouts} |`,
          `| server RSS | ${mb(samples[0]!.rss)} at start, ${mb(warm.rss)} after warm-up (${warm.t.toFixed(0)} s), ${mb(last.rss)} at the end: ${(100 * growth).toFixed(1)}% growth after warm-up |`,
          `| open file descriptors | ${samples[0]!.fds} at start, ${warm.fds} after warm-up, ${last.fds} at the end (max ${Math.max(...samples.map((s) => s.fds))}) |`,
        ].join("\n");
        return [{ key: `d=${duration},c=${connections}`, markdown }];
      } finally {
        await server.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
