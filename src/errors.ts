/**
 * Every failure a user can act on is a ClipOodError: a stable machine-readable `code`, a message that
 * names the input at fault, and a `hint` that says how to fix it. The CLI prints `message` and `hint`
 * and maps `code` to an exit status; library users can switch on `code`.
 */
export type ErrorCode =
  | "USAGE" // bad flags or arguments
  | "CLASSES" // empty, duplicate or malformed class lists
  | "TEMPLATES" // unknown preset, template without {}, unreadable template file
  | "MODEL_FOLDER" // a model folder that is missing files or is not a CLIP export
  | "MODEL_VARIANT" // the requested --dtype variant is not in the folder
  | "MODEL_GRAPH" // a graph that lacks the inputs/outputs the CLIP contract requires
  | "OFFLINE" // a Hub model is neither cached nor downloadable
  | "DOWNLOAD" // the Hub answered with an error
  | "IMAGE" // an image could not be read or decoded
  | "INPUT" // an input path, folder or glob that cannot be used
  | "INFERENCE"; // onnxruntime failed while running a graph

export class ClipOodError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ClipOodError";
    this.code = code;
    this.hint = options.hint;
  }
}

export function isClipOodError(e: unknown): e is ClipOodError {
  return e instanceof ClipOodError;
}

/** The message of any thrown value, for wrapping foreign errors into ClipOodErrors. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A value from a file for a message: short, and safe on anything JSON.parse returns (a value nested too
 * deeply for JSON.stringify, a megabyte array), since the file may have been tampered with.
 */
export function shownValue(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = Array.isArray(v) ? "a deeply nested array" : "a deeply nested object";
  }
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

const FULL = new Set(["ENOSPC", "EDQUOT", "EFBIG"]);
const NOT_WRITABLE = new Set(["EROFS", "EACCES", "EPERM"]);

/**
 * A file-system failure that escaped the code that could name it better (a full disk under an output
 * file, a read-only folder) as a ClipOodError; undefined for anything else, which stays unexpected.
 */
export function fileSystemError(e: unknown): ClipOodError | undefined {
  const err = e as Partial<NodeJS.ErrnoException> | null;
  if (typeof err !== "object" || err === null || typeof err.code !== "string" || typeof err.syscall !== "string") return undefined;
  const where = err.path ? ` ${err.path}` : "";
  if (FULL.has(err.code)) {
    return new ClipOodError("INPUT", `cannot ${err.syscall}${where}: the disk is full (${err.code})`, {
      hint: "free some disk space or write to another location, then run again; embeddings already in the store are kept",
      cause: e,
    });
  }
  if (NOT_WRITABLE.has(err.code)) {
    return new ClipOodError("INPUT", `cannot ${err.syscall}${where}: ${err.code === "EROFS" ? "the file system is read-only" : "permission denied"} (${err.code})`, {
      hint: "write to a location you can write to (--out, --report, --store, --cache-dir)",
      cause: e,
    });
  }
  return undefined;
}
