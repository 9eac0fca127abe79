/**
 * The HTTP API of docs/API.md against in-process servers on the generated model's world, where the
 * outcomes are known: red, green and blue are the classes, and yellow, pink, cyan and white images are
 * out of distribution (MCM scores them lower; detector.test.ts and eval.test.ts establish it). Reference
 * numbers come from the library run on the same model in this process, never through HTTP. Every
 * endpoint is called, with its errors and its limits; auth, CORS, the admission queue, timeouts and
 * graceful shutdown are checked on servers configured for them.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import sharp from "sharp";
import { ClipModel } from "../src/clip.js";
import { buildDetector } from "../src/ood/build.js";
import { predict } from "../src/ood/detector.js";
import type { Detector } from "../src/ood/detector.js";
import { startServer } from "../src/server/app.js";
import type { RunningServer, ServerOptions } from "../src/server/app.js";
import { embedWithStore, storeModelKey } from "../src/store/cached.js";
import { hashFile } from "../src/store/hash.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { loadClasses } from "../src/text/classes.js";
import { classify } from "../src/zeroshot.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";
import { runRowsChild } from "./support/rows-child.js";
import { assertError, call, connectionCounter, form, metricValue } from "./support/server-http.js";
import type { Reply } from "./support/server-http.js";
import type { DetectorSummary as Summary } from "../src/server/service.js";

const CLASSES = "red,green,blue";
const TEMPLATE = "a photo of a {}";
/** The main server's limits: small enough to hit with small requests, large enough for the rest. */
const LIMITS = { maxImages: 8, maxClasses: 10, maxPromptLength: 200, maxBodyBytes: 3_000_000, maxPixels: 1_000_000 };

interface TopItem {
  label: string;
  prob: number;
}
interface ItemError {
  input: string;
  error?: string;
}
interface ClassifyReply {
  model: string;
  results: (ItemError & { top?: TopItem[] })[];
}
interface DetectReply {
  model: string;
  method: string;
  threshold: number | null;
  results: (ItemError & { label?: string; score?: number; ood?: boolean | null; top?: TopItem[] })[];
}
interface EmbedReply {
  results: { input: string; kind: "image" | "text"; embedding: number[] }[];
}
interface SearchReply {
  results: { input: string; score: number; paths: string[]; thumbnail: string }[];
}
interface CalibrateReply {
  detector: Summary;
  threshold: { value: number; tpr: number; fpr: number | null; idCount: number; oodCount: number };
}
interface JobReply {
  job: string;
  status: string;
  progress: unknown;
  rows?: { method: string; ood: string; auroc: number; fpr95: number; n: { id: number; ood: number } }[];
  error?: unknown;
}

let lib: ClipModel;
let storeFile: string;
let modelDir: string;
let cacheDir: string;
/** The main server's only data root, and a folder beside it that no request may read. */
let root: string;
let outside: string;
let detectorsDir: string;
let main: RunningServer;
/** The world's images: a red and a yellow one, as files and bytes. */
let red: { file: string; data: Buffer };
let yellow: { file: string; data: Buffer };
let gallery: Record<string, string>;
let redCopy: string;
let libDetector: Detector;

const servers: RunningServer[] = [];
/** A server on the test model; closed after the tests unless a test closes it first. */
async function serve(o: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const s = await startServer({ model: modelDir, cacheDir, threads: 1, store: false, port: 0, ...o });
  servers.push(s);
  return s;
}

const b64 = (data: Buffer, name: string) => ({ name, data: data.toString("base64") });
const png = (p: { data: Buffer; file: string }, field = "image") => ({ field, name: path.basename(p.file), data: p.data });

async function libEmbedding(file: string): Promise<Float32Array> {
  for await (const r of lib.embedImages([file])) return r.embedding!;
  throw new Error(`no embedding for ${file}`);
}

before(async () => {
  modelDir = await makeModel();
  cacheDir = await tempDir();
  root = await tempDir("clip-ood-root-");
  outside = await tempDir("clip-ood-outside-");
  detectorsDir = path.join(await tempDir(), "detectors");
  lib = await ClipModel.load({ model: modelDir, cacheDir, threads: 1 });

  const place = async (colours: string[], seed: number, folder: (colour: string) => string) => {
    const imgs = await makeImages(colours.map((colour) => ({ colour, texture: "plain" as const })), seed);
    const out: Record<string, string> = {};
    for (const img of imgs) {
      const to = path.join(folder(img.colour), path.basename(img.file));
      await mkdir(path.dirname(to), { recursive: true });
      await copyFile(img.file, to);
      out[img.colour] = to;
    }
    return out;
  };
  const [r, y] = await makeImages([{ colour: "red", texture: "plain" }, { colour: "yellow", texture: "plain" }], 60);
  red = { file: r!.file, data: await readFile(r!.file) };
  yellow = { file: y!.file, data: await readFile(y!.file) };
  // ID set as class folders, OOD set as a flat folder, a gallery to index and search.
  await place(["red", "green", "blue", "red", "green", "blue"], 61, (c) => path.join(root, "val", c));
  await place(["yellow", "pink", "cyan", "white"], 62, () => path.join(root, "ood"));
  gallery = await place(["red", "green", "blue", "yellow"], 63, () => path.join(root, "gallery"));
  // Ways out of the data root: a file beside it, a link to its folder, a link to it inside an
  // otherwise harmless folder, and a list file naming it.
  const secret = (await place(["red"], 64, () => outside))["red"]!;
  await symlink(outside, path.join(root, "link"));
  await place(["red", "green"], 65, () => path.join(root, "trap"));
  await symlink(secret, path.join(root, "trap", "zz-secret.png"));
  await writeFile(path.join(root, "escape.txt"), `${path.relative(root, secret)}\n${path.join(root, "ood", "x.png")}\n`);

  // A copy of the red gallery image in a subfolder: one content under two paths.
  redCopy = path.join(root, "gallery", "zz-copy", "red.png");
  await mkdir(path.dirname(redCopy));
  await copyFile(gallery["red"]!, redCopy);
  // The store is filled by the library, as `clip-ood index` does (the gallery, recorded as indexed),
  // and as detect or eval do on the way (the ID set), before the server opens it.
  storeFile = path.join(await tempDir(), "store.sqlite");
  const store = SqliteStore.open(storeFile);
  const valFiles = (await readdir(path.join(root, "val"), { recursive: true })).filter((f) => f.endsWith(".png")).map((f) => path.join(root, "val", f));
  for await (const e of embedWithStore(lib, store, [...Object.values(gallery), redCopy, ...valFiles])) assert.ok(e.embedding, `stored ${e.input}`);
  await store.addIndexedRoots(await storeModelKey(lib), [{ path: path.join(root, "gallery"), folder: true }]);
  await store.close();

  libDetector = await buildDetector(lib, { method: "mcm", classes: await loadClasses(CLASSES), templates: [TEMPLATE] });
  main = await serve({ store: storeFile, dataRoots: [root], detectorsDir, limits: LIMITS });
});

