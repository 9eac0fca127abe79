/**
 * The learned heads tip-adapter, tip-adapter-f and taskres end to end through the built CLI (`npm run
 * build` first), on the generated model's world: ONE image per red, green and blue class folder to fit on
 * (Tip-Adapter's 1-shot setting), held-out ID images, and OOD images of other colours.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import { jsonLines, runCli } from "./support/cli.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";

let model: string;
let cache: string;
let root: string;
let trainDir: string;
let idDir: string;
let oodDir: string;

const ID = ["red", "green", "blue"];

before(async () => {
  model = await makeModel();
  cache = await tempDir();
  root = await tempDir();
  const place = async (colours: string[], seed: number, folder: (colour: string) => string) => {
    const imgs = await makeImages(colours.map((colour, i) => ({ colour, texture: i % 2 === 0 ? ("plain" as const) : ("striped" as const) })), seed);
    for (const img of imgs) {
      const to = path.join(folder(img.colour), path.basename(img.file));
      await mkdir(path.dirname(to), { recursive: true });
      await copyFile(img.file, to);
    }
  };
  trainDir = path.join(root, "train");
  await place(ID, 71, (c) => path.join(trainDir, c));
  idDir = path.join(root, "val");
  await place([...ID, ...ID], 72, (c) => path.join(idDir, c));
  oodDir = path.join(root, "ood");
  await place(["yellow", "pink", "cyan", "white"], 73, () => oodDir);
});

const base = () => ["--model", model, "--cache-dir", cache, "--threads", "1"];

type Scored = { input: string; label: string; score: number };

async function detectScores(det: string, inputs: string[]): Promise<Scored[]> {
  const r = await runCli(["detect", "--detector", det, ...inputs, "--json", "--cache-dir", cache, "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  return jsonLines(r.stdout) as unknown as Scored[];
}

function assertSeparates(scored: Scored[], what: string): void {
  const id = scored.filter((s) => s.input.includes(`${path.sep}val${path.sep}`));
  const ood = scored.filter((s) => s.input.includes(`${path.sep}ood${path.sep}`));
  assert.equal(id.length, 6);
  assert.equal(ood.length, 4);
  for (const s of id) assert.equal(s.label, path.basename(path.dirname(s.input)), `${what}: ${s.input} labelled ${s.label}`);
  const minId = Math.min(...id.map((s) => s.score));
  const maxOod = Math.max(...ood.map((s) => s.score));
  assert.ok(minId > maxOod, `${what}: ID min ${minId} vs OOD max ${maxOod}`);
}

test("fit --method tip-adapter on one image per class folder; detect --detector on images and on embeddings", async () => {
  const dir = await tempDir();
  const det = path.join(dir, "tip.json");
  const fit = await runCli(["fit", "--method", "tip-adapter", "--id", trainDir, "--tip-alpha", "2", "--out", det, ...base()]);
  assert.equal(fit.code, 0, fit.stderr);
  assert.match(fit.stderr, /fitted on 3 in-distribution embeddings/);
  const shown = JSON.parse((await runCli(["detector", "show", det])).stdout) as { method: string; classes: string[]; params: Record<string, unknown>; fitted: Record<string, unknown>; fitRows: number };
  assert.equal(shown.method, "tip-adapter");
  assert.deepEqual(shown.classes, ["blue", "green", "red"]);
  assert.deepEqual(shown.params, { tipAlpha: 2 });
  // What fitting used, defaults included: the given α, the default β, the cache of one key per shot.
  assert.deepEqual(shown.fitted, { kind: "tip-adapter", alpha: 2, beta: 1, score: "msp", classes: 3, cacheKeys: 3 });
  assert.equal(shown.fitRows, 3);
  const fromImages = await detectScores(det, [idDir, oodDir]);
  assertSeparates(fromImages, "tip-adapter msp");
  // Embeddings files need no model and give the images' scores.
  const valEmb = path.join(dir, "val.jsonl");
  assert.equal((await runCli(["embed", idDir, oodDir, "--out", valEmb, ...base(), "--quiet"])).code, 0);
  assert.deepEqual((await detectScores(det, [valEmb])).map((s) => s.score), fromImages.map((s) => s.score));
});

test("fit --method tip-adapter-f and taskres on a labelled embeddings file; unlabelled data and foreign flags are refused", async () => {
  const dir = await tempDir();
  const emb = path.join(dir, "train.jsonl");
  assert.equal((await runCli(["embed", trainDir, "--out", emb, ...base(), "--quiet"])).code, 0);
  const fitArgs = (method: string, out: string, ...extra: string[]) => ["fit", "--method", method, "--classes", "red,green,blue", "--id", emb, ...extra, "--out", path.join(dir, out), ...base()];
  // Unlabelled rows would pool into one class, which has no class names for the text classifier.
  const unlabelled = await runCli(fitArgs("taskres", "x.json"));
  assert.equal(unlabelled.code, 2, unlabelled.stderr);
  assert.match(unlabelled.stderr, /--method taskres needs labelled in-distribution data/);
  const labelled = jsonLines(await readFile(emb, "utf8")).map((r) => JSON.stringify({ ...r, label: path.basename(path.dirname(String(r["input"]))) }));
  await writeFile(emb, labelled.join("\n") + "\n");
  for (const [method, extra] of [
    ["tip-adapter-f", ["--epochs", "5", "--head-score", "energy"]],
    ["taskres", ["--taskres-alpha", "0.5", "--head-score", "maxlogit"]],
  ] as const) {
    const r = await runCli(fitArgs(method, `${method}.json`, ...extra));
    assert.equal(r.code, 0, r.stderr);
    assertSeparates(await detectScores(path.join(dir, `${method}.json`), [idDir, oodDir]), method);
  }
  for (const [method, flag] of [
    ["knn", "--tip-alpha"],
    ["tip-adapter", "--epochs"],
    ["tip-adapter-f", "--taskres-alpha"],
  ] as const) {
    const r = await runCli(fitArgs(method, "y.json", flag, "1"));
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${flag} does not apply to --method ${method}`));
  }
});

test("eval --methods tip-adapter,tip-adapter-f,taskres --fit", async () => {
  const dir = await tempDir();
  const ev = await runCli(["eval", "--id", idDir, "--ood", `other=${oodDir}`, "--methods", "tip-adapter,tip-adapter-f,taskres", "--fit", trainDir, "--json", "--store", path.join(dir, "s.sqlite"), ...base(), "--quiet"]);
  assert.equal(ev.code, 0, ev.stderr);
  const rows = jsonLines(ev.stdout).filter((r) => r["ood"] === "other");
  assert.deepEqual(rows.map((r) => r["method"]), ["tip-adapter", "tip-adapter-f", "taskres"]);
  for (const r of rows) {
    assert.equal(r["auroc"], 1, JSON.stringify(r));
    assert.equal(r["idAccuracy"], 1, JSON.stringify(r));
  }
});

test("synthetic outliers: negative labels as extra classes, outlier images as the probe's outlier class", async () => {
  const dir = await tempDir();
  // Known outliers of two colours; the OOD test images are yellow, pink, cyan and white.
  const outlierDir = path.join(root, "known-outliers");
  for (const img of await makeImages([{ colour: "yellow", texture: "plain" }, { colour: "cyan", texture: "striped" }, { colour: "pink", texture: "plain" }], 74)) {
    await mkdir(outlierDir, { recursive: true });
    await copyFile(img.file, path.join(outlierDir, path.basename(img.file)));
  }
  const fit = async (out: string, ...args: string[]) => {
    const r = await runCli(["fit", "--id", trainDir, ...args, "--out", path.join(dir, out), ...base()]);
    assert.equal(r.code, 0, r.stderr);
    return { stderr: r.stderr, scores: await detectScores(path.join(dir, out), [idDir, oodDir]) };
  };
  const negLabels = ["--outlier-neglabel", "--neg-labels", "yellow,pink,cyan,white,purple"];
  const cases = [
    ["tip-adapter", [], negLabels],
    ["taskres", ["--epochs", "20"], negLabels],
    ["linear-probe", ["--probe-c", "10"], ["--outlier-images", outlierDir]],
  ] as const;
  for (const [method, common, outlierArgs] of cases) {
    const plain = await fit(`${method}.json`, "--method", method, ...common);
    const withOutliers = await fit(`${method}-outliers.json`, "--method", method, ...common, ...outlierArgs);
    assertSeparates(withOutliers.scores, `${method} with outliers`);
    // The OOD inputs are what the outliers stand for: each scores lower once they are trained in.
    withOutliers.scores.forEach((s, i) => {
      if (s.input.includes(`${path.sep}ood${path.sep}`)) assert.ok(s.score < plain.scores[i]!.score, `${method}: ${s.input} ${s.score} vs ${plain.scores[i]!.score}`);
    });
    // The negatives were fitting data only: the saved head holds what scoring needs, once.
    assert.doesNotMatch(await readFile(path.join(dir, `${method}-outliers.json`), "utf8"), /"negatives"/);
  }
  const refused = [
    [["--method", "tip-adapter", "--outlier-images", outlierDir], /--outlier-images does not apply to --method tip-adapter/],
    [["--method", "taskres", "--neg-labels", "yellow"], /--neg-labels with --method taskres shapes synthetic outliers, and --outlier-neglabel is not given/],
    [["--method", "knn", "--outlier-neglabel"], /--outlier-neglabel does not apply to --method knn/],
  ] as const;
  for (const [args, message] of refused) {
    const r = await runCli(["fit", "--id", trainDir, ...args, "--out", path.join(dir, "x.json"), ...base()]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
  }
  // eval fits the outlier-trained probe on every --shots draw.
  const ev = await runCli(["eval", "--id", idDir, "--ood", `other=${oodDir}`, "--methods", "linear-probe", "--probe-c", "10", "--fit", trainDir, "--outlier-images", outlierDir, "--shots", "1", "--seeds", "1", "--json", "--store", path.join(dir, "s.sqlite"), ...base(), "--quiet"]);
  assert.equal(ev.code, 0, ev.stderr);
  const row = jsonLines(ev.stdout).find((r) => r["ood"] === "other" && r["method"] === "linear-probe");
  assert.equal(row?.["auroc"], 1, ev.stdout);
});
