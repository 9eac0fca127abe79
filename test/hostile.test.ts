/**
 * Reliability under hostile inputs: the generated corpus of test/support/hostile-corpus.ts (damaged, huge,
 * odd, misnamed, looping and unreadable files) pushed through the library, the built CLI and the HTTP
 * server. Nothing may crash or hang; every bad input gets an error naming it; the rest completes. The
 * expected outcome of each file is fixed by how it was made (a PNG cut in half is corrupt, a 16-bit PNG
 * is valid), not by running the code.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, symlink } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { ClipModel } from "../src/clip.js";
import type { ImageEmbeddingResult } from "../src/clip.js";
import { isClipOodError } from "../src/errors.js";
import { startServer } from "../src/server/app.js";
import type { RunningServer } from "../src/server/app.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { classify } from "../src/zeroshot.js";
import { jsonLines, runCli } from "./support/cli.js";
import type { CliResult } from "./support/cli.js";
import { writeHostileCorpus } from "./support/hostile-corpus.js";
import type { CorpusFile, HostileCorpus } from "./support/hostile-corpus.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";
import { call, form } from "./support/server-http.js";

const CLASSES = "red,green,blue";
/** Generous for a few dozen tiny images on one thread; a hang shows up as this test failing. */
const CLI_TIMEOUT = { timeout: 60_000 };

let modelDir: string;
let cache: string;
let corpus: HostileCorpus;
let good: string[];
let model: ClipModel;
const warnings: string[] = [];

before(async () => {
  modelDir = await makeModel();
  cache = await tempDir();
  corpus = await writeHostileCorpus(await tempDir());
  good = (await makeImages([{ colour: "red", texture: "plain" }, { colour: "blue", texture: "striped" }])).map((i) => i.file);
  model = await ClipModel.load({ model: modelDir, cacheDir: cache, threads: 1, onWarning: (m) => warnings.push(m) });
});

after(async () => {
  await model?.close();
});

/** Every file a run over [corpus folder, loose files] must answer for, in that run's order. */
const answered = (): CorpusFile[] => [...corpus.listed, ...corpus.loose];

/** Checks one outcome against its file's expectation; `error` is the message, or undefined for success. */
function checkOutcome(f: CorpusFile, error: string | undefined, where: string): void {
  const what = `${where}: ${JSON.stringify(f.file)} (${f.why})`;
  if (f.expect === "ok") assert.equal(error, undefined, `${what} should succeed`);
  if (f.expect === "error") assert.ok(error !== undefined, `${what} should fail`);
  if (error === undefined) return;
  assert.ok(error.includes(f.file), `${what}: the error names the file: ${error}`);
  if (f.expect === "error" && f.message) assert.match(error, f.message, `${what}: the error says why`);
}

// ---------------------------------------------------------------------------------------------------------
// The library

test("library: embedImages yields one result per input, in order, errors as IMAGE naming the file", async (t) => {
  if (!corpus.unreadable) t.diagnostic("running as root: mode 000 denies no reads, so the unreadable-file case is left out");
  const inputs = [...answered(), ...corpus.unusable];
  const results: ImageEmbeddingResult[] = [];
  for await (const r of model.embedImages([...inputs.map((f) => f.file), corpus.folderNamedLikeImage, ...good])) results.push(r);
  assert.equal(results.length, inputs.length + 1 + good.length, "one result per input");
  inputs.forEach((f, i) => {
    const r = results[i]!;
    assert.equal(r.input, f.file, "results come in input order");
    if (r.error) {
      assert.ok(isClipOodError(r.error), `${f.file}: a ClipOodError`);
      assert.equal(r.error.code, "IMAGE", `${f.file}: code IMAGE`);
      assert.equal(r.embedding, null, `${f.file}: no embedding beside an error`);
    } else {
      assert.ok(r.embedding && r.embedding.every(Number.isFinite), `${f.file}: a finite embedding`);
    }
    checkOutcome(f, r.error?.message, "library");
  });
  const folder = results[inputs.length]!;
  assert.match(folder.error?.message ?? "", /x\.jpg: is a folder, not an image file/, "a folder named like an image is refused as a folder");
  for (const r of results.slice(inputs.length + 1)) assert.ok(r.embedding, `the good image ${r.input} still embeds after the bad ones`);
});

