/**
 * Several `serve` processes behind one balancer, on one PostgreSQL database as their store: two servers
 * in this process share detectors and eval jobs through a real PostgreSQL server (test/support/
 * postgres.ts) and nothing else. Every change is made through one server and seen through the other.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import pg from "pg";
import { startServer } from "../src/server/app.js";
import type { RunningServer } from "../src/server/app.js";
import type { DetectorSummary as Summary } from "../src/server/service.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";
import { skipUnlessPostgres, startPostgres } from "./support/postgres.js";
import type { PostgresServer } from "./support/postgres.js";
import { assertError, call } from "./support/server-http.js";
import { repoRoot } from "./support/shared.js";
import type { Reply } from "./support/server-http.js";

const CLASSES = "red,green,blue";
const TEMPLATE = "a photo of a {}";

interface DetectReply {
  results: { input: string; label?: string; score?: number; ood?: boolean | null; error?: string }[];
}
interface JobReply {
  job: string;
  status: string;
  rows?: { method: string; ood: string; auroc: number; n: { id: number; ood: number } }[];
  error?: unknown;
}

interface DiscoveryJob {
  job: string;
  kind?: string;
  status: string;
  discovery?: { clusters: { id: number; candidates: { name: string }[] }[] };
  error?: unknown;
}

let database: PostgresServer | undefined;
let url: string;
let modelDir: string;
let cacheDir: string;
let root: string;
let red: { name: string; data: string };
let yellow: { name: string; data: string };
/** Two servers on one database, as behind a balancer. */
let one: RunningServer;
let two: RunningServer;
const servers: RunningServer[] = [];
const children: ChildProcessWithoutNullStreams[] = [];

async function serve(o: Parameters<typeof startServer>[0] = {}): Promise<RunningServer> {
  const s = await startServer({ model: modelDir, cacheDir, threads: 1, store: url, dataRoots: [root], port: 0, ...o });
  servers.push(s);
  return s;
}

before(async () => {
  if (skipUnlessPostgres) return;
  database = await startPostgres();
  url = await database.createDatabase("serve");
  modelDir = await makeModel();
  cacheDir = await tempDir();
  root = await tempDir("clip-ood-root-");
  const place = async (colours: string[], seed: number, folder: (colour: string) => string) => {
    for (const img of await makeImages(colours.map((colour) => ({ colour, texture: "plain" as const })), seed)) {
      const to = path.join(folder(img.colour), path.basename(img.file));
      await mkdir(path.dirname(to), { recursive: true });
      await copyFile(img.file, to);
    }
  };
  await place(["red", "green", "blue", "red", "green", "blue"], 61, (c) => path.join(root, "val", c));
  await place(["yellow", "pink", "cyan", "white"], 62, () => path.join(root, "ood"));
  const [r, y] = await makeImages([{ colour: "red", texture: "plain" }, { colour: "yellow", texture: "plain" }], 60);
  red = { name: "red.png", data: (await readFile(r!.file)).toString("base64") };
  yellow = { name: "yellow.png", data: (await readFile(y!.file)).toString("base64") };
  // Started together, as a deployment does: the database is migrated once.
  [one, two] = await Promise.all([serve(), serve()]);
});

after(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const s of servers) await s.close().catch(() => undefined);
  await database?.stop();
});

const post = <T>(s: RunningServer, route: string, json: unknown) => call<T>(s.url, route, { json });

