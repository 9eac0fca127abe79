/**
 * The full-size random-weight CLIP, SigLIP and MobileCLIP generator (scripts/make-bench-model.ts), checked on
 * shrunk models: the full-size ones take ~12 s and ~800 MB to write, too much for the suite. What
 * shrinking keeps is everything these tests look at: the graph wiring, names, shapes, causal or
 * bidirectional pooling, quantisation and MobileCLIP's convolutional image tower.
 */
import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import onnxProto from "onnx-proto";
import type { onnx as Onnx } from "onnx-proto";
import * as ort from "onnxruntime-node";
import { rawVisionRate, textRates, typicalPrompts } from "../src/bench/throughput.js";
import type { SuiteReport } from "../src/bench/suite.js";
import { ClipModel } from "../src/clip.js";
import { reportTables } from "../src/cli/commands/bench-command.js";
import { readLogitInitializers } from "../src/model/family.js";
import { familyRows } from "../scripts/bench/families.js";
import { generateBenchModel } from "../scripts/bench-model/folder.js";
import type { BenchModelOptions } from "../scripts/bench-model/folder.js";
import { parameterCount, textParameters, visionParameters } from "../scripts/bench-model/parameters.js";
import type { ParameterInfo } from "../scripts/bench-model/parameters.js";
import { quantizeMatrix } from "../scripts/bench-model/quantize.js";
import { benchSpec } from "../scripts/bench-model/spec.js";
import type { BenchArch } from "../scripts/bench-model/spec.js";
import { visionGraph } from "../scripts/bench-model/towers.js";
import { paintImage } from "../scripts/world.js";
import { tempDir } from "./support/model.js";
import { repoRoot, sharedDir } from "./support/shared.js";

const { onnx } = onnxProto;

const SHRINK = { width: 64, layers: 2, heads: 4, mlp: 256, textWidth: 32, textLayers: 2, textHeads: 2 };
const SMALL: BenchModelOptions = { arch: "B/32", q8: true, seed: 3, shrink: SHRINK };

test("parameterCount gives the published CLIP ViT-B/32, ViT-B/16 and ViT-L/14 sizes", () => {
  // Published totals: sum(p.numel() for p in CLIPModel.parameters()) of openai/clip-vit-base-patch32
  // and openai/clip-vit-base-patch16 in transformers. They include logit_scale, one scalar parameter of
  // CLIPModel that neither tower graph holds: hence the + 1. position_ids are buffers, not parameters.
  const b32 = parameterCount("B/32");
  assert.equal(b32.vision + b32.text + 1, 151_277_313, `B/32: vision ${b32.vision} + text ${b32.text} + logit_scale`);
  const b16 = parameterCount("B/16");
  assert.equal(b16.vision + b16.text + 1, 149_620_737, `B/16: vision ${b16.vision} + text ${b16.text} + logit_scale`);
  // The towers differ only in the patch Conv (3·32² vs 3·16² inputs) and the position table (50 vs 197 rows).
  assert.equal(b32.text, b16.text, "both architectures share the text tower");
  assert.equal(b32.vision - b16.vision, 768 * 3 * (32 * 32 - 16 * 16) + 768 * (50 - 197), "B/32 − B/16 vision parameters");
  // openai/clip-vit-large-patch14: 24 layers of width 1024 on 257 tokens, a 768-wide text tower, 768-wide embeddings.
  const l14 = parameterCount("L/14");
  assert.equal(l14.vision + l14.text + 1, 427_616_513, `L/14: vision ${l14.vision} + text ${l14.text} + logit_scale`);
  // openai/clip-vit-large-patch14-336: L/14's towers with 577 positions instead of 257, i.e. L/14's
  // total + 320 × 1024.
  const l14336 = parameterCount("L/14-336");
  assert.equal(l14336.vision + l14336.text + 1, 427_944_193, `L/14-336: vision ${l14336.vision} + text ${l14336.text} + logit_scale`);
});

test("parameterCount gives SigLIP-B/16's size: google/siglip-base-patch16-224's towers, heads included", () => {
  // Summed from SiglipModel's parameter shapes (the model card says 203M): vision 92,884,224 (patch Conv
  // with bias, 196 positions, 12 blocks, post-layernorm, the attention-pooling head of 7,087,104) and text
  // 110,271,744 (32000 × 768 tokens, 64 positions, 12 blocks, final layernorm, a 768 × 768 head with
  // bias); + 2 for logit_scale and logit_bias, which live in model.onnx.
  const siglip = parameterCount("SigLIP-B/16");
  assert.deepEqual(siglip, { vision: 92_884_224, text: 110_271_744 });
  assert.equal(siglip.vision + siglip.text + 2, 203_155_970);
  const spec = benchSpec("SigLIP-B/16");
  assert.deepEqual(
    { family: spec.family, tokens: visionParameters(spec).find((p) => p.name.endsWith("position_embedding.weight"))!.shape[0], context: spec.text.context, vocab: spec.text.vocab, projection: spec.projectionDim },
    { family: "siglip", tokens: 196, context: 64, vocab: 32000, projection: 768 },
    "no class token: (224/16)² positions; 64 text positions; both towers end at 768",
  );
});

