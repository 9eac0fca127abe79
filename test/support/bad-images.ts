/**
 * Files that must be rejected cleanly: each is built here from its format's definition, not copied.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { deflateSync } from "node:zlib";
import sharp from "sharp";

/** CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as PNG chunks require. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

export function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/**
 * A well-formed PNG whose IHDR claims width × height 8-bit RGB pixels, with a tiny IDAT: a
 * decompression bomb's header, a few hundred bytes on disk.
 */
export function pngHeaderClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", deflateSync(Buffer.alloc(64))),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

export async function truncatedJpeg(): Promise<Buffer> {
  const full = await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 200, g: 30, b: 30 } } })
    .jpeg({ quality: 90 })
    .toBuffer();
  return full.subarray(0, Math.floor(full.length / 2));
}

/** Writes the standard set of bad inputs into dir; returns their paths by kind. */
export async function writeBadImages(dir: string): Promise<Record<"truncated" | "empty" | "text" | "bomb", string>> {
  const files = {
    truncated: path.join(dir, "truncated.jpg"),
    empty: path.join(dir, "empty.png"),
    text: path.join(dir, "notes.jpg"),
    bomb: path.join(dir, "bomb.png"),
  };
  await writeFile(files.truncated, await truncatedJpeg());
  await writeFile(files.empty, Buffer.alloc(0));
  await writeFile(files.text, "this is a text file, not a JPEG\n");
  await writeFile(files.bomb, pngHeaderClaiming(100_000, 100_000));
  return files;
}
