/**
 * Model folders from other hands (the "model-folder" fuzz target in test/support/fuzz-properties.ts
 * throws random damage at them; these are the cases it found, pinned): tampered or absurd config
 * values, files that are not regular files or are far too big, tokenizers that cannot tokenize, and
 * ONNX graphs whose external data points out of the folder.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile, rm, symlink, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import onnxProto from "onnx-proto";
import { FLOAT, GraphBuilder, INT64 } from "../src/maths/kernels/onnx-graph.js";
import { ClipModel } from "../src/clip.js";
import { ClipOodError } from "../src/errors.js";
import { MAX_IMAGE_SIDE, parsePreprocessorConfig } from "../src/model/preprocessor-config.js";
import { MAX_MODEL_JSON_BYTES, openModelFolder } from "../src/model/folder.js";
import { ClipTokenizer } from "../src/text/tokenizer.js";
import { rejectsWithCode } from "./support/assertions.js";
import { makeModel, tempDir } from "./support/model.js";

const { onnx } = onnxProto;

const SOURCE = "models/x/preprocessor_config.json";

function preprocessError(...fragments: string[]): (e: unknown) => boolean {
  return rejectsWithCode("MODEL_FOLDER", SOURCE, ...fragments);
}

test("preprocessor sizes beyond any CLIP export are refused before an image is touched", () => {
  const cases: [unknown, string][] = [
    [{ size: 1e9 }, "size is 1000000000 pixels"],
    [{ size: { shortest_edge: 2 ** 53 } }, "size.shortest_edge"],
    [{ size: { height: 1e9, width: 1 } }, "size.height"],
    [{ crop_size: MAX_IMAGE_SIDE + 1 }, "crop_size"],
    [{ crop_size: { height: 224, width: 4096 } }, "crop_size.width"],
  ];
  for (const [json, field] of cases) {
    assert.throws(() => parsePreprocessorConfig(json, SOURCE), preprocessError(field, `over the ${MAX_IMAGE_SIDE}`), JSON.stringify(json));
  }
  assert.throws(() => parsePreprocessorConfig({ size: -1 }, SOURCE), preprocessError("size must be a positive integer, got -1"));
  // The ceiling itself is allowed: a large but possible export.
  const largest = parsePreprocessorConfig({ size: MAX_IMAGE_SIDE, crop_size: MAX_IMAGE_SIDE }, SOURCE);
  assert.deepEqual([largest.shortestEdge, largest.cropHeight, largest.cropWidth], [MAX_IMAGE_SIDE, MAX_IMAGE_SIDE, MAX_IMAGE_SIDE]);
});

test("normalisation that overflows float32 is refused, though each value is finite on its own", () => {
  assert.throws(() => parsePreprocessorConfig({ image_std: [1e-300, 0.5, 0.5] }, SOURCE), preprocessError("beyond float32's range"));
  assert.throws(() => parsePreprocessorConfig({ rescale_factor: 1e300 }, SOURCE), preprocessError("beyond float32's range"));
  assert.throws(() => parsePreprocessorConfig({ image_std: 0 }, SOURCE), preprocessError("image_std must be three positive numbers"));
  assert.throws(() => parsePreprocessorConfig({ image_mean: [0.5, 0.5, 0.5, 0.5] }, SOURCE), preprocessError("image_mean must be three numbers"));
  assert.throws(() => parsePreprocessorConfig({ rescale_factor: 0 }, SOURCE), preprocessError("rescale_factor must be a positive number"));
});

test("values nested too deeply to print, or huge, still give a short message", () => {
  const deep = JSON.parse("[".repeat(100_000) + "]".repeat(100_000)) as unknown;
  assert.throws(() => parsePreprocessorConfig({ size: deep }, SOURCE), preprocessError("size must be an integer or an object, got a deeply nested array"));
  assert.throws(() => parsePreprocessorConfig({ image_mean: new Array(1_000_000).fill(1) }, SOURCE), (e: unknown) => {
    assert.ok(e instanceof ClipOodError && e.message.length < 300, `a short message, got ${String(e).length} characters`);
    return true;
  });
});

/** A copy of the generated model's folder whose `file` is replaced by what `write` puts there. */
async function folderWith(file: string, write: (target: string) => Promise<void>): Promise<string> {
  const dir = await makeModel({ dtypes: ["fp32"] });
  const target = path.join(dir, file);
  await rm(target);
  await write(target);
  return dir;
}

