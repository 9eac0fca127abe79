/**
 * Distributed embedding on a real PostgreSQL (started here from Debian's package): `index --queue`,
 * `worker` processes, `queue status|failed`, and SIGKILL trials of workers.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { mulberry32 } from "../src/maths/random.js";
import { jsonLines, outputOf, runCli } from "./support/cli.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";
import { skipUnlessPostgres, startPostgres } from "./support/postgres.js";
import type { PostgresServer } from "./support/postgres.js";
import { inspectQueue, killWorkers, startWorker } from "./support/queue-trials.js";
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
