/**
 * The CLI as a user runs it (the built dist/), on a generated model and generated images.
 */
import assert from "node:assert/strict";
import { copyFile, cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import sharp from "sharp";
import { decodeNpy } from "../src/io/npy.js";
import { writeBadImages } from "./support/bad-images.js";
import { jsonLines, runCli } from "./support/cli.js";
import { startHubServer } from "./support/hub-server.js";
import { makeModel, tempDir, worldImages } from "./support/model.js";
import type { WorldImage } from "./support/model.js";

let model: string;
let cache: string;
let id: WorldImage[];
let ood: WorldImage[];
let idDir: string;

before(async () => {
  model = await makeModel();
  cache = await tempDir();
  ({ id, ood } = await worldImages());
  idDir = path.dirname(id[0]!.file);
});

const base = () => ["--model", model, "--cache-dir", cache, "--threads", "1", "--quiet"];

test("classify prints a table with the right top class per image", async () => {
  const r = await runCli(["classify", idDir, "--classes", "red,green,blue", ...base()]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines[0]!, /^input\s+top-1\s+top-2\s+top-3$/);
  assert.equal(lines.length, 1 + id.length);
  for (const img of id) {
    const line = lines.find((l) => l.includes(path.basename(img.file)));
    assert.ok(line, `no row for ${img.file}`);
    assert.match(line, new RegExp(`\\s${img.colour} \\d+\\.\\d%`));
    assert.equal(line.split(/\s{2,}/)[1]!.split(" ")[0], img.colour);
  }
});

test("classify --json: one {input, top:[{label, prob}]} per image, probabilities sorted and summing to 1", async () => {
  const r = await runCli(["classify", ...id.map((i) => i.file), "--classes", "red,green,blue", "--json", "-k", "3", ...base()]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(r.stdout);
  assert.equal(rows.length, id.length);
  rows.forEach((row, i) => {
    assert.deepEqual(Object.keys(row), ["input", "top"]);
    assert.equal(row["input"], id[i]!.file);
    const top = row["top"] as { label: string; prob: number }[];
    assert.equal(top[0]!.label, id[i]!.colour);
    assert.ok(top[0]!.prob >= top[1]!.prob && top[1]!.prob >= top[2]!.prob, "top[0]!.prob >= top[1]!.prob && top[1]!.prob >= top[2]!.prob");
    assert.ok(Math.abs(top.reduce((s, t) => s + t.prob, 0) - 1) < 1e-6, "Math.abs(top.reduce((s, t) => s + t.prob, 0) - 1) < 1e-6");
  });
});

test("classify --csv and paths from stdin", async () => {
  const r = await runCli(["classify", "-", "--classes", "red,green,blue", "--csv", "-k", "1", ...base()], { stdin: id.map((i) => i.file).join("\n") + "\n" });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines[0], "input,label_1,prob_1");
  assert.equal(lines.length, 1 + id.length);
  assert.equal(lines[1]!.split(",")[1], id[0]!.colour);
});

test("detect without a threshold prints scores, ood null, and how to choose a threshold", async () => {
  const r = await runCli(["detect", ...id.map((i) => i.file), ...ood.map((i) => i.file), "--classes", "red,green,blue", "--json", "--model", model, "--cache-dir", cache]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(r.stdout);
  assert.equal(rows.length, id.length + ood.length);
  for (const row of rows) {
    assert.deepEqual(Object.keys(row), ["input", "label", "score", "ood"]);
    assert.equal(row["ood"], null);
  }
  const idScores = rows.slice(0, id.length).map((x) => x["score"] as number);
  const oodScores = rows.slice(id.length).map((x) => x["score"] as number);
  assert.ok(Math.min(...idScores) > Math.max(...oodScores), "Math.min(...idScores) > Math.max(...oodScores)");
  assert.match(r.stderr, /No --threshold given/);
  assert.match(r.stderr, /5th percentile/);
});

test("notes go to stderr whatever it is, and --quiet drops them; warnings show even under --quiet", async () => {
  // runCli's stderr is a pipe, as in `2> log`.
  const files = [id[0]!.file, ood[0]!.file];
  const noisy = await runCli(["detect", ...files, "--classes", "red,green,blue", "--model", model, "--cache-dir", cache]);
  assert.match(noisy.stderr, /No --threshold given/);
  const quiet = await runCli(["detect", ...files, "--classes", "red,green,blue", ...base()]);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "");
  const floor = await runCli(["detect", ...files, "--classes", "red,green,blue", "--threshold", "0.2", ...base()]);
  assert.equal(floor.code, 0, floor.stderr);
  assert.match(floor.stderr, /^warning: threshold 0\.2 is at or below 1\/3, the lowest possible MCM score/);
});

test("detect --threshold gives ID/OOD verdicts", async () => {
  const files = [id[0]!.file, ood[0]!.file];
  const scored = jsonLines((await runCli(["detect", ...files, "--classes", "red,green,blue", "--json", ...base()])).stdout);
  const t = ((scored[0]!["score"] as number) + (scored[1]!["score"] as number)) / 2;
  const r = await runCli(["detect", ...files, "--classes", "red,green,blue", "--threshold", String(t), ...base()]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines[0]!, /^input\s+label\s+score\s+ood$/);
  assert.match(lines[1]!, /\sred\s+0\.\d{6}\s+ID$/);
  assert.match(lines[2]!, /\s0\.\d{6}\s+OOD$/);
  const json = jsonLines((await runCli(["detect", ...files, "--classes", "red,green,blue", "--threshold", String(t), "--json", ...base()])).stdout);
  assert.deepEqual(json.map((x) => x["ood"]), [false, true]);
});

test("embed writes unit-norm JSON Lines with the model id, and .npy with a sidecar", async () => {
  const dir = await tempDir();
  const out = path.join(dir, "e.jsonl");
  const r = await runCli(["embed", id[0]!.file, id[1]!.file, "--text", "a photo of a red", "--out", out, ...base()]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(await readFile(out, "utf8"));
  assert.deepEqual(rows.map((x) => [x["input"], x["kind"]]), [["a photo of a red", "text"], [id[0]!.file, "image"], [id[1]!.file, "image"]]);
  for (const row of rows) {
    assert.equal(row["model"], model);
    const e = row["embedding"] as number[];
    assert.equal(e.length, 64);
    assert.ok(Math.abs(Math.hypot(...e) - 1) < 1e-5, "Math.abs(Math.hypot(...e) - 1) < 1e-5");
  }
  // The red text lies closer to the red image than to the green one.
  const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  const [t, red, green] = rows.map((x) => x["embedding"] as number[]);
  assert.ok(dot(t!, red!) > dot(t!, green!), "dot(t!, red!) > dot(t!, green!)");

  const npy = path.join(dir, "e.npy");
  const r2 = await runCli(["embed", id[0]!.file, "--text", "a photo of a red", "--out", npy, ...base()]);
  assert.equal(r2.code, 0, r2.stderr);
  const { data, shape } = decodeNpy(await readFile(npy));
  assert.deepEqual(shape, [2, 64]);
  const sidecar = JSON.parse(await readFile(`${npy}.json`, "utf8")) as { model: string; dim: number; rows: { input: string; kind: string }[] };
  assert.equal(sidecar.model, model);
  assert.equal(sidecar.dim, 64);
  assert.deepEqual(sidecar.rows.map((x) => x.kind), ["text", "image"]);
  Array.from(data.subarray(0, 64)).forEach((v, i) => assert.ok(Math.abs(v - t![i]!) < 1e-6), "Math.abs(v - t![i]!) < 1e-6)");
});

test("embed --csv: the JSON Lines fields as columns (dtype included), then the embedding as e0 … e63; --out x.csv writes the same", async () => {
  const dir = await tempDir();
  const args = [id[0]!.file, id[1]!.file, "--text", "a photo of a red", ...base()];
  const json = jsonLines((await runCli(["embed", ...args])).stdout);
  const r = await runCli(["embed", ...args, "--csv"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.deepEqual(lines[0]!.split(","), ["input", "kind", "model", "dtype", ...Array.from({ length: 64 }, (_, i) => `e${i}`)]);
  assert.equal(lines.length, 1 + json.length);
  lines.slice(1).forEach((line, i) => {
    const cells = line.split(",");
    assert.deepEqual(cells.slice(0, 4), [json[i]!["input"], json[i]!["kind"], json[i]!["model"], json[i]!["dtype"]]);
    assert.equal(cells[3], "fp32");
    assert.deepEqual(cells.slice(4).map(Number), json[i]!["embedding"]);
  });
  const out = path.join(dir, "e.csv");
  assert.equal((await runCli(["embed", ...args, "--out", out])).code, 0);
  assert.equal(await readFile(out, "utf8"), r.stdout);

  // --labelled: a label column, empty for texts.
  const sets = path.join(dir, "sets");
  for (const img of id) await cp(img.file, path.join(sets, img.colour, path.basename(img.file)));
  const labelled = await runCli(["embed", "--labelled", sets, "--text", "a red thing", "--csv", ...base()]);
  assert.equal(labelled.code, 0, labelled.stderr);
  const rows = labelled.stdout.trimEnd().split("\n").map((l) => l.split(","));
  assert.deepEqual(rows[0]!.slice(0, 4), ["input", "kind", "label", "model"]);
  assert.deepEqual(rows.slice(1).map((c) => c[2]).sort(), ["", ...id.map((i) => i.colour)].sort());

  const clash = await runCli(["embed", id[0]!.file, "--csv", "--out", path.join(dir, "e.npy"), ...base()]);
  assert.equal(clash.code, 2, clash.stderr);
});

test("bad images are reported with their path and reason, the rest are processed, exit status 1", async () => {
  const dir = await tempDir();
  await cp(id[0]!.file, path.join(dir, "good.png"));
  await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 220, g: 30, b: 30 } } }).png().toFile(path.join(dir, "tiny.png"));
  const bad = await writeBadImages(dir);
  const r = await runCli(["classify", dir, "--classes", "red,green,blue", "--json", ...base()]);
  assert.equal(r.code, 1, r.stderr);
  const rows = jsonLines(r.stdout);
  const byName = new Map(rows.map((x) => [path.basename(x["input"] as string), x]));
  assert.equal((byName.get("good.png")!["top"] as { label: string }[])[0]!.label, "red");
  assert.equal((byName.get("tiny.png")!["top"] as { label: string }[])[0]!.label, "red", "a 1×1 image is upscaled and classified");
  for (const f of Object.values(bad)) {
    const row = byName.get(path.basename(f));
    assert.ok(row && typeof row["error"] === "string", `${f} should be a JSON error row`);
    assert.ok(r.stderr.includes(f), `stderr names ${f}`);
  }
  assert.match(r.stderr, /exceeds|pixel/i);
  assert.match(r.stderr, /4 of 6 inputs could not be processed/);
});

