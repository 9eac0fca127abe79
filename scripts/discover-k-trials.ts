/**
 * Which estimate of k recovers the number of new classes on the tests' generated worlds: silhouette or
 * GCD's Brent search on the labelled images' clustering accuracy. Each world holds some colours as
 * known classes (with labelled images, which GCD needs) and others as new ones, all plain (see
 * test/discover.test.ts); each is run with several seeds. Prints one row per world and method: how
 * often k came out exact and within ±1, and the new-class accuracy. docs/DISCOVERY.md quotes it.
 *
 *   npx tsx scripts/discover-k-trials.ts [--seeds 5]
 */
import { parseArgs } from "node:util";
import { COLOURS, SYNONYMS, TEXT_ONLY_CONCEPTS } from "./world.js";
import { ClipModel } from "../src/clip.js";
import { discover } from "../src/discover/discover.js";
import { scoreDiscovery } from "../src/discover/evaluate.js";
import { stackRows } from "../src/maths/vectors.js";
import { makeImages, makeModel, tempDir } from "../test/support/model.js";
import type { WorldImage } from "../test/support/model.js";

const { values } = parseArgs({ options: { seeds: { type: "string", default: "5" } } });
const seeds = Number(values.seeds);
const vocabulary = [...Object.keys(COLOURS), ...Object.keys(SYNONYMS).filter((w) => Object.keys(COLOURS).includes(SYNONYMS[w]!)), ...TEXT_ONLY_CONCEPTS];
const worlds: { known: string[]; unknown: string[]; per: number }[] = [
  { known: ["red", "green", "blue", "yellow"], unknown: ["orange", "purple", "pink"], per: 6 },
  { known: ["red", "green"], unknown: ["blue", "yellow", "orange", "purple", "pink", "cyan"], per: 5 },
  { known: ["red", "green", "blue", "yellow", "orange", "purple"], unknown: ["pink", "cyan"], per: 5 },
  { known: ["red", "yellow", "white"], unknown: ["orange", "pink", "gray", "brown"], per: 8 },
];

const model = await ClipModel.load({ model: await makeModel(), cacheDir: await tempDir(), threads: 1 });
const plain = (colours: readonly string[], n: number) => colours.flatMap((colour) => Array.from({ length: n }, () => ({ colour, texture: "plain" as const })));
async function embed(images: readonly WorldImage[]) {
  const rows: Float32Array[] = [];
  for await (const r of model.embedImages(images.map((i) => i.file))) rows.push(r.embedding!);
  return { inputs: images.map((i) => i.file), embeddings: stackRows(rows) };
}
console.log("| known | new | method | k exact | k within ±1 | k found | new-class accuracy |");
console.log("|---|---|---|---|---|---|---|");
for (const w of worlds) {
  const images = await makeImages([...plain(w.known, w.per), ...plain(w.unknown, w.per)], 3);
  const embedded = await embed(images);
  const id = await makeImages(plain(w.known, 3), 61);
  const labelled = { embeddings: (await embed(id)).embeddings, labels: Int32Array.from(id.map((i) => w.known.indexOf(i.colour))) };
  const truth = new Map(images.map((i) => [i.file, i.colour]));
  for (const kMethod of ["silhouette", "gcd"] as const) {
    const found: number[] = [];
    const acc: number[] = [];
    for (let seed = 0; seed < seeds; seed++) {
      const r = await discover(model, embedded, { classes: w.known.map((label) => ({ label, names: [label], descriptions: [] })), vocabulary, labelled, kMethod, seed, templates: ["a photo of a {}"] });
      found.push(r.k.new);
      acc.push(scoreDiscovery(r, truth).new ?? 0);
    }
    const share = (f: (k: number) => boolean) => `${found.filter(f).length}/${seeds}`;
    const mean = acc.reduce((s, a) => s + a, 0) / acc.length;
    console.log(`| ${w.known.length} | ${w.unknown.length} | ${kMethod} | ${share((k) => k === w.unknown.length)} | ${share((k) => Math.abs(k - w.unknown.length) <= 1)} | ${found.join(", ")} | ${mean.toFixed(3)} |`);
  }
}
await model.close();