function assertOk(r: Reply, status = 200): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text.slice(0, 500)}`);
}

async function detect(s: RunningServer, detector: string): Promise<DetectReply["results"]> {
  const r = await post<DetectReply>(s, "/v1/detect", { images: [red, yellow], detector });
  assertOk(r);
  return r.body.results;
}

/** Runs SQL on the shared database directly, as an operator (or damage) would. */
async function sql(text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

test("a detector created through one server is listed, used and scored the same through the other; edits and calibration made through either are seen by both", { skip: skipUnlessPostgres }, async () => {
  const created = await post<Summary>(one, "/v1/detectors", { name: "colours", classes: CLASSES, templates: [TEMPLATE] });
  assertOk(created, 201);
  const listed = await call<{ detectors: Summary[] }>(two.url, "/v1/detectors");
  assertOk(listed);
  assert.deepEqual(listed.body.detectors, [created.body], "the other server lists it as created");
  assert.deepEqual((await call<Summary>(two.url, "/v1/detectors/colours")).body, created.body);

  const viaOne = await detect(one, "colours");
  const viaTwo = await detect(two, "colours");
  assert.deepEqual(viaTwo, viaOne, "the same labels and scores through either server");
  assert.equal(viaTwo[0]!.label, "red");

  // Classes edited through the second server: the first sees the new class and labels with it.
  const added = await post<Summary>(two, "/v1/detectors/colours/classes", { add: ["yellow"] });
  assertOk(added);
  assert.deepEqual(added.body.classes, ["red", "green", "blue", "yellow"]);
  assert.deepEqual((await call<Summary>(one.url, "/v1/detectors/colours")).body, added.body);
  assert.equal((await detect(one, "colours"))[1]!.label, "yellow", "the first server detects with the edited classes");
  const removed = await post<Summary>(one, "/v1/detectors/colours/classes", { remove: ["yellow"] });
  assertOk(removed);
  assert.deepEqual((await detect(two, "colours")).map((r) => r.score), viaOne.map((r) => r.score), "back to the original classes on both");

  // Calibrated through one server (a folder in the data root), its threshold is applied by the other.
  const calibrated = await post<{ detector: Summary; threshold: { value: number } }>(one, "/v1/detectors/colours/calibrate", { id: { path: "val" }, ood: { path: "ood" } });
  assertOk(calibrated);
  assert.equal((await call<Summary>(two.url, "/v1/detectors/colours")).body.threshold, calibrated.body.threshold.value);
  assert.deepEqual((await detect(two, "colours")).map((r) => r.ood), [false, true], "red passes, yellow is flagged, through the other server");
});

test("concurrent creates of one name through both servers: one 201, one 409 CONFLICT; a deletion through one is a 404 through the other", { skip: skipUnlessPostgres }, async () => {
  for (let round = 0; round < 3; round++) {
    const name = `race-${round}`;
    // Different classes, so the detector that won is recognisable afterwards.
    const [a, b] = await Promise.all([post<Summary>(one, "/v1/detectors", { name, classes: "red,blue" }), post<Summary>(two, "/v1/detectors", { name, classes: "green,blue" })]);
    assert.deepEqual([a.status, b.status].sort(), [201, 409], `round ${round}: ${a.text} / ${b.text}`);
    assertError(a.status === 409 ? a : b, 409, "CONFLICT");
    const winner = (a.status === 201 ? a : b).body;
    for (const s of [one, two]) assert.deepEqual((await call<Summary>(s.url, `/v1/detectors/${name}`)).body, winner);
  }

  assertOk(await post(one, "/v1/detectors", { name: "gone", classes: CLASSES }), 201);
  assert.equal((await detect(two, "gone")).length, 2);
  const del = await call(one.url, "/v1/detectors/gone", { method: "DELETE" });
  assert.equal(del.status, 204);
  assertError(await call(two.url, "/v1/detectors/gone"), 404, "NOT_FOUND");
  assertError(await post(two, "/v1/detect", { images: [red], detector: "gone" }), 404, "NOT_FOUND");
  assertError(await post(two, "/v1/detectors/gone/classes", { add: ["cyan"] }), 404, "NOT_FOUND");
  assertError(await call(two.url, "/v1/detectors/gone", { method: "DELETE" }), 404, "NOT_FOUND");
  assert.ok(!(await call<{ detectors: Summary[] }>(one.url, "/v1/detectors")).body.detectors.some((d) => d.name === "gone"));
  // Created again under the same name: the other server uses the new one, not what it read before.
  assertOk(await post(two, "/v1/detectors", { name: "gone", classes: "red,green", method: "energy" }), 201);
  assert.equal((await call<Summary>(one.url, "/v1/detectors/gone")).body.method, "energy");
});

test("an eval job started through one server is polled to completion and its report served through the other", { skip: skipUnlessPostgres }, async () => {
  const started = await post<JobReply>(one, "/v1/eval", { id: "val", ood: { warm: "ood" }, methods: ["mcm"], detectors: ["colours"] });
  assertOk(started, 202);
  // Answered only once it is recorded: the other server knows the job at once.
  assertOk(await call(two.url, `/v1/jobs/${started.body.job}`));
  const until = Date.now() + 60_000;
  let done: JobReply;
  for (;;) {
    const r = await call<JobReply>(two.url, `/v1/jobs/${started.body.job}`);
    assertOk(r);
    done = r.body;
    if (done.status === "done" || done.status === "failed") break;
    assert.ok(Date.now() < until, `job still ${done.status} after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(done.status, "done", JSON.stringify(done.error));
  const rows = done.rows!.map((r) => `${r.method}/${r.ood}`);
  for (const k of ["colours/warm", "mcm/warm"]) assert.ok(rows.includes(k), `a row ${k} in ${rows.join(", ")}`);
  assert.equal(done.rows!.find((r) => r.method === "mcm" && r.ood === "warm")!.auroc, 1);
  assert.deepEqual((await call<JobReply>(one.url, `/v1/jobs/${started.body.job}`)).body, done, "both servers answer the same");

  const report = await call(two.url, `/v1/jobs/${started.body.job}/report`);
  assertOk(report);
  assert.match(report.headers.get("content-type") ?? "", /text\/html/);
  assert.ok(report.text.includes("<html") && report.text.includes("mcm") && report.text.includes("warm"), "the report names the method and the set");
  assertError(await call(two.url, "/v1/jobs/no-such-job"), 404, "NOT_FOUND");
  assertError(await call(two.url, "/v1/jobs/no-such-job/report"), 404, "NOT_FOUND");
});

