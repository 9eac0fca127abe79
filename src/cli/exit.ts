/**
 * The exit statuses of clip-ood: the numbers, which error codes map to which, and the text every
 * command's --help ends with, kept together so that the help cannot drift from what main returns.
 */
import type { ErrorCode } from "../errors.js";

/** Exit statuses, documented in --help and the README. */
export const EXIT = { ok: 0, someInputsFailed: 1, usage: 2, model: 3, internal: 4 } as const;

export const EXIT_FOR: Record<ErrorCode, number> = {
  USAGE: EXIT.usage,
  CLASSES: EXIT.usage,
  TEMPLATES: EXIT.usage,
  INPUT: EXIT.usage,
  IMAGE: EXIT.someInputsFailed,
  MODEL_FOLDER: EXIT.model,
  MODEL_VARIANT: EXIT.model,
  MODEL_GRAPH: EXIT.model,
  OFFLINE: EXIT.model,
  DOWNLOAD: EXIT.model,
  INFERENCE: EXIT.internal,
};

export const EXIT_HELP = `
Exit status:
  0  every input was processed
  1  some inputs could not be read (each is reported on stderr; the others' results are printed)
  2  usage error: bad flag, class list, template or input path, or no input gave any image
  3  model error: missing or broken model folder, missing --dtype variant, offline and not cached
  4  inference failed`;

/** A worker has no inputs of its own: images that fail are recorded in the queue, not in its status. */
export const WORKER_EXIT_HELP = `
Exit status:
  0  stopped by SIGTERM or SIGINT, or (--once) the queue was empty; images that failed are listed by
     \`clip-ood queue failed\`, not in the status
  2  usage error: a bad flag, a store that is not PostgreSQL, a database that does not answer at start
     or stays away longer than --db-retry
  3  model error: missing or broken model folder, missing --dtype variant, offline and not cached
  4  internal error`;
