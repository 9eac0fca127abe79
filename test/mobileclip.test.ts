/**
 * The MobileCLIP export contract end to end, on a generated model with it (scripts/make-test-model.ts,
 * `family: "mobileclip"`): input_ids fixed at 77 with no attention mask, which clip-ood must read from
 * the graph and pad to; a bilinear (resample 2), unnormalised 256-px preprocessor; and classify / detect
 * / embed / eval through the built CLI with CLIP's scoring, reached as a user would: `--model
 * mobileclip-s0`, downloaded from a stand-in Hub under the real Hub id.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { ClipModel } from "../src/clip.js";
import { generateModel } from "../scripts/make-test-model.js";
import { MOBILECLIP_TEXT_LENGTH } from "../scripts/test-model/config.js";
import { findPreset } from "../src/model/presets.js";
import { jsonLines, runCli } from "./support/cli.js";
import { startHubServer } from "./support/hub-server.js";
import type { HubServer } from "./support/hub-server.js";
import { placeImages, tempDir, worldImages } from "./support/model.js";
import type { WorldImage } from "./support/model.js";

const PRESET = "mobileclip-s0";
let model: string;
let server: HubServer;
let cache: string;
let id: WorldImage[];
let ood: WorldImage[];

before(async () => {
  const hub = await tempDir();
  model = path.join(hub, findPreset(PRESET)!.hubId);
  await generateModel(model, { family: "mobileclip", dtypes: ["fp32"] });
  server = await startHubServer(hub);
  cache = await tempDir();
  ({ id, ood } = await worldImages());
});

after(async () => {
  await server.close();
});

const cli = (args: string[]) => runCli([...args, "--model", PRESET, "--cache-dir", cache, "--threads", "1", "--quiet", "--no-store"], { env: { CLIP_OOD_HUB_URL: server.url } });

test("the folder's contract is read: bilinear 256-px preprocessing, prompts padded to the graph's fixed 77 tokens", async () => {
  const m = await ClipModel.load({ model, textCache: false, threads: 1 });
  try {
    const cfg = m.model.preprocess;
    assert.deepEqual([cfg.resample, cfg.cropWidth, cfg.cropHeight, cfg.mean, cfg.std], ["bilinear", 256, 256, [0, 0, 0], [1, 1, 1]]);
    // onnxruntime rejects any other length for a fixed dimension, so prompts of different lengths
    // embedding at all, alone and together, shows every batch was padded to 77.
    const short = await m.embedTexts(["red"]);
    const both = await m.embedTexts(["red", "a photo of a red striped thing on a table"]);
    assert.deepEqual(Array.from(both.data.subarray(0, both.cols)), Array.from(short.data));
  } finally {
    await m.close();
  }
  assert.equal(MOBILECLIP_TEXT_LENGTH, 77);
});

test("classify, detect and embed give the world's answers with CLIP's scoring", async () => {
  const c = await cli(["classify", ...id.map((i) => i.file), "--classes", "red,green,blue", "--json"]);
  assert.equal(c.code, 0, c.stderr);
  assert.ok(server.requests.some((q) => q.url === `/${findPreset(PRESET)!.hubId}/resolve/main/onnx/text_model.onnx`), "the preset fetched its Hub id");
  jsonLines(c.stdout).forEach((row, i) => assert.equal((row["top"] as { label: string }[])[0]!.label, id[i]!.colour));
  const files = [...id, ...ood].map((i) => i.file);
  for (const method of ["mcm", "energy", "neglabel"]) {
    const r = await cli(["detect", ...files, "--classes", "red,green,blue", "--method", method, "--json"]);
    assert.equal(r.code, 0, `${method}: ${r.stderr}`);
    const scores = jsonLines(r.stdout).map((x) => x["score"] as number);
    assert.ok(Math.min(...scores.slice(0, id.length)) > Math.max(...scores.slice(id.length)), `${method}: ${scores.join(", ")}`);
  }
  const out = path.join(await tempDir(), "e.jsonl");
  const e = await cli(["embed", id[0]!.file, id[1]!.file, "--text", "a photo of a red", "--out", out]);
  assert.equal(e.code, 0, e.stderr);
  const [t, red, green] = jsonLines(await readFile(out, "utf8")).map((x) => x["embedding"] as number[]);
  const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  assert.ok(dot(t!, red!) > dot(t!, green!));
});

test("eval on the MobileCLIP world: perfect separation and ID accuracy", async () => {
  const root = await tempDir();
  const idDir = path.join(root, "val");
  await placeImages(id, (img) => path.join(idDir, img.colour));
  const oodList = path.join(root, "ood.txt");
  await writeFile(oodList, ood.map((i) => i.file).join("\n") + "\n");
  const r = await cli(["eval", "--id", idDir, "--ood", `warm=${oodList}`, "--methods", "mcm,energy", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(r.stdout).filter((x) => "method" in x);
  assert.equal(rows.length, 4);
  for (const row of rows) {
    assert.equal(row["auroc"], 1, JSON.stringify(row));
    assert.equal(row["idAccuracy"], 1, JSON.stringify(row));
  }
});
