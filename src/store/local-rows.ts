/**
 * A store's rows kept on this machine (./row-copies.ts): a model's rows as of one change stamp of the
 * store, in path order. Every transaction that changes rows bumps the store's stamp and tags the rows
 * it writes with it (./sqlite-store.ts, ./postgres-store.ts), so a copy is refreshed with the rows
 * changed since its stamp, or read again whole after a deletion.
 *
 * Pure: the copy file's encoding, what a refresh reads, merging changed rows, and the scope filter.
 */
import os from "node:os";
import { underRange } from "./store.js";
import type { IndexedRoot, RowScope, StoreRows } from "./store.js";

/** Named when only PostgreSQL stores had copies; kept, so that their files stay valid. */
const FORMAT = "clip-ood-pg-rows/1";

/** Which state of the store a copy holds. */
export interface CopyStamp {
  /**
   * A random id the store got when its stamp was created: a database dropped and created again, or
   * another SQLite file put in a store's place, is another.
   */
  storeId: string;
  stamp: number;
}

/** The store's change state, which copies are checked against. */
export interface StoreStamp extends CopyStamp {
  /** The stamp of the last transaction that removed rows: a copy older than it is read again whole. */
  lastDelete: number;
}

/** What a copy needs read from the store at the stamp `now`. */
export type Refresh = { kind: "current" } | { kind: "whole" } | { kind: "since"; stamp: number };

/**
 * Nothing when the copy is of this stamp; the rows changed since its stamp when only additions and
 * changed contents happened since (removals leave nothing to read back); else every row: no copy, one of
 * another store, one older than a removal, or one newer than the store (a store file restored from a
 * backup).
 */
export function planRefresh(copy: CopyStamp | undefined, now: StoreStamp): Refresh {
  if (!copy || copy.storeId !== now.storeId || copy.stamp < now.lastDelete || copy.stamp > now.stamp) return { kind: "whole" };
  return copy.stamp === now.stamp ? { kind: "current" } : { kind: "since", stamp: copy.stamp };
}

export interface LocalRows extends StoreRows, CopyStamp {
  modelKey: string;
}

/** A copy file's first line. */
export interface CopyMeta extends CopyStamp {
  format: string;
  modelKey: string;
  endian: string;
  rows: number;
  dim: number;
  /** Bytes of the JSON lists (paths, hashes) after the meta line. */
  listBytes: number;
}

/**
 * Pieces of the data written or read at once: Buffers (and one read) hold at most 4 GiB, and a million
 * rows of 1,024 floats are 4 GB.
 */
export const COPY_CHUNK_BYTES = 2 ** 30;

/**
 * The file, in pieces to write in turn: a meta line (JSON), the paths and hashes (JSON), padding to 4
 * bytes, the float32 rows in this machine's byte order (the meta line names it) in views of at most
 * `chunkBytes`, never copied.
 */
export function encodeLocalRows(c: LocalRows, chunkBytes = COPY_CHUNK_BYTES): Uint8Array[] {
  const lists = Buffer.from(JSON.stringify({ paths: c.paths, hashes: c.hashes }));
  const meta: CopyMeta = { format: FORMAT, storeId: c.storeId, stamp: c.stamp, modelKey: c.modelKey, endian: os.endianness(), rows: c.paths.length, dim: c.dim, listBytes: lists.length };
  const head = Buffer.from(JSON.stringify(meta) + "\n");
  const pad = Buffer.alloc((4 - ((head.length + lists.length) % 4)) % 4);
  const pieces: Uint8Array[] = [head, lists, pad];
  const bytes = c.paths.length * c.dim * 4;
  for (let at = 0; at < bytes; at += chunkBytes) pieces.push(new Uint8Array(c.data.buffer, c.data.byteOffset + at, Math.min(chunkBytes, bytes - at)));
  return pieces;
}

/** The meta line of a copy file's first bytes, or undefined when they are not one. */
export function decodeMeta(head: Buffer): CopyMeta | undefined {
  const nl = head.indexOf(10);
  if (nl < 0) return undefined;
  try {
    const m = JSON.parse(head.subarray(0, nl).toString("utf8")) as Partial<CopyMeta>;
    const ok =
      m.format === FORMAT &&
      m.endian === os.endianness() &&
      typeof m.storeId === "string" &&
      typeof m.modelKey === "string" &&
      [m.stamp, m.rows, m.dim, m.listBytes].every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
    return ok ? (m as CopyMeta) : undefined;
  } catch {
    return undefined;
  }
}

/** Where a copy file's parts lie: its lists at `listsAt`, its rows at `dataAt`. */
export interface CopyLayout {
  meta: CopyMeta;
  listsAt: number;
  dataAt: number;
}

/**
 * The layout of a copy file from its first bytes (the meta line whole) and its size, or undefined when
 * they are not a copy's or the size is not the one the meta line implies (a truncated or padded file).
 */
