/**
 * Open-world discovery on the generated world: held-out colours among known ones must come back as
 * clusters, named by the right world words, with the known images kept in their classes and k found;
 * then growing a detector from the discovery; the discovery file; and the refusals.
 *
 * Every image of these worlds is plain (one texture): in this world a colour and a texture weigh the
 * same in an embedding, so images of mixed textures form colour-and-texture clusters (docs/DISCOVERY.md,
 * "The tests' worlds"), and "plain" would name every cluster equally. The vocabulary is the world's
 * nouns, colour names, their synonyms and the text-only concepts, as a noun vocabulary such as
 * WordNet's would give.
 */
import assert from "node:assert/strict";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import { COLOURS, SYNONYMS, TEXT_ONLY_CONCEPTS } from "../scripts/world.js";
import { ClipModel } from "../src/clip.js";
import { addDiscoveredClasses, checkDiscoveryFits, chosenClusters } from "../src/discover/add-discovered.js";
import { discover, embedForDiscovery, lowOutliers } from "../src/discover/discover.js";
import { estimateK } from "../src/discover/estimate-k.js";
import { loadDiscovery, parseDiscovery, saveDiscovery, serializeDiscovery } from "../src/discover/discovery-file.js";
import { scoreDiscovery } from "../src/discover/evaluate.js";
import { detectorFingerprint } from "../src/discover/fingerprint.js";
import { renderDiscoveryPage, writeDiscoveryReport } from "../src/discover/report.js";
import type { DiscoverOptions, DiscoveryResult, EmbeddedInputs } from "../src/discover/types.js";
import { parseVocabulary, withoutKnownNames } from "../src/discover/vocabulary.js";
import { minimizeBounded } from "../src/maths/optimise/brent.js";
import { stackRows } from "../src/maths/vectors.js";
import { buildDetector } from "../src/ood/build.js";
import { calibrate, predictBatch } from "../src/ood/detector.js";
import type { Detector } from "../src/ood/detector.js";
import type { KnnState } from "../src/ood/feature-space/knn.js";
import type { MahalanobisState } from "../src/ood/feature-space/mahalanobis.js";
import { openEmbeddingStore } from "../src/store/open.js";
import { loadClasses } from "../src/text/classes.js";
import { rejectsWithCode } from "./support/assertions.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";
import type { WorldImage } from "./support/model.js";

const KNOWN = ["red", "green", "blue", "yellow"];
const NEW = ["orange", "purple", "pink"];
const VOCABULARY = [...Object.keys(COLOURS), ...Object.keys(SYNONYMS).filter((w) => Object.keys(COLOURS).includes(SYNONYMS[w]!)), ...TEXT_ONLY_CONCEPTS];

let model: ClipModel;
let world: WorldImage[];
let embedded: EmbeddedInputs;
let labelled: { embeddings: EmbeddedInputs["embeddings"]; labels: Int32Array };
let truth: Map<string, string>;

const plain = (colours: readonly string[], n: number) => colours.flatMap((colour) => Array.from({ length: n }, () => ({ colour, texture: "plain" as const })));

async function embed(images: readonly WorldImage[]): Promise<EmbeddedInputs> {
  const rows: Float32Array[] = [];
  for await (const r of model.embedImages(images.map((i) => i.file))) rows.push(r.embedding!);
  return { inputs: images.map((i) => i.file), embeddings: stackRows(rows) };
}

const classes = (names: readonly string[]) => names.map((label) => ({ label, names: [label], descriptions: [] }));
const options = (extra: Partial<DiscoverOptions> = {}): DiscoverOptions => ({ classes: classes(KNOWN), vocabulary: VOCABULARY, templates: ["a photo of a {}"], ...extra });

before(async () => {
  model = await ClipModel.load({ model: await makeModel(), cacheDir: await tempDir(), threads: 1 });
  world = await makeImages([...plain(KNOWN, 4), ...plain(NEW, 6)], 5);
  embedded = await embed(world);
  const known = await makeImages(plain(KNOWN, 3), 77);
  labelled = { embeddings: (await embed(known)).embeddings, labels: Int32Array.from(known.map((i) => KNOWN.indexOf(i.colour))) };
  truth = new Map(world.map((i) => [i.file, i.colour]));
});

