import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

/** Repository root (this file lives in test/support/). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * `../shared` beside the checkout holds outside reference data (real CLIP tokenizer files, reference
 * tensors). A user's fresh clone has none, so tests that need it skip: pass `skipUnlessShared` as the
 * `skip` option of `test()`.
 */
const candidate = path.resolve(repoRoot, "..", "shared");
export const sharedDir: string | undefined = existsSync(candidate) ? candidate : undefined;
export const skipUnlessShared: string | false = sharedDir ? false : "../shared is absent (fresh clone)";
