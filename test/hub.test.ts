import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { ClipOodError } from "../src/errors.js";
import { ensureHubModel } from "../src/model/hub.js";
import type { HubFile, HubOptions } from "../src/model/hub.js";
import { DEFAULT_HUB_URL, cachedModelDir, defaultCacheDir, hubUrlFrom, isHubId } from "../src/model/hub-cache.js";
import type { DownloadProgress } from "../src/model/hub-download.js";
import { startHubServer } from "./support/hub-server.js";
import { repoRoot } from "./support/shared.js";
import type { HubRequest, HubServerOptions } from "./support/hub-server.js";

// ---------------------------------------------------------------------------------------------
// Fixture: a tiny repository of arbitrary bytes. The reference for every download is the served file
// itself: a correct download is byte-identical to it.
// ---------------------------------------------------------------------------------------------

const ID = "acme/tiny-clip";
const BIG = "onnx/vision_model.onnx";
const FILES: HubFile[] = [
  { path: "config.json" },
  { path: "tokenizer.json" },
  { path: "special_tokens_map.json", optional: true },
  { path: "onnx/text_model.onnx" },
  { path: BIG },
];

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "clip-ood-hub-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Fixture {
  root: string;
  cache: string;
  /** Repository-relative path → the bytes served. */
  content: Map<string, Buffer>;
}

/** Serves every file of FILES except those in `omit`; the big one is several network chunks long. */
async function fixture(t: TestContext, omit: readonly string[] = []): Promise<Fixture> {
  const root = await tempDir(t);
  const cache = await tempDir(t);
  const content = new Map<string, Buffer>([
    ["config.json", Buffer.from(JSON.stringify({ model_type: "clip", projection_dim: 8 }))],
    ["tokenizer.json", Buffer.from(JSON.stringify({ model: { type: "BPE" } }))],
    ["special_tokens_map.json", Buffer.from("{}")],
    ["onnx/text_model.onnx", randomBytes(70_000)],
    [BIG, randomBytes(400_000)],
  ]);
  for (const f of omit) content.delete(f);
  for (const [rel, bytes] of content) {
    const file = path.join(root, ...ID.split("/"), rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, bytes);
  }
  return { root, cache, content };
}

async function server(t: TestContext, root: string, opts: HubServerOptions = {}) {
  const s = await startHubServer(root, opts);
  t.after(() => s.close());
  return s;
}

/** A fetch that fails the test if anyone calls it: proves a run used the cache alone. */
const noFetch: typeof fetch = () => {
  throw new Error("unexpected network request");
};

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

async function assertSameFiles(dir: string, fx: Fixture, files: readonly string[] = [...fx.content.keys()]): Promise<void> {
  for (const rel of files) {
    const got = await readFile(path.join(dir, rel));
    assert.ok(got.equals(fx.content.get(rel)!), `${rel} differs from what the server holds`);
  }
  const litter = (await walk(dir)).filter((p) => /\.(part|lock|etag|stale)$/.test(p));
  assert.deepEqual(litter, [], "no temporary files left behind");
}

const gets = (reqs: readonly HubRequest[], file: string) => reqs.filter((r) => r.method === "GET" && r.url.endsWith(`/${file}`));

async function rejectsWith(p: Promise<unknown>, code: string): Promise<ClipOodError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ClipOodError, `expected ClipOodError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected a ${code} error`);
}

// ---------------------------------------------------------------------------------------------
// Downloading and reusing
// ---------------------------------------------------------------------------------------------

