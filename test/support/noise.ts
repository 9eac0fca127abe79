/**
 * Deterministic RGB noise: byte i is the top byte of the (i+1)-th state of the 32-bit LCG
 * x ← 1103515245·x + 12345 started at `seed`. scripts/pil-resize-fixtures.py generates the same bytes
 * in Python, so Pillow's outputs for these images can be compared bit for bit.
 */
export function noiseRgb(width: number, height: number, seed = 1): Buffer {
  const raw = Buffer.alloc(width * height * 3);
  let x = seed;
  for (let i = 0; i < raw.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    raw[i] = x >>> 24;
  }
  return raw;
}
