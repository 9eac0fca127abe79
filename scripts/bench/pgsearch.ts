/**
 * pgsearch: search on a PostgreSQL store without pgvector (Debian's package, started here): reading
 * every row per search, as before the local copy (the store opened with `localCopy: false`), against
 * the copy kept on this machine, cold, warm, in a new process, and after rows were added or removed.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { exactTopK } from "../../src/search/exact.js";
import { PostgresStore } from "../../src/store/postgres-store.js";
import type { RowScope, StoredRow } from "../../src/store/store.js";
import { startPostgres } from "../../test/support/postgres.js";
import { randomUnitVectors } from "./ann.js";
import { count, figuresHead, ints, log, ms, quantile, seconds } from "./kit.js";
import type { Bench } from "./kit.js";

const KEY = "bench";
const DIM = 512;

export const pgsearchBench: Bench = {
  title: "pgsearch: search on PostgreSQL without pgvector",
  intro: [
    "A PostgreSQL 15 server from Debian's package on this machine (no pgvector), seeded random 512-d",
    "unit vectors stored through `putBatch` in batches of 1,000. One search here is what `search` does",
    "with the store's rows: `embeddingsFor` (the scope given) then an exact top 10 (`exactTopK`); the",
    "figures time the first part, which the copy changes, and give the ranking's median apart.",
    "\"before\" opens the store with `localCopy: false`, which reads every row on every search as",
    "clip-ood did before the copy; the rest use the copy kept in the cache folder and in memory",
    "(src/store/local-rows.ts), checked against the database's change stamp on every search. A refreshed",
    "copy's file is written after the search is answered, so the figures do not include that write.",
  ].join("\n"),
  async run(argv, command) {
    const { values } = parseArgs({ args: argv, options: { rows: { type: "string", default: "100000" }, searches: { type: "string", default: "10" } }, strict: true });
    const n = ints("rows", values.rows)[0]!;
    const searches = ints("searches", values.searches)[0]!;
    const work = await mkdtemp(path.join(os.tmpdir(), "clip-ood-bench-pgsearch-"));
    const server = await startPostgres();
    const open = (localDir: string, localCopy = true) => PostgresStore.open(url, { localDir, vector: false, localCopy });
    const url = await server.createDatabase("bench_pgsearch");
    const stores: PostgresStore[] = [];
    try {
      const writer = await open(path.join(work, "writer"));
      stores.push(writer);
      log(`pgsearch: storing ${count(n)} rows`);
      const vectors = randomUnitVectors(n, DIM, 11);
      const t0 = performance.now();
      for (let i = 0; i < n; i += 1000) await writer.putBatch(rowsOf(vectors.subarray(i * DIM), i, Math.min(n, i + 1000)));
      const insert = seconds(t0);
      await writer.addIndexedRoots(KEY, [{ path: "/bench", folder: true }]);
      const queries = randomUnitVectors(searches, DIM, 12);
      const rank: number[] = [];
      /** Milliseconds per search spent getting the rows, one per query; the ranking's go to `rank`. */
      const timed = async (store: PostgresStore, times: number, scope: RowScope = {}) => {
        const out: number[] = [];
        for (let q = 0; q < times; q++) {
          const t = performance.now();
          const rows = await store.embeddingsFor(KEY, scope);
          out.push(performance.now() - t);
          const t1 = performance.now();
          exactTopK(rows.data, DIM, queries.subarray((q % searches) * DIM, ((q % searches) + 1) * DIM), 10);
          rank.push(performance.now() - t1);
        }
        return out;
      };
      const median = (xs: number[]) => `${ms(quantile(xs, 0.5))} ms`;

      log("pgsearch: before (every row read per search)");
      const before = await open(path.join(work, "before"), false);
      stores.push(before);
      const beforeTimes = await timed(before, Math.min(searches, 5));

      log("pgsearch: the local copy");
      const cache = path.join(work, "cache");
      const copy = await open(cache);
      stores.push(copy);
      const [cold] = await timed(copy, 1);
      const warm = await timed(copy, searches);
      const warmIndexed = await timed(copy, searches, { indexed: true });
      const other = await open(cache);
      stores.push(other);
      const [fromFile] = await timed(other, 1);
      await writer.putBatch(rowsOf(randomUnitVectors(1000, DIM, 13), n, n + 1000));
      const [afterInsert] = await timed(copy, 1);
      await writer.forgetPaths([pathOf(0)]);
      const [afterRemove] = await timed(copy, 1);

      const lines = figuresHead(`${count(n)} rows × ${DIM}, no pgvector`, command, "; each row: the time to get the rows for one search (ranking them is the last row)");
      lines.push(`| store the rows (batches of 1,000) | ${insert.toFixed(1)} s (${count(Math.round(n / insert))} rows/s) |`);
      lines.push(`| **before**: every row read per search, median of ${Math.min(searches, 5)} | ${median(beforeTimes)} |`);
      lines.push(`| first search, no copy yet (every row read; the copy's file is written after) | ${ms(cold!)} ms |`);
      lines.push(`| **after**: repeated searches, all rows, median of ${searches} | ${median(warm)} |`);
      lines.push(`| repeated searches, default scope (indexed roots), median | ${median(warmIndexed)} |`);
      lines.push(`| first search of another process sharing the cache folder (copy file read) | ${ms(fromFile!)} ms |`);
      lines.push(`| search after another connection added 1,000 rows (those read and merged in) | ${ms(afterInsert!)} ms |`);
      lines.push(`| search after another connection removed a path (every row read again) | ${ms(afterRemove!)} ms |`);
      lines.push(`| ranking the rows (exact top 10, one core), median of every search above | ${median(rank)} |`);
      return [{ key: "search", markdown: lines.join("\n") }];
    } finally {
      for (const s of stores) await s.close();
      await server.stop();
      await rm(work, { recursive: true, force: true });
    }
  },
};

function pathOf(i: number): string {
  return `/bench/${String(i).padStart(7, "0")}.jpg`;
}

/** Rows `from`…`to` − 1, their vectors the rows of `vectors` from its start. */
function rowsOf(vectors: Float32Array, from: number, to: number): StoredRow[] {
  const rows: StoredRow[] = [];
  for (let j = from; j < to; j++) {
    const v = vectors.subarray((j - from) * DIM, (j - from + 1) * DIM);
    rows.push({ path: pathOf(j), size: 1, mtimeMs: 1, hash: `h${j}`, modelKey: KEY, embedding: v });
  }
  return rows;
}
