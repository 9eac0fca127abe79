/**
 * Discovery over HTTP (docs/API.md): `POST /v1/discover` jobs and `POST /v1/detectors/:name/discovered`
 * against an in-process server on the generated model's world. Red, green and blue are the known
 * classes; yellow and purple images are new colours that the world's words name. Reference results
 * come from the library (`discover`) run on the same model and images in this process, never through
 * HTTP; what the world makes certain (each new colour its own cluster, named by its word) is checked
 * on top.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { ClipModel } from "../src/clip.js";
import { discover } from "../src/discover/discover.js";
import type { DiscoveryResult } from "../src/discover/types.js";
import { readDataset } from "../src/eval/datasets.js";
import { buildDetector } from "../src/ood/build.js";
import { loadDetector, saveDetector } from "../src/ood/detector-file.js";
import { stackRows } from "../src/maths/vectors.js";
import { loadClasses } from "../src/text/classes.js";
import { startServer } from "../src/server/app.js";
import type { RunningServer, ServerOptions } from "../src/server/app.js";
import type { DetectorSummary as Summary } from "../src/server/service.js";
import { makeImages, makeModel, placeImages, tempDir } from "./support/model.js";
import type { WorldImage } from "./support/model.js";
import { assertError, call, form } from "./support/server-http.js";
import type { Reply } from "./support/server-http.js";

const TEMPLATE = "a photo of a {}";
/** Candidate names: the two new colours, a colour none of the images shows, a known class (left out by discovery), a thing. */
const VOCABULARY = ["yellow", "purple", "orange", "red", "cat"];

interface JobReply {
  job: string;
  kind?: string;
  status: string;
  progress: unknown;
  discovery?: DiscoveryResult;
  error?: { code: string; message: string; hint?: string };
}
interface AddReply {
  detector: Summary;
  added: { cluster: number; label: string; shots: number }[];
  warnings: string[];
  note: string;
}
interface DetectReply {
  results: { input: string; label?: string }[];
}

let lib: ClipModel;
let modelDir: string;
let cacheDir: string;
let root: string;
let detectorsDir: string;
let server: RunningServer;
/** The images to discover in: new colours (yellow, purple) and a known one (red), in `root/unknown`. */
let unknown: WorldImage[];
const servers: RunningServer[] = [];

async function serve(o: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const s = await startServer({ model: modelDir, cacheDir, threads: 1, store: false, port: 0, ...o });
  servers.push(s);
  return s;
}

const post = <T>(route: string, json: unknown, s = server) => call<T>(s.url, route, { json });

function assertOk(r: Reply, status = 200): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text.slice(0, 500)}`);
}

before(async () => {
  modelDir = await makeModel();
  cacheDir = await tempDir();
  root = await tempDir("clip-ood-root-");
  detectorsDir = path.join(await tempDir(), "detectors");
  lib = await ClipModel.load({ model: modelDir, cacheDir, threads: 1 });
  // Plain only: with textures mixed in, a k-means run on eight images may split them by texture.
  unknown = await makeImages(["yellow", "yellow", "yellow", "yellow", "purple", "purple", "purple", "purple", "red", "red"].map((colour) => ({ colour, texture: "plain" as const })), 71);
  await placeImages(unknown, () => path.join(root, "unknown"));
  const val = await makeImages(["red", "green", "blue", "red", "green", "blue"].map((colour) => ({ colour, texture: "plain" as const })), 72);
  await placeImages(val, (img) => path.join(root, "val", img.colour));
  server = await serve({ dataRoots: [root], detectorsDir });
  assertOk(await post("/v1/detectors", { name: "colours", classes: "red,green,blue", templates: [TEMPLATE] }), 201);
  assertOk(await post("/v1/detectors/colours/calibrate", { id: { path: "val" } }));
});

after(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  await lib.close();
});

async function waitForJob(id: string, s = server): Promise<JobReply> {
  const until = Date.now() + 120_000;
  for (;;) {
    const r = await call<JobReply>(s.url, `/v1/jobs/${id}`);
    assertOk(r);
    if (r.body.status === "done" || r.body.status === "failed") return r.body;
    assert.ok(Date.now() < until, `job ${id} still ${r.body.status} after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function discoveryJob(json: unknown, s = server): Promise<{ job: string; discovery: DiscoveryResult }> {
  const started = await post<JobReply>("/v1/discover", json, s);
  assertOk(started, 202);
  assert.equal(started.body.kind, "discover");
  assert.equal(started.body.status, "queued");
  const done = await waitForJob(started.body.job, s);
  assert.equal(done.status, "done", JSON.stringify(done.error));
  assert.ok(done.discovery, "a done discovery job holds its discovery");
  return { job: started.body.job, discovery: done.discovery };
}