test("downloads every file into the cache with progress, then reuses it with no network at all", async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root);
  const events: DownloadProgress[] = [];
  const dir = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache, onProgress: (p) => events.push(p) });

  assert.equal(dir, path.join(fx.cache, "models", "acme", "tiny-clip", "main"));
  assert.equal(dir, cachedModelDir(ID, { cacheDir: fx.cache }));
  await assertSameFiles(dir, fx);
  for (const [rel, bytes] of fx.content) {
    assert.equal(gets(hub.requests, rel).length, 1, rel);
    assert.ok(hub.requests.some((r) => r.url === `/acme/tiny-clip/resolve/main/${rel}`), `Hub URL layout for ${rel}`);
    const mine = events.filter((e) => e.file === rel);
    const last = mine.at(-1);
    assert.deepEqual(last, { file: rel, received: bytes.length, total: bytes.length, done: true }, rel);
    assert.equal(mine.filter((e) => e.done).length, 1);
    for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.received >= mine[i - 1]!.received, "progress never goes back");
  }

  const before = hub.requests.length;
  await hub.close();
  const again = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache, fetchImpl: noFetch });
  assert.equal(again, dir);
  const offline = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache, offline: true });
  assert.equal(offline, dir);
  assert.equal(hub.requests.length, before, "the second run made no requests");
});

test("revisions get their own folder, with characters unsafe in a path encoded", async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root, { revisions: ["refs/pr/1"] });
  const dir = await ensureHubModel(ID, FILES.slice(0, 2), { hubUrl: hub.url, cacheDir: fx.cache, revision: "refs/pr/1" });
  assert.equal(dir, path.join(fx.cache, "models", "acme", "tiny-clip", "refs%2Fpr%2F1"));
  assert.equal(path.basename(cachedModelDir(ID, { cacheDir: "/c", revision: ".." })), "%2E.");
  await assertSameFiles(dir, fx, ["config.json", "tokenizer.json"]);
  assert.ok(hub.requests.every((r) => r.url.startsWith("/acme/tiny-clip/resolve/refs%2Fpr%2F1/")), "hub.requests.every((r) => r.url.startsWith(\"/acme/tiny-clip/resolve/refs%2Fpr%2F1/\"))");
});

test("follows the Hub's redirects to its file store", async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root, { redirect: true });
  const dir = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache });
  await assertSameFiles(dir, fx);
  assert.ok(hub.requests.some((r) => r.url === `/cdn/acme/tiny-clip/main/${BIG}`), "hub.requests.some((r) => r.url === `/cdn/acme/tiny-clip/main/${BIG}`)");
});

// ---------------------------------------------------------------------------------------------
// Broken connections and resuming
// ---------------------------------------------------------------------------------------------

test("a dropped connection leaves only a .part; the next run resumes it with a Range request", async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root, { truncateAfterBytes: { [BIG]: 150_000 } });
  const opts: HubOptions = { hubUrl: hub.url, cacheDir: fx.cache, retries: 0 };
  const err = await rejectsWith(ensureHubModel(ID, FILES, opts), "DOWNLOAD");
  assert.match(err.message, /vision_model\.onnx/);
  assert.match(err.hint ?? "", /again/);

  const dest = path.join(cachedModelDir(ID, opts), BIG);
  await assert.rejects(stat(dest), "the final name never holds a partial file");
  const partSize = (await stat(`${dest}.part`)).size;
  assert.ok(partSize > 0 && partSize <= 150_000, `part holds what arrived (${partSize})`);
  assert.deepEqual((await walk(path.dirname(dest))).filter((p) => p.endsWith(".lock")), [], "lock released on failure");

  const dir = await ensureHubModel(ID, FILES, opts);
  const big = gets(hub.requests, BIG);
  assert.equal(big.length, 2);
  assert.equal(big[0]!.range, undefined);
  assert.equal(big[1]!.range, `bytes=${partSize}-`);
  assert.ok(big[1]!.ifRange?.startsWith('"'), "resumes only if the file is unchanged (If-Range with the ETag)");
  await assertSameFiles(dir, fx);
  assert.equal(gets(hub.requests, "config.json").length, 1, "finished files are not fetched again");
});

test("retries resume a broken download within one run, through redirects too", async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root, { truncateAfterBytes: { [BIG]: 100_000 }, truncateTimes: 2, redirect: true });
  const dir = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache });
  await assertSameFiles(dir, fx);
  const ranges = hub.requests.filter((r) => r.url.endsWith(BIG) && r.url.startsWith("/cdn/")).map((r) => r.range);
  assert.equal(ranges.length, 3);
  assert.equal(ranges[0], undefined);
  assert.match(ranges[1] ?? "", /^bytes=\d+-$/);
  assert.match(ranges[2] ?? "", /^bytes=\d+-$/);
});