function checkWorld(r: DiscoveryResult, what: string): void {
  assert.ok(Math.abs(r.k.new - NEW.length) <= 1, `${what}: k = ${r.k.new}, not within 1 of ${NEW.length} (tried ${JSON.stringify(r.k.tried)})`);
  const s = scoreDiscovery(r, truth);
  assert.ok(s.new !== null && s.new >= 0.9, `${what}: new-class accuracy ${s.new}`);
  assert.ok(s.namingTop1 !== null && s.namingTop1 >= 0.8, `${what}: naming top-1 ${s.namingTop1}: ${r.clusters.map((c) => c.candidates[0]?.name).join(", ")}`);
  // Known images stay in their known class, and no new image is taken for a known one.
  for (const a of r.known) for (const m of a.members) assert.equal(truth.get(m.input), a.label, `${what}: ${m.input} in known ${a.label}`);
  for (const c of r.clusters) for (const m of c.members) assert.ok(NEW.includes(truth.get(m.input)!), `${what}: known image ${m.input} in new cluster ${c.id}`);
  assert.equal(r.known.reduce((s, a) => s + a.members.length, 0), KNOWN.length * 4, `${what}: every known image in a known class`);
}

test("discover finds the held-out colours as clusters, names them, keeps the known images in their classes and finds k (known classes by name, seeds 0-2)", async () => {
  for (const seed of [0, 1, 2]) {
    const r = await discover(model, embedded, options({ seed }));
    checkWorld(r, `seed ${seed}`);
    assert.equal(r.k.method, "silhouette");
    assert.deepEqual(r.knownClasses, KNOWN);
    assert.deepEqual(new Set(r.clusters.map((c) => c.candidates[0]!.name)), new Set(NEW), "each held-out colour named by its own word");
    for (const c of r.clusters) {
      assert.equal(c.candidates.length, 3);
      assert.ok(c.candidates.every((n) => !KNOWN.includes(n.name)), "known class names are never candidates");
      assert.ok(c.candidates[0]!.score >= c.candidates[1]!.score && c.candidates[1]!.score >= c.candidates[2]!.score);
      assert.equal(c.size, c.members.length);
      assert.ok(c.cohesion > 0.9 && c.cohesion <= 1 + 1e-6);
      assert.deepEqual(c.typical, c.members.slice(0, 5).map((m) => m.input));
      assert.equal(c.atypical[0], c.members.at(-1)!.input, "the least typical first");
      assert.ok(c.nearestKnown !== null && KNOWN.includes(c.nearestKnown.label));
      assert.equal(c.centroid.length, embedded.embeddings.cols);
    }
    assert.deepEqual(r.clusters.map((c) => c.id), [1, 2, 3]);
  }
});

test("with labelled known images (--id) the known classes are fixed clusters; both k methods run, silhouette finds k", async () => {
  const r = await discover(model, embedded, options({ labelled }));
  checkWorld(r, "labelled");
  const gcd = await discover(model, embedded, options({ labelled, kMethod: "gcd" }));
  assert.equal(gcd.k.method, "gcd");
  assert.ok(gcd.k.tried.length >= 2, "Brent's search tried several k");
  assert.ok(gcd.k.tried.every((t) => t.score >= 0 && t.score <= 1), "each k is scored by the labelled images' clustering accuracy");
  await assert.rejects(discover(model, embedded, options({ kMethod: "gcd" })), rejectsWithCode("USAGE", "labelled images", "none were given"));
});

test("the vocabulary's features are cached per model and prompt list, as NegLabel's candidates are", async () => {
  const cacheDir = await tempDir();
  await discover(model, embedded, options({ cacheDir, templates: ["a picture of a {}"] }));
  const files = await readdir(path.join(cacheDir, "vocabulary"));
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^candidates-[0-9a-f]{24}\.f32$/);
  const words = withoutKnownNames(VOCABULARY, classes(KNOWN)).length;
  assert.equal((await stat(path.join(cacheDir, "vocabulary", files[0]!))).size, words * embedded.embeddings.cols * 4);
  await discover(model, embedded, options({ cacheDir, templates: ["art of a {}"] }));
  assert.equal((await readdir(path.join(cacheDir, "vocabulary"))).length, 2, "other templates, other prompts, another file");
});