/** The colour of an input (a file placed from `unknown`, or an uploaded file's name). */
function colourOf(input: string): string {
  const img = unknown.find((u) => path.basename(u.file) === path.basename(input));
  assert.ok(img, `${input} is one of the test's images`);
  return img.colour;
}

/** The world's certainties: one cluster per new colour, all its images and nothing else, named by its word first. */
function assertColourClusters(d: DiscoveryResult): Map<string, number> {
  const byColour = new Map<string, number>();
  assert.equal(d.clusters.length, 2, `two new clusters: ${JSON.stringify(d.clusters.map((c) => c.candidates))}`);
  for (const c of d.clusters) {
    const colours = new Set(c.members.map((m) => colourOf(m.input)));
    assert.equal(colours.size, 1, `cluster ${c.id} holds one colour: ${[...colours].join(", ")}`);
    const colour = [...colours][0]!;
    assert.equal(c.size, 4, `cluster ${c.id} holds all four ${colour} images`);
    assert.equal(c.candidates[0]?.name, colour, `cluster ${c.id} is named ${colour} first: ${JSON.stringify(c.candidates)}`);
    assert.ok(!c.candidates.some((n) => n.name === "red"), "a known class's name is never a candidate");
    byColour.set(colour, c.id);
  }
  assert.deepEqual([...byColour.keys()].sort(), ["purple", "yellow"]);
  return byColour;
}

/** Numbers equal to float32 rounding; everything else exactly. */
function assertClose(actual: unknown, expected: unknown, where = "discovery"): void {
  if (typeof expected === "number") {
    assert.equal(typeof actual, "number", where);
    assert.ok(Math.abs((actual as number) - expected) <= 1e-5 * Math.max(1, Math.abs(expected)), `${where}: ${String(actual)} vs the library's ${expected}`);
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual) && actual.length === expected.length, `${where}: ${JSON.stringify(actual)?.slice(0, 200)} vs ${JSON.stringify(expected).slice(0, 200)}`);
    expected.forEach((e, i) => assertClose((actual as unknown[])[i], e, `${where}[${i}]`));
  } else if (typeof expected === "object" && expected !== null) {
    assert.ok(typeof actual === "object" && actual !== null, where);
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `${where}: the same fields`);
    for (const [k, v] of Object.entries(expected)) assertClose((actual as Record<string, unknown>)[k], v, `${where}.${k}`);
  } else assert.equal(actual, expected, where);
}

test("discover: a job on a server folder with a server detector is the library's discovery; the new colours are clusters named by their words", async () => {
  const { discovery } = await discoveryJob({ path: "unknown", detector: "colours", seed: 3, vocabulary: VOCABULARY });
  // Reference: the library on the same files (in the set's order) and the detector the server saved.
  const files = (await readDataset(path.join(root, "unknown"))).images.map((i) => i.input);
  const detector = await loadDetector(path.join(detectorsDir, "colours.json"));
  const expected = await discover(lib, files, { detector, detectorFile: "colours", seed: 3, vocabulary: VOCABULARY, vocabularySource: "request" });
  assertClose(discovery, expected);

  assert.equal(discovery.detector?.file, "colours", "the discovery names the server detector it was made with");
  assert.deepEqual(discovery.knownClasses, ["red", "green", "blue"]);
  assert.equal(discovery.k.new, 2, `k estimated: ${JSON.stringify(discovery.k)}`);
  assertColourClusters(discovery);
  const red = discovery.known.find((k) => k.label === "red");
  assert.deepEqual(red?.members.map((m) => colourOf(m.input)), ["red", "red"], "the red images stay in the known class red");
  assert.ok(discovery.clusters.every((c) => c.members.every((m) => path.isAbsolute(m.input) && m.input.startsWith(root))), "members are the server's paths, for /v1/thumbnail");

  // A discovery job has no HTML report; its result is in the job.
  const report = assertError(await call(server.url, `/v1/jobs/${(await post<JobReply>("/v1/discover", { path: "unknown", classes: "red,green,blue", vocabulary: VOCABULARY })).body.job}/report`), 404, "NOT_FOUND");
  assert.match(report.message, /discovery/);
});

