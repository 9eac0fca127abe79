/**
 * Content identity for the store: a file's embedding is keyed by what it contains, so a moved or
 * copied image is recognised without running the model again.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { ClipOodError, messageOf } from "../errors.js";

/** SHA-256 (hex) of the file's bytes, streamed so that a large file never sits in memory whole. */
export async function hashFile(file: string): Promise<string> {
  const hash = createHash("sha256");
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  } catch (e) {
    throw new ClipOodError("INPUT", `${file}: cannot be read to hash it (${messageOf(e)})`, {
      hint: "check that the file exists and is readable",
      cause: e,
    });
  }
  return hash.digest("hex");
}