after(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  await lib.close();
});

const post = <T>(s: RunningServer, route: string, json: unknown, headers?: Record<string, string>) => call<T>(s.url, route, { json, ...(headers ? { headers } : {}) });
const postForm = <T>(s: RunningServer, route: string, f: FormData) => call<T>(s.url, route, { form: f });

function assertOk(r: Reply, status = 200): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text.slice(0, 500)}`);
}

function assertTop(top: TopItem[] | undefined, n: number, what: string): TopItem[] {
  assert.ok(top && top.length === n, `${what}: ${n} classes in top, got ${JSON.stringify(top)}`);
  for (let i = 1; i < n; i++) assert.ok(top[i - 1]!.prob >= top[i]!.prob, `${what}: top is sorted best first`);
  return top;
}

// --- inference ----------------------------------------------------------------------------------------

test("classify: multipart and JSON base64 give the library's probabilities, red first for the red image", async () => {
  const viaForm = await postForm<ClassifyReply>(main, "/v1/classify", form({ classes: CLASSES, templates: TEMPLATE, top: "2" }, [png(red), png(yellow)]));
  assertOk(viaForm);
  const viaJson = await post<ClassifyReply>(main, "/v1/classify", { images: [b64(red.data, path.basename(red.file)), b64(yellow.data, path.basename(yellow.file))], classes: ["red", "green", "blue"], templates: TEMPLATE, top: 2 });
  assertOk(viaJson);
  assert.deepEqual(viaJson.body, viaForm.body, "both encodings give the same answer");

  const [first, second] = viaForm.body.results;
  assert.equal(first!.input, path.basename(red.file), "results carry the uploaded file name");
  assert.equal(assertTop(first!.top, 2, "red")[0]!.label, "red");
  assertTop(second!.top, 2, "yellow");
  // Reference: the library's zero-shot classification of the same file.
  const expected = classify(await libEmbedding(red.file), libDetector.classFeatures, 2);
  first!.top!.forEach((t, i) => {
    assert.equal(t.label, expected[i]!.label);
    assert.ok(Math.abs(t.prob - expected[i]!.prob) < 1e-6, `prob of ${t.label}: ${t.prob} vs the library's ${expected[i]!.prob}`);
  });
  assert.ok(viaForm.body.model.length > 0, "the answer names the model");
});

test("detect: a method built per request with a threshold labels red in distribution and yellow OOD", async () => {
  // Reference: the library's MCM scores; the threshold lies halfway between them.
  const redScore = predict(libDetector, await libEmbedding(red.file)).score;
  const yellowScore = predict(libDetector, await libEmbedding(yellow.file)).score;
  assert.ok(redScore > yellowScore, `MCM scores red (${redScore}) above yellow (${yellowScore})`);
  const threshold = (redScore + yellowScore) / 2;

  const r = await postForm<DetectReply>(main, "/v1/detect", form({ classes: CLASSES, templates: TEMPLATE, method: "mcm", threshold: String(threshold) }, [png(red), png(yellow)]));
  assertOk(r);
  assert.equal(r.body.method, "mcm");
  assert.equal(r.body.threshold, threshold);
  const [a, b] = r.body.results;
  assert.equal(a!.label, "red");
  assert.equal(a!.ood, false, "red is in distribution");
  assert.equal(b!.ood, true, "yellow is OOD");
  assert.ok(Math.abs(a!.score! - redScore) < 1e-6 && Math.abs(b!.score! - yellowScore) < 1e-6, `scores ${a!.score}, ${b!.score} are the library's`);
  for (const x of [a!, b!]) {
    const top = assertTop(x.top, 3, x.input);
    const sum = top.reduce((s, t) => s + t.prob, 0);
    assert.ok(Math.abs(sum - 1) < 1e-6, `top holds every class's probability (sum ${sum})`);
  }

  // No threshold anywhere: no verdict. Another method gives another score on the same images.
  const plain = await post<DetectReply>(main, "/v1/detect", { images: [b64(red.data, "r.png")], classes: CLASSES, templates: TEMPLATE, method: "energy" });
  assertOk(plain);
  assert.equal(plain.body.threshold, null);
  assert.equal(plain.body.method, "energy");
  assert.equal(plain.body.results[0]!.ood, null, "no threshold → ood null");
  assert.notEqual(plain.body.results[0]!.score, a!.score, "energy is not MCM");
  // Every method docs/API.md lists can be built per request.
  for (const method of ["mcm", "maxlogit", "energy", "entropy", "unknown", "neglabel", "glmcm"]) {
    const m = await post<DetectReply>(main, "/v1/detect", { images: [b64(red.data, "r.png")], classes: CLASSES, method });
    assertOk(m);
    assert.equal(m.body.method, method);
    assert.equal(typeof m.body.results[0]!.score, "number", `${method} scores the image`);
  }
});

