/**
 * Does training the learned heads with synthetic outliers help? A measurement on the generated world,
 * run through the built CLI as a user would (`npm run build` first):
 *
 *   npx tsx scripts/synthetic-outliers.ts [--shots 8] [--seeds 3]
 *
 * In-distribution: red, green and blue images, plain and striped. Fitting data: `--shots` per class
 * (drawn by `eval --shots` over `--seeds` seeds). Two OOD test sets: "far", colours no class or
 * outlier shows (purple, brown, orange, black, gray, white), and "near", the classes' own colours in a
 * texture no class has (checkered). Synthetic outliers: NegLabel's negatives mined from WordNet with the
 * generated text tower (`--outlier-neglabel`), and known outlier images of yellow, pink and cyan in
 * every texture (`--outlier-images`, linear-probe only). Prints one Markdown table (AUROC, FPR95, ID
 * accuracy, mean ± std over the seeds) for docs/OOD-METHODS.md.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { generateModel, writeWorldImages } from "./make-test-model.js";
import { TEXTURES } from "./world.js";
import type { Texture } from "./world.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const shots = arg("--shots", 8);
interface Metrics {
  auroc: number;
  fpr95: number;
  idAccuracy: number | null;
}
interface Row extends Metrics {
  method: string;
  ood: string;
  shots?: number | null;
  std?: Metrics | null;
}
const seeds = arg("--seeds", 3);
const root = await mkdtemp(path.join(os.tmpdir(), "clip-ood-outliers-"));
const cli = path.join(import.meta.dirname, "..", "dist", "cli", "main.js");

try {
  const model = path.join(root, "model");
  await generateModel(model);
  let seed = 5000;
  const images = (dir: string, colours: readonly string[], perColour: number, byClass: boolean, textures: readonly Texture[]) =>
    Promise.all(
      colours.map((colour) =>
        writeWorldImages(
          byClass ? path.join(dir, colour) : dir,
          Array.from({ length: perColour }, (_, i) => ({ colour, texture: textures[i % textures.length]!, seed: seed++, width: 200 + (i % 5) * 30, height: 160 + (i % 3) * 40 })),
        ),
      ),
    );
  const ID = ["red", "green", "blue"];
  const idTextures = ["plain", "striped"] as const;
  await images(path.join(root, "train"), ID, Math.max(shots, 2), true, idTextures);
  await images(path.join(root, "val"), ID, 12, true, idTextures);
  await images(path.join(root, "far"), ["purple", "brown", "orange", "black", "gray", "white"], 6, false, TEXTURES);
  await images(path.join(root, "near"), ID, 6, false, ["checkered"]);
  await images(path.join(root, "outliers"), ["yellow", "pink", "cyan"], 6, false, TEXTURES);

  const common = ["--id", path.join(root, "val"), "--ood", `far=${path.join(root, "far")}`, "--ood", `near=${path.join(root, "near")}`, "--fit", path.join(root, "train"), "--shots", String(shots), "--seeds", String(seeds)];
  const env = { ...process.env, CLIP_OOD_CACHE: path.join(root, "cache") };
  const run = (label: string, args: string[]) => {
    const r = spawnSync(process.execPath, [cli, "eval", ...common, ...args, "--model", model, "--json", "--quiet", "--store", path.join(root, "store.sqlite")], { env, encoding: "utf8", maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${label}: exit ${r.status}\n${r.stderr}`);
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Row);
    return rows.filter((x) => x.ood !== "average").map((x) => ({ ...x, label }));
  };
  const rows = [
    ...run("none", ["--methods", "mcm,neglabel,linear-probe,tip-adapter,taskres"]),
    ...run("--outlier-neglabel", ["--methods", "linear-probe,tip-adapter,taskres", "--outlier-neglabel"]),
    ...run("--outlier-images", ["--methods", "linear-probe", "--outlier-images", path.join(root, "outliers")]),
  ];
  const pct = (m: unknown, s: unknown) => (typeof m === "number" ? `${(100 * m).toFixed(1)}${typeof s === "number" ? ` ± ${(100 * s).toFixed(1)}` : ""}` : "–");
  console.log(`| method | synthetic outliers | OOD set | AUROC % | FPR95 % | ID accuracy % |`);
  console.log(`|---|---|---|---|---|---|`);
  for (const r of rows.sort((a, b) => a.ood.localeCompare(b.ood))) {
    const shotsNote = r.shots === null || r.shots === undefined ? "" : ` (${r.shots} shots)`;
    console.log(`| ${r.method}${shotsNote} | ${r.label} | ${r.ood} | ${pct(r.auroc, r.std?.auroc)} | ${pct(r.fpr95, r.std?.fpr95)} | ${pct(r.idAccuracy, r.std?.idAccuracy)} |`);
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
