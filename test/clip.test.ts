/**
 * End-to-end library tests on generated models (scripts/make-test-model.ts): the outcomes asserted
 * here (right colour, ID above OOD) only hold if tokenisation, preprocessing (channel order, resize,
 * crop, normalisation), output selection and scoring are all right.
 */
import assert from "node:assert/strict";
import { cp, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { ClipModel } from "../src/clip.js";
import type { ClipOptions } from "../src/clip.js";
import { ClipOodError } from "../src/errors.js";
import { COLOURS, TEXTURES } from "../scripts/world.js";
import { classify, DEFAULT_UNKNOWN_PROMPTS, detect, ZERO_SHOT_METHODS } from "../src/zeroshot.js";
import { loadClasses } from "../src/text/classes.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";
import { sharedDir, skipUnlessShared } from "./support/shared.js";

let modelDir: string;
let cacheDir: string;
const open: ClipModel[] = [];

async function load(options: ClipOptions = {}): Promise<ClipModel> {
  const m = await ClipModel.load({ model: modelDir, cacheDir, threads: 1, batchSize: 8, ...options });
  open.push(m);
  return m;
}

async function all<T>(gen: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

before(async () => {
  modelDir = await makeModel();
  cacheDir = await tempDir();
});
after(async () => {
  await Promise.all(open.map((m) => m.close()));
});

const colours = Object.keys(COLOURS);
// Dark patterns have too little contrast to be told from plain in this world; colours are still right.
const heldOut = colours.flatMap((colour) => TEXTURES.map((texture) => ({ colour, texture })));

test("zero-shot classification names the right colour of every held-out image", async () => {
  const model = await load();
  const features = await model.classFeatures(await loadClasses(colours.join(",")), ["a photo of a {}"]);
  const images = await makeImages(heldOut);
  const results = await all(model.embedImages(images.map((i) => i.file)));
  assert.equal(results.length, images.length);
  results.forEach((r, i) => {
    assert.equal(r.error, null);
    const top = classify(r.embedding!, features, 3);
    assert.equal(top[0]!.label, images[i]!.colour, `${path.basename(r.input)} → ${JSON.stringify(top)}`);
    assert.ok(top[0]!.prob > 0.5, "top[0]!.prob > 0.5");
  });
});

test("colour-and-texture classes are told apart (textures need contrast, so dark colours are skipped)", async () => {
  const model = await load();
  const bright = ["red", "blue", "yellow", "green"];
  const labels = bright.flatMap((c) => TEXTURES.map((t) => `${c} ${t}`));
  const features = await model.classFeatures(await loadClasses(labels.join(",")), ["a photo of a {}"]);
  const images = await makeImages(bright.flatMap((colour) => TEXTURES.map((texture) => ({ colour, texture }))), 11);
  const results = await all(model.embedImages(images.map((i) => i.file)));
  results.forEach((r, i) => {
    const top = classify(r.embedding!, features, 1)[0]!;
    assert.equal(top.label, `${images[i]!.colour} ${images[i]!.texture}`, path.basename(r.input));
  });
});

test("MCM: every in-distribution image scores above every out-of-distribution image", async () => {
  const model = await load();
  const features = await model.classFeatures(await loadClasses("red,green,blue"), ["a photo of a {}"]);
  const id = await makeImages(["red", "green", "blue"].flatMap((colour) => TEXTURES.map((texture) => ({ colour, texture }))), 3);
  const ood = await makeImages(["yellow", "purple", "pink", "cyan", "white", "gray"].map((colour) => ({ colour, texture: "plain" as const })), 5);
  const score = async (files: string[]) => (await all(model.embedImages(files))).map((r) => detect(r.embedding!, features).score);
  const idScores = await score(id.map((i) => i.file));
  const oodScores = await score(ood.map((i) => i.file));
  assert.ok(Math.min(...idScores) > Math.max(...oodScores), `ID ${idScores.map((s) => s.toFixed(4))} vs OOD ${oodScores.map((s) => s.toFixed(4))}`);
  // MCM scores of K classes lie in [1/K, 1].
  for (const s of [...idScores, ...oodScores]) assert.ok(s >= 1 / 3 && s <= 1, "s >= 1 / 3 && s <= 1");
  // A threshold between the two groups gives the verdicts.
  const t = (Math.min(...idScores) + Math.max(...oodScores)) / 2;
  const r = (await all(model.embedImages([ood[0]!.file, id[0]!.file]))).map((x) => detect(x.embedding!, features, { threshold: t }).ood);
  assert.deepEqual(r, [true, false]);
});

test("every zero-shot method ranks all in-distribution images above all out-of-distribution ones", async () => {
  const model = await load();
  const templates = ["a photo of a {}"];
  const features = await model.classFeatures(await loadClasses("red,green,blue"), templates);
  const unknown = await model.classFeatures(
    DEFAULT_UNKNOWN_PROMPTS.map((p) => ({ label: p, names: [], descriptions: [p] })),
    templates,
  );
  const outliers = await model.classFeatures(await loadClasses("yellow,purple"), templates);
  const id = await all(model.embedImages((await makeImages(["red", "green", "blue"].flatMap((colour) => TEXTURES.map((texture) => ({ colour, texture }))), 21)).map((i) => i.file)));
  const ood = await all(model.embedImages((await makeImages(["yellow", "purple", "pink", "cyan", "white", "gray"].map((colour) => ({ colour, texture: "plain" as const })), 22)).map((i) => i.file)));
  for (const method of ZERO_SHOT_METHODS) {
    const extra = method === "unknown" ? unknown : method === "outliers" ? outliers : undefined;
    const score = (rs: typeof id) => rs.map((r) => detect(r.embedding!, features, { method, ...(extra ? { extra } : {}) }));
    const idD = score(id);
    const oodD = score(ood);
    const minId = Math.min(...idD.map((d) => d.score));
    const maxOod = Math.max(...oodD.map((d) => d.score));
    assert.ok(minId > maxOod, `${method}: min ID ${minId} ≤ max OOD ${maxOod}`);
    assert.ok(idD.every((d) => ["red", "green", "blue"].includes(d.label)), `${method}: ID labels ${idD.map((d) => d.label)}`);
  }
  await assert.rejects(async () => detect(id[0]!.embedding!, features, { method: "outliers" }), /needs outlier class names/);
});

test("a prompt embeds the same alone and in a batch padded to a longer prompt", async () => {
  const model = await load({ textCache: false });
  const alone = await model.embedTexts(["red"]);
  const batch = await model.embedTexts(["a photo of a large bright red thing with many words", "red"]);
  const a = alone.data;
  const b = batch.data.subarray(batch.cols, 2 * batch.cols);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-6, "Math.abs(a[i]! - b[i]!) < 1e-6");
  // Embeddings are unit vectors.
  assert.ok(Math.abs(Math.hypot(...a) - 1) < 1e-5, "Math.abs(Math.hypot(...a) - 1) < 1e-5");
});

test("text embeddings are cached on disk by model and exact prompt", async () => {
  const dir = await tempDir();
  const first = await load({ cacheDir: dir });
  const e1 = await first.classFeatures(await loadClasses("red,green"), ["a photo of a {}", "art of the {}."]);
  assert.equal(first.promptsEncoded, 4);
  const second = await load({ cacheDir: dir });
  const e2 = await second.classFeatures(await loadClasses("red,green"), ["a photo of a {}", "art of the {}."]);
  assert.equal(second.promptsEncoded, 0);
  assert.deepEqual(e2.matrix.data, e1.matrix.data);
  await second.embedTexts(["a photo of a red", "a photo of a blue"]);
  assert.equal(second.promptsEncoded, 1, "only the new prompt is encoded");
});

test("--dtype picks the variant by file suffix; a missing variant names the file", async () => {
  const fp32 = await load({ textCache: false });
  const q8 = await load({ dtype: "q8", textCache: false });
  const a = (await fp32.embedTexts(["red"])).data;
  const b = (await q8.embedTexts(["red"])).data;
  let dot = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  assert.ok(diff > 0, "the _quantized graph was really used");
  assert.ok(dot > 0.99, "and it embeds nearly the same");
  await assert.rejects(ClipModel.load({ model: modelDir, cacheDir, dtype: "fp16" }), (e: unknown) => {
    assert.ok(e instanceof ClipOodError, "e instanceof ClipOodError");
    assert.equal(e.code, "MODEL_VARIANT");
    assert.match(e.message, /onnx\/text_model_fp16\.onnx/);
    assert.match(e.hint ?? "", /fp32, q8/);
    return true;
  });
});

test("exports that declare attention_mask, and integer size/crop_size configs, give the same embeddings", async () => {
  const masked = await load({ model: await makeModel({ textAttentionMask: true }), textCache: false });
  const legacy = await load({ model: await makeModel({ legacyIntSize: true }), textCache: false });
  const plain = await load({ textCache: false });
  const texts = ["red", "a photo of a striped blue thing"];
  assert.deepEqual((await masked.embedTexts(texts)).data, (await plain.embedTexts(texts)).data);
  const [img] = await makeImages([{ colour: "orange", texture: "striped" }], 9);
  const [x] = await all(legacy.embedImages([img!.file]));
  const [y] = await all(plain.embedImages([img!.file]));
  assert.deepEqual(x!.embedding, y!.embedding);
});

test("a prompt longer than 77 tokens is cut with a warning", async () => {
  const warnings: string[] = [];
  const model = await load({ onWarning: (w) => warnings.push(w), textCache: false });
  await model.embedTexts([Array(100).fill("red").join(" ")]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /cut to 77 tokens/);
});

test("a model folder missing a file fails naming it", async () => {
  const broken = path.join(await tempDir(), "broken");
  await cp(modelDir, broken, { recursive: true });
  await rm(path.join(broken, "preprocessor_config.json"));
  await assert.rejects(ClipModel.load({ model: broken, cacheDir }), (e: unknown) => {
    assert.ok(e instanceof ClipOodError, "e instanceof ClipOodError");
    assert.equal(e.code, "MODEL_FOLDER");
    assert.match(e.message, /preprocessor_config\.json/);
    return true;
  });
});

test("a bad image in a batch is reported and the rest go on", async () => {
  const model = await load();
  const [good] = await makeImages([{ colour: "red", texture: "plain" }]);
  const missing = path.join(path.dirname(good!.file), "nope.png");
  const results = await all(model.embedImages([missing, good!.file]));
  assert.equal(results[0]!.embedding, null);
  assert.equal(results[0]!.error?.code, "IMAGE");
  assert.ok(results[1]!.embedding, "results[1]!.embedding");
});

test("a folder whose graphs break the CLIP contract fails naming the graph and what it declares", async () => {
  const swapped = path.join(await tempDir(), "swapped");
  await cp(modelDir, swapped, { recursive: true });
  await cp(path.join(modelDir, "onnx", "vision_model.onnx"), path.join(swapped, "onnx", "text_model.onnx"));
  const model = await load({ model: swapped, textCache: false });
  await assert.rejects(model.embedTexts(["red"]), (e: unknown) => {
    assert.ok(e instanceof ClipOodError, String(e));
    assert.equal(e.code, "MODEL_GRAPH");
    assert.match(e.message, /text_model\.onnx has no input "input_ids" \(it declares pixel_values\)/);
    return true;
  });
});

test("a folder that is not a CLIP export is refused before anything runs", async () => {
  const bert = path.join(await tempDir(), "bert");
  await cp(modelDir, bert, { recursive: true });
  await writeFile(path.join(bert, "config.json"), JSON.stringify({ model_type: "bert" }));
  await assert.rejects(ClipModel.load({ model: bert, cacheDir }), /model_type "bert", not "clip"/);
  await assert.rejects(ClipModel.load({ model: path.join(bert, "nope"), cacheDir }), (e: unknown) => {
    assert.ok(e instanceof ClipOodError, String(e));
    assert.equal(e.code, "MODEL_FOLDER");
    return true;
  });
});

test("several workers and small batches give the same embeddings, in input order", async () => {
  const images = await makeImages(["red", "green", "blue", "yellow", "pink", "cyan", "white"].map((colour) => ({ colour, texture: "plain" as const })), 13);
  const files = images.map((i) => i.file);
  const one = await all((await load({ workers: 1, batchSize: 32 })).embedImages(files));
  const progress: number[] = [];
  const many = await all((await load({ workers: 2, batchSize: 2 })).embedImages(files, (done) => progress.push(done)));
  assert.deepEqual(many.map((r) => r.input), files);
  // Equal up to float rounding: onnxruntime's kernels may sum in another order for another batch size.
  many.forEach((r, i) => r.embedding!.forEach((v, j) => assert.ok(Math.abs(v - one[i]!.embedding![j]!) < 1e-5, r.input)));
  assert.deepEqual(progress, [2, 4, 6, 7]);
});

test("with the real CLIP tokenizer and preprocessor config (../shared), the pipeline still finds the colours", { skip: skipUnlessShared }, async () => {
  const real = path.join(sharedDir!, "clip-vit-base-patch32");
  const dir = await makeModel({ tokenizerFrom: real });
  await cp(path.join(real, "preprocessor_config.json"), path.join(dir, "preprocessor_config.json"));
  const model = await load({ model: dir, textCache: false });
  assert.equal(model.tokenizer.eosId, 49407);
  const colours = ["red", "green", "blue", "yellow", "purple", "pink", "white", "black"];
  const features = await model.classFeatures(await loadClasses(colours.join(",")), ["a photo of a {}."]);
  const images = await makeImages(colours.map((colour) => ({ colour, texture: "plain" as const })), 17);
  const results = await all(model.embedImages(images.map((i) => i.file)));
  assert.deepEqual(results.map((r) => classify(r.embedding!, features, 1)[0]!.label), colours);
});

test("patch tokens come with the embeddings when asked, without changing them", async () => {
  const model = await load();
  const [img] = await makeImages([{ colour: "green", texture: "striped" }], 23);
  const [plain] = await all(model.embedImages([img!.file]));
  const [withPatches] = await all(model.embedImages([img!.file], undefined, { patches: true }));
  assert.deepEqual(withPatches!.embedding, plain!.embedding);
  assert.equal(plain!.patches, undefined);
  const p = withPatches!.patches!;
  // 224/32 = 7 → 49 patches plus the class token; the generated vision width is 32.
  assert.deepEqual([p.kind, p.tokens, p.width, p.data.length], ["last_hidden_state", 50, 32, 50 * 32]);
});

test("--device cuda without onnxruntime's CUDA provider falls back to the CPU, says so once, and embeds the same", async () => {
  const warnings: string[] = [];
  const gpu = await load({ device: "cuda", onWarning: (m) => warnings.push(m) });
  const cpu = await load();
  const img = (await makeImages([{ colour: "red", texture: "plain" }], 91))[0]!.file;
  const embed = async (m: ClipModel) => {
    for await (const r of m.embedImages([img])) return r.embedding!;
    throw new Error("no result");
  };
  const [a, b] = [await embed(gpu), await embed(cpu)];
  await gpu.embedTexts(["a photo of a red thing"], { cache: false });
  // This machine has no CUDA provider (the npm build ships without it), so the fallback path runs.
  assert.equal(warnings.length, 1, warnings.join("\n"));
  // The advice must be a command that runs even where allowScripts denies onnxruntime-node (npm rebuild skips it there).
  assert.match(warnings[0]!, /running on the CPU.*`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install`/);
  assert.deepEqual(a, b, "the same embedding as on the CPU");
});

test("prompts padded to 77 embed exactly as padded to the batch's longest (causal pooling at the end token)", async () => {
  const m = await load();
  const prompts = ["a photo of a red thing", "green", "a blurry photo of a striped blue pattern on a wall"];
  const longest = await m.embedTexts(prompts, { cache: false });
  const max = await m.embedTexts(prompts, { cache: false, padding: "max" });
  assert.deepEqual(max.data, longest.data);
});
