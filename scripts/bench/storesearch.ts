/**
 * storesearch: getting a model's rows for a search, from an SQLite store (the default) and from a
 * PostgreSQL store without pgvector (Debian's package, started here): reading every row per search, as
 * before the copies kept between searches (the store opened with `localCopy: false`), against the copy,
 * cold, warm, in a new process, and after rows were added or removed through another connection.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { exactTopK } from "../../src/search/exact.js";
import { PostgresStore } from "../../src/store/postgres-store.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import type { EmbeddingStore, RowScope, StoredRow } from "../../src/store/store.js";
import { startPostgres } from "../../test/support/postgres.js";
import { randomUnitVectors } from "./ann.js";
import { count, figuresHead, ints, loadNote, log, ms, quantile, seconds } from "./kit.js";
import type { Bench, BenchBlock } from "./kit.js";

const KEY = "bench";
const DIM = 512;
const BACKENDS = ["sqlite", "postgres"] as const;
type BackendName = (typeof BACKENDS)[number];

/** Which connection a measurement uses: each opens the store anew, as another process would. */
type Role = "writer" | "before" | "copy" | "other";

interface Backend {
  heading: string;
  open(role: Role): Promise<EmbeddingStore>;
  /** Where the copy files are written. */
  copyDir: string;
  stop(): Promise<void>;
}

export const storesearchBench: Bench = {
  title: "storesearch: a model's rows for each search, from SQLite and from PostgreSQL without pgvector",
  intro: [
    "Seeded random 512-d unit vectors stored through `putBatch` in batches of 1,000, into an SQLite",
    "store (WAL, the default) and into a PostgreSQL 15 server from Debian's package on this machine (no",
    "pgvector). One search here is what `search` does with the store's rows: `embeddingsFor` (the scope",
    "given) then an exact top 10 (`exactTopK`); the figures time the first part, which the copy changes,",
    "and give the ranking's median apart. \"before\" opens the store with `localCopy: false`, which reads",
    "every row on every search as clip-ood did before the copy; the rest use the copy kept in memory and",
    "in a file (beside the SQLite file; in the cache folder for PostgreSQL: src/store/row-copies.ts),",
    "checked against the store's change stamp on every search. A refreshed copy's file is written after",
    "the search is answered, so the figures do not include that write; \"another process\" starts once",
    "that file is written. Each connection is opened anew, as another process would open it.",
  ].join("\n"),
  async run(argv, command) {
    const { values } = parseArgs({
      args: argv,
      options: { rows: { type: "string", default: "100000" }, searches: { type: "string", default: "10" }, backend: { type: "string", default: BACKENDS.join(",") } },
      strict: true,
    });
    const n = ints("rows", values.rows)[0]!;
    const searches = ints("searches", values.searches)[0]!;
    const backends = values.backend.split(",").map((b) => {
      if (!(BACKENDS as readonly string[]).includes(b)) throw new Error(`--backend takes ${BACKENDS.join(", ")} separated by commas, got "${b}"`);
      return b as BackendName;
    });
    const blocks: BenchBlock[] = [];
    for (const name of backends) {
      const work = await mkdtemp(path.join(os.tmpdir(), `clip-ood-bench-storesearch-${name}-`));
      const backend = name === "sqlite" ? sqliteBackend(work) : await postgresBackend(work);
      try {
        // One block per back end and size: a run at a million rows leaves the 100,000-row figures.
        blocks.push({ key: `${name}-${n}`, markdown: await measure(name, backend, n, searches, command) });
      } finally {
        await backend.stop();
        await rm(work, { recursive: true, force: true });
      }
    }
    return blocks;
  },
};

function sqliteBackend(work: string): Backend {
  const file = path.join(work, "store.sqlite");
  return {
    heading: "SQLite",
    open: async (role) => SqliteStore.open(file, { localCopy: role !== "before" }),
    copyDir: work,
    stop: async () => {},
  };
}