test("a folder that holds no images is named on stderr and in --json beside inputs that give images", async () => {
  const dir = await tempDir();
  const emptyFolder = path.join(dir, "dir.jpg"); // a folder whose name looks like an image
  await mkdir(emptyFolder);
  const r = await runCli(["classify", id[0]!.file, emptyFolder, "--classes", "red,green,blue", "--json", ...base()]);
  assert.equal(r.code, 1, r.stderr);
  const line = r.stderr.split("\n").find((l) => l.startsWith(`skipped ${emptyFolder}: `));
  assert.match(line ?? "", /: folder holds no images \(.*\); --ext changes which extensions count$/, r.stderr);
  const rows = jsonLines(r.stdout);
  assert.deepEqual(rows.map((x) => x["input"]).sort(), [id[0]!.file, emptyFolder].sort());
  assert.match(rows.find((x) => x["input"] === emptyFolder)!["error"] as string, /folder holds no images/);
});

test("no input gives any image (a missing file, a glob matching nothing, an empty folder, or a mix): exit 2 before any model is loaded, each input named", async () => {
  const dir = await tempDir();
  const empty = path.join(dir, "empty");
  await mkdir(empty);
  const missing = path.join(dir, "missing.jpg");
  const glob = path.join(dir, "nothing-*.png");
  // Loading this model would fail with exit 3: exit 2 shows that the inputs were checked first.
  const noModel = ["--model", path.join(dir, "no-model"), "--cache-dir", cache, "--quiet"];
  assert.equal((await runCli(["classify", id[0]!.file, "--classes", "red,green", ...noModel])).code, 3);
  const commands = [["detect", "--classes", "red,green"], ["classify", "--classes", "red,green"], ["embed"], ["index", "--store", path.join(dir, "s.sqlite")]];
  for (const inputs of [[missing], [glob], [empty], [missing, glob, empty]]) {
    for (const [command, ...flags] of commands) {
      const r = await runCli([command!, ...inputs, ...flags, ...noModel]);
      const what = `${command} ${inputs.join(" ")}`;
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      assert.match(r.stderr, /^clip-ood: no images found in /, what);
      for (const input of inputs) assert.ok(r.stderr.includes(input), `${what}: names ${input}: ${r.stderr}`);
    }
  }
  const mixed = await runCli(["detect", missing, glob, empty, "--classes", "red,green", ...noModel]);
  assert.match(mixed.stderr, /no such file/);
  assert.match(mixed.stderr, /glob matched no files/);
  assert.match(mixed.stderr, /folder holds no images/);

  // A few-shot method's --id is read before the model too (a Hub model would be downloaded first).
  const noId = path.join(dir, "no-such-train");
  for (const args of [["fit", "--method", "knn", "--id", noId, "--out", path.join(dir, "k.json")], ["detect", id[0]!.file, "--method", "knn", "--id", noId]]) {
    const r = await runCli([...args, ...noModel]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.ok(r.stderr.includes(noId) && !/model/i.test(r.stderr.split("\n")[0]!), `${args[0]}: the --id path is named, not the model: ${r.stderr}`);
  }

  // A query image is not one of a batch: search needs every --image.
  const search = await runCli(["search", "--image", missing, "--image", id[0]!.file, "--store", path.join(dir, "s.sqlite"), ...noModel]);
  assert.equal(search.code, 2, search.stderr);
  assert.match(search.stderr, new RegExp(`--image ${missing}: no such file`));

  // One input that gives images is a batch with bad inputs: each is reported, exit 1.
  const some = await runCli(["detect", id[0]!.file, missing, glob, empty, "--classes", "red,green", "--json", ...base()]);
  assert.equal(some.code, 1, some.stderr);
  assert.deepEqual(jsonLines(some.stdout).map((x) => [x["input"], "error" in x]), [[missing, true], [glob, true], [empty, true], [id[0]!.file, false]]);
  // So is an embeddings file: its rows are scored, the missing image reported.
  const embeddings = path.join(dir, "e.jsonl");
  assert.equal((await runCli(["embed", id[0]!.file, "--out", embeddings, ...base()])).code, 0);
  const withFile = await runCli(["detect", embeddings, missing, "--classes", "red,green", "--json", ...base()]);
  assert.equal(withFile.code, 1, withFile.stderr);
  assert.equal(jsonLines(withFile.stdout).filter((x) => typeof x["score"] === "number").length, 1);
  // And texts for embed.
  assert.equal((await runCli(["embed", missing, "--text", "a red thing", ...base()])).code, 1);
});

test("a fitted method without its data names the flag to add; --id data that gives nothing is named", async () => {
  const cases: [string[], RegExp][] = [
    [["detect", id[0]!.file, "--method", "knn", "--classes", "red"], /detect --method knn is fitted on in-distribution images, and --id gives none[^]*hint: add --id </],
    [["detect", id[0]!.file, "--method", "mahalanobis"], /--id gives none/],
    [["fit", "--method", "ocsvm", "--out", "x.json"], /fit --method ocsvm is fitted on in-distribution images, and --id gives none/],
    [["eval", "--id", idDir, "--ood", `o=${ood[0]!.file}`, "--methods", "mcm,knn"], /eval --methods knn is fitted on in-distribution images, and --fit gives none[^]*hint: add --fit </],
  ];
  for (const [args, message] of cases) {
    const r = await runCli([...args, ...base()]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /no usable/);
  }
  const bad = await tempDir();
  await writeBadImages(bad);
  const r = await runCli(["detect", id[0]!.file, "--method", "knn", "--classes", "red", "--id", bad, ...base()]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`no usable in-distribution data in --id ${bad}`));
});

