/**
 * Does training the learned heads with synthetic outliers help? A measurement on the generated world,
 * run through the built CLI as a user would (`npm run build` first):
 *
 *   npx tsx scripts/synthetic-outliers.ts [--shots 8] [--seeds 3]
 *
 * In-distribution: red, green and blue images of every texture. Fitting data: `--shots` per class (drawn
 * by `eval --shots` over `--seeds` seeds). OOD test set: purple, brown, orange, black, gray and white
 * images, colours that no synthetic outlier shows. Synthetic outliers: NegLabel's negatives mined from
 * WordNet with the generated text tower (`--outlier-neglabel`), and known outlier images of yellow, pink
 * and cyan (`--outlier-images`, linear-probe only). Prints one Markdown table (AUROC, FPR95, ID accuracy,
 * mean ± std over the seeds) for docs/OOD-METHODS.md.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { generateModel, writeWorldImages } from "./make-test-model.js";
import { TEXTURES } from "./world.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const shots = arg("--shots", 8);
const seeds = arg("--seeds", 3);
const root = await mkdtemp(path.join(os.tmpdir(), "clip-ood-outliers-"));
const cli = path.join(import.meta.dirname, "..", "dist", "cli", "main.js");

try {
  const model = path.join(root, "model");
  await generateModel(model);
  let seed = 5000;
  const images = (dir: string, colours: readonly string[], perColour: number, byClass: boolean) =>
    Promise.all(
      colours.map((colour) =>
        writeWorldImages(
          byClass ? path.join(dir, colour) : dir,
          Array.from({ length: perColour }, (_, i) => ({ colour, texture: TEXTURES[i % TEXTURES.length]!, seed: seed++, width: 200 + (i % 5) * 30, height: 160 + (i % 3) * 40 })),
        ),
      ),
    );
  const ID = ["red", "green", "blue"];
  await images(path.join(root, "train"), ID, Math.max(shots, 2), true);
  await images(path.join(root, "val"), ID, 12, true);
  await images(path.join(root, "ood"), ["purple", "brown", "orange", "black", "gray", "white"], 6, false);
  await images(path.join(root, "outliers"), ["yellow", "pink", "cyan"], 6, false);

  const common = ["--id", path.join(root, "val"), "--ood", `unseen=${path.join(root, "ood")}`, "--fit", path.join(root, "train"), "--shots", String(shots), "--seeds", String(seeds)];
  const env = { ...process.env, CLIP_OOD_CACHE: path.join(root, "cache") };
  const run = (label: string, args: string[]) => {
    const r = spawnSync(process.execPath, [cli, "eval", ...common, ...args, "--model", model, "--json", "--quiet", "--store", path.join(root, "store.sqlite")], { env, encoding: "utf8", maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${label}: exit ${r.status}\n${r.stderr}`);
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    return rows.filter((x) => x["ood"] === "unseen").map((x) => ({ label, ...x }));
  };
  const rows = [
    ...run("none", ["--methods", "mcm,neglabel,linear-probe,tip-adapter,taskres"]),
    ...run("--outlier-neglabel", ["--methods", "linear-probe,tip-adapter,taskres", "--outlier-neglabel"]),
    ...run("--outlier-images", ["--methods", "linear-probe", "--outlier-images", path.join(root, "outliers")]),
  ];
  const pct = (m: unknown, s: unknown) => (typeof m === "number" ? `${(100 * m).toFixed(1)}${typeof s === "number" ? ` ± ${(100 * s).toFixed(1)}` : ""}` : "–");
  console.log(`| method | synthetic outliers | AUROC % | FPR95 % | ID accuracy % |`);
  console.log(`|---|---|---|---|---|`);
  for (const r of rows) {
    const shotsNote = typeof r["shots"] === "number" ? ` (${String(r["shots"])} shots)` : "";
    const std = (r["std"] ?? {}) as Record<string, unknown>;
    console.log(`| ${String(r["method"])}${shotsNote} | ${r.label} | ${pct(r["auroc"], std["auroc"])} | ${pct(r["fpr95"], std["fpr95"])} | ${pct(r["idAccuracy"], std["idAccuracy"])} |`);
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