test("a model file that is far too big is refused by its size, without reading it", async () => {
  // Sparse: two gigabytes on paper, none on disk; reading it whole is what must not happen.
  const dir = await folderWith("tokenizer.json", async (f) => {
    await writeFile(f, "");
    await truncate(f, 2 * 2 ** 30);
  });
  await openModelFolder(dir, "fp32");
  await assert.rejects(ClipTokenizer.fromFolder(dir), rejectsWithCode("MODEL_FOLDER", path.join(dir, "tokenizer.json"), "2.0 GiB", `${MAX_MODEL_JSON_BYTES / 2 ** 20} MiB`));
});

test("a pipe or a folder where a config belongs is refused, naming it, instead of blocking", { skip: process.platform === "win32" }, async () => {
  const fifo = await folderWith("config.json", async (f) => {
    execFileSync("mkfifo", [f]);
  });
  await assert.rejects(openModelFolder(fifo, "fp32"), rejectsWithCode("MODEL_FOLDER", path.join(fifo, "config.json"), "not a regular file"));
  const folder = await folderWith("preprocessor_config.json", async (f) => {
    execFileSync("mkdir", [f]);
  });
  await assert.rejects(openModelFolder(folder, "fp32"), rejectsWithCode("MODEL_FOLDER", path.join(folder, "preprocessor_config.json"), "a folder"));
});

test("config.json's projection_dim must be a sane width, and a JSON file may start with a byte-order mark", async () => {
  const dir = await makeModel({ dtypes: ["fp32"] });
  const file = path.join(dir, "config.json");
  const config = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  for (const bad of [0, -1, 1.5, 1e9, "64"]) {
    await writeFile(file, JSON.stringify({ ...config, projection_dim: bad }));
    await assert.rejects(openModelFolder(dir, "fp32"), rejectsWithCode("MODEL_FOLDER", file, "projection_dim"), String(bad));
  }
  await writeFile(file, "\uFEFF" + JSON.stringify(config));
  assert.equal((await openModelFolder(dir, "fp32")).config.projectionDim, config["projection_dim"]);
});

test("a tokenizer.json whose ids are not ids, that tokenizes nothing, or that brings its own pattern fails at load naming the file", async () => {
  const dir = await makeModel({ dtypes: ["fp32"] });
  const file = path.join(dir, "tokenizer.json");
  const original = await readFile(file, "utf8");
  const tokenizer = JSON.parse(original) as {
    model: { vocab: Record<string, unknown> };
    added_tokens: { id: unknown }[];
    pre_tokenizer: { pretokenizers: { pattern?: unknown }[] };
  };
  const variants: [string, (t: typeof tokenizer) => void][] = [
    ['"<|endoftext|>" to "714", not a token id', (t) => (t.added_tokens[1]!.id = "714")],
    ["for part of", (t) => (t.model.vocab["a</w>"] = 2.5)],
    ["for part of", (t) => (t.model.vocab["a</w>"] = 2 ** 40)],
    ["into no tokens", (t) => (t.pre_tokenizer.pretokenizers[0]!.pattern = { Nope: "x" })],
    // Catastrophic backtracking: about a minute per 34-letter word on V8, so never run, only named.
    ["neither one of CLIP's tokenizer patterns nor a single repeated character class", (t) => (t.pre_tokenizer.pretokenizers[0]!.pattern = { Regex: "(?:[\\p{L}]+)+!|[\\p{N}]" })],
  ];
  for (const [fragment, change] of variants) {
    const copy = structuredClone(tokenizer);
    change(copy);
    await writeFile(file, JSON.stringify(copy));
    await assert.rejects(ClipTokenizer.fromFolder(dir), rejectsWithCode("MODEL_FOLDER", file, fragment), fragment);
  }
});

// ---------------------------------------------------------------------------------------------------------
// ONNX external data. onnxruntime (1.30) resolves an initializer's external "location" against the
// graph's own folder, following symlinks, and refuses absolute paths and any that resolve outside it.