test("embed: unit image and text embeddings; the text 'red' lies closest to the red image", async () => {
  const r = await postForm<EmbedReply>(main, "/v1/embed", form({ texts: JSON.stringify(["red", "yellow"]) }, [png(red), png(yellow)]));
  assertOk(r);
  assert.deepEqual(r.body.results.map((x) => x.kind), ["image", "image", "text", "text"]);
  for (const x of r.body.results) {
    const norm = Math.hypot(...x.embedding);
    assert.ok(Math.abs(norm - 1) < 1e-4, `${x.kind} ${x.input} has norm ${norm}`);
  }
  const dot = (u: number[], v: number[]) => u.reduce((s, x, i) => s + x * v[i]!, 0);
  const [redImg, yellowImg, redText, yellowText] = r.body.results.map((x) => x.embedding) as [number[], number[], number[], number[]];
  assert.ok(dot(redText, redImg) > dot(redText, yellowImg), "'red' is closer to the red image than to the yellow one");
  assert.ok(dot(yellowText, yellowImg) > dot(yellowText, redImg), "'yellow' is closer to the yellow image");
  // Reference: the library's embedding of the same file.
  const expected = await libEmbedding(red.file);
  assert.ok(redImg.every((x, i) => Math.abs(x - expected[i]!) < 1e-5), "the image embedding is the library's");

  // Repeated text fields work too, and texts alone need no image.
  const texts = await postForm<EmbedReply>(main, "/v1/embed", form({ text: ["red", "blue"] }));
  assertOk(texts);
  assert.deepEqual(texts.body.results.map((x) => x.input), ["red", "blue"]);
  assert.deepEqual(texts.body.results[0]!.embedding, redText, "a text embeds the same with or without images");
});

test("search: text 'red' ranks the indexed red image first; its thumbnail is a small JPEG; `in` is confined", async () => {
  const r = await post<SearchReply>(main, "/v1/search", { text: "red", top: 3 });
  assertOk(r);
  assert.equal(r.body.results.length, 3);
  assert.equal(r.body.results[0]!.input, gallery["red"], `the red image first: ${JSON.stringify(r.body.results)}`);
  assert.deepEqual(r.body.results[0]!.paths, [gallery["red"], redCopy], "one result for the red image and its copy, both paths listed");
  assert.ok(r.body.results[0]!.score > r.body.results[1]!.score, "ranked by score");
  // The ID set was stored on the way, not indexed: only "all" searches it too.
  const inVal = (results: SearchReply["results"]) => results.filter((x) => x.input.startsWith(path.join(root, "val") + path.sep)).length;
  assert.equal(inVal((await post<SearchReply>(main, "/v1/search", { text: "red", top: 50 })).body.results), 0);
  const all = await post<SearchReply>(main, "/v1/search", { text: "red", top: 50, all: true });
  assertOk(all);
  assert.equal(inVal(all.body.results), 6);
  assertError(await post(main, "/v1/search", { text: "red", all: "yes" }), 400, "USAGE");

  const thumb = await call(main.url, r.body.results[0]!.thumbnail);
  assertOk(thumb);
  assert.equal(thumb.headers.get("content-type"), "image/jpeg");
  assert.deepEqual([...thumb.raw.subarray(0, 3)], [0xff, 0xd8, 0xff], "JPEG magic bytes");
  const meta = await sharp(thumb.raw).metadata();
  assert.equal(meta.format, "jpeg");
  assert.ok(Math.max(meta.width!, meta.height!) <= 256, `thumbnail ${meta.width}×${meta.height} fits 256 px`);

  // A query image and arithmetic: the yellow gallery image looks most like the uploaded yellow one.
  const byImage = await postForm<SearchReply>(main, "/v1/search", form({ top: "1", add: ["yellow"], subtract: ["red"] }, [png(yellow)]));
  assertOk(byImage);
  assert.equal(byImage.body.results[0]!.input, gallery["yellow"]);

  const within = await post<SearchReply>(main, "/v1/search", { text: "red", in: "gallery" });
  assertOk(within);
  assert.equal(within.body.results.length, 4, "the whole gallery lies under `in`");
  for (const bad of [outside, "../" + path.basename(outside), "link", "/etc"]) {
    assertError(await post(main, "/v1/search", { text: "red", in: bad }), 404, "NOT_FOUND");
  }
  for (const bad of [path.join(outside, "x.png"), path.join(root, "link", "x.png"), path.join(root, "trap", "zz-secret.png"), path.join(root, "escape.txt"), path.join(root, "no-such.png")]) {
    assertError(await call(main.url, `/v1/thumbnail?path=${encodeURIComponent(bad)}`), 404, "NOT_FOUND");
  }
  assertError(await call(main.url, "/v1/thumbnail"), 400, "USAGE");
  // Any image inside a data root has one, indexed or not.
  assertOk(await call(main.url, `/v1/thumbnail?path=${encodeURIComponent("val/red/" + (await readdir(path.join(root, "val", "red")))[0]!)}`));
  assertError(await post(main, "/v1/search", { text: "red", top: 0 }), 400, "USAGE");
});