test("discover: onlyOod keeps what the calibrated detector rejects, as the library does", async () => {
  const { discovery } = await discoveryJob({ path: "unknown", detector: "colours", onlyOod: true, k: 2, vocabulary: VOCABULARY });
  const files = (await readDataset(path.join(root, "unknown"))).images.map((i) => i.input);
  const detector = await loadDetector(path.join(detectorsDir, "colours.json"));
  const expected = await discover(lib, files, { detector, detectorFile: "colours", onlyOod: true, k: 2, vocabulary: VOCABULARY, vocabularySource: "request" });
  assertClose(discovery, expected);
  assert.equal(discovery.keptInDistribution + discovery.inputs, unknown.length, "every image is either clustered or kept as in-distribution");
  assert.ok(discovery.keptInDistribution >= 1, `the detector accepts some red image (kept ${discovery.keptInDistribution})`);
  assert.equal(discovery.k.method, "given", "k as the request gave it");
});

test("discover: uploads (multipart) with a class list; an unreadable upload is listed as failed, the rest clustered", async () => {
  const files = [...unknown.filter((u) => u.colour !== "red")];
  const parts = await Promise.all(files.map(async (u) => ({ field: "image", name: path.basename(u.file), data: await readFile(u.file) })));
  parts.push({ field: "image", name: "broken.png", data: Buffer.from("not an image") });
  const started = await call<JobReply>(server.url, "/v1/discover", { form: form({ classes: "red,green,blue", templates: TEMPLATE, k: "auto", seed: "0", vocabulary: JSON.stringify(VOCABULARY) }, parts) });
  assertOk(started, 202);
  const done = await waitForJob(started.body.job);
  assert.equal(done.status, "done", JSON.stringify(done.error));
  const d = done.discovery!;
  assert.equal(d.detector, null, "made from a class list");
  assert.deepEqual(d.failed.map((f) => f.input), ["broken.png"]);
  assert.equal(d.inputs, 8);
  assertColourClusters(d);
  assert.ok(d.clusters.every((c) => c.members.every((m) => !path.isAbsolute(m.input))), "uploads are named by their file names");

  // Every upload unreadable: the job fails with the reason.
  const bad = await call<JobReply>(server.url, "/v1/discover", { form: form({ classes: "red,green,blue" }, [{ field: "image", name: "x.png", data: Buffer.from("no") }]) });
  assertOk(bad, 202);
  const failed = await waitForJob(bad.body.job);
  assert.equal(failed.status, "failed");
  assert.equal(failed.error?.code, "IMAGE");
});

test("add discovered: the chosen cluster, renamed, becomes a class of the detector; the next adds the other; the answer says to recalibrate", async () => {
  const { job, discovery } = await discoveryJob({ path: "unknown", detector: "colours", vocabulary: VOCABULARY });
  const ids = assertColourClusters(discovery);
  const yellowId = ids.get("yellow")!;
  const purpleId = ids.get("purple")!;
  // Another detector's classes are not the discovery's known classes.
  assertOk(await post("/v1/detectors", { name: "others", classes: "cyan,white,black", templates: [TEMPLATE] }), 201);
  const refusedOther = assertError(await post("/v1/detectors/others/discovered", { job, clusters: [yellowId] }), 400, "USAGE");
  assert.match(refusedOther.message, /detector/i, refusedOther.message);

  // Renamed to the world's synonym of purple, the new class labels purple images.
  const r = await post<AddReply>("/v1/detectors/colours/discovered", { job, clusters: [purpleId], names: { [purpleId]: "violet" } });
  assertOk(r);
  assert.deepEqual(r.body.detector.classes, ["red", "green", "blue", "violet"]);
  assert.deepEqual(r.body.added, [{ cluster: purpleId, label: "violet", shots: 0 }]);
  assert.match(r.body.note, /calibrate it again \(POST \/v1\/detectors\/colours\/calibrate\)/);
  assert.equal(typeof r.body.detector.threshold, "number", "the threshold is kept (and the note says to recalibrate)");
  const purpleImage = unknown.find((u) => u.colour === "purple")!;
  const detected = await post<DetectReply>("/v1/detect", { images: [{ name: "p.png", data: (await readFile(purpleImage.file)).toString("base64") }], detector: "colours" });
  assertOk(detected);
  assert.equal(detected.body.results[0]!.label, "violet", "the detector labels a purple image with the new class");

  // The other cluster by its best candidate: the discovery still fits the grown detector.
  const second = await post<AddReply>("/v1/detectors/colours/discovered", { job, clusters: [yellowId] });
  assertOk(second);
  assert.deepEqual(second.body.detector.classes, ["red", "green", "blue", "violet", "yellow"]);
  // Saved where the server keeps its detectors.
  assert.deepEqual((await loadDetector(path.join(detectorsDir, "colours.json"))).classes.map((c) => c.label), ["red", "green", "blue", "violet", "yellow"]);
  assertOk(await post("/v1/detectors/colours/classes", { remove: ["violet", "yellow"] }));

  // The discovery itself (a discovery.json) is taken as the job is; one for another model is refused.
  const viaBody = await post<AddReply>("/v1/detectors/colours/discovered", { discovery, clusters: [yellowId], names: { [yellowId]: "gold" } });
  assertOk(viaBody);
  assert.deepEqual(viaBody.body.detector.classes, ["red", "green", "blue", "gold"]);
  assertOk(await post("/v1/detectors/colours/classes", { remove: ["gold"] }));
  const otherModel = { ...discovery, model: { ...discovery.model, key: "another-model-key", id: "another/model" } };
  const refusedModel = assertError(await post("/v1/detectors/colours/discovered", { discovery: otherModel }), 400, "USAGE");
  assert.match(refusedModel.message, /model/, refusedModel.message);
  assert.deepEqual((await call<Summary>(server.url, "/v1/detectors/colours")).body.classes, ["red", "green", "blue"], "nothing was added by the refused requests");
});

