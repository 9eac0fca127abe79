/**
 * Precomputed embeddings as inputs: the JSON Lines and .npy (+ .npy.json sidecar) files `clip-ood
 * embed` writes, or any CLIP implementation's vectors in the same shapes. Rows are L2-normalised on
 * reading, so unnormalised vectors from elsewhere score correctly.
 */
import { stat } from "node:fs/promises";
import { ClipOodError, messageOf } from "../errors.js";
import { matrix, normalizeRowsInPlace } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { formatBytes, linesBounded, MAX_ARRAY_BYTES, readTextBounded } from "./bounded-read.js";
import { writeFileAtomic } from "./atomic-file.js";
import { npyParts, readNpyFile } from "./npy.js";

export interface EmbeddingSet {
  source: string;
  /** What each row was computed from (a path or a text); `<file>#<row>` where unknown. */
  inputs: string[];
  /** Each row's class label, where the file gives one (`"label"` in a JSON Lines row or a sidecar row). */
  labels: (string | undefined)[];
  /** The model id recorded with the vectors, when the file says. */
  model: string | undefined;
  /** The ONNX variant (fp32, q8, …) that made them, when the file says; files from before clip-ood recorded it do not. */
  dtype: string | undefined;
  /** Unit rows. */
  matrix: Matrix;
}

export function isEmbeddingsFile(p: string): boolean {
  return /\.(jsonl|ndjson|npy)$/i.test(p);
}

const HINT = "use a file written by `clip-ood embed` (JSON Lines or .npy)";

export async function readEmbeddings(file: string): Promise<EmbeddingSet> {
  const limit = { what: "embeddings file", code: "INPUT" as const, hint: "make one with `clip-ood embed … --out file.jsonl`" };
  return file.toLowerCase().endsWith(".npy") ? fromNpy(file, await readNpyFile(file, limit)) : fromJsonLines(file, linesBounded(file, limit));
}

async function fromNpy(file: string, { data, shape }: { data: Float32Array; shape: number[] }): Promise<EmbeddingSet> {
  if (shape.length !== 2) throw bad(file, `has shape [${shape.join(", ")}], expected [rows, dim]`);
  const [rows, cols] = shape as [number, number];
  let inputs = Array.from({ length: rows }, (_, i) => `${file}#${i}`);
  let labels: (string | undefined)[] = inputs.map(() => undefined);
  let model: string | undefined;
  let dtype: string | undefined;
  const sidecarFile = `${file}.json`;
  const sidecar = await stat(sidecarFile).then(
    () => readTextBounded(sidecarFile, { what: "embeddings sidecar", code: "INPUT", hint: HINT }),
    () => undefined,
  );
  if (sidecar !== undefined) {
    let meta: { model?: unknown; dtype?: unknown; rows?: unknown };
    try {
      meta = JSON.parse(sidecar) as typeof meta;
    } catch (e) {
      throw bad(sidecarFile, `is not valid JSON (${messageOf(e)})`);
    }
    if (typeof meta !== "object" || meta === null) throw bad(sidecarFile, "is not a JSON object");
    if (typeof meta.model === "string") model = meta.model;
    if (typeof meta.dtype === "string") dtype = meta.dtype;
    if (Array.isArray(meta.rows) && meta.rows.length === rows) {
      const described = meta.rows.map((r: unknown) => (typeof r === "object" && r !== null ? (r as { input?: unknown; label?: unknown }) : {}));
      inputs = described.map((r, i) => (typeof r.input === "string" ? r.input : inputs[i]!));
      labels = described.map((r) => labelOf(r.label));
    }
  }
  return finish(file, inputs, labels, { model, dtype }, matrix(rows, cols, data), (i) => `row ${i}`);
}

