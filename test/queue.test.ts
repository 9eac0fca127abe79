/**
 * Distributed embedding on a real PostgreSQL (started here from Debian's package): `index --queue`,
 * `worker` processes, `queue status|failed`, and SIGKILL trials of workers.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import pg from "pg";
import { mulberry32 } from "../src/maths/random.js";
import { IdleWatch } from "../src/cli/commands/queue-commands.js";
import { startServer } from "../src/server/app.js";
import { jsonLines, outputOf, runCli } from "./support/cli.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";
import { skipUnlessPostgres, startPostgres } from "./support/postgres.js";
import type { PostgresServer } from "./support/postgres.js";
import { inspectQueue, killWorkers, startWorker } from "./support/queue-trials.js";
import type { Worker } from "./support/queue-trials.js";
import { call } from "./support/server-http.js";
import type { Reply } from "./support/server-http.js";
import { repoRoot } from "./support/shared.js";

let server: PostgresServer | undefined;
let model: string;
let cache: string;

before(async () => {
  if (skipUnlessPostgres) return;
  server = await startPostgres();
  model = await makeModel();
  cache = await tempDir();
});
after(async () => {
  await server?.stop();
});

const common = (url: string) => ["--model", model, "--cache-dir", cache, "--store", url, "--threads", "1", "--quiet"];
/** Workers hand expired leases back every second, and look at an empty queue every second. */
const workerArgs = (url: string) => [...common(url), "--poll", "1", "--check-every", "1"];

test("a wait on the queue says once that no worker seems to run, and only after nothing moved for the whole interval", () => {
  const watch = new IdleWatch(30_000);
  const waiting = { states: { created: 4 }, filesDone: 0 };
  assert.equal(watch.stalled(waiting, 0), false);
  assert.equal(watch.stalled(waiting, 29_999), false);
  // A worker takes a batch at 29.999 s: the interval starts again from there.
  assert.equal(watch.stalled({ states: { created: 3, active: 1 }, filesDone: 0 }, 29_999), false);
  assert.equal(watch.stalled({ states: { created: 3, completed: 1 }, filesDone: 8 }, 40_000), false);
  assert.equal(watch.stalled({ states: { created: 3, completed: 1 }, filesDone: 8 }, 69_999), false);
  assert.equal(watch.stalled({ states: { created: 3, completed: 1 }, filesDone: 8 }, 70_000), true);
  // Said once: the wait goes on without repeating it.
  assert.equal(watch.stalled({ states: { created: 3, completed: 1 }, filesDone: 8 }, 200_000), false);
});

async function folderOf(n: number, seed: number): Promise<{ dir: string; files: string[] }> {
  const images = await makeImages(Array.from({ length: n }, (_, i) => ({ colour: ["red", "green", "blue", "yellow"][i % 4]!, texture: "striped" as const })), seed);
  return { dir: path.dirname(images[0]!.file), files: images.map((i) => i.file) };
}