test("parameterCount gives MobileCLIP-S0, S1 and S2's sizes: the reparameterised MCi and MCt towers", () => {
  // The MobileCLIP paper's table of image / text encoder parameters (M): S0 11.4 / 42.4, S1 21.5 / 63.4,
  // S2 35.7 / 63.4. S0 summed by hand from mci.py and text_encoder.py in inference form: stem 6,592;
  // RepMixer blocks 6d² + 65d (d = 64, 128, 256 × 2, 6, 10); patch embeddings 22,912 + 111,680 +
  // 419,968; RepCPE 25,600; 2 attention blocks of 2,651,648; conv_exp with SE 142,400; projection
  // 1024 × 512. Text: 49408 × 512 tokens, 77 positions, 4 layers of 3,152,384, 2 RepMixer blocks of
  // 2,112,512, final layernorm, 512 × 512 projection.
  assert.deepEqual(parameterCount("MobileCLIP-S0"), { vision: 11_352_512, text: 42_434_048 });
  const millions = (arch: BenchArch) => Object.values(parameterCount(arch)).map((n) => Math.round(n / 1e5) / 10);
  assert.deepEqual(["MobileCLIP-S0", "MobileCLIP-S1", "MobileCLIP-S2"].map((a) => millions(a as BenchArch)), [[11.4, 42.4], [21.5, 63.4], [35.7, 63.4]]);
});

test("benchSpec: L/14's config and graphs carry the real export's shapes", () => {
  const spec = benchSpec("L/14");
  assert.deepEqual(
    { patch: spec.vision.patchSize, image: spec.vision.imageSize, width: spec.vision.width, textWidth: spec.text.width, projection: spec.projectionDim },
    { patch: 14, image: 224, width: 1024, textWidth: 768, projection: 768 },
  );
  assert.equal(visionParameters(spec).find((p) => p.name.endsWith("position_embedding.weight"))!.shape[0], 257, "1 + (224/14)² tokens");
  assert.throws(() => benchSpec("L/16" as BenchArch), /unknown arch "L\/16": use B\/32, B\/16, L\/14, L\/14-336, SigLIP-B\/16, MobileCLIP-S0, MobileCLIP-S1, MobileCLIP-S2/);
});

let dir: string;
let siglipDir: string;
let mobileclipDir: string;
let cacheDir: string;
const models: ClipModel[] = [];

before(async () => {
  dir = path.join(await tempDir("clip-ood-bench-"), "b32-small");
  cacheDir = await tempDir("clip-ood-bench-cache-");
  await generateBenchModel(dir, SMALL);
  siglipDir = path.join(await tempDir("clip-ood-bench-siglip-"), "siglip-small");
  await generateBenchModel(siglipDir, { ...SMALL, arch: "SigLIP-B/16" });
  mobileclipDir = path.join(await tempDir("clip-ood-bench-mobileclip-"), "mobileclip-small");
  await generateBenchModel(mobileclipDir, { ...SMALL, arch: "MobileCLIP-S0", q8: false });
});
after(async () => {
  await Promise.all(models.map((m) => m.close()));
});

async function load(dtype: "fp32" | "q8", model = dir): Promise<ClipModel> {
  const m = await ClipModel.load({ model, cacheDir, threads: 1, dtype, textCache: false });
  models.push(m);
  return m;
}

function decode(bytes: Uint8Array) {
  return onnx.ModelProto.decode(bytes);
}

test("the fp32 graphs hold exactly the parameter table, as initializers of its names and shapes", async () => {
  for (const [arch, folder] of [["B/32", dir], ["SigLIP-B/16", siglipDir], ["MobileCLIP-S0", mobileclipDir]] as const) await assertParameterTable(benchSpec(arch, SHRINK), folder);
});

async function assertParameterTable(spec: ReturnType<typeof benchSpec>, folder: string): Promise<void> {
  for (const [file, params] of [["vision_model.onnx", visionParameters(spec)], ["text_model.onnx", textParameters(spec)]] as const) {
    const model = decode(await readFile(path.join(folder, "onnx", file)));
    const inits = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? "", t]));
    let total = 0;
    for (const p of params as ParameterInfo[]) {
      const t = inits.get(p.name);
      assert.ok(t, `${spec.arch} ${file} has no initializer ${p.name}`);
      assert.deepEqual(t.dims?.map((d) => Number(String(d))), p.shape, `${spec.arch} ${file}: shape of ${p.name}`);
      assert.equal(t.rawData?.byteLength, 4 * p.shape.reduce((a, b) => a * b, 1), `${file}: bytes of ${p.name}`);
      if (!p.buffer) total += p.shape.reduce((a, b) => a * b, 1);
    }
    const tower = file.startsWith("vision") ? "vision" : "text";
    assert.equal(total, parameterCount(spec)[tower], `${spec.arch} ${file}: parameters add up to parameterCount`);
  }
}

