/**
 * A store's rows kept on this machine between searches, for either back end: per model key, in memory
 * (so `serve` reads nothing again while nothing changed) and in a file beside the store
 * (`<localFilesBase>.rows-<digest of the model key>`, written whole under a file lock, so processes
 * sharing it refresh it once), checked against the store's change stamp on every read (./local-rows.ts).
 *
 * The store gives two things: its stamp now, and, in one read snapshot, what a refresh asks for at the
 * stamp of that snapshot (every row, or the paths changed since a stamp). Deciding what to ask, merging,
 * the file and its lock are here, once for both back ends.
 */
import { createHash } from "node:crypto";
import { mkdir, open as openFile, readdir, rm } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../io/atomic-file.js";
import { FileLock } from "../io/file-lock.js";
import { COPY_CHUNK_BYTES, copyLayout, decodeLists, decodeMeta, encodeLocalRows, mergeRows, planRefresh, rowsInScope } from "./local-rows.js";
import type { CopyStamp, LocalRows, Refresh, StoreStamp } from "./local-rows.js";
import { damagedStore } from "./store.js";
import type { IndexedRoot, RowScope, StoreRows } from "./store.js";

/** What the store read for a refresh, in one snapshot with the stamp `now`. */
export type RefreshRead =
  | { now: StoreStamp; kind: "current" }
  | { now: StoreStamp; kind: "whole"; rows: StoreRows }
  /** `changed`: every path written or removed since the stamp; `rows`: the model's rows among them, in path order. */
  | { now: StoreStamp; kind: "since"; changed: readonly string[]; rows: StoreRows };

/** What a back end gives its copies. */
export interface StampedRows {
  /** The stamp now: one small read, made before every search. */
  stamp(): Promise<StoreStamp>;
  /** In one read snapshot: the stamp, and the rows that `plan` asks for at it. */
  read(modelKey: string, plan: (now: StoreStamp) => Refresh): Promise<RefreshRead>;
}

export class RowCopies {
  /** Per model key, the rows as of the stamp last seen. */
  private readonly copies = new Map<string, LocalRows>();
  /** Per model key, the read of its copy in progress: concurrent searches (serve) wait for one refresh. */
  private readonly reads = new Map<string, Promise<LocalRows>>();
  /** Copy files being written after the search that refreshed them was answered; `close` waits for them. */
  private readonly saves = new Set<Promise<void>>();

  /** `location` names the store in messages; the files go to `filesBase` + ".rows-…". */
  constructor(
    private readonly source: StampedRows,
    private readonly location: string,
    private readonly filesBase: string,
  ) {}

  /** The model's rows in `scope`, exactly as reading them from the store now would give them. */
  async rows(modelKey: string, scope: RowScope, indexedRoots: () => Promise<IndexedRoot[]>): Promise<StoreRows> {
    const read = (this.reads.get(modelKey) ?? Promise.resolve(undefined)).catch(() => undefined).then(() => this.current(modelKey));
    this.reads.set(modelKey, read);
    const copy = await read.finally(() => {
      if (this.reads.get(modelKey) === read) this.reads.delete(modelKey);
    });
    // The rows without the copy's stamp: what a read from the store gives.
    const rows: StoreRows = { paths: copy.paths, hashes: copy.hashes, dim: copy.dim, data: copy.data };
    if (!scope.indexed && scope.under === undefined) return rows;
    return rowsInScope(rows, scope, scope.indexed ? await indexedRoots() : []);
  }

  /** Waits for the copy files still being written. */
  async close(): Promise<void> {
    await Promise.all(this.saves);
  }

  /** The copy file of a model key. */
  fileOf(modelKey: string): string {
    return `${this.filesBase}.rows-${createHash("sha256").update(modelKey).digest("hex").slice(0, 12)}`;
  }