test("index --queue --wait and two workers fill the store once; a broken image is listed once, not retried", { skip: skipUnlessPostgres }, async () => {
  const url = await server!.createDatabase("queue_two_workers");
  const { dir, files } = await folderOf(16, 31);
  const broken = path.join(dir, "zz-broken.png");
  await writeFile(broken, "not a png at all");

  const index = spawn(process.execPath, [path.join(repoRoot, "dist", "cli", "main.js"), "index", dir, "--queue", "--wait", "--job-size", "3", "--json", ...common(url)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const indexed = outputOf(index);
  // The workers start once the batches are queued (an idle worker would also wait for them).
  for (let i = 0; i < 200 && (await inspectQueue(url).catch(() => undefined))?.states["created"] !== 6; i++) await new Promise((r) => setTimeout(r, 100));
  const workers = [startWorker(workerArgs(url)), startWorker(workerArgs(url))];

  const r = await indexed;
  assert.equal(r.code, 1, `one image failed: ${r.stderr}`);
  const summary = jsonLines(r.stdout)[0]!;
  assert.deepEqual([summary["files"], summary["queued"], summary["jobs"], summary["embedded"], summary["failed"]], [17, 17, 6, 16, 1]);
  assert.match(r.stderr, /failed .*zz-broken\.png/);

  // SIGTERM: each worker finishes what it holds and exits cleanly.
  for (const w of workers) w.kill("SIGTERM");
  const ended = await Promise.all(workers.map((w) => w.exited));
  for (const e of ended) assert.equal(e.code, 0, e.stderr);
  const completed = ended.flatMap((e) => e.batches).filter((b) => b["outcome"] === "completed");
  assert.equal(completed.length, 6, "six batches, each completed by one worker");
  assert.equal(new Set(completed.map((b) => b["job"])).size, 6);
  assert.equal(completed.reduce((s, b) => s + (b["files"] as number), 0), 17);

  const check = await inspectQueue(url);
  assert.deepEqual([check.paths, check.embeddings, check.orphans, check.storedByJobs], [16, 16, 0, 16]);
  assert.deepEqual(check.states, { completed: 6 });
  // The folder given to index --queue is indexed: export (as search) covers it by default.
  const exported = path.join(dir, "..", `${path.basename(dir)}.jsonl`);
  assert.equal((await runCli(["export", "--out", exported, ...common(url)])).code, 0);
  assert.equal(jsonLines(await readFile(exported, "utf8")).length, 16);

  const failed = await runCli(["queue", "failed", "--json", "--store", url]);
  assert.equal(failed.code, 0, failed.stderr);
  const rows = jsonLines(failed.stdout);
  assert.deepEqual(rows.map((x) => [x["input"], x["kind"]]), [[broken, "image"]]);
  assert.match(String(rows[0]!["reason"]), /zz-broken\.png/);

  // A rerun queues only what the store lacks: the broken image, for one more try.
  const again = await runCli(["index", dir, "--queue", "--json", ...common(url)]);
  const s2 = jsonLines(again.stdout)[0]!;
  assert.deepEqual([s2["queued"], s2["alreadyStored"]], [1, files.length]);
  const status = JSON.parse((await runCli(["queue", "status", "--store", url])).stdout) as { states: Record<string, number>; files: number };
  assert.deepEqual([status.states["created"], status.states["completed"]], [1, 6]);
});

test("queue commands and workers refuse an SQLite store; a worker only takes batches queued for its own model settings", { skip: skipUnlessPostgres }, async () => {
  const sqlite = path.join(await tempDir(), "s.sqlite");
  const { dir } = await folderOf(2, 41);
  for (const args of [["index", dir, "--queue"], ["worker", "--once"], ["queue", "status"]]) {
    const r = await runCli([...args, "--store", sqlite, ...(args[0] === "queue" ? [] : ["--model", model, "--cache-dir", cache, "--quiet"])]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /needs a PostgreSQL store, and .*s\.sqlite is an SQLite file/);
  }
  assert.equal(existsSync(sqlite), false, "refused without creating the SQLite file");
  const url = await server!.createDatabase("queue_other_model");
  assert.equal((await runCli(["index", dir, "--queue", "--json", ...common(url)])).code, 0);
  // EXIF handling is part of the model key: this worker's queue is another one, and it has nothing.
  const other = await startWorker([...workerArgs(url), "--no-exif-rotate", "--once"]).exited;
  assert.equal(other.code, 0, other.stderr);
  assert.deepEqual(other.batches, [], "no batch of another model's queue was taken");
  assert.deepEqual((await inspectQueue(url)).states, { created: 1 }, "the batch still waits for a worker with the right model");
  assert.equal((await inspectQueue(url)).paths, 0, "nothing stored under the wrong model");
});

test("SIGKILL trials: workers killed while holding batches; the next worker takes them over once their leases run out; every image stored exactly once", { skip: skipUnlessPostgres }, async (t) => {
  const url = await server!.createDatabase("queue_kills");
  const { dir, files } = await folderOf(24, 51);
  const q = await runCli(["index", dir, "--queue", "--job-size", "2", "--lease", "2", "--json", ...common(url)]);
  assert.equal(jsonLines(q.stdout)[0]!["jobs"], 12, q.stderr);
  const killed = await killWorkers(workerArgs(url), 3, mulberry32(7));
  const mid = await inspectQueue(url);
  t.diagnostic(`${killed} workers killed; then ${mid.paths} images stored, jobs ${JSON.stringify(mid.states)}`);
  assert.ok(mid.paths % 2 === 0, "whole batches only");

  const last = startWorker([...workerArgs(url), "--once"]);
  const e = await last.exited;
  assert.equal(e.code, 0, e.stderr);
  const check = await inspectQueue(url);
  assert.deepEqual([check.paths, check.embeddings, check.orphans], [files.length, files.length, 0]);
  assert.deepEqual(check.states, { completed: 12 }, "the queue drained");
  assert.equal(check.storedByJobs, files.length, "each image written by exactly one committed batch");
});

test("eval --queue waits for the workers to embed its sets, then scores them from the store", { skip: skipUnlessPostgres }, async () => {
  const url = await server!.createDatabase("queue_eval");
  const root = await tempDir();
  const colours = ["red", "green", "blue"];
  const idImages = await makeImages(Array.from({ length: 6 }, (_, i) => ({ colour: colours[i % 3]!, texture: "plain" as const })), 61);
  for (const [i, img] of idImages.entries()) {
    await mkdir(path.join(root, "val", colours[i % 3]!), { recursive: true });
    await copyFile(img.file, path.join(root, "val", colours[i % 3]!, path.basename(img.file)));
  }
  const ood = await makeImages([{ colour: "yellow", texture: "plain" }, { colour: "pink", texture: "plain" }, { colour: "cyan", texture: "plain" }], 62);
  const evalRun = spawn(
    process.execPath,
    [path.join(repoRoot, "dist", "cli", "main.js"), "eval", "--id", path.join(root, "val"), "--ood", `other=${path.dirname(ood[0]!.file)}`, "--methods", "mcm", "--queue", "--job-size", "2", "--json", ...common(url).filter((a) => a !== "--quiet")],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const evaluated = outputOf(evalRun);
  const worker = startWorker(workerArgs(url));
  const r = await evaluated;
  worker.kill("SIGTERM");
  const w = await worker.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /the workers embedded 9 images \(0 were stored already\)/);
  assert.match(r.stderr, /image embeddings: 0 computed, 9 from the store/);
  const rows = jsonLines(r.stdout);
  assert.equal(rows[0]!["auroc"], 1, "the generated world separates perfectly");
  assert.equal(w.batches.filter((b) => b["outcome"] === "completed").length, 5, "9 images in batches of 2");
});

test("index --queue with a relative folder: a worker in another directory finds every file; queue retry and queue clear empty the failed listing", { skip: skipUnlessPostgres }, async () => {
  const url = await server!.createDatabase("queue_relative");
  const { dir } = await folderOf(4, 71);
  const broken = path.join(dir, "zz-broken.png");
  await writeFile(broken, "not a png at all");
  const q = await runCli(["index", path.basename(dir), "--queue", "--job-size", "2", "--json", ...common(url)], { cwd: path.dirname(dir) });
  assert.equal(jsonLines(q.stdout)[0]!["queued"], 5, q.stderr);

  const w = await startWorker([...workerArgs(url), "--once", "--poll", "0.5"], { cwd: await tempDir() }).exited;
  assert.equal(w.code, 0, w.stderr);
  assert.deepEqual([sum(w.batches, "embedded"), sum(w.batches, "failed")], [4, 1], "only the broken image fails, not the relative paths");
  const failed = async () => jsonLines((await runCli(["queue", "failed", "--json", "--store", url])).stdout);
  assert.deepEqual((await failed()).map((f) => f["input"]), [broken], "listed by its absolute path");

  // retry: once the file is fixed, it is queued again, taken off the list, and embedded.
  await copyFile(path.join(dir, (await readdir(dir)).find((f) => f.endsWith(".png") && !f.startsWith("zz"))!), broken);
  const retried = await runCli(["queue", "retry", "--json", "--store", url]);
  assert.equal(retried.code, 0, retried.stderr);
  assert.deepEqual(jsonLines(retried.stdout)[0], { requeued: 1, jobs: 1, images: 1, batches: 0, batchFiles: 0 });
  assert.deepEqual(await failed(), []);
  const again = await startWorker([...workerArgs(url), "--once"]).exited;
  assert.deepEqual([again.code, again.batches.map((b) => [b["outcome"], b["files"], b["failed"]])], [0, [["completed", 1, 0]]], again.stderr);
  assert.deepEqual(await failed(), []);

  // clear: a batch that failed on every attempt is forgotten, and nothing is queued for it.
  await writeFile(path.join(dir, "zz-broken-2.png"), "still not a png");
  await runCli(["index", dir, "--queue", ...common(url)]);
  // As pg-boss records a batch whose lease ran out on its last attempt.
  await sql(url, "UPDATE clip_ood_queue.job SET state = 'failed', output = '{\"value\": {\"message\": \"job failed by timeout in active state\"}}' WHERE state = 'created'");
  assert.deepEqual((await failed()).map((f) => [path.basename(String(f["input"])), f["kind"], f["reason"]]), [["zz-broken-2.png", "batch", "job failed by timeout in active state"]]);
  const cleared = await runCli(["queue", "clear", "--store", url]);
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.match(cleared.stdout, /forgot 1 failed files \(0 images no worker could read, 1 files of 1 failed batches\).*nothing was queued/);
  assert.deepEqual(await failed(), []);
  assert.deepEqual((await inspectQueue(url)).states, { completed: 4 }, "nothing queued, the failed batch gone");
});

test("a PostgreSQL restart in the middle of work: workers, index --queue --wait and serve wait for it, log each retry and go on; every image stored once", { skip: skipUnlessPostgres }, async () => {
  const url = await server!.createDatabase("queue_restart");
  const { dir, files } = await folderOf(40, 81);
  const served = await startServer({ model, cacheDir: cache, threads: 1, store: url, port: 0 });
  let workers: Worker[] = [];
  let down: Promise<void> | undefined;
  try {
    const retryArgs = ["--db-retry", "30"];
    const index = spawn(process.execPath, [path.join(repoRoot, "dist", "cli", "main.js"), "index", dir, "--queue", "--wait", "--job-size", "2", "--lease", "5", "--json", ...retryArgs, ...common(url)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const indexed = outputOf(index);
    for (let i = 0; i < 200 && (await inspectQueue(url).catch(() => undefined))?.states["created"] !== 20; i++) await new Promise((r) => setTimeout(r, 100));
    workers = [startWorker([...workerArgs(url), ...retryArgs, "--health-port", "0"]), startWorker([...workerArgs(url), ...retryArgs])];
    const health = (await workers[0]!.stderrMatch(/worker: health on (http:\/\/127\.0\.0\.1:\d+)\/healthz/))[1]!;
    await Promise.all(workers.map((w) => w.completed(1)));
    const healthy = await call<{ status: string; batchesDone: number }>(health, "/healthz");
    assert.equal(healthy.status, 200, healthy.text);
    assert.equal(healthy.body.status, "ok");

    // Every connection cut, as in a crash or a failover; the server is away for two seconds.
    down = server!.restart(2000);
    await new Promise((r) => setTimeout(r, 700));
    const during = await call(served.url, "/v1/detectors");
    let unhealthy: Reply<{ status: string; reason: string }> | undefined;
    for (let i = 0; i < 10 && unhealthy?.status !== 503; i++) {
      unhealthy = await call<{ status: string; reason: string }>(health, "/healthz").catch(async (e: unknown) => {
        const x = await workers[0]!.exited;
        throw new Error(`the worker's /healthz did not answer (${String(e)}); it exited ${x.code}: ${x.stderr}`);
      });
      if (unhealthy.status !== 503) await new Promise((r) => setTimeout(r, 100));
    }
    await down;
    assert.equal(unhealthy?.status, 503, "the worker's /healthz says the database is away");
    assert.match(unhealthy.body.reason, /^the database is unreachable \(.+\); the worker is retrying$/);
    assert.equal(during.status, 503, during.text);
    assert.equal(during.headers.get("retry-after"), "5");
    assert.equal((during.body as { error: { code: string } }).error.code, "DATABASE_UNAVAILABLE");
    let after: Reply | undefined;
    for (let i = 0; i < 50 && after?.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      after = await call(served.url, "/v1/detectors");
    }
    assert.equal(after?.status, 200, "serve answers again without a restart");

    const r = await indexed;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(jsonLines(r.stdout)[0]!["embedded"], files.length);
    assert.match(r.stderr, /database unreachable while following the workers \(.+\); retry 1 in/);
    const back = await call(health, "/healthz");
    assert.equal(back.status, 200, back.text);
    const metrics = (await call(health, "/metrics")).text;
    const value = (name: string) => Number(metrics.match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1]);
    assert.ok(value("clip_ood_worker_batches_done_total") >= 1, metrics);
    assert.ok(value("clip_ood_worker_db_retries_total") >= 1);
    assert.equal(value("clip_ood_worker_batches_failed_total"), 0);
    assert.equal(value("clip_ood_worker_batches_in_flight"), 0);
    assert.equal(value("clip_ood_worker_database_up"), 1);
    assert.ok(Math.abs(value("clip_ood_worker_last_batch_timestamp_seconds") - Date.now() / 1000) < 120);
    for (const w of workers) w.kill("SIGTERM");
    for (const e of await Promise.all(workers.map((w) => w.exited))) {
      assert.equal(e.code, 0, e.stderr);
      assert.match(e.stderr, /worker: database unreachable while [a-z ]+ \(.+\); retry 1 in .*\n(.*\n)*worker: database back after/, "each worker logged its retries and went on");
    }
    const check = await inspectQueue(url);
    assert.deepEqual([check.paths, check.embeddings, check.orphans, check.storedByJobs], [files.length, files.length, 0, files.length]);
    assert.deepEqual(check.states, { completed: 20 });
  } finally {
    // The server must be back before the file's after() stops it, even when an assertion failed.
    await down?.catch(() => {});
    for (const w of workers) w.kill("SIGKILL");
    await served.close();
  }
});

test("worker --help lists what a worker uses, and its own exit statuses", async () => {
  const r = await runCli(["worker", "--help"]);
  assert.equal(r.code, 0, r.stderr);
  for (const flag of ["--csv", "--ext", "--no-store", "--no-text-cache", "--logit-scale", "--logit-bias"]) assert.ok(!r.stdout.includes(flag), `${flag} means nothing to a worker`);
  assert.doesNotMatch(r.stdout, /class/i);
  for (const flag of ["--model", "--dtype", "--store", "--json", "--poll", "--db-retry", "--health-port"]) assert.ok(r.stdout.includes(flag), flag);
  assert.match(r.stdout, /0 {2}stopped by SIGTERM or SIGINT, or \(--once\) the queue was empty/);
  const bad = await runCli(["worker", "--poll", "0", "--store", "postgres://127.0.0.1:9/x"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--poll must be a number of seconds above 0, like 1 or 0\.5/);
});

function sum(rows: Record<string, unknown>[], field: string): number {
  return rows.reduce((n, r) => n + Number(r[field] ?? 0), 0);
}

async function sql(url: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}