test("the same seed gives the same discovery; --k fixes the number of clusters", async () => {
  const a = await discover(model, embedded, options({ seed: 7 }));
  const b = await discover(model, embedded, options({ seed: 7 }));
  assert.equal(serializeDiscovery(a), serializeDiscovery(b));
  const given = await discover(model, embedded, options({ k: 7 }));
  assert.equal(given.k.method, "given");
  assert.equal(given.k.tried.length, 0);
  // Seven clusters for seven colours: the known ones are recognised by name, the three new ones remain.
  checkWorld(given, "k = 7");
});

test("only new images, as --only-ood leaves them: every cluster is new, named, and no known class takes one", async () => {
  const onlyNew = await makeImages(plain([...NEW, "cyan"], 5), 9);
  const r = await discover(model, await embed(onlyNew), options());
  assert.equal(r.k.new, 4);
  assert.equal(r.known.length, 0);
  const names = new Map(onlyNew.map((i) => [i.file, i.colour]));
  for (const c of r.clusters) {
    const colours = new Set(c.members.map((m) => names.get(m.input)));
    assert.equal(colours.size, 1, `cluster ${c.id} mixes ${[...colours].join(", ")}`);
    assert.equal(c.candidates[0]!.name, [...colours][0]);
  }
});

test("nothing new is an answer, not an error: every cluster is a known class", async () => {
  const knownOnly = world.filter((i) => KNOWN.includes(i.colour));
  const r = await discover(model, await embed(knownOnly), options());
  assert.equal(r.clusters.length, 0);
  assert.equal(r.k.new, 0);
  assert.match(r.note!, /no new classes/);
  assert.equal(r.known.length, KNOWN.length);
});

test("--only-ood keeps the images a calibrated detector rejects; none rejected is 'no new classes'", async () => {
  const known = await makeImages(plain(KNOWN, 3), 31);
  const fit = await embed(known);
  let detector = await buildDetector(model, {
    method: "knn",
    classes: await loadClasses(KNOWN.join(",")),
    templates: ["a photo of a {}"],
    fitData: { embeddings: fit.embeddings, labels: Int32Array.from(known.map((i) => KNOWN.indexOf(i.colour))) },
  });
  const val = await embed(await makeImages(plain(KNOWN, 3), 44));
  detector = calibrate(detector, Array.from((await predictBatch(detector, val.embeddings)).map((d) => d.score)), { tpr: 0.95 });
  const r = await discover(model, embedded, { detector, vocabulary: VOCABULARY, onlyOod: true, detectorFile: "det.json" });
  const rejected = (await predictBatch(detector, embedded.embeddings)).filter((d) => d.ood).length;
  assert.equal(r.inputs, rejected);
  assert.equal(r.keptInDistribution, world.length - rejected);
  assert.ok(r.keptInDistribution >= 14, `the detector accepted only ${r.keptInDistribution} of the 16 known images`);
  assert.equal(r.k.new, NEW.length);
  assert.deepEqual(r.detector, { file: "det.json", method: "knn", fingerprint: detectorFingerprint(detector) });
  // knn scores its own fitting images at distance 0, the best score there is: it rejects none of them.
  const none = await discover(model, fit, { detector, vocabulary: VOCABULARY, onlyOod: true });
  assert.match(none.note!, /the detector rejects none of the 12 images at its threshold: no new classes/);
  assert.equal(none.clusters.length, 0);
  assert.equal(none.keptInDistribution, 12);
  await assert.rejects(discover(model, embedded, { ...options(), onlyOod: true }), rejectsWithCode("USAGE", "--only-ood", "no detector"));
  const uncalibrated = { ...detector, threshold: undefined };
  await assert.rejects(discover(model, embedded, { detector: uncalibrated, vocabulary: VOCABULARY, onlyOod: true }), rejectsWithCode("USAGE", "no threshold"));
});

