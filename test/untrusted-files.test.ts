/**
 * Files from other hands — detectors, embeddings, class and data-set lists — that are oversized, lie
 * about their size, are not regular files, or name paths outside their folder. Each is refused with a
 * ClipOodError naming it, before its content is read into memory; nothing named inside is opened.
 * Oversized files are sparse: they take no disk space, and reading them whole would take gigabytes.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, open, readFile, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { ClipOodError } from "../src/errors.js";
import { readDataset } from "../src/eval/datasets.js";
import { readEmbeddings } from "../src/io/embeddings.js";
import { encodeNpy } from "../src/io/npy.js";
import { loadDetector, saveDetector, sidecarPath } from "../src/ood/detector-file.js";
import type { Detector } from "../src/ood/detector.js";
import { recordedModelRef } from "../src/model/resolve.js";
import { loadClasses } from "../src/text/classes.js";
import { rejectsWithCode } from "./support/assertions.js";
import { tempDir } from "./support/model.js";

const GiB = 2 ** 30;

async function sparse(file: string, bytes: number, head: Uint8Array = new Uint8Array()): Promise<void> {
  const fh = await open(file, "w");
  await fh.write(head, 0, head.length, 0);
  await fh.truncate(bytes);
  await fh.close();
}

/** A named pipe nobody writes to: reading it would block forever. */
function fifo(file: string): string {
  const r = spawnSync("mkfifo", [file]);
  assert.equal(r.status, 0, `mkfifo ${file}`);
  return file;
}

/** Runs `load` and checks it was refused without allocating the file's size (ArrayBuffer memory stays low). */
async function refusedCheaply(load: () => Promise<unknown>, code: ClipOodError["code"], ...fragments: string[]): Promise<void> {
  const before = process.memoryUsage().arrayBuffers;
  await assert.rejects(load(), rejectsWithCode(code, ...fragments));
  const grew = process.memoryUsage().arrayBuffers - before;
  assert.ok(grew < 256 * 2 ** 20, `refusing took ${Math.round(grew / 2 ** 20)} MiB of buffers`);
}

function tinyDetector(): Detector {
  const data = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0]);
  return {
    method: "mcm",
    params: {},
    model: { id: "Xenova/clip-vit-base-patch32", dtype: "fp32", dim: 4, exifRotate: true },
    templates: ["a photo of a {}"],
    classes: [
      { label: "cat", names: ["cat"], descriptions: [] },
      { label: "dog", names: ["dog"], descriptions: [] },
    ],
    classFeatures: { labels: ["cat", "dog"], prompts: [["a photo of a cat"], ["a photo of a dog"]], matrix: { rows: 2, cols: 4, data } },
  };
}

test("detector files: size claims beyond their arrays, huge references, pipes and oversized JSON are refused unread", async () => {
  const dir = await tempDir();
  const file = path.join(dir, "det.json");
  await saveDetector(tinyDetector(), file);
  const doc = JSON.parse(await readFile(file, "utf8")) as { sidecar: { bytes: number }; detector: { classFeatures: { matrix: { data: unknown } } } };
  const write = (d: unknown) => writeFile(file, JSON.stringify(d));

  // The sidecar record claims 3 GiB and the sidecar really is that big (sparse): the JSON's arrays need 32 bytes.
  await sparse(sidecarPath(file), 3 * GiB);
  await write({ ...doc, sidecar: { ...doc.sidecar, bytes: 3 * GiB } });
  await refusedCheaply(() => loadDetector(file), "INPUT", "is damaged", "says 3221225472 bytes, its arrays need 32");

  // An array reference reaching 5 GiB in, past the 4 GiB clip-ood reads: refused from the JSON alone.
  const far = structuredClone(doc);
  far.detector.classFeatures.matrix.data = { $f32: [0, 1.25 * GiB] };
  await write({ ...far, sidecar: { ...far.sidecar, bytes: 5 * GiB } });
  await refusedCheaply(() => loadDetector(file), "INPUT", "is damaged", "more than clip-ood reads");

  // A sidecar that is a named pipe: refused, not waited on.
  await saveDetector(tinyDetector(), path.join(dir, "p.json"));
  await rm(sidecarPath(path.join(dir, "p.json")));
  fifo(sidecarPath(path.join(dir, "p.json")));
  await assert.rejects(loadDetector(path.join(dir, "p.json")), rejectsWithCode("INPUT", "is damaged", "not a regular file"));

  // The detector itself: a pipe, a folder, a 300 MiB file.
  await assert.rejects(loadDetector(fifo(path.join(dir, "pipe.json"))), rejectsWithCode("INPUT", "pipe.json", "not a regular file"));
  await assert.rejects(loadDetector(dir), rejectsWithCode("INPUT", "not a regular file (a folder)"));
  await sparse(path.join(dir, "big.json"), 300 * 2 ** 20, Buffer.from('{"format":"clip-ood-detector"'));
  await refusedCheaply(() => loadDetector(path.join(dir, "big.json")), "INPUT", "big.json is 300 MiB, over the 256 MiB");
});

