/**
 * preprocess: what the PIL-exact enlarging resize (src/image/resample.ts) costs per image, against the
 * libvips enlargement it replaced, and against shrinking a photo, all measured in one run.
 */
import { parseArgs } from "node:util";
import sharp from "sharp";
import { resizedSize } from "../../src/image/crop-normalise.js";
import { DEFAULT_MAX_PIXELS, preprocessImage } from "../../src/image/preprocess.js";
import { parsePreprocessorConfig } from "../../src/model/preprocessor-config.js";
import { resizePil } from "../../src/image/resample.js";
import { mulberry32 } from "../../src/maths/random.js";
import { figuresHead, ints, log, ms, quantile } from "./kit.js";
import type { Bench } from "./kit.js";

const CLIP = parsePreprocessorConfig({ size: 224, crop_size: 224 }, "bench");
const OPTIONS = { exifRotate: false, maxPixels: DEFAULT_MAX_PIXELS };

/** A smooth photo-like PNG (gradients plus noise), so that PNG decoding costs what a real one does. */
async function photo(width: number, height: number, seed: number): Promise<Buffer> {
  const r = mulberry32(seed);
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) raw[(y * width + x) * 3 + c] = Math.min(255, Math.floor(((x + y * (c + 1)) % 256) * 0.8 + r() * 50));
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** Median milliseconds of `fn` over `rounds` calls after two warm-up calls. */
async function median(rounds: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  await fn();
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return quantile(times, 0.5);
}

/** libvips' own bicubic enlargement and crop, as clip-ood did before it reproduced PIL. */
async function libvipsPath(png: Buffer, width: number, height: number): Promise<Buffer> {
  const out = resizedSize(width, height, CLIP);
  return sharp(png)
    .removeAlpha()
    .resize(out.width, out.height, { kernel: "cubic", fit: "fill" })
    .extract({ left: Math.floor((out.width - 224) / 2), top: Math.floor((out.height - 224) / 2), width: 224, height: 224 })
    .raw()
    .toBuffer();
}

export const preprocessBench: Bench = {
  title: "preprocess: the PIL-exact enlarging resize",
  intro: [
    "Images smaller than the model's input are enlarged with a TypeScript port of PIL's bicubic",
    "resampler (src/image/resample.ts), because libvips samples enlargements on another grid (up to",
    "7 grey levels off on average); images that are shrunk still go through libvips. Per image, on one",
    "core: the whole preprocessing (`preprocessImage`: decode, resize, crop, normalise), the resampler",
    "alone on decoded pixels, and libvips' enlargement with the same crop, which the port replaced.",
    "Medians over `--rounds` calls, all in one run.",
  ].join("\n"),
  async run(argv, command) {
    const { values } = parseArgs({
      args: argv,
      options: { rounds: { type: "string", default: "200" } },
      strict: true,
    });
    const rounds = ints("rounds", values.rounds)[0]!;
    const sizes: [number, number][] = [
      [32, 32],
      [96, 64],
      [200, 200],
      [223, 224],
      [10, 500],
      [640, 480],
    ];
    const columns = ["image", "path", "preprocessImage ms", "resampler alone ms", "libvips enlarge + crop ms"];
    const lines = figuresHead("per image, one core", command, `, ${rounds} rounds`, columns);
    for (const [w, h] of sizes) {
      log(`preprocess: ${w}×${h}`);
      const png = await photo(w, h, w * 7 + h);
      const rgb = await sharp(png).removeAlpha().raw().toBuffer();
      const out = resizedSize(w, h, CLIP);
      const enlarged = out.width > w || out.height > h;
      const window = { left: Math.floor((out.width - 224) / 2), top: Math.floor((out.height - 224) / 2), width: 224, height: 224 };
      const whole = await median(rounds, () => preprocessImage(png, CLIP, OPTIONS));
      const alone = enlarged ? await median(rounds, async () => resizePil(rgb, w, h, 3, out.width, out.height, window)) : undefined;
      const vips = enlarged ? await median(rounds, () => libvipsPath(png, w, h)) : undefined;
      lines.push(`| ${w}×${h} | ${enlarged ? "enlarge (PIL port)" : "shrink (libvips)"} | ${ms(whole)} | ${alone === undefined ? "—" : ms(alone)} | ${vips === undefined ? "—" : ms(vips)} |`);
    }
    return [{ key: "per-image", markdown: lines.join("\n") }];
  },
};
