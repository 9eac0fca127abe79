/**
 * A separate process that updates a store's HNSW graph, for the crash test (test/hnsw.test.ts), so
 * that it can be killed with SIGKILL in the middle of the update.
 *
 *   node --import tsx test/support/ann-child.ts <store file> <stage>
 *
 * It reads the model's rows and calls contentGraphFor; when the update reaches <stage> (an
 * AnnUpdateStage) it prints "stage <stage>" (pipes are synchronous on Linux, so the parent reads it
 * before anything else happens) and blocks, holding the update at that point until it is killed.
 *
 * The test imports the row generator from here too, so both agree on what the store holds.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { mulberry32 } from "../../src/maths/random.js";
import { contentGraphFor } from "../../src/store/ann-files.js";
import { openEmbeddingStore } from "../../src/store/open.js";
import type { StoredRow } from "../../src/store/store.js";

export const ANN_CHILD_MODEL = "ann-crash-test-model";
const DIM = 24;

/** Rows from … to−1: content i under one path, a seeded unit vector around one of 8 class directions. */
export function annChildRows(from: number, to: number): StoredRow[] {
  const centres = mulberry32(5);
  const classes = Array.from({ length: 8 }, () => Array.from({ length: DIM }, () => centres() - 0.5));
  return Array.from({ length: to - from }, (_, k) => {
    const i = from + k;
    const r = mulberry32(1000 + i);
    const c = classes[i % 8]!;
    const v = Float32Array.from({ length: DIM }, (_, j) => c[j]! + 0.4 * (r() - 0.5));
    const n = Math.hypot(...v);
    return {
      path: `/virtual/ann/${String(i).padStart(6, "0")}.jpg`,
      size: 1000 + i,
      mtimeMs: 1.7e12 + i,
      hash: createHash("sha256").update(`ann content ${i}`).digest("hex"),
      modelKey: ANN_CHILD_MODEL,
      embedding: v.map((x) => x / n),
    };
  });
}

async function main(storeFile: string, stage: string): Promise<void> {
  const store = await openEmbeddingStore(storeFile);
  const rows = await store.embeddingsFor(ANN_CHILD_MODEL);
  await contentGraphFor(store, ANN_CHILD_MODEL, rows, {
    threads: 1,
    onStage: (s) => {
      if (s !== stage) return;
      process.stdout.write(`stage ${s}\n`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
    },
  });
  await store.close();
  process.stdout.write("finished\n");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv[2]!, process.argv[3]!);
}