test("a server that ignores Range sends the whole file, and the part restarts from zero", async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root, { ignoreRange: true });
  const dest = path.join(cachedModelDir(ID, { cacheDir: fx.cache }), BIG);
  await mkdir(path.dirname(dest), { recursive: true });
  await writeFile(`${dest}.part`, randomBytes(123_456)); // wrong bytes: appending to them would corrupt
  const dir = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache });
  assert.deepEqual(gets(hub.requests, BIG).map((r) => r.range), ["bytes=123456-"], "the 200 body replaced the part in one request");
  await assertSameFiles(dir, fx);
});

test("a part from an older version of the file (ETag changed) is replaced, not extended", async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root);
  const dest = path.join(cachedModelDir(ID, { cacheDir: fx.cache }), BIG);
  await mkdir(path.dirname(dest), { recursive: true });
  await writeFile(`${dest}.part`, randomBytes(1000));
  await writeFile(`${dest}.part.etag`, '"an-older-version"');
  const dir = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache });
  assert.equal(gets(hub.requests, BIG)[0]!.ifRange, '"an-older-version"');
  await assertSameFiles(dir, fx);
});

test("416: a complete part is moved into place; an over-long one is downloaded again", async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root);
  const dir = cachedModelDir(ID, { cacheDir: fx.cache });
  await mkdir(path.join(dir, "onnx"), { recursive: true });
  await writeFile(path.join(dir, `${BIG}.part`), fx.content.get(BIG)!);
  await writeFile(path.join(dir, "onnx/text_model.onnx.part"), randomBytes(90_000)); // longer than the 70 000 served
  await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache });
  await assertSameFiles(dir, fx);
  assert.deepEqual(gets(hub.requests, BIG).map((r) => r.range), ["bytes=400000-"], "complete part needed no body");
  assert.deepEqual(gets(hub.requests, "onnx/text_model.onnx").map((r) => r.range), ["bytes=90000-", undefined]);
});

// ---------------------------------------------------------------------------------------------
// Missing files and HTTP errors
// ---------------------------------------------------------------------------------------------

test("a required file the Hub lacks is a DOWNLOAD error naming it and its URL", async (t) => {
  const fx = await fixture(t, ["onnx/text_model.onnx"]);
  const hub = await server(t, fx.root);
  const err = await rejectsWith(ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache }), "DOWNLOAD");
  assert.equal(err.message, `model "${ID}": onnx/text_model.onnx not found at ${hub.url}/${ID}/resolve/main/onnx/text_model.onnx`);
  assert.match(err.hint ?? "", /--dtype/);
});

test("an optional file the Hub lacks is skipped, and not asked for again", async (t) => {
  const fx = await fixture(t, ["special_tokens_map.json"]);
  const hub = await server(t, fx.root);
  const dir = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache });
  await assertSameFiles(dir, fx);
  await assert.rejects(stat(path.join(dir, "special_tokens_map.json")));
  const before = hub.requests.length;
  assert.equal(await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache }), dir);
  assert.equal(hub.requests.length, before);
});

test("other HTTP errors are DOWNLOAD errors with the status", async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root, { status: { "tokenizer.json": 503, "config.json": 401 } });
  const err = await rejectsWith(ensureHubModel(ID, FILES.slice(1), { hubUrl: hub.url, cacheDir: fx.cache }), "DOWNLOAD");
  assert.match(err.message, /HTTP 503/);
  assert.match(err.message, /tokenizer\.json/);
  const gated = await rejectsWith(ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache }), "DOWNLOAD");
  assert.match(gated.message, /HTTP 401/);
  assert.match(gated.hint ?? "", /gated/);
});

test("bad ids and file paths are refused before any request", async () => {
  for (const id of ["nope", "a/b/c", "../x", "a/..", "-a/b"]) {
    await rejectsWith(ensureHubModel(id, FILES, { hubUrl: "http://127.0.0.1:1", cacheDir: "/nonexistent", fetchImpl: noFetch }), "USAGE");
  }
  for (const p of ["../escape.onnx", "/abs.onnx", "onnx//x.onnx", "a\\b"]) {
    await rejectsWith(ensureHubModel(ID, [{ path: p }], { hubUrl: "http://127.0.0.1:1", cacheDir: "/nonexistent", fetchImpl: noFetch }), "USAGE");
  }
});

