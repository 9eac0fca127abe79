/**
 * Detectors fitted on embeddings files alone, through the built CLI (`npm run build` first): no model
 * is resolved, loaded or downloaded (the hub is a dead port and the cache empty), the files' model,
 * dtype and dimension are recorded; fp32 and q8 embeddings are not mixed; a hybrid with a part that
 * is constant on its standardisation data stays finite.
 */
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import { jsonLines, runCli } from "./support/cli.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";

const MODEL = "Xenova/clip-vit-base-patch32";
const DIM = 16;
let dir: string;
let cache: string;

/** Seeded noise in [-0.5, 0.5). */
function noise(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648 - 0.5;
  };
}

/**
 * JSON Lines as `embed --labelled` writes them: `n` rows cycling through `classes`, class c around
 * axis c + `axis` (so rows of other axes are out of distribution); `dtype` left out as older files did.
 */
async function embeddings(file: string, n: number, classes: string[], o: { axis?: number; dtype?: string; seed: number; labelled?: boolean }): Promise<string> {
  const r = noise(o.seed);
  const rows = Array.from({ length: n }, (_, i) => {
    const c = i % classes.length;
    const embedding = Array.from({ length: DIM }, (_, j) => (j === c + (o.axis ?? 0) ? 3 : 0) + r());
    const label = o.labelled === false ? {} : { label: classes[c] };
    return JSON.stringify({ input: `${path.basename(file)}-${i}.jpg`, kind: "image", ...label, model: MODEL, ...(o.dtype ? { dtype: o.dtype } : {}), embedding });
  });
  const to = path.join(dir, file);
  await writeFile(to, rows.join("\n") + "\n");
  return to;
}

let train: string;
let val: string;
let ood: string;

before(async () => {
  dir = await tempDir();
  cache = await tempDir();
  train = await embeddings("train.jsonl", 12, ["cat", "dog"], { dtype: "fp32", seed: 1 });
  val = await embeddings("val.jsonl", 6, ["cat", "dog"], { dtype: "fp32", seed: 2 });
  ood = await embeddings("ood.jsonl", 4, ["other"], { axis: 5, dtype: "fp32", seed: 3, labelled: false });
});

const offline = (args: string[]) => runCli([...args, "--cache-dir", cache]);

type Scored = { input: string; label: string; score: number };

