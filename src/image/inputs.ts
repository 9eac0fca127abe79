/**
 * Turns the user's inputs (files, folders, globs, "-" for a list on stdin) into a flat, de-duplicated list of
 * image files. Inputs that cannot be used become `problems` instead of exceptions, so one bad argument does
 * not stop a run over thousands of images; the caller decides how to report them.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { glob, isDynamicPattern } from "tinyglobby";
import { messageOf } from "../errors.js";

export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif"];

export interface InputProblem {
  input: string;
  reason: string;
  /** Set when the input is a folder that was listed but holds no file with an image extension. */
  empty?: true;
}

interface Collector {
  extensions: ReadonlySet<string>;
  files: string[];
  seen: Set<string>;
  problems: InputProblem[];
}

function add(col: Collector, file: string): void {
  const key = path.resolve(file);
  if (col.seen.has(key)) return;
  col.seen.add(key);
  col.files.push(file);
}

function hasImageExtension(file: string, extensions: ReadonlySet<string>): boolean {
  return extensions.has(path.extname(file).toLowerCase());
}

function reasonOf(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file or folder";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "ENOTDIR") return "a path component is not a folder";
  if (code === "ELOOP") return "too many levels of symbolic links";
  return messageOf(e);
}

/** Byte-wise order, so that the listing does not depend on the locale. */
function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Image files under `root`, recursively. Hidden entries (names starting with ".") are skipped: hidden folders
 * hold caches and VCS data, and hidden files with image extensions are mostly macOS "._x.jpg" resource forks,
 * which are not images. Symbolic links to files are followed; links to folders are not (like `find` and
 * Python's os.walk), so a link back up the tree cannot loop or list a folder twice. A linked folder given as
 * an input itself is listed.
 */
async function walk(root: string, col: Collector): Promise<number> {
  const found: string[] = [];

  async function visit(dir: string): Promise<void> {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (e) {
      col.problems.push({ input: dir, reason: `cannot list folder: ${reasonOf(e)}` });
      return;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        await visit(full);
      } else if (entry.isFile()) {
        if (hasImageExtension(entry.name, col.extensions)) found.push(full);
      } else if (entry.isSymbolicLink() && hasImageExtension(entry.name, col.extensions)) {
        try {
          if ((await fs.stat(full)).isFile()) found.push(full);
        } catch (e) {
          col.problems.push({ input: full, reason: `broken symbolic link: ${reasonOf(e)}` });
        }
      }
    }
  }

  await visit(root);
  found.sort(byCodeUnit);
  for (const f of found) add(col, f);
  return found.length;
}

/** A path given explicitly (argument or stdin line): a folder is listed, anything else is taken as-is. */
async function addPath(p: string, col: Collector, allowGlob: boolean): Promise<void> {
  let stat;
  try {
    stat = await fs.stat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (allowGlob && code === "ENOENT" && isDynamicPattern(p)) {
      await addGlob(p, col);
      return;
    }
    col.problems.push({ input: p, reason: reasonOf(e) });
    return;
  }
  // A file named explicitly is kept whatever its extension, so that a bad file is reported by the decoder
  // rather than silently dropped.
  if (stat.isDirectory()) {
    const problems = col.problems.length;
    // A folder named on purpose that yields nothing (a folder called `shots.jpg`, a wrong --ext) is
    // named, unless listing it already failed with a reason of its own.
    if ((await walk(p, col)) === 0 && col.problems.length === problems) {
      col.problems.push({ input: p, reason: `folder holds no images (no file in it or below ends in ${[...col.extensions].join(" ")})`, empty: true });
    }
  }
  // A pipe or device would block the decoder or never end: refused here, by name.
  else if (!stat.isFile()) col.problems.push({ input: p, reason: "not a regular file (a device, pipe or socket)" });
  else add(col, p);
}

async function addGlob(pattern: string, col: Collector): Promise<void> {
  let matches: string[];
  try {
    // Links to folders are not followed, as in the folder walk and shell globstar.
    matches = await glob(pattern, {
      absolute: path.isAbsolute(pattern),
      expandDirectories: false,
      onlyFiles: true,
      followSymbolicLinks: false,
    });
  } catch (e) {
    col.problems.push({ input: pattern, reason: `bad glob pattern: ${messageOf(e)}` });
    return;
  }
  if (matches.length === 0) {
    col.problems.push({ input: pattern, reason: "glob matched no files" });
    return;
  }
  const images = matches.filter((m) => hasImageExtension(m, col.extensions)).sort(byCodeUnit);
  if (images.length === 0) {
    col.problems.push({
      input: pattern,
      reason: `glob matched ${matches.length} file(s) but none has an image extension (${[...col.extensions].join(", ")})`,
    });
    return;
  }
  for (const m of images) add(col, m);
}

async function readLines(stream: NodeJS.ReadableStream): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks)
    .toString("utf8")
    .split(/\r?\n/)
    .filter((line) => line.trim() !== "");
}

/**
 * Expands inputs, in order: an existing file is kept as-is; a folder is listed recursively (files with one of
 * `extensions`, case-insensitive, sorted, hidden entries skipped; a folder that yields none is a problem
 * marked `empty`); a string with glob magic that is not an
 * existing path is globbed (matches filtered by extension); "-" reads newline-separated paths (files or
 * folders, not globs) from `stdin`, once. Files are de-duplicated by resolved path, first occurrence kept.
 */
export async function expandInputs(
  inputs: readonly string[],
  opts: { extensions?: readonly string[]; stdin?: NodeJS.ReadableStream } = {},
): Promise<{ files: string[]; problems: InputProblem[] }> {
  const col: Collector = {
    extensions: new Set((opts.extensions ?? IMAGE_EXTENSIONS).map((e) => e.toLowerCase())),
    files: [],
    seen: new Set(),
    problems: [],
  };
  let stdinRead = false;
  for (const input of inputs) {
    if (input === "-") {
      if (stdinRead) continue;
      stdinRead = true;
      let lines: string[];
      try {
        lines = await readLines(opts.stdin ?? process.stdin);
      } catch (e) {
        col.problems.push({ input, reason: `cannot read the list of paths from stdin: ${messageOf(e)}` });
        continue;
      }
      for (const line of lines) await addPath(line, col, false);
    } else if (input === "") {
      col.problems.push({ input, reason: "empty path" });
    } else {
      await addPath(input, col, true);
    }
  }
  return { files: col.files, problems: col.problems };
}
