import { stat } from "node:fs/promises";
import { ClipOodError } from "../errors.js";
import { readTextBounded } from "../io/bounded-read.js";

/** Whether a command-line spec names a file; class lists and templates take the same forms. */
export async function pathKind(p: string): Promise<"file" | "directory" | "missing"> {
  try {
    return (await stat(p)).isDirectory() ? "directory" : "file";
  } catch {
    return "missing";
  }
}

/** A spec that is not an existing file but is shaped like a path: a mistyped file name, not a name or preset. */
export function looksLikePath(spec: string): boolean {
  return /[\\/]/.test(spec) || /\.(txt|json)$/i.test(spec);
}

/**
 * The text of the file `spec` names, or `undefined` when nothing exists there (the caller then
 * reads the spec as a name, list or literal). A directory or an unreadable file is the user's
 * mistake, reported with `code` and `hint`.
 */
export async function readSpecFile(
  spec: string,
  code: "CLASSES" | "TEMPLATES",
  noun: "class file" | "template file" | "prompt file",
  hint: string,
): Promise<string | undefined> {
  const kind = await pathKind(spec);
  if (kind === "missing") return undefined;
  if (kind === "directory") throw new ClipOodError(code, `${noun} ${spec} is a directory`, { hint });
  return readTextBounded(spec, { what: noun, code, hint });
}
