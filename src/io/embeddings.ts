/**
 * Precomputed embeddings as inputs: the JSON Lines and .npy (+ .npy.json sidecar) files `clip-ood
 * embed` writes, or any CLIP implementation's vectors in the same shapes. Rows are L2-normalised on
 * reading, so unnormalised vectors from elsewhere score correctly.
 */
import { readFile } from "node:fs/promises";
import { ClipOodError, messageOf } from "../errors.js";
import { matrix, normalizeRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { decodeNpy } from "./npy.js";

export interface EmbeddingSet {
  source: string;
  /** What each row was computed from (a path or a text); `<file>#<row>` where unknown. */
  inputs: string[];
  /** Each row's class label, where the file gives one (`"label"` in a JSON Lines row or a sidecar row). */
  labels: (string | undefined)[];
  /** The model id recorded with the vectors, when the file says. */
  model: string | undefined;
  /** Unit rows. */
  matrix: Matrix;
}

export function isEmbeddingsFile(p: string): boolean {
  return /\.(jsonl|ndjson|npy)$/i.test(p);
}

export async function readEmbeddings(file: string): Promise<EmbeddingSet> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new ClipOodError("INPUT", `cannot read embeddings file ${file}: ${messageOf(e)}`, { hint: "make one with `clip-ood embed … --out file.jsonl`" });
  }
  return file.toLowerCase().endsWith(".npy") ? fromNpy(file, bytes) : fromJsonLines(file, bytes.toString("utf8"));
}

async function fromNpy(file: string, bytes: Buffer): Promise<EmbeddingSet> {
  const { data, shape } = decodeNpy(bytes, file);
  if (shape.length !== 2) throw bad(file, `has shape [${shape.join(", ")}], expected [rows, dim]`);
  const [rows, cols] = shape as [number, number];
  let inputs = Array.from({ length: rows }, (_, i) => `${file}#${i}`);
  let labels: (string | undefined)[] = inputs.map(() => undefined);
  let model: string | undefined;
  const sidecar = await readFile(`${file}.json`, "utf8").catch(() => undefined);
  if (sidecar !== undefined) {
    try {
      const meta = JSON.parse(sidecar) as { model?: unknown; rows?: { input?: unknown; label?: unknown }[] };
      if (typeof meta.model === "string") model = meta.model;
      if (Array.isArray(meta.rows) && meta.rows.length === rows) {
        inputs = meta.rows.map((r, i) => (typeof r.input === "string" ? r.input : inputs[i]!));
        labels = meta.rows.map((r) => labelOf(r.label));
      }
    } catch (e) {
      throw bad(`${file}.json`, `is not valid JSON (${messageOf(e)})`);
    }
  }
  return finish(file, inputs, labels, model, matrix(rows, cols, data), (i) => `row ${i}`);
}

function fromJsonLines(file: string, text: string): EmbeddingSet {
  const inputs: string[] = [];
  const labels: (string | undefined)[] = [];
  const vectors: number[][] = [];
  const lines: number[] = [];
  let model: string | undefined;
  text.split("\n").forEach((line, n) => {
    if (!line.trim()) return;
    let v: { input?: unknown; label?: unknown; model?: unknown; embedding?: unknown; error?: unknown };
    try {
      v = JSON.parse(line) as typeof v;
    } catch (e) {
      throw bad(file, `line ${n + 1} is not valid JSON (${messageOf(e)})`);
    }
    if (v.error !== undefined && v.embedding === undefined) return; // a failed input recorded by clip-ood
    if (!Array.isArray(v.embedding) || v.embedding.some((x) => typeof x !== "number")) {
      throw bad(file, `line ${n + 1} has no "embedding" array of numbers`);
    }
    if (typeof v.model === "string") {
      if (model !== undefined && model !== v.model) throw bad(file, `mixes models ${model} and ${v.model} (line ${n + 1})`);
      model = v.model;
    }
    inputs.push(typeof v.input === "string" ? v.input : `${file}#${inputs.length}`);
    labels.push(labelOf(v.label));
    vectors.push(v.embedding as number[]);
    lines.push(n + 1);
  });
  if (vectors.length === 0) throw bad(file, "holds no embeddings");
  const dim = vectors[0]!.length;
  const data = new Float32Array(vectors.length * dim);
  vectors.forEach((v, i) => {
    if (v.length !== dim) throw bad(file, `line ${lines[i]} has ${v.length} dimensions, the first has ${dim}`);
    data.set(v, i * dim);
  });
  return finish(file, inputs, labels, model, matrix(vectors.length, dim, data), (i) => `line ${lines[i]}`);
}

/** Labels may be class names or class indices (as in OpenOOD's image lists). */
function labelOf(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : typeof v === "number" && Number.isInteger(v) ? String(v) : undefined;
}

function finish(file: string, inputs: string[], labels: (string | undefined)[], model: string | undefined, m: Matrix, where: (i: number) => string): EmbeddingSet {
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
  return { source: file, inputs, labels, model, matrix: normalizeRows(m) };
}

function bad(file: string, why: string): ClipOodError {
  return new ClipOodError("INPUT", `embeddings file ${file} ${why}`, { hint: "use a file written by `clip-ood embed` (JSON Lines or .npy)" });
}