async function postgresBackend(work: string): Promise<Backend> {
  const server = await startPostgres();
  const url = await server.createDatabase("bench_storesearch");
  const cache = path.join(work, "cache");
  return {
    heading: "PostgreSQL, no pgvector",
    // The writer and the baseline are other machines: their own cache folders.
    open: (role) => PostgresStore.open(url, { localDir: role === "copy" || role === "other" ? cache : path.join(work, role), vector: false, localCopy: role !== "before" }),
    copyDir: cache,
    stop: () => server.stop(),
  };
}

async function measure(name: BackendName, backend: Backend, n: number, searches: number, command: string): Promise<string> {
  const loadAtStart = os.loadavg()[0]!;
  const stores: EmbeddingStore[] = [];
  const open = async (role: Role) => {
    const s = await backend.open(role);
    stores.push(s);
    return s;
  };
  try {
    const writer = await open("writer");
    log(`storesearch ${name}: storing ${count(n)} rows`);
    let vectors: Float32Array | undefined = randomUnitVectors(n, DIM, 11);
    const t0 = performance.now();
    for (let i = 0; i < n; i += 1000) await writer.putBatch(rowsOf(vectors.subarray(i * DIM), i, Math.min(n, i + 1000)));
    const insert = seconds(t0);
    vectors = undefined;
    await writer.addIndexedRoots(KEY, [{ path: "/bench", folder: true }]);
    const queries = randomUnitVectors(searches, DIM, 12);
    const rank: number[] = [];
    /** Milliseconds per search spent getting the rows, one per query; the ranking's go to `rank`. */
    const timed = async (store: EmbeddingStore, times: number, scope: RowScope = {}) => {
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
    const beforeCount = Math.min(searches, 5);

    log(`storesearch ${name}: before (every row read per search)`);
    const before = await open("before");
    const beforeTimes = await timed(before, beforeCount);

    log(`storesearch ${name}: the copy`);
    const copy = await open("copy");
    const [cold] = await timed(copy, 1);
    const warm = await timed(copy, searches);
    const warmIndexed = await timed(copy, searches, { indexed: true });
    await copyFileWritten(backend.copyDir);
    const other = await open("other");
    const [fromFile] = await timed(other, 1);
    await writer.putBatch(rowsOf(randomUnitVectors(1000, DIM, 13), n, n + 1000));
    const [afterInsert] = await timed(copy, 1);
    await writer.forgetPaths([pathOf(0)]);
    const [afterRemove] = await timed(copy, 1);

    const lines = figuresHead(`${count(n)} rows × ${DIM}, ${backend.heading}`, command, ` (${loadNote(loadAtStart)}); each row: the time to get the rows for one search (ranking them is the last row)`);
    lines.push(`| store the rows (batches of 1,000) | ${insert.toFixed(1)} s (${count(Math.round(n / insert))} rows/s) |`);
    lines.push(`| **before**: every row read per search, median of ${beforeCount} | ${median(beforeTimes)} |`);
    lines.push(`| first search, no copy yet (every row read; the copy's file is written after) | ${ms(cold!)} ms |`);
    lines.push(`| **after**: repeated searches, all rows, median of ${searches} | ${median(warm)} |`);
    lines.push(`| repeated searches, default scope (indexed roots), median | ${median(warmIndexed)} |`);
    lines.push(`| first search of another process (copy file read) | ${ms(fromFile!)} ms |`);
    lines.push(`| search after another connection added 1,000 rows (those read and merged in) | ${ms(afterInsert!)} ms |`);
    lines.push(`| search after another connection removed a path (every row read again) | ${ms(afterRemove!)} ms |`);
    lines.push(`| ranking the rows (exact top 10, one core), median of every search above | ${median(rank)} |`);
    return lines.join("\n");
  } finally {
    for (const s of stores) await s.close();
  }
}

/** Waits until a copy file is in `dir` and no process holds its lock (the first search's save is done). */
async function copyFileWritten(dir: string): Promise<void> {
  for (;;) {
    const files = await readdir(dir).catch(() => [] as string[]);
    const copies = files.filter((f) => f.includes(".rows-"));
    if (copies.some((f) => !f.endsWith(".lock") && !f.endsWith(".part")) && !copies.some((f) => f.endsWith(".lock"))) return;
    await sleep(50);
  }
}

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
