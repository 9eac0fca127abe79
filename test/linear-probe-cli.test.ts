/**
 * The linear-probe method end to end through the built CLI (`npm run build` first), on the generated
 * model's world: red, green and blue class folders to fit on (two shots each, so 2-fold CV can run),
 * held-out ID images, and OOD images of other colours.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, readFile } from "node:fs/promises";
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
  await place([...ID, ...ID], 61, (c) => path.join(trainDir, c));
  idDir = path.join(root, "val");
  await place([...ID, ...ID], 62, (c) => path.join(idDir, c));
  oodDir = path.join(root, "ood");
  await place(["yellow", "pink", "cyan", "white"], 63, () => oodDir);
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

test("fit --method linear-probe on class folders and on an embeddings file; detect --detector; eval --methods linear-probe --fit", async () => {
  const dir = await tempDir();
  const det = path.join(dir, "probe.json");
  const fit = await runCli(["fit", "--method", "linear-probe", "--id", trainDir, "--out", det, ...base()]);
  assert.equal(fit.code, 0, fit.stderr);
  assert.match(fit.stderr, /fitted on 6 in-distribution embeddings/);
  const shown = JSON.parse((await runCli(["detector", "show", det])).stdout) as { method: string; classes: string[]; fitted: { c: number; cFrom: string; cv: { grid: number[]; folds: number } } };
  assert.equal(shown.method, "linear-probe");
  assert.deepEqual(shown.classes, ["blue", "green", "red"]);
  // The C that cross-validation chose, from the grid it tried.
  assert.equal(shown.fitted.cFrom, "cross-validation");
  assert.equal(shown.fitted.cv.folds, 2);
  assert.ok(shown.fitted.cv.grid.length > 1 && shown.fitted.cv.grid.includes(shown.fitted.c), JSON.stringify(shown.fitted));
  const fromFolders = await detectScores(det, [idDir, oodDir]);
  assertSeparates(fromFolders, "msp, fitted on folders");

  // The same training images as an embeddings file from `clip-ood embed`. Unlabelled, its rows pool into
  // one class, which a probe cannot be fitted on; `embed --labelled` records each image's class folder as
  // its "label", in JSON Lines and in the .npy sidecar, and either file then fits.
  const emb = path.join(dir, "train.jsonl");
  assert.equal((await runCli(["embed", trainDir, "--out", emb, ...base(), "--quiet"])).code, 0);
  const det2 = path.join(dir, "probe-emb.json");
  const fitArgs = (file: string) => ["fit", "--method", "linear-probe", "--classes", "red,green,blue", "--id", file, "--out", det2, ...base()];
  const unlabelled = await runCli(fitArgs(emb));
  assert.equal(unlabelled.code, 2, unlabelled.stderr);
  assert.match(unlabelled.stderr, /one class, so there is nothing to discriminate/);
  assert.equal((await runCli(["embed", "--labelled", trainDir, "--out", emb, ...base(), "--quiet"])).code, 0);
  const embedded = jsonLines(await readFile(emb, "utf8"));
  assert.deepEqual(embedded.map((r) => r["label"]), embedded.map((r) => path.basename(path.dirname(String(r["input"])))));
  const npy = path.join(dir, "train.npy");
  assert.equal((await runCli(["embed", "--labelled", trainDir, "--out", npy, ...base(), "--quiet"])).code, 0);
  for (const file of [emb, npy]) {
    const fit2 = await runCli(fitArgs(file));
    assert.equal(fit2.code, 0, fit2.stderr);
    const fromEmbeddings = await detectScores(det2, [idDir, oodDir]);
    assertSeparates(fromEmbeddings, `msp, fitted on ${path.basename(file)}`);
    // The same embeddings as the folders (through the store), the same classes in another order: the same scores.
    fromEmbeddings.forEach((s, i) => assert.ok(Math.abs(s.score - fromFolders[i]!.score) < 1e-5, `${s.input}: ${s.score} vs ${fromFolders[i]!.score}`));
  }
  const flat = await runCli(["embed", "--labelled", oodDir, ...base()]);
  assert.equal(flat.code, 2);
  assert.match(flat.stderr, /carries no class labels/);

  // Detect from embeddings files needs no model and gives the images' scores.
  const valEmb = path.join(dir, "val.jsonl");
  assert.equal((await runCli(["embed", idDir, oodDir, "--out", valEmb, ...base(), "--quiet"])).code, 0);
  const viaEmb = await detectScores(det, [valEmb]);
  assert.deepEqual(viaEmb.map((s) => s.score), fromFolders.map((s) => s.score));

  // energy and maxlogit read the same logits.
  for (const score of ["energy", "maxlogit"]) {
    const d = path.join(dir, `probe-${score}.json`);
    const r = await runCli(["fit", "--method", "linear-probe", "--id", trainDir, "--head-score", score, "--out", d, ...base(), "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    assertSeparates(await detectScores(d, [idDir, oodDir]), score);
  }

  const ev = await runCli(["eval", "--id", idDir, "--ood", `other=${oodDir}`, "--methods", "linear-probe", "--fit", trainDir, "--json", "--store", path.join(dir, "s.sqlite"), ...base(), "--quiet"]);
  assert.equal(ev.code, 0, ev.stderr);
  const rows = jsonLines(ev.stdout);
  assert.deepEqual(rows.map((r) => `${String(r["method"])}/${String(r["ood"])}`), ["linear-probe/other", "linear-probe/average"]);
  assert.equal(rows[0]!["auroc"], 1, JSON.stringify(rows[0]));
  assert.equal(rows[0]!["idAccuracy"], 1, JSON.stringify(rows[0]));

  const wrong = await runCli(["fit", "--method", "knn", "--id", trainDir, "--head-score", "energy", "--out", path.join(dir, "x.json"), ...base()]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /--head-score does not apply to --method knn/);
});
