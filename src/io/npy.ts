/**
 * NumPy .npy files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html): the exchange
 * format for embeddings and reference tensors with Python. Writing produces exactly what `numpy.save` writes
 * for a C-order float32 array; reading accepts little-endian float32 and float64 in C order.
 */
import { ClipOodError } from "../errors.js";
import { checkFreeMemory, formatBytes, MAX_ARRAY_BYTES, openBounded, readExactly } from "./bounded-read.js";
import type { ReadLimit } from "./bounded-read.js";

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
/** numpy aligns the data start to 64 bytes. */
const ALIGN = 64;
/**
 * numpy ≥ 1.23 leaves room in the header for the first axis to grow to 21 digits, so that appending rows can
 * rewrite the header in place; copying it keeps our files byte-identical to numpy's.
 */
const GROWTH_AXIS_MAX_DIGITS = 21;

function shapeRepr(shape: readonly number[]): string {
  // Python tuple repr: (), (5,), (2, 3)
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(", ")})`;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** NPY v1.0, '<f4', C order, in one buffer (for small arrays: `npyParts` writes large ones). */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Buffer {
  return Buffer.concat(npyParts(data, shape));
}

/** Bytes per piece of an .npy body: one write or read call takes at most about 2 GiB. */
const NPY_PIECE_BYTES = 2 ** 30;

/**
 * The .npy file `encodeNpy` makes, as its header then the data in views of at most `pieceBytes` each:
 * nothing is copied, and no call is handed more than about 2 GiB. (A 2.5 GB bank written as one buffer
 * came out with a header of zeros: Buffer.write into a buffer past 2 GiB writes nothing.)
 */
export function npyParts(data: Float32Array, shape: readonly number[], pieceBytes = NPY_PIECE_BYTES): Uint8Array[] {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new RangeError(`encodeNpy: bad shape ${JSON.stringify(shape)}`);
  if (product(shape) !== data.length) {
    throw new RangeError(`encodeNpy: shape ${JSON.stringify(shape)} holds ${product(shape)} values, data has ${data.length}`);
  }
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0) header += " ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  // Same arithmetic as numpy's _wrap_header, including a whole extra block of spaces when already aligned.
  const hlen = header.length + 1;
  const padlen = ALIGN - ((MAGIC.length + 2 + 2 + hlen) % ALIGN);
  const text = header + " ".repeat(padlen) + "\n";
  if (text.length > 0xffff) throw new RangeError("encodeNpy: header too long for NPY v1.0");

  const head = Buffer.alloc(MAGIC.length + 2 + 2 + text.length);
  MAGIC.copy(head, 0);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(text.length, 8);
  head.write(text, 10, "latin1");
  // Typed arrays use the host's byte order, little-endian on every platform Node ships prebuilt binaries for.
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const parts: Uint8Array[] = [head];
  const step = Math.max(4, Math.floor(pieceBytes / 4) * 4);
  for (let at = 0; at < body.length; at += step) parts.push(body.subarray(at, Math.min(body.length, at + step)));
  return parts;
}

function npyError(source: string, what: string): ClipOodError {
  return new ClipOodError("INPUT", `${source}: ${what}`, {
    hint: "expected a NumPy .npy file of float32 or float64 values in C order, as written by numpy.save",
  });
}

/** Reads the header dict, which numpy writes as a Python literal with these three keys. */
function parseHeader(text: string, source: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw npyError(source, `unreadable .npy header ${JSON.stringify(text.trim())}`);
  }
  const parts = shapeText.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const shape = parts.map((p) => (/^\d+L?$/.test(p) ? Number.parseInt(p, 10) : Number.NaN));
  if (shape.some((d) => !Number.isSafeInteger(d))) throw npyError(source, `bad shape (${shapeText}) in .npy header`);
  return { descr, fortran: fortran === "True", shape };
}

/** numpy itself refuses headers over 10,000 bytes unless told otherwise (`max_header_size`). */
const MAX_HEADER_BYTES = 65536;

interface Preamble {
  shape: number[];
  itemSize: 4 | 8;
  dataStart: number;
  dataBytes: number;
}

/** Reads the magic, version and header from the first bytes of a file (at least MAX_HEADER_BYTES + 12 of them, or all). */
function parsePreamble(buf: Uint8Array, source: string): Preamble {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 10 || !b.subarray(0, 6).equals(MAGIC)) throw npyError(source, "not a .npy file (bad magic bytes)");
  const major = b[6];
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = b.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (b.length < 12) throw npyError(source, "truncated .npy header");
    headerLen = b.readUInt32LE(8);
    start = 12;
  } else {
    throw npyError(source, `unsupported .npy format version ${major}.${b[7]}`);
  }
  if (headerLen > MAX_HEADER_BYTES) throw npyError(source, `the .npy header claims ${headerLen} bytes (numpy writes far fewer)`);
  const dataStart = start + headerLen;
  if (dataStart > b.length) throw npyError(source, "truncated .npy header");
  const { descr, fortran, shape } = parseHeader(b.toString(major === 3 ? "utf8" : "latin1", start, dataStart), source);
  if (fortran) throw npyError(source, "Fortran-order arrays are not supported (save np.ascontiguousarray(x) instead)");
  let itemSize: 4 | 8;
  if (descr === "<f4") itemSize = 4;
  else if (descr === "<f8") itemSize = 8;
  else throw npyError(source, `unsupported dtype '${descr}' (only little-endian float32 '<f4' and float64 '<f8')`);
  return { shape, itemSize, dataStart, dataBytes: product(shape) * itemSize };
}

function checkLength(p: Preamble, available: number, source: string): void {
  if (available !== p.dataBytes) {
    throw npyError(source, `shape ${shapeRepr(p.shape)} needs ${p.dataBytes} data bytes, the file has ${available}${available < p.dataBytes ? " (truncated?)" : ""}`);
  }
}

/** Float32 values from little-endian bytes of `itemSize` (float64 is narrowed). */
function toFloat32(bytes: Uint8Array, itemSize: 4 | 8): Float32Array {
  // A fresh copy: the data offset inside a pooled Buffer need not be aligned for a typed view.
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return itemSize === 4 ? new Float32Array(copy.buffer) : Float32Array.from(new Float64Array(copy.buffer));
}

export function decodeNpy(buf: Buffer, source = "<buffer>"): { data: Float32Array; shape: number[] } {
  const p = parsePreamble(buf, source);
  checkLength(p, buf.length - p.dataStart, source);
  return { data: toFloat32(buf.subarray(p.dataStart), p.itemSize), shape: p.shape };
}

/**
 * A .npy file read with bounded memory: the header is read and checked against the file's size before
 * the data, which goes straight into its Float32Array (float64 files are narrowed in slices).
 */
export async function readNpyFile(file: string, limit: ReadLimit): Promise<{ data: Float32Array; shape: number[] }> {
  const { handle, size } = await openBounded(file, { ...limit, maxBytes: 2 * MAX_ARRAY_BYTES + MAX_HEADER_BYTES + 12 });
  try {
    const head = new Uint8Array(Math.min(size, MAX_HEADER_BYTES + 12));
    await readExactly(handle, head, 0, file, limit);
    const p = parsePreamble(head, file);
    checkLength(p, size - p.dataStart, file);
    const count = p.dataBytes / p.itemSize;
    if (count * 4 > MAX_ARRAY_BYTES) {
      throw npyError(file, `shape ${shapeRepr(p.shape)} is ${formatBytes(count * 4)} of float32, over the ${formatBytes(MAX_ARRAY_BYTES)} clip-ood reads from one file`);
    }
    const [rows = 1, ...rest] = p.shape;
    checkFreeMemory(count * 4, `${file}: ${rows.toLocaleString("en")} rows × ${rest.join(" × ") || 1} float32 values`, "read a smaller file (fewer rows), free memory, or use a machine with more memory");
    const data = new Float32Array(count);
    if (p.itemSize === 4) {
      await readExactly(handle, new Uint8Array(data.buffer), p.dataStart, file, limit);
    } else {
      const step = 1 << 20;
      const slice = new Float64Array(step);
      for (let done = 0; done < count; done += step) {
        const n = Math.min(step, count - done);
        await readExactly(handle, new Uint8Array(slice.buffer, 0, n * 8), p.dataStart + done * 8, file, limit);
        data.set(slice.subarray(0, n), done);
      }
    }
    return { data, shape: p.shape };
  } finally {
    await handle.close();
  }
}
