/**
 * Synthetic few-shot worlds for the learned heads' tests: class clusters around unit axes, class text
 * embeddings near the same axes, and OOD points on axes no class uses.
 */
import { mulberry32 } from "../../src/maths/random.js";
import { matrix, normalizeRows } from "../../src/maths/vectors.js";
import type { Matrix } from "../../src/maths/vectors.js";

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

/** Points around unit axes: row i around axis `axes[i]`, each coordinate plus N(0, sd²). */
function around(next: () => number, axes: readonly number[], d: number, sd: number): Matrix {
  const data = new Float32Array(axes.length * d);
  axes.forEach((axis, i) => {
    for (let j = 0; j < d; j++) data[i * d + j] = (j === axis ? 1 : 0) + sd * gaussian(next);
  });
  return matrix(axes.length, d, data);
}

export interface HeadWorld {
  x: Matrix;
  labels: Int32Array;
  /** classes × d unit class "text" embeddings, each near its class's axis. */
  text: Matrix;
  ood: Matrix;
}

/** `perClass` shots of each of `classes` classes in d dims (class k around axis k), and 6 OOD points. */
export function headWorld(seed: number, classes: number, perClass: number, d: number, sd = 0.1): HeadWorld {
  const next = mulberry32(seed);
  const axes = Array.from({ length: classes * perClass }, (_, i) => Math.floor(i / perClass));
  return {
    x: around(next, axes, d, sd),
    labels: Int32Array.from(axes),
    text: normalizeRows(around(next, Array.from({ length: classes }, (_, k) => k), d, sd)),
    ood: around(next, Array.from({ length: 6 }, (_, i) => classes + (i % (d - classes))), d, sd),
  };
}

/** Central finite differences of f at θ along every coordinate, compared with `grad` (max abs error). */
export function gradientError(f: (theta: Float64Array) => number, theta: Float64Array, grad: Float64Array, h = 1e-6): { maxError: number; maxGrad: number } {
  let maxError = 0;
  let maxGrad = 0;
  for (let i = 0; i < theta.length; i++) {
    const keep = theta[i]!;
    theta[i] = keep + h;
    const up = f(theta);
    theta[i] = keep - h;
    const down = f(theta);
    theta[i] = keep;
    maxError = Math.max(maxError, Math.abs((up - down) / (2 * h) - grad[i]!));
    maxGrad = Math.max(maxGrad, Math.abs(grad[i]!));
  }
  return { maxError, maxGrad };
}
