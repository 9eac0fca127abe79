/**
 * A full disk under the store, the caches and the outputs — a real one: a small tmpfs in a private
 * mount namespace (test/support/disk-full.ts). What users rely on: a clear message naming the file and
 * the cause, exit codes that say it failed, nothing corrupted, nothing already stored lost, caches that
 * are only caches never stopping the work, and a rerun that completes once there is room.
 */
import assert from "node:assert/strict";
import { copyFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import { diskFullSkip, runOnSmallDisk } from "./support/disk-full.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";

let model: string;
let images: string;
let cache: string;
const COUNT = 48;

before(async () => {
  if (diskFullSkip) return;
  model = await makeModel();
  cache = await tempDir();
  images = await tempDir();
  const made = await makeImages(Array.from({ length: COUNT }, (_, i) => ({ colour: ["red", "green", "blue"][i % 3]!, texture: "striped" as const })), 811);
  for (const img of made) await copyFile(img.file, path.join(images, path.basename(img.file)));
});

// The child's observations, as JSON: each scenario's own shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Observed = Record<string, any>;

async function scenario(name: string, sizeKiB: number): Promise<Observed> {
  const r = await runOnSmallDisk(await tempDir(), sizeKiB, name, { model, images, cache });
  assert.equal(r.code, 0, `the ${name} scenario ran: ${r.stderr}`);
  return JSON.parse(r.stdout) as Observed;
}

const oneClearMessage = (stderr: string, what: RegExp) => {
  assert.match(stderr, what);
  assert.doesNotMatch(stderr, /unexpected error|\n\s+at /, "no stack trace");
};

test("index on a disk that fills up: a clear error, the store intact with what was committed, a rerun completes; search without room for its index still answers", { skip: diskFullSkip }, async () => {
  const r = await scenario("index", 1024);
  assert.notEqual(r.first.code, 0, "indexing onto a full disk does not report success");
  oneClearMessage(r.first.stderr, /cannot write the store .*(full|disk).*kept/i);
  assert.match(r.first.stderr, /hint: free some disk space/);
  assert.equal(r.afterFull.integrity, "ok", JSON.stringify(r.afterFull));
  assert.equal(r.afterFull.duplicates, 0);
  assert.equal(r.afterFull.orphans, 0);
  assert.ok(r.afterFull.rows < COUNT, `the disk filled before the end (${r.afterFull.rows} rows)`);
  assert.equal(r.rerun.code, 0, r.rerun.stderr);
  assert.deepEqual({ ...r.afterRerun }, { rows: COUNT, integrity: "ok", orphans: 0, duplicates: 0 });
  assert.equal(r.search.code, 0, r.search.stderr);
  assert.equal(r.search.lines, 10, "the search answers its top 10");
  assert.match(r.search.stderr, /warning: cannot write the ANN index .*used for this run only/);
});

test("detect and classify with the store and text cache on a full disk: every image answered, one warning each", { skip: diskFullSkip }, async () => {
  const r = await scenario("caches", 1024);
  for (const what of ["detectMidway", "detect", "classify"] as const) {
    assert.equal(r[what].code, 0, `${what}: ${r[what].stderr}`);
    assert.equal(r[what].lines, COUNT, `${what} answers for every image`);
    assert.doesNotMatch(r[what].stderr, /unexpected error|\n\s+at /, `${what}: no stack trace`);
  }
  assert.match(r.detectMidway.stderr, /warning: .*store\.sqlite: cannot write the store .*going on without storing embeddings/);
  assert.equal(r.stored.integrity, "ok", "the store that filled up is intact");
  // detect commits 64 images at a time: the one batch here did not fit, and was rolled back whole.
  assert.ok(r.stored.rows < COUNT, `the batch that did not fit is not half there (${r.stored.rows} rows)`);
  assert.equal(r.stored.orphans + r.stored.duplicates, 0);
  assert.match(r.detect.stderr, /warning: cannot open the store .*new\.sqlite.*going on without the embedding store/);
  assert.match(r.classify.stderr, /warning: cannot write the text-embedding cache .*going on without caching prompts/);
  assert.equal(r.classify.stderr.match(/text-embedding cache/g)?.length, 1, "the cache warning is said once");
});

test("outputs on a full disk: detector save refused leaving the old one loadable, embed --out and eval --report fail clearly, no partial files left", { skip: diskFullSkip }, async () => {
  const r = await scenario("outputs", 1024);
  assert.equal(r.fit.code, 0, r.fit.stderr);
  assert.equal(r.refit.code, 2, r.refit.stderr);
  oneClearMessage(r.refit.stderr, /cannot save detector .*det\.json.*(ENOSPC|no space)/i);
  assert.deepEqual(r.shown, { code: 0, classes: 2 }, "the detector saved before is still whole");
  for (const what of ["embed", "npy"] as const) {
    assert.equal(r[what].code, 2, `${what}: ${r[what].stderr}`);
    oneClearMessage(r[what].stderr, /the disk is full \(ENOSPC\)/);
  }
  assert.equal(r.report.code, 2, r.report.stderr);
  oneClearMessage(r.report.stderr, /cannot write the report .*r\.html: ENOSPC: no space left on device/);
  assert.match(r.report.stderr, /hint: .*the disk is not full/);
  assert.equal(r.report.lines, 2, "the metrics were printed before the report failed (the set and its average)");
  // Only the detector saved while there was room (and nothing half-written: no .part, no e.jsonl, e.npy or r.html).
  assert.deepEqual(r.files, ["det.json", "det.json.bin"], "no temporary or partial files");
});
