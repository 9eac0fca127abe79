/**
 * Tip-Adapter-F's mini-batch loss and key gradient on onnxruntime (float32, as the official PyTorch
 * training), as one in-memory graph. Per batch of B rows against N keys and K classes it is two B×N×d
 * products (affinities, key gradient) and one B×K×d (zero-shot logits): at 16 shots × 1000 classes ×
 * 512 dims, 4.3 G multiply-adds a batch, which scalar JavaScript loops ran at ~0.5 G/s. The cache
 * logits A·L and their transpose L-gather are a scatter-add and a gather over the key labels, so the
 * N × K one-hot matrix is never built. The scalar reference is tipAdapterFLoss (src/ood/heads/tip-adapter.ts);
 * the tests check this against it.
 */
import * as ort from "onnxruntime-node";
import { batchTensors, meanLoss, scalarTensor } from "./batch-kernel.js";
import type { BatchKernel } from "./batch-kernel.js";
import { softmaxResidual } from "./logistic-kernel.js";
import { FLOAT, GraphBuilder, INT64, kernelSession } from "./onnx-graph.js";
import { CLIP_LOGIT_SCALE } from "../scores.js";

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
  const labels = new ort.Tensor("int64", BigInt64Array.from(Array.from(input.keyLabels), (v) => BigInt(v)), [n, 1]);
  const alpha = scalarTensor(input.alpha);
  return {
    async run(keys, rows, grad) {
      const { xb, yb } = batchTensors(x, y, d, rows);
      const out = await (
        await kernelSession(`tip-adapter-f-beta-${input.beta}`, () => tipGraph(input.beta))
      ).run({
        xb,
        keys: new ort.Tensor("float32", keys, [n, d]),
        text,
        labels,
        y: yb,
        alpha,
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
 * gkeys = (scale·A ⊙ (P − Y)[:, labels])ᵀ xb. Everything over the keys is kept transposed, N × B: the
 * scatter-add then adds whole rows of B into a class's row (ScatterND) and the gather takes whole rows,
 * where the B × N layout needed the labels expanded to B × N and an element-wise scatter, which took
 * more than half of each batch's time at 16,000 keys. ScatterND's reduction needs opset 16.
 */
function tipGraph(beta: number): Uint8Array {
  const g = new GraphBuilder("tip_adapter_f_batch", 16);
  const xb = g.input("xb", FLOAT, ["b", "d"]);
  const keys = g.input("keys", FLOAT, ["n", "d"]);
  const text = g.input("text", FLOAT, ["k", "d"]);
  const labels = g.input("labels", INT64, ["n", 1]);
  const y = g.input("y", INT64, ["b", 1]);
  const alpha = g.input("alpha", FLOAT, []);
  const scale = g.input("scale", FLOAT, []);
  const one = g.scalarOf(FLOAT, 1);
  // Aᵀ = exp(β·keys·xbᵀ − β), N × B: β is baked into the Gemm (one session per β), so no pass over
  // the N × B products is spent on it.
  const at = g.op("Exp", [g.op("Gemm", [keys, xb, g.floats([-beta], [1])], { transB: 1, alpha: { float: beta } })]);
  const zeroShot = g.op("Gemm", [xb, text], { transB: 1, alpha: { float: CLIP_LOGIT_SCALE } });
  const zerosKB = g.op("Mul", [g.op("Transpose", [zeroShot], { perm: [1, 0] }), g.scalarOf(FLOAT, 0)]);
  const cacheT = g.op("ScatterND", [zerosKB, labels, at], { reduction: { string: "add" } });
  const z = g.op("Add", [zeroShot, g.op("Mul", [g.op("Transpose", [cacheT], { perm: [1, 0] }), alpha])]);
  const { residual, ce } = softmaxResidual(g, g.op("LogSoftmax", [z], { axis: 1 }), y, one);
  // The scale goes on the K × B residual before the gather, not on the N × B product.
  const scaledT = g.op("Mul", [g.op("Transpose", [residual], { perm: [1, 0] }), scale]);
  const coefT = g.op("Mul", [at, g.op("Gather", [scaledT, g.op("Squeeze", [labels, g.ints([1])])], { axis: 0 })]);
  g.output(ce, "ce", FLOAT, ["b", 1]);
  g.output(g.op("Gemm", [coefT, xb]), "gkeys", FLOAT, ["n", "d"]);
  return g.encode();
}
