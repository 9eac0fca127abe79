/**
 * Reading files that come from other hands (class lists, data-set lists, detectors, embeddings, model
 * configs) with a ceiling on memory: the size is checked before a byte is read, and only regular files
 * are read at all. Without this, a 40 GB file, /dev/zero or a named pipe passed where a list was
 * expected would exhaust memory or block forever instead of failing with a message.
 */
import { constants } from "node:fs";
import os from "node:os";
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { ClipOodError, messageOf } from "../errors.js";
import type { ErrorCode } from "../errors.js";

/** Text files (lists, templates, JSON configs, detector files): far above any real one, far below what would hurt. */
export const MAX_TEXT_FILE_BYTES = 256 * 2 ** 20;
/**
 * Binary arrays read whole (embeddings .npy data, detector sidecars): 4 GiB, Node's largest Buffer on a
 * 64-bit machine and room for ImageNet-1k's 1,281,167 training embeddings (2.44 GiB at 512-d float32),
 * the bank of KNN's full-data setting. Whether the machine has that memory free is checked where a bank
 * is made (knn.ts's checkBankMemory).
 */
export const MAX_ARRAY_BYTES = 4 * 2 ** 30;
/** One line of a JSON Lines embeddings file: a 4096-d vector written by JSON.stringify is about 100 KB. */
export const MAX_LINE_BYTES = 8 * 2 ** 20;

export interface ReadLimit {
  /** What the file is, for messages: "detector", "class file", "embeddings file". */
  what: string;
  code: ErrorCode;
  hint: string;
  maxBytes?: number;
}

export function formatBytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v >= 10 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/**
 * Opens a regular file for reading and checks its size against the limit. Opening is non-blocking, so a
 * named pipe is refused instead of waiting for a writer that never comes.
 */
export async function openBounded(file: string, limit: ReadLimit): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new ClipOodError(limit.code, `cannot read ${limit.what} ${file}: ${messageOf(e)}`, { hint: limit.hint, cause: e });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new ClipOodError(limit.code, `${limit.what} ${file} is not a regular file (${info.isDirectory() ? "a folder" : "a device, pipe or socket"})`, { hint: limit.hint });
    }
    const max = limit.maxBytes ?? MAX_TEXT_FILE_BYTES;
    if (info.size > max) {
      throw new ClipOodError(limit.code, `${limit.what} ${file} is ${formatBytes(info.size)}, over the ${formatBytes(max)} clip-ood reads for one`, { hint: limit.hint });
    }
    return { handle, size: info.size };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** Reads `length` bytes at `position` into `into` (a view over the destination), failing if the file is shorter. */
export async function readExactly(handle: FileHandle, into: Uint8Array, position: number, file: string, limit: ReadLimit): Promise<void> {
  let done = 0;
  while (done < into.length) {
    // One read returns at most about 2 GiB; larger destinations are filled in steps.
    const { bytesRead } = await handle.read(into, done, Math.min(into.length - done, 2 ** 30), position + done);
    if (bytesRead === 0) throw new ClipOodError(limit.code, `${limit.what} ${file} changed while it was read (it is shorter than it was)`, { hint: limit.hint });
    done += bytesRead;
  }
}

/** The whole file, at most `limit.maxBytes` (default MAX_TEXT_FILE_BYTES). */
export async function readFileBounded(file: string, limit: ReadLimit): Promise<Buffer> {
  const { handle, size } = await openBounded(file, limit);
  try {
    const buf = Buffer.alloc(size);
    await readExactly(handle, buf, 0, file, limit);
    return buf;
  } finally {
    await handle.close();
  }
}

/** The whole file as UTF-8 text, without a leading byte-order mark. */
export async function readTextBounded(file: string, limit: ReadLimit): Promise<string> {
  return (await readFileBounded(file, limit)).toString("utf8").replace(/^\uFEFF/, "");
}

/**
 * The lines of a file of any size, each at most `maxLine` bytes, decoded as UTF-8 (without the
 * newline or a trailing \r). Memory stays at one chunk plus one line.
 */
export async function* linesBounded(file: string, limit: ReadLimit & { maxLine?: number }): AsyncGenerator<string> {
  const { handle } = await openBounded(file, { ...limit, maxBytes: Number.MAX_SAFE_INTEGER });
  const maxLine = limit.maxLine ?? MAX_LINE_BYTES;
  const chunk = Buffer.alloc(1 << 20);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  const take = (tail: Buffer): string => {
    const whole = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
    pending = [];
    pendingBytes = 0;
    line++;
    const text = whole.toString("utf8");
    return text.endsWith("\r") ? text.slice(0, -1) : text;
  };
  const tooLong = () =>
    new ClipOodError(limit.code, `${limit.what} ${file}: line ${line + 1} is longer than ${formatBytes(maxLine)}`, { hint: limit.hint });
  try {
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      let start = 0;
      for (let nl = chunk.indexOf(10, start); nl !== -1 && nl < bytesRead; nl = chunk.indexOf(10, start)) {
        if (pendingBytes + nl - start > maxLine) throw tooLong();
        yield take(chunk.subarray(start, nl));
        start = nl + 1;
      }
      if (start < bytesRead) {
        pendingBytes += bytesRead - start;
        if (pendingBytes > maxLine) throw tooLong();
        pending.push(Buffer.from(chunk.subarray(start, bytesRead)));
      }
    }
    if (pendingBytes > 0) yield take(Buffer.alloc(0));
  } finally {
    await handle.close();
  }
}

/** What the machine can give a large array: free and total bytes of memory (os.freemem(), os.totalmem()). */
export interface MemoryBudget {
  free: number;
  total: number;
}

export function systemMemory(): MemoryBudget {
  return { free: os.freemem(), total: os.totalmem() };
}

/**
 * Refuses, before any work, `bytes` that the machine's free memory cannot hold (a tenth kept back for
 * the rest of the process): an array of millions of rows is gigabytes, and running out of memory half
 * way kills the process without a word. `what` opens the message, e.g. "knn: a bank of 1,000 rows × 512
 * dimensions"; `hint` says what to do instead.
 */
export function checkFreeMemory(bytes: number, what: string, hint: string, memory: MemoryBudget = systemMemory()): void {
  if (bytes <= memory.free * 0.9) return;
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
  throw new ClipOodError("INPUT", `${what} needs ${gib(bytes)}, but this machine has ${gib(memory.free)} free of ${gib(memory.total)}`, { hint });
}
