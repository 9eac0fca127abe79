/**
 * Fetches a model from the Hugging Face Hub into a local cache, once.
 *
 * Cache layout: `${cacheDir}/models/<owner>/<name>/<revision>/<path as on the Hub>`, so the folder is
 * itself a model folder in the Hugging Face layout and the rest of the toolkit treats it like any
 * local `--model <folder>`.
 *
 * A file under its final name is always complete: bytes go to `<file>.part` and are fsynced and renamed
 * into place only once the size matches what the server announced. Existence is therefore the whole
 * cache check, and a second run makes no network request at all.
 *
 * Concurrency design (why a lock rather than unique temp names): resuming needs a `.part` name that a
 * later process can find, and two processes appending to one `.part` would corrupt it. So a process
 * writes `<file>.part` only while it holds `<file>.lock`, created with `open(…, "wx")` (atomic
 * create-if-absent). The holder refreshes the lock's mtime every few seconds; others poll until the
 * final file appears or the lock goes away. A lock is taken over when its owner is a dead process on
 * this host or it has not been refreshed for `lockStaleMs` (a crash, or a machine sharing the cache).
 * Takeover renames the stale lock aside and checks it was the one judged stale, so two takers cannot
 * both win; and a holder that was frozen past the stale limit re-reads the lock before writing again
 * and backs off if it is no longer the owner.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { link, mkdir, open, readFile, rename, stat, unlink, utimes, writeFile } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ClipOodError, messageOf } from "../errors.js";

export const DEFAULT_MODEL_ID = "Xenova/clip-vit-base-patch32";
export const DEFAULT_HUB_URL = "https://huggingface.co";

export interface HubFile {
  /** Relative path inside the repository, with forward slashes, e.g. "onnx/vision_model_quantized.onnx". */
  path: string;
  /** Skipped silently when the Hub does not have it. */
  optional?: boolean;
}

export interface DownloadProgress {
  file: string;
  /** Bytes of the file now on disk, including any resumed part. */
  received: number;
  total: number | undefined;
  done: boolean;
}

export interface HubOptions {
  hubUrl: string;
  cacheDir: string;
  /** Branch, tag or commit; default "main". */
  revision?: string;
  fetchImpl?: typeof fetch;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Never touch the network. Callers fold CLIP_OOD_OFFLINE=1 / HF_HUB_OFFLINE=1 into this. */
  offline?: boolean;
  /** Automatic resumes of a download that breaks off mid-file, per file (default 3). */
  retries?: number;
  /** A lock not refreshed for this long is taken over (default 2 minutes). */
  lockStaleMs?: number;
}

// ---------------------------------------------------------------------------------------------
// Ids, paths and environment
// ---------------------------------------------------------------------------------------------

/**
 * One part of a Hub repo id, by the Hub's own rules (huggingface_hub `validate_repo_id`): letters,
 * digits, `_`, `-`, `.`; not starting or ending with `-` or `.`; no `--` or `..`; at most 96 characters.
 */
const ID_PART = /^[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$/;

function isIdPart(s: string): boolean {
  return s.length <= 96 && ID_PART.test(s) && !s.includes("..") && !s.includes("--");
}

/** `owner/name` syntax only, whatever is on disk. */
function hubIdParts(ref: string): [string, string] | undefined {
  const parts = ref.split("/");
  if (parts.length !== 2) return undefined;
  const [owner, name] = parts as [string, string];
  return isIdPart(owner) && isIdPart(name) ? [owner, name] : undefined;
}

/**
 * True when `ref` reads as a Hub id ("owner/name") and is not an existing local path: a folder the
 * user has called "openai/clip" wins over the Hub. `exists` is resolved against the process's cwd;
 * pass another to check elsewhere.
 */
export function isHubId(ref: string, exists: (p: string) => boolean = existsSync): boolean {
  if (ref.startsWith("~") || path.isAbsolute(ref) || ref.includes("\\")) return false;
  return hubIdParts(ref) !== undefined && !exists(ref);
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const home = env["HOME"] || env["USERPROFILE"] || os.homedir();
  const explicit = env["CLIP_OOD_CACHE"];
  if (explicit) return path.resolve(explicit === "~" || explicit.startsWith("~/") ? home + explicit.slice(1) : explicit);
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env["XDG_CACHE_HOME"];
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, "clip-ood");
  return path.join(home, ".cache", "clip-ood");
}

export function hubUrlFrom(env: NodeJS.ProcessEnv = process.env): string {
  const url = env["CLIP_OOD_HUB_URL"]?.trim();
  return (url || DEFAULT_HUB_URL).replace(/\/+$/, "");
}

