/**
 * The long version of test/queue.test.ts's SIGKILL trials: per trial, a fresh database on a PostgreSQL
 * the script starts (Debian's package), images queued in small batches with a short lease, workers
 * SIGKILLed at random moments, then a last worker drains the queue; each trial checks that every image
 * is stored exactly once, no row is orphaned and every batch completed once. Prints a line per trial
 * and a summary; exits 1 on any failed check.
 *
 *   npm run build && npx tsx scripts/queue-trials.ts [--trials 20] [--kills 4] [--images 40] [--seed 1]
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { mulberry32 } from "../src/maths/random.js";
import { runCli } from "../test/support/cli.js";
import { startPostgres } from "../test/support/postgres.js";
import { inspectQueue, killWorkers, startWorker } from "../test/support/queue-trials.js";
import { generateModel, writeWorldImages } from "./make-test-model.js";

const { values } = parseArgs({
  options: { trials: { type: "string", default: "20" }, kills: { type: "string", default: "4" }, images: { type: "string", default: "40" }, seed: { type: "string", default: "1" } },
});
const random = mulberry32(Number(values.seed));
const images = Number(values.images);
const work = await mkdtemp(path.join(os.tmpdir(), "clip-ood-queue-trials-"));
const server = await startPostgres();
const failures: string[] = [];
let killedAll = 0;
try {
  const model = path.join(work, "model");
  await generateModel(model);
  const dir = path.join(work, "images");
  await writeWorldImages(dir, Array.from({ length: images }, (_, i) => ({ colour: ["red", "green", "blue"][i % 3]!, texture: "striped" as const, seed: 7000 + i })));
  for (let trial = 1; trial <= Number(values.trials); trial++) {
    const url = await server.createDatabase(`trial_${trial}`);
    const common = ["--model", model, "--cache-dir", path.join(work, "cache"), "--store", url, "--threads", "1", "--quiet"];
    const queued = await runCli(["index", dir, "--queue", "--job-size", "2", "--lease", "2", ...common]);
    if (queued.code !== 0) throw new Error(`index --queue failed: ${queued.stderr}`);
    const workerArgs = [...common, "--poll", "1", "--check-every", "1"];
    const killed = await killWorkers(workerArgs, Number(values.kills), random);
    killedAll += killed;
    const last = await startWorker([...workerArgs, "--once"]).exited;
    const c = await inspectQueue(url);
    const problems = [
      last.code !== 0 ? `last worker exited ${last.code}` : "",
      c.paths !== images ? `${c.paths} paths for ${images} images` : "",
      c.embeddings !== images ? `${c.embeddings} embeddings` : "",
      c.orphans !== 0 ? `${c.orphans} orphans` : "",
      c.storedByJobs !== images ? `batches recorded ${c.storedByJobs} stored rows` : "",
      JSON.stringify(c.states) !== JSON.stringify({ completed: images / 2 }) ? `jobs ${JSON.stringify(c.states)}` : "",
    ].filter(Boolean);
    console.log(`trial ${trial}: ${killed} workers killed; ${problems.length === 0 ? "ok" : problems.join("; ")}`);
    if (problems.length > 0) failures.push(`trial ${trial}: ${problems.join("; ")}`);
  }
} finally {
  await server.stop();
  await rm(work, { recursive: true, force: true });
}
console.log(`${values.trials} trials, ${killedAll} workers killed, ${failures.length} failed`);
process.exitCode = failures.length > 0 ? 1 : 0;