test("the q8 graphs quantise every Linear and leave Conv, layernorms and embeddings in fp32", async () => {
  for (const [file, linears] of [["vision_model_quantized.onnx", SHRINK.layers * 6 + 1], ["text_model_quantized.onnx", SHRINK.textLayers * 6 + 1]] as const) {
    const model = decode(await readFile(path.join(dir, "onnx", file)));
    const ops = (type: string) => (model.graph?.node ?? []).filter((n) => n.opType === type).length;
    assert.equal(ops("MatMulInteger"), linears, `${file}: one MatMulInteger per Linear`);
    // q, k and v read the same layernorm output, quantised once, as quantize_dynamic does.
    assert.equal(ops("DynamicQuantizeLinear"), linears - 2 * (file.startsWith("vision") ? SHRINK.layers : SHRINK.textLayers), `${file}: DynamicQuantizeLinear count`);
    assert.equal(ops("LayerNormalization"), file.startsWith("vision") ? 2 * SHRINK.layers + 2 : 2 * SHRINK.textLayers + 1, `${file}: fp32 layernorms`);
    const inits = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? "", t]));
    const embedding = file.startsWith("vision") ? "vision_model.embeddings.patch_embedding.weight" : "text_model.embeddings.token_embedding.weight";
    assert.equal(inits.get(embedding)?.dataType, onnx.TensorProto.DataType.FLOAT, `${file}: ${embedding} stays fp32`);
  }
  // Xenova's converter (the default form): uint8 weights in the vision tower (it holds a Conv), int8 in the text tower.
  const vision = decode(await readFile(path.join(dir, "onnx", "vision_model_quantized.onnx")));
  const text = decode(await readFile(path.join(dir, "onnx", "text_model_quantized.onnx")));
  const dtypeOf = (m: typeof vision, name: string) => m.graph?.initializer?.find((t) => t.name === name)?.dataType;
  assert.equal(dtypeOf(vision, "vision_model.encoder.layers.0.mlp.fc1.weight_quantized"), onnx.TensorProto.DataType.UINT8, "vision weights are uint8");
  assert.equal(dtypeOf(text, "text_model.encoder.layers.0.mlp.fc1.weight_quantized"), onnx.TensorProto.DataType.INT8, "text weights are int8");
});

test("quantizeMatrix reproduces onnxruntime.quantization's scales and zero points", () => {
  // Hand-computed from compute_scale_zp: int8 symmetric scale = absmax/127, zero point 0; uint8 scale =
  // (max(w,0) − min(w,0))/255, zero point round(−min/scale); reduce_range halves the integer range.
  const w = Float32Array.of(-1, 0.6, 0.275, 2.54); // 2×2 row-major: columns [-1, 0.275] and [0.6, 2.54]
  const form = { op: "matmul-integer", weights: "int8", perColumn: false, reduceRange: false } as const;
  const i8 = quantizeMatrix(w, 2, 2, form);
  assert.ok(Math.abs(i8.scale[0]! - 0.02) < 1e-8, `int8 per-tensor scale ${i8.scale[0]}: 2.54/127`);
  assert.deepEqual([...i8.data], [-50, 30, 14, 127], "int8 values: w/0.02 rounded");
  assert.deepEqual([...i8.zeroPoint], [0], "int8 zero point");
  const u8 = quantizeMatrix(w, 2, 2, { ...form, weights: "uint8", perColumn: true });
  assert.ok(Math.abs(u8.scale[0]! - 0.005) < 1e-8 && Math.abs(u8.scale[1]! - 2.54 / 255) < 1e-8, `uint8 per-column scales ${[...u8.scale]}`);
  assert.deepEqual([...u8.zeroPoint], [200, 0], "uint8 zero points: 1/0.005 and 0 (the range always holds 0)");
  assert.deepEqual([...u8.data], [0, 60, 255, 255], "uint8 values");
  const rr = quantizeMatrix(w, 2, 2, { ...form, reduceRange: true });
  assert.ok(Math.abs(rr.scale[0]! - 5.08 / 128) < 1e-8, `reduce-range scale ${rr.scale[0]}: 2·2.54/(64 − (−64))`);
  // Ties go to even, as numpy's round (scale 31.75/127 = 0.25 exactly): 2.5 → 2 and −1.5 → −2.
  const ties = quantizeMatrix(Float32Array.of(0.625, -0.375, 31.75), 1, 3, form);
  assert.deepEqual([...ties.data], [2, -2, 127], "ties to even");
});

test("graphs declare the export contract's inputs and outputs and produce its shapes", async () => {
  const spec = benchSpec("B/32", SHRINK);
  for (const sfx of ["", "_quantized"]) {
    const vision = await ort.InferenceSession.create(path.join(dir, "onnx", `vision_model${sfx}.onnx`), { intraOpNumThreads: 1 });
    assert.deepEqual(vision.inputNames, ["pixel_values"], `vision${sfx} inputs`);
    assert.deepEqual(vision.outputNames, ["image_embeds", "last_hidden_state"], `vision${sfx} outputs`);
    const pixels = new Float32Array(2 * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.37));
    const v = await vision.run({ pixel_values: new ort.Tensor("float32", pixels, [2, 3, 224, 224]) });
    assert.deepEqual(v.image_embeds!.dims, [2, spec.projectionDim], `vision${sfx} image_embeds shape`);
    assert.deepEqual(v.last_hidden_state!.dims, [2, 1 + 49, SHRINK.width], `vision${sfx} last_hidden_state shape`);
    await vision.release();

    const text = await ort.InferenceSession.create(path.join(dir, "onnx", `text_model${sfx}.onnx`), { intraOpNumThreads: 1 });
    assert.deepEqual(text.inputNames, ["input_ids", "attention_mask"], `text${sfx} inputs`);
    assert.deepEqual(text.outputNames, ["text_embeds", "last_hidden_state"], `text${sfx} outputs`);
    for (const length of [5, 77]) {
      const ids = BigInt64Array.from({ length: 2 * length }, (_, i) => (i % length === length - 1 ? 49407n : BigInt(400 + i)));
      const t = await text.run({ input_ids: new ort.Tensor("int64", ids, [2, length]), attention_mask: new ort.Tensor("int64", new BigInt64Array(2 * length).fill(1n), [2, length]) });
      assert.deepEqual(t.text_embeds!.dims, [2, spec.projectionDim], `text${sfx} text_embeds shape at length ${length}`);
      assert.deepEqual(t.last_hidden_state!.dims, [2, length, SHRINK.textWidth], `text${sfx} last_hidden_state shape at length ${length}`);
    }
    await text.release();
  }
});

