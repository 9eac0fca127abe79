/**
 * GL-MCM: the score and the head maths against numpy, the head read back from generated graphs (both
 * LayerNorm patterns, several storage forms) against the generator's own numbers and against
 * onnxruntime running those graphs, and the world: a small in-distribution object in an OOD scene.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";
import type { onnx as Onnx } from "onnx-proto";
import { generateModel } from "../scripts/make-test-model.js";
import type { GeneratedModel } from "../scripts/make-test-model.js";
import { FLOAT, GraphBuilder } from "../src/maths/kernels/onnx-graph.js";
import { paintImage } from "../scripts/world.js";
import type { PaintOptions } from "../scripts/world.js";
import { ClipModel } from "../src/clip.js";
import { preprocessImage } from "../src/image/preprocess.js";
import { parsePreprocessorConfig } from "../src/model/preprocessor-config.js";
import { mcmScore } from "../src/maths/scores.js";
import { argmax, matmulTransposed, matrix, normalizeRows, row } from "../src/maths/vectors.js";
import type { Matrix } from "../src/maths/vectors.js";
import { glmcmScore } from "../src/ood/zero-shot/glmcm.js";
import { classTokenEmbedding, headAgreement, localFeatures, patchFeatures } from "../src/ood/zero-shot/local-features.js";
import type { VisionHead } from "../src/ood/zero-shot/local-features.js";
import { checkHeadAgreement, readVisionHead } from "../src/ood/zero-shot/vision-head-graph.js";
import { loadClasses } from "../src/text/classes.js";
import { tempDir } from "./support/model.js";
import { rejectsWithCode } from "./support/assertions.js";

const { onnx } = onnxProto;

const close = (a: number, b: number, tol = 1e-6, what = "") => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} ≠ ${b}`);

// ------------------------------------------------------------------------------------------------
// The score

// Reference values from numpy (python3):
//   sm = lambda x, T: np.exp(x/T - max(x/T)) / np.exp(x/T - max(x/T)).sum()
//   score = sm(G, T).max() + lam * max(sm(r, T).max() for r in L)
const G = [0.3, 0.25, 0.2];
const L = matrix(3, 3, Float32Array.from([0.1, 0.2, 0.15, 0.32, 0.18, 0.22, 0.05, 0.3, 0.31]));

test("glmcmScore: global MCM + λ · best per-patch MCM, against numpy", () => {
  const a = glmcmScore(G, L); // T = 1, λ = 0.5
  close(a.score, 0.5312190161833832, 1e-7, "score");
  close(a.local, 0.36217430946885976, 1e-7, "local");
  assert.equal(a.index, 0);
  // Patch 1 has the largest raw cosine (0.32), but at T = 1 patch 2's softmax peaks higher (0.3622 vs
  // 0.3605): the local term ranks patches by their softmax, not by their raw cosine.
  assert.equal(a.patch, 2);
  const b = glmcmScore(G, L, { temperature: 0.1, lambda: 1 });
  close(b.score, 1.1258762501917792, 1e-6, "score");
  close(b.local, 0.6193958591361253, 1e-6, "local");
  assert.equal(b.patch, 1);
});

test("glmcmScore with λ = 0 is MCM on the global cosines", () => {
  for (const temperature of [1, 0.05]) {
    const r = glmcmScore(G, L, { lambda: 0, temperature });
    const m = mcmScore(G, temperature);
    assert.equal(r.score, m.score);
    assert.equal(r.index, m.index);
  }
});

test("glmcmScore: the local term is the best patch's MCM wherever that patch sits", () => {
  const patches = [
    [0.2, 0.2, 0.2], // uniform: MCM = 1/3
    [0.2, 0.9, 0.1], // the clearest patch
    [0.5, 0.6, 0.4],
    [0.2, 0.2, 0.2],
  ];
  const best = mcmScore(patches[1]!).score;
  for (let shift = 0; shift < patches.length; shift++) {
    const rolled = patches.map((_, i) => patches[(i + shift) % patches.length]!);
    const r = glmcmScore(G, matrix(4, 3, Float32Array.from(rolled.flat())), { lambda: 1 });
    assert.equal(r.patch, (1 - shift + patches.length) % patches.length, `shift ${shift}`);
    close(r.local, best, 1e-7, "local"); // the matrix holds float32 cosines
    close(r.score, mcmScore(G).score + best, 1e-7, "score");
  }
  // Ties keep the first patch.
  assert.equal(glmcmScore(G, matrix(2, 3, Float32Array.from([0.2, 0.9, 0.1, 0.2, 0.9, 0.1]))).patch, 0);
});

test("glmcmScore rejects a class-count mismatch, no patches, bad λ or T", () => {
  assert.throws(() => glmcmScore(G, matrix(2, 2)), /2 classes, global cosines 3/);
  assert.throws(() => glmcmScore(G, matrix(0, 3)), /at least one patch/);
  assert.throws(() => glmcmScore(G, L, { lambda: -1 }), /lambda/);
  assert.throws(() => glmcmScore(G, L, { lambda: Number.NaN }), /lambda/);
  assert.throws(() => glmcmScore(G, L, { temperature: 0 }), /temperature/);
});

// ------------------------------------------------------------------------------------------------
// The head maths

// A 3-token (class + 2 patches), width-4, dim-3 example. Reference values from numpy (python3):
//   Y = (X - X.mean(-1, keepdims=True)) / np.sqrt(X.var(-1, keepdims=True) + eps) * g + b;  E = Y @ P
//   cls = E[0];  local = E[1:] / np.linalg.norm(E[1:], axis=1, keepdims=True)
const tinyHead: VisionHead = {
  gamma: Float32Array.from([1, 0.5, 2, 1.5]),
  beta: Float32Array.from([0.1, -0.2, 0, 0.3]),
  epsilon: 1e-5,
  projection: Float32Array.from([1, 0, 0.5, 0, 1, -1, 2, 0.5, 0, -1, 1, 1]),
  width: 4,
  dim: 3,
};
const tinyHidden = Float32Array.from([1, 2, 3, 4, 0.5, -1, 2, 0, 3, 3, -2, 1]);

test("classTokenEmbedding and localFeatures against numpy", () => {
  const cls = classTokenEmbedding(tinyHidden, tinyHead);
  [-1.7652413233, 2.3360590333, 2.1152413233].forEach((v, i) => close(cls[i]!, v, 1e-5, `cls[${i}]`));
  const local = localFeatures(tinyHidden, 3, tinyHead);
  assert.equal(local.rows, 2);
  assert.equal(local.cols, 3);
  [0.9914027876, 0.0687275144, 0.1113420027, -0.973444526, -0.2195776021, 0.0647412658].forEach((v, i) =>
    close(local.data[i]!, v, 1e-6, `local[${i}]`),
  );
  // The same through patchFeatures; local_embeds rows are only normalised.
  assert.deepEqual(patchFeatures({ kind: "last_hidden_state", tokens: 3, width: 4, data: tinyHidden }, tinyHead), local);
  const direct = patchFeatures({ kind: "local_embeds", tokens: 2, width: 2, data: Float32Array.from([3, 4, 0, 2]) }, undefined);
  assert.deepEqual(Array.from(direct.data), [0.6000000238418579, 0.800000011920929, 0, 1]);
  assert.throws(() => patchFeatures({ kind: "last_hidden_state", tokens: 3, width: 4, data: tinyHidden }, undefined), /need the vision head/);
  assert.throws(() => localFeatures(tinyHidden, 4, tinyHead), /expected 4 tokens × width 4/);
  assert.throws(() => localFeatures(tinyHidden.subarray(0, 4), 1, tinyHead), /at least one patch token/);
});

// ------------------------------------------------------------------------------------------------
// Reading the head from generated graphs

interface Generated {
  dir: string;
  heads: GeneratedModel["visionHeads"];
}
const models: Record<"decomposed" | "fused", Generated> = {} as Record<"decomposed" | "fused", Generated>;
let pixels: Float32Array;
let batch: number;

before(async () => {
  for (const form of ["decomposed", "fused"] as const) {
    const dir = path.join(await tempDir("clip-ood-glmcm-"), "model");
    models[form] = { dir, heads: (await generateModel(dir, { postLayerNorm: form, localEmbeds: true })).visionHeads };
  }
  const specs: PaintOptions[] = [
    { colour: "red", texture: "plain", width: 300, height: 240, seed: 11 },
    { colour: "cyan", texture: "striped", width: 240, height: 320, seed: 12 },
    { colour: "brown", texture: "checkered", width: 224, height: 224, seed: 13 },
  ];
  const images = await Promise.all(specs.map((s) => preprocess(models.decomposed.dir, s)));
  batch = images.length;
  pixels = new Float32Array(images.reduce((n, i) => n + i.length, 0));
  images.forEach((img, i) => pixels.set(img, i * img.length));
});

async function preprocess(dir: string, spec: PaintOptions): Promise<Float32Array> {
  const cfg = parsePreprocessorConfig(JSON.parse(await readFile(path.join(dir, "preprocessor_config.json"), "utf8")), "preprocessor_config.json");
  return preprocessImage(await paintImage(spec), cfg, { exifRotate: false, maxPixels: 0 });
}

interface VisionRun {
  lastHiddenState: Float32Array;
  tokens: number;
  imageEmbeds: Float32Array;
  localEmbeds: Float32Array | undefined;
}

/** The vision graph run by onnxruntime itself: the independent side of every head check. */
async function runVision(file: string, input: Float32Array, n: number): Promise<VisionRun> {
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run({ pixel_values: new ort.Tensor("float32", input, [n, 3, 224, 224]) });
    const lhs = out.last_hidden_state!;
    return {
      lastHiddenState: lhs.data as Float32Array,
      tokens: lhs.dims[1]!,
      imageEmbeds: out.image_embeds!.data as Float32Array,
      localEmbeds: out.local_embeds?.data as Float32Array | undefined,
    };
  } finally {
    await session.release();
  }
}