export function copyLayout(head: Buffer, fileBytes: number): CopyLayout | undefined {
  const meta = decodeMeta(head);
  if (!meta) return undefined;
  const listsAt = head.indexOf(10) + 1;
  const dataAt = Math.ceil((listsAt + meta.listBytes) / 4) * 4;
  return fileBytes === dataAt + meta.rows * meta.dim * 4 ? { meta, listsAt, dataAt } : undefined;
}

/** A copy file's paths and hashes from their bytes, or undefined when they are not the lists its meta line announces. */
export function decodeLists(meta: CopyMeta, bytes: Buffer): { paths: string[]; hashes: string[] } | undefined {
  let lists: { paths?: unknown; hashes?: unknown };
  try {
    lists = JSON.parse(bytes.toString("utf8")) as typeof lists;
  } catch {
    return undefined;
  }
  const { paths, hashes } = lists;
  const strings = (a: unknown): a is string[] => Array.isArray(a) && a.length === meta.rows && a.every((s) => typeof s === "string");
  return strings(paths) && strings(hashes) ? { paths, hashes } : undefined;
}

/**
 * Compares as PostgreSQL's COLLATE "C" and SQLite's BINARY collation do (UTF-8 byte order, which is code
 * point order): the order both stores return paths in. UTF-16 code
 * units agree with it except that surrogates (code points above U+FFFF) must sort after U+E000–U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

/**
 * `base` with the rows of `changed` paths replaced: `removed` lists every path whose row changed or went
 * (its new row, if any, is in `added`). Both inputs are in path order, and so is the result.
 */
export function mergeRows(base: StoreRows, removed: ReadonlySet<string>, added: StoreRows): StoreRows {
  const dim = base.paths.length > 0 ? base.dim : added.dim;
  const paths: string[] = [];
  const hashes: string[] = [];
  let kept = 0;
  for (const p of base.paths) if (!removed.has(p)) kept++;
  const data = new Float32Array((kept + added.paths.length) * dim);
  // Rows are copied in runs of consecutive source rows: the copy is the merge's cost, one copy of
  // every vector (205 MB at 100,000 rows × 512), and per-row copies would double it.
  let runSrc: StoreRows = base;
  let runStart = 0;
  let runEnd = 0;
  const flush = () => {
    if (runEnd > runStart) data.set(runSrc.data.subarray(runStart * dim, runEnd * dim), (paths.length - (runEnd - runStart)) * dim);
  };
  const take = (src: StoreRows, row: number) => {
    if (src !== runSrc || row !== runEnd) {
      flush();
      runSrc = src;
      runStart = row;
    }
    runEnd = row + 1;
    paths.push(src.paths[row]!);
    hashes.push(src.hashes[row]!);
  };
  let j = 0;
  base.paths.forEach((p, i) => {
    if (removed.has(p)) return;
    while (j < added.paths.length && compareCodePoints(added.paths[j]!, p) < 0) take(added, j++);
    take(base, i);
  });
  while (j < added.paths.length) take(added, j++);
  flush();
  return { paths, hashes, dim, data };
}

/**
 * Whether a path is in `scope`, as the database's own scope condition selects rows: `under` a folder (or
 * the folder itself), and with `indexed` a path equal to one of `roots` or below one of its folders.
 * Undefined when the scope holds every row.
 */
export function scopePredicate(scope: RowScope, roots: readonly IndexedRoot[]): ((path: string) => boolean) | undefined {
  if (scope.under === undefined && !scope.indexed) return undefined;
  const [prefix, , dir] = underRange(scope.under);
  const folders = roots.filter((r) => r.folder).map((r) => underRange(r.path)[0]!);
  const exact = new Set(roots.map((r) => underRange(r.path)[2]!));
  return (p) => (prefix === undefined || p.startsWith(prefix) || p === dir) && (!scope.indexed || exact.has(p) || folders.some((f) => p.startsWith(f)));
}

/** The rows in `scope` (scopePredicate), copied; `rows` itself when every row is in scope. */
export function rowsInScope(rows: StoreRows, scope: RowScope, roots: readonly IndexedRoot[]): StoreRows {
  const wanted = scopePredicate(scope, roots);
  if (!wanted) return rows;
  const keep: number[] = [];
  rows.paths.forEach((p, i) => {
    if (wanted(p)) keep.push(i);
  });
  return selectRows(rows, keep);
}

/** The rows at these positions (ascending), copied; `rows` itself when that is every row. */
export function selectRows(rows: StoreRows, keep: readonly number[]): StoreRows {
  if (keep.length === rows.paths.length) return rows;
  const { dim } = rows;
  const data = new Float32Array(keep.length * dim);
  keep.forEach((row, o) => data.set(rows.data.subarray(row * dim, (row + 1) * dim), o * dim));
  return { paths: keep.map((i) => rows.paths[i]!), hashes: keep.map((i) => rows.hashes[i]!), dim, data };
}