test("search: rows another process writes into the store reach the running server's next search, removals too", async () => {
  const paths = async () => (await post<SearchReply>(main, "/v1/search", { text: "red", top: 1 })).body.results[0]?.paths;
  assert.deepEqual(await paths(), [gallery["red"], redCopy], "the server's rows before");
  // Another copy of the red image, recorded by another process (as its clip-ood index would: the
  // content is known, so only its path is written).
  const late = path.join(root, "gallery", "zz-late", "red.png");
  await mkdir(path.dirname(late));
  await copyFile(gallery["red"]!, late);
  const s = await stat(late);
  await runRowsChild(storeFile, [{ record: [{ path: late, size: s.size, mtimeMs: s.mtimeMs, hash: await hashFile(late) }] }]);
  try {
    assert.deepEqual(await paths(), [gallery["red"], redCopy, late], "the new path is found");
    await runRowsChild(storeFile, [{ forget: [late] }]);
    assert.deepEqual(await paths(), [gallery["red"], redCopy], "a path forgotten by another process is gone, though its file is there");
  } finally {
    await rm(path.dirname(late), { recursive: true });
  }
});

// --- detectors ----------------------------------------------------------------------------------------

test("detectors: create, list, edit classes, calibrate (uploads and a server folder), detect by name, delete", async () => {
  const list0 = await call<{ detectors: Summary[] }>(main.url, "/v1/detectors");
  assertOk(list0);
  assert.deepEqual(list0.body.detectors, [], "a fresh detectors folder holds none");

  const created = await post<Summary>(main, "/v1/detectors", { name: "colours", classes: CLASSES, templates: [TEMPLATE] });
  assertOk(created, 201);
  assert.deepEqual({ ...created.body, model: "" }, { name: "colours", method: "mcm", classes: ["red", "green", "blue"], templates: [TEMPLATE], threshold: null, model: "" });
  assertError(await post(main, "/v1/detectors", { name: "colours", classes: "cat,dog" }), 409, "CONFLICT");
  for (const name of ["bad name", "../escape", "-leading", "x".repeat(65), ""]) {
    assertError(await post(main, "/v1/detectors", { name, classes: CLASSES }), 400, "USAGE");
  }
  assertError(await post(main, "/v1/detectors", { name: "nocls" }), 400, "USAGE");
  assertError(await post(main, "/v1/detectors", { name: "badmethod", classes: CLASSES, method: "knn" }), 400, "USAGE");

  const listed = await call<{ detectors: Summary[] }>(main.url, "/v1/detectors");
  assert.deepEqual(listed.body.detectors, [created.body]);
  const got = await call<Summary>(main.url, "/v1/detectors/colours");
  assert.deepEqual(got.body, created.body);

  const added = await post<Summary>(main, "/v1/detectors/colours/classes", { add: ["yellow"] });
  assertOk(added);
  assert.deepEqual(added.body.classes, ["red", "green", "blue", "yellow"]);
  const removed = await post<Summary>(main, "/v1/detectors/colours/classes", { remove: ["yellow"] });
  assertOk(removed);
  assert.deepEqual(removed.body.classes, ["red", "green", "blue"]);
  assert.equal(removed.body.warning, undefined, "three classes: no warning");
  // MCM over one class is a softmax of one value: every image would score 1. The summary says so (the CLI warns).
  const single = await post<Summary>(main, "/v1/detectors/colours/classes", { remove: ["green", "blue"] });
  assertOk(single);
  assert.match(single.body.warning ?? "", /mcm with one class \(red\) gives every input the same score.*maxlogit/);
  assert.match((await call<Summary>(main.url, "/v1/detectors/colours")).body.warning ?? "", /same score/, "GET shows it too");
  const restored = await post<Summary>(main, "/v1/detectors/colours/classes", { add: ["green", "blue"] });
  assert.deepEqual([restored.body.classes, restored.body.warning], [["red", "green", "blue"], undefined]);
  assertError(await post(main, "/v1/detectors/colours/classes", {}), 400, "USAGE");

  // Calibration from uploaded ID images: the threshold lies at or below their scores.
  const ids = await makeImages(["red", "green", "blue"].map((colour) => ({ colour, texture: "plain" as const })), 66);
  const parts = await Promise.all(ids.map(async (i) => ({ field: "id", name: path.basename(i.file), data: await readFile(i.file) })));
  const up = await postForm<CalibrateReply>(main, "/v1/detectors/colours/calibrate", form({ tpr: "0.95" }, parts));
  assertOk(up);
  assert.equal(up.body.threshold.idCount, 3);
  assert.equal(up.body.threshold.oodCount, 0);
  assert.equal(up.body.detector.threshold, up.body.threshold.value);
  // Reference: the library's MCM scores of the uploads, embedded as the server does, in one batch (a
  // batch of one can differ in the last float32 bits); at TPR ≥ 0.95 of 3 images all 3 must pass.
  const idScores: number[] = [];
  for await (const r of lib.embedImages(ids.map((i) => i.file))) idScores.push(predict(libDetector, r.embedding!).score);
  assert.ok(up.body.threshold.tpr >= 0.95, `achieved TPR ${up.body.threshold.tpr}`);
  assert.ok(up.body.threshold.value <= Math.min(...idScores) + 1e-9, `threshold ${up.body.threshold.value} passes every library ID score ${idScores}`);

  // Calibration from server folders, ID and OOD.
  const folder = await post<CalibrateReply>(main, "/v1/detectors/colours/calibrate", { id: { path: "val" }, ood: { path: path.join(root, "ood") } });
  assertOk(folder);
  assert.equal(folder.body.threshold.idCount, 6);
  assert.equal(folder.body.threshold.oodCount, 4);
  for (const bad of [{ path: outside }, { path: "link" }, { path: "trap" }, { path: "escape.txt" }]) {
    assertError(await post(main, "/v1/detectors/colours/calibrate", { id: bad }), 404, "NOT_FOUND");
  }
  assertError(await post(main, "/v1/detectors/colours/calibrate", { tpr: 0.9 }), 400, "USAGE");

  // The calibrated detector by name: the world's verdicts, with top, and its own threshold.
  const det = await postForm<DetectReply>(main, "/v1/detect", form({ detector: "colours" }, [png(red), png(yellow)]));
  assertOk(det);
  assert.equal(det.body.threshold, folder.body.threshold.value);
  assert.equal(det.body.results[0]!.label, "red");
  assert.deepEqual(det.body.results.map((x) => x.ood), [false, true], "red in distribution, yellow OOD");
  assertTop(det.body.results[0]!.top, 3, "detector top");
  assertError(await postForm(main, "/v1/detect", form({ detector: "nope" }, [png(red)])), 404, "NOT_FOUND");

  // Persistence: a new server on the same folder has what this one saved, and not what it deleted.
  assertOk(await post(main, "/v1/detectors", { name: "gone", classes: "red,blue", method: "energy" }), 201);
  const del = await call(main.url, "/v1/detectors/gone", { method: "DELETE" });
  assert.equal(del.status, 204, del.text);
  assertError(await call(main.url, "/v1/detectors/gone"), 404, "NOT_FOUND");
  assertError(await call(main.url, "/v1/detectors/gone", { method: "DELETE" }), 404, "NOT_FOUND");
  assertError(await post(main, "/v1/detectors/gone/classes", { add: ["x"] }), 404, "NOT_FOUND");
  assertError(await post(main, "/v1/detectors/gone/calibrate", { id: { path: "val" } }), 404, "NOT_FOUND");

  const next = await serve({ detectorsDir });
  const loaded = await call<{ detectors: Summary[] }>(next.url, "/v1/detectors");
  assert.deepEqual(loaded.body.detectors, [{ ...folder.body.detector }], "the calibrated detector is back, threshold included");
  await next.close();
});