/**
 * Revisions can hold `/` ("refs/pr/1"); percent-encoding everything but `[A-Za-z0-9_-]` and a
 * non-leading `.` keeps them one safe path component, and distinct revisions distinct folders.
 */
function revisionDirName(revision: string): string {
  return [...Buffer.from(revision, "utf8")]
    .map((b, i) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9_-]/.test(c) || (c === "." && i > 0) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    })
    .join("");
}

function parseHubId(id: string): [string, string] {
  const parts = hubIdParts(id);
  if (!parts) {
    throw new ClipOodError("USAGE", `"${id}" is not a Hugging Face Hub model id (owner/name)`, {
      hint: `use an id such as ${DEFAULT_MODEL_ID}, or pass --model <folder> for a local copy`,
    });
  }
  return parts;
}

export function cachedModelDir(id: string, opts: Pick<HubOptions, "cacheDir" | "revision">): string {
  const [owner, name] = parseHubId(id);
  return path.join(opts.cacheDir, "models", owner, name, revisionDirName(opts.revision ?? "main"));
}

function checkRepoPath(id: string, file: string): void {
  const parts = file.split("/");
  if (file.includes("\\") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new ClipOodError("USAGE", `model "${id}": "${file}" is not a relative file path inside the repository`, {
      hint: "name Hub files with forward slashes relative to the repository root, e.g. onnx/vision_model.onnx",
    });
  }
}