test("the contrib DynamicQuantizeMatMul form computes what the MatMulInteger form does", async () => {
  const spec = benchSpec("B/32", SHRINK);
  const form = { op: "matmul-integer", weights: "int8", perColumn: true, reduceRange: false } as const;
  const pixels = new Float32Array(3 * 224 * 224).map((_, i) => Math.cos(i * 0.011));
  const embeds = async (bytes: Uint8Array) => {
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const r = await s.run({ pixel_values: new ort.Tensor("float32", pixels, [1, 3, 224, 224]) });
    await s.release();
    return r.image_embeds!.data as Float32Array;
  };
  const a = await embeds(visionGraph(spec, 3, { kind: "q8", form }));
  const b = await embeds(visionGraph(spec, 3, { kind: "q8", form: { ...form, op: "contrib" } }));
  const diff = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
  assert.ok(diff < 1e-4, `contrib vs MatMulInteger image_embeds differ by ${diff}`);
});

test("text pooling is causal: tokens after the end token never change text_embeds", async () => {
  const text = await ort.InferenceSession.create(path.join(dir, "onnx", "text_model.onnx"), { intraOpNumThreads: 1 });
  const run = async (ids: number[], mask = ids.map(() => 1)) => {
    const r = await text.run({
      input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]),
      attention_mask: new ort.Tensor("int64", BigInt64Array.from(mask, BigInt), [1, mask.length]),
    });
    return { embeds: r.text_embeds!.data as Float32Array, hidden: r.last_hidden_state!.data as Float32Array };
  };
  const prompt = [49406, 320, 1125, 539, 320, 2368, 49407];
  const base = await run(prompt);
  // Arbitrary ids below the end token, left unmasked: only the causal mask keeps them out.
  const garbage = await run([...prompt, 1000, 2000, 3000, 4000]);
  const padded = await run([...prompt, 49407, 49407, 49407], [...prompt.map(() => 1), 0, 0, 0]);
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
  assert.ok(maxDiff(base.embeds, garbage.embeds) < 1e-5, `tokens after the end token moved text_embeds by ${maxDiff(base.embeds, garbage.embeds)}`);
  assert.ok(maxDiff(base.embeds, padded.embeds) < 1e-5, `padding moved text_embeds by ${maxDiff(base.embeds, padded.embeds)}`);
  // Controls: the later tokens were really processed, and a token before the end does matter.
  const w = SHRINK.textWidth;
  assert.ok(maxDiff(garbage.hidden.slice(7 * w, 8 * w), padded.hidden.slice(7 * w, 8 * w)) > 1e-3, "positions after the end token carry their own states");
  const changed = await run([49406, 320, 1125, 539, 320, 1929, 49407]);
  assert.ok(maxDiff(base.embeds, changed.embeds) > 1e-3, "a different token before the end token changes text_embeds");
  await text.release();
});

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0); // unit rows

test("ClipModel loads the fp32 and q8 variants; embeddings are finite and q8 follows fp32", async () => {
  const images = await Promise.all(
    (["red", "blue", "green"] as const).map(async (colour, i) => ({ name: `${colour}.png`, data: await paintImage({ colour, texture: "striped", width: 300, height: 220, seed: 11 + i }) })),
  );
  const prompts = ["a photo of a cat", "a striped red thing", "a"];
  const out: Record<string, { images: Float32Array[]; texts: Float32Array[] }> = {};
  for (const dtype of ["fp32", "q8"] as const) {
    const model = await load(dtype);
    const rows: Float32Array[] = [];
    for await (const r of model.embedImages(images)) {
      assert.equal(r.error, null, `${dtype}: ${r.input} failed: ${r.error?.message}`);
      rows.push(r.embedding!);
    }
    const texts = await model.embedTexts(prompts);
    assert.equal(texts.cols, 512, `${dtype}: text embedding width`);
    const textRows = prompts.map((_, i) => texts.data.slice(i * 512, (i + 1) * 512));
    for (const [what, list] of [["image", rows], ["text", textRows]] as const) {
      for (const e of list) {
        assert.equal(e.length, 512, `${dtype}: ${what} embedding width`);
        assert.ok(e.every(Number.isFinite), `${dtype}: ${what} embedding has non-finite values`);
      }
    }
    // Padding to the batch's longest prompt must not move the short prompt: causal pooling end to end.
    // Under q8 it moves a little all the same: DynamicQuantizeLinear takes one scale over the whole
    // batch (pads included), so batch-mates change every activation's rounding, as in real q8 exports.
    const alone = await model.embedTexts(["a"]);
    const tolerance = dtype === "fp32" ? 1e-6 : 1e-3;
    assert.ok(cosine(alone.data, textRows[2]!) > 1 - tolerance, `${dtype}: "a" alone vs padded in a batch: cos ${cosine(alone.data, textRows[2]!)}`);
    out[dtype] = { images: rows, texts: textRows };
  }
  out.fp32!.images.forEach((e, i) => {
    const c = cosine(e, out.q8!.images[i]!);
    assert.ok(c >= 0.99, `image ${i}: q8 vs fp32 cosine ${c.toFixed(5)} < 0.99`);
  });
  out.fp32!.texts.forEach((e, i) => {
    const c = cosine(e, out.q8!.texts[i]!);
    assert.ok(c >= 0.98, `prompt ${i}: q8 vs fp32 cosine ${c.toFixed(5)} < 0.98`);
  });
  // Random weights still separate inputs: different images do not collapse onto one embedding.
  assert.ok(cosine(out.fp32!.images[0]!, out.fp32!.images[1]!) < 0.999, "different images give different embeddings");
});