// --- evaluation ---------------------------------------------------------------------------------------

async function waitForJob(s: RunningServer, id: string): Promise<JobReply> {
  const until = Date.now() + 60_000;
  for (;;) {
    const r = await call<JobReply>(s.url, `/v1/jobs/${id}`);
    assertOk(r);
    if (r.body.status === "done" || r.body.status === "failed") return r.body;
    assert.ok(Date.now() < until, `job ${id} still ${r.body.status} after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("eval: a job on server folders separates ID from OOD perfectly; its report is HTML", async () => {
  const started = await post<JobReply>(main, "/v1/eval", { id: "val", ood: { warm: "ood" }, methods: ["mcm"] });
  assertOk(started, 202);
  assert.equal(started.body.status, "queued");
  const done = await waitForJob(main, started.body.job);
  assert.equal(done.status, "done", JSON.stringify(done.error));
  assert.deepEqual(done.rows!.map((r) => `${r.method}/${r.ood}`), ["mcm/warm", "mcm/average"]);
  // Reference: eval.test.ts's perfect separation of these colours by MCM.
  assert.equal(done.rows![0]!.auroc, 1, JSON.stringify(done.rows![0]));
  assert.deepEqual(done.rows![0]!.n, { id: 6, ood: 4 });

  const report = await call(main.url, `/v1/jobs/${started.body.job}/report`);
  assertOk(report);
  assert.match(report.headers.get("content-type") ?? "", /text\/html/);
  assert.ok(report.text.includes("<html") && report.text.includes("mcm") && report.text.includes("warm"), "the report names the method and the set");

  assertError(await call(main.url, "/v1/jobs/no-such-job"), 404, "NOT_FOUND");
  assertError(await call(main.url, "/v1/jobs/no-such-job/report"), 404, "NOT_FOUND");
  assertError(await post(main, "/v1/eval", { id: "val", ood: { warm: "ood" }, methods: ["knn"] }), 400, "USAGE");
  assertError(await post(main, "/v1/eval", { id: "val" }), 400, "USAGE");
});

test("eval: a job of a server that stopped is not reported running by the server started after it, but a 404 saying why", async () => {
  const first = await serve({ store: false, dataRoots: [root] });
  const started = await post<JobReply>(first, "/v1/eval", { id: "val", ood: { warm: "ood" }, methods: ["mcm"] });
  assertOk(started, 202);
  await first.close();
  const restarted = await serve({ store: false, dataRoots: [root] });
  const gone = assertError(await call(restarted.url, `/v1/jobs/${started.body.job}`), 404, "NOT_FOUND");
  assert.match(gone.message, /without a PostgreSQL store, jobs live in the serve process that ran them and are forgotten when it stops/);
});

test("eval: sets outside the data roots are refused before anything is read", async () => {
  // Each escape: a path beside the root, ../ out of it, an absolute path, a link to a folder outside,
  // a folder whose link points outside, and a list file naming a file outside.
  const escapes = ["../" + path.basename(outside), `val/../../${path.basename(outside)}`, outside, "link", "trap", "escape.txt", "no-such-folder"];
  for (const bad of escapes) {
    assertError(await post(main, "/v1/eval", { id: bad, ood: { warm: "ood" }, classes: CLASSES }), 404, "NOT_FOUND");
    assertError(await post(main, "/v1/eval", { id: "val", ood: { warm: bad } }), 404, "NOT_FOUND");
  }
  const noRoots = await serve();
  assertError(await post(noRoots, "/v1/eval", { id: "val", ood: { warm: "ood" } }), 400, "USAGE");
  await noRoots.close();
});

// --- limits -------------------------------------------------------------------------------------------

test("limits: image count, class count, prompt length, body size and pixels are refused naming the limit", async () => {
  const many = Array.from({ length: LIMITS.maxImages + 1 }, (_, i) => b64(red.data, `r${i}.png`));
  assertError(await post(main, "/v1/classify", { images: many, classes: CLASSES }), 400, "LIMIT", "maxImages");
  const manyParts = Array.from({ length: LIMITS.maxImages + 1 }, () => png(red));
  assertError(await postForm(main, "/v1/detect", form({ classes: CLASSES }, manyParts)), 400, "LIMIT", "maxImages");

  const classes = Array.from({ length: LIMITS.maxClasses + 1 }, (_, i) => `class${i}`);
  assertError(await post(main, "/v1/classify", { images: [b64(red.data, "r.png")], classes }), 400, "LIMIT", "maxClasses");
  assertError(await post(main, "/v1/detectors", { name: "big", classes }), 400, "LIMIT", "maxClasses");

  const long = "r".repeat(LIMITS.maxPromptLength + 1);
  assertError(await post(main, "/v1/classify", { images: [b64(red.data, "r.png")], classes: ["red", long] }), 400, "LIMIT", "maxPromptLength");
  assertError(await post(main, "/v1/classify", { images: [b64(red.data, "r.png")], classes: CLASSES, templates: `${long} {}` }), 400, "LIMIT", "maxPromptLength");
  assertError(await post(main, "/v1/embed", { texts: [long] }), 400, "LIMIT", "maxPromptLength");
  assertError(await post(main, "/v1/search", { text: long }), 400, "LIMIT", "maxPromptLength");

  const big = Buffer.alloc(LIMITS.maxBodyBytes + 100_000, 7);
  assertError(await post(main, "/v1/classify", { images: [b64(big, "big.png")], classes: CLASSES }), 413, "LIMIT", "maxBodyBytes");
  assertError(await postForm(main, "/v1/classify", form({ classes: CLASSES }, [{ field: "image", name: "big.png", data: big }])), 413, "LIMIT", "maxBodyBytes");
  // Several parts each under the limit, together over it.
  const third = Buffer.alloc(Math.ceil(LIMITS.maxBodyBytes / 3) + 1000, 7);
  assertError(await postForm(main, "/v1/classify", form({ classes: CLASSES }, [0, 1, 2].map((i) => ({ field: "image", name: `p${i}.png`, data: third })))), 413, "LIMIT", "maxBodyBytes");

  // 3000×3000 = 9 M pixels against a limit of 1 M; a plain colour keeps the file tiny, so only the
  // pixel count can be at fault.
  const huge = await sharp({ create: { width: 3000, height: 3000, channels: 3, background: { r: 220, g: 30, b: 30 } } }).png().toBuffer();
  assert.ok(huge.length < LIMITS.maxBodyBytes / 10, `the huge PNG is small on the wire (${huge.length} bytes)`);
  assertError(await postForm(main, "/v1/classify", form({ classes: CLASSES }, [{ field: "image", name: "huge.png", data: huge }])), 413, "LIMIT", "maxPixels");
  assertError(await post(main, "/v1/detect", { images: [b64(huge, "huge.png")], classes: CLASSES }), 413, "LIMIT", "maxPixels");
  assertError(await post(main, "/v1/embed", { images: [b64(huge, "huge.png")] }), 413, "LIMIT", "maxPixels");

  // One bad image in a batch: the batch answers, that item carries its error.
  for (const [bad, fragment] of [[huge, /pixel/], [Buffer.from("not an image"), /./]] as const) {
    const r = await post<DetectReply>(main, "/v1/detect", { images: [b64(red.data, "good.png"), b64(bad, "bad.png")], classes: CLASSES });
    assertOk(r);
    assert.equal(r.body.results[0]!.label, "red");
    assert.equal(r.body.results[1]!.input, "bad.png");
    assert.match(r.body.results[1]!.error ?? "", fragment, `the bad item's error: ${JSON.stringify(r.body.results[1])}`);
    const c = await postForm<ClassifyReply>(main, "/v1/classify", form({ classes: CLASSES }, [{ field: "image", name: "bad.png", data: bad }, png(red)]));
    assertOk(c);
    assert.ok(c.body.results[0]!.error && !c.body.results[0]!.top, `classify: the bad item has an error: ${JSON.stringify(c.body.results[0])}`);
    assert.equal(c.body.results[1]!.top?.[0]?.label, "red");
  }
});