test("detector files: the sidecar is always the file beside the detector, whatever the record names", async () => {
  const dir = await tempDir();
  const inner = path.join(dir, "inner");
  await mkdir(inner);
  const file = path.join(inner, "det.json");
  await saveDetector(tinyDetector(), file);
  // A genuine sidecar elsewhere, named by a relative path that climbs out and by an absolute one.
  const outside = path.join(dir, "elsewhere.bin");
  await writeFile(outside, await readFile(sidecarPath(file)));
  const doc = JSON.parse(await readFile(file, "utf8")) as { sidecar: { file: string } };
  await rm(sidecarPath(file));
  for (const named of ["../elsewhere.bin", outside]) {
    await writeFile(file, JSON.stringify({ ...doc, sidecar: { ...doc.sidecar, file: named } }));
    // The record's basename is looked up beside the detector, where there is no such file.
    await assert.rejects(loadDetector(file), rejectsWithCode("INPUT", "is damaged", "cannot be used", "ENOENT"), `sidecar named ${named}`);
  }
});

test("embeddings files: .npy headers that lie, oversized arrays, overlong JSON lines and pipes are refused unread", async () => {
  const dir = await tempDir();
  const npyHeader = (shape: string) => {
    const real = encodeNpy(new Float32Array(2), [1, 2]);
    const len = real.readUInt16LE(8);
    const text = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`.padEnd(len - 1, " ") + "\n";
    return Buffer.concat([real.subarray(0, 10), Buffer.from(text, "latin1")]);
  };
  // The header claims a billion rows, the file holds 8 bytes of data.
  const liar = path.join(dir, "liar.npy");
  await writeFile(liar, Buffer.concat([npyHeader("(1000000000, 512)"), Buffer.alloc(8)]));
  await refusedCheaply(() => readEmbeddings(liar), "INPUT", "needs 2048000000000 data bytes, the file has 8 (truncated?)");
  // A 5 GiB float32 array whose header tells the truth (sparse file): over the 4 GiB clip-ood reads from one file.
  const huge = path.join(dir, "huge.npy");
  const head = npyHeader("(2621440, 512)");
  await sparse(huge, head.length + 2621440 * 512 * 4, head);
  await refusedCheaply(() => readEmbeddings(huge), "INPUT", "5.0 GiB of float32, over the 4.0 GiB");
  // A header length field claiming 4 GiB (format 2.0).
  const v2 = Buffer.from("\x93NUMPY\x02\x00\xff\xff\xff\xff{", "latin1");
  await writeFile(path.join(dir, "v2.npy"), v2);
  await refusedCheaply(() => readEmbeddings(path.join(dir, "v2.npy")), "INPUT", "header claims 4294967295 bytes");

  // JSON Lines: one line of 20 MiB without a newline (a sparse file of zero bytes).
  const long = path.join(dir, "long.jsonl");
  await sparse(long, 20 * 2 ** 20);
  await refusedCheaply(() => readEmbeddings(long), "INPUT", "long.jsonl: line 1 is longer than 8.0 MiB");
  await assert.rejects(readEmbeddings(fifo(path.join(dir, "pipe.jsonl"))), rejectsWithCode("INPUT", "pipe.jsonl", "not a regular file"));
  await symlink("/dev/zero", path.join(dir, "zero.npy"));
  await assert.rejects(readEmbeddings(path.join(dir, "zero.npy")), rejectsWithCode("INPUT", "zero.npy", "not a regular file (a device, pipe or socket)"));

  // Rows that are not objects, and sidecar rows that are not objects: refused or ignored, never a TypeError.
  await writeFile(path.join(dir, "null.jsonl"), "null\n");
  await assert.rejects(readEmbeddings(path.join(dir, "null.jsonl")), rejectsWithCode("INPUT", "line 1 is not a JSON object"));
  const ok = path.join(dir, "ok.npy");
  await writeFile(ok, encodeNpy(new Float32Array([1, 0, 0, 1]), [2, 2]));
  await writeFile(`${ok}.json`, JSON.stringify({ model: "m", rows: [null, 7] }));
  const set = await readEmbeddings(ok);
  assert.deepEqual(set.inputs, [`${ok}#0`, `${ok}#1`], "rows without a record keep their positional names");
});

test("class files and data-set lists: pipes and oversized files are refused unread", async () => {
  const dir = await tempDir();
  await assert.rejects(loadClasses(fifo(path.join(dir, "classes.txt"))), rejectsWithCode("CLASSES", "classes.txt", "not a regular file"));
  await sparse(path.join(dir, "big.txt"), 300 * 2 ** 20);
  await refusedCheaply(() => loadClasses(path.join(dir, "big.txt")), "CLASSES", "big.txt is 300 MiB, over the 256 MiB");
  await sparse(path.join(dir, "list.txt"), 300 * 2 ** 20);
  await refusedCheaply(() => readDataset(path.join(dir, "list.txt")), "INPUT", "list.txt is 300 MiB, over the 256 MiB");
  await assert.rejects(readDataset(fifo(path.join(dir, "pipe.csv"))), (e: unknown) => e instanceof ClipOodError);
});

test("a detector's recorded model: Hub ids and absolute folders are followed, anything else is refused", () => {
  const none = () => false;
  assert.equal(recordedModelRef("/models/b32", "det.json", none), "/models/b32");
  assert.equal(recordedModelRef("Xenova/clip-vit-base-patch32", "det.json", none), "Xenova/clip-vit-base-patch32");
  // clip-ood records local folders by absolute path: a relative one would resolve wherever the command runs.
  assert.throws(() => recordedModelRef("../../models/b32", "det.json", none), rejectsWithCode("USAGE", 'det.json records its model as "../../models/b32"', "neither a Hub id nor an absolute folder path"));
  // An id that a folder in the current directory also answers to is ambiguous: refused, not read from that folder.
  assert.throws(() => recordedModelRef("Xenova/clip-vit-base-patch32", "det.json", () => true), rejectsWithCode("USAGE", "a Hub id that a folder here"));
});
