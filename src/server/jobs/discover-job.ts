/**
 * Discovery over HTTP (docs/API.md): `POST /v1/discover` read and checked before its job is queued,
 * so that a malformed request is answered 400 at once instead of failing minutes later; the job's run;
 * and `POST /v1/detectors/:name/discovered`, adding a discovery's clusters to a server detector.
 *
 * Server sets go to `discover` as paths, embedded through the store; uploads are embedded here (the
 * store keys images by path, and uploads have none) and handed over as embeddings.
 */
import type { ImageSource } from "../../clip.js";
import { discover } from "../../discover/discover.js";
import { parseDiscovery } from "../../discover/discovery-file.js";
import type { DiscoverOptions, DiscoverStage, DiscoveryResult } from "../../discover/types.js";
import { ClipOodError } from "../../errors.js";
import type { EmbeddingStore } from "../../store/store.js";
import { checkLength } from "../limits.js";
import type { Limits } from "../limits.js";
import type { RequestInput } from "../http/request.js";
import type { ClipService } from "../service.js";

/** A checked discovery request: its images and the options that HTTP can set (no store, no callbacks). */
export interface DiscoveryJobSpec {
  inputs: { paths: string[] } | { uploads: ImageSource[] };
  options: DiscoverOptions;
}

const EXAMPLE = '{"path": "rejected", "detector": "products", "onlyOod": true, "vocabulary": "wordnet"}';

function usage(message: string, hint = `e.g. ${EXAMPLE}`): ClipOodError {
  return new ClipOodError("USAGE", message, { hint });
}

/** An optional boolean field: JSON true/false, or the text "true"/"false" in multipart. */
function flag(input: RequestInput, field: string): boolean | undefined {
  const v = input.text(field);
  if (v === undefined || v === "") return undefined;
  if (v !== "true" && v !== "false") throw usage(`${field} must be true or false, got ${JSON.stringify(input.raw(field) ?? v)}`);
  return v === "true";
}

/** An optional whole number in [min, max]. */
function whole(input: RequestInput, field: string, min: number, max: number, hint: string): number | undefined {
  const v = input.text(field);
  if (v === undefined || v === "") return undefined;
  const n = /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw usage(`${field} must be a whole number from ${min} to ${max}, got ${JSON.stringify(input.raw(field) ?? v)}`, hint);
  return n;
}

/** Reads and checks a `POST /v1/discover` request: everything that can fail before the job runs fails here. */
export async function readDiscoverRequest(input: RequestInput, s: ClipService, limits: Limits): Promise<DiscoveryJobSpec> {
  const uploads = input.files("image");
  const setPath = input.text("path");
  if (uploads.length > 0 && setPath) throw usage('send either images or "path", not both', 'upload images, or name a folder on the server with {"path": "<folder inside a data root>"}');
  let inputs: DiscoveryJobSpec["inputs"];
  if (uploads.length > 0) inputs = { uploads: s.images(uploads) };
  else if (setPath) {
    const set = await s.dataset(setPath, "discovery set");
    // An embeddings file has rows, not images: discovery takes image files, whose paths it reports.
    if (set.images.length === 0) throw usage(`discovery set ${setPath} holds no images`, "name a folder, list or CSV of image files inside a data root");
    inputs = { paths: set.images.map((i) => i.input) };
  }
  else throw usage("discovery needs images", 'upload them in fields named "image" (JSON: "images"), or send {"path": "<folder inside a data root>"}');

  const name = input.text("detector") || undefined;
  const classList = input.list("classes");
  if (name !== undefined && classList !== undefined) throw usage('send either "detector" or "classes", not both: a detector brings its own classes');
  if (name === undefined && classList === undefined) throw new ClipOodError("CLASSES", "discovery needs the known classes", { hint: 'send "detector": "<server detector>" or "classes": "cat,dog"' });
  const options: DiscoverOptions = {};
  if (name !== undefined) {
    options.detector = await s.get(name);
    // Recorded where the CLI records the detector's file, so that the result names the detector to grow.
    options.detectorFile = name;
  } else {
    options.classes = s.classes(classList);
  }
  const templates = input.list("templates");
  if (templates !== undefined) options.templates = s.templates(templates);

  const onlyOod = flag(input, "onlyOod");
  if (onlyOod) {
    if (!options.detector) throw usage('onlyOod keeps the images a detector rejects: name the detector in "detector"');
    if (!options.detector.threshold) throw usage(`onlyOod needs a threshold, and detector "${name}" has none`, `calibrate it first (POST /v1/detectors/${name}/calibrate), or leave out onlyOod`);
    options.onlyOod = true;
  }
  const k = input.text("k");
  if (k !== undefined && k !== "" && k !== "auto") options.k = whole(input, "k", 0, 1000, 'k is "auto" (estimated) or the number of new clusters, e.g. 3')!;
  const seed = whole(input, "seed", 0, 2 ** 32 - 1, "e.g. 0; the same seed gives the same clusters");
  if (seed !== undefined) options.seed = seed;

  const vocabulary = input.list("vocabulary");
  if (vocabulary !== undefined) {
    const words = vocabulary.map((w) => w.trim()).filter((w) => w !== "");
    if (words.length === 0) throw usage("the vocabulary is empty", '"vocabulary": "wordnet" (the default), or a list of candidate names such as ["fox", "badger"]');
    if (words.length === 1 && words[0] === "wordnet") options.vocabulary = "wordnet";
    else {
      for (const w of words) checkLength(w, limits, `vocabulary word "${w.slice(0, 40)}…"`);
      options.vocabulary = words;
      options.vocabularySource = "request";
    }
  }
  return { inputs, options };
}

