/**
 * Where the server keeps its named detectors. Two back ends behind one interface:
 *
 * - `MemoryCatalog`: this process's memory, optionally saved as files in a folder (`--detectors-dir`);
 *   also holds the `--detector` files given at start.
 * - `PostgresCatalog`: rows of `clip_ood.detectors` in the store's database, so every `serve` process on
 *   that database sees the same detectors. Each process keeps the detectors it has read and reads one
 *   again only when its row's version changed (a NegLabel detector carries ~20 MB of arrays).
 *
 * Catalogs only store: names, conflicts and the model check are ClipService's (./service.ts). Writes
 * that change a detector name the version they started from, so two processes editing one detector at
 * once cannot silently lose one edit.
 */
import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { ClipOodError } from "../errors.js";
import type { Detector } from "../ood/detector.js";
import { deserializeDetector, loadDetector, saveDetector, serializeDetector, sidecarPath } from "../ood/detector-file.js";
import type { DetectorSource } from "../ood/detector-file.js";
import type { PostgresDatabase } from "../store/postgres-store.js";

/** Detector names: safe as file names and in URLs. */
export const DETECTOR_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface CatalogEntry {
  name: string;
  detector: Detector;
  /** Changes with every write of the detector; opaque. */
  version: string;
}

export type ReplaceOutcome = "replaced" | "gone" | "changed";

export interface DetectorCatalog {
  /** Whether other processes see this catalog's detectors. */
  readonly shared: boolean;
  names(): Promise<string[]>;
  list(): Promise<CatalogEntry[]>;
  get(name: string): Promise<CatalogEntry | undefined>;
  /** Adds a detector under a name not yet taken; false when it is (here, or in another process when shared). */
  insert(name: string, detector: Detector): Promise<boolean>;
  /** Replaces the detector if it is still at `version`: "gone" if it was deleted, "changed" if another write came first. */
  replace(name: string, detector: Detector, version: string): Promise<ReplaceOutcome>;
  /** False when there was no such detector. */
  delete(name: string): Promise<boolean>;
}

/** Detector files as named detectors: a file's name without `.json` is its detector's name. */
export async function loadDetectorFiles(files: readonly string[]): Promise<{ name: string; detector: Detector }[]> {
  const out: { name: string; detector: Detector }[] = [];
  for (const file of files) {
    const detector = await loadDetector(file);
    const name = path.basename(file).replace(/\.json$/i, "");
    if (!DETECTOR_NAME.test(name)) throw new ClipOodError("USAGE", `detector file name ${file} is not a usable detector name`, { hint: "rename it to letters, digits, -, _ and ." });
    out.push({ name, detector });
  }
  return out;
}

export class MemoryCatalog implements DetectorCatalog {
  readonly shared = false;
  private readonly entries = new Map<string, CatalogEntry>();
  private writes = 0;

  /** `dir`: where inserted and replaced detectors are saved as `<name>.json` (and `load` reads them from). */
  constructor(private readonly dir?: string) {}

  /** Reads the folder's detectors (creating the folder); later ones of a name replace earlier ones. */
  async load(): Promise<CatalogEntry[]> {
    if (!this.dir) return [];
    await mkdir(this.dir, { recursive: true });
    const files = (await readdir(this.dir)).filter((f) => f.endsWith(".json")).sort();
    const loaded = await loadDetectorFiles(files.map((f) => path.join(this.dir!, f)));
    return loaded.map((l) => this.keep(l.name, l.detector));
  }

  /** Holds a detector without saving it (one given as a file at start). */
  keep(name: string, detector: Detector): CatalogEntry {
    const entry = { name, detector, version: String(++this.writes) };
    this.entries.set(name, entry);
    return entry;
  }

  async names(): Promise<string[]> {
    return [...this.entries.keys()];
  }

  async list(): Promise<CatalogEntry[]> {
    return [...this.entries.values()];
  }

  async get(name: string): Promise<CatalogEntry | undefined> {
    return this.entries.get(name);
  }

  async insert(name: string, detector: Detector): Promise<boolean> {
    if (this.entries.has(name)) return false;
    await this.save(name, detector);
    return true;
  }

  async replace(name: string, detector: Detector, version: string): Promise<ReplaceOutcome> {
    const current = this.entries.get(name);
    if (!current) return "gone";
    if (current.version !== version) return "changed";
    await this.save(name, detector);
    return "replaced";
  }

  async delete(name: string): Promise<boolean> {
    if (!this.entries.delete(name)) return false;
    if (this.dir) {
      const file = path.join(this.dir, `${name}.json`);
      await rm(file, { force: true });
      await rm(sidecarPath(file), { force: true });
    }
    return true;
  }

