/**
 * Where Hub models live on disk and on the Hub: `${cacheDir}/models/<owner>/<name>/<revision>/<path as
 * on the Hub>`, so the folder is itself a model folder in the Hugging Face layout and the rest of the
 * toolkit treats it like any local `--model <folder>`. Also the ids the Hub accepts, the file URLs,
 * the cache root and Hub URL from the environment, and the record of optional files the Hub lacks.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, rename, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ClipOodError } from "../errors.js";

export const DEFAULT_MODEL_ID = "Xenova/clip-vit-base-patch32";
export const DEFAULT_HUB_URL = "https://huggingface.co";

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

export function cachedModelDir(id: string, opts: { cacheDir: string; revision?: string }): string {
  const [owner, name] = parseHubId(id);
  return path.join(opts.cacheDir, "models", owner, name, revisionDirName(opts.revision ?? "main"));
}

export function checkRepoPath(id: string, file: string): void {
  const parts = file.split("/");
  if (file.includes("\\") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new ClipOodError("USAGE", `model "${id}": "${file}" is not a relative file path inside the repository`, {
      hint: "name Hub files with forward slashes relative to the repository root, e.g. onnx/vision_model.onnx",
    });
  }
}

export function fileUrl(hubUrl: string, id: string, revision: string, file: string): string {
  return `${hubUrl}/${id}/resolve/${encodeURIComponent(revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;
}

/** Optional files the Hub answered 404 for, so later runs need not ask again. */
const ABSENT_FILE = ".hub-absent.json";

export async function readAbsent(dir: string): Promise<Set<string>> {
  const text = await readFile(path.join(dir, ABSENT_FILE), "utf8").catch(() => "[]");
  try {
    const list: unknown = JSON.parse(text);
    return new Set(Array.isArray(list) ? list.filter((x): x is string => typeof x === "string") : []);
  } catch {
    return new Set(); // a torn or foreign file only costs a request
  }
}

export async function writeAbsent(dir: string, absent: ReadonlySet<string>): Promise<void> {
  const tmp = path.join(dir, `${ABSENT_FILE}.${process.pid}.${randomBytes(4).toString("hex")}`);
  await writeFile(tmp, JSON.stringify([...absent].sort()));
  await rename(tmp, path.join(dir, ABSENT_FILE));
}

/** Files reach their final name only when complete (hub-download.ts), so existence is the whole cache check. */
export async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}
