/**
 * Another process writing a store, for the tests of the rows' copies kept between searches: what it
 * writes must reach a copy held by the test's process (or a server).
 *
 *   node --import tsx test/support/rows-child.ts <store file or postgres:// URL> '<JSON list of steps>'
 *
 * Steps: {"put": [from, to, batch]} stores rows `from`…`to` − 1 of store-child.ts's generator (crashRow,
 * dimension ROWS_CHILD_DIM) in batches; {"record": [PathRecord, …]} records paths; {"forget": [path, …]}
 * forgets them. Prints "done" when all are committed.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { openEmbeddingStore } from "../../src/store/open.js";
import type { PathRecord } from "../../src/store/store.js";
import { repoRoot } from "./shared.js";
import { crashRow } from "./store-child.js";

export const ROWS_CHILD_DIM = 8;

export type RowsChildStep = { put: [number, number, number] } | { record: PathRecord[] } | { forget: string[] };

/** Runs this script on the store: another process writing it; resolves once it has committed every step. */
export function runRowsChild(location: string, steps: RowsChildStep[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), location, JSON.stringify(steps)], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 && out.includes("done") ? resolve() : reject(new Error(`rows-child exited ${code}:\n${out}`))));
  });
}

async function main([location, steps]: string[]): Promise<void> {
  if (!location || !steps) {
    process.stderr.write("usage: rows-child.ts <store> '<JSON steps>'\n");
    process.exit(2);
  }
  const store = await openEmbeddingStore(location);
  try {
    for (const step of JSON.parse(steps) as RowsChildStep[]) {
      if ("put" in step) {
        const [from, to, batch] = step.put;
        for (let i = from; i < to; i += batch) {
          await store.putBatch(Array.from({ length: Math.min(batch, to - i) }, (_, j) => crashRow(i + j, ROWS_CHILD_DIM)));
        }
      } else if ("record" in step) await store.recordPaths(step.record);
      else await store.forgetPaths(step.forget);
    }
  } finally {
    await store.close();
  }
  process.stdout.write("done\n");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