  private async save(name: string, detector: Detector): Promise<void> {
    if (this.dir) await saveDetector(detector, path.join(this.dir, `${name}.json`));
    this.keep(name, detector);
  }
}

export class PostgresCatalog implements DetectorCatalog {
  readonly shared = true;
  /** Detectors as last read or written by this process, with the version they were at. */
  private readonly cache = new Map<string, CatalogEntry>();

  constructor(private readonly db: PostgresDatabase) {}

  async names(): Promise<string[]> {
    return (await this.db.query<{ name: string }>("SELECT name FROM clip_ood.detectors ORDER BY name")).rows.map((r) => r.name);
  }

  async list(): Promise<CatalogEntry[]> {
    const rows = (await this.db.query<{ name: string; version: string }>("SELECT name, version FROM clip_ood.detectors ORDER BY name")).rows;
    for (const name of this.cache.keys()) if (!rows.some((r) => r.name === name)) this.cache.delete(name);
    const out: CatalogEntry[] = [];
    for (const row of rows) {
      const cached = this.cache.get(row.name);
      if (cached?.version === row.version) {
        out.push(cached);
        continue;
      }
      const read = await this.read(row.name);
      // A damaged row must not take the whole list down: it is left out, and reading it by name says
      // what is wrong. One deleted since the first query is gone from the list too.
      if (read !== undefined && !(read instanceof ClipOodError)) out.push(read);
    }
    return out;
  }

  async get(name: string): Promise<CatalogEntry | undefined> {
    const read = await this.read(name);
    if (read instanceof ClipOodError) throw read;
    return read;
  }

  /** The detector by name from the cache or the row; a damaged row is returned as its error, a failing database thrown. */
  private async read(name: string): Promise<CatalogEntry | ClipOodError | undefined> {
    const cached = this.cache.get(name);
    // One round trip either way: the bytes come only when the row changed since this process read it.
    const r = await this.db.query<{ version: string; detector: string | null; arrays: Buffer | null }>(
      `SELECT version, CASE WHEN version = $2 THEN NULL ELSE detector END AS detector, CASE WHEN version = $2 THEN NULL ELSE arrays END AS arrays
       FROM clip_ood.detectors WHERE name = $1`,
      [name, cached?.version ?? "-1"],
    );
    const row = r.rows[0];
    if (!row) {
      this.cache.delete(name);
      return undefined;
    }
    if (cached && row.detector === null) return cached;
    const again = `delete it (DELETE /v1/detectors/${name}) and create it again`;
    const source: DetectorSource = { what: `"${name}" in ${this.db.location}`, repairHint: again, foreignHint: again };
    let detector: Detector;
    try {
      detector = deserializeDetector({ json: row.detector ?? "", arrays: row.arrays ?? Buffer.alloc(0) }, source);
    } catch (e) {
      this.cache.delete(name);
      if (e instanceof ClipOodError) return e;
      throw e;
    }
    const entry = { name, detector, version: row.version };
    this.cache.set(name, entry);
    return entry;
  }

  async insert(name: string, detector: Detector): Promise<boolean> {
    const s = serializeDetector(detector, sidecarPath(`${name}.json`));
    // The primary key makes the name's first insert win, whichever process makes it.
    const r = await this.db.query<{ version: string }>(
      `INSERT INTO clip_ood.detectors (name, version, detector, arrays) VALUES ($1, nextval('clip_ood.detector_versions'), $2, $3)
       ON CONFLICT (name) DO NOTHING RETURNING version`,
      [name, s.json, s.arrays],
    );
    const version = r.rows[0]?.version;
    if (version === undefined) return false;
    this.cache.set(name, { name, detector, version });
    return true;
  }

  async replace(name: string, detector: Detector, version: string): Promise<ReplaceOutcome> {
    const s = serializeDetector(detector, sidecarPath(`${name}.json`));
    const r = await this.db.query<{ version: string }>(
      `UPDATE clip_ood.detectors SET version = nextval('clip_ood.detector_versions'), detector = $2, arrays = $3, updated_at = now()
       WHERE name = $1 AND version = $4 RETURNING version`,
      [name, s.json, s.arrays, version],
    );
    const next = r.rows[0]?.version;
    if (next !== undefined) {
      this.cache.set(name, { name, detector, version: next });
      return "replaced";
    }
    const exists = await this.db.query("SELECT 1 FROM clip_ood.detectors WHERE name = $1", [name]);
    return exists.rows.length > 0 ? "changed" : "gone";
  }

  async delete(name: string): Promise<boolean> {
    this.cache.delete(name);
    return ((await this.db.query("DELETE FROM clip_ood.detectors WHERE name = $1", [name])).rowCount ?? 0) > 0;
  }
}