const visionFile = (dir: string, sfx = "") => path.join(dir, "onnx", `vision_model${sfx}.onnx`);

test("readVisionHead returns the generator's γ, β, ε and projection, from both LayerNorm patterns", async () => {
  for (const form of ["decomposed", "fused"] as const) {
    for (const [dtype, sfx] of [["fp32", ""], ["q8", "_quantized"]] as const) {
      const head = await readVisionHead(visionFile(models[form].dir, sfx));
      const written = models[form].heads[dtype]!;
      const what = `${form} ${dtype}`;
      assert.equal(head.width, 32, what);
      assert.equal(head.dim, 64, what);
      // The graph stores ε as float32.
      assert.equal(head.epsilon, Math.fround(written.epsilon), what);
      assert.deepEqual(head.gamma, written.gamma, what);
      assert.deepEqual(head.beta, written.beta, what);
      assert.deepEqual(head.projection, written.projection, what);
    }
  }
  // The test is not vacuous: γ is not all ones and β not all zeros.
  const h = models.decomposed.heads.fp32!;
  assert.ok(h.gamma.some((v) => Math.abs(v - 1) > 0.1) && h.beta.some((v) => Math.abs(v) > 0.05), "non-trivial γ and β");
});

test("the head reproduces image_embeds from the class token and local_embeds from the patch tokens", async () => {
  for (const form of ["decomposed", "fused"] as const) {
    const file = visionFile(models[form].dir);
    const head = await readVisionHead(file);
    const run = await runVision(file, pixels, batch);
    // Class token → image_embeds (ORT's own LayerNorm and MatMul on the same tensor).
    const agreement = checkHeadAgreement(file, run.lastHiddenState, run.imageEmbeds, batch, head);
    assert.ok(agreement > 0.9999, `${form}: cosine ${agreement}`);
    // Patch tokens → local_embeds, which the graph computes by its LayerNorm over the whole sequence.
    const per = run.tokens * head.width;
    const patches = run.tokens - 1;
    for (let b = 0; b < batch; b++) {
      const mine = localFeatures(run.lastHiddenState.subarray(b * per, (b + 1) * per), run.tokens, head);
      const theirs = normalizeRows(matrix(patches, head.dim, run.localEmbeds!.slice(b * patches * head.dim, (b + 1) * patches * head.dim)));
      for (let p = 0; p < patches; p++) {
        const cos = row(mine, p).reduce((s, v, i) => s + v * row(theirs, p)[i]!, 0);
        assert.ok(cos > 0.9999, `${form}: image ${b} patch ${p} cosine ${cos}`);
      }
    }
    // The check can fail: a head that skipped the LayerNorm's mean subtraction (the generator's tokens
    // are not zero-mean) or ignored γ would not reproduce image_embeds.
    for (const [bug, variant] of [["no centring", { centre: false, gamma: true }], ["no γ", { centre: true, gamma: false }]] as const) {
      const cos = buggyAgreement(run.lastHiddenState.subarray(0, head.width), run.imageEmbeds.subarray(0, head.dim), head, variant);
      assert.ok(cos < 0.99, `${form}: a head with ${bug} still agrees (cosine ${cos})`);
    }
    // A wrong head (projection rows reversed) fails the check with MODEL_GRAPH.
    const wrong: VisionHead = { ...head, projection: reverseRows(head.projection, head.width, head.dim) };
    assert.throws(() => checkHeadAgreement(file, run.lastHiddenState, run.imageEmbeds, batch, wrong), rejectsWithCode("MODEL_GRAPH", file, "do not reproduce"));
  }
});

