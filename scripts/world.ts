/**
 * The procedurally defined world the generated test models "see": colours and textures, and words
 * that name them. A generated model maps an image showing colour c with texture t, and a prompt
 * naming c and t, onto the same directions of its embedding space, so zero-shot classification and
 * OOD scoring on these models have real, checkable outcomes. The painter below draws held-out
 * images of that world with random shades, sizes, stripe periods, phases and noise.
 */
import sharp from "sharp";
import { mulberry32 } from "../src/maths/random.js";

export type Rgb = readonly [number, number, number];

export const COLOURS: Readonly<Record<string, Rgb>> = {
  red: [220, 30, 30],
  green: [40, 170, 60],
  blue: [30, 70, 220],
  yellow: [235, 215, 40],
  orange: [240, 130, 20],
  purple: [130, 50, 170],
  pink: [240, 140, 190],
  brown: [120, 75, 35],
  black: [20, 20, 20],
  white: [235, 235, 235],
  gray: [128, 128, 128],
  cyan: [40, 200, 210],
};

export const TEXTURES = ["plain", "striped", "checkered"] as const;
export type Texture = (typeof TEXTURES)[number];

/** Words whose direction is close to another concept's (synonyms and near-synonyms). */
export const SYNONYMS: Readonly<Record<string, string>> = {
  crimson: "red",
  scarlet: "red",
  azure: "blue",
  navy: "blue",
  emerald: "green",
  violet: "purple",
  grey: "gray",
  solid: "plain",
  stripes: "striped",
  checked: "checkered",
};

/** Concepts that words can name but no image of this world shows: natural outlier names. */
export const TEXT_ONLY_CONCEPTS = ["cat", "dog", "car", "tree", "house", "unknown", "other"] as const;

/** Words that carry no concept: they share one "this is a caption" direction, like real templates. */
export const GENERIC_WORDS = [
  "a", "an", "the", "of", "photo", "picture", "image", "my", "one", "many", "thing", "object",
  "bad", "good", "small", "large", "big", "close", "up", "bright", "dark", "art", "drawing", "painting",
  "in", "and", "with", "is", "this", "that", "there", "it",
];

/** Fraction of a colour's intensity in the dark bands of a texture. */
export const TEXTURE_SHADE = 0.4;

export interface PaintOptions {
  colour: string;
  texture: Texture;
  width: number;
  height: number;
  /** Deterministic randomness for shade jitter, period, phase and noise. */
  seed: number;
  /** Maximum absolute per-channel noise in 0–255 units (default 6). */
  noise?: number;
  /** Maximum absolute per-channel shade jitter (default 12). */
  jitter?: number;
  /**
   * A rectangle (in pixels) painted in another colour with the same texture: a small object in a
   * scene, for local (per-patch) scores. Absent, the image is exactly what it was without this field.
   */
  region?: Region;
}

export interface Region {
  colour: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Seeded randomness for reproducible worlds and images. */
export const rng = mulberry32;

/** Raw interleaved RGB pixels of one image of the world. */
export function paintRgb(o: PaintOptions): Buffer {
  const rand = rng(o.seed);
  const base = COLOURS[o.colour];
  if (!base) throw new Error(`unknown colour ${o.colour}`);
  const jitter = o.jitter ?? 12;
  const noise = o.noise ?? 6;
  const shade = base.map((v) => clamp(v + (rand() * 2 - 1) * jitter));
  // Texture period relative to the short side keeps several bands inside every 32-px patch after
  // the resize to 224, whatever the source size.
  const short = Math.min(o.width, o.height);
  const period = Math.max(2, Math.round((short / 224) * (6 + rand() * 8)));
  const phase = Math.floor(rand() * period);
  const horizontal = rand() < 0.5;
  const out = Buffer.alloc(o.width * o.height * 3);
  for (let y = 0; y < o.height; y++) {
    for (let x = 0; x < o.width; x++) {
      let dark = false;
      if (o.texture === "striped") {
        dark = Math.floor(((horizontal ? y : x) + phase) / period) % 2 === 1;
      } else if (o.texture === "checkered") {
        dark = (Math.floor((x + phase) / period) + Math.floor((y + phase) / period)) % 2 === 1;
      }
      const f = dark ? TEXTURE_SHADE : 1;
      const i = (y * o.width + x) * 3;
      for (let c = 0; c < 3; c++) out[i + c] = clamp(shade[c]! * f + (rand() * 2 - 1) * noise);
    }
  }
  if (o.region) {
    // The object's pixels come from a whole image of its colour, so they get the same jitter and noise.
    const r = o.region;
    const object = paintRgb({ ...o, colour: r.colour, seed: o.seed + 1, region: undefined });
    for (let y = Math.max(0, r.y); y < Math.min(o.height, r.y + r.height); y++) {
      const start = (y * o.width + Math.max(0, r.x)) * 3;
      const end = (y * o.width + Math.min(o.width, r.x + r.width)) * 3;
      if (end > start) object.copy(out, start, start, end);
    }
  }
  return out;
}

/** One image of the world encoded as PNG (or JPEG/WebP when asked), ready to write to disk. */
export async function paintImage(o: PaintOptions, format: "png" | "jpeg" | "webp" = "png"): Promise<Buffer> {
  const img = sharp(paintRgb(o), { raw: { width: o.width, height: o.height, channels: 3 } });
  if (format === "jpeg") return img.jpeg({ quality: 95 }).toBuffer();
  if (format === "webp") return img.webp({ quality: 95 }).toBuffer();
  return img.png().toBuffer();
}

function clamp(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v)));
}
