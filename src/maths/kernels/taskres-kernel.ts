/**
 * TaskRes's whole mini-batch step on onnxruntime (float32, as the official PyTorch training) as one
 * in-memory graph: the adapted classifier u = (t + α·x)/‖t + α·x‖, the logits 100·xb·uᵀ, the
 * cross-entropy, G = ∂CE/∂u and the normalisation's Jacobian, so JavaScript only gathers the batch and
 * takes the Adam step. Per batch of B rows and K classes it is two B×K×d products: at batch 256 × 1000
 * classes × 512 dims, 0.26 G multiply-adds. Keeping the per-class normalisation in JavaScript (float64)
 * cost more than the products (docs/PERFORMANCE.md, heads). The scalar reference is taskResLoss
 * (src/ood/heads/taskres.ts); the tests check this against it.
 */
import * as ort from "onnxruntime-node";
import { batchTensors, meanLoss, scalarTensor } from "./batch-kernel.js";
import type { BatchKernel } from "./batch-kernel.js";
import { softmaxResidual } from "./logistic-kernel.js";
import { FLOAT, GraphBuilder, INT64, kernelSession } from "./onnx-graph.js";
import { CLIP_LOGIT_SCALE } from "../scores.js";

export interface TaskResKernelInput {
  dim: number;
  /** K × dim unit class text embeddings t. */
  text: ArrayLike<number>;
  alpha: number;
  /** λ of the (λ/2)‖x‖² penalty. */
  l2: number;
  /** The training rows (unit embeddings, row-major) and their class indices. */
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

/** The mean cross-entropy plus (λ/2)‖x‖² over a batch, with its gradient with respect to the residuals x (K × dim). */
export function taskResBatchKernel(input: TaskResKernelInput): BatchKernel {
  const { dim: d, x, y } = input;
  const k = input.text.length / d;
  const text = new ort.Tensor("float32", Float32Array.from(input.text), [k, d]);
  const alpha = scalarTensor(input.alpha);
  const l2 = scalarTensor(input.l2);
  return {
    async run(residual, rows, grad) {
      const { xb, yb } = batchTensors(x, y, d, rows);
      const out = await (
        await kernelSession("taskres", taskResGraph)
      ).run({ xb, y: yb, text, residual: new ort.Tensor("float32", residual, [k, d]), alpha, l2, invb: scalarTensor(1 / rows.length) });
      grad.set(out.grad!.data as Float32Array);
      return meanLoss(out.ce!.data as Float32Array) + (out.penalty!.data as Float32Array)[0]!;
    },
  };
}

/**
 * t' = t + α·x, n = ‖t'‖ per row, u = t'/n; z = 100·xb·uᵀ; ce = −log softmax(z)_y;
 * G = 100·(P − Y)ᵀxb / B; grad = (α/n)·(G − (G·u)u) + λx (0 where n = 0, as the scalar reference);
 * penalty = (λ/2)‖x‖².
 */
function taskResGraph(): Uint8Array {
  const g = new GraphBuilder("taskres_batch");
  const xb = g.input("xb", FLOAT, ["b", "d"]);
  const y = g.input("y", INT64, ["b", 1]);
  const text = g.input("text", FLOAT, ["k", "d"]);
  const residual = g.input("residual", FLOAT, ["k", "d"]);
  const alpha = g.input("alpha", FLOAT, []);
  const l2 = g.input("l2", FLOAT, []);
  const invb = g.input("invb", FLOAT, []);
  const zero = g.scalarOf(FLOAT, 0);
  const adapted = g.op("Add", [text, g.op("Mul", [residual, alpha])]);
  const norm = g.op("Sqrt", [g.op("ReduceSumSquare", [adapted], { axes: [1], keepdims: 1 })]);
  const positive = g.op("Greater", [norm, zero]);
  const inv = g.op("Where", [positive, g.op("Reciprocal", [norm]), zero]);
  const u = g.op("Mul", [adapted, inv]);
  const z = g.op("Gemm", [xb, u], { transB: 1, alpha: { float: CLIP_LOGIT_SCALE } });
  const { residual: py, ce } = softmaxResidual(g, g.op("LogSoftmax", [z], { axis: 1 }), y, g.scalarOf(FLOAT, 1));
  const gu = g.op("Mul", [g.op("Gemm", [py, xb], { transA: 1, alpha: { float: CLIP_LOGIT_SCALE } }), invb]);
  const along = g.op("ReduceSum", [g.op("Mul", [gu, u]), g.ints([1])], { keepdims: 1 });
  const tangent = g.op("Sub", [gu, g.op("Mul", [along, u])]);
  const grad = g.op("Add", [g.op("Mul", [tangent, g.op("Mul", [inv, alpha])]), g.op("Mul", [residual, l2])]);
  const penalty = g.op("Mul", [g.op("ReduceSumSquare", [residual], { keepdims: 0 }), g.op("Mul", [l2, g.scalarOf(FLOAT, 0.5)])]);
  g.output(ce, "ce", FLOAT, ["b", 1]);
  g.output(grad, "grad", FLOAT, ["k", "d"]);
  g.output(penalty, "penalty", FLOAT, []);
  return g.encode();
}