test("a discovery job started through one server is polled through the other, which adds its clusters to a shared detector", { skip: skipUnlessPostgres }, async () => {
  for (const img of await makeImages(["yellow", "yellow", "yellow", "purple", "purple", "purple"].map((colour) => ({ colour, texture: "plain" as const })), 64)) {
    await mkdir(path.join(root, "new"), { recursive: true });
    await copyFile(img.file, path.join(root, "new", path.basename(img.file)));
  }
  assertOk(await post(one, "/v1/detectors", { name: "growing", classes: CLASSES, templates: [TEMPLATE] }), 201);
  const started = await post<DiscoveryJob>(one, "/v1/discover", { path: "new", detector: "growing", k: 2, vocabulary: ["yellow", "purple", "orange", "cat"] });
  assertOk(started, 202);
  const until = Date.now() + 60_000;
  let done: DiscoveryJob;
  for (;;) {
    const r = await call<DiscoveryJob>(two.url, `/v1/jobs/${started.body.job}`);
    assertOk(r);
    done = r.body;
    if (done.status === "done" || done.status === "failed") break;
    assert.ok(Date.now() < until, `job still ${done.status} after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(done.status, "done", JSON.stringify(done.error));
  assert.equal(done.kind, "discover");
  assert.deepEqual((await call<DiscoveryJob>(one.url, `/v1/jobs/${started.body.job}`)).body, done, "both servers answer the same discovery");
  const names = done.discovery!.clusters.map((c) => c.candidates[0]!.name).sort();
  assert.deepEqual(names, ["purple", "yellow"], "a cluster per new colour, named by its word");

  // The other server reads the discovery from the database and grows the shared detector.
  const yellowId = done.discovery!.clusters.find((c) => c.candidates[0]!.name === "yellow")!.id;
  const added = await post<{ detector: Summary }>(two, "/v1/detectors/growing/discovered", { job: started.body.job, clusters: [yellowId] });
  assertOk(added);
  assert.deepEqual(added.body.detector.classes, ["red", "green", "blue", "yellow"]);
  assert.deepEqual((await call<Summary>(one.url, "/v1/detectors/growing")).body.classes, ["red", "green", "blue", "yellow"], "the first server sees the grown detector");
  assert.equal((await detect(one, "growing"))[1]!.label, "yellow", "and labels the yellow image with the new class");
  assertError(await call(two.url, `/v1/jobs/${started.body.job}/report`), 404, "NOT_FOUND");
});

test("detectors read from the database: unchanged rows are not read again, damaged ones and those of another model are refused by name", { skip: skipUnlessPostgres }, async () => {
  assertOk(await post(one, "/v1/detectors", { name: "cached", classes: CLASSES }), 201);
  const before = await detect(two, "cached");
  // Bytes damaged without a new version: both servers hold the detector already and do not read it again.
  await sql("UPDATE clip_ood.detectors SET arrays = substring(arrays from 5) WHERE name = 'cached'");
  assert.deepEqual(await detect(two, "cached"), before, "served from what the server read before");
  // A new version makes every server read the row, and the damage is found.
  await sql("UPDATE clip_ood.detectors SET version = nextval('clip_ood.detector_versions') WHERE name = 'cached'");
  const damaged = assertError(await post(two, "/v1/detect", { images: [red], detector: "cached" }), 400, "INPUT");
  assert.match(damaged.message, /detector "cached" in postgres:\/\/.* is damaged: its arrays do not match the checksum/);
  assert.match(damaged.hint ?? "", /DELETE \/v1\/detectors\/cached/);
  assertError(await call(two.url, "/v1/detectors/cached"), 400, "INPUT");
  const names = (await call<{ detectors: Summary[] }>(two.url, "/v1/detectors")).body.detectors.map((d) => d.name);
  assert.ok(names.includes("colours") && !names.includes("cached"), `the list leaves out only the damaged detector: ${names.join(", ")}`);

  // A detector made by a server on another model is listed with its model, but not used here.
  assertOk(await post(one, "/v1/detectors", { name: "elsewhere", classes: CLASSES }), 201);
  const row = (await sql("SELECT detector FROM clip_ood.detectors WHERE name = 'elsewhere'")).rows[0] as { detector: string };
  const doc = JSON.parse(row.detector) as { detector: { model: { id: string } } };
  doc.detector.model.id = "another/model";
  await sql("UPDATE clip_ood.detectors SET detector = $1, version = nextval('clip_ood.detector_versions') WHERE name = 'elsewhere'", [JSON.stringify(doc)]);
  assert.equal((await call<Summary>(two.url, "/v1/detectors/elsewhere")).body.model, "another/model");
  const other = assertError(await post(two, "/v1/detect", { images: [red], detector: "elsewhere" }), 400, "USAGE");
  assert.match(other.message, /was made for model another\/model/);
  for (const name of ["cached", "elsewhere"]) assert.equal((await call(one.url, `/v1/detectors/${name}`, { method: "DELETE" })).status, 204);
});

test("detector files given at start stay on their server; --detectors-dir is refused beside a PostgreSQL store", { skip: skipUnlessPostgres }, async () => {
  const dir = await tempDir();
  // A file-backed detector made through a server on a local store, then given to a server on the database.
  const local = await startServer({ model: modelDir, cacheDir, threads: 1, store: false, port: 0, detectorsDir: dir });
  servers.push(local);
  assertOk(await post(local, "/v1/detectors", { name: "mine", classes: CLASSES }), 201);
  const withFile = await serve({ detectors: [path.join(dir, "mine.json")] });
  assertOk(await call(withFile.url, "/v1/detectors/mine"));
  assertError(await call(one.url, "/v1/detectors/mine"), 404, "NOT_FOUND");
  assertError(await post(withFile, "/v1/detectors", { name: "mine", classes: CLASSES }), 409, "CONFLICT");

  await assert.rejects(serve({ detectorsDir: dir }), (e: unknown) => {
    assert.match((e as Error).message, /--detectors-dir .* is not used with the PostgreSQL store/);
    return true;
  });
});

/** A serve process of its own (test/support/serve-child.ts), to be killed; resolves with its URL once it listens. */
function serveChild(o: Parameters<typeof startServer>[0]): Promise<{ url: string; child: ChildProcessWithoutNullStreams }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "test", "support", "serve-child.ts"), JSON.stringify(o)], { cwd: repoRoot });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n");
      if (line.length > 1) resolve({ url: line[0]!, child });
    });
    child.on("exit", (code, signal) => reject(new Error(`the serve child exited (${code ?? signal}) before listening: ${err}`)));
  });
}

test("an eval job whose serve process is SIGKILLed mid-job is reported failed by another server once its heartbeat is late, not running forever", { skip: skipUnlessPostgres }, async () => {
  // Enough OOD images that the job is still running when its process is killed.
  const many = path.join(root, "many");
  await mkdir(many);
  const colours = ["yellow", "pink", "cyan", "white"];
  for (const img of await makeImages(Array.from({ length: 240 }, (_, i) => ({ colour: colours[i % 4]!, texture: "plain" as const })), 63)) {
    await copyFile(img.file, path.join(many, path.basename(img.file)));
  }
  const staleAfterMs = 1500;
  const { url: childUrl, child } = await serveChild({ model: modelDir, cacheDir, threads: 1, store: url, dataRoots: [root], port: 0, jobHeartbeatMs: 200 });
  const watcher = await serve({ jobStaleAfterMs: staleAfterMs });
  const started = await call<JobReply>(childUrl, "/v1/eval", { json: { id: "val", ood: { many: "many" }, methods: ["mcm"] } });
  assertOk(started, 202);
  const job = started.body.job;
  const t0 = Date.now();
  const heartbeat = async () => ((await sql("SELECT heartbeat_at FROM clip_ood.eval_jobs WHERE id = $1", [job])).rows[0] as { heartbeat_at: Date }).heartbeat_at.getTime();
  // While its process lives, the job's heartbeat moves on and other servers report it running.
  const first = await heartbeat();
  for (;;) {
    const r = await call<JobReply>(watcher.url, `/v1/jobs/${job}`);
    assert.ok(r.body.status === "queued" || r.body.status === "running", `the job is ${r.body.status} ${JSON.stringify(r.body.error)} after ${Date.now() - t0} ms`);
    if (r.body.status === "running" && (await heartbeat()) > first) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  process.stderr.write(`running after ${Date.now() - t0} ms\n`);
  child.kill("SIGKILL");
  await once(child, "exit");
  const killedAt = Date.now();
  const lastBeat = await heartbeat();
  let seen: JobReply;
  for (;;) {
    seen = (await call<JobReply>(watcher.url, `/v1/jobs/${job}`)).body;
    if (seen.status !== "running") break;
    assert.ok(Date.now() - killedAt < staleAfterMs + 5000, "still running well after the heartbeat bound");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(seen.status, "failed", JSON.stringify(seen));
  assert.ok(Date.now() - lastBeat >= staleAfterMs, "not before the bound");
  const error = seen.error as { code: string; message: string; hint: string };
  assert.equal(error.code, "INTERRUPTED");
  assert.match(error.message, /the serve process running this job stopped \(owner [^:]+:\d+:[0-9a-f]{8}, last heartbeat \d{4}-\d\d-\d\dT/);
  assert.match(error.hint, /submit the job again/);
  // Recorded as failed: every server, whatever its own bound, now answers the same.
  assert.deepEqual((await call<JobReply>(one.url, `/v1/jobs/${job}`)).body, seen);
  const report = assertError(await call(one.url, `/v1/jobs/${job}/report`), 404, "NOT_FOUND");
  assert.match(report.message, /it failed/);
});