test("named pipes and devices among the images: refused by name, never read (a read would block or never end)", CLI_TIMEOUT, async () => {
  const dir = await tempDir();
  const pipe = path.join(dir, "pipe.png");
  assert.equal(spawnSync("mkfifo", [pipe]).status, 0, "mkfifo");
  const device = path.join(dir, "zero.jpg");
  await symlink("/dev/zero", device);
  const results: ImageEmbeddingResult[] = [];
  for await (const r of model.embedImages([good[0]!, pipe, device, good[1]!])) results.push(r);
  assert.deepEqual(results.map((r) => r.embedding !== null), [true, false, false, true], "the good images are embedded");
  for (const r of results.slice(1, 3)) {
    assert.ok(isClipOodError(r.error) && r.error.code === "IMAGE", `${r.input}: an IMAGE error`);
    assert.match(r.error.message, new RegExp(`${escape(r.input)}.*not a regular file \\(a device, pipe or socket\\)`));
  }
  const cli = await runCli(["detect", good[0]!, pipe, device, "--classes", CLASSES, "--json", "--model", modelDir, "--cache-dir", cache, "--no-store"]);
  assert.equal(cli.code, 1, cli.stderr);
  for (const f of [pipe, device]) assert.match(cli.stderr, new RegExp(`skipped ${escape(f)}: not a regular file`));
  const rows = new Map(jsonLines(cli.stdout).map((r) => [r["input"], r["error"] === undefined]));
  assert.deepEqual([rows.size, rows.get(pipe), rows.get(device), rows.get(good[0]!)], [3, false, false, true], "one row per input, errors for the two");
});

test("library: a 10,000-character prompt is warned about and cut to CLIP's 77 tokens; control characters are harmless", async () => {
  const long = "a photo of a " + "very ".repeat(2000) + "red thing";
  assert.ok(long.length > 10_000, "the prompt is over 10,000 characters");
  const before = warnings.length;
  const m = await model.embedTexts([long, "red\u0000\u0007\u001b[31m\r\n\t\u202e\ufeffgreen", "\u0000\u0000"]);
  const said = warnings.slice(before);
  assert.equal(said.length, 1, `one warning, for the long prompt only: ${JSON.stringify(said)}`);
  assert.match(said[0]!, /prompt cut to 77 tokens/, "the warning gives the limit");
  assert.equal(m.rows, 3, "one embedding per prompt");
  for (let r = 0; r < m.rows; r++) {
    const row = m.data.subarray(r * m.cols, (r + 1) * m.cols);
    assert.ok(row.every(Number.isFinite), `prompt ${r}: a finite embedding`);
    assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-4, `prompt ${r}: unit norm`);
  }
});

test("library: 10,000 classes complete", { timeout: 120_000 }, async () => {
  const classes = Array.from({ length: 10_000 }, (_, i) => ({ label: `class ${i}`, names: [`class ${i}`], descriptions: [] }));
  const features = await model.classFeatures(classes, ["a photo of a {}"]);
  assert.equal(features.matrix.rows, 10_000, "one feature row per class");
  for await (const r of model.embedImages(good)) {
    assert.ok(r.embedding, `${r.input} embeds`);
    const top = classify(r.embedding, features, 5);
    assert.equal(top.length, 5, "top-5 over 10,000 classes");
    assert.ok(top.every((t) => Number.isFinite(t.prob) && t.prob >= 0), "probabilities are finite");
  }
});

// ---------------------------------------------------------------------------------------------------------
// The CLI (built dist/)