async function fromJsonLines(file: string, lines: AsyncIterable<string>): Promise<EmbeddingSet> {
  const inputs: string[] = [];
  const labels: (string | undefined)[] = [];
  const vectors: Float32Array[] = [];
  const lineOf: number[] = [];
  let model: string | undefined;
  let dtype: string | undefined;
  let dim = 0;
  let n = 0;
  for await (const line of lines) {
    n++;
    if (!line.trim()) continue;
    let v: { input?: unknown; label?: unknown; model?: unknown; dtype?: unknown; embedding?: unknown; error?: unknown };
    try {
      v = JSON.parse(line) as typeof v;
    } catch (e) {
      throw bad(file, `line ${n} is not valid JSON (${messageOf(e)})`);
    }
    if (typeof v !== "object" || v === null) throw bad(file, `line ${n} is not a JSON object`);
    if (v.error !== undefined && v.embedding === undefined) continue; // a failed input recorded by clip-ood
    if (!Array.isArray(v.embedding) || v.embedding.some((x) => typeof x !== "number")) {
      throw bad(file, `line ${n} has no "embedding" array of numbers`);
    }
    if (typeof v.model === "string") {
      if (model !== undefined && model !== v.model) throw bad(file, `mixes models ${model} and ${v.model} (line ${n})`);
      model = v.model;
    }
    if (typeof v.dtype === "string") {
      if (dtype !== undefined && dtype !== v.dtype) throw bad(file, `mixes dtypes ${dtype} and ${v.dtype} (line ${n})`, "embed the whole set with one --dtype");
      dtype = v.dtype;
    }
    if (vectors.length === 0) dim = v.embedding.length;
    else if (v.embedding.length !== dim) throw bad(file, `line ${n} has ${v.embedding.length} dimensions, the first has ${dim}`);
    if ((vectors.length + 1) * dim * 4 > MAX_ARRAY_BYTES) {
      throw bad(file, `holds more than ${formatBytes(MAX_ARRAY_BYTES)} of float32 values (line ${n})`, "split it into several files, or keep large collections in the store (`clip-ood index`)");
    }
    inputs.push(typeof v.input === "string" ? v.input : `${file}#${inputs.length}`);
    labels.push(labelOf(v.label));
    vectors.push(Float32Array.from(v.embedding as number[]));
    lineOf.push(n);
  }
  if (vectors.length === 0) throw bad(file, "holds no embeddings");
  const data = new Float32Array(vectors.length * dim);
  vectors.forEach((v, i) => data.set(v, i * dim));
  return finish(file, inputs, labels, { model, dtype }, matrix(vectors.length, dim, data), (i) => `line ${lineOf[i]}`);
}

/** Labels may be class names or class indices (as in OpenOOD's image lists). */
function labelOf(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : typeof v === "number" && Number.isInteger(v) ? String(v) : undefined;
}

function finish(file: string, inputs: string[], labels: (string | undefined)[], made: Pick<EmbeddingSet, "model" | "dtype">, m: Matrix, where: (i: number) => string): EmbeddingSet {
  if (m.rows === 0 || m.cols === 0) throw bad(file, "holds no embeddings");
  for (let i = 0; i < m.rows; i++) {
    let ss = 0;
    for (let j = 0; j < m.cols; j++) {
      const x = m.data[i * m.cols + j]!;
      if (!Number.isFinite(x)) throw bad(file, `${where(i)} contains ${x}`);
      ss += x * x;
    }
    if (ss === 0) throw bad(file, `${where(i)} is all zeros`);
  }
  // The rows were read for this set alone: normalised where they lie, so a large file is held once.
  return { source: file, inputs, labels, ...made, matrix: normalizeRowsInPlace(m) };
}

function bad(file: string, why: string, hint = HINT): ClipOodError {
  return new ClipOodError("INPUT", `embeddings file ${file} ${why}`, { hint });
}

/** One row of an .npy sidecar: what the vector was computed from, and anything else worth keeping. */
export interface NpyRow {
  input: string;
  kind: "image" | "text";
  /** The image's class, from `embed --labelled`. */
  label?: string;
  hash?: string;
  /** Every path the store holds this content under (`export`), `input` first. */
  paths?: string[];
}

/**
 * Writes unit rows as `file` (.npy, float32 [rows, dim]) and `file.json` (model, dtype where known, dim, rows), each
 * whole or not at all; `readEmbeddings` reads them back.
 */
export async function writeEmbeddingsNpy(file: string, data: Float32Array, dim: number, meta: { model: string; dtype?: string; rows: NpyRow[] }): Promise<void> {
  await writeFileAtomic(file, npyParts(data, [meta.rows.length, dim]));
  await writeFileAtomic(`${file}.json`, JSON.stringify({ model: meta.model, ...(meta.dtype === undefined ? {} : { dtype: meta.dtype }), dim, rows: meta.rows }, null, 1) + "\n");
}
