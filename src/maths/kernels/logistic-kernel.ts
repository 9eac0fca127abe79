/**
 * The softmax-regression products on onnxruntime's CPU kernels (MLAS: SIMD, cache-blocked), as one small
 * ONNX graph built in memory: logits, log-softmax, the per-row losses, P − Y, and the two n×d×k
 * products (P − Y)ᵀx and Σ_i (P − Y)_i. One call copies only the parameters in and the products out.
 * `logisticKernel` adds the penalty and the division by n in float64 for the linear probe; the heads'
 * mini-batch kernels share its `softmaxResidual` fragment. No I/O: the graph never leaves memory.
 *
 * Why onnxruntime rather than a JavaScript kernel: at 16,000 rows × 512 dims × 1000 classes one
 * evaluation is 16 G multiply-adds; the scalar loops ran ~0.4 G/s, and a JavaScript kernel cannot use
 * SIMD, while MLAS ran ~24 G/s (float32) and ~11 G/s (float64) on one core of the 2-core bench machine
 * (docs/PERFORMANCE.md, linear-probe).
 */
import * as ort from "onnxruntime-node";
import type { LogisticData } from "../optimise/logistic.js";
import { DOUBLE, FLOAT, GraphBuilder, INT64, kernelSession } from "./onnx-graph.js";

/**
 * float32 products are ~3× faster but carry ~1e-8 absolute error in F/n and its gradient, which stalls a
 * line search long before a 1e-10 tolerance; the optimiser therefore runs float32 first and float64 to
 * certify and finish (fitLogistic).
 */
export type KernelPrecision = "float32" | "float64";

/** Per-row cross-entropies ce = −log softmax(z)_y, gw = (P − Y)ᵀ x (k × d) and gb = Σ_i (P − Y)_i (k), unscaled. */
interface SoftmaxProducts {
  ce: Float32Array | Float64Array;
  gw: Float32Array | Float64Array;
  gb: Float32Array | Float64Array;
}

interface SoftmaxRows {
  /** The products at logits z = x wᵀ + b; w is k × d row-major, b has k entries. */
  run(w: Float64Array | Float32Array, b: Float64Array | Float32Array): Promise<SoftmaxProducts>;
}

/** The products over fixed rows x (n × d, row-major) with class indices y; x is converted once. */
function softmaxRows(x: Float64Array | Float32Array, n: number, d: number, y: ArrayLike<number>, k: number, precision: KernelPrecision): SoftmaxRows {
  const f64 = precision === "float64";
  const xt = new ort.Tensor(precision, f64 ? (x instanceof Float64Array ? x : Float64Array.from(x)) : x instanceof Float32Array ? x : Float32Array.from(x), [n, d]);
  const yt = new ort.Tensor("int64", BigInt64Array.from(Array.from(y), (v) => BigInt(v)), [n, 1]);
  const typed = (v: Float64Array | Float32Array) => (f64 ? (v instanceof Float64Array ? v : Float64Array.from(v)) : v instanceof Float32Array ? v : Float32Array.from(v));
  return {
    async run(w, b) {
      const out = await (
        await kernelSession(`softmax-${precision}`, () => softmaxGraph(precision))
      ).run({ x: xt, w: new ort.Tensor(precision, typed(w), [k, d]), b: new ort.Tensor(precision, typed(b), [k]), y: yt });
      return { ce: out.ce!.data as Float32Array | Float64Array, gw: out.gw!.data as Float32Array | Float64Array, gb: out.gb!.data as Float32Array | Float64Array };
    },
  };
}

export interface LogisticKernel {
  readonly precision: KernelPrecision;
  /** F/n at θ = [W (classes × d), b (classes)] and its gradient, written into `grad`. */
  evaluate(c: number, theta: Float64Array, grad: Float64Array): Promise<number>;
}

/** A kernel over `data`'s rows; the rows are shared with onnxruntime (float64) or converted once (float32). */
export function logisticKernel(data: LogisticData, precision: KernelPrecision): LogisticKernel {
  const { n, d, classes: k } = data;
  const rows = softmaxRows(data.x, n, d, data.y, k, precision);
  const wSize = k * d;
  return {
    precision,
    async evaluate(c, theta, grad) {
      const { ce, gw, gb } = await rows.run(theta.subarray(0, wSize), theta.subarray(wSize));
      // The per-row losses are summed here in float64: a float32 sum over 16,000 rows loses ~4 digits.
      let loss = 0;
      for (let i = 0; i < n; i++) loss += ce[i]!;
      let sq = 0;
      const inv = 1 / n;
      for (let t = 0; t < wSize; t++) {
        sq += theta[t]! * theta[t]!;
        grad[t] = (gw[t]! + theta[t]! / c) * inv;
      }
      // Σ_k ∂/∂b_k is 0 in exact arithmetic (F does not change when every b_k moves together); float32
      // rounding leaves ~1e-8 there, which would let the intercepts drift along that flat direction
      // without the objective noticing. Projecting it out keeps Σ_k b_k = 0 exactly as the maths says.
      let mean = 0;
      for (let t = 0; t < k; t++) mean += gb[t]!;
      mean /= k;
      for (let t = 0; t < k; t++) grad[wSize + t] = (gb[t]! - mean) * inv;
      return (loss + sq / (2 * c)) * inv;
    },
  };
}

/**
 * Softmax cross-entropy's residual P − Y from log-probabilities `logp` [rows, k] and class indices `y`
 * [rows, 1]: P with 1 subtracted at each row's class (ScatterElements), so no rows × k one-hot matrix is
 * ever built. Also returns ce = −log p_y. Shared with the Tip-Adapter-F kernel.
 */
export function softmaxResidual(g: GraphBuilder, logp: string, y: string, one: string): { residual: string; ce: string } {
  const ce = g.op("Neg", [g.op("GatherElements", [logp, y], { axis: 1 })]);
  const p = g.op("Exp", [logp]);
  const pyMinus1 = g.op("Sub", [g.op("GatherElements", [p, y], { axis: 1 }), one]);
  return { residual: g.op("ScatterElements", [p, y, pyMinus1], { axis: 1 }), ce };
}

/** Inputs x [n,d], w [k,d], b [k], y [n,1] (int64 class index); outputs ce [n,1], gw [k,d], gb [k]. */
function softmaxGraph(precision: KernelPrecision): Uint8Array {
  const T = precision === "float64" ? DOUBLE : FLOAT;
  const g = new GraphBuilder("softmax_products");
  const x = g.input("x", T, ["n", "d"]);
  const w = g.input("w", T, ["k", "d"]);
  const b = g.input("b", T, ["k"]);
  const y = g.input("y", INT64, ["n", 1]);
  const z = g.op("Gemm", [x, w, b], { transB: 1 });
  const { residual, ce } = softmaxResidual(g, g.op("LogSoftmax", [z], { axis: 1 }), y, g.scalarOf(T, 1));
  g.output(ce, "ce", T, ["n", 1]);
  g.output(g.op("Gemm", [residual, x], { transA: 1 }), "gw", T, ["k", "d"]);
  g.output(g.op("ReduceSum", [residual, g.ints([0])], { keepdims: 0 }), "gb", T, ["k"]);
  return g.encode();
}
