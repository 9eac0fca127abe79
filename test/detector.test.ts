/**
 * The detector API on a generated model: build, save/load round trips, calibration on real scores,
 * open-world class edits, and embeddings files scored like the images they came from.
 */
import assert from "node:assert/strict";
import { copyFile, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { ClipModel } from "../src/clip.js";
import { encodeNpy } from "../src/io/npy.js";
import { readEmbeddings } from "../src/io/embeddings.js";
import { addClasses, buildDetector, checkModel, removeClasses } from "../src/ood/build.js";
import { thresholdAtTpr } from "../src/ood/calibration.js";
import { predict, predictBatch, scoreBatch } from "../src/ood/detector.js";
import type { Detector } from "../src/ood/detector.js";
import { deserializeDetector, loadDetector, saveDetector, serializeDetector, sidecarPath } from "../src/ood/detector-file.js";
import { loadClasses } from "../src/text/classes.js";
import { stackRows } from "../src/maths/vectors.js";
import { rejectsWithCode } from "./support/assertions.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";

let model: ClipModel;
let dir: string;
let idEmb: Float32Array[];
let oodEmb: Float32Array[];

before(async () => {
  model = await ClipModel.load({ model: await makeModel(), cacheDir: await tempDir(), threads: 1 });
  dir = await tempDir();
  const embed = async (colours: string[], seed: number) => {
    const imgs = await makeImages(colours.map((colour) => ({ colour, texture: "plain" as const })), seed);
    const out: Float32Array[] = [];
    for await (const r of model.embedImages(imgs.map((i) => i.file))) out.push(r.embedding!);
    return out;
  };
  idEmb = await embed(["red", "green", "blue", "red", "green", "blue"], 31);
  oodEmb = await embed(["yellow", "pink", "cyan", "white"], 32);
});
after(() => model.close());

const build = async (method: Detector["method"], extra: Record<string, unknown> = {}) =>
  buildDetector(model, { method, classes: await loadClasses("red,green,blue"), templates: ["a photo of a {}"], ...extra });

test("a saved detector loads back exactly and scores the same", async () => {
  for (const method of ["mcm", "energy", "unknown"] as const) {
    const d = await build(method, { params: { temperature: 0.5 } });
    d.threshold = thresholdAtTpr(idEmb.map((e) => predict(d, e).score), 0.9);
    const file = path.join(dir, `${method}.json`);
    await saveDetector(d, file);
    const back = await loadDetector(file);
    assert.deepEqual(back, d);
    assert.deepEqual(await scoreBatch(back, stackRows(oodEmb)), await scoreBatch(d, stackRows(oodEmb)));
  }
});

test("a calibrated detector separates the world's ID and OOD images", async () => {
  const d = await build("mcm");
  d.threshold = thresholdAtTpr(idEmb.map((e) => predict(d, e).score), 0.95);
  assert.ok(idEmb.every((e) => predict(d, e).ood === false), "every ID image passes at TPR 0.95 with 6 images");
  assert.ok(oodEmb.every((e) => predict(d, e).ood === true), "every OOD image is flagged");
});

test("damaged, foreign and newer detector files are refused with a clear message", async () => {
  const file = path.join(dir, "d.json");
  await saveDetector(await build("mcm"), file);
  const original = await readFile(file, "utf8");
  const bin = await readFile(sidecarPath(file));

  await writeFile(file, original.slice(0, original.length / 2));
  await assert.rejects(loadDetector(file), rejectsWithCode("INPUT", "is damaged", "not valid JSON"));
  await writeFile(file, original.replace('"version": 1', '"version": 9'));
  await assert.rejects(loadDetector(file), rejectsWithCode("INPUT", "format version 9, newer"));
  await writeFile(file, JSON.stringify({ hello: "world" }));
  await assert.rejects(loadDetector(file), rejectsWithCode("INPUT", "is not a clip-ood detector"));
  await writeFile(file, original);
  const flipped = Buffer.from(bin);
  flipped[5] = flipped[5]! ^ 0xff;
  await writeFile(sidecarPath(file), flipped);
  await assert.rejects(loadDetector(file), rejectsWithCode("INPUT", "are not a pair", "does not match the checksum"));
  await writeFile(sidecarPath(file), bin);
  assert.ok(await loadDetector(file), "restored files load again");
});

test("a renamed pair loads; a .json beside another detector's .bin is refused as not a pair", async () => {
  const d = await build("mcm");
  const other = await buildDetector(model, { method: "mcm", classes: await loadClasses("yellow,pink"), templates: ["a photo of a {}"] });
  const folder = await tempDir();
  const pets = path.join(folder, "pets.json");
  await saveDetector(d, pets);
  await saveDetector(other, path.join(folder, "other.json"));
  // Copied as a pair under a new name: the sidecar is the new name's, though the JSON records pets.json.bin.
  const renamed = path.join(folder, "renamed.json");
  await copyFile(pets, renamed);
  await copyFile(sidecarPath(pets), sidecarPath(renamed));
  await rm(pets);
  await rm(sidecarPath(pets));
  assert.deepEqual(await loadDetector(renamed), d);
  // A lone copy of the JSON next to another detector's sidecar.
  const lone = path.join(folder, "lone.json");
  await copyFile(renamed, lone);
  await copyFile(sidecarPath(path.join(folder, "other.json")), sidecarPath(lone));
  await assert.rejects(loadDetector(lone), rejectsWithCode("INPUT", `${lone} and ${sidecarPath(lone)} are not a pair`, "does not match the checksum"));
});

test("a save interrupted between its two renames leaves the old detector loadable, and saving again leaves no spare file", async () => {
  const file = path.join(await tempDir(), "pets.json");
  const old = await build("mcm");
  await saveDetector(old, file);
  const oldJson = await readFile(file);
  const other = path.join(path.dirname(file), "other.json");
  await saveDetector(await buildDetector(model, { method: "mcm", classes: await loadClasses("yellow,pink"), templates: ["a photo of a {}"] }), other);
  // The state a crash there leaves: the new sidecar in place, the old JSON beside it, the old sidecar kept aside.
  await copyFile(sidecarPath(file), `${sidecarPath(file)}.prev`);
  await copyFile(sidecarPath(other), sidecarPath(file));
  assert.deepEqual(await loadDetector(file), old, "the old JSON finds its own sidecar");
  // Without the kept sidecar the pair is damaged, and said to be.
  await rm(`${sidecarPath(file)}.prev`);
  await assert.rejects(loadDetector(file), rejectsWithCode("INPUT", "are not a pair", "does not match the checksum"));
  // A completed save cleans up after itself.
  await writeFile(file, oldJson);
  await saveDetector(old, file);
  assert.deepEqual((await readdir(path.dirname(file))).sort(), ["other.json", "other.json.bin", "pets.json", "pets.json.bin"]);
  assert.deepEqual(await loadDetector(file), old);
});

test("a detector refuses embeddings of another model or dimension", async () => {
  const d = await build("mcm");
  assert.throws(() => checkModel(d, { id: "Xenova/clip-vit-large-patch14" }), rejectsWithCode("MODEL_FOLDER", "was made for model"));
  assert.throws(() => predict(d, new Float32Array(8)), rejectsWithCode("INPUT", "has 8 dimensions"));
});

test("adding and removing classes equals fitting the new class list from scratch", async () => {
  const d = await build("mcm");
  const added = await addClasses(d, model, await loadClasses("yellow"));
  const scratch = await buildDetector(model, { method: "mcm", classes: await loadClasses("red,green,blue,yellow"), templates: ["a photo of a {}"] });
  assert.deepEqual(added.classFeatures, scratch.classFeatures);
  const removed = removeClasses(added, ["Yellow"]);
  assert.deepEqual(removed.classFeatures, d.classFeatures);
  await assert.rejects(addClasses(d, model, await loadClasses("red")), rejectsWithCode("CLASSES", "already has red"));
  assert.throws(() => removeClasses(d, ["purple"]), rejectsWithCode("CLASSES", 'no class "purple"'));
  assert.throws(() => removeClasses(d, ["red", "green", "blue"]), rejectsWithCode("CLASSES", "no classes"));
});

test("scores do not depend on the order of the classes", async () => {
  const a = await build("mcm");
  const b = await buildDetector(model, { method: "mcm", classes: await loadClasses("blue,red,green"), templates: ["a photo of a {}"] });
  for (const e of [...idEmb, ...oodEmb]) {
    const x = predict(a, e);
    const y = predict(b, e);
    assert.ok(Math.abs(x.score - y.score) < 1e-12 && x.label === y.label, `${x.label} ${x.score} vs ${y.label} ${y.score}`);
  }
});

test("embeddings files: JSON Lines and .npy read back as unit rows; bad files name the row", async () => {
  const jsonl = path.join(dir, "e.jsonl");
  const rows = idEmb.slice(0, 2).map((e, i) => JSON.stringify({ input: `img${i}`, kind: "image", model: model.id, embedding: Array.from(e, (x) => x * 3) }));
  await writeFile(jsonl, [...rows, JSON.stringify({ input: "bad.jpg", error: "bad.jpg: empty file" })].join("\n") + "\n");
  const set = await readEmbeddings(jsonl);
  assert.deepEqual(set.inputs, ["img0", "img1"]);
  assert.equal(set.model, model.id);
  set.matrix.data.subarray(0, 64).forEach((v, j) => assert.ok(Math.abs(v - idEmb[0]![j]!) < 1e-6, "renormalised"));

  const npy = path.join(dir, "e.npy");
  const data = new Float32Array(2 * 64);
  data.set(idEmb[0]!, 0);
  data.set(idEmb[1]!, 64);
  data[70] = NaN;
  await writeFile(npy, encodeNpy(data, [2, 64]));
  await assert.rejects(readEmbeddings(npy), rejectsWithCode("INPUT", "row 1 contains NaN"));
  await writeFile(jsonl, `{"embedding":[1,0,0]}\n{"embedding":[1,0]}\n`);
  await assert.rejects(readEmbeddings(jsonl), rejectsWithCode("INPUT", "line 2 has 2 dimensions"));
  await writeFile(jsonl, `{"model":"a","embedding":[1,0]}\n{"model":"b","embedding":[0,1]}\n`);
  await assert.rejects(readEmbeddings(jsonl), rejectsWithCode("INPUT", "mixes models a and b"));
  await writeFile(jsonl, `{"embedding":[0,0]}\n`);
  await assert.rejects(readEmbeddings(jsonl), rejectsWithCode("INPUT", "line 1 is all zeros"));
});

/** min over ID scores > max over OOD scores: every ID embedding ranks above every OOD one. */
function assertSeparates(d: Detector, what: string): void {
  const idS = idEmb.map((e) => predict(d, e).score);
  const oodS = oodEmb.map((e) => predict(d, e).score);
  assert.ok(Math.min(...idS) > Math.max(...oodS), `${what}: ID ${idS.map((x) => x.toFixed(4))} vs OOD ${oodS.map((x) => x.toFixed(4))}`);
}

test("few-shot detectors fitted on held-out ID images separate ID from OOD, and round-trip through files", async () => {
  const train = await makeImages(["red", "green", "blue"].flatMap((colour) => ["plain", "striped"].map((texture) => ({ colour, texture: texture as "plain" | "striped" }))), 41);
  const rows: Float32Array[] = [];
  for await (const r of model.embedImages(train.map((t) => t.file))) rows.push(r.embedding!);
  const labels = Int32Array.from(train.map((t) => ["red", "green", "blue"].indexOf(t.colour)));
  for (const method of ["mahalanobis", "knn", "ocsvm", "linear-probe", "tip-adapter", "tip-adapter-f", "taskres"] as const) {
    const d = await build(method, { fitData: { embeddings: stackRows(rows), labels } });
    assert.equal(d.fitRows, 6);
    assertSeparates(d, method);
    const file = path.join(dir, `${method}.json`);
    await saveDetector(d, file);
    const back = await loadDetector(file);
    assert.deepEqual(back, d);
    assert.deepEqual(await scoreBatch(back, stackRows(oodEmb)), await scoreBatch(d, stackRows(oodEmb)));
  }
  await assert.rejects(build("knn"), rejectsWithCode("USAGE", "fitted on in-distribution images"));
  await assert.rejects(build("knn", { fitData: { embeddings: stackRows(rows.slice(0, 2)), labels: new Int32Array(2) }, params: { k: 3 } }), rejectsWithCode("USAGE", "larger than the bank"));
});

test("neglabel: mined WordNet negatives and a user list both separate ID from OOD; the detector round-trips", async () => {
  const d = await buildDetector(model, { method: "neglabel", classes: await loadClasses("red,green,blue"), templates: ["the nice {}"] });
  assert.equal(d.negatives!.source, "wordnet");
  // 15% of each part of speech of ~70k WordNet candidates, in 100 equal groups.
  assert.ok(d.negatives!.labels.length > 9000 && d.negatives!.labels.length < 12000, String(d.negatives!.labels.length));
  assert.equal(d.negatives!.groups.length, 100);
  assertSeparates(d, "neglabel (WordNet)");
  const file = path.join(dir, "neg.json");
  await saveDetector(d, file);
  assert.deepEqual(await loadDetector(file), d);

  const user = await buildDetector(model, { method: "neglabel", classes: await loadClasses("red,green,blue"), templates: ["the nice {}"], negLabels: ["yellow", "pink", "cyan", "white", "purple"], params: { negGroups: 1 } });
  assert.deepEqual(user.negatives!.labels, ["yellow", "pink", "cyan", "white", "purple"]);
  assertSeparates(user, "neglabel (user list)");
  // With the OOD colours named as negatives, an OOD image puts almost all its mass on them.
  assert.ok(oodEmb.every((e) => predict(user, e).score < 0.5), "OOD mass goes to the negatives");
});

test("a combination of detectors standardises each part and separates ID from OOD", async () => {
  const { standardize } = await import("../src/ood/combine.js");
  const mcm = await build("mcm");
  const knn = await build("knn", { fitData: { embeddings: stackRows(idEmb.slice(0, 3)), labels: new Int32Array(3) } });
  const parts = [mcm, knn].map((p, i) => ({ detector: p, weight: [1, 0.5][i]!, standardizer: standardize(Float32Array.from(idEmb.map((e) => predict(p, e).score))) }));
  const combo: Detector = { ...mcm, method: "combo", parts };
  assertSeparates(combo, "combo");
  // Hand check on one embedding: Σ w·(s − mean)/std.
  const e = oodEmb[0]!;
  const expected = parts.reduce((s, p) => s + (p.weight * (predict(p.detector, e).score - p.standardizer.mean)) / p.standardizer.std, 0);
  assert.ok(Math.abs(predict(combo, e).score - expected) < 1e-9, "weighted standardised sum");
  const file = path.join(dir, "combo.json");
  await saveDetector(combo, file);
  assert.deepEqual(await loadDetector(file), combo);
  // predictBatch (eval, detect, serve) searches the KNN bank with batched float32 products and re-scores
  // the candidates in float64: the same detections as predict, for KNN alone and inside the combo.
  const threshold = predict(combo, idEmb[0]!).score;
  for (const d of [knn, combo]) {
    const all = [...idEmb, ...oodEmb];
    const batch = await predictBatch(d, stackRows(all), { threshold });
    assert.deepEqual(batch, all.map((e) => predict(d, e, { threshold })), d.method);
  }
  await assert.rejects(predictBatch(knn, stackRows([new Float32Array(3)])), rejectsWithCode("INPUT", "3 dimensions"));
});

test("glmcm: local features from the graph's head make a small in-distribution object count", async () => {
  const { patchFeatures } = await import("../src/ood/zero-shot/local-features.js");
  const { readVisionHead } = await import("../src/ood/zero-shot/vision-head-graph.js");
  const d = await build("glmcm");
  assert.throws(() => predict(d, idEmb[0]!), rejectsWithCode("USAGE", "needs the image's patch tokens"));
  const head = await readVisionHead(model.model.visionModel);
  const imgs = await makeImages([{ colour: "red", texture: "plain" }, { colour: "yellow", texture: "plain" }], 51);
  const scored: number[] = [];
  for await (const r of model.embedImages(imgs.map((i) => i.file), undefined, { patches: true })) {
    scored.push(predict(d, r.embedding!, { local: patchFeatures(r.patches!, head) }).score);
  }
  assert.ok(scored[0]! > scored[1]!, `red ${scored[0]} vs yellow ${scored[1]}`);
  const file = path.join(dir, "glmcm.json");
  await saveDetector(d, file);
  assert.deepEqual(await loadDetector(file), d);
});

test("library: detectImages scores image files (glmcm included) and calibrate sets the threshold", async () => {
  const { detectImages } = await import("../src/ood/build.js");
  const { calibrate } = await import("../src/ood/detector.js");
  const imgs = await makeImages([{ colour: "blue", texture: "plain" }, { colour: "pink", texture: "plain" }], 61);
  const missing = path.join(dir, "missing.png");
  for (const method of ["mcm", "glmcm"] as const) {
    const base = await build(method);
    assert.throws(() => calibrate(base, [], { tpr: 0.95 }), rejectsWithCode("INPUT", "no in-distribution validation scores"));
    const scored: number[] = [];
    for await (const r of detectImages(model, base, [...imgs.map((i) => i.file), missing])) {
      if (r.detection) scored.push(r.detection.score);
      else assert.equal(r.error?.code, "IMAGE");
    }
    assert.equal(scored.length, 2);
    const calibrated = calibrate(base, [scored[0]!], { tpr: 1 });
    assert.equal(calibrated.threshold!.value, scored[0]);
    const verdicts: (boolean | null)[] = [];
    for await (const r of detectImages(model, calibrated, imgs.map((i) => i.file))) verdicts.push(r.detection!.ood);
    assert.deepEqual(verdicts, [false, true], method);
  }
});

test("serialised without files: a detector round-trips through its JSON and array bytes, and damage is refused by name", async () => {
  const d = await build("mcm");
  d.threshold = thresholdAtTpr(idEmb.map((e) => predict(d, e).score), 0.9);
  const source = { what: '"pets" in the test', repairHint: "create it again" };
  const s = serializeDetector(d, "pets.json.bin");
  // The same bytes a file holds, so a pair from either place can become the other.
  const file = path.join(await tempDir(), "pets.json");
  await saveDetector(d, file);
  assert.equal(s.json, await readFile(file, "utf8"));
  assert.deepEqual(s.arrays, await readFile(sidecarPath(file)));
  // Arrays at an odd offset (as a database driver may hand them over) still revive.
  const odd = Buffer.alloc(s.arrays.length + 1);
  s.arrays.copy(odd, 1);
  const back = deserializeDetector({ json: s.json, arrays: odd.subarray(1) }, source);
  assert.deepEqual(back, d);
  assert.deepEqual(await scoreBatch(back, stackRows(oodEmb)), await scoreBatch(d, stackRows(oodEmb)));

  const refused = (json: string, arrays: Buffer, ...fragments: string[]) => assert.throws(() => deserializeDetector({ json, arrays }, source), rejectsWithCode("INPUT", ...fragments));
  refused(s.json.slice(0, 100), s.arrays, 'detector "pets" in the test is damaged', "not valid JSON");
  refused(s.json.replace('"version": 1', '"version": 9'), s.arrays, "format version 9, newer");
  refused(JSON.stringify({ hello: "world" }), s.arrays, '"pets" in the test is not a clip-ood detector');
  const flipped = Buffer.from(s.arrays);
  flipped[5] = flipped[5]! ^ 0xff;
  refused(s.json, flipped, "is damaged", "its arrays do not match the checksum");
  refused(s.json, s.arrays.subarray(4), "is damaged", "its arrays do not match the checksum");
  const doc = JSON.parse(s.json) as { sidecar: { bytes: number }; detector: { method: string } };
  refused(JSON.stringify({ ...doc, sidecar: { ...doc.sidecar, bytes: 8 } }), s.arrays, "is damaged", "says 8 bytes");
  // A checksum that matches does not make a bad record good: the shape is checked after reviving.
  refused(JSON.stringify({ ...doc, detector: { ...doc.detector, method: "magic" } }), s.arrays, "is damaged", 'unknown method "magic"');
  try {
    deserializeDetector({ json: s.json, arrays: flipped }, source);
  } catch (e) {
    assert.equal((e as { hint?: string }).hint, "create it again", "the source's repair hint");
  }
});
