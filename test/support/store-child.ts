/**
 * A separate indexing process for the crash-safety test, so that it can be killed with SIGKILL.
 *
 *   node --import tsx test/support/store-child.ts <store file or postgres:// URL> <batches> <batchSize> <dim> run|resume
 *
 * `run` writes every batch, printing "begin <b>" before and "done <b>" after each commit (pipes are
 * synchronous on Linux, so the parent reads "begin" before the transaction starts). `resume` does what
 * a rerun of indexing does: skips rows whose path record and embedding are already stored, writes the
 * rest, and prints {"written": n}.
 *
 * The test imports the row generator from here too, so both agree on what a complete store holds. Rows
 * come in pairs of copies (rows 2k and 2k+1 share content k), so a resumed run must also avoid storing
 * an embedding twice.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { openEmbeddingStore } from "../../src/store/open.js";
import type { StoredRow } from "../../src/store/store.js";

export const CRASH_MODEL = "crash-test-model";

export function crashHash(content: number): string {
  return createHash("sha256").update(`content ${content}`).digest("hex");
}

export function crashVector(content: number, dim: number): Float32Array {
  return Float32Array.from({ length: dim }, (_, j) => Math.sin(content * 31 + j * 0.37));
}

export function crashRow(i: number, dim: number): StoredRow {
  const content = i >> 1;
  return {
    path: `/virtual/crash/${String(i).padStart(7, "0")}.jpg`,
    size: 1000 + content,
    mtimeMs: 1.7e12 + i + 0.25,
    hash: crashHash(content),
    modelKey: CRASH_MODEL,
    embedding: crashVector(content, dim),
  };
}

async function main(args: string[]): Promise<void> {
  const [file, batchesArg, sizeArg, dimArg, mode] = args;
  if (!file || !batchesArg || !sizeArg || !dimArg || (mode !== "run" && mode !== "resume")) {
    process.stderr.write("usage: store-child.ts <store> <batches> <batchSize> <dim> run|resume\n");
    process.exit(2);
  }
  const batches = Number(batchesArg);
  const size = Number(sizeArg);
  const dim = Number(dimArg);
  const store = await openEmbeddingStore(file);
  let written = 0;
  for (let b = 0; b < batches; b++) {
    let rows = Array.from({ length: size }, (_, i) => crashRow(b * size + i, dim));
    if (mode === "resume") {
      const stored = await Promise.all(rows.map(async (r) => (await store.lookupPath(r.path, r.size, r.mtimeMs)) !== undefined && (await store.getEmbedding(r.hash, r.modelKey)) !== undefined));
      rows = rows.filter((_, i) => !stored[i]);
    }
    if (mode === "run") process.stdout.write(`begin ${b}\n`);
    await store.putBatch(rows);
    written += rows.length;
    if (mode === "run") process.stdout.write(`done ${b}\n`);
  }
  await store.close();
  if (mode === "resume") process.stdout.write(`${JSON.stringify({ written })}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
