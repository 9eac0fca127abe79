/**
 * One Hub file into the cache, safely shared between processes: under its lock (io/file-lock.ts),
 * bytes go to `<file>.part`, are fsynced and renamed into place only once the size matches what the
 * server announced, so a file under its final name is always complete. A broken-off download resumes
 * from the `.part` with Range, and If-Range with the ETag that started it restarts from zero when the
 * file changed upstream meanwhile.
 */
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ClipOodError, messageOf } from "../errors.js";
import { FileLock, LockLost } from "../io/file-lock.js";
import { fileUrl, isFile } from "./hub-cache.js";

export interface DownloadProgress {
  file: string;
  /** Bytes of the file now on disk, including any resumed part. */
  received: number;
  total: number | undefined;
  done: boolean;
}

export interface DownloadOptions {
  hubUrl: string;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Automatic resumes of a download that breaks off mid-file, per file (default 3). */
  retries?: number;
  /** A lock not refreshed for this long is taken over (default 2 minutes). */
  lockStaleMs?: number;
}

/** The repository a file comes from and the cache folder it goes to. */
export interface Repo {
  id: string;
  revision: string;
  dir: string;
  opts: DownloadOptions;
  fetchImpl: typeof fetch;
}

export const OFFLINE_HINT =
  "Pass --model <folder> to use a local copy of the model (the Hugging Face layout: config.json, tokenizer.json, preprocessor_config.json, onnx/…), or set CLIP_OOD_HUB_URL to a reachable mirror.";

/** fetch() itself failed: no answer from the server at all. */
export class NetworkError extends Error {
  constructor(
    readonly detail: string,
    override readonly cause: unknown,
  ) {
    super(detail);
  }
}

/** The body broke off; the `.part` holds what arrived. */
class Interrupted extends Error {}

/**
 * Puts the repository path `file` into the cache folder unless another process does so first;
 * "absent" when the Hub has no such file.
 */
export async function obtainFile(ctx: Repo, file: string): Promise<"ok" | "absent"> {
  const dest = path.join(ctx.dir, file);
  await mkdir(path.dirname(dest), { recursive: true });
  for (;;) {
    const lock = await FileLock.acquire(`${dest}.lock`, () => isFile(dest), { staleMs: ctx.opts.lockStaleMs, signal: ctx.opts.signal });
    if (!lock) return "ok"; // another process finished it while we waited
    try {
      if (await isFile(dest)) return "ok";
      return await downloadWithRetries(ctx, file, dest, lock);
    } catch (e) {
      if (!(e instanceof LockLost)) throw e;
    } finally {
      await lock.release();
    }
  }
}

async function downloadWithRetries(ctx: Repo, file: string, dest: string, lock: FileLock): Promise<"ok" | "absent"> {
  const retries = ctx.opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      return await download(ctx, file, dest, lock);
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

/** One request for `file`, resuming from `<dest>.part` when there is one. */
async function download(ctx: Repo, file: string, dest: string, lock: FileLock): Promise<"ok" | "absent"> {
  const { opts, id } = ctx;
  const url = fileUrl(opts.hubUrl, id, ctx.revision, file);
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
        report(opts, file, offset, offset, true);
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
      throw httpError(ctx, file, url, res);
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
      await streamBody(res, fh, lock, (n) => report(opts, file, n, total, false), start, opts.signal);
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
      throw new Interrupted(`download of ${file} from ${url} broke off after ${size} of ${total ?? "?"} bytes (${why})`, { cause: failure });
    }
    if (total !== undefined && size < total) {
      throw new Interrupted(`download of ${file} from ${url} ended after ${size} of ${total} bytes`);
    }
    if (total !== undefined && size > total) {
      await unlink(part).catch(() => undefined); // cannot be this file: start over
      continue;
    }
    await lock.ensureHeld();
    await finish(part, dest, etagFile);
    report(opts, file, size, total ?? size, true);
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

function httpError(ctx: Repo, file: string, url: string, res: Response): ClipOodError {
  const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`;
  const hint =
    res.status === 401 || res.status === 403
      ? `the Hub answers ${res.status} for private, gated or misspelled repositories: check the model id "${ctx.id}", or download the model yourself and pass --model <folder>`
      : res.status >= 500 || res.status === 429
        ? "the Hub (or mirror) is failing or rate-limiting; try again later, or pass --model <folder> with a local copy"
        : `check the model id "${ctx.id}" and the revision "${ctx.revision}", or pass --model <folder> with a local copy`;
  return new ClipOodError("DOWNLOAD", `model "${ctx.id}": ${url} answered ${status} for ${file}`, { hint });
}

function report(opts: DownloadOptions, file: string, received: number, total: number | undefined, done: boolean): void {
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

export function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}
