/**
 * Crash safety of the commands that write the embedding store: index and eval killed with SIGKILL at
 * spread-out moments of their run; the store always opens intact, holds no duplicate or orphaned row,
 * and the rerun completes with every image stored once. scripts/crash-trials.ts runs many more trials.
 */
import assert from "node:assert/strict";
import { mkdir, copyFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import type { TestContext } from "node:test";
import { crashTrial, timedRun } from "./support/crash-trials.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";

let model: string;
let cache: string;
let idDir: string;
let oodDir: string;
// Enough images for several store commits (index and eval commit 64 images at a time).
const COUNT = { id: 96, ood: 64 };

before(async () => {
  model = await makeModel();
  cache = await tempDir();
  const root = await tempDir();
  idDir = path.join(root, "val");
  oodDir = path.join(root, "ood");
  const ids = await makeImages(Array.from({ length: COUNT.id }, (_, i) => ({ colour: ["red", "green", "blue"][i % 3]!, texture: "striped" as const })), 301);
  for (const img of ids) {
    const to = path.join(idDir, img.colour);
    await mkdir(to, { recursive: true });
    await copyFile(img.file, path.join(to, path.basename(img.file)));
  }
  const oods = await makeImages(Array.from({ length: COUNT.ood }, (_, i) => ({ colour: ["yellow", "pink"][i % 2]!, texture: "plain" as const })), 302);
  await mkdir(oodDir);
  for (const img of oods) await copyFile(img.file, path.join(oodDir, path.basename(img.file)));
});

const common = (store: string) => ["--model", model, "--cache-dir", cache, "--store", store, "--threads", "1", "--batch-size", "4", "--quiet"];

async function trials(command: (store: string) => string[], expectRows: number, what: string, t: TestContext): Promise<void> {
  // Spread the kills over a typical run: time one uninterrupted run first.
  const full = await timedRun(command(path.join(await tempDir(), "timing.sqlite")));
  assert.equal(full.code, 0, `${what} runs to the end uninterrupted`);
  const results = [];
  // Two kills by time (start-up, mid-run) and two as soon as the store holds some rows (mid-write).
  const kills = (store: string) => [{ afterMs: Math.round(0.2 * full.ms) }, { afterMs: Math.round(0.7 * full.ms) }, { rows: 1, store }, { rows: Math.ceil(expectRows / 2), store }];
  for (let i = 0; i < 4; i++) {
    const store = path.join(await tempDir(), "s.sqlite");
    const r = await crashTrial(command(store), store, kills(store)[i]!);
    results.push(r);
    const where = `${what}, killed after ${r.killAfterMs} ms: ${JSON.stringify(r)}`;
    assert.equal(r.integrity, "ok", where);
    assert.equal(r.duplicates, 0, where);
    assert.equal(r.orphans, 0, where);
    assert.equal(r.rerunCode, 0, where);
    assert.equal(r.rowsAfterRerun, expectRows, where);
    assert.ok(r.rowsAfterKill <= expectRows, where);
  }
  // Kills land before the end of a run as long as they come before its measured duration.
  assert.ok(results.some((r) => r.killed), `${what}: no trial was killed before it finished`);
  t.diagnostic(`${what}: rows at the kill ${results.map((r) => `${r.rowsAfterKill}${r.killed ? "" : " (finished)"}`).join(", ")} of ${expectRows}`);
}

test("index killed with SIGKILL at four moments: the store stays intact and the rerun stores every image once", async (t) => {
  await trials((store) => ["index", idDir, oodDir, ...common(store)], COUNT.id + COUNT.ood, "index", t);
});

test("eval killed with SIGKILL at four moments: the store stays intact and the rerun completes", async (t) => {
  await trials((store) => ["eval", "--id", idDir, "--ood", `ood=${oodDir}`, "--methods", "mcm,energy", "--json", ...common(store)], COUNT.id + COUNT.ood, "eval", t);
});
