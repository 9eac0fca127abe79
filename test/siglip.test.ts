/**
 * The SigLIP family end to end: its scoring maths against hand-computed values, its tokenizer contract,
 * its logit parameters read from the combined graph, and classify / detect / embed / eval through the
 * built CLI on a generated model with the SigLIP export contract (scripts/siglip-model.ts).
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import * as ort from "onnxruntime-node";
import { ClipModel } from "../src/clip.js";
import { isClipOodError } from "../src/errors.js";
import { prepareDetector } from "../src/ood/build.js";
import { parseClassList } from "../src/text/classes.js";
import { jointEnergyScore, maxSigmoidScore, outlierPenaltySigmoidScore, sigmoid, sigmoidProbabilities, softplus } from "../src/maths/scores.js";
import { familyScoring, readLogitInitializers } from "../src/model/family.js";
import { ClipTokenizer, SIGLIP_TOKENIZER } from "../src/text/tokenizer.js";
import { detect } from "../src/zeroshot.js";
import { GENERATED_LOGIT_BIAS, GENERATED_LOGIT_SCALE } from "../scripts/siglip-model.js";
import { jsonLines, runCli } from "./support/cli.js";
import { makeModel, placeImages, tempDir, worldImages } from "./support/model.js";
import type { WorldImage } from "./support/model.js";

let model: string;
let cache: string;
let id: WorldImage[];
let ood: WorldImage[];

before(async () => {
  model = await makeModel({ family: "siglip", dtypes: ["fp32"] });
  cache = await tempDir();
  ({ id, ood } = await worldImages());
});

const base = () => ["--model", model, "--cache-dir", cache, "--threads", "1", "--quiet", "--no-store"];
const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} ≠ ${b}`);

test("sigmoid scores match values worked by hand", () => {
  // σ(0) = ½; σ(±40) reach 1 and e^-40 without overflow; softplus(0) = ln 2, softplus(z) ≈ z for large z.
  close(sigmoid(0), 0.5);
  close(sigmoid(40), 1);
  close(sigmoid(-40), Math.exp(-40) / (1 + Math.exp(-40)), 1e-30);
  close(softplus(0), Math.LN2);
  close(softplus(800), 800);
  close(softplus(-800), 0);
  // scale 10, bias −5, cos = [0.5, 0.8, 0.2]: z = [0, 3, −3].
  const cos = [0.5, 0.8, 0.2];
  const p = sigmoidProbabilities(cos, 10, -5);
  close(p[0]!, 0.5);
  close(p[1]!, 1 / (1 + Math.exp(-3)));
  close(p[2]!, 1 / (1 + Math.exp(3)));
  const m = maxSigmoidScore(cos, 10, -5);
  assert.equal(m.index, 1);
  close(m.score, 1 / (1 + Math.exp(-3)));
  // JointEnergy = ln 2 + ln(1 + e³) + ln(1 + e⁻³).
  close(jointEnergyScore(cos, 10, -5), Math.LN2 + Math.log(1 + Math.exp(3)) + Math.log(1 + Math.exp(-3)));
  // EOE with sigmoids: max p_ID − β·max p_OUT; outlier cos 0.6 → z = 1.
  const eoe = outlierPenaltySigmoidScore(cos, [0.6, 0.1], 10, -5, 0.25);
  close(eoe.score, 1 / (1 + Math.exp(-3)) - 0.25 / (1 + Math.exp(-1)));
  assert.equal(eoe.extraWins, false);
});

test("softmax-only zero-shot methods are refused for sigmoid scoring, with a hint", () => {
  const features = { labels: ["a", "b"], prompts: [["a"], ["b"]], matrix: { rows: 2, cols: 2, data: Float32Array.of(1, 0, 0, 1) } };
  const scoring = { kind: "sigmoid" as const, logitScale: 10, logitBias: -5 };
  for (const method of ["entropy", "unknown"] as const) {
    assert.throws(() => detect(Float32Array.of(1, 0), features, { method, scoring }), (e: unknown) => isClipOodError(e) && e.code === "USAGE" && /sigmoid/.test(e.message) && /mcm/.test(e.hint ?? ""));
  }
  const r = detect(Float32Array.of(0.6, 0.8), features, { method: "mcm", scoring });
  assert.equal(r.label, "b");
  close(r.score, sigmoid(10 * 0.8 - 5), 1e-6);
});

test("the SigLIP tokenizer: no start token, canonicalised text, eos last, padded to 64 with the pad id", async () => {
  const tok = await ClipTokenizer.fromFolder(model, SIGLIP_TOKENIZER);
  assert.equal(tok.bosId, undefined);
  assert.equal(tok.eosId, 1);
  assert.equal(tok.padId, 1);
  assert.equal(tok.maxLength, 64);
  const a = tok.encode("A photo of a red, striped thing!").ids;
  const b = tok.encode("a photo of a red striped thing").ids;
  assert.deepEqual(a, b, "punctuation and case do not change the ids (SiglipTokenizer.canonicalize_text)");
  assert.equal(a.length, 8, "seven world words, one piece each, and eos");
  assert.equal(a.at(-1), 1);
  const batch = tok.encodeBatch(["red", "a photo of a red striped thing"]);
  assert.equal(batch.sequenceLength, 64, "padded to the context length, not the longest prompt");
  assert.deepEqual([...batch.ids.subarray(0, 3)].map(Number), [tok.encode("red").ids[0], 1, 1]);
  const long = tok.encode(Array.from({ length: 80 }, () => "red").join(" "));
  assert.equal(long.truncated, true);
  assert.equal(long.ids.length, 64);
  assert.equal(long.ids.at(-1), 1, "eos survives truncation");
});

test("tokenizer parity: ids match Google's SentencePiece on the same vocabulary (test/fixtures/siglip)", async () => {
  // Reference: scripts/siglip-tokenizer-fixtures.py, SentencePiece's own Unigram encoder over this
  // generated vocabulary, with HF SiglipTokenizer's canonicalisation, lowercasing and </s>.
  const tok = await ClipTokenizer.fromFolder(model, SIGLIP_TOKENIZER);
  const cases = jsonLines(await readFile(path.join(import.meta.dirname, "fixtures", "siglip", "tokenizer-cases.jsonl"), "utf8"));
  assert.ok(cases.length >= 10);
  for (const c of cases) assert.deepEqual(tok.encode(c["text"] as string).ids, c["ids"], JSON.stringify(c["text"]));
});

test("logit scale and bias are read from onnx/model.onnx, overridable, and missing ones fail clearly", async () => {
  const read = await readLogitInitializers(path.join(model, "onnx", "model.onnx"));
  close(read!.logitScale!, GENERATED_LOGIT_SCALE, 1e-3);
  close(read!.logitBias!, GENERATED_LOGIT_BIAS, 1e-6);
  const over = await familyScoring("siglip", model, "fp32", { logitBias: -10 });
  assert.equal(over.kind, "sigmoid");
  close(over.logitScale, GENERATED_LOGIT_SCALE, 1e-3);
  assert.equal(over.kind === "sigmoid" && over.logitBias, -10);
  const bare = path.join(await tempDir(), "towers-only");
  await mkdir(path.join(bare, "onnx"), { recursive: true });
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json", "onnx/text_model.onnx", "onnx/vision_model.onnx"]) {
    await copyFile(path.join(model, f), path.join(bare, f));
  }
  await assert.rejects(familyScoring("siglip", bare, "fp32"), (e: unknown) => isClipOodError(e) && /logit_scale and logit_bias not found/.test(e.message) && /--logit-scale/.test(e.hint ?? ""));
  // Embedding needs no scoring values: a towers-only folder still embeds.
  const m = await ClipModel.load({ model: bare, textCache: false, threads: 1 });
  try {
    assert.equal((await m.embedTexts(["a photo of a red"])).rows, 1);
  } finally {
    await m.close();
  }
  const cli = await runCli(["classify", id[0]!.file, "--classes", "red,green", ...base().map((a) => (a === model ? bare : a))]);
  assert.equal(cli.code, 3, cli.stderr);
  assert.match(cli.stderr, /logit_scale and logit_bias not found/);
  const given = await runCli(["classify", id[0]!.file, "--classes", "red,green", "--json", "--logit-scale", "117.33", "--logit-bias", "-76", ...base().map((a) => (a === model ? bare : a))]);
  assert.equal(given.code, 0, given.stderr);
  assert.equal((jsonLines(given.stdout)[0]!["top"] as { label: string }[])[0]!.label, "red");
  await rm(bare, { recursive: true, force: true });
});

test("the generated text tower pools the last position: the padded length changes the embedding", async () => {
  // What makes padding to 64 necessary in the real model holds in the generated one too.
  const session = await ort.InferenceSession.create(path.join(model, "onnx", "text_model.onnx"));
  assert.deepEqual(session.inputNames, ["input_ids"], "no attention_mask, as the SigLIP exports");
  const tok = await ClipTokenizer.fromFolder(model, SIGLIP_TOKENIZER);
  const ids = tok.encode("a photo of a red").ids;
  const run = async (length: number) => {
    const padded = BigInt64Array.from([...ids, ...Array<number>(length - ids.length).fill(tok.padId)].map(BigInt));
    const out = await session.run({ input_ids: new ort.Tensor("int64", padded, [1, length]) });
    return Array.from(out["pooler_output"]!.data as Float32Array);
  };
  const [short, full] = [await run(ids.length + 1), await run(64)];
  assert.ok(short.some((v, i) => Math.abs(v - full[i]!) > 1e-3), "padding to another length gives another embedding");
  await session.release();
});

test("a prompt's SigLIP embedding does not depend on its batch-mates (always padded to 64)", async () => {
  const m = await ClipModel.load({ model, textCache: false, threads: 1, batchSize: 8 });
  try {
    const alone = await m.embedTexts(["red"]);
    const mixed = await m.embedTexts(["red", "a photo of a big bright red striped thing in the dark"]);
    for (let i = 0; i < alone.cols; i++) close(alone.data[i]!, mixed.data[i]!, 1e-6);
  } finally {
    await m.close();
  }
});

test("classify shows independent sigmoid probabilities with the right top class", async () => {
  const r = await runCli(["classify", ...id.map((i) => i.file), "--classes", "red,green,blue", "--json", ...base()]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(r.stdout);
  rows.forEach((row, i) => {
    const top = row["top"] as { label: string; prob: number }[];
    assert.equal(top[0]!.label, id[i]!.colour);
    assert.ok(top[0]!.prob > 0.5, `the matching class is more likely than not: ${top[0]!.prob}`);
    assert.ok(top[1]!.prob < 0.5, `other classes are unlikely on their own: ${top[1]!.prob}`);
  });
  // Out-of-distribution images match no class: every sigmoid is small, which a softmax could not show.
  const o = jsonLines((await runCli(["classify", ...ood.map((i) => i.file), "--classes", "red,green,blue", "--json", ...base()])).stdout);
  for (const row of o) assert.ok((row["top"] as { prob: number }[])[0]!.prob < 0.5, JSON.stringify(row));
});

test("detect separates ID from OOD with the family's scores; softmax-only methods are refused", async () => {
  const files = [...id, ...ood].map((i) => i.file);
  for (const method of ["mcm", "maxlogit", "energy", "outliers"]) {
    const extra = method === "outliers" ? ["--outlier-classes", "yellow,pink"] : [];
    const r = await runCli(["detect", ...files, "--classes", "red,green,blue", "--method", method, ...extra, "--json", ...base()]);
    assert.equal(r.code, 0, `${method}: ${r.stderr}`);
    const scores = jsonLines(r.stdout).map((x) => x["score"] as number);
    const idScores = scores.slice(0, id.length);
    const oodScores = scores.slice(id.length);
    assert.ok(Math.min(...idScores) > Math.max(...oodScores), `${method}: ${scores.join(", ")}`);
    if (method === "mcm") for (const s of scores) assert.ok(s >= 0 && s <= 1, "max sigmoid is a probability");
  }
  for (const method of ["entropy", "unknown", "neglabel", "glmcm"]) {
    const r = await runCli(["detect", ...files, "--classes", "red,green,blue", "--method", method, ...base()]);
    assert.equal(r.code, 2, `${method}: ${r.stderr}`);
    assert.match(r.stderr, /sigmoid-scored models \(SigLIP\)/, method);
  }
  // Heads built on CLIP's softmax(100·cos) classifier are refused before anything is encoded or fitted.
  const m = await ClipModel.load({ model, textCache: false, threads: 1 });
  try {
    for (const method of ["tip-adapter", "tip-adapter-f", "taskres"] as const) {
      await assert.rejects(prepareDetector(m, { method, classes: parseClassList("red,green"), templates: ["{}"] }), (e: unknown) => isClipOodError(e) && /softmax/.test(e.message), method);
    }
  } finally {
    await m.close();
  }
});

test("embed writes unit-norm pooler_output embeddings; the red text is nearest the red image", async () => {
  const out = path.join(await tempDir(), "e.jsonl");
  const r = await runCli(["embed", id[0]!.file, id[1]!.file, "--text", "a photo of a red", "--out", out, ...base()]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(await readFile(out, "utf8"));
  const [t, red, green] = rows.map((x) => x["embedding"] as number[]);
  for (const e of [t!, red!, green!]) close(Math.hypot(...e), 1, 1e-5);
  const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  assert.ok(dot(t!, red!) > dot(t!, green!));
});

test("eval on the SigLIP world: perfect separation and ID accuracy with the family's scores", async () => {
  const root = await tempDir();
  const idDir = path.join(root, "val");
  await placeImages(id, (img) => path.join(idDir, img.colour));
  const oodList = path.join(root, "ood.txt");
  await writeFile(oodList, ood.map((i) => i.file).join("\n") + "\n");
  const r = await runCli(["eval", "--id", idDir, "--ood", `warm=${oodList}`, "--methods", "mcm,energy,maxlogit", "--json", ...base()]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(r.stdout).filter((x) => "method" in x);
  assert.deepEqual(rows.map((x) => `${String(x["method"])}/${String(x["ood"])}`), ["mcm/warm", "mcm/average", "energy/warm", "energy/average", "maxlogit/warm", "maxlogit/average"]);
  for (const row of rows) {
    assert.equal(row["auroc"], 1, JSON.stringify(row));
    assert.equal(row["idAccuracy"], 1, JSON.stringify(row));
  }
});