test("bad input: one image, fewer images than clusters, an empty vocabulary: clear refusals", async () => {
  const one = { inputs: [embedded.inputs[0]!], embeddings: stackRows([embedded.embeddings.data.slice(0, embedded.embeddings.cols)]) };
  await assert.rejects(discover(model, one, options()), rejectsWithCode("INPUT", "one image cannot be clustered"));
  const three = { inputs: embedded.inputs.slice(0, 3), embeddings: stackRows([0, 1, 2].map((i) => embedded.embeddings.data.slice(i * embedded.embeddings.cols, (i + 1) * embedded.embeddings.cols))) };
  await assert.rejects(discover(model, three, options({ k: 5 })), rejectsWithCode("USAGE", "3 images cannot form 5 clusters"));
  await assert.rejects(discover(model, embedded, options({ vocabulary: ["Red", "green"] })), rejectsWithCode("INPUT", "holds no word besides the known class names"));
  await assert.rejects(discover(model, embedded, options({ k: -1 })), rejectsWithCode("USAGE", "whole number"));
  await assert.rejects(discover(model, { inputs: [], embeddings: stackRows([], embedded.embeddings.cols) }, options()), rejectsWithCode("INPUT", "no images to cluster"));
});

test("vocabulary files: words one per line; empty and binary files are refused", () => {
  const utf8 = (s: string) => new TextEncoder().encode(s);
  assert.deepEqual(parseVocabulary(utf8("\uFEFFfox\n# a comment\n\n  red deer \r\nfox\ncafe\u0301\n"), "v.txt"), ["fox", "red deer", "café"]);
  assert.throws(() => parseVocabulary(utf8("\n# only comments\n  \n"), "empty.txt"), rejectsWithCode("INPUT", "empty.txt holds no words"));
  assert.throws(() => parseVocabulary(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]), "x.png"), rejectsWithCode("INPUT", "x.png is not"));
  assert.throws(() => parseVocabulary(Uint8Array.from([0x66, 0x6f, 0x78, 0xff, 0xfe]), "latin1.txt"), rejectsWithCode("INPUT", "latin1.txt is not UTF-8 text"));
  assert.deepEqual(withoutKnownNames(["Fox", "dog", "puppy", "cat"], [{ label: "dog", names: ["dog", "Puppy"], descriptions: [] }]), ["Fox", "cat"]);
});

test("a member that fits its cluster badly is set apart; a tight cluster's ordinary spread is not", () => {
  assert.deepEqual(lowOutliers([0.9, 0.91, 0.89, 0.9, 0.92, 0.5]), [5]);
  assert.deepEqual(lowOutliers([0.9999, 0.9998, 0.9999, 0.9997, 0.998]), [], "cosines within 0.05 of the centroid always fit");
  assert.deepEqual(lowOutliers([0.9, 0.5, 0.4]), [], "fewer than 5 members: no quartiles");
});

test("scoring a discovery by hand: one Hungarian map, old/new shares, naming with synonyms", () => {
  const member = (input: string) => ({ input, cosine: 1 });
  const cluster = (id: number, inputs: string[], names: string[]) => ({
    id, size: inputs.length, members: inputs.map(member), candidates: names.map((name) => ({ name, score: 0.5 })), typical: [], atypical: [], cohesion: 1, nearestKnown: null, centroid: [1, 0],
  });
  const r: DiscoveryResult = {
    format: "clip-ood-discovery", version: 1, model: { id: "m", dtype: "fp32", dim: 2, key: "m#k" }, detector: null, knownClasses: ["red"], templates: [], vocabulary: { source: "list", words: 3 },
    inputs: 8, keptInDistribution: 0, failed: [], k: { new: 2, known: 1, method: "given", tried: [] }, seed: 0,
    // Cluster 1: three foxes and a deer; cluster 2: two deer named "stag" first (a synonym) and a red image.
    clusters: [cluster(1, ["f1", "f2", "f3", "d1"], ["wolf", "fox", "dog"]), cluster(2, ["d2", "d3", "r2"], ["stag", "deer", "elk"])],
    known: [{ label: "red", members: [member("r1")] }],
    unassigned: [{ input: "f4", nearest: { cluster: 1 }, cosine: 0.2 }],
  };
  const t = new Map([["f1", "fox"], ["f2", "fox"], ["f3", "fox"], ["f4", "fox"], ["d1", "deer"], ["d2", "deer"], ["d3", "deer"], ["r1", "red"], ["r2", "red"]]);
  const s = scoreDiscovery(r, t, { synonyms: new Map([["deer", ["stag"]]]) });
  // Map: red→known red (1 right), fox→cluster 1 (f1-f4: 4 right), deer→cluster 2 (d2, d3: 2 right); 7 of 9.
  assert.equal(s.images, 9);
  assert.equal(s.all, 7 / 9);
  assert.equal(s.old, 1 / 2);
  assert.equal(s.new, 6 / 7);
  // Cluster 1 is mostly fox: "wolf" first, "fox" second (top-3 only); cluster 2 mostly deer: "stag" is a synonym.
  assert.equal(s.namingTop1, 1 / 2);
  assert.equal(s.namingTop3, 1);
});

