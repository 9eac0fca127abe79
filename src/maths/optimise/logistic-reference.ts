/**
 * The logistic objective in plain scalar loops: the reference that logistic-kernel.ts's onnxruntime graph
 * is tested against (and this against central differences); the linear-probe bench times both. Fitting
 * never calls it, which is why it lives apart from logistic.ts.
 */
import type { LogisticData } from "./logistic.js";

/**
 * F/n (logistic.ts's objective) and its gradient at θ = [W (classes × d), b (classes)]; `grad` (same
 * length as θ) is overwritten.
 */
export function logisticObjective(data: LogisticData, c: number, theta: Float64Array, grad: Float64Array): number {
  const { x, n, d, y, classes: k } = data;
  const bOff = k * d;
  grad.fill(0);
  const z = new Float64Array(k);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const xOff = i * d;
    let max = -Infinity;
    for (let c2 = 0; c2 < k; c2++) {
      const wOff = c2 * d;
      let s = theta[bOff + c2]!;
      for (let j = 0; j < d; j++) s += theta[wOff + j]! * x[xOff + j]!;
      z[c2] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let c2 = 0; c2 < k; c2++) sum += Math.exp(z[c2]! - max);
    const lse = max + Math.log(sum);
    const yi = y[i]!;
    loss += lse - z[yi]!;
    for (let c2 = 0; c2 < k; c2++) {
      // ∂CE/∂z_k = p_k − [k = y_i]
      const r = Math.exp(z[c2]! - lse) - (c2 === yi ? 1 : 0);
      grad[bOff + c2]! += r;
      if (r === 0) continue;
      const wOff = c2 * d;
      for (let j = 0; j < d; j++) grad[wOff + j]! += r * x[xOff + j]!;
    }
  }
  let sq = 0;
  for (let t = 0; t < bOff; t++) {
    sq += theta[t]! * theta[t]!;
    grad[t]! += theta[t]! / c;
  }
  const inv = 1 / n;
  for (let t = 0; t < grad.length; t++) grad[t]! *= inv;
  return (loss + sq / (2 * c)) * inv;
}
