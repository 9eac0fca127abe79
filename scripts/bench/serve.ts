/**
 * serve: a bounded load test of `clip-ood serve` on loopback. The server runs in its own process (so
 * the load generator's memory and CPU are not counted as the server's); autocannon drives POST
 * /v1/detect for a fixed time while a second, light client polls /healthz to see whether health checks
 * stay fast when inference is saturated. Server memory comes from its own /metrics.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { generateModel, writeWorldImages } from "../make-test-model.js";
import { count, figuresHead, ints, log, mb, quantile } from "./kit.js";
import type { Bench, BenchBlock } from "./kit.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A multipart body with `images` world images and the class list, built once and replayed. */
export async function detectBody(files: readonly string[]): Promise<{ body: Buffer; contentType: string }> {
  const boundary = "----clipoodbench" + Date.now().toString(16);
  const parts: Buffer[] = [];
  const field = (name: string, value: string) => parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  field("classes", "red,green,blue");
  field("threshold", "0.36");
  for (const f of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${path.basename(f)}"\r\nContent-Type: image/png\r\n\r\n`));
    parts.push(await readFile(f));
    parts.push(Buffer.from("\r\n"));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

/**
 * Gauges from one scrape of the server's own /metrics (prom-client's process and event-loop metrics).
 * One scrape for all: prom-client resets its event-loop histogram at every scrape.
 */
export async function gauges(url: string, names: readonly string[]): Promise<number[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return names.map((name) => {
    const m = new RegExp(`^${name} (\\S+)`, "m").exec(text);
    return m ? Number(m[1]) : NaN;
  });
}

const rssOf = async (url: string) => (await gauges(url, ["clip_ood_process_resident_memory_bytes"]))[0]!;

/** autocannon's answers by HTTP status, e.g. "200: 1,244, 503: 12". */
export function statusCounts(r: autocannon.Result): string {
  return Object.entries(r.statusCodeStats ?? {})
    .map(([code, s]) => `${code}: ${count(s.count ?? 0)}`)
    .join(", ");
}

export function startServer(args: string[]): Promise<{ url: string; stop(): Promise<void>; exited(): string | undefined }> {
  const child = spawn(process.execPath, [path.join(root, "dist", "cli", "main.js"), "serve", "--port", "0", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  // A server that dies during a run must be reported, not waited for: its "exit" has already fired.
  let exit: string | undefined;
  child.once("exit", (code, signal) => (exit = `exited with ${code ?? signal}`));
  return new Promise((resolve, reject) => {
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /serving (http:\/\/\S+)/.exec(err);
      if (m) {
        // Started: the start-up deadline must not kill it later (it did, two minutes into long soaks).
        clearTimeout(startup);
        resolve({
          url: m[1]!,
          exited: () => (exit === undefined ? undefined : `${exit}: ${err.slice(-1500)}`),
          stop: () =>
            new Promise<void>((done) => {
              if (exit !== undefined) return done();
              child.once("exit", () => done());
              child.kill("SIGTERM");
            }),
        });
      }
    });
    child.once("exit", (code) => reject(new Error(`the server exited (${code}) before it was ready: ${err}`)));
    const startup = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the server did not start within 120 s: ${err}`));
    }, 120_000);
    startup.unref();
  });
}

export const serveBench: Bench = {
  title: "serve: the HTTP server under load on loopback",
  intro: [
    "`clip-ood serve` in its own process on the generated test model (scripts/make-test-model.ts: the",
    "real graph contract, tiny weights), so these figures measure the server — HTTP, multipart, decoding,",
    "preprocessing, the worker pool, admission control — not CLIP's forward pass; issue 7's full-size",
    "models measure that. autocannon keeps `--connections` requests of POST /v1/detect (one 320×240 PNG",
    "each, three classes) in flight for `--duration` seconds; 503s are the bounded queue refusing work",
    "beyond its capacity, by design. A second client polls GET /healthz 20 times a second throughout.",
    "Server memory is its resident set from its own /metrics, sampled every second.",
  ].join("\n"),
  async run(argv, command) {
    const { values } = parseArgs({
      args: argv,
      options: {
        duration: { type: "string", default: "60" },
        connections: { type: "string", default: "8" },
        images: { type: "string", default: "1" },
      },
      strict: true,
    });
    const [duration] = ints("duration", values.duration);
    const [connections] = ints("connections", values.connections);
    const [perRequest] = ints("images", values.images);
    const dir = await mkdtemp(path.join(os.tmpdir(), "clip-ood-bench-serve-"));
    try {
      log("serve: generating the model and images");
      await generateModel(path.join(dir, "model"));
      const files = await writeWorldImages(
        path.join(dir, "images"),
        Array.from({ length: perRequest! }, (_, i) => ({ colour: ["red", "yellow", "green"][i % 3]!, texture: "plain" as const, seed: 9000 + i })),
      );
      const { body, contentType } = await detectBody(files);
      const server = await startServer(["--model", path.join(dir, "model"), "--cache-dir", path.join(dir, "cache"), "--no-store", "--quiet"]);
      try {
        // Warm-up: the first request builds the class features and starts the workers.
        for (let i = 0; i < 3; i++) await fetch(`${server.url}/v1/detect`, { method: "POST", headers: { "content-type": contentType }, body });
        const rssStart = await rssOf(server.url);
        let rssPeak = rssStart;
        // Each sample's event-loop figures cover the second since the previous scrape.
        const lagP99: number[] = [];
        let lagMax = 0;
        const sample = async () => {
          const [rss, p99, max] = await gauges(server.url, ["clip_ood_process_resident_memory_bytes", "clip_ood_nodejs_eventloop_lag_p99_seconds", "clip_ood_nodejs_eventloop_lag_max_seconds"]);
          rssPeak = Math.max(rssPeak, rss!);
          lagP99.push(p99! * 1000);
          lagMax = Math.max(lagMax, max! * 1000);
        };
        const sampler = setInterval(() => void sample().catch(() => {}), 1000);
        log(`serve: ${duration} s of POST /v1/detect with ${connections} connections`);
        const [load, health] = await Promise.all([
          autocannon({ url: `${server.url}/v1/detect`, method: "POST", headers: { "content-type": contentType }, body, connections: connections!, duration: duration! }),
          autocannon({ url: `${server.url}/healthz`, connections: 1, overallRate: 20, duration: duration! }),
        ]);
        clearInterval(sampler);
        const rssEnd = await rssOf(server.url);

        const codes = statusCounts(load);
        const ok = load["2xx"];
        const markdown = [
          ...figuresHead(`${connections} connections, ${perRequest} image${perRequest === 1 ? "" : "s"} per request, ${duration} s`, command),
          `| requests answered | ${count(load.requests.total)} (${codes}) |`,
          `| successful detections | ${count(ok)} = ${(ok / load.duration).toFixed(1)} requests/s, ${((ok * perRequest!) / load.duration).toFixed(1)} images/s |`,
          `| latency, all answers | p50 ${load.latency.p50} ms, p99 ${load.latency.p99} ms, max ${load.latency.max} ms |`,
          `| connection errors / timeouts | ${load.errors} / ${load.timeouts} |`,
          `| GET /healthz meanwhile | ${count(health.requests.total)} answered, p50 ${health.latency.p50} ms, p99 ${health.latency.p99} ms, max ${health.latency.max} ms, non-2xx ${health.non2xx} |`,
          // Whether slow health checks come from the server's own event loop or from the load generator sharing the machine.
          `| server event-loop delay | per-second p99: median ${quantile(lagP99, 0.5).toFixed(1)} ms, worst ${Math.max(...lagP99).toFixed(1)} ms; max ${lagMax.toFixed(1)} ms |`,
          `| server RSS | ${mb(rssStart)} after warm-up, peak ${mb(rssPeak)}, ${mb(rssEnd)} at the end |`,
        ].join("\n");
        return [{ key: `c=${connections},images=${perRequest}`, markdown }] satisfies BenchBlock[];
      } finally {
        await server.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