test("discovery.json round-trips, is written whole, and a damaged or foreign file is refused with the field named", async () => {
  const r = await discover(model, embedded, options());
  const dir = await tempDir();
  const file = path.join(dir, "discovery.json");
  await saveDiscovery(r, file);
  assert.deepEqual(await loadDiscovery(file), r);
  assert.deepEqual(parseDiscovery(serializeDiscovery(r), "x"), r);
  const json = JSON.parse(serializeDiscovery(r)) as Record<string, unknown>;
  assert.throws(() => parseDiscovery(JSON.stringify({ ...json, format: "clip-ood-detector" }), "det.json"), rejectsWithCode("INPUT", "det.json is not a discovery file"));
  assert.throws(() => parseDiscovery("{", "half.json"), rejectsWithCode("INPUT", "half.json is not JSON"));
  const clusters = json["clusters"] as Record<string, unknown>[];
  assert.throws(() => parseDiscovery(JSON.stringify({ ...json, clusters: [{ ...clusters[0], members: "x" }] }), "d.json"), rejectsWithCode("INPUT", "d.json: clusters[0].members is \"x\", not a list"));
  assert.throws(() => parseDiscovery(JSON.stringify({ ...json, clusters: [clusters[0], clusters[0]] }), "d.json"), rejectsWithCode("INPUT", "repeat a cluster id"));
  assert.throws(() => parseDiscovery(JSON.stringify({ ...json, version: 2 }), "d.json"), rejectsWithCode("INPUT", "version 2"));
});