test("the int8 form and the generated tokenizer (a fresh clone without ../shared) also load and agree", async () => {
  const other = path.join(await tempDir("clip-ood-bench-int8-"), "m");
  await generateBenchModel(other, { ...SMALL, q8Form: "int8", tokenizerFrom: false });
  const data = await paintImage({ colour: "yellow", texture: "checkered", width: 260, height: 260, seed: 5 });
  const embed = async (dtype: "fp32" | "q8") => {
    const model = await load(dtype, other);
    for await (const r of model.embedImages([{ name: "y.png", data }])) return { image: r.embedding!, text: await model.embedTexts(["a photo of a cat"]) };
    throw new Error("no result");
  };
  const fp32 = await embed("fp32");
  const q8 = await embed("q8");
  assert.ok(cosine(fp32.image, q8.image) >= 0.99, `int8 q8 vs fp32 image cosine ${cosine(fp32.image, q8.image)}`);
  assert.ok(fp32.text.data.every(Number.isFinite), "text embedding through the generated tokenizer is finite");
  const tokenizer = JSON.parse(await readFile(path.join(other, "tokenizer.json"), "utf8")) as { model: { vocab: Record<string, number> } };
  assert.ok(Object.keys(tokenizer.model.vocab).length < 49408, "tokenizerFrom: false wrote the small generated vocabulary");
});

test("the default tokenizer is ../shared's real one where present", { skip: sharedDir ? false : "../shared is absent (fresh clone)" }, async () => {
  const real = await readFile(path.join(sharedDir!, "clip-vit-base-patch32", "tokenizer.json"), "utf8");
  assert.equal(await readFile(path.join(dir, "tokenizer.json"), "utf8"), real, "tokenizer.json copied verbatim");
});

test("a complete folder is not regenerated; another seed or arch is", async () => {
  const graph = path.join(dir, "onnx", "vision_model.onnx");
  const before = (await stat(graph)).mtimeMs;
  const logs: string[] = [];
  await generateBenchModel(dir, { ...SMALL, log: (m) => logs.push(m) });
  assert.equal((await stat(graph)).mtimeMs, before, "same options: the graph was rewritten");
  assert.ok(logs.some((m) => m.includes("nothing to do")), `same options: logs ${JSON.stringify(logs)}`);

  // A folder with q8 also serves a request for fp32 alone.
  await generateBenchModel(dir, { ...SMALL, q8: false, log: (m) => logs.push(m) });
  assert.equal((await stat(graph)).mtimeMs, before, "fp32 alone from a folder with q8: the graph was rewritten");

  const other = path.join(await tempDir("clip-ood-bench-seed-"), "m");
  await generateBenchModel(other, SMALL);
  const a = await readFile(path.join(other, "onnx", "vision_model.onnx"));
  await generateBenchModel(other, { ...SMALL, seed: 4 });
  const b = await readFile(path.join(other, "onnx", "vision_model.onnx"));
  assert.ok(!a.equals(b), "another seed regenerated different weights");
  const config = JSON.parse(await readFile(path.join(other, "config.json"), "utf8")) as { vision_config: { patch_size: number } };
  assert.equal(config.vision_config.patch_size, 32, "config.json names the patch size");
  await generateBenchModel(other, { ...SMALL, arch: "B/16", q8: false });
  const b16 = JSON.parse(await readFile(path.join(other, "config.json"), "utf8")) as { vision_config: { patch_size: number } };
  assert.equal(b16.vision_config.patch_size, 16, "B/16 regenerated the folder");
  await assert.rejects(stat(path.join(other, "onnx", "vision_model_quantized.onnx")), "a regeneration without q8 removes the stale q8 graphs");
});