test("one class with a softmax score (mcm, entropy) is warned about, naming the methods that can score one class; maxlogit is not", async () => {
  for (const args of [["--json"], ["--method", "entropy"], ["--quiet"]]) {
    const r = await runCli(["detect", id[0]!.file, ood[0]!.file, "--classes", "red", ...args, "--model", model, "--cache-dir", cache]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: (mcm|entropy) with one class \(red\) gives every input the same score/, args.join(" "));
    assert.match(r.stderr, /maxlogit/);
    assert.match(r.stderr, /knn/);
  }
  const maxlogit = await runCli(["detect", id[0]!.file, "--classes", "red", "--method", "maxlogit", ...base()]);
  assert.equal(maxlogit.code, 0, maxlogit.stderr);
  assert.doesNotMatch(maxlogit.stderr, /same score/);
  const fit = await runCli(["fit", "--classes", "red", "--out", path.join(await tempDir(), "d.json"), ...base()]);
  assert.equal(fit.code, 0, fit.stderr);
  assert.match(fit.stderr, /mcm with one class/);
});

test("a failed input is named once on stderr, by every command that reports it", async () => {
  const dir = await tempDir();
  await cp(id[0]!.file, path.join(dir, "good.png"));
  const broken = path.join(dir, "broken.png");
  await writeFile(broken, "not an image");
  for (const args of [["detect", dir, "--classes", "red,green,blue"], ["eval", "--id", idDir, "--ood", `o=${dir}`, "--classes", "red,green,blue"]]) {
    const r = await runCli([...args, ...base()]);
    assert.equal(r.code, 1, r.stderr);
    const line = r.stderr.split("\n").find((l) => l.includes(broken));
    assert.ok(line?.startsWith(`failed ${broken}: `), r.stderr);
    assert.equal(line!.split(broken).length, 2, `the path once: ${line}`);
  }
});

