import { rmSync } from "node:fs";
import { copyFile, mkdir, mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { generateModel, writeWorldImages } from "../../scripts/make-test-model.js";
import type { GenerateOptions } from "../../scripts/test-model/options.js";
import type { Texture } from "../../scripts/world.js";

/**
 * A fresh temp dir removed when the test process exits. (node:test's after() called from inside a
 * before() hook fires right after that hook, so it cannot be used here.)
 */
export async function tempDir(prefix = "clip-ood-test-"): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  if (made.size === 0) process.once("exit", () => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
  made.add(dir);
  return dir;
}

const made = new Set<string>();

/** A generated model folder (see scripts/make-test-model.ts). */
export async function makeModel(options: GenerateOptions = {}): Promise<string> {
  const dir = path.join(await tempDir("clip-ood-model-"), "model");
  await generateModel(dir, options);
  return dir;
}

export interface WorldImage {
  file: string;
  colour: string;
  texture: Texture;
}

/**
 * Held-out images of the generated world: random shades, sizes (landscape and portrait, so resize and
 * crop matter), stripe periods and noise, drawn from seeds the model generator never sees.
 */
export async function makeImages(
  specs: readonly { colour: string; texture: Texture }[],
  seed = 7,
): Promise<WorldImage[]> {
  const dir = await tempDir("clip-ood-images-");
  const items = specs.map((s, i) => {
    const landscape = i % 2 === 0;
    const long = 260 + ((seed * 37 + i * 53) % 240);
    const short = 150 + ((seed * 11 + i * 29) % 140);
    return { ...s, seed: seed * 1000 + i, width: landscape ? long : short, height: landscape ? short : long };
  });
  const files = await writeWorldImages(dir, items);
  return files.map((file, i) => ({ file, colour: specs[i]!.colour, texture: specs[i]!.texture }));
}

/**
 * The small labelled world most end-to-end tests use: four in-distribution images of three classes
 * (red twice, in two textures) and two out-of-distribution colours, from fixed seeds.
 */
export async function worldImages(): Promise<{ id: WorldImage[]; ood: WorldImage[] }> {
  const id = await makeImages([
    { colour: "red", texture: "plain" },
    { colour: "green", texture: "striped" },
    { colour: "blue", texture: "checkered" },
    { colour: "red", texture: "striped" },
  ]);
  const ood = await makeImages([
    { colour: "yellow", texture: "plain" },
    { colour: "pink", texture: "plain" },
  ], 4);
  return { id, ood };
}

/** Copies each image into the folder `folderOf` names for it (created as needed); returns the copies' paths. */
export async function placeImages(images: readonly WorldImage[], folderOf: (img: WorldImage) => string): Promise<string[]> {
  const out: string[] = [];
  for (const img of images) {
    const to = path.join(folderOf(img), path.basename(img.file));
    await mkdir(path.dirname(to), { recursive: true });
    await copyFile(img.file, to);
    out.push(to);
  }
  return out;
}
