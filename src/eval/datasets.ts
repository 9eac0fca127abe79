/**
 * Data sets named on the command line — for evaluation (ID and OOD sets) and for fitting few-shot
 * detectors — in the layouts users already have: a folder of class folders (torchvision's
 * ImageFolder), a flat folder or glob, a list file (`path [label]` per line, as OpenOOD's image lists),
 * a CSV with a path column and an optional label column, or an embeddings file. Reading a set never
 * decodes an image: unreadable files are found, reported and skipped when they are embedded.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { parse as parseCsv } from "csv-parse/sync";
import { ClipOodError, messageOf } from "../errors.js";
import { expandInputs, IMAGE_EXTENSIONS } from "../image/inputs.js";
import type { InputProblem } from "../image/inputs.js";
import { readTextBounded } from "../io/bounded-read.js";
import { isEmbeddingsFile, readEmbeddings } from "../io/embeddings.js";
import type { EmbeddingSet } from "../io/embeddings.js";
import type { ClassSpec } from "../text/classes.js";

export interface LabelledImage {
  input: string;
  /** A class name or a class index, as the set gives it. */
  label?: string;
}

export type DatasetLayout = "image-folder" | "images" | "list" | "csv" | "embeddings";

export interface Dataset {
  /** The set as the user named it. */
  spec: string;
  layout: DatasetLayout;
  /** Image files, in the set's order (empty for an embeddings file). */
  images: LabelledImage[];
  /** The rows of an embeddings file (with their labels, where it records them). */
  embeddings?: EmbeddingSet;
  /** Whether the set carries class labels. */
  labelled: boolean;
  /** Inputs that could not be used (missing folders, bad globs), reported by the caller. */
  problems: InputProblem[];
}

const PATH_COLUMNS = ["path", "file", "filename", "image", "input", "filepath"];
const LABEL_COLUMNS = ["label", "class", "target", "category"];

export async function readDataset(spec: string, opts: { extensions?: readonly string[] } = {}): Promise<Dataset> {
  if (spec.trim() === "") throw new ClipOodError("USAGE", "a data set is an empty string", { hint: "name a folder, a list file (.txt/.lst), a .csv or an embeddings file" });
  const info = await stat(spec).catch(() => undefined);
  if (info?.isFile() && isEmbeddingsFile(spec)) {
    const embeddings = await readEmbeddings(spec);
    return { spec, layout: "embeddings", images: [], embeddings, labelled: embeddings.labels.some((l) => l !== undefined), problems: [] };
  }
  if (info?.isFile() && /\.(txt|lst)$/i.test(spec)) return fromList(spec, await readText(spec));
  if (info?.isFile() && /\.(csv|tsv)$/i.test(spec)) return fromCsv(spec, await readText(spec));
  if (info?.isDirectory()) {
    const classes = await classFolders(spec);
    if (classes) {
      const images: LabelledImage[] = [];
      const problems: InputProblem[] = [];
      for (const name of classes) {
        const found = await expandInputs([path.join(spec, name)], opts);
        images.push(...found.files.map((input) => ({ input, label: name })));
        problems.push(...found.problems);
      }
      if (images.length === 0) throw new ClipOodError("INPUT", `data set ${spec}: its class folders hold no images`, { hint: "put each class's images in its folder, or check --ext" });
      return { spec, layout: "image-folder", images, labelled: true, problems };
    }
  }
  const found = await expandInputs([spec], opts);
  if (found.files.length === 0) {
    // Nothing to evaluate or fit on is a mistake in the command, found before any image is embedded.
    throw new ClipOodError("INPUT", `data set ${spec}: ${found.problems[0]?.reason ?? "no images found"}`, {
      hint: `name a folder of images (searched recursively for ${(opts.extensions ?? IMAGE_EXTENSIONS).join(" ")}; --ext changes that), a list file, a CSV or an embeddings file`,
    });
  }
  return { spec, layout: "images", images: found.files.map((input) => ({ input })), labelled: false, problems: found.problems };
}

/** The sub-folder names of a folder that holds only sub-folders (hidden entries aside), sorted; else undefined. */
async function classFolders(dir: string): Promise<string[] | undefined> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith("."));
  if (entries.length === 0 || !entries.every((e) => e.isDirectory())) return undefined;
  return entries.map((e) => e.name).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function readText(file: string): Promise<string> {
  return readTextBounded(file, { what: "data-set list", code: "INPUT", hint: "check the path and its permissions; a list names one image per line" });
}