/** A deliberately wrong head application, to show that the agreement check catches it. */
function buggyAgreement(cls: Float32Array, embeds: Float32Array, head: VisionHead, o: { centre: boolean; gamma: boolean }): number {
  const mean = o.centre ? cls.reduce((a, v) => a + v, 0) / head.width : 0;
  const sd = Math.sqrt(cls.reduce((a, v) => a + (v - mean) ** 2, 0) / head.width + head.epsilon);
  const y = Array.from(cls, (v, w) => ((o.gamma ? head.gamma[w]! : 1) * (v - mean)) / sd + head.beta[w]!);
  const e = Array.from({ length: head.dim }, (_, d) => y.reduce((a, v, w) => a + v * head.projection[w * head.dim + d]!, 0));
  const dot = e.reduce((a, v, d) => a + v * embeds[d]!, 0);
  return dot / Math.hypot(...e) / Math.hypot(...embeds);
}

function reverseRows(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * cols, (r + 1) * cols), (rows - 1 - r) * cols);
  return out;
}

/** Decodes a model, lets `edit` change its graph, and writes it to `to`. */
async function rewrite(from: string, to: string, edit: (g: Onnx.GraphProto) => void | Promise<void>): Promise<void> {
  const m = onnx.ModelProto.decode(await readFile(from));
  // Decoded messages are class instances, whose repeated fields are always arrays.
  await edit(m.graph as Onnx.GraphProto);
  await writeFile(to, onnx.ModelProto.encode(m).finish());
}