test("add discovered to a few-shot detector: the clusters' files inside a data root become shots; uploads and files elsewhere are refused", async () => {
  // A knn detector fitted by the library on the ID images, served from its file as `--detector` does.
  const val = (await readDataset(path.join(root, "val"))).images;
  const rows: Float32Array[] = [];
  for await (const r of lib.embedImages(val.map((i) => i.input))) rows.push(r.embedding!);
  const classes = ["red", "green", "blue"];
  const knn = await buildDetector(lib, { method: "knn", classes: await loadClasses(classes.join(",")), templates: [TEMPLATE], fitData: { embeddings: stackRows(rows), labels: Int32Array.from(val.map((i) => classes.indexOf(i.label!))) } });
  const file = path.join(await tempDir(), "knn-colours.json");
  await saveDetector(knn, file);
  const s = await serve({ dataRoots: [root], detectors: [file] });

  const { job, discovery } = await discoveryJob({ path: "unknown", detector: "knn-colours", vocabulary: VOCABULARY }, s);
  const yellowId = assertColourClusters(discovery).get("yellow")!;
  const added = await post<AddReply>("/v1/detectors/knn-colours/discovered", { job, clusters: [yellowId] }, s);
  assertOk(added);
  assert.deepEqual(added.body.added, [{ cluster: yellowId, label: "yellow", shots: 4 }], "the cluster's four images are its shots");
  assert.deepEqual(added.body.detector.classes, ["red", "green", "blue", "yellow"]);
  assertOk(await post("/v1/detectors/knn-colours/classes", { remove: ["yellow"] }, s));

  // Uploads are not kept: a few-shot detector cannot take them as shots.
  const parts = await Promise.all(unknown.map(async (u) => ({ field: "image", name: path.basename(u.file), data: await readFile(u.file) })));
  const uploaded = await call<JobReply>(s.url, "/v1/discover", { form: form({ detector: "knn-colours", vocabulary: JSON.stringify(VOCABULARY) }, parts) });
  assertOk(uploaded, 202);
  assert.equal((await waitForJob(uploaded.body.job, s)).status, "done");
  const refused = assertError(await post("/v1/detectors/knn-colours/discovered", { job: uploaded.body.job }, s), 400, "USAGE");
  assert.match(refused.message, /is not a file on this server \(uploaded images are not kept\)/);

  // A discovery.json naming a file outside the data roots: refused before anything is read.
  const outside = path.join(await tempDir(), "secret.png");
  await writeFile(outside, await readFile(unknown[0]!.file));
  const forged = structuredClone(discovery);
  forged.clusters[0]!.members[0]!.input = outside;
  assertError(await post("/v1/detectors/knn-colours/discovered", { discovery: forged }, s), 404, "NOT_FOUND");
  assert.deepEqual((await call<Summary>(s.url, "/v1/detectors/knn-colours")).body.classes, classes, "nothing was added by the refused requests");
});

