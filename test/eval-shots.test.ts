/**
 * eval --shots end to end through the built CLI (`npm run build` first), on a generated world where
 * zero-shot classification is weak by construction and a learned head is not: the classes come in
 * confusable pairs, red (red striped images) with crimson (red checkered), blue (blue striped) with
 * navy (blue checkered). The model is generated with synonymNoise 0, so "crimson" embeds exactly as
 * "red" and "navy" as "blue": each pair's text features are identical, zero-shot classification is
 * constant on a pair, and on these balanced pairs its ID accuracy is at most chance, 50%. The images
 * of a pair differ in texture, which the image embedding carries on directions of its own, so a
 * linear probe separates the pairs from a few examples. The OOD sets are other colours, and red and
 * blue in a texture no class has (plain): MCM cannot tell the latter from the classes by colour,
 * while the probe, trained on striped vs checkered, is unsure between a pair's two classes on them.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import type { Texture } from "../scripts/world.js";
import { jsonLines, runCli } from "./support/cli.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";

/** Each class's images: its colour and texture. */
const CLASSES: Record<string, { colour: string; texture: Texture }> = {
  red: { colour: "red", texture: "striped" },
  crimson: { colour: "red", texture: "checkered" },
  blue: { colour: "blue", texture: "striped" },
  navy: { colour: "blue", texture: "checkered" },
};
/** Fitting examples per class: more than the 8 shots drawn, so the seeds' draws differ. */
const FIT_PER_CLASS = 10;
const ID_PER_CLASS = 4;

let model: string;
let cache: string;
let root: string;

before(async () => {
  model = await makeModel({ dtypes: ["fp32"], synonymNoise: 0 });
  cache = await tempDir();
  root = await tempDir();
  const place = async (specs: { colour: string; texture: Texture; folder: string }[], seed: number, dir: string) => {
    const imgs = await makeImages(specs, seed);
    for (const [i, img] of imgs.entries()) {
      const to = path.join(dir, specs[i]!.folder, path.basename(img.file));
      await mkdir(path.dirname(to), { recursive: true });
      await copyFile(img.file, to);
    }
  };
  const perClass = (n: number) => Object.entries(CLASSES).flatMap(([folder, look]) => Array.from({ length: n }, () => ({ ...look, folder })));
  await place(perClass(FIT_PER_CLASS), 81, path.join(root, "train"));
  await place(perClass(ID_PER_CLASS), 82, path.join(root, "val"));
  await place(["yellow", "green", "white", "gray"].map((colour) => ({ colour, texture: "plain" as const, folder: "" })), 83, path.join(root, "colours"));
  await place(["red", "blue", "red", "blue"].map((colour) => ({ colour, texture: "plain" as const, folder: "" })), 84, path.join(root, "plain"));
});

type Metrics = { auroc: number; fpr95: number; auprIn: number; auprOut: number; detectionAccuracy: number; threshold: number; idAccuracy: number | null };
type Row = Metrics & { method: string; ood: string; shots: number | null; seeds: number | null; n: { id: number; ood: number }; std: Metrics | null };

const evalArgs = () => [
  "eval", "--id", path.join(root, "val"), "--ood", `colours=${path.join(root, "colours")}`, "--ood", `plain=${path.join(root, "plain")}`,
  "--fit", path.join(root, "train"), "--model", model, "--cache-dir", cache, "--threads", "1", "--quiet",
];

test("eval --shots 8: zero-shot is at chance on the confusable pairs, the linear probe recovers, and its AUROC is no worse", async () => {
  const r = await runCli([...evalArgs(), "--methods", "mcm,linear-probe", "--shots", "8", "--seeds", "3", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(r.stdout) as unknown as Row[];
  assert.deepEqual(rows.map((x) => `${x.method}@${x.shots}/${x.ood}`), ["mcm@null/colours", "mcm@null/plain", "mcm@null/average", "linear-probe@8/colours", "linear-probe@8/plain", "linear-probe@8/average"]);
  const mcm = rows.find((x) => x.method === "mcm" && x.ood === "average")!;
  const probe = rows.find((x) => x.method === "linear-probe" && x.ood === "average")!;
  assert.equal(mcm.seeds, null);
  assert.equal(mcm.std, null);
  assert.equal(probe.seeds, 3);
  assert.deepEqual(probe.n, { id: 4 * ID_PER_CLASS, ood: 8 });
  assert.deepEqual(Object.keys(probe.std!).sort(), ["auprIn", "auprOut", "auroc", "detectionAccuracy", "fpr95", "idAccuracy", "threshold"]);
  for (const v of Object.values(probe.std!)) assert.ok(typeof v === "number" && v >= 0, `std ${v}`);
  // Identical text features within each pair: one class per pair wins every image, half of them right.
  assert.ok(mcm.idAccuracy! <= 0.5, `zero-shot ID accuracy ${mcm.idAccuracy}`);
  // Texture directions are orthogonal to each other in the embedding, so 8 shots per class leave a wide margin.
  assert.ok(probe.idAccuracy! >= 0.9, `linear-probe ID accuracy at 8 shots ${probe.idAccuracy}`);
  assert.ok(probe.auroc >= mcm.auroc - 0.02, `linear-probe AUROC ${probe.auroc} vs zero-shot ${mcm.auroc}`);
});

test("eval --shots: a shot count above a class's examples is refused by name; --seeds alone is refused", async () => {
  const short = await runCli([...evalArgs(), "--methods", "mcm,linear-probe", "--shots", `2,${FIT_PER_CLASS + 1}`]);
  assert.equal(short.code, 2, short.stderr);
  assert.match(short.stderr, new RegExp(`--shots ${FIT_PER_CLASS + 1}: class "blue" has only ${FIT_PER_CLASS} fitting examples`));
  const seeds = await runCli([...evalArgs(), "--methods", "mcm,linear-probe", "--seeds", "2"]);
  assert.equal(seeds.code, 2);
  assert.match(seeds.stderr, /--seeds applies to --shots only/);
  const noFit = await runCli([...evalArgs(), "--methods", "mcm", "--shots", "4"]);
  assert.equal(noFit.code, 2);
  assert.match(noFit.stderr, /--shots draws fitting examples from --fit/);
});
