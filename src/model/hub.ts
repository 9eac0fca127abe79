/**
 * Fetches a model from the Hugging Face Hub into a local cache, once: the files an id needs are looked
 * up in the cache (hub-cache.ts) and only the missing ones are downloaded (hub-download.ts), each whole
 * or not at all, so a second run makes no network request. Offline, or with the Hub out of reach, a
 * missing required file is one error naming every file still needed.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { ClipOodError } from "../errors.js";
import { cachedModelDir, checkRepoPath, fileUrl, isFile, readAbsent, writeAbsent } from "./hub-cache.js";
import { NetworkError, OFFLINE_HINT, obtainFile, oneLine } from "./hub-download.js";
import type { DownloadOptions, Repo } from "./hub-download.js";

export interface HubFile {
  /** Relative path inside the repository, with forward slashes, e.g. "onnx/vision_model_quantized.onnx". */
  path: string;
  /** Skipped silently when the Hub does not have it. */
  optional?: boolean;
}

export interface HubOptions extends DownloadOptions {
  cacheDir: string;
  /** Branch, tag or commit; default "main". */
  revision?: string;
  fetchImpl?: typeof fetch;
  /** Never touch the network. Callers fold CLIP_OOD_OFFLINE=1 / HF_HUB_OFFLINE=1 into this. */
  offline?: boolean;
}

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

  const ctx: Repo = { id, revision, dir, opts, fetchImpl: opts.fetchImpl ?? fetch };
  if (opts.offline) {
    failIfRequiredMissing(ctx, pending, "offline mode is on");
    return dir;
  }
  await mkdir(dir, { recursive: true });
  for (const [i, f] of pending.entries()) {
    let outcome: "ok" | "absent";
    try {
      outcome = await obtainFile(ctx, f.path);
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

function failIfRequiredMissing(ctx: Repo, missing: readonly HubFile[], reason: string, cause?: unknown): void {
  const required = missing.filter((f) => !f.optional).map((f) => f.path);
  if (required.length === 0) return;
  const from = `${ctx.opts.hubUrl}/${ctx.id}/resolve/${encodeURIComponent(ctx.revision)}/`;
  const message = `model "${ctx.id}" is not in the cache and ${reason}: missing ${required.join(", ")} in ${ctx.dir} (would download from ${from})`;
  throw new ClipOodError("OFFLINE", oneLine(message), { hint: OFFLINE_HINT, ...(cause === undefined ? {} : { cause }) });
}