test("generated weights are reproducible and scaled as documented", async () => {
  // Same seed, separate folders: byte-identical graphs.
  const again = path.join(await tempDir("clip-ood-bench-again-"), "m");
  await generateBenchModel(again, { ...SMALL, q8: false });
  const a = await readFile(path.join(dir, "onnx", "text_model.onnx"));
  const b = await readFile(path.join(again, "onnx", "text_model.onnx"));
  assert.ok(a.equals(b), "the same seed writes identical text graphs");
  const model = decode(a);
  const fc1 = model.graph?.initializer?.find((t) => t.name === "text_model.encoder.layers.0.mlp.fc1.weight");
  assert.ok(fc1?.rawData, "fc1 weight present");
  const values = new Float32Array(fc1.rawData.buffer.slice(fc1.rawData.byteOffset, fc1.rawData.byteOffset + fc1.rawData.byteLength));
  const mean = values.reduce((s, x) => s + x, 0) / values.length;
  const std = Math.sqrt(values.reduce((s, x) => s + (x - mean) ** 2, 0) / values.length);
  // 8192 draws of N(0, 0.02²): the sample std is within a few percent of 0.02.
  assert.ok(Math.abs(std - 0.02) < 0.001 && Math.abs(mean) < 0.001, `fc1 weights: mean ${mean}, std ${std}`);
});

/** Declared dims of a graph's inputs and outputs by name: numbers, or the symbolic names. */
function declaredInterface(bytes: Uint8Array) {
  const graph = decode(bytes).graph!;
  const dims = (v: Onnx.IValueInfoProto) => [v.name, v.type?.tensorType?.shape?.dim?.map((d) => d.dimParam || Number(String(d.dimValue)))];
  return { inputs: Object.fromEntries(graph.input!.map(dims)), outputs: Object.fromEntries(graph.output!.map(dims)) };
}

test("SigLIP-B/16: the graphs declare the Xenova export's inputs and outputs, and the text tower is bidirectional", async () => {
  const siglip = siglipDir;
  const [W, T] = [SHRINK.width, SHRINK.textWidth];
  for (const sfx of ["", "_quantized"]) {
    const visionFile = path.join(siglip, "onnx", `vision_model${sfx}.onnx`);
    assert.deepEqual(declaredInterface(await readFile(visionFile)), {
      inputs: { pixel_values: ["batch_size", 3, 224, 224] },
      outputs: { last_hidden_state: ["batch_size", 196, W], pooler_output: ["batch_size", W] },
    }, `vision${sfx}: 196 patch tokens, no class token; pooler_output from the attention-pooling head`);
    const textFile = path.join(siglip, "onnx", `text_model${sfx}.onnx`);
    assert.deepEqual(declaredInterface(await readFile(textFile)), {
      inputs: { input_ids: ["batch_size", "sequence_length"] },
      outputs: { last_hidden_state: ["batch_size", "sequence_length", T], pooler_output: ["batch_size", W] },
    }, `text${sfx}: input_ids only, no attention_mask`);

    const vision = await ort.InferenceSession.create(visionFile, { intraOpNumThreads: 1 });
    const pixels = new Float32Array(2 * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.37));
    const v = await vision.run({ pixel_values: new ort.Tensor("float32", pixels, [2, 3, 224, 224]) });
    assert.deepEqual([v.last_hidden_state!.dims, v.pooler_output!.dims], [[2, 196, W], [2, W]], `vision${sfx} output shapes`);
    await vision.release();

    const text = await ort.InferenceSession.create(textFile, { intraOpNumThreads: 1 });
    const run = async (ids: number[]) => {
      const r = await text.run({ input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]) });
      return { hidden: r.last_hidden_state!.data as Float32Array, pooled: r.pooler_output!.data as Float32Array, dims: [r.last_hidden_state!.dims, r.pooler_output!.dims] };
    };
    const prompt = [5, 17, 42, 1, ...Array<number>(60).fill(1)];
    const base = await run(prompt);
    assert.deepEqual(base.dims, [[1, 64, T], [1, W]], `text${sfx} output shapes`);
    // No causal mask: a later token changes the first position's state, and the pooled last position.
    const later = await run([5, 17, 43, 1, ...Array<number>(60).fill(1)]);
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    assert.ok(maxDiff(base.hidden.slice(0, T), later.hidden.slice(0, T)) > 1e-4, `text${sfx}: position 0 does not see position 2`);
    assert.ok(maxDiff(base.pooled, later.pooled) > 1e-4, `text${sfx}: pooler_output ignores position 2`);
    await text.release();
  }
  const scoring = await readLogitInitializers(path.join(siglip, "onnx", "model.onnx"));
  assert.ok(Math.abs(scoring!.logitScale! - 117.3308) < 1e-3 && scoring!.logitBias === Math.fround(-12.9324), `model.onnx: ${JSON.stringify(scoring)}`);
  const config = JSON.parse(await readFile(path.join(siglip, "config.json"), "utf8")) as { model_type: string; vision_config: Record<string, unknown> };
  assert.deepEqual([config.model_type, config.vision_config["hidden_act"], config.vision_config["patch_size"]], ["siglip", "gelu_pytorch_tanh", 16]);

  // ClipModel reads it as SigLIP: pooler_output of both towers, unit rows of the vision width, the
  // real model's scoring values, and the bench prompts' words as whole pieces padded to 64.
  const images = await Promise.all([11, 12].map(async (seed) => ({ name: `${seed}.png`, data: await paintImage({ colour: "red", texture: "striped", width: 300, height: 220, seed }) })));
  const prompts = ["a photo of a goldfish.", "a bad photo of the tench."];
  const norm = (e: Float32Array) => Math.sqrt(e.reduce((s, x) => s + x * x, 0));
  for (const dtype of ["fp32", "q8"] as const) {
    const model = await load(dtype, siglip);
    assert.equal(model.model.family, "siglip", `${dtype}: family`);
    for await (const r of model.embedImages(images)) {
      assert.equal(r.error, null, `${dtype}: ${r.input}: ${r.error?.message}`);
      assert.equal(r.embedding!.length, W, `${dtype}: image embedding width`);
      assert.ok(Math.abs(norm(r.embedding!) - 1) < 1e-5, `${dtype}: image embedding norm ${norm(r.embedding!)}`);
    }
    const texts = await model.embedTexts(prompts);
    assert.equal(texts.cols, W, `${dtype}: text embedding width`);
    for (let i = 0; i < prompts.length; i++) {
      const e = texts.data.slice(i * W, (i + 1) * W);
      assert.ok(Math.abs(norm(e) - 1) < 1e-5, `${dtype}: text embedding ${i} norm ${norm(e)}`);
    }
    assert.deepEqual(await model.scoring(), { kind: "sigmoid", logitScale: scoring!.logitScale, logitBias: scoring!.logitBias }, `${dtype}: scoring`);
    const batch = model.tokenizer.encodeBatch(prompts);
    assert.equal(batch.sequenceLength, 64, `${dtype}: padded to 64`);
    const pieces = [0, 1].map((r) => batch.attentionMask.slice(r * 64, (r + 1) * 64).reduce((s, x) => s + Number(x), 0));
    assert.deepEqual(pieces, [6, 7], `${dtype}: one piece per word, then </s>`);
  }
});

