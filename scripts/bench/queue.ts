/**
 * queue: the distributed path on a real PostgreSQL (Debian's package, started here): worker processes
 * against one local `index` on the same cores, and the queue's own cost per batch. Search on such a
 * store is the storesearch bench's.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { makePhotos } from "../../src/bench/throughput.js";
import { EmbedQueue } from "../../src/queue/embed-queue.js";
import { PostgresStore } from "../../src/store/postgres-store.js";
import { startPostgres } from "../../test/support/postgres.js";
import { timedRun } from "../../test/support/crash-trials.js";
import { startWorker } from "../../test/support/queue-trials.js";
import { generateBenchModel } from "../bench-model/folder.js";
import { count, figuresHead, ints, log, ms, quantile, seconds } from "./kit.js";
import type { Bench, BenchBlock } from "./kit.js";

export const queueBench: Bench = {
  title: "queue: embedding through PostgreSQL with worker processes",
  intro: [
    "A PostgreSQL 15 server from Debian's package on this machine, the generated full-size ViT-B/32",
    "(scripts/make-bench-model.ts, fp32) and photo-like JPEGs of 500–1000 px. \"local index\" is one",
    "`clip-ood index` into an SQLite store; \"queue\" is `index --queue` then N `clip-ood worker --once`",
    "processes sharing the same cores (threads = cores / N each), timed from the first worker's start to",
    "the last one's exit. On one machine the point is the queue's overhead, not a speed-up: the ratio is",
    "queue images/s over local images/s, measured in the same run.",
  ].join("\n"),
  async run(argv, command) {
    const { values } = parseArgs({
      args: argv,
      options: {
        images: { type: "string", default: "256" },
        workers: { type: "string", default: "1,2,4" },
        "job-size": { type: "string", default: "32" },
        skip: { type: "string", default: "" },
      },
      strict: true,
    });
    const skip = new Set(values.skip.split(","));
    const work = await mkdtemp(path.join(os.tmpdir(), "clip-ood-bench-queue-"));
    const server = await startPostgres();
    const blocks: BenchBlock[] = [];
    try {
      if (!skip.has("workers")) blocks.push(await workersBlock(work, server, command, values));
      if (!skip.has("overhead")) blocks.push(await overheadBlock(work, server, command));
    } finally {
      await server.stop();
      await rm(work, { recursive: true, force: true });
    }
    return blocks;
  },
};

type Server = Awaited<ReturnType<typeof startPostgres>>;

/** Runs the built CLI to the end; its wall time in seconds. */
async function timed(args: string[]): Promise<{ seconds: number }> {
  const r = await timedRun(args);
  if (r.code !== 0) throw new Error(`clip-ood ${args.slice(0, 2).join(" ")} exited ${r.code}`);
  return { seconds: r.ms / 1000 };
}

async function workersBlock(work: string, server: Server, command: string, values: { images: string; workers: string; "job-size": string }): Promise<BenchBlock> {
  const n = ints("images", values.images)[0]!;
  const model = path.join(os.homedir(), ".cache", "clip-ood", "bench-models", "B32");
  log("queue: generating (or reusing) the full-size B/32");
  await generateBenchModel(model, { arch: "B/32", q8: false, q8Form: "int8" });
  log(`queue: making ${n} photos`);
  const photos = path.join(work, "photos");
  await mkdir(photos);
  await makePhotos(photos, n);
  const cores = os.availableParallelism();
  const cache = path.join(work, "cache");
  const common = (store: string, threads: number) => ["--model", model, "--cache-dir", cache, "--store", store, "--threads", String(threads), "--quiet"];

  log("queue: local index");
  const local = await timed(["index", photos, ...common(path.join(work, "local.sqlite"), cores)]);
  const localRate = n / local.seconds;
  const lines = figuresHead(`${count(n)} images, job size ${values["job-size"]}`, command, "", ["run", "seconds", "images/s", "ratio to local index"]);
  lines.push(`| local index (${cores} threads) | ${local.seconds.toFixed(1)} | ${localRate.toFixed(1)} | 1.00 |`);
  for (const w of ints("workers", values.workers)) {
    log(`queue: ${w} worker(s)`);
    const url = await server.createDatabase(`bench_workers_${w}`);
    const threads = Math.max(1, Math.floor(cores / w));
    const enqueue = await timed(["index", photos, "--queue", "--job-size", values["job-size"], ...common(url, threads)]);
    const t0 = performance.now();
    const runs = Array.from({ length: w }, () => startWorker([...common(url, threads), "--once", "--poll", "1"]));
    const ended = await Promise.all(runs.map((r) => r.exited));
    const took = seconds(t0);
    if (ended.some((e) => e.code !== 0)) throw new Error(`a worker failed: ${ended.map((e) => e.stderr).join("\n")}`);
    const rate = n / took;
    lines.push(`| queue: ${w} worker${w > 1 ? "s" : ""} × ${threads} threads (enqueue ${enqueue.seconds.toFixed(1)} s) | ${took.toFixed(1)} | ${rate.toFixed(1)} | ${(rate / localRate).toFixed(2)} |`);
  }
  lines.push("", "Each worker loads the model on start (included in its time).");
  return { key: "workers", markdown: lines.join("\n") };
}

/** The queue's own cost: take a batch, write nothing, complete it in a transaction; no model involved. */
async function overheadBlock(work: string, server: Server, command: string): Promise<BenchBlock> {
  log("queue: overhead per batch");
  const url = await server.createDatabase("bench_overhead");
  const store = await PostgresStore.open(url, { localDir: work });
  const queue = await EmbedQueue.open(url, { supervise: false, modelKey: "bench" });
  const jobs = 500;
  try {
    await queue.enqueue(Array.from({ length: jobs }, (_, i) => `/bench/${i}.jpg`), { modelKey: "bench", model: "bench" }, 1, { retries: 0, leaseSeconds: 600 });
    const times: number[] = [];
    for (;;) {
      const t0 = performance.now();
      const job = await queue.take();
      if (!job) break;
      await store.putBatchWith([], [], (db) => queue.complete(job, { stored: 0, failed: [] }, db));
      times.push(performance.now() - t0);
    }
    const lines = figuresHead("queue overhead per batch", command, ", in one process over loopback");
    lines.push(`| batches | ${count(times.length)} |`);
    lines.push(`| take + complete in a transaction, median | ${ms(quantile(times, 0.5))} ms |`);
    lines.push(`| p99 | ${ms(quantile(times, 0.99))} ms |`);
    return { key: "overhead", markdown: lines.join("\n") };
  } finally {
    await queue.close();
    await store.close();
  }
}