  /**
   * The model key's rows as of the store's stamp now: the copy in memory, else the file another
   * process (or an earlier run) left, else refreshed from the store and saved for the next. Saving is
   * under a file lock, so that processes sharing the file refresh once, not each.
   */
  private async current(modelKey: string): Promise<LocalRows> {
    const now = await this.source.stamp();
    const isCurrent = (c: CopyStamp | undefined) => c?.storeId === now.storeId && c.stamp === now.stamp;
    const file = this.fileOf(modelKey);
    const remember = (c: LocalRows) => (this.copies.set(modelKey, c), c);
    let copy = this.copies.get(modelKey);
    if (isCurrent(copy)) return copy!;
    const fileIsCurrent = async () => isCurrent(await readCopyMeta(file));
    if (await fileIsCurrent()) {
      const loaded = await readCopyFile(file, modelKey);
      if (isCurrent(loaded)) return remember(loaded!);
    }
    let lock: FileLock | undefined;
    try {
      await mkdir(path.dirname(file), { recursive: true });
      lock = await FileLock.acquire(`${file}.lock`, fileIsCurrent);
      if (!lock) {
        const loaded = await readCopyFile(file, modelKey);
        if (isCurrent(loaded)) return remember(loaded!);
      }
    } catch {
      // A folder that cannot be written: this process refreshes its own copy and keeps it in memory.
    }
    try {
      if (!copy || copy.storeId !== now.storeId || copy.stamp > now.stamp) copy = (await readCopyFile(file, modelKey)) ?? copy;
      const fresh = await this.refreshed(modelKey, copy);
      if (lock && fresh !== copy) {
        // Written while the search goes on, under the lock, which the write releases. The file only
        // spares the next process a full read: one that cannot be written (a full disk), or whose lock
        // was taken over meanwhile, is left for another time.
        const held = lock;
        lock = undefined;
        const save = held
          .ensureHeld()
          .then(() => removeParts(file))
          .then(() => writeFileAtomic(file, encodeLocalRows(fresh)))
          .catch(() => {})
          .finally(() => held.release());
        this.saves.add(save);
        void save.finally(() => this.saves.delete(save));
      }
      return remember(fresh);
    } finally {
      await lock?.release();
    }
  }

  /** `copy` brought to the store's stamp, from what the store read in one snapshot (planRefresh). */
  private async refreshed(modelKey: string, copy: LocalRows | undefined): Promise<LocalRows> {
    const r = await this.source.read(modelKey, (now) => planRefresh(copy, now));
    const stamped = { storeId: r.now.storeId, stamp: r.now.stamp, modelKey };
    if (r.kind === "current") return copy!;
    if (r.kind === "whole") return { ...r.rows, ...stamped };
    if (copy!.paths.length > 0 && r.rows.paths.length > 0 && r.rows.dim !== copy!.dim) {
      throw damagedStore(this.location, `embeddings of model ${modelKey} disagree on their dimension`);
    }
    return { ...mergeRows(copy!, new Set(r.changed), r.rows), ...stamped };
  }
}

/**
 * Removes what writers of `file` killed mid-write left (writeFileAtomic's `<file>.<pid>.part`, as large
 * as the copy): called under the file's lock, which a live writer would hold.
 */
async function removeParts(file: string): Promise<void> {
  const dir = path.dirname(file);
  const name = path.basename(file);
  const parts = (await readdir(dir).catch(() => [])).filter((f) => f.startsWith(`${name}.`) && /^\d+\.part$/.test(f.slice(name.length + 1)));
  await Promise.all(parts.map((f) => rm(path.join(dir, f), { force: true }).catch(() => {})));
}

/** A copy file's meta line, or undefined when there is none or it is not one. */
async function readCopyMeta(file: string): Promise<CopyStamp | undefined> {
  const fh = await openFile(file, "r").catch(() => undefined);
  if (!fh) return undefined;
  try {
    const head = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return decodeMeta(head.subarray(0, bytesRead));
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}

/**
 * The copy of `modelKey`'s rows in `file`, or undefined when it is missing, another's, damaged or
 * truncated. Read in parts, straight into the rows' array: a file of a million rows can pass the 2 GiB
 * that one read (or readFile) takes.
 */
export async function readCopyFile(file: string, modelKey: string, chunkBytes = COPY_CHUNK_BYTES): Promise<LocalRows | undefined> {
  const fh = await openFile(file, "r").catch(() => undefined);
  if (!fh) return undefined;
  try {
    const size = (await fh.stat()).size;
    const layout = copyLayout(await readAt(fh, Buffer.alloc(Math.min(size, 65_536)), 0), size);
    if (!layout || layout.meta.modelKey !== modelKey) return undefined;
    const { meta, listsAt, dataAt } = layout;
    const lists = decodeLists(meta, await readAt(fh, Buffer.alloc(meta.listBytes), listsAt));
    if (!lists) return undefined;
    const data = new Float32Array(meta.rows * meta.dim);
    for (let at = 0; at < data.byteLength; at += chunkBytes) {
      await readAt(fh, new Uint8Array(data.buffer, at, Math.min(chunkBytes, data.byteLength - at)), dataAt + at);
    }
    return { storeId: meta.storeId, stamp: meta.stamp, modelKey, ...lists, dim: meta.dim, data };
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}

/** Fills `into` from `position` on; throws when the file ends first (it changed under us). */
async function readAt<T extends Uint8Array>(fh: FileHandle, into: T, position: number): Promise<T> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error("the copy file ended early");
    done += bytesRead;
  }
  return into;
}