test("the throughput bench times SigLIP as it runs: pooler_output from the raw graph, prompts padded to 64 only", async () => {
  assert.ok((await rawVisionRate(path.join(siglipDir, "onnx", "vision_model.onnx"), 2, 1, 0, 224, "pooler_output")) > 0, "raw SigLIP vision rate");
  const settings = (model: string) => ({ model, dtype: "fp32" as const, cacheDir, batchSize: 4, workers: 1, threads: 1 });
  const prompts = typicalPrompts(8);
  const siglip = await textRates(settings(siglipDir), prompts);
  assert.deepEqual([siglip.contextLength, siglip.longest], [64, undefined], "SigLIP: no padding to the longest to time");
  const clip = await textRates(settings(dir), prompts);
  assert.deepEqual([clip.contextLength, clip.longest?.maxAbsDiff], [77, 0], "CLIP: both paddings, identical fp32 embeddings");

  const report = { dtypes: [{ dtype: "fp32", text: { paddedToContextPromptsPerSecond: siglip.max, contextLength: 64, prompts: 8 } }], imageRuns: [] } as unknown as SuiteReport;
  const row = reportTables(report).split("\n").at(-1)!.split(" | ");
  assert.deepEqual(row.slice(2, 6), ["– (always padded)", `${siglip.max.toFixed(0)} (64)`, "–", "–"], "the table says what was timed");
});

test("bench models are refused inside the repository, outside its git-ignored caches", async () => {
  await assert.rejects(generateBenchModel(path.join(repoRoot, "scripts", "bench-model-here"), SMALL), /inside the repository/, "a folder under scripts/ is refused");
});

test("MobileCLIP-S0: the MCi image graph and the non-causal fixed-77 text graph as the exports declare them", async () => {
  const spec = benchSpec("MobileCLIP-S0", SHRINK);
  const read = async (file: string) => readFile(path.join(mobileclipDir, "onnx", file));
  assert.deepEqual(declaredInterface(await read("vision_model.onnx")), {
    inputs: { pixel_values: ["batch_size", 3, 256, 256] },
    outputs: { image_embeds: ["batch_size", 512] },
  });
  assert.deepEqual(declaredInterface(await read("text_model.onnx")), {
    inputs: { input_ids: ["batch_size", 77] },
    outputs: { text_embeds: ["batch_size", 512], last_hidden_state: ["batch_size", 77, SHRINK.textWidth] },
  }, "input_ids fixed at 77, no attention_mask");
  // Convolutions per stage layout (every stage shrunk to 2 blocks): stem 3; RepMixer blocks 4 each
  // (mixer, depthwise FFN, fc1, fc2) in stages 0–2; RepCPE 1; attention blocks 3 each (their ConvFFN);
  // patch embeddings 2 each, + 2 for the SE into stages 2 and 3; conv_exp 1 + its SE's 2.
  const blocks = SHRINK.layers;
  const ops = (m: Onnx.ModelProto, type: string) => (m.graph?.node ?? []).filter((n) => n.opType === type).length;
  const vision = decode(await read("vision_model.onnx"));
  assert.equal(ops(vision, "Conv"), 3 + 3 * 4 * blocks + 1 + 3 * blocks + 3 * 2 + 2 * 2 + 3, "Conv count");
  assert.equal(ops(vision, "BatchNormalization"), blocks, "one BatchNorm per attention block");
  assert.equal(ops(vision, "Softmax"), blocks, "attention only in the last stage");
  assert.ok(ops(vision, "Erf") > 0 && ops(vision, "MatMulInteger") === 0, "exact GELU, fp32");
  const text = decode(await read("text_model.onnx"));
  assert.equal(ops(text, "Conv"), 2 * 4, "S0's text tower: a RepMixer block on each side");
  assert.equal(ops(text, "Softmax"), SHRINK.textLayers, "one attention per transformer layer");

  const textSession = await ort.InferenceSession.create(path.join(mobileclipDir, "onnx", "text_model.onnx"), { intraOpNumThreads: 1 });
  const run = async (ids: number[]) => {
    const padded = [...ids, ...Array<number>(77 - ids.length).fill(0)];
    const r = await textSession.run({ input_ids: new ort.Tensor("int64", BigInt64Array.from(padded, BigInt), [1, 77]) });
    return r.text_embeds!.data as Float32Array;
  };
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
  const prompt = [49406, 320, 1125, 49407];
  // Not causal: what follows the end-of-text token changes its pooled state (hence the fixed padding).
  const base = await run(prompt);
  assert.ok(maxDiff(base, await run([...prompt, 1000])) > 1e-4, "a token after the end token is seen");
  assert.ok(base.every(Number.isFinite), "finite text_embeds");
  await textSession.release();

  // ClipModel reads the folder as CLIP, pads every prompt to 77 and embeds 256-px images to unit rows.
  const model = await load("fp32", mobileclipDir);
  assert.equal(await model.textPadding("longest"), "max", "a request to pad to the longest prompt still pads to the graph's 77");
  assert.equal(model.tokenizer.maxLength, spec.text.context, "the context is 77");
  const data = await paintImage({ colour: "green", texture: "checkered", width: 320, height: 240, seed: 4 });
  for await (const r of model.embedImages([{ name: "g.png", data }])) {
    assert.equal(r.error, null, `image: ${r.error?.message}`);
    assert.ok(Math.abs(Math.hypot(...r.embedding!) - 1) < 1e-5 && r.embedding!.length === 512, "unit 512-wide image embedding");
  }
  const texts = await textRates({ model: mobileclipDir, dtype: "fp32", cacheDir, batchSize: 4, workers: 1, threads: 1 }, typicalPrompts(4));
  assert.deepEqual([texts.contextLength, texts.longest], [77, undefined], "the bench times prompts padded to 77 only");
});