const floatsOf = (t: Onnx.ITensorProto) => new Float32Array(new Uint8Array(t.rawData!).buffer);
const initializers = (g: Onnx.GraphProto) => g.initializer as Onnx.TensorProto[];
const isProjection = (t: Onnx.TensorProto) => t.dims.length === 2 && Number(t.dims[0]) === 32 && Number(t.dims[1]) === 64;

test("float_data initializers, a transposed Gemm and external weights read the same head", async () => {
  const dir = await tempDir("clip-ood-glmcm-forms-");
  const source = visionFile(models.decomposed.dir);
  const expected = await readVisionHead(source);
  const reference = await runVision(source, pixels, batch);

  // Every float initializer moved from raw_data to float_data.
  const floatData = path.join(dir, "float-data.onnx");
  await rewrite(source, floatData, (g) => {
    for (const t of initializers(g)) {
      if (t.dataType === FLOAT && t.rawData.length > 0) {
        t.floatData = Array.from(floatsOf(t));
        t.rawData = new Uint8Array(0);
      }
    }
  });
  assert.deepEqual(await readVisionHead(floatData), expected);

  // The projection as Gemm(x, Wᵀ, transB = 1, alpha = 2) with W/2 stored: the head folds both back.
  // (A new initializer: the local_embeds branch keeps using the original one.)
  const gemm = path.join(dir, "gemm.onnx");
  await rewrite(source, gemm, (g) => {
    const nodes = g.node as Onnx.NodeProto[];
    const output = nodes.find((n) => n.output[0] === "image_embeds")!;
    const projection = nodes.find((n) => n.output[0] === output.input[0] && n.opType === "MatMul")!;
    const w = floatsOf(initializers(g).find((i) => i.name === projection.input[1])!);
    const wt = new Float32Array(w.length);
    for (let i = 0; i < 32; i++) for (let j = 0; j < 64; j++) wt[j * 32 + i] = w[i * 64 + j]! / 2;
    g.initializer.push({ name: "projection_t", dims: [64, 32], dataType: FLOAT, rawData: new Uint8Array(wt.buffer) });
    projection.input[1] = "projection_t";
    projection.opType = "Gemm";
    projection.attribute = [
      onnx.AttributeProto.create({ name: "transB", type: onnx.AttributeProto.AttributeType.INT, i: 1 }),
      onnx.AttributeProto.create({ name: "alpha", type: onnx.AttributeProto.AttributeType.FLOAT, f: 2 }),
    ];
  });
  const gemmHead = await readVisionHead(gemm);
  expected.projection.forEach((v, i) => close(gemmHead.projection[i]!, v, 1e-6, `projection[${i}]`));
  const gemmRun = await runVision(gemm, pixels, batch);
  assert.ok(checkHeadAgreement(gemm, gemmRun.lastHiddenState, gemmRun.imageEmbeds, batch, gemmHead) > 0.9999, "Gemm graph agrees");
  assert.ok(checkHeadAgreement(gemm, reference.lastHiddenState, reference.imageEmbeds, batch, gemmHead) > 0.9999, "same embeddings as the MatMul graph");

  // Large exports keep weights in a side file: the projection moved there at an offset.
  const external = path.join(dir, "external.onnx");
  await rewrite(source, external, async (g) => {
    const t = initializers(g).find(isProjection)!;
    const bytes = new Uint8Array(t.rawData);
    await writeFile(path.join(dir, "external.onnx_data"), Buffer.concat([Buffer.alloc(16), bytes]));
    t.rawData = new Uint8Array(0);
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      { key: "location", value: "external.onnx_data" },
      { key: "offset", value: "16" },
      { key: "length", value: String(bytes.length) },
    ];
  });
  assert.deepEqual(await readVisionHead(external), expected);
  // onnxruntime reads the same file the same way.
  const extRun = await runVision(external, pixels, batch);
  assert.deepEqual(extRun.imageEmbeds, reference.imageEmbeds);
});

