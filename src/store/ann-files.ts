/**
 * A model's HNSW graph kept beside the store (`<cache-dir>/stores/…` or next to the SQLite file), grown
 * in place as the store's rows change and never trusted stale.
 *
 * Files, per model (`<base>` = the store's localFilesBase + ".ann-" + a digest of the model key):
 *   <base>.<generation>.usearch        the graph (usearch's format, checked before loading)
 *   <base>.<generation>.covered.json   which content each key holds (src/search/hnsw.ts)
 *   <base>.hnsw.json                   the record: the generation in use, its settings, the search width
 *                                      set by the recall self-check, the file sizes
 * A generation's files are written whole (each to a temporary name, then renamed) before the record
 * naming them is replaced, by write-then-rename too; the old generation is deleted after. So a crash or
 * SIGKILL at any point leaves a record that names complete files: the old generation (its contents are
 * diffed against the store's rows on the next open, and the update is made again) or the new one. Files
 * no record names (a killed writer's, or a concurrent writer's that lost the race) are swept once they
 * are ten minutes old. A record whose files are missing, of the wrong size or damaged is not used: the
 * graph is built again from the rows.
 *
 * Changes wait before they go into the graph: an open diffs the record's contents against the rows, and
 * a search ranks new contents exactly beside the graph's candidates and drops removed ones (hnsw.ts), so
 * adding a few files costs nothing here. Only past PENDING_LIMIT additions or GONE_LIMIT removals is the
 * graph loaded, changed in place and saved as the next generation; past RECHECK_FRACTION of changes
 * since the last self-check, the width is measured again (on a sample of the contents being added). The graph is built from scratch only when
 * there is none (or it is damaged), or when freed nodes outnumber the contents it holds.
 */
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, rmSync, statSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { messageOf } from "../errors.js";
import { ANN_DEFAULTS, AnnIndex } from "../search/ann.js";
import { ContentGraph, RECALL_TARGET } from "../search/hnsw.js";
import type { CheckOptions, WidthCheck } from "../search/hnsw.js";
import type { EmbeddingStore, StoreRows } from "./store.js";

const FORMAT = "clip-ood-hnsw/1";

/** What the record says. */
export interface AnnRecord {
  format: typeof FORMAT;
  modelKey: string;
  dim: number;
  generation: string;
  scalar: "f32" | "f16";
  connectivity: number;
  expansionAdd: number;
  /** Length of the covered list: the next key. */
  keys: number;
  /** Contents the graph holds. */
  contents: number;
  /** The search width (ef) the self-check chose, and what it measured there. */
  width: number;
  recall: number;
  recallQueries: number;
  /** Whether the recall target was reached (else `width` is the widest tried). */
  widthReached: boolean;
  /** Contents added or removed since the width was measured. */
  changedSinceCheck: number;
  indexBytes: number;
  coveredBytes: number;
  built: string;
  updated: string;
}

/** Steps of an update after which the files on disk change; crash tests stop a process at each. */
export type AnnUpdateStage = "loaded" | "changed" | "index-written" | "covered-written" | "record-written" | "old-removed";

export interface AnnFileOptions {
  /** Progress of an insertion (rows inserted, rows to insert): a build of a large collection takes minutes. */
  onProgress?: (done: number, total: number) => void;
  /** A graph that cannot be saved is used for this run and reported here, as is a damaged one being rebuilt. */
  onWarning?: (message: string) => void;
  /** Called after each step of an update that changes files (for crash tests). */
  onStage?: (stage: AnnUpdateStage) => void;
  /** The recall self-check's first width (default 8); tests force a tiny one. */
  startWidth?: number;
  /** Insertion threads (default: every core). */
  threads?: number;
}

/** Additions that wait, ranked exactly beside the graph, before they go into it: 1% of its contents, 1,000 to 20,000. */
export function pendingLimit(held: number): number {
  return Math.min(20_000, Math.max(1_000, Math.ceil(0.01 * held)));
}

/** Removals that wait, filtered from the graph's candidates, before they are made in it: 5%, at least 1,000. */
export function goneLimit(held: number): number {
  return Math.max(1_000, Math.ceil(0.05 * held));
}

/** Changes since the last self-check, as a share of the contents, past which the width is measured again. */
export const RECHECK_FRACTION = 0.1;

/** Files that no record names are deleted once this old (a live writer finishes well within it). */
const ORPHAN_AGE_MS = 10 * 60 * 1000;

