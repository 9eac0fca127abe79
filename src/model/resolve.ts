/**
 * Turns what a user passes as --model (a local folder, a preset or a Hub id) into a checked local model folder,
 * downloading a Hub model into the cache the first time.
 */
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { ClipOodError } from "../errors.js";
import { CONFIG_FILES, OPTIONAL_FILES, onnxFile, openModelFolder } from "./folder.js";
import type { Dtype, ModelFolder } from "./folder.js";
import { ensureHubModel } from "./hub.js";
import type { HubFile } from "./hub.js";
import { defaultCacheDir, hubUrlFrom, isHubId } from "./hub-cache.js";
import type { DownloadProgress } from "./hub-download.js";
import { findPreset, presetNames } from "./presets.js";

export interface ResolveOptions {
  dtype: Dtype;
  cacheDir?: string;
  hubUrl?: string;
  /** Never touch the network (also CLIP_OOD_OFFLINE=1 or HF_HUB_OFFLINE=1). */
  offline?: boolean;
  revision?: string;
  onDownloadProgress?: (p: DownloadProgress) => void;
}

export interface ResolvedModel extends ModelFolder {
  /** The Hub id, or the folder's absolute path for local models. */
  id: string;
}

export function hubFiles(dtype: Dtype): HubFile[] {
  return [
    ...CONFIG_FILES.map((f) => ({ path: f })),
    ...OPTIONAL_FILES.map((f) => ({ path: f, optional: true })),
    { path: onnxFile("text", dtype) },
    { path: onnxFile("vision", dtype) },
  ];
}

export function offlineFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return ["CLIP_OOD_OFFLINE", "HF_HUB_OFFLINE"].some((k) => ["1", "true", "yes"].includes((env[k] ?? "").toLowerCase()));
}

/**
 * What --model names, in order: an existing folder (so a folder called "clip-b16" or "openai/clip"
 * wins, as it always has), a preset (./presets.ts), or a Hub id. Returns the Hub id a preset stands for.
 */
export function modelRefToHubId(ref: string): string | undefined {
  const preset = findPreset(ref);
  if (preset) return preset.hubId;
  return isHubId(ref) ? ref : undefined;
}

/**
 * The id `resolveModel(ref)` gives its model, without resolving it (nothing is read or downloaded): a
 * folder's absolute path, a preset's Hub id, or the Hub id as given.
 */
export function modelIdFor(ref: string, exists: (p: string) => boolean = existsSync): string {
  if (exists(ref)) return path.resolve(ref);
  return modelRefToHubId(ref) ?? ref;
}

export async function resolveModel(ref: string, o: ResolveOptions): Promise<ResolvedModel> {
  const local = await stat(ref).catch(() => undefined);
  if (local) return { id: path.resolve(ref), ...(await openModelFolder(path.resolve(ref), o.dtype)) };
  const id = modelRefToHubId(ref);
  if (id === undefined) {
    const named = ref.includes("/") || ref.includes(path.sep) ? "neither an existing folder nor a Hub id (owner/name)" : "not a preset, a Hub id (owner/name) or an existing folder";
    throw new ClipOodError("MODEL_FOLDER", `model "${ref}" is ${named}`, {
      hint: `use a preset (${presetNames()}; \`clip-ood models\` lists them all), a Hub id such as Xenova/clip-vit-base-patch32, or a folder with a CLIP export in the Hugging Face layout`,
    });
  }
  const dir = await ensureHubModel(id, hubFiles(o.dtype), {
    hubUrl: o.hubUrl ?? hubUrlFrom(),
    cacheDir: o.cacheDir ?? defaultCacheDir(),
    offline: o.offline ?? offlineFromEnv(),
    ...(o.revision === undefined ? {} : { revision: o.revision }),
    ...(o.onDownloadProgress === undefined ? {} : { onProgress: o.onDownloadProgress }),
  });
  return { id, ...(await openModelFolder(dir, o.dtype)) };
}

/**
 * The model a saved file (a detector) records, as a --model value. clip-ood records Hub ids and the
 * absolute paths of local folders; anything else — a relative path, which would resolve against
 * wherever the command happens to run, or a Hub id shadowed by a folder of that name here — did not
 * come from clip-ood and is refused rather than followed.
 */
export function recordedModelRef(id: string, source: string, exists: (p: string) => boolean = existsSync): string {
  if (path.isAbsolute(id)) return id;
  if (isHubId(id, exists)) return id;
  const why = isHubId(id, () => false) ? `a Hub id that a folder here (${path.resolve(id)}) also answers to` : "neither a Hub id nor an absolute folder path";
  throw new ClipOodError("USAGE", `${source} records its model as "${id}", ${why}`, {
    hint: "pass --model with the model folder or Hub id to use",
  });
}
