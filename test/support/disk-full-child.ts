/**
 * Runs inside the mount namespace of test/support/disk-full.ts, where `mountpoint` is a small tmpfs:
 * fills it, runs clip-ood commands that write there, and prints what it saw as one JSON object (the
 * tmpfs disappears with the namespace, so everything is observed here).
 */
import { open, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { runCli } from "./cli.js";
import { inspectStore } from "./crash-trials.js";

interface Args {
  mountpoint: string;
  model: string;
  images: string;
  /** A cache folder on the real disk (for scenarios where only the store is on the small one). */
  cache: string;
}

const [scenario, json] = process.argv.slice(2);
const a = JSON.parse(json!) as Args;
const filler = path.join(a.mountpoint, "filler");

/** Writes the filler until the disk refuses, then gives back `leave` bytes. */
async function fill(leave: number): Promise<void> {
  const fh = await open(filler, "w");
  const block = Buffer.alloc(4096, 1);
  let size = 0;
  try {
    for (;;) {
      await fh.write(block);
      size += block.length;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  }
  await fh.truncate(Math.max(0, size - leave));
  await fh.close();
}

const inspect = (file: string) => {
  try {
    return inspectStore(file);
  } catch (e) {
    return { error: String(e) };
  }
};

const result = (r: { code: number | null; stdout: string; stderr: string }) => ({ code: r.code, stderr: r.stderr, lines: r.stdout.split("\n").filter((l) => l.trim()).length });

async function main(): Promise<unknown> {
  const store = path.join(a.mountpoint, "store.sqlite");
  const model = ["--model", a.model, "--threads", "1", "--batch-size", "4", "--quiet"];
  switch (scenario) {
    case "index": {
      // The store fills up part-way through indexing.
      await fill(96 * 1024);
      const args = ["index", a.images, "--store", store, "--cache-dir", a.cache, ...model];
      const first = result(await runCli(args));
      const afterFull = inspect(store);
      await rm(filler);
      const rerun = result(await runCli(args));
      const afterRerun = inspect(store);
      // No room for the search index beside the store: the search still answers, from an index in memory.
      await fill(0);
      const search = result(await runCli(["search", "red", "--store", store, "--ann-threshold", "1", "--json", "--cache-dir", a.cache, ...model]));
      return { first, afterFull, rerun, afterRerun, search };
    }
    case "caches": {
      // Store and text cache on a small disk: detect and classify still answer for every image, whether
      // the store fills up part-way or cannot even be created.
      const cacheDir = path.join(a.mountpoint, "cache");
      const detectArgs = (file: string) => ["detect", a.images, "--classes", "red,green,blue", "--json", "--store", file, "--cache-dir", cacheDir, ...model];
      await fill(96 * 1024);
      const detectMidway = result(await runCli(detectArgs(store)));
      const stored = inspect(store);
      await fill(0);
      const detect = result(await runCli(detectArgs(path.join(a.mountpoint, "new.sqlite"))));
      const classify = result(await runCli(["classify", a.images, "--classes", "red,green,blue", "--json", "--no-store", "--cache-dir", path.join(a.mountpoint, "cache2"), ...model]));
      return { detectMidway, stored, detect, classify };
    }
    case "outputs": {
      // A detector saved while there was room, then outputs written to a full disk.
      const det = path.join(a.mountpoint, "det.json");
      const fit = result(await runCli(["fit", "--classes", "red,green", "--out", det, "--cache-dir", a.cache, "--no-store", ...model]));
      await fill(0);
      const refit = result(await runCli(["fit", "--classes", "red,green,blue", "--out", det, "--cache-dir", a.cache, "--no-store", ...model]));
      const shown = await runCli(["detector", "show", det]);
      const embed = result(await runCli(["embed", a.images, "--out", path.join(a.mountpoint, "e.jsonl"), "--cache-dir", a.cache, "--no-store", ...model]));
      const npy = result(await runCli(["embed", a.images, "--out", path.join(a.mountpoint, "e.npy"), "--cache-dir", a.cache, "--no-store", ...model]));
      const report = result(await runCli(["eval", "--id", a.images, "--ood", `same=${a.images}`, "--methods", "mcm", "--classes", "red,green,blue", "--json", "--report", path.join(a.mountpoint, "r.html"), "--cache-dir", a.cache, "--no-store", ...model]));
      const files = (await readdir(a.mountpoint)).filter((f) => f !== "filler").sort();
      return { fit, refit, shown: { code: shown.code, classes: shown.code === 0 ? (JSON.parse(shown.stdout) as { classes: unknown[] }).classes.length : null }, embed, npy, report, files };
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
}

process.stdout.write(JSON.stringify(await main()) + "\n");