/** The prefix of the model's files beside the store. */
export function annFilesBase(store: EmbeddingStore, modelKey: string): string {
  return `${store.localFilesBase}.ann-${createHash("sha256").update(modelKey).digest("hex").slice(0, 12)}`;
}

const recordFile = (base: string) => `${base}.hnsw.json`;
const indexFile = (base: string, generation: string) => `${base}.${generation}.usearch`;
const coveredFile = (base: string, generation: string) => `${base}.${generation}.covered.json`;

/** A record's text, or undefined when it is not one this version wrote for this model and dimension. Pure. */
export function parseAnnRecord(text: string, modelKey: string, dim?: number): AnnRecord | undefined {
  let r: Partial<AnnRecord>;
  try {
    r = JSON.parse(text) as Partial<AnnRecord>;
  } catch {
    return undefined;
  }
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  const ok =
    r.format === FORMAT &&
    r.modelKey === modelKey &&
    (dim === undefined || r.dim === dim) &&
    typeof r.generation === "string" &&
    /^[0-9a-z-]+$/.test(r.generation) &&
    (r.scalar === "f32" || r.scalar === "f16") &&
    [r.dim, r.connectivity, r.expansionAdd, r.keys, r.contents, r.width, r.recallQueries, r.changedSinceCheck, r.indexBytes, r.coveredBytes].every(count) &&
    typeof r.recall === "number" &&
    typeof r.widthReached === "boolean" &&
    (r.width ?? 0) >= 1;
  return ok ? (r as AnnRecord) : undefined;
}

/** The covered list's file: JSON, a hash or null per key. Undefined when damaged or of another length. Pure. */
export function parseCovered(text: string, keys: number, contents: number): (string | null)[] | undefined {
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(list) || list.length !== keys) return undefined;
  let held = 0;
  for (const h of list) {
    if (typeof h === "string") held++;
    else if (h !== null) return undefined;
  }
  return held === contents ? (list as (string | null)[]) : undefined;
}

/** The model's record beside the store, if there is a usable one. */
export async function readAnnRecord(store: EmbeddingStore, modelKey: string): Promise<AnnRecord | undefined> {
  const text = await readFile(recordFile(annFilesBase(store, modelKey)), "utf8").catch(() => undefined);
  return text === undefined ? undefined : parseAnnRecord(text, modelKey);
}

/** A graph and its covered list as read from one generation, shared by later opens in this process. */
interface Opened {
  recordText: string;
  index: AnnIndex;
  covered: readonly (string | null)[];
}
const opened = new Map<string, Opened>();
/**
 * The graph last attached to a rows object, with the record it was opened from: a store that hands
 * out the same rows while they are unchanged (the PostgreSQL store's local copy) skips the diff, which
 * at a million rows costs about a second.
 */
const attached = new WeakMap<StoreRows, { recordText: string; graph: ContentGraph }>();

/**
 * The model's graph, in step with `rows` (every row of the model): opened from beside the store (a
 * server reuses the one it opened while the record is unchanged), updated in place when changes have
 * piled up, built when there is none or it cannot be used. Saving is best effort: a graph that cannot
 * be written is used for this run and reported.
 */
export async function contentGraphFor(store: EmbeddingStore, modelKey: string, rows: StoreRows, o: AnnFileOptions = {}): Promise<ContentGraph> {
  const base = annFilesBase(store, modelKey);
  // One open at a time per model in this process: concurrent searches of a server would otherwise
  // each fold the same changes in and write a generation apiece.
  const before = inFlight.get(base) ?? Promise.resolve();
  const run = before.catch(() => {}).then(() => openOrBuild(base, modelKey, rows, o));
  inFlight.set(base, run);
  try {
    return await run;
  } finally {
    if (inFlight.get(base) === run) inFlight.delete(base);
  }
}

const inFlight = new Map<string, Promise<ContentGraph>>();