test("counts are worded in the right number: 1 class, 1 input, 1 embedding", async () => {
  const dir = await tempDir();
  const noisy = ["--model", model, "--cache-dir", cache];
  const detect = await runCli(["detect", id[0]!.file, "--classes", "red,green", ...noisy]);
  assert.match(detect.stderr, /mcm scores of the 1 input: /);
  const embed = await runCli(["embed", id[0]!.file, "--out", path.join(dir, "e.jsonl"), ...noisy]);
  assert.match(embed.stderr, /wrote 1 embedding to /);
  const fit = await runCli(["fit", "--classes", "red", "--out", path.join(dir, "d.json"), ...noisy]);
  assert.match(fit.stderr, /detector for 1 class \(model/);
  const failed = await runCli(["classify", id[0]!.file, path.join(dir, "gone.jpg"), "--classes", "red,green", ...base()]);
  assert.match(failed.stderr, /1 of 2 inputs could not be processed/);
  for (const r of [detect, embed, fit, failed]) assert.doesNotMatch(r.stderr, /\b1 (inputs|classes|embeddings|batches)\b/, r.stderr);
});

test("tables show every input path whole, however long; eval's columns stay aligned whatever the numbers", async () => {
  const deep = path.join(await tempDir(), "a-rather-long-folder-name", "holding-another-long-folder-name", "and-one-more");
  const file = path.join(deep, "the-image-itself.png");
  await mkdir(deep, { recursive: true });
  await copyFile(id[0]!.file, file);
  assert.ok(file.length > 100);
  // Where each column starts: cells are separated by two spaces or more.
  const starts = (line: string) => [...line.matchAll(/(?<=^|\s{2})\S/g)].map((m) => m.index);
  const aligned = (stdout: string) => {
    const lines = stdout.trimEnd().split("\n");
    for (const line of lines.slice(1)) assert.deepEqual(starts(line), starts(lines[0]!), `aligned with the header:\n${stdout}`);
    return lines;
  };
  for (const command of ["classify", "detect"]) {
    const r = await runCli([command, file, id[1]!.file, "--classes", "red,green,blue", ...base()]);
    assert.equal(r.code, 0, r.stderr);
    const lines = aligned(r.stdout);
    assert.ok(lines[1]!.startsWith(file + "  "), `${command}: ${lines[1]}`);
  }
  // knn fitted on the --id images themselves: their scores are ~0 and the threshold reads like -2.4e-8.
  const r = await runCli(["eval", "--id", idDir, "--ood", `o=${path.dirname(ood[0]!.file)}`, "--methods", "knn,mcm", "--fit", idDir, "--classes", "red,green,blue", ...base()]);
  assert.equal(r.code, 0, r.stderr);
  aligned(r.stdout);
});

test("usage errors exit 2 with a hint: empty classes, duplicates, unknown template, bad flag", async () => {
  const img = id[0]!.file;
  const cases: [string[], RegExp][] = [
    [["--classes", ""], /no classes/i],
    [["--classes", " , "], /no classes/i],
    [["--classes", "cat,dog,Cat"], /duplicate/i],
    [["--classes", "red", "--templates", "nosuchpreset"], /unknown template preset "nosuchpreset"/],
    [["--classes", "red", "--batch-size", "0"], /--batch-size must be a positive integer/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(["classify", img, ...args, "--model", model, "--cache-dir", cache]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const missing = await runCli(["classify", path.join(idDir, "nope"), "--classes", "red", ...base()]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /nope/);
});

test("a model folder missing a file exits 3 naming the file", async () => {
  const broken = path.join(await tempDir(), "m");
  await cp(model, broken, { recursive: true });
  await rm(path.join(broken, "tokenizer.json"));
  const r = await runCli(["classify", id[0]!.file, "--classes", "red", "--model", broken, "--cache-dir", cache]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /missing tokenizer\.json/);
  const variant = await runCli(["classify", id[0]!.file, "--classes", "red", "--model", model, "--dtype", "fp16", "--cache-dir", cache]);
  assert.equal(variant.code, 3);
  assert.match(variant.stderr, /text_model_fp16\.onnx/);
});

test("a Hub id downloads once through CLIP_OOD_HUB_URL, then runs offline from the cache", async () => {
  const root = await tempDir();
  await mkdir(path.join(root, "world"), { recursive: true });
  await cp(model, path.join(root, "world", "clip-test"), { recursive: true });
  const hubCache = await tempDir();
  const server = await startHubServer(root);
  const args = ["classify", id[0]!.file, "--classes", "red,green,blue", "--model", "world/clip-test", "--cache-dir", hubCache, "--json", "--threads", "1"];
  try {
    const r = await runCli(args, { env: { CLIP_OOD_HUB_URL: server.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((jsonLines(r.stdout)[0]!["top"] as { label: string }[])[0]!.label, "red");
    assert.ok(server.requests.some((q) => q.url.endsWith("/world/clip-test/resolve/main/onnx/vision_model.onnx")), "server.requests.some((q) => q.url.endsWith(\"/world/clip-test/resolve/main/onnx/vision_model.onnx\"))");
  } finally {
    await server.close();
  }
  const again = await runCli(args, { env: { CLIP_OOD_HUB_URL: server.url } });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((jsonLines(again.stdout)[0]!["top"] as { label: string }[])[0]!.label, "red");
});

test("offline and not cached: one clear line naming the model and --model, exit 3", async () => {
  const r = await runCli(["classify", id[0]!.file, "--classes", "red", "--cache-dir", await tempDir()]);
  assert.equal(r.code, 3);
  const [first, hint] = r.stderr.trim().split("\n");
  assert.match(first!, /^clip-ood: .*Xenova\/clip-vit-base-patch32/);
  assert.match(hint!, /--model <folder>/);
  const flagged = await runCli(["classify", id[0]!.file, "--classes", "red", "--offline", "--cache-dir", await tempDir()], { env: { CLIP_OOD_HUB_URL: "http://127.0.0.1:1" } });
  assert.equal(flagged.code, 3);
});

test("--help teaches: commands, defaults, exit statuses", async () => {
  const top = await runCli(["--help"]);
  assert.equal(top.code, 0);
  for (const word of ["classify", "detect", "embed", "Exit status"]) assert.ok(top.stdout.includes(word), word);
  const detect = await runCli(["detect", "--help"]);
  assert.equal(detect.code, 0);
  assert.match(detect.stdout, /--threshold/);
  assert.match(detect.stdout, /5th percentile/);
  const bad = await runCli(["classify", "x", "--classes", "a", "--no-such-flag"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option/);
});

test("classes from a file with descriptions and synonyms", async () => {
  const dir = await tempDir();
  const file = path.join(dir, "classes.txt");
  await writeFile(file, "# colours\nred = crimson = scarlet: a photo of a red thing\ngreen: a photo of a green thing | an emerald object\nblue = azure\n");
  const r = await runCli(["classify", ...id.map((i) => i.file), "--classes", file, "--json", "-k", "1", ...base()]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(jsonLines(r.stdout).map((x) => (x["top"] as { label: string }[])[0]!.label), id.map((i) => i.colour));
});

test("detect --method: each zero-shot score from the CLI, with its own inputs checked", async () => {
  const files = [id[0]!.file, ood[0]!.file];
  const run = (...args: string[]) => runCli(["detect", ...files, "--classes", "red,green,blue", "--json", ...args, ...base()]);
  for (const method of ["maxlogit", "energy", "entropy", "unknown"]) {
    const r = await run("--method", method);
    assert.equal(r.code, 0, `${method}: ${r.stderr}`);
    const [idRow, oodRow] = jsonLines(r.stdout);
    assert.ok((idRow!["score"] as number) > (oodRow!["score"] as number), `${method}: ${r.stdout}`);
    assert.equal(idRow!["label"], "red");
  }
  const outliers = await run("--method", "outliers", "--outlier-classes", "yellow,pink");
  assert.equal(outliers.code, 0, outliers.stderr);
  const [idRow, oodRow] = jsonLines(outliers.stdout);
  assert.ok((idRow!["score"] as number) > (oodRow!["score"] as number), outliers.stdout);

  const promptsFile = path.join(await tempDir(), "unknown.txt");
  await writeFile(promptsFile, "# none of these\na photo of an unknown object\n\na photo of something else\n");
  assert.equal((await run("--method", "unknown", "--unknown-prompts", promptsFile)).code, 0);

  const cases: [string[], RegExp][] = [
    [["--method", "outliers"], /needs --outlier-classes/],
    [["--method", "outliers", "--outlier-classes", "Red,yellow"], /Red is both a class and an outlier class/],
    [["--unknown-prompts", "something else"], /--unknown-prompts does not apply to --method mcm/],
    [["--method", "nosuch"], /invalid/],
    [["--temperature", "0"], /--temperature must be positive/],
  ];
  for (const [args, message] of cases) {
    const r = await run(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test("fit → calibrate → detect --detector, on images and on embeddings, and class edits", async () => {
  const dir = await tempDir();
  const det = path.join(dir, "det.json");
  const fit = await runCli(["fit", "--classes", "red,green,blue", "--out", det, "--model", model, "--cache-dir", cache]);
  assert.equal(fit.code, 0, fit.stderr);
  assert.match(fit.stderr, /next: clip-ood calibrate/);

  const cal = await runCli(["calibrate", "--detector", det, "--id", idDir, ...ood.flatMap((i) => ["--ood", i.file]), "--fpr", "0.05", "--cache-dir", cache, "--quiet"]);
  assert.equal(cal.code, 0, cal.stderr);
  const c = jsonLines(cal.stdout)[0]!;
  assert.deepEqual([c["tpr"], c["fpr"], c["id"], c["ood"]], [1, 0, id.length, ood.length]);

  // The detector brings its own model: no --model needed.
  const files = [id[0]!.file, ood[0]!.file];
  const r = await runCli(["detect", "--detector", det, ...files, "--json", "--cache-dir", cache, "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(r.stdout);
  assert.deepEqual(rows.map((x) => x["ood"]), [false, true]);

  // The same verdicts from the embeddings `embed` wrote, without loading any model.
  const emb = path.join(dir, "e.jsonl");
  assert.equal((await runCli(["embed", ...files, "--out", emb, ...base()])).code, 0);
  const fromEmb = jsonLines((await runCli(["detect", "--detector", det, emb, "--json", "--model", "/nonexistent", "--quiet"])).stdout);
  assert.deepEqual(fromEmb.map((x) => x["input"]), files);
  fromEmb.forEach((x, i) => assert.ok(Math.abs((x["score"] as number) - (rows[i]!["score"] as number)) < 1e-6, "embeddings score like their images"));

  assert.equal((await runCli(["detector", "add-class", det, "yellow", "--describe", "a photo of a yellow thing", "--cache-dir", cache, "--quiet"])).code, 0);
  const shown = JSON.parse((await runCli(["detector", "show", det])).stdout) as { classes: string[]; threshold: { value: number } };
  assert.deepEqual(shown.classes, ["red", "green", "blue", "yellow"]);
  assert.equal(shown.threshold.value, c["threshold"]);
  const yellow = jsonLines((await runCli(["detect", "--detector", det, emb, "--json"])).stdout)[1]!;
  assert.equal(yellow["label"], "yellow");
  assert.equal((await runCli(["detector", "remove-class", det, "yellow", "--quiet"])).code, 0);
  assert.deepEqual((JSON.parse((await runCli(["detector", "show", det])).stdout) as { classes: string[] }).classes, ["red", "green", "blue"]);

  const clash = await runCli(["detect", "--detector", det, emb, "--classes", "red"]);
  assert.equal(clash.code, 2);
  assert.match(clash.stderr, /--detector already holds --classes/);
  const copy = path.join(dir, "copy");
  await cp(model, copy, { recursive: true });
  const other = await runCli(["detect", "--detector", det, id[0]!.file, "--model", copy, "--cache-dir", cache]);
  assert.equal(other.code, 3);
  assert.match(other.stderr, /was made for model .* not .*copy/);
  const noFpr = await runCli(["calibrate", "--detector", det, "--id", idDir, "--fpr", "0.1"]);
  assert.equal(noFpr.code, 2);
  assert.match(noFpr.stderr, /--fpr needs out-of-distribution validation data/);
});

test("fit few-shot detectors from class folders, neglabel from a list, and combine them", async () => {
  const dir = await tempDir();
  const train = path.join(dir, "train");
  for (const img of id) {
    await mkdir(path.join(train, img.colour), { recursive: true });
    await cp(img.file, path.join(train, img.colour, path.basename(img.file)));
  }
  const scores = async (det: string) => jsonLines((await runCli(["detect", "--detector", det, id[0]!.file, ood[0]!.file, "--json", "--cache-dir", cache, "--quiet"])).stdout).map((x) => x["score"] as number);
  for (const method of ["knn", "mahalanobis", "ocsvm"]) {
    const det = path.join(dir, `${method}.json`);
    const r = await runCli(["fit", "--method", method, "--id", train, "--out", det, "--model", model, "--cache-dir", cache]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /fitted on 4 in-distribution embeddings/);
    const shown = JSON.parse((await runCli(["detector", "show", det])).stdout) as { classes: string[] };
    assert.deepEqual(shown.classes, ["blue", "green", "red"], "classes come from the folder names");
    const [idScore, oodScore] = await scores(det);
    assert.ok(idScore! > oodScore!, `${method}: ${idScore} vs ${oodScore}`);
  }
  const neg = path.join(dir, "neg.json");
  const negFit = await runCli(["fit", "--method", "neglabel", "--classes", "red,green,blue", "--neg-labels", "yellow,pink,white", "--neg-groups", "1", "--out", neg, ...base()]);
  assert.equal(negFit.code, 0, negFit.stderr);
  const [negId, negOod] = await scores(neg);
  assert.ok(negId! > negOod!, `neglabel: ${negId} vs ${negOod}`);

  const combo = path.join(dir, "combo.json");
  const c = await runCli(["combine", path.join(dir, "knn.json"), neg, "--weights", "1,2", "--id", train, "--out", combo, "--cache-dir", cache, "--quiet"]);
  assert.equal(c.code, 0, c.stderr);
  const [comboId, comboOod] = await scores(combo);
  assert.ok(comboId! > comboOod!, `combo: ${comboId} vs ${comboOod}`);

  // --ood: weights chosen on validation data. The reported validation AUROC must be what the saved
  // combination's own scores give on the same inputs (counted pairwise here, ties ½).
  const chosen = path.join(dir, "chosen.json");
  const oodFiles = ood.map((o) => o.file);
  const v = await runCli(["combine", path.join(dir, "knn.json"), neg, "--id", train, ...oodFiles.flatMap((f) => ["--ood", f]), "--out", chosen, "--cache-dir", cache, "--quiet"]);
  assert.equal(v.code, 0, v.stderr);
  const report = JSON.parse(v.stdout) as { weights: number[]; weightsFrom: string; validationAuroc: number; partAuroc: number[]; id: number; ood: number };
  assert.equal(report.weightsFrom, "validation");
  assert.equal(report.id, 4);
  assert.equal(report.ood, 2);
  assert.ok(Math.abs(report.weights[0]! + report.weights[1]! - 1) < 1e-12 && report.weights.every((w) => w >= 0), `weights ${report.weights}`);
  assert.ok(report.validationAuroc >= Math.max(...report.partAuroc), "never below the best part on the validation data");
  const detectScores = async (inputs: string[]) => jsonLines((await runCli(["detect", "--detector", chosen, ...inputs, "--json", "--cache-dir", cache, "--quiet"])).stdout).map((x) => x["score"] as number);
  const idS = await detectScores([train]);
  const oodS = await detectScores(oodFiles);
  let pairs = 0;
  for (const a of idS) for (const b of oodS) pairs += a > b ? 1 : a === b ? 0.5 : 0;
  assert.ok(Math.abs(pairs / (idS.length * oodS.length) - report.validationAuroc) < 1e-9, `${pairs} pairs vs ${report.validationAuroc}`);

  const errors: [string[], RegExp][] = [
    [["fit", "--method", "knn", "--classes", "red", "--id", id[0]!.file, "--k", "5", "--out", path.join(dir, "x.json")], /k = 5 is larger than the bank of 1/],
    [["fit", "--method", "mcm", "--classes", "red", "--id", train, "--out", path.join(dir, "x.json")], /--id does not apply to --method mcm/],
    [["fit", "--method", "nosuch", "--classes", "red", "--out", path.join(dir, "x.json")], /invalid/],
    [["combine", neg, "--id", train, "--out", path.join(dir, "x.json")], /at least two detectors/],
    [["combine", neg, combo, "--id", train, "--ood", ood[0]!.file, "--weights", "1,1", "--out", path.join(dir, "x.json")], /either --weights or --ood/],
  ];
  for (const [args, message] of errors) {
    const r = await runCli([...args, "--model", model, "--cache-dir", cache]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test("detect --method glmcm scores images through patch tokens and refuses embeddings files", async () => {
  const r = await runCli(["detect", id[0]!.file, ood[0]!.file, "--classes", "red,green,blue", "--method", "glmcm", "--json", ...base()]);
  assert.equal(r.code, 0, r.stderr);
  const [a, b] = jsonLines(r.stdout).map((x) => x["score"] as number);
  assert.ok(a! > b!, `${a} vs ${b}`);
  const emb = path.join(await tempDir(), "e.jsonl");
  assert.equal((await runCli(["embed", id[0]!.file, "--out", emb, ...base()])).code, 0);
  const refused = await runCli(["detect", emb, "--classes", "red,green,blue", "--method", "glmcm", ...base()]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /glmcm needs images/);
});

test("fit data as a .txt list of images or a flat folder pools one class named by --classes", async () => {
  const dir = await tempDir();
  const list = path.join(dir, "train.txt");
  await writeFile(list, `# in-distribution\n${id.map((i) => path.relative(dir, i.file)).join("\n")}\n`);
  for (const idSpec of [list, idDir]) {
    const det = path.join(dir, "k.json");
    const r = await runCli(["fit", "--method", "knn", "--classes", "things", "--id", idSpec, "--out", det, ...base().filter((a) => a !== "--quiet")]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`fitted on ${id.length} in-distribution embeddings`));
    const rows = jsonLines((await runCli(["detect", "--detector", det, ood[0]!.file, id[1]!.file, "--json", "--cache-dir", cache, "--quiet"])).stdout);
    assert.ok((rows[1]!["score"] as number) > (rows[0]!["score"] as number), JSON.stringify(rows));
    assert.equal(rows[0]!["label"], "things");
  }
});

test("unlabelled normal data fits knn, ocsvm and mahalanobis without --classes: folders, lists and embeddings files pool into the class \"normal\"", async () => {
  const dir = await tempDir();
  const list = path.join(dir, "normal.txt");
  await writeFile(list, id.map((i) => i.file).join("\n") + "\n");
  const embeddings = path.join(dir, "normal.jsonl");
  assert.equal((await runCli(["embed", ...id.map((i) => i.file), "--out", embeddings, ...base()])).code, 0);
  for (const [method, idSpec] of [["knn", idDir], ["ocsvm", list], ["mahalanobis", embeddings]] as const) {
    const det = path.join(dir, `${method}.json`);
    const r = await runCli(["fit", "--method", method, "--id", idSpec, "--out", det, ...base()]);
    assert.equal(r.code, 0, `${method} on ${idSpec}: ${r.stderr}`);
    assert.deepEqual((JSON.parse((await runCli(["detector", "show", det])).stdout) as { classes: string[] }).classes, ["normal"]);
    const rows = jsonLines((await runCli(["detect", "--detector", det, ...ood.map((i) => i.file), id[1]!.file, "--json", "--cache-dir", cache, "--quiet"])).stdout);
    const normal = rows.at(-1)!["score"] as number;
    for (const o of rows.slice(0, -1)) assert.ok(normal > (o["score"] as number), `${method}: the normal image scores above ${String(o["input"])}: ${JSON.stringify(rows)}`);
    assert.equal(rows.at(-1)!["label"], "normal");
  }
});

test("a thousand image paths on the command line are all embedded (onnxruntime's deep recursion needs a large worker stack)", async () => {
  // Found by the throughput bench: with ≥ 800 path arguments the inference worker overflowed its
  // default 4 MB stack inside onnxruntime and the process died with SIGSEGV.
  const dir = await tempDir();
  const files: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const f = path.join(dir, `img-${String(i).padStart(4, "0")}.png`);
    await copyFile(id[i % id.length]!.file, f);
    files.push(f);
  }
  const r = await runCli(["embed", ...files, "--no-store", ...base()]);
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr.slice(-300)}`);
  assert.equal(r.stdout.trim().split("\n").length, 1000);
});

test("clip-ood bench runs its suite on a model folder: a table on stdout, the report as JSON", async () => {
  const out = path.join(await tempDir(), "bench.json");
  const r = await runCli(["bench", "--count", "6", "--seconds", "1", "--texts", "8", "--batch-sizes", "2,4", "--skip", "ensemble,rss,cold", "--out", out, ...base()]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /raw graph images\/s/);
  const report = JSON.parse(await readFile(out, "utf8")) as { imageRuns: { batchSize: number; rawImagesPerSecond: number; endToEndImagesPerSecond: number }[]; dtypes: { text?: { maxAbsDiff: number } }[] };
  assert.deepEqual(report.imageRuns.map((x) => x.batchSize), [2, 4]);
  for (const x of report.imageRuns) assert.ok(x.rawImagesPerSecond > 0 && x.endToEndImagesPerSecond > 0, JSON.stringify(x));
  assert.equal(report.dtypes[0]!.text!.maxAbsDiff, 0, "padding to 77 changes no fp32 embedding");
  const bad = await runCli(["bench", "--skip", "everything", ...base()]);
  assert.equal(bad.code, 2, bad.stderr);
});