test("graphs without a post-layernorm and projection behind image_embeds are MODEL_GRAPH errors", async () => {
  const dir = await tempDir("clip-ood-glmcm-bad-");
  const write = async (name: string, build: (g: GraphBuilder, x: string) => string) => {
    const g = new GraphBuilder("bad");
    const x = g.input("pixel_values", FLOAT, ["batch_size", 8]);
    g.output(build(g, x), "image_embeds", FLOAT, ["batch_size", 4]);
    const file = path.join(dir, name);
    await writeFile(file, g.encode());
    return file;
  };
  const weight = (g: GraphBuilder) => g.floats(Array.from({ length: 32 }, (_, i) => i / 10), [8, 4]);
  // A projection straight on the input: no LayerNorm.
  const bare = await write("bare.onnx", (g, x) => g.op("MatMul", [x, weight(g)]));
  await assert.rejects(readVisionHead(bare), rejectsWithCode("MODEL_GRAPH", bare, "cannot find the post-layernorm and projection", "not a LayerNorm"));
  // Something that looks like a LayerNorm but divides by the wrong thing.
  const fake = await write("fake.onnx", (g, x) => {
    const centred = g.op("Sub", [x, g.op("ReduceMean", [x], { axes: [-1], keepdims: 1 })]);
    return g.op("MatMul", [g.op("Div", [centred, g.op("Sqrt", [g.op("Abs", [centred])])]), weight(g)]);
  });
  await assert.rejects(readVisionHead(fake), rejectsWithCode("MODEL_GRAPH", fake, "not a LayerNorm"));
  // Not a MatMul at the end.
  const pooled = await write("pooled.onnx", (g, x) => g.op("AveragePool", [x], { kernel_shape: [2], strides: [2] }));
  await assert.rejects(readVisionHead(pooled), rejectsWithCode("MODEL_GRAPH", pooled, "AveragePool"));
  // A malformed graph whose node feeds itself ends the walk instead of hanging it.
  const cycle = await write("cycle.onnx", (g) => g.op("Identity", ["loop"], {}, "loop"));
  await assert.rejects(readVisionHead(cycle), rejectsWithCode("MODEL_GRAPH", cycle, "Identity"));
  // The text tower has no image_embeds at all.
  const text = path.join(models.decomposed.dir, "onnx", "text_model.onnx");
  await assert.rejects(readVisionHead(text), rejectsWithCode("MODEL_GRAPH", text, "no image_embeds output"));
  // Not ONNX, and not there.
  const junk = path.join(dir, "junk.onnx");
  await writeFile(junk, "this is not an ONNX model\n");
  await assert.rejects(readVisionHead(junk), rejectsWithCode("MODEL_GRAPH", junk));
  const missing = path.join(dir, "missing.onnx");
  await assert.rejects(readVisionHead(missing), rejectsWithCode("MODEL_FOLDER", missing));
});