test("add discovered: bad requests are 400 with a message, unknown detectors and jobs 404", async () => {
  const { job, discovery } = await discoveryJob({ path: "unknown", detector: "colours", vocabulary: VOCABULARY });
  const evalJob = await post<JobReply>("/v1/eval", { id: "val", ood: { new: "unknown" }, methods: ["mcm"] });
  assertOk(evalJob, 202);
  await waitForJob(evalJob.body.job);
  const add = (body: unknown, name = "colours") => post(`/v1/detectors/${name}/discovered`, body);
  assertError(await add({ job }, "nobody"), 404, "NOT_FOUND");
  assertError(await add({ job: "no-such-job" }), 404, "NOT_FOUND");
  assert.match(assertError(await add({ job: evalJob.body.job }), 400, "USAGE").message, /is an evaluation, not a discovery/);
  for (const body of [{}, { job: "" }, { job, discovery }, { job, clusters: [] }, { job, clusters: [0] }, { job, clusters: ["one"] }, { job, names: { x: "fox" } }, { job, names: { 1: "" } }, { job, names: [] }]) {
    const e = assertError(await add(body), 400, "USAGE");
    assert.ok(e.hint, `a hint for ${JSON.stringify(body).slice(0, 80)}`);
  }
  assertError(await add({ discovery: { format: "not-a-discovery" } }), 400, "INPUT");
  const missing = assertError(await add({ job, clusters: [99] }), 400, "USAGE");
  assert.match(missing.message, /99/, missing.message);
  assert.deepEqual((await call<Summary>(server.url, "/v1/detectors/colours")).body.classes, ["red", "green", "blue"], "nothing was added");
});

test("discover: malformed requests are 400 before any job starts, unknown detectors and folders outside the roots 404", async () => {
  const uncalibrated = await post("/v1/detectors", { name: "raw", classes: "red,green,blue" });
  assertOk(uncalibrated, 201);
  const ok = { path: "unknown", classes: "red,green,blue" };
  const bad: [unknown, number, string, RegExp][] = [
    [{ classes: "red" }, 400, "USAGE", /needs images/],
    [{ ...ok, images: [{ name: "a.png", data: "aGk=" }] }, 400, "USAGE", /either images or "path"/],
    [{ path: "unknown" }, 400, "CLASSES", /known classes/],
    [{ ...ok, detector: "colours" }, 400, "USAGE", /either "detector" or "classes"/],
    [{ path: "unknown", detector: "nobody" }, 404, "NOT_FOUND", /no detector named "nobody"/],
    [{ ...ok, onlyOod: true }, 400, "USAGE", /onlyOod/],
    [{ path: "unknown", detector: "raw", onlyOod: true }, 400, "USAGE", /has none/],
    [{ ...ok, onlyOod: "yes" }, 400, "USAGE", /true or false/],
    [{ ...ok, k: -1 }, 400, "USAGE", /k must be/],
    [{ ...ok, k: "many" }, 400, "USAGE", /k must be/],
    [{ ...ok, k: 2.5 }, 400, "USAGE", /k must be/],
    [{ ...ok, seed: -1 }, 400, "USAGE", /seed must be/],
    [{ ...ok, vocabulary: [] }, 400, "USAGE", /vocabulary is empty/],
    [{ ...ok, vocabulary: ["  "] }, 400, "USAGE", /vocabulary is empty/],
    [{ ...ok, classes: "" }, 400, "CLASSES", /no classes/],
    [{ ...ok, path: "../" }, 404, "NOT_FOUND", /not inside a data root/],
    [{ ...ok, path: "no-such-folder" }, 404, "NOT_FOUND", /not inside a data root/],
  ];
  for (const [body, status, code, message] of bad) {
    const e = assertError(await post("/v1/discover", body), status, code);
    assert.match(e.message, message, `${JSON.stringify(body)}: ${e.message}`);
  }
  const listFile = path.join(root, "empty.txt");
  await writeFile(listFile, "\n");
  const empty = await post("/v1/discover", { ...ok, path: "empty.txt" });
  assert.equal(empty.status, 400, `an empty set is refused: ${empty.text}`);
  const noRoots = await serve();
  assertError(await post("/v1/discover", ok, noRoots), 400, "USAGE");
  assertError(await call(noRoots.url, "/v1/discover", { json: { images: [{ name: "a.png", data: "aGk=" }], classes: "red", vocabulary: "x".repeat(2000) } }), 400, "LIMIT", "maxPromptLength");
});
