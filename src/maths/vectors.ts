/**
 * Row-major matrices of float32 and the few operations CLIP scoring needs. Kept dependency-free:
 * the sizes involved (a few thousand rows × 512–1024 dims) are far below where a BLAS would pay.
 */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  /** rows × cols values, row-major. */
  readonly data: Float32Array;
}

export function matrix(rows: number, cols: number, data?: Float32Array): Matrix {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new RangeError(`matrix shape must be non-negative integers, got ${rows}×${cols}`);
  }
  const d = data ?? new Float32Array(rows * cols);
  if (d.length !== rows * cols) {
    throw new RangeError(`matrix data has ${d.length} values, expected ${rows}×${cols} = ${rows * cols}`);
  }
  return { rows, cols, data: d };
}

export function row(m: Matrix, i: number): Float32Array {
  return m.data.subarray(i * m.cols, (i + 1) * m.cols);
}

/** Stacks equal-length vectors into a matrix (copying). */
export function stackRows(vectors: readonly Float32Array[], cols?: number): Matrix {
  const width = cols ?? vectors[0]?.length ?? 0;
  const out = matrix(vectors.length, width);
  vectors.forEach((v, i) => {
    if (v.length !== width) throw new RangeError(`row ${i} has ${v.length} values, expected ${width}`);
    out.data.set(v, i * width);
  });
  return out;
}

/** The rows of every part in order (same width), in a new matrix: one allocation and one copy. */
export function concatRows(...parts: Matrix[]): Matrix {
  const cols = parts[0]?.cols ?? 0;
  for (const p of parts) if (p.cols !== cols) throw new RangeError(`cannot stack ${p.cols}-wide rows on ${cols}-wide rows`);
  const out = matrix(parts.reduce((n, p) => n + p.rows, 0), cols);
  let at = 0;
  for (const p of parts) {
    out.data.set(p.data.subarray(0, p.rows * cols), at);
    at += p.rows * cols;
  }
  return out;
}

/**
 * L2-normalises each row in a new matrix. A zero row stays zero (its cosine with anything is then 0)
 * rather than becoming NaN, so one degenerate embedding cannot poison a whole batch.
 */
export function normalizeRows(m: Matrix): Matrix {
  return normalizeRowsInPlace(matrix(m.rows, m.cols, new Float32Array(m.data)));
}

/**
 * normalizeRows without the copy, for a matrix its owner has no other use for (a bank of a million
 * rows just read from a file): the same values, and the memory of one copy instead of two.
 */
export function normalizeRowsInPlace(m: Matrix): Matrix {
  for (let i = 0; i < m.rows; i++) {
    const r = row(m, i);
    let ss = 0;
    for (let j = 0; j < r.length; j++) ss += r[j]! * r[j]!;
    if (ss > 0) {
      const inv = 1 / Math.sqrt(ss);
      for (let j = 0; j < r.length; j++) r[j]! *= inv;
    }
  }
  return m;
}

/** a (n×d) · bᵀ (k×d) → n×k, accumulated in float64 for stable cosines. */
export function matmulTransposed(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.cols) {
    throw new RangeError(`dimension mismatch: ${a.rows}×${a.cols} against ${b.rows}×${b.cols}`);
  }
  const out = matrix(a.rows, b.rows);
  const d = a.cols;
  for (let i = 0; i < a.rows; i++) {
    const ai = i * d;
    for (let k = 0; k < b.rows; k++) {
      const bk = k * d;
      let s = 0;
      for (let j = 0; j < d; j++) s += a.data[ai + j]! * b.data[bk + j]!;
      out.data[i * b.rows + k] = s;
    }
  }
  return out;
}

/** Cosine similarity of every row of a with every row of b (both normalised here). */
export function cosineMatrix(a: Matrix, b: Matrix): Matrix {
  return matmulTransposed(normalizeRows(a), normalizeRows(b));
}

/**
 * The CLIP prompt-ensemble average (METHODS.md §1.3): normalise each embedding, take the mean, and
 * normalise the mean. Averaging unnormalised vectors instead would let long prompts with larger norms
 * dominate the class direction.
 */
export function meanOfNormalized(m: Matrix): Float32Array {
  if (m.rows === 0) throw new RangeError("cannot average an empty set of embeddings");
  const n = normalizeRows(m);
  const acc = new Float64Array(m.cols);
  for (let i = 0; i < n.rows; i++) {
    const r = row(n, i);
    for (let j = 0; j < acc.length; j++) acc[j]! += r[j]!;
  }
  const mean = matrix(1, m.cols, Float32Array.from(acc, (x) => x / m.rows));
  return normalizeRows(mean).data;
}

/** Numerically stable softmax of scale·x. */
export function softmax(x: ArrayLike<number>, scale = 1): Float64Array {
  const out = new Float64Array(x.length);
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, scale * x[i]!);
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    out[i] = Math.exp(scale * x[i]! - max);
    sum += out[i]!;
  }
  for (let i = 0; i < x.length; i++) out[i]! /= sum;
  return out;
}

/** Indices of the k largest values, largest first; ties keep the lower index first. */
export function topK(x: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: x.length }, (_, i) => i);
  idx.sort((p, q) => x[q]! - x[p]! || p - q);
  return idx.slice(0, Math.max(0, Math.min(k, x.length)));
}

export function argmax(x: ArrayLike<number>): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (x[i]! > bestValue) {
      bestValue = x[i]!;
      best = i;
    }
  }
  return best;
}
