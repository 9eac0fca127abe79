/**
 * Checks and unit-normalisation of embedding inputs, shared by the feature-space detectors and the learned
 * heads so that every one of them rejects the same bad data with the same message, and scores a batch
 * exactly as it scores one embedding at a time.
 */
import { ClipOodError } from "../errors.js";
import { row } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";

/** Rejects empty and non-finite fitting data before any arithmetic can turn it into NaN scores. */
export function checkFitData(x: Matrix, detector: string): void {
  if (x.rows === 0) {
    throw new ClipOodError("INPUT", `${detector}: no in-distribution embeddings to fit`, {
      hint: "pass at least one embedding (one row per in-distribution image)",
    });
  }
  if (x.cols === 0) {
    throw new ClipOodError("INPUT", `${detector}: the embeddings have 0 dimensions`, {
      hint: "pass CLIP image embeddings (e.g. 512 values per row for ViT-B/32)",
    });
  }
  checkFinite(x, `${detector}: fitting embedding`);
}

/**
 * The number of classes (`classes`, default max(label)+1) and each class's row count; every label must
 * lie in 0..classes−1 and every class needs a row, since a class without data has no statistics.
 */
export function classCounts(labels: Int32Array, classes: number | undefined, detector: string): { classes: number; counts: Float64Array } {
  let maxLabel = -1;
  for (const c of labels) maxLabel = Math.max(maxLabel, c);
  const k = classes ?? maxLabel + 1;
  if (!Number.isInteger(k) || k < 1) {
    throw new ClipOodError("USAGE", `${detector}: classes must be a positive integer, got ${k}`, {
      hint: "pass the number of in-distribution classes, or omit it to use the largest label + 1",
    });
  }
  const counts = new Float64Array(k);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (c < 0 || c >= k) {
      throw new ClipOodError("INPUT", `${detector}: label ${c} of row ${i} is outside 0..${k - 1}`, {
        hint: "labels are class indices counted from 0, one per embedding row",
      });
    }
    counts[c]!++;
  }
  const empty = counts.findIndex((n) => n === 0);
  if (empty >= 0) {
    throw new ClipOodError("INPUT", `${detector}: class ${empty} has no embeddings`, {
      hint: "give every class at least one image, or renumber the labels without gaps",
    });
  }
  return { classes: k, counts };
}

export function checkFinite(x: Matrix, what: string): void {
  for (let i = 0; i < x.rows; i++) {
    const r = row(x, i);
    for (let j = 0; j < r.length; j++) {
      if (!Number.isFinite(r[j]!)) {
        throw new ClipOodError("INPUT", `${what} row ${i} has a non-finite value (${r[j]}) at dimension ${j}`, {
          hint: "drop or re-embed that image; NaN/Infinity usually means a broken export or a corrupt embeddings file",
        });
      }
    }
  }
}

/** The query as a float64 unit vector; `what` names it in errors (e.g. "row 3"). */
export function unitQuery(dim: number, embedding: Float32Array, what: string): Float64Array {
  if (embedding.length !== dim) {
    throw new ClipOodError("INPUT", `${what}: expected an embedding of ${dim} dimensions, got ${embedding.length}`, {
      hint: "score with embeddings from the same CLIP model the detector was fitted on",
    });
  }
  const v = new Float64Array(dim);
  let ss = 0;
  for (let j = 0; j < dim; j++) {
    const e = embedding[j]!;
    if (!Number.isFinite(e)) {
      throw new ClipOodError("INPUT", `${what} has a non-finite value (${e}) at dimension ${j}`, {
        hint: "drop or re-embed that image; NaN/Infinity usually means a broken export or a corrupt embeddings file",
      });
    }
    v[j] = e;
    ss += e * e;
  }
  // A zero vector stays zero, as in normalizeRows: a degenerate embedding must not become NaN.
  if (ss > 0) {
    const inv = 1 / Math.sqrt(ss);
    for (let j = 0; j < dim; j++) v[j]! *= inv;
  }
  return v;
}

/** Batch scoring is the single-embedding score applied row by row, so the two agree bit for bit. */
export function scoreRows(dim: number, x: Matrix, score: (e: Float32Array, what: string) => number): Float32Array {
  if (x.cols !== dim) {
    throw new ClipOodError("INPUT", `expected embeddings of ${dim} dimensions, got ${x.cols}`, {
      hint: "score with embeddings from the same CLIP model the detector was fitted on",
    });
  }
  const out = new Float32Array(x.rows);
  for (let i = 0; i < x.rows; i++) out[i] = score(row(x, i), `row ${i}`);
  return out;
}