// ---------------------------------------------------------------------------------------------
// No network
// ---------------------------------------------------------------------------------------------

function assertOfflineError(err: ClipOodError, cache: string, missing: readonly string[]): void {
  assert.doesNotMatch(err.message, /\n/, "one line");
  assert.ok(err.message.includes(`"${ID}"`), err.message);
  assert.ok(err.message.includes(cachedModelDir(ID, { cacheDir: cache })), err.message);
  for (const f of missing) assert.ok(err.message.includes(f), `names ${f}: ${err.message}`);
  assert.ok(!err.message.includes("special_tokens_map.json"), "optional files are not demanded");
  assert.match(err.hint ?? "", /--model <folder>/);
  assert.match(err.hint ?? "", /CLIP_OOD_HUB_URL/);
}

test("Hub unreachable (closed port): one OFFLINE error naming the model, the cache and every missing file", async (t) => {
  const fx = await fixture(t);
  const hub = await startHubServer(fx.root);
  await hub.close();
  const err = await rejectsWith(ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache }), "OFFLINE");
  assertOfflineError(err, fx.cache, ["config.json", "tokenizer.json", "onnx/text_model.onnx", BIG]);
  assert.ok(err.message.includes(`${hub.url}/${ID}/resolve/main/`), err.message);
  assert.match(err.message, /ECONNREFUSED/);
});

test("offline mode never touches the network and names only the files still missing", async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root);
  await ensureHubModel(ID, FILES.slice(0, 2), { hubUrl: hub.url, cacheDir: fx.cache });
  const err = await rejectsWith(ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache, offline: true, fetchImpl: noFetch }), "OFFLINE");
  assertOfflineError(err, fx.cache, ["onnx/text_model.onnx", BIG]);
  assert.ok(!err.message.includes("config.json"), err.message);
  assert.match(err.message, /offline/);
});

test("a failing fetch is OFFLINE whatever its error chain", async (t) => {
  const cache = await tempDir(t);
  const dnsFailure: typeof fetch = () =>
    Promise.reject(new TypeError("fetch failed", { cause: Object.assign(new Error("getaddrinfo ENOTFOUND huggingface.co"), { code: "ENOTFOUND" }) }));
  const err = await rejectsWith(ensureHubModel(ID, FILES, { hubUrl: DEFAULT_HUB_URL, cacheDir: cache, fetchImpl: dnsFailure }), "OFFLINE");
  assertOfflineError(err, cache, ["config.json", BIG]);
  assert.match(err.message, /ENOTFOUND huggingface\.co/);
});

// ---------------------------------------------------------------------------------------------
// Several processes at once (lock files work the same between calls of one process)
// ---------------------------------------------------------------------------------------------

/** Lock bugs show up as waiting forever: fail instead. */
const LOCK_TEST_TIMEOUT_MS = 15_000;

test("two concurrent downloads of one model fetch each file once and both succeed", { timeout: LOCK_TEST_TIMEOUT_MS }, async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root);
  const opts = { hubUrl: hub.url, cacheDir: fx.cache };
  const [a, b] = await Promise.all([ensureHubModel(ID, FILES, opts), ensureHubModel(ID, FILES, opts)]);
  assert.equal(a, b);
  await assertSameFiles(a, fx);
  for (const rel of fx.content.keys()) assert.equal(gets(hub.requests, rel).length, 1, rel);
});

/** Runs ensureHubModel for FILES in a separate Node process, as a second CLI run would. */
function childDownload(hubUrl: string, cacheDir: string): ChildProcess {
  const code = `const { ensureHubModel } = await import(process.env.HUB_MODULE);
    const o = JSON.parse(process.env.HUB_ARGS);
    await ensureHubModel(o.id, o.files, { hubUrl: o.hubUrl, cacheDir: o.cacheDir });`;
  return spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: repoRoot,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, HUB_MODULE: pathToFileURL(path.join(repoRoot, "src/model/hub.ts")).href, HUB_ARGS: JSON.stringify({ id: ID, files: FILES, hubUrl, cacheDir }) },
  });
}