async function scores(detector: string, ...inputs: string[]): Promise<Scored[]> {
  const r = await offline(["detect", "--detector", detector, ...inputs, "--json", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  return jsonLines(r.stdout) as unknown as Scored[];
}

test("fit --method knn|mahalanobis|ocsvm|linear-probe on an embeddings file loads no model; detect --detector scores offline", async () => {
  for (const method of ["knn", "mahalanobis", "ocsvm", "linear-probe"]) {
    const det = path.join(dir, `${method}.json`);
    const fit = await offline(["fit", "--method", method, "--id", train, "--out", det]);
    assert.equal(fit.code, 0, `${method}: ${fit.stderr}`);
    assert.match(fit.stderr, /no model was loaded/);
    const shown = JSON.parse((await runCli(["detector", "show", det])).stdout) as { model: { id: string; dtype: string; dim: number }; classes: string[]; classFeatures: string; fitted: Record<string, unknown> };
    assert.deepEqual([shown.model.id, shown.model.dtype, shown.model.dim, shown.classes, shown.classFeatures], [MODEL, "fp32", DIM, ["cat", "dog"], "fit-means"], method);
    if (method === "knn") assert.deepEqual(shown.fitted, { kind: "knn", k: 1, bank: 12 });
    const scored = await scores(det, val, ood);
    assert.equal(scored.length, 10, method);
    // ID rows are named by the nearest class mean of the fitting data, and score above every OOD row.
    assert.deepEqual(scored.slice(0, 6).map((s) => s.label), ["cat", "dog", "cat", "dog", "cat", "dog"], method);
    const minId = Math.min(...scored.slice(0, 6).map((s) => s.score));
    assert.ok(scored.slice(6).every((s) => s.score < minId), `${method}: ${JSON.stringify(scored.map((s) => s.score))}`);
  }
  // Nothing was downloaded into the cache.
  assert.deepEqual((await readdir(cache)).filter((f) => f !== "store.sqlite" && !f.startsWith("store.sqlite")), []);
  // detect without --detector fits the same way, without a model.
  const direct = await offline(["detect", "--method", "knn", "--id", train, val, "--json", "--quiet"]);
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(jsonLines(direct.stdout).length, 6);
});

test("eval --methods knn,mahalanobis --fit <embeddings> on embeddings sets loads no model, with and without --shots; a method that needs text still asks for one", async () => {
  type Row = { method: string; ood: string; auroc: number; n: { id: number; ood: number } };
  const evaluated = await offline(["eval", "--id", val, "--ood", `far=${ood}`, "--methods", "knn,mahalanobis", "--fit", train, "--json"]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  assert.equal(evaluated.stderr.match(/no model was loaded/g)?.length, 2, evaluated.stderr);
  const rows = jsonLines(evaluated.stdout) as unknown as Row[];
  const far = rows.filter((r) => r.ood === "far");
  assert.deepEqual(far.map((r) => [r.method, r.auroc, r.n]), [["knn", 1, { id: 6, ood: 4 }], ["mahalanobis", 1, { id: 6, ood: 4 }]]);
  // The same rows as a detector fitted by `fit` and evaluated from its file.
  const det = path.join(dir, "eval-knn.json");
  assert.equal((await offline(["fit", "--method", "knn", "--id", train, "--out", det, "--quiet"])).code, 0);
  const fromFile = await offline(["eval", "--id", val, "--ood", `far=${ood}`, "--detector", det, "--json"]);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  const { method: _m, ...fileRow } = (jsonLines(fromFile.stdout) as unknown as Row[])[0]!;
  const { method: _k, ...knnRow } = far[0]!;
  assert.deepEqual(knnRow, fileRow);

  const curves = await offline(["eval", "--id", val, "--ood", `far=${ood}`, "--methods", "knn", "--fit", train, "--shots", "1,2", "--seeds", "2", "--json"]);
  assert.equal(curves.code, 0, curves.stderr);
  assert.deepEqual((jsonLines(curves.stdout) as unknown as { shots: number; ood: string }[]).filter((r) => r.ood === "far").map((r) => r.shots), [1, 2]);
  assert.deepEqual((await readdir(cache)).filter((f) => !f.startsWith("store.sqlite")), [], "nothing downloaded");

  // mcm needs the text tower: the model is asked for (and, offline with an empty cache, cannot be had).
  const withText = await offline(["eval", "--id", val, "--ood", `far=${ood}`, "--methods", "knn,mcm", "--fit", train, "--classes", "cat,dog"]);
  assert.notEqual(withText.code, 0);
  assert.match(withText.stderr, /is not in the cache and http:\/\/127\.0\.0\.1:9 could not be reached/, withText.stderr);
});

test("knn detect over more inputs than one batched bank search (1024 queries): every row, in input order, as scored one by one", async () => {
  const det = path.join(dir, "chunks-knn.json");
  assert.equal((await offline(["fit", "--method", "knn", "--id", train, "--out", det, "--quiet"])).code, 0);
  const many = await embeddings("many.jsonl", 2500, ["cat", "dog"], { dtype: "fp32", seed: 4 });
  const all = await scores(det, many);
  assert.deepEqual(all.map((s) => s.input), Array.from({ length: 2500 }, (_, i) => `many.jsonl-${i}.jpg`));
  // The same rows in a file of their own each fall in the first batch: the scores must not depend on it.
  const lines = (await readFile(many, "utf8")).trimEnd().split("\n");
  for (const i of [0, 1023, 1024, 2047, 2048, 2499]) {
    const one = path.join(dir, `one-${i}.jsonl`);
    await writeFile(one, lines[i] + "\n");
    const [alone] = await scores(det, one);
    assert.deepEqual([alone!.label, alone!.score], [all[i]!.label, all[i]!.score], `row ${i}`);
  }
});

test("detector show: what fitting chose and the calibration counts; a file written before some records existed still shows", async () => {
  const det = path.join(dir, "shown-probe.json");
  assert.equal((await offline(["fit", "--method", "linear-probe", "--id", train, "--probe-c", "3", "--out", det, "--quiet"])).code, 0);
  assert.equal((await offline(["calibrate", "--detector", det, "--id", val, "--ood", ood, "--quiet"])).code, 0);
  type Shown = { fitted: Record<string, unknown>; threshold: { idCount: number; oodCount: number; tpr: number; fpr: number } };
  const shown = JSON.parse((await runCli(["detector", "show", det])).stdout) as Shown;
  assert.deepEqual(shown.fitted, { kind: "linear-probe", c: 3, cFrom: "given", score: "msp", classes: 2 });
  assert.deepEqual([shown.threshold.idCount, shown.threshold.oodCount, shown.threshold.fpr], [6, 4, 0]);
  // An older file without the probe's cv record: shown without it, not guessed.
  const doc = JSON.parse(await readFile(det, "utf8")) as { detector: { fitted: Record<string, unknown> } };
  delete doc.detector.fitted["cv"];
  await writeFile(det, JSON.stringify(doc));
  const old = await runCli(["detector", "show", det]);
  assert.equal(old.code, 0, old.stderr);
  assert.deepEqual((JSON.parse(old.stdout) as Shown).fitted, { kind: "linear-probe", c: 3, score: "msp", classes: 2 });
});

test("a linear probe with one shot of a class names that class, not its index", async () => {
  // Five cats and one dog: the dog's single row cannot be split into cross-validation folds.
  const oneDog = await embeddings("one-dog.jsonl", 6, ["cat", "cat", "dog", "cat", "cat", "cat"], { dtype: "fp32", seed: 4 });
  const r = await offline(["fit", "--method", "linear-probe", "--id", oneDog, "--out", path.join(dir, "one.json")]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /linear-probe: class "dog" has one embedding, too few to cross-validate C/);
});

test("fit on embeddings files: --model may name their model but not contradict it; files of two models are refused", async () => {
  const det = path.join(dir, "m.json");
  const other = await offline(["fit", "--method", "knn", "--id", train, "--model", "openai/other-model", "--out", det]);
  assert.equal(other.code, 3, other.stderr);
  assert.match(other.stderr, /--model openai\/other-model does not match .*train\.jsonl, made by model Xenova\/clip-vit-base-patch32/);
  // A preset standing for the same Hub id is the same model.
  assert.equal((await offline(["fit", "--method", "knn", "--id", train, "--model", "clip-b32", "--out", det, "--quiet"])).code, 0);
  const foreign = path.join(dir, "foreign.jsonl");
  await writeFile(foreign, (await readFile(val, "utf8")).replaceAll(MODEL, "openai/other-model"));
  const mixed = await offline(["fit", "--method", "knn", "--id", train, "--id", foreign, "--out", det]);
  assert.equal(mixed.code, 3, mixed.stderr);
  assert.match(mixed.stderr, /the fitting data mix models/);
});

test("fp32 and q8 do not mix: detect and combine refuse a known mismatch and warn when the inputs do not record their dtype", async () => {
  const fp32 = path.join(dir, "fp32.json");
  const q8 = path.join(dir, "q8.json");
  const trainQ8 = await embeddings("train-q8.jsonl", 12, ["cat", "dog"], { dtype: "q8", seed: 1 });
  const valQ8 = await embeddings("val-q8.jsonl", 6, ["cat", "dog"], { dtype: "q8", seed: 2 });
  const valOld = await embeddings("val-old.jsonl", 6, ["cat", "dog"], { seed: 2 });
  assert.equal((await offline(["fit", "--method", "knn", "--id", train, "--out", fp32, "--quiet"])).code, 0);
  assert.equal((await offline(["fit", "--method", "mahalanobis", "--id", trainQ8, "--out", q8, "--quiet"])).code, 0);

  const onQ8 = await offline(["detect", "--detector", fp32, valQ8]);
  assert.equal(onQ8.code, 3, onQ8.stderr);
  assert.match(onQ8.stderr, /val-q8\.jsonl was made with --dtype q8, .*fp32\.json with fp32/);
  const flag = await offline(["detect", "--detector", fp32, val, "--dtype", "q8"]);
  assert.equal(flag.code, 3, flag.stderr);
  assert.match(flag.stderr, /--dtype q8 does not match .*fp32\.json, fitted on fp32 embeddings/);
  // Rows from before the dtype was recorded: scored, with one warning.
  const old = await offline(["detect", "--detector", fp32, valOld, "--json"]);
  assert.equal(old.code, 0, old.stderr);
  assert.equal(jsonLines(old.stdout).length, 6);
  assert.equal(old.stderr.match(/cannot check that .*val-old\.jsonl and .*fp32\.json share a dtype/g)?.length, 1, old.stderr);

  const combined = await offline(["combine", fp32, q8, "--id", val, "--out", path.join(dir, "mix.json")]);
  assert.equal(combined.code, 3, combined.stderr);
  assert.match(combined.stderr, /fp32\.json was fitted on fp32 embeddings, .*q8\.json on q8/);
});

test("combine: a part constant on --id (knn given its own fit data) is centred, not blown up, and said to be", async () => {
  const knn = path.join(dir, "self-knn.json");
  const maha = path.join(dir, "self-maha.json");
  assert.equal((await offline(["fit", "--method", "knn", "--id", train, "--out", knn, "--quiet"])).code, 0);
  assert.equal((await offline(["fit", "--method", "mahalanobis", "--id", train, "--out", maha, "--quiet"])).code, 0);
  const hybrid = path.join(dir, "hybrid.json");
  const r = await offline(["combine", knn, maha, "--id", train, "--out", hybrid, "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: .*self-knn\.json scores are constant on --id \(every score [^)]*\): it was probably fitted on the same images/);
  assert.doesNotMatch(r.stderr, /self-maha\.json scores are constant/);
  const scored = await scores(hybrid, val, ood);
  // Standardised scores of both parts: a few units, not the ±1e7 that dividing by rounding noise gave.
  for (const s of scored) assert.ok(Number.isFinite(s.score) && Math.abs(s.score) < 1000, `${s.input}: ${s.score}`);
  const minId = Math.min(...scored.slice(0, 6).map((s) => s.score));
  assert.ok(scored.slice(6).every((s) => s.score < minId), JSON.stringify(scored.map((s) => s.score)));
});

test("embed records each row's dtype; export without --model takes the store's only model and loads none", async () => {
  const model = await makeModel();
  const modelCache = await tempDir();
  const imgs = await makeImages([{ colour: "red", texture: "plain" }, { colour: "blue", texture: "plain" }], 5);
  const out = path.join(dir, "embedded.jsonl");
  const store = path.join(dir, "store.sqlite");
  const e = await runCli(["embed", ...imgs.map((i) => i.file), "--out", out, "--model", model, "--cache-dir", modelCache, "--store", store, "--quiet"]);
  assert.equal(e.code, 0, e.stderr);
  assert.deepEqual(jsonLines(await readFile(out, "utf8")).map((r) => r["dtype"]), ["fp32", "fp32"]);
  assert.equal((await runCli(["index", path.dirname(imgs[0]!.file), "--model", model, "--cache-dir", modelCache, "--store", store, "--quiet"])).code, 0);
  // Another cache, no --model: the default model is not downloaded (the hub is a dead port).
  const exported = path.join(dir, "exported.jsonl");
  const x = await offline(["export", "--store", store, "--out", exported]);
  assert.equal(x.code, 0, x.stderr);
  const rows = jsonLines(await readFile(exported, "utf8"));
  assert.equal(rows.length, 2);
  assert.ok(rows.every((r) => r["model"] === model), JSON.stringify(rows.map((r) => r["model"])));
  // Two models in the store: export says which there are.
  const second = await makeModel({ seed: 9 });
  assert.equal((await runCli(["index", path.dirname(imgs[0]!.file), "--model", second, "--cache-dir", modelCache, "--store", store, "--quiet"])).code, 0);
  const ambiguous = await offline(["export", "--store", store, "--out", exported]);
  assert.equal(ambiguous.code, 2, ambiguous.stderr);
  assert.match(ambiguous.stderr, /holds embeddings of several models: /);
  assert.ok(ambiguous.stderr.includes(model) && ambiguous.stderr.includes(second), ambiguous.stderr);
  assert.match(ambiguous.stderr, /--model/);
});
