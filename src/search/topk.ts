/**
 * Top-k selection for many queries at once: one bounded min-heap per query in flat typed arrays, fed
 * a block of scores at a time. Pure; the exact scans (exact.ts, engine.ts) and KNN share it.
 *
 * Order: a higher score is better; equal scores keep the lower bank index first. NaN scores are never
 * kept (a NaN row cannot be anyone's neighbour). Once a heap is full its root is the k-th best so far,
 * and a candidate must beat that bound to be pushed: on a large bank almost every candidate fails that
 * one comparison, which is what makes k = 1000 nearly as cheap as k = 1.
 */

export interface TopKResult {
  queries: number;
  /** Hits per query: min(k, rows scanned). */
  count: number;
  /** queries × count, best first. */
  indices: Int32Array;
  scores: Float64Array;
}

export class TopKSelector {
  private readonly heapScores: Float64Array;
  private readonly heapIndices: Int32Array;
  private readonly sizes: Int32Array;

  constructor(
    readonly queries: number,
    readonly k: number,
  ) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`top-k: k must be a positive integer, got ${k}`);
    this.heapScores = new Float64Array(queries * k);
    this.heapIndices = new Int32Array(queries * k);
    this.sizes = new Int32Array(queries);
  }

  /**
   * Offers `count` scores of query `q`: values[from + j] is the score of bank row base + j. Rows may
   * come in any order; ties are still resolved by index.
   */
  offer(q: number, values: ArrayLike<number>, from: number, count: number, base: number): void {
    const k = this.k;
    const off = q * k;
    const hs = this.heapScores;
    const hi = this.heapIndices;
    let size = this.sizes[q]!;
    let j = 0;
    // Filling: every finite score goes in.
    for (; j < count && size < k; j++) {
      const s = values[from + j]!;
      if (s !== s) continue;
      siftUp(hs, hi, off, size++, s, base + j);
    }
    this.sizes[q] = size;
    if (size < k) return;
    let bound = hs[off]!;
    for (; j < count; j++) {
      const s = values[from + j]!;
      // `!(s >= bound)` also rejects NaN.
      if (!(s >= bound)) continue;
      const index = base + j;
      if (s === bound && index > hi[off]!) continue;
      siftDownRoot(hs, hi, off, k, s, index);
      bound = hs[off]!;
    }
  }

  /** The k-th best score so far of query `q` (−Infinity until k scores were offered). */
  bound(q: number): number {
    return this.sizes[q]! < this.k ? -Infinity : this.heapScores[q * this.k]!;
  }

  /** Every query's hits, best first. Empties the heaps. */
  finish(): TopKResult {
    // A loop, not Math.min(...sizes): an eval scores ~10⁵ queries at once, past what a spread call takes.
    let count = this.queries === 0 ? 0 : this.k;
    for (const size of this.sizes) if (size < count) count = size;
    const indices = new Int32Array(this.queries * count);
    const scores = new Float64Array(this.queries * count);
    const k = this.k;
    for (let q = 0; q < this.queries; q++) {
      const off = q * k;
      // Popping the worst repeatedly and filling from the back leaves the best first.
      for (let size = this.sizes[q]!; size > 0; size--) {
        const pos = size - 1;
        if (pos < count) {
          scores[q * count + pos] = this.heapScores[off]!;
          indices[q * count + pos] = this.heapIndices[off]!;
        }
        if (size > 1) siftDownRoot(this.heapScores, this.heapIndices, off, size - 1, this.heapScores[off + size - 1]!, this.heapIndices[off + size - 1]!);
      }
      this.sizes[q] = 0;
    }
    return { queries: this.queries, count, indices, scores };
  }
}

/** Whether (sa, ia) ranks below (sb, ib): a lower score, or the same score at a higher index. */
function worse(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa < sb || (sa === sb && ia > ib);
}

function siftUp(hs: Float64Array, hi: Int32Array, off: number, at: number, s: number, index: number): void {
  let p = at;
  while (p > 0) {
    const parent = (p - 1) >> 1;
    if (!worse(s, index, hs[off + parent]!, hi[off + parent]!)) break;
    hs[off + p] = hs[off + parent]!;
    hi[off + p] = hi[off + parent]!;
    p = parent;
  }
  hs[off + p] = s;
  hi[off + p] = index;
}

/** Replaces the root of the heap of `size` at `off` with (s, index) and restores the order. */
function siftDownRoot(hs: Float64Array, hi: Int32Array, off: number, size: number, s: number, index: number): void {
  let p = 0;
  for (;;) {
    const l = 2 * p + 1;
    if (l >= size) break;
    const r = l + 1;
    const child = r < size && worse(hs[off + r]!, hi[off + r]!, hs[off + l]!, hi[off + l]!) ? r : l;
    if (!worse(hs[off + child]!, hi[off + child]!, s, index)) break;
    hs[off + p] = hs[off + child]!;
    hi[off + p] = hi[off + child]!;
    p = child;
  }
  hs[off + p] = s;
  hi[off + p] = index;
}
