/**
 * Cache files (mined negative labels, candidate features): written whole under a temporary name and
 * renamed into place, so a crash or a full disk never leaves a partial file that a later run trusts.
 * A cache only saves time, so a failed write is reported and the run goes on.
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { messageOf } from "../errors.js";

export async function writeCacheFile(file: string, data: string | Uint8Array, onWarning: (message: string) => void): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    onWarning(`cannot write the cache file ${file} (${messageOf(e)}); it is computed again next time`);
  }
}
