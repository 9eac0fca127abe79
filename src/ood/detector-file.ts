/**
 * Saved detectors: a JSON file (format name, version, model, method, parameters, classes, prompts,
 * threshold) and a binary sidecar `<file>.bin` holding every typed array (text features, fitted
 * statistics) as little-endian float32, checked by SHA-256. Loading only parses JSON and bytes:
 * nothing in a detector file is ever executed.
 *
 * `serializeDetector` and `deserializeDetector` are the same format without files (the server keeps
 * detectors as rows of a shared database); `saveDetector` and `loadDetector` add the files around them.
 */
import { createHash } from "node:crypto";
import { copyFile, link, open, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { ClipOodError, messageOf } from "../errors.js";
import { partialPath } from "../io/atomic-file.js";
import { MAX_ARRAY_BYTES, readFileBounded, readTextBounded } from "../io/bounded-read.js";
import { DETECTOR_METHODS } from "./detector.js";
import type { Detector } from "./detector.js";
import { HEAD_SCORES } from "./heads/heads.js";

export const DETECTOR_FORMAT = "clip-ood-detector";
export const DETECTOR_VERSION = 1;

interface ArrayRef {
  $f32: [offset: number, length: number];
}

interface DetectorFile {
  format: string;
  version: number;
  createdBy: string;
  sidecar: { file: string; bytes: number; sha256: string };
  detector: unknown;
}

export function sidecarPath(file: string): string {
  return `${file}.bin`;
}

/**
 * The sidecar a detector JSON had before it was last saved over: a crash between the two renames of a
 * save leaves the old JSON beside the new sidecar, and the old JSON's checksum then finds its own here.
 */
function previousSidecarPath(file: string): string {
  return `${sidecarPath(file)}.prev`;
}

/** A detector as any storage holds it: the JSON document, and the float32 bytes its array references point into. */
export interface SerializedDetector {
  json: string;
  arrays: Buffer;
}

/** Where a serialised detector comes from, for its errors: how messages name it, and how to repair it. */
export interface DetectorSource {
  /** The file, or e.g. `"pets" in postgres://…`. */
  what: string;
  /** The hint of a damaged detector. */
  repairHint: string;
  /** The hint of a document that is no detector at all; default: make one with `clip-ood fit`. */
  foreignHint?: string;
}

/**
 * The detector as its JSON document and the bytes of every typed array in it (pure). `sidecarName` is
 * what the document records as its sidecar: the file beside it, or the name it would have as files.
 */
export function serializeDetector(detector: Detector, sidecarName: string): SerializedDetector {
  const { json, chunks } = serializeParts(detector, sidecarName);
  return { json, arrays: Buffer.concat(chunks) };
}

/**
 * serializeDetector with the array bytes left as views of the detector's own arrays, in order: a file
 * is written from them without first joining them into one buffer, a second copy of a bank that may
 * be gigabytes.
 */
function serializeParts(detector: Detector, sidecarName: string): { json: string; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  let offset = 0;
  const hash = createHash("sha256");
  const json = JSON.stringify(detector, (_key, value: unknown) => {
    if (value instanceof Float32Array) {
      const ref: ArrayRef = { $f32: [offset, value.length] };
      const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      chunks.push(bytes);
      hash.update(bytes);
      offset += value.length;
      return ref;
    }
    if (ArrayBuffer.isView(value)) throw new Error("only Float32Array buffers are stored in detector files");
    return value;
  });
  const doc: DetectorFile = {
    format: DETECTOR_FORMAT,
    version: DETECTOR_VERSION,
    createdBy: "clip-ood 0.1.0",
    sidecar: { file: sidecarName, bytes: offset * 4, sha256: hash.digest("hex") },
    detector: JSON.parse(json) as unknown,
  };
  return { json: JSON.stringify(doc, null, 1) + "\n", chunks };
}

/** Writes `chunks` one after another as `file`, without joining them in memory first. */
async function writeChunks(file: string, chunks: readonly Buffer[]): Promise<void> {
  const handle = await open(file, "w");
  try {
    for (const c of chunks) {
      // In slices (one write call takes at most 2 GiB), and on until each is all written.
      for (let at = 0; at < c.length; ) at += (await handle.write(c, at, Math.min(1 << 30, c.length - at))).bytesWritten;
    }
  } finally {
    await handle.close();
  }
}

/**
 * The detector a serialised pair holds (pure), refused with an INPUT ClipOodError naming `source.what`
 * when the JSON is damaged, foreign or newer, or the arrays do not match its checksum.
 */
export function deserializeDetector(s: SerializedDetector, source: DetectorSource): Detector {
  const doc = parseDocument(s.json, source);
  if (!matchesSidecar(s.arrays, doc.sidecar)) throw damagedError(source)("its arrays do not match the checksum");
  return reviveDocument(doc, s.arrays, source);
}

/**
 * Writes the detector so that a crash at any moment leaves either the old detector or the new one:
 * both files are written under temporary names and renamed into place, the old sidecar kept aside
 * until the new JSON is in place.
 */
export async function saveDetector(detector: Detector, file: string): Promise<void> {
  const { json, chunks } = serializeParts(detector, path.basename(sidecarPath(file)));
  const tmp = partialPath(file);
  try {
    await writeChunks(`${tmp}.bin`, chunks);
    await writeFile(tmp, json);
    await rm(previousSidecarPath(file), { force: true });
    await keepAside(sidecarPath(file), previousSidecarPath(file));
    await rename(`${tmp}.bin`, sidecarPath(file));
    await rename(tmp, file);
    await rm(previousSidecarPath(file), { force: true });
  } catch (e) {
    await Promise.all([rm(tmp, { force: true }), rm(`${tmp}.bin`, { force: true })]);
    throw new ClipOodError("INPUT", `cannot save detector ${file}: ${messageOf(e)}`, {
      hint: "free some disk space or choose another --out; a detector already at that path is left as it was",
      cause: e,
    });
  }
}

/** Keeps `from` under the name `to`: a hard link, or a copy where the file system has none; nothing if `from` is absent. */
async function keepAside(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    await copyFile(from, to);
  }
}