/**
 * `path [label]` per line; blank lines and `#` comments skipped; relative paths are relative to the
 * list's folder. A path may hold spaces: the text after the last run of whitespace is a label only
 * when the line has one, and a tab, when present, is the only separator.
 */
export function fromList(spec: string, text: string): Dataset {
  const base = path.dirname(spec);
  const images: LabelledImage[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const tab = line.lastIndexOf("\t");
    const m = tab >= 0 ? [line, line.slice(0, tab).trim(), line.slice(tab + 1).trim()] : /^(.*\S)\s+(\S+)$/.exec(line);
    // "my photo.jpg" is a path with a space, not the path "my" labelled "photo.jpg".
    const [file, label] = m && m[2] !== "" && !IMAGE_EXTENSIONS.includes(path.extname(m[2]!).toLowerCase()) ? [m[1]!, m[2]] : [line, undefined];
    images.push({ input: path.resolve(base, file), ...(label === undefined ? {} : { label }) });
  }
  if (images.length === 0) throw new ClipOodError("INPUT", `list file ${spec} names no images`, { hint: "write one `path [label]` per line" });
  // A file name with a space and no label would read as `name label`: all lines labelled, or none.
  const labelled = images.filter((i) => i.label !== undefined).length;
  if (labelled > 0 && labelled < images.length) {
    throw new ClipOodError("INPUT", `list file ${spec}: ${labelled} of ${images.length} lines have a label`, {
      hint: "label every line (`path<TAB>label`) or none; for paths with spaces use a tab before the label, or a CSV",
    });
  }
  return { spec, layout: "list", images, labelled: labelled > 0, problems: [] };
}

/** A CSV (or TSV) with a header naming a path column and, optionally, a label column. */
export function fromCsv(spec: string, text: string): Dataset {
  let rows: Record<string, string>[];
  try {
    rows = parseCsv(text, { columns: true, skip_empty_lines: true, trim: true, delimiter: spec.toLowerCase().endsWith(".tsv") ? "\t" : "," }) as Record<string, string>[];
  } catch (e) {
    throw new ClipOodError("INPUT", `${spec} is not a valid CSV: ${messageOf(e)}`, { hint: "a header row, then one row per image, fields quoted where they hold commas" });
  }
  const header = rows[0] ? Object.keys(rows[0]) : [];
  const find = (names: readonly string[]) => header.find((h) => names.includes(h.toLowerCase()));
  const pathColumn = find(PATH_COLUMNS);
  if (!pathColumn) {
    throw new ClipOodError("INPUT", `${spec} has no path column${header.length ? ` (columns: ${header.join(", ")})` : ""}`, {
      hint: `name the column of image paths one of: ${PATH_COLUMNS.join(", ")}; an optional label column: ${LABEL_COLUMNS.join(", ")}`,
    });
  }
  const labelColumn = find(LABEL_COLUMNS);
  const base = path.dirname(spec);
  const images = rows
    .filter((r) => (r[pathColumn] ?? "") !== "")
    .map((r) => {
      const label = labelColumn === undefined ? "" : (r[labelColumn] ?? "");
      return { input: path.resolve(base, r[pathColumn]!), ...(label === "" ? {} : { label }) };
    });
  if (images.length === 0) throw new ClipOodError("INPUT", `${spec} lists no images`, { hint: "one row per image under the header" });
  return { spec, layout: "csv", images, labelled: images.some((i) => i.label !== undefined), problems: [] };
}

/** Every row's label, images or embeddings alike. */
export function labelsOf(ds: Dataset): (string | undefined)[] {
  return ds.embeddings ? ds.embeddings.labels : ds.images.map((i) => i.label);
}

/**
 * Classes named by the sets' labels, in order of first appearance (class folders: sorted), when
 * no class list is given; undefined when the labels are only class indices or absent.
 */
export function classesFromLabels(sets: readonly Dataset[]): ClassSpec[] | undefined {
  const names = [...new Set(sets.flatMap(labelsOf).filter((l): l is string => l !== undefined))];
  if (names.length === 0 || names.every((n) => /^\d+$/.test(n))) return undefined;
  return names.map((label) => ({ label, names: [label], descriptions: [] }));
}
