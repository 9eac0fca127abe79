/**
 * Tip-Adapter-F's mini-batch loss and key gradient on onnxruntime (float32, as the official PyTorch
 * training), as one in-memory graph. Per batch of B rows against N keys and K classes it is two B×N×d
 * products (affinities, key gradient) and one B×K×d (zero-shot logits): at 16 shots × 1000 classes ×
 * 512 dims, 4.3 G multiply-adds a batch, which scalar JavaScript loops ran at ~0.5 G/s. The cache
 * logits A·L and their transpose L-gather are a scatter-add and a gather over the key labels, so the
 * N × K one-hot matrix is never built. The scalar reference is tipAdapterFLoss (src/ood/tip-adapter.ts);
 * the tests check this against it.
 */
import * as ort from "onnxruntime-node";
import { batchTensors, meanLoss, scalarTensor } from "./batch-kernel.js";
import type { BatchKernel } from "./batch-kernel.js";
import { softmaxResidual } from "./logistic-kernel.js";
import { FLOAT, GraphBuilder, INT64, kernelSession } from "./onnx-graph.js";
import { CLIP_LOGIT_SCALE } from "./scores.js";

export interface TipKernelInput {
  dim: number;
  /** K × dim unit class text embeddings. */
  text: ArrayLike<number>;
  keyLabels: ArrayLike<number>;
  alpha: number;
  beta: number;
  /** The training rows (unit embeddings, row-major) and their class indices. */
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

/** The mean cross-entropy of the blended logits over a batch, with its gradient with respect to the keys (N × dim). */
export function tipBatchKernel(input: TipKernelInput): BatchKernel {
  const { dim: d, x, y } = input;
  const n = input.keyLabels.length;
  const k = input.text.length / d;
  const text = new ort.Tensor("float32", Float32Array.from(input.text), [k, d]);
  const labels = new ort.Tensor("int64", BigInt64Array.from(Array.from(input.keyLabels), (v) => BigInt(v)), [1, n]);
  const alpha = scalarTensor(input.alpha);
  const beta = scalarTensor(input.beta);
  return {
    async run(keys, rows, grad) {
      const { xb, yb } = batchTensors(x, y, d, rows);
      const out = await (
        await kernelSession("tip-adapter-f", tipGraph)
      ).run({
        xb,
        keys: new ort.Tensor("float32", keys, [n, d]),
        text,
        labels,
        y: yb,
        alpha,
        beta,
        // ∂A/∂F carries β, the blend α, and the batch mean 1/B.
        scale: scalarTensor((input.alpha * input.beta) / rows.length),
      });
      grad.set(out.gkeys!.data as Float32Array);
      return meanLoss(out.ce!.data as Float32Array);
    },
  };
}

/**
 * z = 100·xb·textᵀ + α·scatter_add(A, labels), A = exp(β(xb·keysᵀ − 1)); ce = −log softmax(z)_y;
 * gkeys = (scale·A ⊙ (P − Y)[:, labels])ᵀ xb. ScatterElements' reduction needs opset 16.
 */
function tipGraph(): Uint8Array {
  const g = new GraphBuilder("tip_adapter_f_batch", 16);
  const xb = g.input("xb", FLOAT, ["b", "d"]);
  const keys = g.input("keys", FLOAT, ["n", "d"]);
  const text = g.input("text", FLOAT, ["k", "d"]);
  const labels = g.input("labels", INT64, [1, "n"]);
  const y = g.input("y", INT64, ["b", 1]);
  const alpha = g.input("alpha", FLOAT, []);
  const beta = g.input("beta", FLOAT, []);
  const scale = g.input("scale", FLOAT, []);
  const one = g.scalarOf(FLOAT, 1);
  const a = g.op("Exp", [g.op("Mul", [g.op("Sub", [g.op("Gemm", [xb, keys], { transB: 1 }), one]), beta])]);
  const zeroShot = g.op("Gemm", [xb, text], { transB: 1, alpha: { float: CLIP_LOGIT_SCALE } });
  const index = g.op("Expand", [labels, g.op("Shape", [a])]);
  const cache = g.op("ScatterElements", [g.op("Mul", [zeroShot, g.scalarOf(FLOAT, 0)]), index, a], { axis: 1, reduction: { string: "add" } });
  const z = g.op("Add", [zeroShot, g.op("Mul", [cache, alpha])]);
  const { residual, ce } = softmaxResidual(g, g.op("LogSoftmax", [z], { axis: 1 }), y, one);
  const coef = g.op("Mul", [g.op("Mul", [a, g.op("GatherElements", [residual, index], { axis: 1 })]), scale]);
  g.output(ce, "ce", FLOAT, ["b", 1]);
  g.output(g.op("Gemm", [coef, xb], { transA: 1 }), "gkeys", FLOAT, ["n", "d"]);
  return g.encode();
}