async function openOrBuild(base: string, modelKey: string, rows: StoreRows, o: AnnFileOptions): Promise<ContentGraph> {
  const warn = o.onWarning ?? (() => {});
  const recordText = await readFile(recordFile(base), "utf8").catch(() => undefined);
  const record = recordText === undefined ? undefined : parseAnnRecord(recordText, modelKey, rows.dim);
  let graph: ContentGraph | undefined;
  if (record && recordText !== undefined) {
    try {
      graph = await openGeneration(base, record, recordText, rows);
    } catch (e) {
      warn(`the search index beside the store cannot be used (${messageOf(e)}); building it again`);
    }
  } else if (recordText !== undefined) {
    warn(`the search index record ${recordFile(base)} is not one this version can use; building the index again`);
  }
  if (graph && record) {
    const c = graph.changes();
    if (graph.ann.nodes - graph.ann.size + c.gone > Math.max(1_000, c.held)) {
      // Mostly freed nodes: a graph of what is left is smaller and faster to build than to keep.
      graph = undefined;
    } else if (c.pending > pendingLimit(c.held) || c.gone > goneLimit(c.held)) {
      return updateGraph(base, record, graph, rows, o);
    } else {
      return graph;
    }
  }
  const { graph: built, check: measured } = await ContentGraph.build(rows, { ...threadsOf(o), ...(o.onProgress ? { onProgress: o.onProgress } : {}) }, checkOptions(o));
  const check = measured ?? { width: built.width, recall: 1, queries: 0, reached: true };
  reportCheck(check, warn);
  const now = new Date().toISOString();
  await saveGeneration(base, built, { modelKey, check, changedSinceCheck: 0, built: now, previous: record }, o);
  return built;
}

async function openGeneration(base: string, record: AnnRecord, recordText: string, rows: StoreRows): Promise<ContentGraph> {
  const file = indexFile(base, record.generation);
  // Checked on every open, the process's own copy included: the files are what the next process gets.
  const size = (await stat(file)).size;
  if (size !== record.indexBytes) throw new Error(`${file} has ${size} bytes, its record says ${record.indexBytes}`);
  const cached = opened.get(base);
  if (cached?.recordText === recordText && (await stat(coveredFile(base, record.generation))).size === record.coveredBytes) {
    cached.index.width = record.width;
    const same = attached.get(rows);
    if (same?.recordText === recordText) return same.graph;
    const graph = ContentGraph.attach(cached.index, [...cached.covered], rows);
    attached.set(rows, { recordText, graph });
    return graph;
  }
  const coveredText = await readFile(coveredFile(base, record.generation), "utf8");
  if (Buffer.byteLength(coveredText) !== record.coveredBytes) throw new Error(`${coveredFile(base, record.generation)} is not the size its record says`);
  const covered = parseCovered(coveredText, record.keys, record.contents);
  if (!covered) throw new Error(`${coveredFile(base, record.generation)} is damaged`);
  // Memory-mapped: opened at once, whatever its size, and shared with other processes through the page cache.
  const index = AnnIndex.load(file, rows.dim, { expansionSearch: record.width, view: true });
  if (index.size !== record.contents) throw new Error(`${file} holds ${index.size} keys, its record says ${record.contents}`);
  opened.set(base, { recordText, index, covered });
  const graph = ContentGraph.attach(index, [...covered], rows);
  attached.set(rows, { recordText, graph });
  return graph;
}

/** Loads the graph into memory, folds the changes in, measures the width again if they are many, saves. */
async function updateGraph(base: string, record: AnnRecord, viewed: ContentGraph, rows: StoreRows, o: AnnFileOptions): Promise<ContentGraph> {
  const index = AnnIndex.load(indexFile(base, record.generation), rows.dim, { expansionSearch: record.width });
  const graph = ContentGraph.attach(index, [...viewed.covered], rows);
  o.onStage?.("loaded");
  // Enough changes since the width was measured: measure it again, on a sample of the contents added.
  const c = viewed.changes();
  const recheck = record.changedSinceCheck + c.pending + c.gone > RECHECK_FRACTION * Math.max(1, record.contents);
  const applied = await graph.applyChanges({ ...threadsOf(o), ...(o.onProgress ? { onProgress: o.onProgress } : {}) }, recheck ? checkOptions(o) : undefined);
  o.onStage?.("changed");
  let changedSinceCheck = record.changedSinceCheck + applied.added + applied.removed;
  let check: WidthCheck = { width: record.width, recall: record.recall, queries: record.recallQueries, reached: record.widthReached };
  if (applied.check) {
    check = applied.check;
    reportCheck(check, o.onWarning ?? (() => {}));
    changedSinceCheck = 0;
  }
  await saveGeneration(base, graph, { modelKey: record.modelKey, check, changedSinceCheck, built: record.built, previous: record }, o);
  return graph;
}

function reportCheck(check: WidthCheck, warn: (m: string) => void): void {
  if (!check.reached) {
    warn(`the search index reaches recall@10 ${check.recall.toFixed(3)} at its widest search (${check.width}), short of ${RECALL_TARGET}: exact search (--ann-threshold above the collection's size) is slower but finds every neighbour`);
  }
}

