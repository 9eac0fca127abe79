/**
 * The open-world loop as a user runs it (the built dist/): fit and calibrate a detector, detect,
 * discover what it rejects, add the clusters with `detector add-class --from`, recalibrate, and the
 * grown detector accepts the new classes. Then the refusals, each with its exit status and nothing
 * half-written. Images are plain colours of the generated world (see test/discover.test.ts for why).
 */
import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import { COLOURS, SYNONYMS, TEXT_ONLY_CONCEPTS } from "../scripts/world.js";
import { jsonLines, runCli } from "./support/cli.js";
import { makeImages, makeModel, placeImages, tempDir } from "./support/model.js";
import type { WorldImage } from "./support/model.js";

const KNOWN = ["red", "green", "blue"];
const NEW = ["orange", "purple"];
let model: string;
let cache: string;
let dir: string;
let inbox: string;
let vocabulary: string;
let inboxImages: WorldImage[];

const plain = (colours: readonly string[], n: number) => colours.flatMap((colour) => Array.from({ length: n }, () => ({ colour, texture: "plain" as const })));
const base = () => ["--model", model, "--cache-dir", cache, "--threads", "1"];

before(async () => {
  model = await makeModel();
  cache = await tempDir();
  dir = await tempDir();
  inbox = path.join(dir, "inbox");
  inboxImages = await makeImages([...plain(KNOWN, 3), ...plain(NEW, 5)], 5);
  await placeImages(inboxImages, () => inbox);
  await placeImages(await makeImages(plain(KNOWN, 3), 77), (i) => path.join(dir, "train", i.colour));
  await placeImages(await makeImages(plain(KNOWN, 3), 91), (i) => path.join(dir, "val", i.colour));
  await placeImages(await makeImages(plain(NEW, 3), 93), (i) => path.join(dir, "val-new", i.colour));
  vocabulary = path.join(dir, "nouns.txt");
  const words = [...Object.keys(COLOURS), ...Object.keys(SYNONYMS).filter((w) => Object.keys(COLOURS).includes(SYNONYMS[w]!)), ...TEXT_ONLY_CONCEPTS];
  await writeFile(vocabulary, `# the world's nouns\n${words.join("\n")}\n`);
});