const WIDTH = 4;
/** The weight every prompt's embedding is a positive multiple of, stored outside the graph. */
const WEIGHT = Float32Array.of(3, -4, 0, 12);

/**
 * A text tower of the CLIP contract (input_ids → text_embeds = sum(ids) · WEIGHT) whose one weight
 * lives in external data at `location`.
 */
function externalDataTextGraph(location: string): Uint8Array {
  const g = new GraphBuilder("external_data_text");
  const ids = g.input("input_ids", INT64, ["batch_size", "sequence_length"]);
  const total = g.op("ReduceSum", [g.op("Cast", [ids], { to: FLOAT }), g.ints([1])], { keepdims: 1 });
  const weight = g.floats(new Float32Array(WIDTH), [1, WIDTH]);
  g.output(g.op("Mul", [total, weight]), "text_embeds", FLOAT, ["batch_size", WIDTH]);
  const model = onnx.ModelProto.decode(g.encode());
  const init = model.graph?.initializer?.find((t) => t.name === weight);
  assert.ok(init, "the generated graph holds its weight as an initializer");
  init.rawData = new Uint8Array(0);
  init.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  init.externalData = [
    { key: "location", value: location },
    { key: "offset", value: "0" },
    { key: "length", value: String(WEIGHT.byteLength) },
  ];
  return onnx.ModelProto.encode(model).finish();
}

/** A model folder whose text graph reads WEIGHT from `location`, and a file beside the folder holding it too. */
async function externalDataModel(location: (outside: string) => string): Promise<{ dir: string }> {
  const dir = await makeModel({ dtypes: ["fp32"] });
  const outside = path.join(path.dirname(dir), "outside.bin");
  // Valid data of the right length: a runtime that followed the path would load and run the graph.
  await writeFile(outside, Buffer.from(WEIGHT.buffer));
  await writeFile(path.join(dir, "onnx", "weights.bin"), Buffer.from(WEIGHT.buffer));
  await symlink(outside, path.join(dir, "onnx", "link.bin"));
  await writeFile(path.join(dir, "onnx", "text_model.onnx"), externalDataTextGraph(location(outside)));
  return { dir };
}

async function embedWith(dir: string): Promise<Float32Array> {
  const model = await ClipModel.load({ model: dir, cacheDir: await tempDir(), threads: 1, textCache: false });
  try {
    return (await model.embedTexts(["a red square"])).data;
  } finally {
    await model.close();
  }
}

test("external data inside the model folder loads (the control for the escapes below)", async () => {
  const { dir } = await externalDataModel(() => "weights.bin");
  const norm = Math.hypot(...WEIGHT);
  const expected = [...WEIGHT].map((w) => w / norm);
  const got = [...(await embedWith(dir))];
  got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-6, `component ${i}: ${v} vs ${expected[i]}`));
});

test("external data that points out of the model folder is refused by onnxruntime with a ClipOodError", async () => {
  // onnxruntime 1.30 says "External data path validation failed for initializer: …" and then
  // "Absolute path not allowed for external data location" or "External data path escapes model
  // directory"; only the common part is pinned, so that a rewording elsewhere does not fail this.
  const escapes: [string, (outside: string) => string][] = [
    ["a relative path up and out", () => "../../outside.bin"],
    ["an absolute path", (outside) => outside],
    ["a system file", () => "/etc/hostname"],
    ["a symlink inside the folder to a file outside", () => "link.bin"],
  ];
  for (const [what, location] of escapes) {
    const { dir } = await externalDataModel(location);
    const graph = path.join(dir, "onnx", "text_model.onnx");
    await assert.rejects(embedWith(dir), (e: unknown) => {
      assert.ok(e instanceof ClipOodError, `${what}: expected a ClipOodError, got ${String(e)}`);
      assert.equal(e.code, "MODEL_GRAPH", what);
      assert.match(e.message, /keeps weights outside its folder/, what);
      assert.ok(e.message.includes(graph), `${what}: the message names the graph: ${e.message}`);
      assert.match(e.message, /external data path/i, what);
      assert.ok(e.hint, `${what}: the error has a hint`);
      return true;
    });
  }
});