export async function loadDetector(file: string): Promise<Detector> {
  const source: DetectorSource = { what: file, repairHint: REPAIR_HINT };
  const damaged = damagedError(source);
  const text = await readTextBounded(file, { what: "detector", code: "INPUT", hint: MAKE_HINT });
  const doc = parseDocument(text, source);
  const sidecar = doc.sidecar;
  // The sidecar is this JSON's own name plus .bin, whatever name the record holds: a renamed pair loads,
  // and nothing outside the detector's folder is ever read. The checksum decides whether the two belong together.
  const sidecarFile = sidecarPath(file);
  const read = (f: string) => readFileBounded(f, { what: "detector sidecar", code: "INPUT", hint: REPAIR_HINT, maxBytes: MAX_ARRAY_BYTES });
  let bin: Buffer;
  try {
    bin = await read(sidecarFile);
  } catch (e) {
    throw damaged(`its sidecar ${sidecarFile} cannot be used (${messageOf(e)})`, e);
  }
  if (!matchesSidecar(bin, sidecar)) {
    // A save interrupted between its two renames: this JSON's own sidecar is the one kept aside.
    const previous = await read(previousSidecarPath(file)).catch(() => undefined);
    if (!previous || !matchesSidecar(previous, sidecar)) {
      throw new ClipOodError("INPUT", `detector ${file} and ${sidecarFile} are not a pair: the sidecar does not match the checksum ${file} records`, {
        hint: "the .bin belongs to another detector or was damaged: keep each .json with the .json.bin saved with it (rename or copy both), or save it again with `clip-ood fit`",
      });
    }
    bin = previous;
  }
  return reviveDocument(doc, bin, source);
}

const MAKE_HINT = "make one with `clip-ood fit … --out det.json`";

type Damaged = (why: string, cause?: unknown) => ClipOodError;

function damagedError(source: DetectorSource): Damaged {
  return (why, cause) =>
    new ClipOodError("INPUT", `detector ${source.what} is damaged: ${why}`, {
      hint: source.repairHint,
      ...(cause === undefined ? {} : { cause }),
    });
}

interface SidecarRecord {
  file: string;
  bytes: number;
  sha256: string;
}

/**
 * The document's checks that need no array bytes: JSON, format, version, the sidecar record, and a size
 * claim that matches exactly the arrays the JSON refers to (refused before any bytes are read).
 */
