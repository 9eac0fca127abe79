/**
 * The softmax-regression objective's two n×d×k matrix products on onnxruntime's CPU kernels (MLAS:
 * SIMD, cache-blocked), as one small ONNX graph built in memory. The whole per-row part of the objective
 * is in the graph (logits, log-softmax, the per-row losses, P − Y, the weight and intercept gradients),
 * so one call copies only θ in and the gradient out; the penalty and the division by n stay here in
 * float64. No I/O: the graph never leaves memory.
 *
 * Why onnxruntime rather than a JavaScript kernel: at 16,000 rows × 512 dims × 1000 classes one
 * evaluation is 16 G multiply-adds; the scalar loops ran ~0.4 G/s, and a JavaScript kernel cannot use
 * SIMD, while MLAS ran ~24 G/s (float32) and ~11 G/s (float64) on one core of the 2-core bench machine
 * (docs/PERFORMANCE.md, linear-probe).
 */
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";
import type { onnx as Onnx } from "onnx-proto";
import os from "node:os";
import type { LogisticData } from "./logistic.js";

// onnx-proto is CommonJS: its namespace comes through the default export under ESM.
const { onnx } = onnxProto;

/**
 * float32 products are ~3× faster but carry ~1e-8 absolute error in F/n and its gradient, which stalls a
 * line search long before a 1e-10 tolerance; the optimiser therefore runs float32 first and float64 to
 * certify and finish (fitLogistic).
 */
export type KernelPrecision = "float32" | "float64";

export interface LogisticKernel {
  readonly precision: KernelPrecision;
  /** F/n at θ = [W (classes × d), b (classes)] and its gradient, written into `grad`. */
  evaluate(c: number, theta: Float64Array, grad: Float64Array): Promise<number>;
}

const sessions = new Map<KernelPrecision, Promise<ort.InferenceSession>>();

function session(precision: KernelPrecision): Promise<ort.InferenceSession> {
  let s = sessions.get(precision);
  if (!s) {
    s = ort.InferenceSession.create(objectiveGraph(precision), {
      executionProviders: ["cpu"],
      intraOpNumThreads: os.availableParallelism(),
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      // Idle spinning threads would take the cores from the rest of the process between calls.
      extra: { session: { intra_op: { allow_spinning: "0" } } },
    });
    sessions.set(precision, s);
    s.catch(() => sessions.delete(precision));
  }
  return s;
}

/** A kernel over `data`'s rows; the rows are shared with onnxruntime (float64) or converted once (float32). */
export function logisticKernel(data: LogisticData, precision: KernelPrecision): LogisticKernel {
  const { n, d, classes: k } = data;
  const f64 = precision === "float64";
  const x = new ort.Tensor(precision, f64 ? data.x : Float32Array.from(data.x), [n, d]);
  const y = new ort.Tensor("int64", BigInt64Array.from(data.y, (v) => BigInt(v)), [n, 1]);
  const wSize = k * d;
  return {
    precision,
    async evaluate(c, theta, grad) {
      const w = theta.subarray(0, wSize);
      const b = theta.subarray(wSize);
      const out = await (
        await session(precision)
      ).run({
        x,
        w: new ort.Tensor(precision, f64 ? w : Float32Array.from(w), [k, d]),
        b: new ort.Tensor(precision, f64 ? b : Float32Array.from(b), [k]),
        y,
      });
      const ce = out.ce!.data as Float32Array | Float64Array;
      const gw = out.gw!.data as Float32Array | Float64Array;
      const gb = out.gb!.data as Float32Array | Float64Array;
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
 * Inputs x [n,d], w [k,d], b [k], y [n,1] (int64 class index); outputs ce [n,1] = −log softmax(z)_y,
 * gw = (P − Y)ᵀ x [k,d] and gb = Σ_i (P − Y)_i [k], with z = x wᵀ + b and P = softmax(z). P − Y is P
 * with 1 subtracted at each row's class (ScatterElements), so no n×k one-hot matrix is ever built.
 */
function objectiveGraph(precision: KernelPrecision): Uint8Array {
  const T = precision === "float64" ? onnx.TensorProto.DataType.DOUBLE : onnx.TensorProto.DataType.FLOAT;
  const one = precision === "float64" ? Float64Array.of(1) : Float32Array.of(1);
  const A = onnx.AttributeProto.AttributeType;
  const int = (name: string, i: number): Onnx.IAttributeProto => ({ name, type: A.INT, i });
  const node = (opType: string, input: string[], output: string, attribute: Onnx.IAttributeProto[] = []): Onnx.INodeProto => ({ opType, input, output: [output], name: output, attribute });
  const nodes = [
    node("Gemm", ["x", "w", "b"], "z", [int("transB", 1)]),
    node("LogSoftmax", ["z"], "logp", [int("axis", 1)]),
    node("GatherElements", ["logp", "y"], "logpy", [int("axis", 1)]),
    node("Neg", ["logpy"], "ce"),
    node("Exp", ["logp"], "p"),
    node("GatherElements", ["p", "y"], "py", [int("axis", 1)]),
    node("Sub", ["py", "one"], "pyMinus1"),
    node("ScatterElements", ["p", "y", "pyMinus1"], "r", [int("axis", 1)]),
    node("Gemm", ["r", "x"], "gw", [int("transA", 1)]),
    node("ReduceSum", ["r", "axis0"], "gb", [int("keepdims", 0)]),
  ];
  const value = (name: string, elemType: number, dims: (number | string)[]): Onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((v) => (typeof v === "number" ? { dimValue: v } : { dimParam: v })) } } },
  });
  const INT64 = onnx.TensorProto.DataType.INT64;
  const model: Onnx.IModelProto = {
    irVersion: 8,
    producerName: "clip-ood logistic objective",
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "logistic_objective",
      node: nodes,
      initializer: [
        { name: "one", dims: [], dataType: T, rawData: new Uint8Array(one.buffer) },
        { name: "axis0", dims: [1], dataType: INT64, rawData: new Uint8Array(BigInt64Array.of(0n).buffer) },
      ],
      input: [value("x", T, ["n", "d"]), value("w", T, ["k", "d"]), value("b", T, ["k"]), value("y", INT64, ["n", 1])],
      output: [value("ce", T, ["n", 1]), value("gw", T, ["k", "d"]), value("gb", T, ["k"])],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