test("MobileCLIP's 8-bit variant is its exports' _int8 form: every Conv as ConvInteger, every Linear as MatMulInteger", async () => {
  const other = path.join(await tempDir("clip-ood-bench-mint8-"), "m");
  await generateBenchModel(other, { ...SMALL, arch: "MobileCLIP-S0" });
  await assert.rejects(stat(path.join(other, "onnx", "vision_model_quantized.onnx")), "no _quantized file: the exports have _int8");
  const fp32 = decode(await readFile(path.join(other, "onnx", "vision_model.onnx")));
  const int8 = decode(await readFile(path.join(other, "onnx", "vision_model_int8.onnx")));
  const ops = (m: Onnx.ModelProto, type: string) => (m.graph?.node ?? []).filter((n) => n.opType === type).length;
  assert.deepEqual([ops(int8, "ConvInteger"), ops(int8, "Conv")], [ops(fp32, "Conv"), 0], "every convolution quantised");
  assert.equal(ops(int8, "MatMulInteger"), 2 * SHRINK.layers + 1, "qkv and proj per attention block, and the head's projection");
  const weight = int8.graph?.initializer?.find((t) => t.name === "vision_model.stem.0.weight_quantized");
  assert.equal(weight?.dataType, onnx.TensorProto.DataType.INT8, "int8 weights");
  // Through ClipModel with --dtype int8: unit embeddings close to fp32's.
  const pick = async (dtype: "fp32" | "int8") => {
    const model = await ClipModel.load({ model: other, cacheDir, threads: 1, dtype, textCache: false });
    models.push(model);
    const data = await paintImage({ colour: "blue", texture: "striped", width: 300, height: 260, seed: 9 });
    for await (const r of model.embedImages([{ name: "b.png", data }])) return r.embedding!;
    throw new Error("no result");
  };
  const c = cosine(await pick("fp32"), await pick("int8"));
  assert.ok(c > 0.99, `int8 vs fp32 image cosine ${c}`);
  await assert.rejects(generateBenchModel(path.join(await tempDir("clip-ood-bench-mx-"), "m"), { ...SMALL, arch: "MobileCLIP-S0", q8Form: "xenova" }), /does not apply/, "CLIP's q8 form is refused for MobileCLIP");
});

test("the families bench writes one row per dtype, naming the preset and both towers' sizes", () => {
  const report = {
    imageRuns: [{ dtype: "fp32", batchSize: 16, workers: 1, threads: 2, rawImagesPerSecond: 34.14, endToEndImagesPerSecond: 25.44, ratio: 0.75, preprocessImagesPerSecond: 95 }],
    dtypes: [{ dtype: "fp32", text: { paddedToContextPromptsPerSecond: 61.6, contextLength: 77, prompts: 128 }, coldStartSeconds: 1.857, detectPeakRssBytes: 702 * 2 ** 20, detectImages: 48 }, { dtype: "q8" }],
  } as unknown as SuiteReport;
  assert.deepEqual(familyRows("MobileCLIP-S0", report), [
    "| `mobileclip-s0` | MobileCLIP-S0 | 11.4 + 42.4 M | fp32 | 34.1 | 25.4 | 62 (77) | 1.86 s | 702 MiB |",
    "| `mobileclip-s0` | MobileCLIP-S0 | 11.4 + 42.4 M | q8 | – | – | – | – | – |",
  ]);
});