test("detect → discover → add-class --from → recalibrate: two commands from rejected images to named classes", async () => {
  const det = path.join(dir, "knn.json");
  assert.equal((await runCli(["fit", "--method", "knn", "--id", path.join(dir, "train"), "--out", det, ...base(), "--quiet"])).code, 0);
  assert.equal((await runCli(["calibrate", "--detector", det, "--id", path.join(dir, "val"), ...base(), "--quiet"])).code, 0);
  const detected = jsonLines((await runCli(["detect", "--detector", det, inbox, "--json", ...base(), "--quiet"])).stdout);
  const rejected = detected.filter((r) => r["ood"] === true).map((r) => r["input"] as string);
  assert.ok(rejected.length >= 10, `the detector rejected only ${rejected.length} of the 10 new images`);

  const out = path.join(dir, "discovery.json");
  const report = path.join(dir, "discovery.html");
  const r = await runCli(["discover", inbox, "--detector", det, "--only-ood", "--vocabulary", vocabulary, "--out", out, "--report", report, ...base()]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines[0]!, /^cluster\s+size\s+candidate names\s+cohesion\s+nearest known\s+most typical$/);
  assert.match(r.stdout, /^1\s+5\s+(orange|purple) 0\.\d{3}, /m);
  assert.match(r.stdout, /^2\s+5\s+(orange|purple) 0\.\d{3}, /m);
  assert.match(r.stderr, /images clustered \(\d+ the detector accepts left out\): 2 new clusters \(estimated by silhouette; tried k = /);
  assert.match(r.stderr, new RegExp(`next: clip-ood detector add-class ${det.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} --from .* --clusters 1,2`));
  const discovery = JSON.parse(await readFile(out, "utf8")) as { format: string; clusters: { id: number; candidates: { name: string }[]; members: { input: string }[] }[]; detector: { file: string; method: string } };
  assert.equal(discovery.format, "clip-ood-discovery");
  assert.deepEqual(discovery.detector.method, "knn");
  for (const c of discovery.clusters) for (const m of c.members) assert.ok(path.isAbsolute(m.input), "members are absolute paths, for add-class from anywhere");
  assert.match(await readFile(report, "utf8"), /data-testid="cluster"/);
  const orange = discovery.clusters.find((c) => c.candidates[0]!.name === "orange")!;
  const purple = discovery.clusters.find((c) => c.candidates[0]!.name === "purple")!;

  const add = await runCli(["detector", "add-class", det, "--from", out, "--name", `${purple.id}=violet`, ...base()]);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stderr, new RegExp(`orange \\(cluster ${orange.id}, 5 images as shots\\)`));
  assert.match(add.stderr, new RegExp(`violet \\(cluster ${purple.id}, 5 images as shots\\)`));
  assert.match(add.stderr, /^added .*: 5 classes\.$/m);
  assert.match(add.stderr, /The threshold was kept; recalibrate on validation images of every class, the new ones included: clip-ood calibrate --detector/);
  const shown = JSON.parse((await runCli(["detector", "show", det])).stdout) as { classes: string[] };
  // Class folders come in sorted order; the clusters follow in their ids' order.
  assert.deepEqual(shown.classes.slice(0, 3), [...KNOWN].sort());
  assert.deepEqual(new Set(shown.classes.slice(3)), new Set(["orange", "violet"]));

  const recal = await runCli(["calibrate", "--detector", det, "--id", path.join(dir, "val"), "--id", path.join(dir, "val-new"), ...base(), "--quiet"]);
  assert.equal(recal.code, 0, recal.stderr);
  const after = jsonLines((await runCli(["detect", "--detector", det, path.join(dir, "val-new"), "--json", ...base(), "--quiet"])).stdout);
  assert.equal(after.length, 6);
  for (const a of after) {
    assert.equal(a["ood"], false, `${String(a["input"])} is still rejected`);
    assert.equal(a["label"], path.basename(a["input"] as string).startsWith("orange") ? "orange" : "violet");
  }
  // Adding the same clusters again is refused: the classes are there already.
  const again = await runCli(["detector", "add-class", det, "--from", out, "--clusters", String(orange.id), ...base()]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /the detector already has "orange" \(cluster \d's name\)/);
});

test("discover --json: one line per cluster and known class, then a summary", async () => {
  const r = await runCli(["discover", inbox, "--classes", KNOWN.join(","), "--vocabulary", vocabulary, "--json", "--seed", "3", ...base(), "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(r.stdout);
  const kinds = rows.map((x) => x["kind"]);
  assert.deepEqual(kinds, ["cluster", "cluster", "known", "known", "known", "summary"]);
  const cluster = rows[0]!;
  assert.deepEqual(Object.keys(cluster), ["kind", "id", "size", "candidates", "typical", "atypical", "cohesion", "nearestKnown", "members"]);
  assert.equal((cluster["members"] as string[]).length, cluster["size"]);
  const summary = rows.at(-1)!;
  assert.equal(summary["seed"], 3);
  assert.deepEqual((summary["k"] as { new: number }).new, 2);
  assert.equal(summary["detector"], null);
  assert.equal(r.stderr, "");
});

test("discover --labels: clustering and naming accuracy over seeds, mean ± std", async () => {
  const truth = path.join(dir, "truth.txt");
  await writeFile(truth, inboxImages.map((i) => `${path.join(inbox, path.basename(i.file))}\t${i.colour}`).join("\n") + "\n");
  const r = await runCli(["discover", inbox, "--classes", KNOWN.join(","), "--vocabulary", vocabulary, "--labels", truth, "--seeds", "2", ...base(), "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^metric \(%\)\s+mean\s+±std\s+over seeds 0,1$/m);
  for (const m of ["accuracy, all", "accuracy, old classes", "accuracy, new classes", "naming, top-1", "naming, top-3"]) assert.match(r.stdout, new RegExp(`^${m}\\s+100\\.0\\s+0\\.0`, "m"));
  const json = jsonLines((await runCli(["discover", inbox, "--classes", KNOWN.join(","), "--vocabulary", vocabulary, "--labels", truth, "--seeds", "2", "--json", ...base(), "--quiet"])).stdout);
  const scores = json.find((x) => x["kind"] === "scores")!;
  assert.deepEqual(scores["seeds"], [0, 1]);
  assert.deepEqual(scores["new"], { mean: 1, std: 0 });
  assert.equal(scores["images"], inboxImages.length);
  const misplaced = await runCli(["discover", inbox, "--classes", "red", "--seeds", "2", ...base()]);
  assert.equal(misplaced.code, 2);
  assert.match(misplaced.stderr, /--seeds applies to --labels only/);
});

test("nothing new: 'no new classes', exit 0, and the file still written", async () => {
  const out = path.join(dir, "nothing.json");
  const r = await runCli(["discover", path.join(dir, "val"), "--classes", KNOWN.join(","), "--vocabulary", vocabulary, "--out", out, ...base()]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /every image fits a known class \(red, green, blue\): no new classes\./);
  assert.match(r.stdout, /^known class\s+size$/m);
  const saved = JSON.parse(await readFile(out, "utf8")) as { clusters: unknown[]; note: string };
  assert.equal(saved.clusters.length, 0);
  const add = await runCli(["detector", "add-class", path.join(dir, "knn.json"), "--from", out, ...base()]);
  assert.equal(add.code, 2);
});

test("bad input: clear messages, exit 2, nothing half-written", async () => {
  const out = path.join(dir, "bad.json");
  const expectFail = async (args: string[], message: RegExp) => {
    const r = await runCli(["discover", ...args, "--out", out, ...base()]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /hint: /);
    await assert.rejects(stat(out), "no discovery file was written");
  };
  const empty = path.join(dir, "empty.txt");
  await writeFile(empty, "# nothing\n\n");
  await expectFail([inbox, "--classes", "red", "--vocabulary", empty], /vocabulary .*empty\.txt holds no words/);
  const binary = path.join(dir, "vocab.png");
  await writeFile(binary, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]));
  await expectFail([inbox, "--classes", "red", "--vocabulary", binary], /vocabulary .*vocab\.png is not UTF-8 text/);
  await expectFail([path.join(inbox, path.basename(inboxImages[0]!.file)), "--classes", "red", "--vocabulary", vocabulary], /one image cannot be clustered/);
  await expectFail([inbox, "--classes", "red", "--vocabulary", vocabulary, "--k", "40"], /19 images cannot form 40 clusters/);
  await expectFail([inbox, "--vocabulary", vocabulary], /discover needs the known classes: --detector or --classes/);
  await expectFail([inbox, "--classes", "red", "--only-ood", "--vocabulary", vocabulary], /--only-ood keeps the images a detector rejects, and no detector was given/);
  await expectFail([inbox, "--classes", "red", "--k-method", "gcd", "--vocabulary", vocabulary], /GCD's estimate of k scores the clustering of labelled images/);
});

test("add-class --from refuses a discovery of another detector or model, and leaves the detector as it was", async () => {
  const a = path.join(dir, "a.json");
  const b = path.join(dir, "b.json");
  assert.equal((await runCli(["fit", "--classes", "red,green", "--out", a, ...base(), "--quiet"])).code, 0);
  assert.equal((await runCli(["fit", "--classes", "red,blue", "--out", b, ...base(), "--quiet"])).code, 0);
  const out = path.join(dir, "from-a.json");
  assert.equal((await runCli(["discover", inbox, "--detector", a, "--vocabulary", vocabulary, "--out", out, ...base(), "--quiet"])).code, 0);
  const before = await readFile(b);
  const r = await runCli(["detector", "add-class", b, "--from", out, ...base()]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /was made against another detector \(.*a\.json\): a detector with class green, which .*b\.json lacks/);
  assert.deepEqual(await readFile(b), before, "the detector file is untouched");
  const foreign = JSON.parse(await readFile(out, "utf8")) as { model: { id: string } };
  foreign.model.id = "openai/clip-vit-base-patch32";
  const other = path.join(dir, "other-model.json");
  await writeFile(other, JSON.stringify(foreign));
  const m = await runCli(["detector", "add-class", a, "--from", other, ...base()]);
  assert.equal(m.code, 3);
  assert.match(m.stderr, /was made with model openai\/clip-vit-base-patch32, .*a\.json is for model/);
  const names = await runCli(["detector", "add-class", a, "--from", out, "--name", "fox", ...base()]);
  assert.equal(names.code, 2);
  assert.match(names.stderr, /--name "fox" is not <cluster>=<name>/);
  const both = await runCli(["detector", "add-class", a, "yellow", "--from", out, ...base()]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /the class names yellow cannot go with it/);
});
