/**
 * clip-ood eval end to end on the generated model's world, where the outcome is known: red, green and
 * blue are the classes, and images of other colours are separated perfectly by MCM (as
 * detector.test.ts establishes), so every metric is at its best value; the sets come in each layout
 * eval reads, and a rerun embeds nothing again.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import { ClipModel } from "../src/clip.js";
import { fromCsv, fromList, readDataset } from "../src/eval/datasets.js";
import { embedDataset } from "../src/eval/run.js";
import { row } from "../src/maths/vectors.js";
import { openEmbeddingStore } from "../src/store/open.js";
import { jsonLines, runCli } from "./support/cli.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";

let model: string;
let cache: string;
let root: string;
let idDir: string;
let warmDir: string;
let coolList: string;
let trainDir: string;

const ID = ["red", "green", "blue"];

before(async () => {
  model = await makeModel();
  cache = await tempDir();
  root = await tempDir();
  const place = async (colours: string[], seed: number, folder: (colour: string, i: number) => string) => {
    const imgs = await makeImages(colours.map((colour) => ({ colour, texture: "plain" as const })), seed);
    const out: string[] = [];
    for (const [i, img] of imgs.entries()) {
      const to = path.join(folder(img.colour, i), path.basename(img.file));
      await mkdir(path.dirname(to), { recursive: true });
      await copyFile(img.file, to);
      out.push(to);
    }
    return out;
  };
  idDir = path.join(root, "val");
  await place([...ID, ...ID], 51, (c) => path.join(idDir, c));
  warmDir = path.join(root, "warm ood");
  await place(["yellow", "pink", "yellow"], 52, () => warmDir);
  // A file that is not an image: reported, skipped, the rest evaluated.
  await writeFile(path.join(warmDir, "broken.png"), "not a png");
  const cool = await place(["cyan", "white", "cyan", "white"], 53, () => path.join(root, "cool"));
  coolList = path.join(root, "cool.txt");
  await writeFile(coolList, "# OOD: cool colours\n" + cool.map((f) => path.relative(root, f)).join("\n") + "\n");
  trainDir = path.join(root, "train");
  await place([...ID, ...ID], 54, (c) => path.join(trainDir, c));
});

const common = (store: string) => ["--model", model, "--cache-dir", cache, "--store", store, "--threads", "1"];

type Row = Record<string, unknown> & { method: string; ood: string; n: { id: number; ood: number } };

async function evalJson(args: string[], store: string): Promise<{ rows: Row[]; code: number | null; stderr: string }> {
  const r = await runCli(["eval", ...args, "--json", ...common(store)]);
  return { rows: jsonLines(r.stdout).filter((x) => "method" in x) as Row[], code: r.code, stderr: r.stderr };
}

test("eval: methods × OOD sets in every layout give the known perfect separation, averages, ID accuracy and a report", async () => {
  const dir = await tempDir();
  const store = path.join(dir, "s.sqlite");
  const report = path.join(dir, "report.html");
  const plots = path.join(dir, "plots");
  const { rows, code, stderr } = await evalJson(["--id", idDir, "--ood", `warm=${warmDir}`, "--ood", `cool=${coolList}`, "--methods", "mcm,energy", "--report", report, "--plots", plots], store);
  assert.equal(code, 1, `one broken file → exit 1 after the results: ${stderr}`);
  assert.match(stderr, /broken\.png/);
  assert.deepEqual(rows.map((r) => `${r.method}/${r.ood}`), ["mcm/warm", "mcm/cool", "mcm/average", "energy/warm", "energy/cool", "energy/average"]);
  for (const r of rows) {
    const what = `${r.method}/${r.ood}: ${JSON.stringify(r)}`;
    for (const key of ["auroc", "auprIn", "auprOut", "detectionAccuracy"]) assert.equal(r[key], 1, `${key} of ${what}`);
    assert.equal(r["fpr95"], 0, what);
    assert.equal(r["idAccuracy"], 1, what);
    assert.equal(typeof r["threshold"], "number", what);
  }
  assert.deepEqual(rows[0]!.n, { id: 6, ood: 3 }, "warm: the broken file is left out");
  assert.deepEqual(rows[1]!.n, { id: 6, ood: 4 });
  assert.deepEqual(rows[2]!.n, { id: 6, ood: 7 }, "the average row counts every OOD input");
  assert.match(stderr, /image embeddings: 13 computed, 0 from the store/);

  const html = await readFile(report, "utf8");
  assert.ok(html.includes("<svg") && html.includes("mcm") && html.includes("cool"), "the report holds charts and names the methods and sets");
  assert.ok(!/<script[^>]+src=|<link[^>]+href=["']https?:/i.test(html), "the report loads nothing from elsewhere");
  const files = await readdir(plots);
  assert.ok(files.some((f) => f.endsWith(".svg")) && files.some((f) => f.endsWith(".png")), files.join(", "));

  // Another method on the same sets: every embedding comes from the store.
  const again = await evalJson(["--id", idDir, "--ood", `warm=${warmDir}`, "--ood", `cool=${coolList}`, "--methods", "maxlogit"], store);
  assert.match(again.stderr, /image embeddings: 0 computed, 13 from the store/);
  assert.equal(again.rows.length, 3);
});

test("eval: few-shot methods fit on --fit data; saved detectors and embeddings-file sets give the same metrics", async () => {
  const dir = await tempDir();
  const store = path.join(dir, "s.sqlite");
  const knn = await evalJson(["--id", idDir, "--ood", `warm=${warmDir}`, "--methods", "knn,mcm", "--fit", trainDir], store);
  assert.deepEqual(knn.rows.map((r) => `${r.method}/${r.ood}`), ["knn/warm", "knn/average", "mcm/warm", "mcm/average"]);
  assert.equal(knn.rows[0]!["auroc"], 1, JSON.stringify(knn.rows[0]));
  const noFit = await runCli(["eval", "--id", idDir, "--ood", `warm=${warmDir}`, "--methods", "knn", "--quiet", ...common(store)]);
  assert.equal(noFit.code, 2, noFit.stderr);

  // Saved detector + the sets as embeddings files: no images are read, the numbers are the same.
  const det = path.join(dir, "pets.json");
  const fit = await runCli(["fit", "--classes", ID.join(","), "--out", det, "--quiet", ...common(store)]);
  assert.equal(fit.code, 0, fit.stderr);
  const idEmb = path.join(dir, "id.jsonl");
  const oodEmb = path.join(dir, "cool.npy");
  await runCli(["index", path.join(root, "cool"), "--quiet", ...common(store)]);
  for (const [out, within] of [[idEmb, idDir], [oodEmb, path.join(root, "cool")]] as const) {
    const e = await runCli(["export", "--out", out, "--in", within, "--quiet", ...common(store)]);
    assert.equal(e.code, 0, e.stderr);
  }
  const fromImages = await evalJson(["--id", idDir, "--ood", `cool=${coolList}`, "--detector", det], store);
  const fromFiles = await evalJson(["--id", idEmb, "--ood", `cool=${oodEmb}`, "--detector", det, "--model", path.join(dir, "no-such-model")], store);
  assert.equal(fromFiles.code, 0, fromFiles.stderr);
  assert.deepEqual(fromFiles.rows.map((r) => r.method), ["pets", "pets"]);
  const strip = (r: Row) => ({ ...r, idAccuracy: null });
  assert.deepEqual(fromFiles.rows.map(strip), fromImages.rows.map(strip), "embeddings files give the images' metrics");
});

test("eval: --fpr-convention openood, CSV output, and clear errors for bad sets", async () => {
  const dir = await tempDir();
  const store = path.join(dir, "s.sqlite");
  const open = await evalJson(["--id", idDir, "--ood", `warm=${warmDir}`, "--fpr-convention", "openood"], store);
  assert.equal(open.rows[0]!["fpr95"], 0, "perfect separation: no ID flagged at 95% OOD recall");
  // An "OOD" set that is the ID set itself cannot be told apart: every ID score is tied with an OOD
  // score, so AUROC is ½ exactly, the best balanced accuracy ½, and at the closest point to 95% recall
  // (recall 1 of 6 distinct scores, |1 − 0.95| < |5/6 − 0.95|) every OOD image is accepted.
  const same = await evalJson(["--id", idDir, "--ood", `same=${idDir}`], store);
  assert.deepEqual(
    [same.rows[0]!["auroc"], same.rows[0]!["detectionAccuracy"], same.rows[0]!["fpr95"]],
    [0.5, 0.5, 1],
    JSON.stringify(same.rows[0]),
  );
  const csv = await runCli(["eval", "--id", idDir, "--ood", `cool=${coolList}`, "--csv", "--quiet", ...common(store)]);
  assert.equal(csv.code, 0, csv.stderr);
  const lines = csv.stdout.trim().split("\n");
  assert.match(lines[0]!, /^method,ood,AUROC%/);
  assert.equal(lines.length, 3, csv.stdout);

  const cases: [string[], RegExp][] = [
    [["--id", idDir], /--ood/],
    [["--id", idDir, "--ood", "=x"], /name=<set>/],
    [["--id", path.join(root, "nowhere"), "--ood", `warm=${warmDir}`], /nowhere/],
    [["--id", idDir, "--ood", `warm=${warmDir}`, "--methods", "mcm,bogus"], /unknown method "bogus"/],
    [["--id", idDir, "--ood", `warm=${warmDir}`, "--ood", `warm=${coolList}`], /named twice/],
    [["--id", idDir, "--ood", `warm=${warmDir}`, "--k", "3"], /--k does not apply/],
    [["--id", warmDir, "--ood", `cool=${coolList}`], /class names/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(["eval", ...args, "--quiet", ...common(store)]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
  }
});

test("data sets: class folders, lists with and without labels, CSV with quoted paths", async () => {
  const folder = await readDataset(idDir);
  assert.equal(folder.layout, "image-folder");
  assert.deepEqual([...new Set(folder.images.map((i) => i.label))], ["blue", "green", "red"], "labels are the sorted folder names");
  const list = fromList("/data/ood.txt", "a/1.png 3\n# comment\n\nb/my photo.png\tcat\n");
  assert.deepEqual(list.images, [
    { input: "/data/a/1.png", label: "3" },
    { input: "/data/b/my photo.png", label: "cat" },
  ]);
  assert.deepEqual(fromList("/d/l.txt", "my photo.png\nother.jpg\n").images, [{ input: "/d/my photo.png" }, { input: "/d/other.jpg" }], "a path with a space is not a label");
  assert.throws(() => fromList("/d/l.txt", "a.png cat\nb.png\n"), /1 of 2 lines have a label/);
  const csv = fromCsv("/d/set.csv", 'Image,Class\n"x, y.png",dog\nz.png,\n');
  assert.deepEqual(csv.images, [{ input: "/d/x, y.png", label: "dog" }, { input: "/d/z.png" }]);
  assert.throws(() => fromCsv("/d/set.csv", "name,label\na.png,cat\n"), /no path column \(columns: name, label\)/);
});

test("embedDataset: each row is its own image's embedding, in order, past a broken file, with and without the store", async () => {
  // The rows fill one matrix sized for every file; a failure in the middle must not shift the rest.
  const clip = await ClipModel.load({ model, cacheDir: cache, threads: 1 });
  const dir = await tempDir();
  const store = await openEmbeddingStore(path.join(dir, "store.sqlite"));
  try {
    const set = await readDataset(warmDir);
    assert.ok(set.images.some((i) => i.input.endsWith("broken.png")) && set.images.at(-1)!.input.endsWith(".png"));
    const good = set.images.map((i) => i.input).filter((f) => !f.endsWith("broken.png"));
    const reference: Float32Array[] = [];
    for await (const r of clip.embedImages(good)) reference.push(r.embedding!);
    for (const withStore of [false, true, true]) {
      const failed: string[] = [];
      const out = await embedDataset("warm", set, { model: clip, modelId: clip.id, ...(withStore ? { store } : {}), onFailure: (input) => failed.push(input) });
      assert.deepEqual(failed, [path.join(warmDir, "broken.png")]);
      assert.deepEqual(out.inputs, good);
      assert.deepEqual([out.embeddings.rows, out.embeddings.data.length], [good.length, good.length * out.embeddings.cols]);
      good.forEach((_, i) => assert.deepEqual(row(out.embeddings, i), reference[i], `row ${i}, store ${withStore}`));
    }
  } finally {
    await store.close();
    await clip.close();
  }
});