/** Runs a checked discovery; `onProgress` hears each stage, embedding included. */
export async function runDiscovery(s: ClipService, spec: DiscoveryJobSpec, store: EmbeddingStore | undefined, onProgress: (stage: DiscoverStage, done: number, total: number) => void): Promise<DiscoveryResult> {
  if ("paths" in spec.inputs) return discover(s.model, spec.inputs.paths, { ...spec.options, ...(store ? { store } : {}), onProgress });
  const { embedded, failed } = await s.embedUploads(spec.inputs.uploads, (done, total) => onProgress("embedding", done, total));
  if (embedded.inputs.length === 0) throw new ClipOodError("IMAGE", `none of the ${spec.inputs.uploads.length} uploaded images could be read; the first: ${failed[0]?.reason ?? "unknown"}`, { hint: "send JPEG, PNG, WebP, GIF, TIFF or AVIF files" });
  const result = await discover(s.model, embedded, { ...spec.options, onProgress });
  return failed.length > 0 ? { ...result, failed: [...failed, ...result.failed] } : result;
}

/** A checked `POST /v1/detectors/:name/discovered` body. */
export interface AddDiscoveredRequest {
  /** The discovery job to take the clusters from, or the discovery itself (a discovery.json). */
  source: { job: string } | { discovery: DiscoveryResult };
  clusters?: number[];
  names?: Record<number, string>;
}

const ADD_EXAMPLE = '{"job": "<discovery job id>", "clusters": [1, 3], "names": {"1": "fox"}}';

function clusterId(v: unknown, where: string): number {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw usage(`${where} is not a cluster id: ${JSON.stringify(v)}`, `cluster ids are the clusters' "id" numbers (1, 2, …), e.g. ${ADD_EXAMPLE}`);
  return n;
}

export function readAddDiscoveredRequest(body: unknown, limits: Limits): AddDiscoveredRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw usage("the request body must be a JSON object", ADD_EXAMPLE);
  const b = body as Record<string, unknown>;
  let source: AddDiscoveredRequest["source"];
  if (b.job !== undefined && b.discovery !== undefined) throw usage('send either "job" or "discovery", not both', ADD_EXAMPLE);
  if (typeof b.job === "string" && b.job !== "") source = { job: b.job };
  else if (b.job !== undefined) throw usage('"job" must be the id of a discovery job', ADD_EXAMPLE);
  // Checked as a discovery file is: it may come from anywhere.
  else if (b.discovery !== undefined) source = { discovery: parseDiscovery(JSON.stringify(b.discovery), 'the request\'s "discovery"') };
  else throw usage('name the discovery: "job" (a discovery job\'s id) or "discovery" (a discovery.json)', ADD_EXAMPLE);

  const out: AddDiscoveredRequest = { source };
  if (b.clusters !== undefined) {
    if (!Array.isArray(b.clusters) || b.clusters.length === 0) throw usage('"clusters" must be a non-empty array of cluster ids (leave it out to add every cluster)', ADD_EXAMPLE);
    out.clusters = b.clusters.map((c, i) => clusterId(c, `clusters[${i}]`));
  }
  if (b.names !== undefined) {
    if (typeof b.names !== "object" || b.names === null || Array.isArray(b.names)) throw usage('"names" must map cluster ids to names, e.g. {"1": "fox"}', ADD_EXAMPLE);
    const names: Record<number, string> = {};
    for (const [k, v] of Object.entries(b.names)) {
      const id = clusterId(k, `names key "${k}"`);
      if (typeof v !== "string" || v.trim() === "") throw usage(`the name of cluster ${id} must be a non-empty string, got ${JSON.stringify(v)}`, ADD_EXAMPLE);
      checkLength(v.trim(), limits, `the name of cluster ${id}`);
      names[id] = v.trim();
    }
    out.names = names;
  }
  return out;
}