const common = () => ["--model", modelDir, "--cache-dir", cache, "--threads", "1", "--quiet"];
const corpusArgs = () => [corpus.dir, ...corpus.loose.map((f) => f.file), ...good];

/** The checks every image command shares: exit 1, valid JSON Lines, a row per input, stderr naming each bad one. */
function checkCliRun(r: CliResult, where: string, resultKey: string): void {
  assert.equal(r.code, 1, `${where}: exit 1 when some inputs fail: ${r.stderr.slice(-2000)}`);
  assert.doesNotMatch(r.stderr, /TypeError|RangeError|at .*\.js:\d+/, `${where}: no stack trace on stderr`);
  const rows = jsonLines(r.stdout); // throws on an invalid line: names with newlines must be escaped
  // Inputs that cannot even be listed (the link loop) come first, then every image in input order.
  const expected = [...corpus.unusable.map((u) => u.file), ...answered().map((f) => f.file), ...good];
  assert.deepEqual(rows.map((x) => x["input"]), expected, `${where}: one JSON line per input, in order`);
  for (const u of corpus.unusable) assert.match(String(rows.find((x) => x["input"] === u.file)?.["error"]), /symbolic link/, `${where}: ${u.file} has an error row`);
  for (const f of answered()) {
    const row = rows.find((x) => x["input"] === f.file)!;
    const error = typeof row["error"] === "string" ? row["error"] : undefined;
    if (error === undefined) assert.ok(row[resultKey] !== undefined, `${where}: ${f.file} has a result`);
    checkOutcome(f, error, where);
    if (error !== undefined) assert.ok(r.stderr.includes(f.file), `${where}: stderr names ${f.file}`);
  }
  for (const g of good) assert.ok(rows.find((x) => x["input"] === g)?.[resultKey] !== undefined, `${where}: good image ${g} has a result`);
  // …and is named on stderr too.
  for (const u of corpus.unusable) assert.match(r.stderr, new RegExp(`skipped ${escape(u.file)}: .*symbolic link`), `${where}: stderr reports ${u.file}`);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

test("CLI: classify --json over the corpus", CLI_TIMEOUT, async () => {
  const r = await runCli(["classify", ...corpusArgs(), "--classes", CLASSES, "--json", "--no-store", ...common()]);
  checkCliRun(r, "classify", "top");
  assert.match(r.stderr, /inputs could not be processed/, "a summary of the failures");
});

test("CLI: detect and index with a store stay consistent, and a rerun reports the bad files again", CLI_TIMEOUT, async () => {
  const store = path.join(await tempDir(), "store.sqlite");
  const detect = await runCli(["detect", ...corpusArgs(), "--classes", CLASSES, "--json", "--store", store, ...common()]);
  checkCliRun(detect, "detect", "score");

  for (const run of [1, 2]) {
    const r = await runCli(["index", ...corpusArgs(), "--json", "--store", store, ...common()]);
    assert.equal(r.code, 1, `index run ${run}: exit 1: ${r.stderr.slice(-2000)}`);
    const summary = jsonLines(r.stdout)[0]!;
    for (const f of answered().filter((x) => x.expect === "error")) assert.ok(r.stderr.includes(f.file), `index run ${run}: stderr names ${f.file}`);
    const db = SqliteStore.open(store, { readonly: true });
    const stored = new Set((await db.paths()).map((p) => p.path));
    await db.close();
    for (const f of answered()) {
      if (f.expect === "ok") assert.ok(stored.has(f.file), `index run ${run}: ${f.file} is in the store`);
      if (f.expect === "error") assert.ok(!stored.has(f.file), `index run ${run}: the bad ${f.file} is not in the store`);
    }
    for (const g of good) assert.ok(stored.has(g), `index run ${run}: the good image ${g} is in the store`);
    assert.equal(summary["files"], answered().length + good.length, `index run ${run}: every listed file counted`);
    assert.equal((summary["failed"] as number) + (summary["embedded"] as number) + (summary["alreadyStored"] as number), answered().length + good.length + corpus.unusable.length, `index run ${run}: each file embedded, stored or failed`);
    if (run === 2) assert.equal(summary["embedded"], 0, "the rerun embeds nothing new: the store was left consistent");
  }
});

// ---------------------------------------------------------------------------------------------------------
// The HTTP server

let server: RunningServer | undefined;
after(async () => {
  await server?.close();
});

test("server: POST /v1/classify with each corpus file: 200, 400 IMAGE naming it, or 413 maxPixels; never 500", CLI_TIMEOUT, async () => {
  const s = await startServer({ model: modelDir, cacheDir: cache, threads: 1, store: false, port: 0, limits: { maxPixels: 1_000_000 } });
  server = s;
  // Uploads are bytes: a file this process cannot read has no counterpart over HTTP.
  for (const f of answered().filter((x) => x !== corpus.unreadable)) {
    const name = path.basename(f.file);
    const r = await call<{ results: { input: string; top?: unknown; error?: string }[]; error?: { code: string; message: string; limit?: string } }>(s.url, "/v1/classify", {
      form: form({ classes: CLASSES }, [{ field: "image", name, data: await readFile(f.file) }]),
    });
    const what = `${name} (${f.why}): ${r.status} ${r.text.slice(0, 300)}`;
    assert.ok(r.status < 500, `never a 5xx: ${what}`);
    assert.ok(r.body !== undefined, `a JSON body: ${what}`);
    if (f.file === corpus.bombs.png || f.file === corpus.bombs.jpeg) {
      assert.equal(r.status, 413, `a bomb header is refused as too large: ${what}`);
      assert.equal(r.body.error?.limit, "maxPixels", `the limit is named: ${what}`);
      continue;
    }
    if (r.status === 413) {
      // A flipped bit can land in a header's width or height, making a legitimately oversized image.
      assert.ok(f.expect === "any", `only a damaged header may be oversized: ${what}`);
      assert.equal(r.body.error?.limit, "maxPixels", `the limit is named: ${what}`);
      assert.ok(r.body.error?.message.includes(name), `the error names the file: ${what}`);
    } else if (r.status === 200) {
      assert.ok(f.expect !== "error", `a bad file must not succeed: ${what}`);
      assert.ok(r.body.results[0]?.top, `a result: ${what}`);
    } else {
      assert.equal(r.status, 400, `a client error: ${what}`);
      assert.equal(r.body.error?.code, "IMAGE", `code IMAGE: ${what}`);
      checkOutcome({ ...f, file: name }, r.body.error?.message, "server");
    }
  }
});

test("server: a request mixing good and bad images answers 200 with per-item errors", CLI_TIMEOUT, async () => {
  assert.ok(server, "the previous test started the server");
  const parts = [...corpus.listed.filter((f) => f.expect === "error" && f !== corpus.unreadable), ...corpus.loose];
  const files = [...parts.map((f) => ({ name: path.basename(f.file), data: f.file })), { name: "good.png", data: good[0]! }];
  const r = await call<{ results: { input: string; top?: unknown; error?: string }[] }>(server.url, "/v1/classify", {
    form: form({ classes: CLASSES }, await Promise.all(files.map(async (x) => ({ field: "image", name: x.name, data: await readFile(x.data) })))),
  });
  assert.equal(r.status, 200, `200 when one image succeeds: ${r.text.slice(0, 300)}`);
  assert.deepEqual(r.body.results.map((x) => x.input), files.map((x) => x.name), "one result per upload, in order");
  r.body.results.forEach((x, i) => {
    if (i < parts.length) assert.ok(x.error?.includes(files[i]!.name), `${files[i]!.name}: a per-item error naming it: ${x.error}`);
    else assert.ok(x.top, "the good image is classified");
  });
  const health = await call(server.url, "/healthz");
  assert.equal(health.status, 200, "the server is still up");
});