// --- bad requests -------------------------------------------------------------------------------------

test("bad requests: missing or malformed fields are 400 with a code; unknown routes 404 JSON", async () => {
  assertError(await post(main, "/v1/classify", { classes: CLASSES }), 400, "USAGE");
  assertError(await postForm(main, "/v1/detect", form({ classes: CLASSES })), 400, "USAGE");
  assertError(await post(main, "/v1/classify", { images: [], classes: CLASSES }), 400, "USAGE");
  assertError(await post(main, "/v1/embed", {}), 400, "USAGE");
  for (const classes of ["", [], "  "]) assertError(await post(main, "/v1/classify", { images: [b64(red.data, "r.png")], classes }), 400, "CLASSES");
  assertError(await post(main, "/v1/detect", { images: [b64(red.data, "r.png")] }), 400, "CLASSES");
  assertError(await post(main, "/v1/detect", { images: [b64(red.data, "r.png")], classes: CLASSES, method: "sorcery" }), 400, "USAGE");
  assertError(await post(main, "/v1/detect", { images: [b64(red.data, "r.png")], classes: CLASSES, threshold: "high" }), 400, "USAGE");
  assertError(await post(main, "/v1/classify", { images: [b64(red.data, "r.png")], classes: CLASSES, top: 0 }), 400, "USAGE");
  assertError(await post(main, "/v1/classify", { images: [{ name: "x.png", data: "%%% not base64 %%%" }], classes: CLASSES }), 400, "USAGE");
  assertError(await post(main, "/v1/classify", { images: "r.png", classes: CLASSES }), 400, "USAGE");
  assertError(await post(main, "/v1/classify", { images: [b64(Buffer.from("not an image"), "x.png")], classes: CLASSES }), 400, "IMAGE");
  assertError(await call(main.url, "/v1/classify", { body: '{"images": [', headers: { "content-type": "application/json" } }), 400, "USAGE");
  assertError(await call(main.url, "/v1/classify", { body: "[1, 2]", headers: { "content-type": "application/json" } }), 400, "USAGE");
  // Malformed multipart: no boundary, or a body cut short inside a part.
  assertError(await call(main.url, "/v1/classify", { body: "abc", headers: { "content-type": "multipart/form-data" } }), 400, "USAGE");
  const cut = '--XX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc';
  assertError(await call(main.url, "/v1/classify", { body: cut, headers: { "content-type": "multipart/form-data; boundary=XX" } }), 400, "USAGE");

  const e = assertError(await call(main.url, "/v1/no-such-thing"), 404, "NOT_FOUND");
  assert.match(e.message, /no-such-thing/);
  assertError(await call(main.url, "/v1/classify"), 404, "NOT_FOUND");
});

