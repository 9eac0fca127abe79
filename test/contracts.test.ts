/**
 * The generated world through models with the real B/16 and L/14 export contracts (scripts/clip-archs.ts:
 * 16- and 14-px patches on 224 px, so 197 and 257 tokens of width 768 and 1024, embeddings of 512 and
 * 768), reached the way a user reaches the real ones: by preset name, downloaded from a stand-in Hub
 * under the real Hub id. Lean on purpose: fp32 only, a handful of small images.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import * as ort from "onnxruntime-node";
import { ARCHS, visionTokens } from "../scripts/clip-archs.js";
import type { Arch } from "../scripts/clip-archs.js";
import { generateModel } from "../scripts/make-test-model.js";
import { paintImage } from "../scripts/world.js";
import type { PaintOptions } from "../scripts/world.js";
import { ClipModel } from "../src/clip.js";
import { preprocessImage } from "../src/image/preprocess.js";
import { parsePreprocessorConfig } from "../src/model/preprocessor-config.js";
import { findPreset } from "../src/model/presets.js";
import { glmcmScore } from "../src/ood/zero-shot/glmcm.js";
import { localFeatures } from "../src/ood/zero-shot/local-features.js";
import { readVisionHead } from "../src/ood/zero-shot/vision-head-graph.js";
import { argmax, matmulTransposed, matrix, normalizeRows, row } from "../src/maths/vectors.js";
import type { Matrix } from "../src/maths/vectors.js";
import { loadClasses } from "../src/text/classes.js";
import { jsonLines, runCli } from "./support/cli.js";
import { startHubServer } from "./support/hub-server.js";
import type { HubServer } from "./support/hub-server.js";
import { makeImages, placeImages, tempDir } from "./support/model.js";
import type { WorldImage } from "./support/model.js";

const CASES = [
  { contract: "B/16", preset: "clip-b16" },
  { contract: "L/14", preset: "clip-l14" },
] as const satisfies readonly { contract: Arch; preset: string }[];

let hubRoot: string;
let server: HubServer;
let id: WorldImage[];
let ood: WorldImage[];

before(async () => {
  hubRoot = await tempDir();
  for (const c of CASES) {
    await generateModel(path.join(hubRoot, findPreset(c.preset)!.hubId), { contract: c.contract, dtypes: ["fp32"] });
  }
  server = await startHubServer(hubRoot);
  id = await makeImages([
    { colour: "red", texture: "plain" },
    { colour: "green", texture: "striped" },
    { colour: "blue", texture: "checkered" },
  ]);
  ood = await makeImages([{ colour: "yellow", texture: "plain" }, { colour: "pink", texture: "striped" }], 4);
});

after(async () => {
  await server.close();
});

for (const { contract, preset } of CASES) {
  const shape = ARCHS[contract];
  const hubId = findPreset(preset)!.hubId;
  const folder = () => path.join(hubRoot, hubId);
  const tokens = visionTokens(shape);
  let cache: string | undefined;
  const cli = async (args: string[]) => {
    cache ??= await tempDir();
    return runCli([...args, "--model", preset, "--cache-dir", cache, "--no-store", "--threads", "1", "--quiet"], { env: { CLIP_OOD_HUB_URL: server.url } });
  };

  test(`${contract}: config.json and the graphs carry the real export's shapes (${tokens} tokens)`, async () => {
    const config = JSON.parse(await readFile(path.join(folder(), "config.json"), "utf8")) as {
      projection_dim: number;
      vision_config: { patch_size: number; image_size: number; hidden_size: number };
      text_config: { hidden_size: number };
    };
    assert.deepEqual(
      { patch: config.vision_config.patch_size, image: config.vision_config.image_size, width: config.vision_config.hidden_size, dim: config.projection_dim, text: config.text_config.hidden_size },
      { patch: shape.patchSize, image: shape.imageSize, width: shape.vision.width, dim: shape.projectionDim, text: shape.text.width },
    );
    const session = await ort.InferenceSession.create(path.join(folder(), "onnx", "vision_model.onnx"));
    try {
      const pixels = await preprocess(folder(), { colour: "red", texture: "plain", width: 300, height: 240, seed: 1 });
      const out = await session.run({ pixel_values: new ort.Tensor("float32", pixels, [1, 3, shape.imageSize, shape.imageSize]) });
      assert.deepEqual(out["last_hidden_state"]!.dims, [1, tokens, shape.vision.width]);
      assert.deepEqual(out["image_embeds"]!.dims, [1, shape.projectionDim]);
    } finally {
      await session.release();
    }
  });

  test(`${contract}: --model ${preset} downloads ${hubId}, then classify, detect and embed give the world's answers`, async () => {
    const classified = await cli(["classify", ...id.map((i) => i.file), "--classes", "red,green,blue", "--json", "-k", "1"]);
    assert.equal(classified.code, 0, classified.stderr);
    assert.deepEqual(jsonLines(classified.stdout).map((r) => (r["top"] as { label: string }[])[0]!.label), id.map((i) => i.colour));
    assert.ok(server.requests.some((q) => q.url === `/${hubId}/resolve/main/onnx/vision_model.onnx`), "the preset fetched its Hub id");

    for (const method of ["mcm", "glmcm"]) {
      const detected = await cli(["detect", ...id.map((i) => i.file), ...ood.map((i) => i.file), "--classes", "red,green,blue", "--method", method, "--json"]);
      assert.equal(detected.code, 0, detected.stderr);
      const scores = jsonLines(detected.stdout).map((r) => r["score"] as number);
      assert.ok(Math.min(...scores.slice(0, id.length)) > Math.max(...scores.slice(id.length)), `${method}: ${scores.join(", ")}`);
    }

    const embedded = await cli(["embed", id[0]!.file, "--text", "a photo of a red"]);
    assert.equal(embedded.code, 0, embedded.stderr);
    const rows = jsonLines(embedded.stdout);
    for (const r of rows) {
      assert.equal(r["model"], hubId, "the Hub id is recorded, not the preset");
      assert.equal((r["embedding"] as number[]).length, shape.projectionDim);
    }
  });

  test(`${contract}: eval separates the world's ID and OOD sets perfectly`, async () => {
    const root = await tempDir();
    await placeImages(id, (img) => path.join(root, "id", img.colour));
    await placeImages(ood, () => path.join(root, "ood"));
    const r = await cli(["eval", "--id", path.join(root, "id"), "--ood", `warm=${path.join(root, "ood")}`, "--methods", "mcm", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const rows = jsonLines(r.stdout).filter((x) => "method" in x);
    assert.equal(rows[0]!["auroc"], 1, JSON.stringify(rows[0]));
    assert.equal(rows[0]!["idAccuracy"], 1, JSON.stringify(rows[0]));
  });

  test(`${contract}: GL-MCM's patch features over ${tokens - 1} patches find a small red object in a yellow scene`, async () => {
    const file = path.join(folder(), "onnx", "vision_model.onnx");
    const model = await ClipModel.load({ model: folder(), cacheDir: await tempDir(), threads: 1, textCache: false });
    let features: Matrix;
    try {
      features = (await model.classFeatures(await loadClasses("red,green,blue"), ["a photo of a {}"])).matrix;
    } finally {
      await model.close();
    }
    const head = await readVisionHead(file);
    // 320×240 → 299×224 → centre crop from x 37: the object at x 130..190, y 90..150 lands on x, y ≈ 84..140.
    const scene: PaintOptions = { colour: "yellow", texture: "plain", width: 320, height: 240, seed: 41, region: { colour: "red", x: 130, y: 90, width: 60, height: 60 } };
    const p = shape.patchSize;
    const side = shape.imageSize / p;
    const span = [Math.floor(84 / p), Math.floor(139 / p)] as const;
    const session = await ort.InferenceSession.create(file);
    try {
      const out = await session.run({ pixel_values: new ort.Tensor("float32", await preprocess(folder(), scene), [1, 3, shape.imageSize, shape.imageSize]) });
      const lhs = out["last_hidden_state"]!;
      assert.equal(lhs.dims[1], tokens);
      const local = matmulTransposed(localFeatures(lhs.data as Float32Array, tokens, head), features);
      assert.equal(local.rows, tokens - 1);
      const global = matmulTransposed(normalizeRows(matrix(1, head.dim, out["image_embeds"]!.data as Float32Array)), features).data;
      const best = glmcmScore(global, local).patch;
      const [r, c] = [Math.floor(best / side), best % side];
      assert.ok(r >= span[0] && r <= span[1] && c >= span[0] && c <= span[1], `best patch ${best} (row ${r}, col ${c}) is on the object, rows/cols ${span.join("..")}`);
      assert.equal(argmax(row(local, best)), 0, "the best patch names red");
    } finally {
      await session.release();
    }
  });
}

async function preprocess(dir: string, spec: PaintOptions): Promise<Float32Array> {
  const cfg = parsePreprocessorConfig(JSON.parse(await readFile(path.join(dir, "preprocessor_config.json"), "utf8")), "preprocessor_config.json");
  return preprocessImage(await paintImage(spec), cfg, { exifRotate: false, maxPixels: 0 });
}