const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (const started = Date.now(); !(await check()); await sleep(10)) {
    if (Date.now() - started > 10_000) assert.fail(`timed out waiting for ${what}`);
  }
}

const hasBytes = (file: string) => async () => ((await stat(file).catch(() => undefined))?.size ?? 0) > 0;

/** Starts a child process downloading the model (slowly) and waits until it is writing the big file. */
async function otherProcessDownloading(t: TestContext) {
  const fx = await fixture(t);
  const hub = await server(t, fx.root, { throttle: { chunkBytes: 8192, delayMs: 15 } });
  const dest = path.join(cachedModelDir(ID, { cacheDir: fx.cache }), BIG);
  const child = childDownload(hub.url, fx.cache);
  const childDone = exited(child);
  t.after(() => child.kill());
  await until(hasBytes(`${dest}.part`), "the other process to start on the big file");
  return { fx, hub, dest, child, childDone };
}

test("another process downloading the same model: this one waits for it, and each file is fetched once", { timeout: LOCK_TEST_TIMEOUT_MS }, async (t) => {
  const { fx, hub, childDone } = await otherProcessDownloading(t);
  const dir = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache });
  assert.equal(await childDone, 0);
  await assertSameFiles(dir, fx);
  for (const rel of fx.content.keys()) assert.equal(gets(hub.requests, rel).length, 1, rel);
});

test("a process killed mid-file: the next run takes its lock over at once and resumes its part", { timeout: LOCK_TEST_TIMEOUT_MS }, async (t) => {
  const { fx, hub, dest, child, childDone } = await otherProcessDownloading(t);
  child.kill("SIGKILL");
  await childDone;
  assert.ok((await stat(`${dest}.lock`)).isFile(), "a killed process leaves its lock behind");
  const partSize = (await stat(`${dest}.part`)).size;

  const started = Date.now();
  const dir = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache });
  assert.ok(Date.now() - started < 5_000, "a dead owner's lock is not waited on");
  await assertSameFiles(dir, fx);
  assert.equal(gets(hub.requests, BIG).at(-1)!.range, `bytes=${partSize}-`);
});

test("a live lock is waited for; its owner's finished file is used", { timeout: LOCK_TEST_TIMEOUT_MS }, async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root);
  const dest = path.join(cachedModelDir(ID, { cacheDir: fx.cache }), BIG);
  await mkdir(path.dirname(dest), { recursive: true });
  // Held by this (live) process under another token: what a second process sees.
  await writeFile(`${dest}.lock`, JSON.stringify({ host: os.hostname(), pid: process.pid, token: "other" }));
  const other = setTimeout(() => {
    void writeFile(dest, fx.content.get(BIG)!).then(() => unlink(`${dest}.lock`));
  }, 400);
  t.after(() => clearTimeout(other));
  const dir = await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache });
  await assertSameFiles(dir, fx);
  assert.equal(gets(hub.requests, BIG).length, 0, "the other process's download was used");
});

test("waiting on a lock can be aborted", { timeout: LOCK_TEST_TIMEOUT_MS }, async (t) => {
  const fx = await fixture(t);
  const dest = path.join(cachedModelDir(ID, { cacheDir: fx.cache }), "config.json");
  await mkdir(path.dirname(dest), { recursive: true });
  await writeFile(`${dest}.lock`, JSON.stringify({ host: os.hostname(), pid: process.pid, token: "other" }));
  await assert.rejects(
    ensureHubModel(ID, FILES, { hubUrl: "http://127.0.0.1:1", cacheDir: fx.cache, signal: AbortSignal.timeout(300) }),
    (e: unknown) => e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError"),
  );
  assert.ok((await readFile(`${dest}.lock`, "utf8")).includes("other"), "someone else's lock is left alone");
});