test("URLs given as images are refused and never fetched", async () => {
  const counter = await connectionCounter();
  try {
    const sent = [
      { images: [{ name: "r.png", data: counter.url }] },
      { images: [counter.url] },
      { images: [{ name: "r.png", url: counter.url }] },
    ];
    for (const body of sent) assertError(await post(main, "/v1/classify", { ...body, classes: CLASSES }), 400, "USAGE");
    assertError(await postForm(main, "/v1/classify", form({ classes: CLASSES, image: counter.url })), 400, "USAGE");
    // A URL as an image's name is only a name.
    const named = await post<ClassifyReply>(main, "/v1/classify", { images: [b64(red.data, counter.url)], classes: CLASSES });
    assertOk(named);
    assert.equal(named.body.results[0]!.input, counter.url);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(counter.connections(), 0, "the server opened no connection to the URL");
  } finally {
    await counter.close();
  }
});

// --- auth and CORS ------------------------------------------------------------------------------------

test("auth: /v1/ needs the key (Bearer or X-API-Key); health, readiness and the UI do not", async () => {
  const key = "s3cret-key";
  const s = await serve({ apiKey: key, cors: ["https://ui.example"] });
  const wrong: Record<string, string>[] = [{}, { authorization: "Bearer wrong" }, { "x-api-key": "wrong" }, { authorization: key }, { authorization: `Basic ${key}` }];
  for (const headers of wrong) {
    const r = await call(s.url, "/v1/detectors", { headers });
    assertError(r, 401, "AUTH");
    assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer/, "401 carries www-authenticate");
  }
  assertError(await post(s, "/v1/classify", { images: [b64(red.data, "r.png")], classes: CLASSES }), 401, "AUTH");
  // Spellings of /v1/ that route to the same handlers must not slip past the key.
  for (const route of ["/%761/detectors", "/%76%31/detectors", "/v1/%64etectors", "/v1//detectors", "/V1/detectors"]) {
    const r = await call(s.url, route);
    assert.ok(r.status === 401 || r.status === 404, `${route} without a key: 401 or 404, got ${r.status} ${r.text.slice(0, 200)}`);
  }
  assertOk(await call(s.url, "/v1/detectors", { headers: { authorization: `Bearer ${key}` } }));
  assertOk(await call(s.url, "/v1/detectors", { headers: { "x-api-key": key } }));
  const classified = await post<ClassifyReply>(s, "/v1/classify", { images: [b64(red.data, "r.png")], classes: CLASSES }, { authorization: `Bearer ${key}` });
  assertOk(classified);
  assert.equal(classified.body.results[0]!.top![0]!.label, "red");
  for (const route of ["/healthz", "/readyz", "/", "/metrics", "/openapi.json"]) {
    const r = await call(s.url, route);
    assert.notEqual(r.status, 401, `${route} needs no key`);
  }
  assertOk(await call(s.url, "/healthz"));
  assertOk(await call(s.url, "/readyz"));

  // CORS on for the listed origin only; preflights carry no key and must not be refused for it.
  const origin = "https://ui.example";
  const allowed = await call(s.url, "/healthz", { headers: { origin } });
  assert.equal(allowed.headers.get("access-control-allow-origin"), origin);
  const other = await call(s.url, "/healthz", { headers: { origin: "https://evil.example" } });
  assert.equal(other.headers.get("access-control-allow-origin"), null, "another origin is not allowed");
  const preflight = await call(s.url, "/v1/classify", { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" } });
  assert.ok(preflight.status >= 200 && preflight.status < 300, `preflight answered ${preflight.status}: ${preflight.text}`);
  assert.equal(preflight.headers.get("access-control-allow-origin"), origin);
});

test("CORS is off by default", async () => {
  const r = await call(main.url, "/v1/detectors", { headers: { origin: "https://ui.example" } });
  assertOk(r);
  assert.equal(r.headers.get("access-control-allow-origin"), null, "no allow-origin without --cors");
});

// --- admission, timeouts and shutdown -----------------------------------------------------------------

// The time limit catches a close() that waits out the 72 s keep-alive of a connection busy when it began.
test("queue: a saturated server refuses with 503 BUSY and Retry-After while /healthz still answers; shutdown is graceful", { timeout: 30_000 }, async () => {
  const s = await serve({ limits: { concurrency: 1, maxQueue: 1 } });
  const batch = () => form({ classes: CLASSES }, Array.from({ length: 48 }, () => png(red)));
  let busy: Reply | undefined;
  // A few rounds at most: a round whose requests all fit in (one running, one waiting) proves nothing.
  for (let round = 0; round < 3 && !busy; round++) {
    const pending = Array.from({ length: 6 }, () => postForm(s, "/v1/detect", batch()));
    const health = await call<{ status: string }>(s.url, "/healthz");
    assertOk(health);
    assert.deepEqual(health.body, { status: "ok" });
    const replies = await Promise.all(pending);
    for (const r of replies) assert.ok(r.status === 200 || r.status === 503, `200 or 503, got ${r.status}: ${r.text.slice(0, 200)}`);
    assert.ok(replies.some((r) => r.status === 200), "the running request completes");
    busy = replies.find((r) => r.status === 503);
  }
  assert.ok(busy, "6 concurrent requests against concurrency 1 + queue 1 get a 503");
  assertError(busy, 503, "BUSY");
  assert.match(busy.headers.get("retry-after") ?? "", /^[1-9]\d*$/, "503 carries Retry-After in seconds");

  // Graceful shutdown: a request running when close() is called still completes.
  const slow = postForm<DetectReply>(s, "/v1/detect", batch());
  const until = Date.now() + 10_000;
  while (metricValue((await call(s.url, "/metrics")).text, "clip_ood_inference_active") !== 1) {
    assert.ok(Date.now() < until, "the slow request reached inference");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const closing = s.close();
  const r = await slow;
  assertOk(r);
  assert.equal(r.body.results.length, 48);
  await closing;
  const afterClose = await call(s.url, "/healthz").then(
    (x) => x.status,
    () => "refused",
  );
  assert.ok(afterClose === "refused" || afterClose === 503, `after close: refused or 503, got ${afterClose}`);
});

test("timeout: a request over requestTimeoutMs is answered 504 TIMEOUT", async () => {
  const s = await serve({ limits: { requestTimeoutMs: 1 } });
  assertError(await post(s, "/v1/detect", { images: [b64(red.data, "r.png")], classes: CLASSES }), 504, "TIMEOUT");
  assertOk(await call(s.url, "/healthz"));
  await s.close();
});

// --- operations ---------------------------------------------------------------------------------------

test("operations: /readyz, /metrics and /openapi.json", async () => {
  const ready = await call<{ status: string; model: string }>(main.url, "/readyz");
  assertOk(ready);
  assert.equal(ready.body.status, "ready");
  assert.ok(ready.body.model.length > 0, "readyz names the model");

  assertOk(await post(main, "/v1/classify", { images: [b64(red.data, "r.png")], classes: CLASSES }));
  const m = await call(main.url, "/metrics");
  assertOk(m);
  assert.match(m.headers.get("content-type") ?? "", /^text\/plain/);
  const classified = metricValue(m.text, "clip_ood_http_requests_total", { route: "/v1/classify", method: "POST", status: "200" });
  assert.ok(classified !== undefined && classified >= 1, `requests to /v1/classify are counted: ${classified}`);
  const refused = metricValue(m.text, "clip_ood_http_requests_total", { route: "/v1/classify", status: "400" });
  assert.ok(refused !== undefined && refused >= 1, `refusals are counted by status: ${refused}`);
  const embedded = metricValue(m.text, "clip_ood_images_embedded_total");
  assert.ok(embedded !== undefined && embedded > 0, `images embedded: ${embedded}`);
  assert.ok(metricValue(m.text, "clip_ood_http_request_duration_seconds_count", { route: "/v1/classify" })! >= 1, "latency is observed per route");
  assert.equal(metricValue(m.text, "clip_ood_inference_queue_depth"), 0, "nothing waits now");

  const api = await call<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(main.url, "/openapi.json");
  assertOk(api);
  assert.match(api.body.openapi, /^3\./, "an OpenAPI 3 document");
  // Every endpoint docs/API.md names under /v1/, with its method.
  const doc = await readFile(new URL("../docs/API.md", import.meta.url), "utf8");
  const documented = [...doc.matchAll(/`(GET|POST|DELETE|PUT|PATCH) (\/v1\/[^`?\s]*)/g)].map((x) => [x[1]!.toLowerCase(), x[2]!.replace(/:(\w+)/g, "{$1}")] as const);
  assert.ok(documented.length >= 12, `docs/API.md lists the endpoints (${documented.length} found)`);
  for (const [method, p] of documented) assert.ok(api.body.paths[p]?.[method], `openapi.json has ${method.toUpperCase()} ${p}`);
});