test("the HTML report shows each cluster's thumbnails and names, escaped, offline", async () => {
  const r = await discover(model, embedded, options());
  const file = path.join(await tempDir(), "sub", "discovery.html");
  await writeDiscoveryReport(r, file, { seeds: [0, 1], metrics: [{ name: "new", mean: 1, std: 0 }] });
  const html = await readFile(file, "utf8");
  assert.equal((html.match(/data-testid="cluster"/g) ?? []).length, r.clusters.length);
  assert.ok((html.match(/<img class="thumb" src="data:image\/jpeg;base64,/g) ?? []).length >= r.clusters.length * 2);
  assert.match(html, /default-src 'none'/);
  for (const c of r.clusters) assert.ok(html.includes(`Cluster ${c.id}: ${c.candidates[0]!.name}`));
  assert.match(html, /id="scores"/);
  const hostile = { ...r, clusters: r.clusters.map((c) => ({ ...c, candidates: [{ name: "<script>x</script>", score: 1 }] })) };
  const page = renderDiscoveryPage(hostile, new Map());
  assert.ok(!page.includes("<script>x"));
  assert.ok(page.includes("&#60;script&#62;x"));
});

async function mcmDetector(names: readonly string[]): Promise<Detector> {
  return buildDetector(model, { method: "mcm", classes: await loadClasses(names.join(",")), templates: ["a photo of a {}"] });
}

test("addDiscoveredClasses: clusters become classes named by their best candidate or the user's name; the threshold is kept", async () => {
  const detector = calibrate(await mcmDetector(KNOWN), [0.5, 0.6, 0.7], { tpr: 0.9 });
  const r = await discover(model, embedded, { detector, vocabulary: VOCABULARY });
  const orange = r.clusters.find((c) => c.candidates[0]!.name === "orange")!;
  const purple = r.clusters.find((c) => c.candidates[0]!.name === "purple")!;
  const { detector: grown, added } = await addDiscoveredClasses(detector, r, { clusters: [orange.id, purple.id], names: { [purple.id]: "violet" } }, model);
  assert.deepEqual(grown.classes.map((c) => c.label), [...KNOWN, "orange", "violet"]);
  assert.deepEqual(added, [{ cluster: orange.id, label: "orange", shots: 0 }, { cluster: purple.id, label: "violet", shots: 0 }]);
  assert.deepEqual(grown.threshold, detector.threshold);
  // The grown detector now calls the orange images orange.
  const orangeRows = embedded.inputs.flatMap((f, i) => (truth.get(f) === "orange" ? [i] : []));
  const d = await predictBatch(grown, stackRows(orangeRows.map((i) => embedded.embeddings.data.slice(i * embedded.embeddings.cols, (i + 1) * embedded.embeddings.cols))));
  assert.ok(d.every((x) => x.label === "orange"));
  // Calibrating or adding classes keeps the identity a discovery checks: the rest can be added later.
  checkDiscoveryFits(grown, r);
  const pink = r.clusters.find((c) => c.candidates[0]!.name === "pink")!;
  const again = await addDiscoveredClasses(grown, r, { clusters: [pink.id] }, model);
  assert.equal(again.detector.classes.at(-1)!.label, "pink");
  await assert.rejects(addDiscoveredClasses(grown, r, { clusters: [orange.id] }, model), rejectsWithCode("CLASSES", "already has orange"));
});

test("few-shot detectors take the clusters' images as shots: knn's bank, mahalanobis' means", async () => {
  const known = await makeImages(plain(KNOWN, 2), 51);
  const fit = await embed(known);
  const fitData = { embeddings: fit.embeddings, labels: Int32Array.from(known.map((i) => KNOWN.indexOf(i.colour))) };
  for (const method of ["knn", "mahalanobis"] as const) {
    const detector = await buildDetector(model, { method, classes: await loadClasses(KNOWN.join(",")), templates: ["a photo of a {}"], fitData });
    const r = await discover(model, embedded, { detector, vocabulary: VOCABULARY });
    const { detector: grown, added } = await addDiscoveredClasses(detector, r, {}, model);
    const shots = r.clusters.reduce((s, c) => s + c.size, 0);
    assert.deepEqual(added.map((a) => a.shots), r.clusters.map((c) => c.size));
    assert.equal(grown.fitRows, fit.embeddings.rows + shots);
    if (method === "knn") assert.equal((grown.fitted as KnnState).bank.length, (fit.embeddings.rows + shots) * fit.embeddings.cols);
    else {
      const m = grown.fitted as MahalanobisState;
      assert.equal(m.classes, KNOWN.length + r.clusters.length);
      assert.deepEqual(m.precision, (detector.fitted as MahalanobisState).precision, "the tied covariance is kept");
    }
    // The new classes' images now score as in-distribution as the known ones do.
    const newRows = embedded.inputs.flatMap((f, i) => (NEW.includes(truth.get(f)!) ? [i] : []));
    const x = stackRows(newRows.map((i) => embedded.embeddings.data.slice(i * embedded.embeddings.cols, (i + 1) * embedded.embeddings.cols)));
    const before = await predictBatch(detector, x);
    const after = await predictBatch(grown, x);
    after.forEach((a, i) => assert.ok(a.score > before[i]!.score, `${method}: ${a.score} ≤ ${before[i]!.score}`));
  }
});

test("a discovery from another model or another detector is refused, naming both", async () => {
  const detector = await mcmDetector(KNOWN);
  const r = await discover(model, embedded, { detector, vocabulary: VOCABULARY, detectorFile: "pets.json" });
  const otherModel: DiscoveryResult = { ...r, model: { ...r.model, id: "openai/clip-vit-large-patch14" } };
  assert.throws(() => checkDiscoveryFits(detector, otherModel), rejectsWithCode("MODEL_FOLDER", "made with model openai/clip-vit-large-patch14"));
  await assert.rejects(addDiscoveredClasses(detector, otherModel, {}, model), rejectsWithCode("MODEL_FOLDER"));
  assert.throws(() => checkDiscoveryFits(detector, { ...r, model: { ...r.model, dtype: "q8" } }), rejectsWithCode("MODEL_FOLDER", "q8 embeddings"));
  const other = await mcmDetector(["red", "green", "cyan"]);
  assert.throws(() => checkDiscoveryFits(other, r), rejectsWithCode("USAGE", "made against another detector (pets.json)", "blue, yellow, which the detector lacks"));
  const energy = { ...detector, method: "energy" as const };
  assert.throws(() => checkDiscoveryFits(energy, r), rejectsWithCode("USAGE", "a mcm detector, the detector is energy"));
  const retemplated = await buildDetector(model, { method: "mcm", classes: await loadClasses(KNOWN.join(",")), templates: ["art of the {}"] });
  assert.throws(() => checkDiscoveryFits(retemplated, r), rejectsWithCode("USAGE", "other text features"));
  assert.throws(() => chosenClusters(r, { clusters: [9] }), rejectsWithCode("USAGE", "no cluster 9"));
  assert.throws(() => chosenClusters(r, { clusters: [1], names: { 2: "x" } }), rejectsWithCode("USAGE", "a name is given for cluster 2"));
  assert.throws(() => chosenClusters(r, { names: { 1: "fox", 2: "Fox" } }), rejectsWithCode("CLASSES", "would both be added as"));
  const empty = { ...r, clusters: [], note: "every image fits a known class: no new classes" };
  assert.throws(() => chosenClusters(empty, {}), rejectsWithCode("USAGE", "found no new clusters"));
});

test("the discovery file of a real run is what `detector add-class --from` reads back", async () => {
  const r = await discover(model, embedded, options());
  const file = path.join(await tempDir(), "d.json");
  await writeFile(file, serializeDiscovery(r));
  assert.equal((await loadDiscovery(file)).clusters.length, r.clusters.length);
});

test("GCD's k search asks for exactly the K that Brent's method would, and ends where it ends", async () => {
  // Three labelled classes and three unlabelled ones, as 2-D blobs on the unit circle.
  const rows: Float32Array[] = [];
  const fixed: number[] = [];
  for (let c = 0; c < 6; c++) {
    for (let i = 0; i < 8; i++) {
      const a = (c * Math.PI) / 3 + (i - 3.5) * 0.01;
      rows.push(Float32Array.of(Math.cos(a), Math.sin(a)));
      fixed.push(c < 3 && i < 4 ? c : -1);
    }
  }
  const input = { x: stackRows(rows), fixed: Int32Array.from(fixed), known: 3 };
  const found = await estimateK(input, { method: "gcd", kMax: 8, seed: 0, restarts: 2 });
  const score = new Map(found.tried.map((t) => [t.k + 3, t.score]));
  const asked: number[] = [];
  const brent = minimizeBounded((x) => {
    const total = Math.trunc(x);
    if (!asked.includes(total)) asked.push(total);
    return -score.get(total)!;
  }, 3, 11);
  assert.deepEqual(found.tried.map((t) => t.k + 3), asked, "the K clustered, in Brent's order");
  assert.equal(found.k, Math.trunc(brent.x) - 3);
  assert.ok(found.tried.every((t) => t.score > 0 && t.score <= 1));
});

test("discover on image paths embeds through the store (each image stored once, read back as the model made it), with the same result; unreadable images are listed", async () => {
  const dir = await tempDir();
  const store = await openEmbeddingStore(path.join(dir, "store.sqlite"));
  try {
    const broken = path.join(dir, "broken.png");
    await writeFile(broken, "not an image");
    const paths = [...world.map((i) => i.file), broken];
    const failures: string[] = [];
    const first = await discover(model, paths, options({ store, onFailure: (input) => failures.push(input) }));
    assert.deepEqual(failures, [broken]);
    assert.deepEqual(first.failed.map((f) => f.input), [broken]);
    assert.equal(first.inputs, world.length);
    const again = await embedForDiscovery(model, world.map((i) => i.file), { store });
    assert.equal((await store.stats()).embeddings, world.length, "every image stored once");
    assert.deepEqual(again.embeddings.data, embedded.embeddings.data, "the stored embeddings are the model's");
    assert.equal(serializeDiscovery({ ...first, failed: [] }), serializeDiscovery(await discover(model, embedded, options())));
  } finally {
    await store.close();
  }
});
