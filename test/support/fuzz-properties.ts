/**
 * Property-based fuzzing of every parser that reads input from other hands (class lists, templates,
 * embeddings and .npy files, detector files, data-set lists, image bytes, HTTP bodies). Written once
 * here, run briefly by test/fuzz.test.ts and at length by scripts/fuzz.ts.
 *
 * The property is the same everywhere: the parser returns a well-formed result, or throws a
 * ClipOodError of the expected code with a message. Anything else (TypeError, RangeError, a hang, a
 * 500 from the server, a huge allocation) is a bug.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import fc from "fast-check";
import sharp from "sharp";
import { ClipModel } from "../../src/clip.js";
import { ClipOodError } from "../../src/errors.js";
import type { ErrorCode } from "../../src/errors.js";
import { CLIP_MEAN, CLIP_STD, preprocessImage } from "../../src/image/preprocess.js";
import type { PreprocessConfig } from "../../src/image/preprocess.js";
import { fromCsv, fromList } from "../../src/io/datasets.js";
import { readEmbeddings } from "../../src/io/embeddings.js";
import { decodeNpy, encodeNpy } from "../../src/io/npy.js";
import { buildDetector } from "../../src/ood/build.js";
import { loadDetector, saveDetector, sidecarPath } from "../../src/ood/detector-file.js";
import type { Detector } from "../../src/ood/detector.js";
import { startServer } from "../../src/server/app.js";
import type { RunningServer } from "../../src/server/app.js";
import { parseClassesJson, parseClassesText, parseClassList } from "../../src/text/classes.js";
import type { ClassSpec } from "../../src/text/classes.js";
import { inlineTemplates, TEMPLATE_PRESETS } from "../../src/text/templates.js";
import { makeModel, tempDir } from "./model.js";

// ---------------------------------------------------------------------------------------------------------
// Shared expectations

/** Rethrows anything that is not a ClipOodError of `code` with a message: the bug the fuzzer is after. */
function expectClipOodError(e: unknown, code: ErrorCode): void {
  if (!(e instanceof ClipOodError) || e.code !== code || e.message.trim() === "") {
    const what = e instanceof ClipOodError ? `ClipOodError ${e.code}: ${e.message}` : e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ""}` : String(e);
    assert.fail(`expected a result or a ClipOodError ${code} with a message, got ${what}`);
  }
}

/** Runs `f`; undefined when it failed the expected way, its result otherwise. */
async function resultOrError<T>(code: ErrorCode, f: () => T | Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    expectClipOodError(e, code);
    return undefined;
  }
}

function syncResultOrError<T>(code: ErrorCode, f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    expectClipOodError(e, code);
    return undefined;
  }
}

function checkClasses(classes: ClassSpec[] | undefined): void {
  if (classes === undefined) return;
  assert.ok(Array.isArray(classes) && classes.length > 0, "a class list that parses is non-empty");
  const seen = new Set<string>();
  for (const c of classes) {
    assert.ok(typeof c.label === "string" && c.label !== "", `every label is a non-empty string, got ${JSON.stringify(c.label)}`);
    assert.ok(!seen.has(c.label.toLowerCase()), `labels are unique ignoring case, "${c.label}" repeats`);
    seen.add(c.label.toLowerCase());
    assert.ok(Array.isArray(c.names) && c.names.every((n) => typeof n === "string" && n !== ""), `names of "${c.label}" are non-empty strings`);
    assert.ok(Array.isArray(c.descriptions) && c.descriptions.every((d) => typeof d === "string" && d !== ""), `descriptions of "${c.label}" are non-empty strings`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Byte mutations

type Mutation = { kind: "flip"; at: number; bit: number } | { kind: "truncate"; at: number } | { kind: "splice"; at: number; cut: number; bytes: Uint8Array } | { kind: "set"; at: number; value: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("splice" as const), at: fc.nat(), cut: fc.nat({ max: 16 }), bytes: fc.uint8Array({ maxLength: 16 }) }),
  // Boundary bytes in headers (lengths, dimensions) are where parsers go wrong.
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x7f, 0x80, 0xff) }),
);

/**
 * Positions are taken modulo the length, biased to the first 64 bytes half of the time (headers).
 * The mutations are applied in order to a copy.
 */
export function mutate(original: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(original);
  for (const m of mutations) {
    if (b.length === 0) break;
    const span = m.at % 2 === 0 ? Math.min(b.length, 64) : b.length;
    const at = Math.floor(m.at / 2) % span;
    if (m.kind === "flip") b[at] = b[at]! ^ (1 << m.bit);
    else if (m.kind === "set") b[at] = m.value;
    else if (m.kind === "truncate") b = b.subarray(0, at);
    else b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(Math.min(b.length, at + m.cut))]);
  }
  return b;
}

const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 });

// ---------------------------------------------------------------------------------------------------------
// Text generators

/** Characters that mean something to the parsers, plus controls, so random text hits the branches. */
const PUNCTUATION = ["\n", "\r\n", "\r", ":", "=", "|", "#", ",", "\t", " ", "[", "]", "{", "}", '"', "{}", "\uFEFF", "\u0000", "\u2028", "\u00a0", "A", "a", "é", "e\u0301", "🐈"];

const fragmentArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...PUNCTUATION) },
  { weight: 3, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom("cat", "Cat", "CAT", "dog", "cifar10", "cifar100", "photo", "a photo of a {}", "path", "label") },
);

/** Text assembled from fragments, arbitrary unicode, or a huge repeated line. */
const textArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fragmentArb, { maxLength: 40 }).map((parts) => parts.join("")) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  { weight: 1, arbitrary: fc.tuple(fc.string({ minLength: 1, maxLength: 4 }), fc.integer({ min: 1_000, max: 50_000 })).map(([s, n]) => s.repeat(n)) },
);

// ---------------------------------------------------------------------------------------------------------
// Environment: what several targets share, made lazily and once

export interface FuzzEnv {
  /** A fresh temp dir for files the targets write. */
  dir: string;
  model(): Promise<ClipModel>;
  server(): Promise<RunningServer>;
  close(): Promise<void>;
}

export async function makeFuzzEnv(): Promise<FuzzEnv> {
  const dir = await tempDir("clip-ood-fuzz-");
  let modelDir: Promise<string> | undefined;
  let model: Promise<ClipModel> | undefined;
  let server: Promise<RunningServer> | undefined;
  const folder = () => (modelDir ??= makeModel());
  return {
    dir,
    model: () => (model ??= folder().then((m) => ClipModel.load({ model: m, cacheDir: path.join(dir, "cache"), threads: 1 }))),
    server: () => (server ??= folder().then((m) => startServer({ model: m, cacheDir: path.join(dir, "cache"), threads: 1, store: false, port: 0 }))),
    async close() {
      await (await server?.catch(() => undefined))?.close();
      await (await model?.catch(() => undefined))?.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Targets

export interface FuzzTarget {
  name: string;
  /** Runs in the test suite (kept small: the whole file must stay within ~30 s on 2 cores). */
  testRuns: number;
  /** Share of the long run's --runs this target gets (HTTP requests and image decodes cost more). */
  longRunShare: number;
  property(env: FuzzEnv): Promise<fc.IAsyncProperty<never>>;
}

/** Type-erases a property's generated tuple so that targets of different inputs fit one list. */
function erase<T>(p: fc.IAsyncProperty<T>): fc.IAsyncProperty<never> {
  return p as unknown as fc.IAsyncProperty<never>;
}

const classItemArb = fc.oneof(
  fragmentArb,
  fc.record(
    { label: fc.oneof(fragmentArb, fc.jsonValue()), synonyms: fc.oneof(fc.array(fragmentArb, { maxLength: 3 }), fc.jsonValue()), descriptions: fc.oneof(fc.array(fragmentArb, { maxLength: 3 }), fc.jsonValue()) },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 2 }),
);
const classJsonArb = fc.oneof(
  fc.array(classItemArb, { maxLength: 8 }),
  fc.dictionary(fragmentArb, fc.oneof(fc.array(fragmentArb, { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })), { maxKeys: 6 }),
  fc.jsonValue({ maxDepth: 3 }),
);

const classesTarget: FuzzTarget = {
  name: "classes",
  testRuns: 300,
  longRunShare: 1,
  async property() {
    return erase(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ form: fc.constant("text" as const), input: textArb }),
          fc.record({ form: fc.constant("json" as const), input: classJsonArb }),
          fc.record({ form: fc.constant("list" as const), input: fc.oneof(textArb, classJsonArb.map((v) => JSON.stringify(v) ?? "")) }),
          fc.record({ form: fc.constant("array" as const), input: fc.array(classItemArb, { maxLength: 8 }) }),
        ),
        async (c) => {
          const parse = (): ClassSpec[] =>
            c.form === "text"
              ? parseClassesText(c.input, "fuzz.txt")
              : c.form === "json"
                ? parseClassesJson(c.input, "fuzz.json")
                : c.form === "list"
                  ? parseClassList(c.input)
                  : parseClassList(c.input);
          checkClasses(syncResultOrError("CLASSES", parse));
        },
      ),
    );
  },
};

const templatesTarget: FuzzTarget = {
  name: "templates",
  testRuns: 300,
  longRunShare: 1,
  async property() {
    const templateArb = fc.oneof(textArb, fc.constantFrom(...Object.keys(TEMPLATE_PRESETS), "", "{}", "{}{}", "{{}}", "a {} of {}", "__proto__", "toString"));
    return erase(
      fc.asyncProperty(fc.oneof(fc.constant(undefined), templateArb, fc.array(templateArb, { maxLength: 5 })), async (spec) => {
        const templates = syncResultOrError("TEMPLATES", () => inlineTemplates(spec));
        if (templates === undefined) return;
        assert.ok(templates.length > 0, "a template list that parses is non-empty");
        for (const t of templates) assert.equal(t.split("{}").length - 1, 1, `template ${JSON.stringify(t)} has exactly one {}`);
      }),
    );
  },
};

/** A finite, unit-row embedding set whose inputs and labels line up with its rows. */
function checkEmbeddings(set: Awaited<ReturnType<typeof readEmbeddings>> | undefined): void {
  if (set === undefined) return;
  const { rows, cols, data } = set.matrix;
  assert.ok(rows > 0 && cols > 0, `an embeddings file that reads has rows and columns (${rows}×${cols})`);
  assert.equal(data.length, rows * cols, "matrix data holds rows × cols values");
  assert.equal(set.inputs.length, rows, "one input per row");
  assert.equal(set.labels.length, rows, "one label slot per row");
  assert.ok(set.inputs.every((s) => typeof s === "string"), "inputs are strings");
  for (let i = 0; i < rows; i++) {
    let ss = 0;
    for (let j = 0; j < cols; j++) {
      const x = data[i * cols + j]!;
      assert.ok(Number.isFinite(x), `row ${i} holds ${x}`);
      ss += x * x;
    }
    assert.ok(Math.abs(Math.sqrt(ss) - 1) < 1e-3, `row ${i} has norm ${Math.sqrt(ss)}, not 1`);
  }
}

const VALID_JSONL = [
  JSON.stringify({ input: "a.png", label: "cat", model: "m", embedding: [0.1, -0.2, 0.3] }),
  JSON.stringify({ input: "b.png", label: 3, model: "m", embedding: [1e-30, 2, 1e30] }),
  JSON.stringify({ input: "c.png", error: "unreadable" }),
].join("\n");

let fileCounter = 0;

const embeddingsTarget: FuzzTarget = {
  name: "embeddings",
  testRuns: 200,
  longRunShare: 1,
  async property(env) {
    const npy = encodeNpy(new Float32Array([0.5, -1, 2, 1e-20, 3e38, -0.25]), [2, 3]);
    const sidecar = JSON.stringify({ model: "m", rows: [{ input: "a.png", label: "cat" }, { input: "b.png", label: 7 }] });
    const jsonRowArb = fc.record(
      { input: fc.jsonValue({ maxDepth: 1 }), label: fc.jsonValue({ maxDepth: 1 }), model: fc.oneof(fc.constantFrom("m", "n"), fc.jsonValue({ maxDepth: 1 })), error: fc.jsonValue({ maxDepth: 1 }), embedding: fc.oneof(fc.array(fc.double(), { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })) },
      { requiredKeys: [] },
    );
    const caseArb = fc.oneof(
      fc.record({ kind: fc.constant("random-jsonl" as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
      fc.record({ kind: fc.constant("random-npy" as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
      fc.record({ kind: fc.constant("mutated-jsonl" as const), mutations: mutationsArb }),
      // JSON.stringify writes non-finite doubles as null, which the reader must refuse like any non-number.
      fc.record({ kind: fc.constant("json-rows" as const), rows: fc.array(jsonRowArb, { maxLength: 4 }).map((rows) => rows.map((r) => JSON.stringify(r)).join("\n")) }),
      fc.record({ kind: fc.constant("mutated-npy" as const), mutations: mutationsArb, sidecar: fc.oneof(fc.constant(sidecar), fc.constant(undefined), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ""), fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString("latin1"))) }),
    );
    return erase(
      fc.asyncProperty(caseArb, async (c) => {
        const isNpy = c.kind === "random-npy" || c.kind === "mutated-npy";
        const file = path.join(env.dir, `emb-${++fileCounter}.${isNpy ? "npy" : "jsonl"}`);
        const bytes = c.kind === "random-jsonl" || c.kind === "random-npy" ? c.bytes : c.kind === "mutated-jsonl" ? mutate(Buffer.from(VALID_JSONL), c.mutations) : c.kind === "json-rows" ? Buffer.from(c.rows) : mutate(npy, c.mutations);
        await writeFile(file, bytes);
        if (c.kind === "mutated-npy" && c.sidecar !== undefined) await writeFile(`${file}.json`, c.sidecar);
        checkEmbeddings(await resultOrError("INPUT", () => readEmbeddings(file)));
      }),
    );
  },
};

/** Most numpy shapes are small; a few are absurd (the decoder must refuse them before allocating). */
const dimArb = fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 4 }).map(String) }, { weight: 1, arbitrary: fc.constantFrom("99999999999", "4294967296", "9007199254740993", "1L", "-1", "0x10", "1e3", " 2 ", "") });

const npyTarget: FuzzTarget = {
  name: "npy-header",
  testRuns: 300,
  longRunShare: 1,
  async property() {
    const headerArb = fc.record({
      major: fc.constantFrom(1, 2, 3, 4, 0),
      descr: fc.oneof(fc.constantFrom("<f4", "<f8", ">f4", "|u1", "<i4", "<f2", "O"), fc.string({ maxLength: 4 })),
      fortran: fc.constantFrom("False", "True", "false", "0"),
      shape: fc.array(dimArb, { maxLength: 4 }),
      dataBytes: fc.nat({ max: 200 }),
      lengthDelta: fc.integer({ min: -3, max: 3 }),
    });
    return erase(
      fc.asyncProperty(headerArb, fc.uint8Array({ maxLength: 8 }), async (h, noise) => {
        const shape = h.shape.length === 1 ? `(${h.shape[0]},)` : `(${h.shape.join(", ")})`;
        const text = Buffer.from(`{'descr': '${h.descr}', 'fortran_order': ${h.fortran}, 'shape': ${shape}, }\n`, h.major === 3 ? "utf8" : "latin1");
        const prefix = h.major === 1 ? 10 : 12;
        const buf = Buffer.alloc(prefix + text.length + h.dataBytes);
        buf.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, h.major, 0]);
        // A header length that lies by a few bytes, or one absurdly large through the noise bytes.
        const len = Math.max(0, text.length + h.lengthDelta + (noise[0] ?? 0) * (noise[1] === 255 ? 65536 : 0));
        if (h.major === 1) buf.writeUInt16LE(Math.min(len, 0xffff), 8);
        else buf.writeUInt32LE(Math.min(len, 0xffffffff), 8);
        text.copy(buf, prefix);
        const decoded = syncResultOrError("INPUT", () => decodeNpy(buf, "fuzz.npy"));
        if (decoded === undefined) return;
        const count = decoded.shape.reduce((a, b) => a * b, 1);
        assert.equal(decoded.data.length, count, `data holds the ${count} values shape ${JSON.stringify(decoded.shape)} promises`);
        assert.ok(decoded.shape.every((d) => Number.isSafeInteger(d) && d >= 0), `shape ${JSON.stringify(decoded.shape)} holds sizes`);
      }),
    );
  },
};

/** Every path to a value inside a JSON document, for replacing fields at random. */
function jsonPaths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const here = prefix.length > 0 ? [prefix] : [];
  if (Array.isArray(v)) return [...here, ...v.flatMap((x, i) => jsonPaths(x, [...prefix, i]))];
  if (typeof v === "object" && v !== null) return [...here, ...Object.entries(v).flatMap(([k, x]) => jsonPaths(x, [...prefix, k]))];
  return here;
}

function replaceAt(doc: unknown, at: readonly (string | number)[], value: unknown, remove: boolean): void {
  let parent = doc as Record<string | number, unknown>;
  for (const k of at.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = at[at.length - 1]!;
  if (remove && !Array.isArray(parent)) delete parent[last];
  else parent[last] = value;
}

const detectorTarget: FuzzTarget = {
  name: "detector-file",
  testRuns: 150,
  longRunShare: 1,
  async property(env) {
    const model = await env.model();
    const detector = await buildDetector(model, { method: "mcm", classes: parseClassList("red,green,blue"), templates: ["a photo of a {}"] });
    const file = path.join(env.dir, "detector.json");
    await saveDetector(detector, file);
    const original = { json: await readFile(file), bin: await readFile(sidecarPath(file)) };
    const baseline: Detector = await loadDetector(file);
    const doc = JSON.parse(original.json.toString("utf8")) as unknown;
    // Plus the optional sections an mcm detector lacks, so that random values reach their checks too.
    const paths = [...jsonPaths(doc), ...["parts", "negatives", "fitted", "extra"].map((k) => ["detector", k])];
    // Near-miss sections: the right keys with wrong values, and array references into the sidecar.
    const refArb = fc.record({ $f32: fc.oneof(fc.tuple(fc.integer({ min: -2, max: 10 }), fc.integer({ min: -2, max: 10 })), fc.jsonValue({ maxDepth: 1 })) });
    const anyArb = fc.oneof(refArb, fc.jsonValue({ maxDepth: 1 }), fc.constantFrom("mcm", "knn", "mahalanobis", "ocsvm", 1, 2, 3));
    const sectionArb = fc.oneof(
      fc.array(fc.dictionary(fc.constantFrom("weight", "standardizer", "detector"), fc.oneof(anyArb, fc.record({ mean: anyArb, std: anyArb }))), { maxLength: 2 }),
      fc.dictionary(fc.constantFrom("kind", "dim", "classes", "means", "precision", "bank", "k", "coefficients", "supportVectors", "labels", "features", "groups", "matrix", "rows", "cols", "data"), fc.oneof(anyArb, fc.array(anyArb, { maxLength: 3 }), fc.record({ rows: anyArb, cols: anyArb, data: anyArb }))),
    );
    const caseArb = fc.oneof(
      fc.record({ kind: fc.constant("json-bytes" as const), mutations: mutationsArb }),
      fc.record({ kind: fc.constant("bin-bytes" as const), mutations: mutationsArb }),
      fc.record({ kind: fc.constant("field" as const), at: fc.nat(), value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), sectionArb), remove: fc.boolean() }),
    );
    // Loading reads the sidecar by the name recorded in the JSON, so each run rewrites the same pair.
    const scratch = path.join(env.dir, "scratch.json");
    return erase(
      fc.asyncProperty(caseArb, async (c) => {
        let json: Buffer = original.json;
        let bin: Buffer = original.bin;
        if (c.kind === "json-bytes") json = mutate(original.json, c.mutations);
        else if (c.kind === "bin-bytes") bin = mutate(original.bin, c.mutations);
        else {
          const copy = structuredClone(doc);
          replaceAt(copy, paths[c.at % paths.length]!, c.value, c.remove);
          json = Buffer.from(JSON.stringify(copy));
        }
        const compact = JSON.stringify(doc);
        // The sidecar name inside the JSON is detector.json.bin; rewrite it to the scratch pair.
        await writeFile(scratch, json.toString("utf8").replaceAll("detector.json.bin", "scratch.json.bin"));
        await writeFile(sidecarPath(scratch), bin);
        const loaded = await resultOrError("INPUT", () => loadDetector(scratch));
        const unchanged = bin.equals(original.bin) && (json.equals(original.json) || json.toString("utf8") === compact);
        if (unchanged) assert.deepEqual(loaded, baseline, "an unmutated detector loads equal to the original");
        else if (loaded !== undefined) assert.ok(typeof loaded === "object" && loaded !== null && typeof loaded.method === "string", "a mutated detector that loads is a detector object");
      }),
    );
  },
};

const datasetsTarget: FuzzTarget = {
  name: "datasets",
  testRuns: 300,
  longRunShare: 1,
  async property() {
    const specArb = fc.constantFrom("/data/list.txt", "list.lst", "sets/id.csv", "sets/ood.TSV", "rel/x.tsv");
    const cellArb = fc.oneof(fragmentArb, fc.constantFrom("path", "file", "label", "class", "a.png", "my photo.jpg", "b.jpg\tcat", '"q,uoted"', '"', "7"));
    const tableArb = fc.array(fc.array(cellArb, { maxLength: 4 }), { maxLength: 6 }).chain((rows) =>
      fc.constantFrom(",", "\t", " ").map((sep) => rows.map((r) => r.join(sep)).join("\n")),
    );
    return erase(
      fc.asyncProperty(fc.constantFrom("list" as const, "csv" as const), specArb, fc.oneof(textArb, tableArb), async (form, spec, text) => {
        const ds = syncResultOrError("INPUT", () => (form === "list" ? fromList(spec, text) : fromCsv(spec, text)));
        if (ds === undefined) return;
        assert.ok(ds.images.length > 0, "a data set that parses lists images");
        assert.ok(ds.images.every((i) => typeof i.input === "string" && path.isAbsolute(i.input)), "every input is an absolute path");
        assert.ok(ds.images.every((i) => i.label === undefined || (typeof i.label === "string" && i.label !== "")), "labels are absent or non-empty strings");
        assert.equal(ds.labelled, ds.images.some((i) => i.label !== undefined), "labelled says whether any image has a label");
      }),
    );
  },
};

/** CLIPImageProcessor's defaults (224, bicubic, OpenAI mean/std), as parsePreprocessorConfig gives for `{}`. */
const CLIP_CONFIG: PreprocessConfig = {
  shortestEdge: 224,
  cropHeight: 224,
  cropWidth: 224,
  mean: CLIP_MEAN,
  std: CLIP_STD,
  rescaleFactor: 1 / 255,
  doResize: true,
  doCenterCrop: true,
  doNormalize: true,
  doRescale: true,
};

/** Small valid images in every format the decoder claims, each from the same noisy RGBA raster. */
async function sampleImages(): Promise<Buffer[]> {
  const width = 37;
  const height = 23;
  const raw = Buffer.alloc(width * height * 4);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 97 + (i >> 3) * 13) & 0xff;
  const base = () => sharp(raw, { raw: { width, height, channels: 4 } });
  return Promise.all([base().png().toBuffer(), base().jpeg().toBuffer(), base().webp().toBuffer(), base().gif().toBuffer(), base().removeAlpha().png({ palette: true }).toBuffer()]);
}

const imagesTarget: FuzzTarget = {
  name: "image-decode",
  testRuns: 200,
  longRunShare: 0.25,
  async property() {
    const samples = await sampleImages();
    // Unmutated samples must decode, or every mutant would fail for the wrong reason.
    for (const [i, s] of samples.entries()) {
      const out = await preprocessImage(s, CLIP_CONFIG, { exifRotate: false, maxPixels: 0 }, `sample ${i}`);
      assert.equal(out.length, 3 * 224 * 224, `sample image ${i} decodes to a 3×224×224 tensor`);
    }
    const caseArb = fc.oneof(
      fc.record({ kind: fc.constant("random" as const), bytes: fc.uint8Array({ maxLength: 400 }) }),
      fc.record({ kind: fc.constant("mutated" as const), sample: fc.nat({ max: samples.length - 1 }), mutations: mutationsArb }),
    );
    return erase(
      fc.asyncProperty(caseArb, fc.constantFrom(1_000, 100_000_000), async (c, maxPixels) => {
        const bytes = c.kind === "random" ? Buffer.from(c.bytes) : mutate(samples[c.sample]!, c.mutations);
        const out = await resultOrError("IMAGE", () => preprocessImage(bytes, CLIP_CONFIG, { exifRotate: false, maxPixels }, "fuzz-image"));
        if (out === undefined) return;
        assert.ok(out instanceof Float32Array && out.length === 3 * 224 * 224, `a decoded image is a 3×224×224 tensor, got ${out.length} values`);
        assert.ok(out.every(Number.isFinite), "every pixel value is finite");
      }),
    );
  },
};

interface HttpCase {
  route: "/v1/classify" | "/v1/detect";
  body: { json: unknown } | { raw: string } | { form: { fields: [string, string][]; files: [string, string, Uint8Array][] } };
}

const httpTarget: FuzzTarget = {
  name: "http",
  testRuns: 50,
  longRunShare: 0.05,
  async property(env) {
    const server = await env.server();
    const samples = await sampleImages();
    const imageBytesArb = fc.oneof(
      fc.nat({ max: samples.length - 1 }).map((i) => samples[i]!),
      fc.tuple(fc.nat({ max: samples.length - 1 }), mutationsArb).map(([i, m]) => mutate(samples[i]!, m)),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    );
    const imageJsonArb = fc.oneof(
      imageBytesArb.map((b) => ({ name: "a.png", data: b.toString("base64") })),
      imageBytesArb.map((b) => `data:image/png;base64,${b.toString("base64")}`),
      fc.jsonValue({ maxDepth: 2 }),
    );
    const fieldArb = fc.oneof(textArb.map((s) => s.slice(0, 300)), fc.constantFrom("red,green,blue", '["red","green"]', "photo", "a photo of a {}", "5", "0", "-1", "mcm", "energy", "unknown", "maxlogit", "nope", "0.5", "NaN"));
    const jsonBodyArb = fc.oneof(
      fc.record(
        {
          images: fc.oneof(fc.array(imageJsonArb, { maxLength: 3 }), fc.jsonValue({ maxDepth: 2 })),
          classes: fc.oneof(fieldArb, fc.array(fieldArb, { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
          templates: fc.oneof(fieldArb, fc.array(fieldArb, { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })),
          top: fc.oneof(fieldArb, fc.jsonValue({ maxDepth: 0 })),
          method: fc.oneof(fieldArb, fc.jsonValue({ maxDepth: 0 })),
          detector: fc.oneof(fieldArb, fc.jsonValue({ maxDepth: 0 })),
          threshold: fc.oneof(fieldArb, fc.jsonValue({ maxDepth: 0 })),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue({ maxDepth: 2 }),
    );
    const formArb = fc.record({
      fields: fc.array(fc.tuple(fc.constantFrom("classes", "templates", "top", "method", "detector", "threshold", "image", "x"), fieldArb), { maxLength: 5 }),
      files: fc.array(fc.tuple(fc.constantFrom("image", "images", "classes"), fc.constantFrom("a.png", "", "x.jpg"), imageBytesArb), { maxLength: 3 }),
    });
    const caseArb: fc.Arbitrary<HttpCase> = fc.record({
      route: fc.constantFrom("/v1/classify" as const, "/v1/detect" as const),
      body: fc.oneof(
        { weight: 3, arbitrary: jsonBodyArb.map((json) => ({ json })) },
        { weight: 1, arbitrary: textArb.map((raw) => ({ raw: raw.slice(0, 2000) })) },
        { weight: 3, arbitrary: formArb.map((form) => ({ form })) },
      ),
    });
    return erase(
      fc.asyncProperty(caseArb, async (c) => {
        let init: RequestInit;
        if ("json" in c.body) init = { body: JSON.stringify(c.body.json) ?? "null", headers: { "content-type": "application/json" } };
        else if ("raw" in c.body) init = { body: c.body.raw, headers: { "content-type": "application/json" } };
        else {
          const form = new FormData();
          for (const [k, v] of c.body.form.fields) form.append(k, v);
          for (const [k, name, data] of c.body.form.files) form.append(k, new Blob([data], { type: "image/png" }), name);
          init = { body: form };
        }
        const res = await fetch(server.url + c.route, { method: "POST", ...init });
        const text = await res.text();
        assert.ok(res.status === 200 || res.status === 503 || (res.status >= 400 && res.status < 500), `status ${res.status} (never 5xx but 503): ${text.slice(0, 500)}`);
        if (res.status >= 400 && res.status < 500) {
          const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
          assert.ok(typeof body.error?.code === "string" && typeof body.error.message === "string" && body.error.message !== "", `a ${res.status} carries {error: {code, message}}: ${text.slice(0, 500)}`);
        }
      }),
    );
  },
};

export const FUZZ_TARGETS: readonly FuzzTarget[] = [classesTarget, templatesTarget, embeddingsTarget, npyTarget, detectorTarget, datasetsTarget, imagesTarget, httpTarget];