function parseDocument(text: string, source: DetectorSource): { sidecar: SidecarRecord; detector: unknown } {
  const damaged = damagedError(source);
  let doc: Partial<DetectorFile>;
  try {
    doc = JSON.parse(text) as Partial<DetectorFile>;
  } catch (e) {
    throw damaged(`not valid JSON (${messageOf(e)})`, e);
  }
  if (typeof doc !== "object" || doc === null || doc.format !== DETECTOR_FORMAT) {
    throw new ClipOodError("INPUT", `${source.what} is not a clip-ood detector`, { hint: source.foreignHint ?? MAKE_HINT });
  }
  if (typeof doc.version !== "number" || doc.version > DETECTOR_VERSION) {
    throw new ClipOodError("INPUT", `detector ${source.what} has format version ${String(doc.version)}, newer than this clip-ood reads (${DETECTOR_VERSION})`, {
      hint: "upgrade clip-ood, or fit the detector again with this version",
    });
  }
  const sidecar = doc.sidecar;
  if (!sidecar || typeof sidecar.sha256 !== "string" || typeof sidecar.file !== "string") throw damaged("no sidecar record");
  const floats = referencedFloats(doc.detector, damaged);
  if (sidecar.bytes !== floats * 4) throw damaged(`its sidecar record says ${String(sidecar.bytes)} bytes, its arrays need ${floats * 4}`);
  return { sidecar, detector: doc.detector };
}

function matchesSidecar(b: Buffer, sidecar: SidecarRecord): boolean {
  return b.length === sidecar.bytes && sha256(b) === sidecar.sha256;
}

/** The detector with its array references replaced by views of `bin`, checked for shape. */
function reviveDocument(doc: { detector: unknown }, bin: Buffer, source: DetectorSource): Detector {
  const damaged = damagedError(source);
  // A Buffer's offset into its pool need not be 4-byte aligned; copy it then, rather than fail to view it.
  const aligned = bin.byteOffset % 4 === 0 ? bin : Buffer.from(bin);
  const all = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.length / 4);
  const detector = revive(doc.detector, all, damaged) as Detector;
  validate(detector, damaged);
  return detector;
}

const REPAIR_HINT = "save it again with `clip-ood fit`, or restore both the .json and its .json.bin sidecar";

/** The number of floats the array references in a detector record cover (the end of the furthest one). */
function referencedFloats(value: unknown, damaged: (why: string) => ClipOodError): number {
  let end = 0;
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (typeof v !== "object" || v === null) return;
    const ref = (v as Partial<ArrayRef>).$f32;
    if (ref === undefined) return Object.values(v).forEach(visit);
    if (!Array.isArray(ref)) throw damaged("an array reference is not [offset, length]");
    const [offset, length] = ref;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) throw damaged("an array reference is not [offset, length]");
    end = Math.max(end, offset + length);
  };
  visit(value);
  if (end * 4 > MAX_ARRAY_BYTES) throw damaged(`its arrays would need ${end * 4} bytes, more than clip-ood reads`);
  return end;
}

function revive(value: unknown, floats: Float32Array, damaged: (why: string) => ClipOodError): unknown {
  if (Array.isArray(value)) return value.map((v) => revive(v, floats, damaged));
  if (typeof value !== "object" || value === null) return value;
  const ref = (value as Partial<ArrayRef>).$f32;
  if (ref !== undefined) {
    if (!Array.isArray(ref)) throw damaged("an array reference is not [offset, length]");
    const [offset, length] = ref;
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > floats.length) {
      throw damaged("an array reference points outside the sidecar");
    }
    // Views share the sidecar's memory: a large detector is held once, not twice.
    return floats.subarray(offset, offset + length);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = revive(v, floats, damaged);
  return out;
}