function fileUrl(hubUrl: string, id: string, revision: string, file: string): string {
  return `${hubUrl}/${id}/resolve/${encodeURIComponent(revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;
}

// ---------------------------------------------------------------------------------------------
// ensureHubModel
// ---------------------------------------------------------------------------------------------

const OFFLINE_HINT =
  "Pass --model <folder> to use a local copy of the model (the Hugging Face layout: config.json, tokenizer.json, preprocessor_config.json, onnx/…), or set CLIP_OOD_HUB_URL to a reachable mirror.";

/** Optional files the Hub answered 404 for, so later runs need not ask again. */
const ABSENT_FILE = ".hub-absent.json";

/**
 * Returns the cache folder holding every file of `files` that exists on the Hub, downloading the ones
 * not yet cached. All-cached models touch no network.
 */
export async function ensureHubModel(id: string, files: readonly HubFile[], opts: HubOptions): Promise<string> {
  const revision = opts.revision ?? "main";
  const dir = cachedModelDir(id, { cacheDir: opts.cacheDir, revision });
  for (const f of files) checkRepoPath(id, f.path);
  const absent = await readAbsent(dir);
  const pending: HubFile[] = [];
  for (const f of files) {
    if (f.optional && absent.has(f.path)) continue;
    if (!(await isFile(path.join(dir, f.path)))) pending.push(f);
  }
  if (pending.length === 0) return dir;

  const ctx: Ctx = { id, revision, dir, opts, fetchImpl: opts.fetchImpl ?? fetch };
  if (opts.offline) {
    failIfRequiredMissing(ctx, pending, "offline mode is on");
    return dir;
  }
  await mkdir(dir, { recursive: true });
  for (const [i, f] of pending.entries()) {
    let outcome: "ok" | "absent";
    try {
      outcome = await obtainFile(ctx, f);
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      // One error for everything still missing, rather than one per file on successive runs.
      const rest: HubFile[] = [];
      for (const g of pending.slice(i)) if (!(await isFile(path.join(dir, g.path)))) rest.push(g);
      failIfRequiredMissing(ctx, rest, `${opts.hubUrl} could not be reached (${e.detail})`, e.cause);
      return dir; // only optional files were left
    }
    if (outcome === "absent") {
      if (!f.optional) {
        const url = fileUrl(opts.hubUrl, id, revision, f.path);
        throw new ClipOodError("DOWNLOAD", `model "${id}": ${f.path} not found at ${url}`, {
          hint: `check the model id "${id}", the revision "${revision}" and --dtype (not every export has every variant: see the Files tab of the model on the Hub)`,
        });
      }
      absent.add(f.path);
      await writeAbsent(dir, absent);
    }
  }
  return dir;
}

interface Ctx {
  id: string;
  revision: string;
  dir: string;
  opts: HubOptions;
  fetchImpl: typeof fetch;
}

function failIfRequiredMissing(ctx: Ctx, missing: readonly HubFile[], reason: string, cause?: unknown): void {
  const required = missing.filter((f) => !f.optional).map((f) => f.path);
  if (required.length === 0) return;
  const from = `${ctx.opts.hubUrl}/${ctx.id}/resolve/${encodeURIComponent(ctx.revision)}/`;
  const message = `model "${ctx.id}" is not in the cache and ${reason}: missing ${required.join(", ")} in ${ctx.dir} (would download from ${from})`;
  throw new ClipOodError("OFFLINE", oneLine(message), { hint: OFFLINE_HINT, ...(cause === undefined ? {} : { cause }) });
}

async function readAbsent(dir: string): Promise<Set<string>> {
  const text = await readFile(path.join(dir, ABSENT_FILE), "utf8").catch(() => "[]");
  try {
    const list: unknown = JSON.parse(text);
    return new Set(Array.isArray(list) ? list.filter((x): x is string => typeof x === "string") : []);
  } catch {
    return new Set(); // a torn or foreign file only costs a request
  }
}

async function writeAbsent(dir: string, absent: ReadonlySet<string>): Promise<void> {
  const tmp = path.join(dir, `${ABSENT_FILE}.${process.pid}.${randomBytes(4).toString("hex")}`);
  await writeFile(tmp, JSON.stringify([...absent].sort()));
  await rename(tmp, path.join(dir, ABSENT_FILE));
}

// ---------------------------------------------------------------------------------------------
// One file: lock, download with resume, rename into place
// ---------------------------------------------------------------------------------------------

/** fetch() itself failed: no answer from the server at all. */
class NetworkError extends Error {
  constructor(
    readonly detail: string,
    override readonly cause: unknown,
  ) {
    super(detail);
  }
}

/** The body broke off; the `.part` holds what arrived. */
class Interrupted extends Error {}

/** Another process took our lock over (we were frozen past the stale limit): stop writing. */
class LockLost extends Error {}

async function obtainFile(ctx: Ctx, f: HubFile): Promise<"ok" | "absent"> {
  const dest = path.join(ctx.dir, f.path);
  await mkdir(path.dirname(dest), { recursive: true });
  for (;;) {
    const lock = await FileLock.acquire(`${dest}.lock`, dest, ctx.opts);
    if (!lock) return "ok"; // another process finished it while we waited
    try {
      if (await isFile(dest)) return "ok";
      return await downloadWithRetries(ctx, f, dest, lock);
    } catch (e) {
      if (!(e instanceof LockLost)) throw e;
    } finally {
      await lock.release();
    }
  }
}

async function downloadWithRetries(ctx: Ctx, f: HubFile, dest: string, lock: FileLock): Promise<"ok" | "absent"> {
  const retries = ctx.opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      return await download(ctx, f, dest, lock);
    } catch (e) {
      if (!(e instanceof Interrupted)) throw e;
      if (attempt >= retries) {
        throw new ClipOodError("DOWNLOAD", `model "${ctx.id}": ${e.message}`, {
          hint: `run the same command again: the download resumes from ${dest}.part`,
          cause: e.cause,
        });
      }
      await sleep(500 * (attempt + 1), undefined, ctx.opts.signal ? { signal: ctx.opts.signal } : {});
    }
  }
}

/** One request for `f`, resuming from `<dest>.part` when there is one. */
async function download(ctx: Ctx, f: HubFile, dest: string, lock: FileLock): Promise<"ok" | "absent"> {
  const { opts, id } = ctx;
  const url = fileUrl(opts.hubUrl, id, ctx.revision, f.path);
  const part = `${dest}.part`;
  // The ETag of the response that started the part: If-Range makes the server send the whole file
  // instead of a range when the file changed upstream since (a branch such as "main" moved).
  const etagFile = `${part}.etag`;
  for (let restarts = 0; ; restarts++) {
    if (restarts > 2) throw new ClipOodError("DOWNLOAD", `model "${id}": ${url} keeps answering inconsistent ranges`, { hint: OFFLINE_HINT });
    const offset = (await stat(part).catch(() => undefined))?.size ?? 0;
    // Identity encoding: a compressed body would not match Content-Length or byte ranges.
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (offset > 0) {
      headers["range"] = `bytes=${offset}-`;
      const etag = (await readFile(etagFile, "utf8").catch(() => "")).trim();
      if (etag) headers["if-range"] = etag;
    }
    let res: Response;
    try {
      res = await ctx.fetchImpl(url, { headers, redirect: "follow", ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw new NetworkError(describeNetworkError(e), e);
    }

    if (res.status === 404) {
      await res.body?.cancel();
      return "absent";
    }
    if (res.status === 416) {
      // Nothing left past our offset: either the part is the whole file, or it is not this file.
      await res.body?.cancel();
      const total = /^bytes \*\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1];
      if (total !== undefined && Number(total) === offset) {
        await lock.ensureHeld();
        await finish(part, dest, etagFile);
        report(opts, f.path, offset, offset, true);
        return "ok";
      }
      await unlink(part).catch(() => undefined);
      continue;
    }
    let start = 0;
    let total: number | undefined;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
      if (!m || Number(m[1]) !== offset) {
        await res.body?.cancel();
        await unlink(part).catch(() => undefined);
        continue;
      }
      start = offset;
      total = m[3] === "*" ? undefined : Number(m[3]);
    } else if (res.status === 200) {
      total = contentLength(res);
    } else {
      await res.body?.cancel();
      throw httpError(ctx, f, url, res);
    }

    await lock.ensureHeld();
    if (res.status === 200) {
      const etag = res.headers.get("etag");
      if (etag && !etag.startsWith("W/")) await writeFile(etagFile, etag);
      else await unlink(etagFile).catch(() => undefined);
    }
    const fh = await open(part, start === 0 ? "w" : "a");
    let failure: unknown;
    try {
      await streamBody(res, fh, lock, (n) => report(opts, f.path, n, total, false), start, opts.signal);
      await fh.sync();
    } catch (e) {
      failure = e;
    } finally {
      await fh.close();
    }
    const size = (await stat(part)).size;
    if (failure !== undefined) {
      if (failure instanceof LockLost || opts.signal?.aborted) throw failure;
      const why = describeNetworkError(failure);
      throw new Interrupted(`download of ${f.path} from ${url} broke off after ${size} of ${total ?? "?"} bytes (${why})`, { cause: failure });
    }
    if (total !== undefined && size < total) {
      throw new Interrupted(`download of ${f.path} from ${url} ended after ${size} of ${total} bytes`);
    }
    if (total !== undefined && size > total) {
      await unlink(part).catch(() => undefined); // cannot be this file: start over
      continue;
    }
    await lock.ensureHeld();
    await finish(part, dest, etagFile);
    report(opts, f.path, size, total ?? size, true);
    return "ok";
  }
}

/** Copies the body into `fh` chunk by chunk, so memory stays flat whatever the file size. */
async function streamBody(
  res: Response,
  fh: FileHandle,
  lock: FileLock,
  progress: (received: number) => void,
  start: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  let received = start;
  progress(received);
  if (!res.body) return;
  const reader = res.body.getReader();
  let last = Date.now();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      signal?.throwIfAborted();
      await lock.ensureHeld();
      await writeAll(fh, value);
      received += value.byteLength;
      // Throttled: a 350 MB file arrives in tens of thousands of chunks.
      if (Date.now() - last >= 100) {
        last = Date.now();
        progress(received);
      }
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  } finally {
    reader.releaseLock();
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let off = 0; off < chunk.byteLength; ) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
    off += bytesWritten;
  }
}

async function finish(part: string, dest: string, etagFile: string): Promise<void> {
  await rename(part, dest);
  await unlink(etagFile).catch(() => undefined);
  // Make the rename itself durable; not possible on every platform, and only a nicety there.
  const dirFh = await open(path.dirname(dest), "r").catch(() => undefined);
  await dirFh?.sync().catch(() => undefined);
  await dirFh?.close();
}

function contentLength(res: Response): number | undefined {
  const v = res.headers.get("content-length");
  const encoded = (res.headers.get("content-encoding") ?? "identity") !== "identity";
  return v !== null && /^\d+$/.test(v) && !encoded ? Number(v) : undefined;
}

function httpError(ctx: Ctx, f: HubFile, url: string, res: Response): ClipOodError {
  const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`;
  const hint =
    res.status === 401 || res.status === 403
      ? `the Hub answers ${res.status} for private, gated or misspelled repositories: check the model id "${ctx.id}", or download the model yourself and pass --model <folder>`
      : res.status >= 500 || res.status === 429
        ? "the Hub (or mirror) is failing or rate-limiting; try again later, or pass --model <folder> with a local copy"
        : `check the model id "${ctx.id}" and the revision "${ctx.revision}", or pass --model <folder> with a local copy`;
  return new ClipOodError("DOWNLOAD", `model "${ctx.id}": ${url} answered ${status} for ${f.path}`, { hint });
}

