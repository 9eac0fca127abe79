/**
 * Generates full-size CLIP ViT-B/32, ViT-B/16, ViT-L/14 and ViT-L/14 at 336 px model folders, a
 * SigLIP-shaped one (SigLIP-B/16: google/siglip-base-patch16-224 as Xenova/siglip-base-patch16-224
 * exports it) and MobileCLIP-S0, S1 and S2 shaped ones (apple/ml-mobileclip's reparameterised MCi image
 * towers and MCt / base text towers, bench-model/mobileclip-towers.ts), with
 * random weights, laid out and wired like the Hugging Face ONNX exports (MODEL-FOLDER.md,
 * MODEL-FOLDERS.md), so that benchmarks time the real amount and shape of work without the real
 * checkpoint (which these machines cannot download).
 *
 * CLIP's towers follow transformers' CLIPModel: patch Conv → class token → position embedding →
 * pre-layernorm → pre-norm blocks (multi-head self-attention, quick_gelu MLP) → post-layernorm on the
 * class token → visual projection; token + position embedding → causal blocks → final layernorm →
 * pooling at the largest token id → text projection. SigLIP's follow SiglipModel: patch Conv with bias
 * → position embedding (196 tokens, no class token) → the same blocks with tanh-approximated gelu →
 * post-layernorm → attention-pooling head (a learned probe attends over the tokens, + MLP) →
 * pooler_output; input_ids alone (no attention_mask, always padded to 64) → bidirectional blocks →
 * final layernorm → the last position through a Linear head → pooler_output. Its logit_scale and
 * logit_bias are the real model's, in onnx/model.onnx (a scoring head only, not the towers again),
 * and its tokenizer is a generated SentencePiece-style one (siglip-model.ts) that holds the bench
 * prompts' words. The q8 variant is what onnxruntime.quantization.quantize_dynamic writes for MatMul
 * weights (see Q8_PRESETS in bench-model/quantize.ts), with the patch Conv, layernorms and embeddings left in fp32.
 *
 * LayerNorm is the opset-17 LayerNormalization op: onnxruntime fuses older exports' decomposed pattern
 * (ReduceMean, Sub, Pow, …) into this same kernel at load, so the timing is a real export's, and the
 * graph does not depend on that fusion matching. quick_gelu is written out (Mul, Sigmoid, Mul) and
 * onnxruntime fuses it to QuickGelu, as it does for real exports; SigLIP's gelu is written as PyTorch
 * exports it (see activation() in bench-model/blocks.ts). MobileCLIP folders are read as CLIP, with
 * input_ids fixed at [batch, 77] and bilinear 256-px preprocessing; their --q8 variant is `_int8`, as
 * transformers.js's scripts/quantize.py int8 mode writes it (every Conv as ConvInteger and every MatMul as
 * MatMulInteger, int8 weights per tensor; see quantizedDtype in bench-model/folder.ts).
 *
 *   tsx scripts/make-bench-model.ts <dir> --arch B/32|B/16|L/14|L/14-336|SigLIP-B/16|MobileCLIP-S0|MobileCLIP-S1|MobileCLIP-S2 [--q8 [--q8-form xenova|int8]] [--seed N] [--force]
 *
 * The folder belongs outside the repository (e.g. .cache/ or /tmp): it holds hundreds of MB and, when
 * ../shared is present, the real tokenizer files, which must not be copied into the project.
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { generateBenchModel } from "./bench-model/folder.js";
import { BENCH_ARCH_NAMES, isBenchArch } from "./bench-model/spec.js";

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const usage = `usage: tsx scripts/make-bench-model.ts <dir> --arch ${BENCH_ARCH_NAMES.join("|")} [--q8 [--q8-form xenova|int8]] [--seed N] [--force]`;
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { arch: { type: "string", default: "B/32" }, q8: { type: "boolean", default: false }, "q8-form": { type: "string" }, seed: { type: "string", default: "0" }, force: { type: "boolean", default: false } },
    });
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : String(e)}\n${usage}`);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  const dir = positionals[0];
  const seed = Number(values.seed);
  // MobileCLIP has one 8-bit form (its exports' int8); the others default to transformers.js's q8.
  const q8Form = values["q8-form"] ?? (values.arch.startsWith("MobileCLIP") ? "int8" : "xenova");
  if (!dir || positionals.length > 1 || !isBenchArch(values.arch) || !Number.isInteger(seed) || (q8Form !== "xenova" && q8Form !== "int8")) {
    console.error(usage);
    process.exit(2);
  }
  const t0 = performance.now();
  const stamp = (m: string) => console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);
  await generateBenchModel(dir, { arch: values.arch, q8: values.q8, q8Form, seed, force: values.force, log: stamp });
  stamp(`done: ${dir}`);
}