function validate(d: Detector, damaged: (why: string) => ClipOodError): void {
  // The JSON may hold anything where the detector should be: check shapes before reading fields.
  if (typeof d !== "object" || d === null || Array.isArray(d)) throw damaged("no detector record");
  if (!(DETECTOR_METHODS as readonly string[]).includes(d.method)) throw damaged(`unknown method "${String(d.method)}"`);
  const dim = d.model?.dim;
  if (typeof d.model?.id !== "string" || !Number.isInteger(dim)) throw damaged("no model record");
  const checkFeatures = (f: Detector["classFeatures"] | undefined, what: string) => {
    const m = f?.matrix;
    if (!m || !(m.data instanceof Float32Array) || !Array.isArray(f.labels) || m.cols !== dim || m.rows !== f.labels.length || m.data.length !== m.rows * m.cols) {
      throw damaged(`${what} do not match ${String(dim)} dimensions`);
    }
  };
  const sc = d.model.scoring;
  if (sc !== undefined) {
    const finite = (x: unknown) => typeof x === "number" && Number.isFinite(x);
    if (typeof sc !== "object" || sc === null || !(sc.logitScale > 0) || !finite(sc.logitScale) || !(sc.kind === "softmax" || (sc.kind === "sigmoid" && finite(sc.logitBias)))) {
      throw damaged("its model scoring record is not a softmax or sigmoid rule with finite scale and bias");
    }
  }
  checkFeatures(d.classFeatures, "class features");
  if (d.extra) checkFeatures(d.extra.features, "extra candidate features");
  const f = d.fitted;
  if (f) {
    const ok = f.dim === dim && f.kind === d.method && fittedShapeOk(f, d.classes?.length);
    if (!ok) throw damaged(`its fitted ${String(f.kind)} statistics do not match the method and ${String(dim)} dimensions`);
  }
  if (d.parts !== undefined && !Array.isArray(d.parts)) throw damaged("its combined parts are not a list");
  for (const p of d.parts ?? []) {
    if (typeof p !== "object" || p === null || !Number.isFinite(p.weight) || !Number.isFinite(p.standardizer?.mean) || !(p.standardizer?.std > 0)) throw damaged("a combined part has no valid weight or standardizer");
    validate(p.detector, damaged);
    if (p.detector.model.id !== d.model.id) throw damaged("its parts were made for different models");
  }
  if (d.negatives) {
    const n = d.negatives;
    checkFeatures({ labels: n.labels, prompts: [], matrix: n.features }, "negative-label features");
    if (!Array.isArray(n.groups) || n.groups.some((g) => !Array.isArray(g) || g.some((i) => !Number.isInteger(i) || i < 0 || i >= n.labels.length))) {
      throw damaged("negative-label groups point outside the labels");
    }
  }
}

/** Whether a fitted state's arrays and settings have the shapes its kind needs (`classes`: the detector's class count). */
function fittedShapeOk(f: NonNullable<Detector["fitted"]>, classes: number | undefined): boolean {
  const n = (x: unknown) => (x instanceof Float32Array ? x.length : -1);
  const positive = (x: unknown) => typeof x === "number" && Number.isFinite(x) && x > 0;
  const head = (s: { classes: number; score: string; outlierClasses?: number }) =>
    s.classes === classes && (HEAD_SCORES as readonly string[]).includes(s.score) && (s.outlierClasses === undefined || (Number.isInteger(s.outlierClasses) && s.outlierClasses >= 0));
  // Logits per embedding: the classes, then any synthetic outlier classes.
  const all = (s: { classes: number; outlierClasses?: number }) => s.classes + (s.outlierClasses ?? 0);
  switch (f.kind) {
    case "mahalanobis":
      return n(f.means) === f.classes * f.dim && n(f.precision) === f.dim * f.dim;
    case "knn":
      return n(f.bank) > 0 && n(f.bank) % f.dim === 0 && f.k >= 1 && f.k <= n(f.bank) / f.dim;
    case "ocsvm":
      return n(f.coefficients) > 0 && n(f.supportVectors) === n(f.coefficients) * f.dim;
    case "linear-probe":
      return head(f) && n(f.weights) === all(f) * f.dim && n(f.intercepts) === all(f) && positive(f.c);
    case "tip-adapter":
    case "tip-adapter-f": {
      const labels = f.keyLabels;
      return (
        head(f) &&
        n(f.text) === all(f) * f.dim &&
        Array.isArray(labels) &&
        labels.length > 0 &&
        n(f.keys) === labels.length * f.dim &&
        labels.every((k) => Number.isInteger(k) && k >= 0 && k < f.classes) &&
        Number.isFinite(f.alpha) &&
        f.alpha >= 0 &&
        Number.isFinite(f.beta) &&
        f.beta >= 0
      );
    }
    case "taskres":
      return head(f) && n(f.weights) === all(f) * f.dim && n(f.residuals) === all(f) * f.dim && positive(f.alpha);
    default:
      return false;
  }
}

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}
