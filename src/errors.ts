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