test("stale locks (dead owner, or not refreshed for too long) are taken over", { timeout: LOCK_TEST_TIMEOUT_MS }, async (t) => {
  const fx = await fixture(t);
  const hub = await server(t, fx.root);
  const dir = cachedModelDir(ID, { cacheDir: fx.cache });
  await mkdir(path.join(dir, "onnx"), { recursive: true });
  // A process that has exited: its pid is (almost surely) free now.
  const deadPid = spawnSync(process.execPath, ["-e", ""]).pid;
  await writeFile(path.join(dir, "config.json.lock"), JSON.stringify({ host: os.hostname(), pid: deadPid, token: "dead" }));
  await writeFile(path.join(dir, `${BIG}.part`), fx.content.get(BIG)!.subarray(0, 50_000));
  const old = path.join(dir, `${BIG}.lock`);
  await writeFile(old, JSON.stringify({ host: "another-machine", pid: 1, token: "old" }));
  const past = new Date(Date.now() - 10 * 60_000);
  await utimes(old, past, past);

  const started = Date.now();
  await ensureHubModel(ID, FILES, { hubUrl: hub.url, cacheDir: fx.cache });
  assert.ok(Date.now() - started < 5_000, "no waiting for the default stale limit");
  await assertSameFiles(dir, fx);
  assert.equal(gets(hub.requests, BIG)[0]!.range, "bytes=50000-", "the dead owner's part is resumed");
});

// ---------------------------------------------------------------------------------------------
// Ids, cache folder and Hub URL from the environment
// ---------------------------------------------------------------------------------------------

test("isHubId: owner/name by the Hub's rules, and never an existing path", async (t) => {
  const none = () => false;
  for (const id of ["Xenova/clip-vit-base-patch32", "openai/clip-vit-large-patch14", "a/b", "A_1/x.y-z", "user/model.v2"]) {
    assert.equal(isHubId(id, none), true, id);
  }
  for (const ref of ["clip", "a/b/c", "./a/b", "../a/b", "/abs/path", "~/models/x", "~user/x", ".a/b", "-a/b", "a/b-", "a/.b", "a/b.", "a/b..c", "a/b--c", "a\\b", "a b/c", "a/", "/a", "C:\\m\\x", `a/${"x".repeat(97)}`]) {
    assert.equal(isHubId(ref, none), false, ref);
  }
  // An existing folder wins over the Hub: checked through the default exists (cwd-relative) by
  // handing it an absolute folder laid out as owner/name, and through an injected check.
  const cwd = await tempDir(t);
  await mkdir(path.join(cwd, "owner", "name"), { recursive: true });
  assert.equal(isHubId("owner/name", (p) => path.resolve(cwd, p) === path.join(cwd, "owner", "name")), false);
  assert.equal(isHubId("owner/other", (p) => path.resolve(cwd, p) === path.join(cwd, "owner", "name")), true);
  const saved = process.cwd();
  process.chdir(cwd);
  try {
    assert.equal(isHubId("owner/name"), false, "existing relative folder");
    assert.equal(isHubId("owner/missing"), true);
  } finally {
    process.chdir(saved);
  }
});

test("defaultCacheDir and hubUrlFrom read the environment", () => {
  assert.equal(defaultCacheDir({ CLIP_OOD_CACHE: "/x/cache", XDG_CACHE_HOME: "/xdg", HOME: "/home/u" }), "/x/cache");
  assert.equal(defaultCacheDir({ CLIP_OOD_CACHE: "~/c", HOME: "/home/u" }), "/home/u/c");
  assert.equal(defaultCacheDir({ CLIP_OOD_CACHE: "rel", HOME: "/home/u" }), path.resolve("rel"));
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "/xdg", HOME: "/home/u" }), "/xdg/clip-ood");
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "relative", HOME: "/home/u" }), "/home/u/.cache/clip-ood", "relative XDG is ignored");
  assert.equal(defaultCacheDir({ CLIP_OOD_CACHE: "", HOME: "/home/u" }), "/home/u/.cache/clip-ood");

  assert.equal(hubUrlFrom({}), "https://huggingface.co");
  assert.equal(hubUrlFrom({ CLIP_OOD_HUB_URL: "http://mirror.local:8080/hf//" }), "http://mirror.local:8080/hf");
  assert.equal(hubUrlFrom({ CLIP_OOD_HUB_URL: "" }), DEFAULT_HUB_URL);
});