// ------------------------------------------------------------------------------------------------
// The world: a small in-distribution object in an out-of-distribution scene

test("a small red object in an OOD scene: GL-MCM moves it far towards ID, MCM hardly at all", async () => {
  const dir = models.decomposed.dir;
  const model = await ClipModel.load({ model: dir, cacheDir: await tempDir(), threads: 1, textCache: false });
  let features: Matrix;
  try {
    features = (await model.classFeatures(await loadClasses("red,green,blue"), ["a photo of a {}"])).matrix;
  } finally {
    await model.close();
  }
  const file = visionFile(dir);
  const head = await readVisionHead(file);
  // 320×240 → resize to 298×224 → centre crop x 37..261: the object at x 130..190, y 90..150 lands at
  // x ≈ 84..140, y ≈ 84..140 of the 224² input, which covers patch (row 3, col 3) = index 24 of the 7×7
  // grid entirely and its neighbours in part: 1 patch of 49 is fully red.
  const region = { colour: "red", x: 130, y: 90, width: 60, height: 60 };
  const covered = new Set([16, 17, 18, 23, 24, 25, 30, 31, 32]);
  const scenes: PaintOptions[] = [
    { colour: "yellow", texture: "plain", width: 320, height: 240, seed: 31 },
    { colour: "purple", texture: "striped", width: 320, height: 240, seed: 32 },
    { colour: "gray", texture: "plain", width: 320, height: 240, seed: 33 },
    { colour: "cyan", texture: "striped", width: 320, height: 240, seed: 34 },
  ];
  const specs = [{ colour: "red", texture: "plain", width: 320, height: 240, seed: 30 } as PaintOptions, ...scenes, ...scenes.map((s) => ({ ...s, region }))];
  const images = await Promise.all(specs.map((s) => preprocess(dir, s)));
  const input = new Float32Array(images.length * images[0]!.length);
  images.forEach((img, i) => input.set(img, i * img.length));
  const run = await runVision(file, input, images.length);
  assert.ok(headAgreement(run.lastHiddenState, run.imageEmbeds, images.length, head) > 0.9999, "head agrees");

  const per = run.tokens * head.width;
  const locals: Matrix[] = [];
  const scores = specs.map((_, b) => {
    const global = matmulTransposed(normalizeRows(matrix(1, head.dim, run.imageEmbeds.slice(b * head.dim, (b + 1) * head.dim))), features).data;
    const local = matmulTransposed(localFeatures(run.lastHiddenState.subarray(b * per, (b + 1) * per), run.tokens, head), features);
    locals.push(local);
    return glmcmScore(global, local);
  });
  const id = scores[0]!;
  const mcm = (r: typeof id) => r.score - 0.5 * r.local;
  scenes.forEach((scene, i) => {
    const ood = scores[1 + i]!;
    const mixed = scores[1 + scenes.length + i]!;
    const what = `${scene.colour} ${scene.texture}`;
    // How far the object moves the image from its OOD scene towards the pure ID image, under each score.
    // Measured: MCM 1–2.5 %, GL-MCM (λ = 0.5) 35–39 %, the local term alone 100–112 % (the object's
    // patch is as red as any patch of the all-red image).
    const moved = (f: (r: typeof id) => number) => (f(mixed) - f(ood)) / (f(id) - f(ood));
    assert.ok(moved(mcm) < 0.1, `${what}: MCM moved ${moved(mcm)}`);
    assert.ok(moved((r) => r.score) > 0.25, `${what}: GL-MCM moved ${moved((r) => r.score)}`);
    assert.ok(moved((r) => r.local) > 0.8, `${what}: local term moved ${moved((r) => r.local)}`);
    // The best patch is on the object, and it names the object's colour.
    assert.ok(covered.has(mixed.patch), `${what}: best patch ${mixed.patch}`);
    assert.equal(argmax(row(locals[1 + scenes.length + i]!, mixed.patch)), 0, `${what}: best patch's class`);
  });
});