function report(opts: HubOptions, file: string, received: number, total: number | undefined, done: boolean): void {
  opts.onProgress?.({ file, received, total, done });
}

/** fetch wraps the useful part ("connect ECONNREFUSED 127.0.0.1:9") in a chain of causes. */
function describeNetworkError(e: unknown): string {
  let c: unknown = e;
  let best = messageOf(e);
  for (let depth = 0; depth < 5 && c instanceof Error; depth++) {
    if (c instanceof AggregateError && c.errors.length > 0) c = c.errors[0];
    else if (c.cause !== undefined) c = c.cause;
    else break;
    const code = (c as { code?: unknown }).code;
    const msg = c instanceof Error ? c.message : "";
    if (msg) best = msg;
    else if (typeof code === "string") best = code;
  }
  return oneLine(best);
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}

// ---------------------------------------------------------------------------------------------
// Lock file
// ---------------------------------------------------------------------------------------------

interface LockOwner {
  host: string;
  pid: number;
  token: string;
}

const POLL_MS = 200;

class FileLock {
  private lost = false;
  private verifiedAt = Date.now();
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly file: string,
    private readonly token: string,
    private readonly heartbeatMs: number,
  ) {
    this.timer = setInterval(() => void this.verify(), heartbeatMs);
    this.timer.unref();
  }

  /**
   * Waits for the lock; resolves undefined instead when `dest` appears meanwhile (someone else
   * downloaded it).
   */
  static async acquire(file: string, dest: string, opts: HubOptions): Promise<FileLock | undefined> {
    const staleMs = opts.lockStaleMs ?? 120_000;
    const heartbeatMs = Math.max(20, Math.min(5_000, Math.floor(staleMs / 6)));
    const me: LockOwner = { host: os.hostname(), pid: process.pid, token: randomBytes(12).toString("hex") };
    const text = JSON.stringify(me);
    for (;;) {
      opts.signal?.throwIfAborted();
      try {
        const fh = await open(file, "wx");
        try {
          await fh.writeFile(text);
        } finally {
          await fh.close();
        }
        return new FileLock(file, text, heartbeatMs);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      if (await isFile(dest)) return undefined;
      const held = await readFile(file, "utf8").catch(() => undefined);
      const st = await stat(file).catch(() => undefined);
      if (held === undefined || !st) continue; // released between our calls
      if (isStale(held, st.mtimeMs, staleMs)) {
        await takeOver(file, held, me.token);
        continue;
      }
      await sleep(POLL_MS, undefined, opts.signal ? { signal: opts.signal } : {});
    }
  }

  /** Throws LockLost when another process owns the lock now. */
  async ensureHeld(): Promise<void> {
    if (!this.lost && Date.now() - this.verifiedAt > 2 * this.heartbeatMs) await this.verify();
    if (this.lost) throw new LockLost("lock taken over");
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    if (this.lost) return;
    const held = await readFile(this.file, "utf8").catch(() => undefined);
    if (held === this.token) await unlink(this.file).catch(() => undefined);
  }

  private async verify(): Promise<void> {
    if (this.lost) return;
    let held = await readFile(this.file, "utf8").catch(() => undefined);
    if (held === undefined) {
      // Moved aside by a taker that judged us stale, or by one about to put it back: we are alive,
      // so claim it again the same atomic way; whoever creates it first owns it.
      const fh = await open(this.file, "wx").catch(() => undefined);
      if (fh) {
        await fh.writeFile(this.token).finally(() => fh.close());
        held = this.token;
      } else {
        held = await readFile(this.file, "utf8").catch(() => undefined);
      }
    }
    if (held !== this.token) {
      this.lost = true;
      return;
    }
    const now = new Date();
    await utimes(this.file, now, now).catch(() => undefined);
    this.verifiedAt = Date.now();
  }
}

function isStale(held: string, mtimeMs: number, staleMs: number): boolean {
  if (Date.now() - mtimeMs > staleMs) return true;
  let owner: Partial<LockOwner>;
  try {
    owner = JSON.parse(held) as Partial<LockOwner>;
  } catch {
    return false; // half-written by a live creator, or foreign: let the age decide
  }
  if (owner.host !== os.hostname() || typeof owner.pid !== "number") return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH"; // EPERM: alive, someone else's
  }
}

/**
 * Removes the stale lock `held`. Rename is atomic, so of several takers only one moves a given lock
 * file; if what we moved is not the lock we judged stale (another taker already replaced it), we put
 * it back with link(), which never overwrites.
 */
async function takeOver(file: string, held: string, token: string): Promise<void> {
  const aside = `${file}.${token}.stale`;
  try {
    await rename(file, aside);
  } catch {
    return;
  }
  const moved = await readFile(aside, "utf8").catch(() => undefined);
  if (moved !== held) await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}
