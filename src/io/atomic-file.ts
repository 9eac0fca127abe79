/**
 * Files written whole or not at all: the bytes go to a temporary name beside the file, which is renamed
 * into place only once complete, so a crash or a full disk never leaves a partial file that a later run
 * (or a user) takes for a whole one.
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { messageOf } from "../errors.js";

/** The temporary name `file` is written under until it is complete. */
export function partialPath(file: string): string {
  return `${file}.${process.pid}.part`;
}

/**
 * Writes `data` (or its pieces in turn, which spares joining large buffers) to `file` atomically; on
 * failure nothing is left behind and the error is thrown.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array | readonly Uint8Array[]): Promise<void> {
  const part = partialPath(file);
  try {
    await writeFile(part, data);
    await rename(part, file);
  } catch (e) {
    await rm(part, { force: true }).catch(() => {});
    throw e;
  }
}

/**
 * Cache files (mined negative labels, candidate features): a cache only saves time, so a failed write
 * (a full disk, a read-only folder) is reported and the run goes on.
 */
export async function writeCacheFile(file: string, data: string | Uint8Array, onWarning: (message: string) => void): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, data);
  } catch (e) {
    onWarning(`cannot write the cache file ${file} (${messageOf(e)}); it is computed again next time`);
  }
}
