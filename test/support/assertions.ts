import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ClipOodError } from "../../src/errors.js";
import type { ErrorCode } from "../../src/errors.js";

/** Runs fn in a fresh directory under the system temp dir and removes it afterwards, pass or fail. */
export async function withTempDir(fn: (dir: string) => Promise<void>, prefix = "clip-ood-"): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A validator for assert.throws / assert.rejects: the error is a ClipOodError with `code`, a
 * message containing every fragment, and a non-empty hint (every user-facing failure has one).
 */
export function rejectsWithCode(code: ErrorCode, ...fragments: string[]): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof ClipOodError, `expected a ClipOodError, got ${String(e)}`);
    assert.equal(e.code, code);
    for (const f of fragments) assert.ok(e.message.includes(f), `message "${e.message}" lacks "${f}"`);
    assert.ok(e.hint && e.hint.length > 0, "error has no hint");
    return true;
  };
}