/**
 * Writes a new generation: the graph, the covered list, then the record naming them, each whole before
 * the next; then removes the generation it replaces and sweeps orphans. Failures are reported, not
 * thrown: the graph in memory serves this run either way.
 */
async function saveGeneration(
  base: string,
  graph: ContentGraph,
  m: { modelKey: string; check: WidthCheck; changedSinceCheck: number; built: string; previous: AnnRecord | undefined },
  o: AnnFileOptions,
): Promise<void> {
  const generation = `${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
  const files = [indexFile(base, generation), coveredFile(base, generation)];
  try {
    await mkdir(path.dirname(base), { recursive: true });
    graph.ann.save(files[0]!);
    o.onStage?.("index-written");
    const covered = JSON.stringify(graph.covered);
    await writeWhole(files[1]!, covered);
    o.onStage?.("covered-written");
    const record: AnnRecord = {
      format: FORMAT,
      modelKey: m.modelKey,
      dim: graph.rows.dim,
      generation,
      scalar: graph.ann.scalar,
      connectivity: m.previous?.connectivity ?? ANN_DEFAULTS.connectivity,
      expansionAdd: m.previous?.expansionAdd ?? ANN_DEFAULTS.expansionAdd,
      keys: graph.covered.length,
      contents: graph.ann.size,
      width: m.check.width,
      recall: m.check.recall,
      recallQueries: m.check.queries,
      widthReached: m.check.reached,
      changedSinceCheck: m.changedSinceCheck,
      indexBytes: (await stat(files[0]!)).size,
      coveredBytes: Buffer.byteLength(covered),
      built: m.built,
      updated: new Date().toISOString(),
    };
    const text = JSON.stringify(record, null, 1);
    await writeWhole(recordFile(base), text);
    o.onStage?.("record-written");
    opened.set(base, { recordText: text, index: graph.ann, covered: [...graph.covered] });
  } catch (e) {
    for (const f of files) rmSync(f, { force: true });
    (o.onWarning ?? (() => {}))(`${messageOf(e)}; the search index is used for this run only and updated again next time`);
    return;
  }
  if (m.previous && m.previous.generation !== generation) {
    for (const f of [indexFile(base, m.previous.generation), coveredFile(base, m.previous.generation)]) await rm(f, { force: true }).catch(() => {});
  }
  o.onStage?.("old-removed");
  sweepOrphans(base, new Set([recordFile(base), ...files]));
}

/** Writes `text` to `file` through a temporary file and a rename, so the file is either old or whole. */
async function writeWhole(file: string, text: string): Promise<void> {
  const part = `${file}.${process.pid}.part`;
  try {
    await writeFile(part, text);
    await rename(part, file);
  } catch (e) {
    await rm(part, { force: true }).catch(() => {});
    throw e;
  }
}

/**
 * Deletes this model's files that the record does not name once they are ORPHAN_AGE_MS old: a writer
 * killed before its record was written, the loser of two concurrent updates, temporary files, and the
 * single-file index of earlier versions (<base>.usearch with <base>.json).
 */
function sweepOrphans(base: string, keep: ReadonlySet<string>): void {
  const dir = path.dirname(base);
  const prefix = path.basename(base) + ".";
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const file = path.join(dir, name);
    if (keep.has(file)) continue;
    try {
      if (now - statSync(file).mtimeMs > ORPHAN_AGE_MS) rmSync(file, { force: true });
    } catch {
      // Gone already, or not ours to delete: the next sweep sees it again.
    }
  }
}

function checkOptions(o: AnnFileOptions): CheckOptions {
  return o.startWidth === undefined ? {} : { start: o.startWidth };
}

function threadsOf(o: AnnFileOptions): { threads?: number } {
  return o.threads === undefined ? {} : { threads: o.threads };
}

/** The record's figures for `store stats`: what the graph holds and the width it searches at. */
export interface AnnIndexStatus {
  contents: number;
  width: number;
  recall: number;
  recallTarget: number;
  widthReached: boolean;
  connectivity: number;
  scalar: string;
  bytes: number;
  updated: string;
}

export async function annIndexStatus(store: EmbeddingStore, modelKey: string): Promise<AnnIndexStatus | undefined> {
  const r = await readAnnRecord(store, modelKey);
  if (!r) return undefined;
  return {
    contents: r.contents,
    width: r.width,
    recall: r.recall,
    recallTarget: RECALL_TARGET,
    widthReached: r.widthReached,
    connectivity: r.connectivity,
    scalar: r.scalar,
    bytes: r.indexBytes + r.coveredBytes,
    updated: r.updated,
  };
}
