/**
 * Dense symmetric positive-definite algebra in float64 for the few-shot detectors (D ≤ ~1024). Written
 * here rather than taken from ml-matrix because the only need is one Cholesky and one inverse per fit,
 * and both loops are laid out to walk memory contiguously (STACK.md §5 measured ml-matrix's products
 * as the slow part).
 */

/**
 * Cholesky factor of a symmetric n×n matrix (row-major; only the lower triangle is read): returns L,
 * lower triangular with A = L·Lᵀ. Throws a RangeError naming the pivot when A is not positive definite.
 */
export function cholesky(a: Float64Array, n: number): Float64Array {
  if (a.length !== n * n) throw new RangeError(`cholesky: ${a.length} values for a ${n}×${n} matrix`);
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = a[ri + j]!;
      for (let k = 0; k < j; k++) s -= l[ri + k]! * l[rj + k]!;
      if (i === j) {
        // `!(s > 0)` also catches NaN, which would otherwise spread silently through the inverse.
        if (!(s > 0)) throw new RangeError(`cholesky: matrix is not positive definite (pivot ${i} is ${s})`);
        l[ri + i] = Math.sqrt(s);
      } else {
        l[ri + j] = s / l[rj + j]!;
      }
    }
  }
  return l;
}

/**
 * Inverse of a symmetric positive-definite matrix via A⁻¹ = L⁻ᵀ·L⁻¹. The result is exactly symmetric
 * (each off-diagonal value is computed once and mirrored), which callers that store it rely on.
 */
export function inverseSpd(a: Float64Array, n: number): Float64Array {
  const l = cholesky(a, n);
  // wt holds W = L⁻¹ transposed (wt[j·n + k] = W[k][j]) so both loops below run over contiguous rows.
  const wt = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const cj = j * n;
    wt[cj + j] = 1 / l[j * n + j]!;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = 0;
      for (let k = j; k < i; k++) s += l[ri + k]! * wt[cj + k]!;
      wt[cj + i] = -s / l[ri + i]!;
    }
  }
  // (A⁻¹)[i][j] = Σ_k W[k][i]·W[k][j]; W is lower triangular, so only k ≥ max(i, j) contributes.
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ci = i * n;
    for (let j = 0; j <= i; j++) {
      const cj = j * n;
      let s = 0;
      for (let k = i; k < n; k++) s += wt[ci + k]! * wt[cj + k]!;
      inv[ci + j] = s;
      inv[cj + i] = s;
    }
  }
  return inv;
}
