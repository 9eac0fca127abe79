/**
 * What the heads' mini-batch kernels share (tip-adapter-kernel.ts, taskres-kernel.ts): the interface an
 * Adam loop drives, and the gather of a batch's rows into the tensors a kernel graph reads.
 */
import * as ort from "onnxruntime-node";

export interface BatchKernel {
  /**
   * The mean loss over the batch `rows` at the parameters `params` (float32, the shape the kernel was
   * built for), with its gradient written into `grad`.
   */
  run(params: Float32Array, rows: ArrayLike<number>, grad: Float32Array): Promise<number>;
}

/** The rows of x (n × d row-major) as a [b, d] float32 tensor and their classes as a [b, 1] int64 tensor. */
export function batchTensors(x: ArrayLike<number>, y: ArrayLike<number>, d: number, rows: ArrayLike<number>): { xb: ort.Tensor; yb: ort.Tensor } {
  const b = rows.length;
  const xs = new Float32Array(b * d);
  const ys = new BigInt64Array(b);
  for (let r = 0; r < b; r++) {
    const i = rows[r]!;
    for (let j = 0; j < d; j++) xs[r * d + j] = x[i * d + j]!;
    ys[r] = BigInt(y[i]!);
  }
  return { xb: new ort.Tensor("float32", xs, [b, d]), yb: new ort.Tensor("int64", ys, [b, 1]) };
}

/** A float32 scalar tensor (a graph input such as α or 1/B). */
export function scalarTensor(v: number): ort.Tensor {
  return new ort.Tensor("float32", Float32Array.of(v), []);
}

/** Σ of the per-row losses in float64, over the batch size: a float32 sum would lose digits. */
export function meanLoss(ce: ArrayLike<number>): number {
  let loss = 0;
  for (let r = 0; r < ce.length; r++) loss += ce[r]!;
  return loss / ce.length;
}
