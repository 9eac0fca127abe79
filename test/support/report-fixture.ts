/**
 * A small hand-made EvalResult for the report and plot tests: two methods, two OOD sets, names full of
 * HTML-special and non-ASCII characters, and samples pointing at real PNGs, missing files and
 * embeddings-file rows. The metrics are inputs given by hand (the report only displays them), chosen so
 * that each method wins some columns.
 */
import path from "node:path";
import sharp from "sharp";
import type { EvalResult, MethodResult, ScoredSample, ShotsRow, ShotsSummary } from "../../src/eval/types.js";
import type { OodMetrics } from "../../src/maths/metrics.js";

export const ID_SET = `ImageNet "val" <1k>`;
export const METHOD_A = "MCM <b>&amp;";
export const METHOD_B = `GL-MCM «ü» "q"`;
export const OOD_A = "Textures & <DTD>";
export const OOD_B = "iNat/植物 's'";

/** The given metrics, per method and set. */
export const METRICS: Record<string, Record<string, OodMetrics>> = {
  [METHOD_A]: {
    [OOD_A]: { auroc: 0.951234, fpr95: 0.254321, auprIn: 0.9, auprOut: 0.876543, detectionAccuracy: 0.888888, threshold: 0.61234 },
    [OOD_B]: { auroc: 0.8, fpr95: 0.5, auprIn: 0.7, auprOut: 0.6, detectionAccuracy: 0.75, threshold: 0.55 },
  },
  [METHOD_B]: {
    [OOD_A]: { auroc: 0.9, fpr95: 0.2, auprIn: 0.95, auprOut: 0.8, detectionAccuracy: 0.85, threshold: 0.6 },
    [OOD_B]: { auroc: 0.85, fpr95: 0.45, auprIn: 0.7, auprOut: 0.65, detectionAccuracy: 0.8, threshold: 0.58 },
  },
};

/** Averages worked out by hand as the means of the two sets above. */
export const AVERAGES: Record<string, OodMetrics> = {
  // (0.951234 + 0.8)/2 = 0.875617; (0.254321 + 0.5)/2 = 0.3771605; (0.9+0.7)/2 = 0.8; (0.876543+0.6)/2 = 0.7382715;
  // (0.888888+0.75)/2 = 0.819444; (0.61234+0.55)/2 = 0.58117.
  [METHOD_A]: { auroc: 0.875617, fpr95: 0.3771605, auprIn: 0.8, auprOut: 0.7382715, detectionAccuracy: 0.819444, threshold: 0.58117 },
  // (0.9+0.85)/2 = 0.875; (0.2+0.45)/2 = 0.325; (0.95+0.7)/2 = 0.825; (0.8+0.65)/2 = 0.725; (0.85+0.8)/2 = 0.825; (0.6+0.58)/2 = 0.59.
  [METHOD_B]: { auroc: 0.875, fpr95: 0.325, auprIn: 0.825, auprOut: 0.725, detectionAccuracy: 0.825, threshold: 0.59 },
};

export const ID_ACCURACY: Record<string, number | null> = { [METHOD_A]: 0.7654321, [METHOD_B]: null };

export interface ReportFixture {
  result: EvalResult;
  /** The PNG files written into the fixture's folder. */
  images: string[];
  /** Inputs that are not image files: a missing path and embeddings-file rows. */
  notImages: string[];
}

/** A deterministic sequence in [0, 1) (Park–Miller), so the fixture is the same on every run. */
function sequence(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 48271) % 2147483647;
    return s / 2147483647;
  };
}

async function writePng(file: string, width: number, height: number, rgb: [number, number, number], alpha = 1): Promise<void> {
  await sharp({ create: { width, height, channels: 4, background: { r: rgb[0], g: rgb[1], b: rgb[2], alpha } } })
    .png()
    .toFile(file);
}

/** Builds the fixture, writing its PNGs into dir. */
export async function makeReportFixture(dir: string): Promise<ReportFixture> {
  const images = [
    path.join(dir, "cat <1> & ü.png"),
    path.join(dir, "東京 'q'.png"),
    path.join(dir, "wide \"x\".png"),
    path.join(dir, "tiny.png"),
  ];
  await writePng(images[0]!, 300, 200, [200, 60, 40]);
  await writePng(images[1]!, 120, 240, [40, 120, 200]);
  await writePng(images[2]!, 512, 64, [30, 160, 90], 0.5);
  await writePng(images[3]!, 16, 16, [240, 200, 20]);
  const missing = path.join(dir, "missing dir", "gone <x>.png");
  const rows = ["embeddings.jsonl#12", "embeddings.jsonl#40"];
  const notImages = [missing, ...rows];

  const rand = sequence(12345);
  // ID scores mostly high; the two lowest point at real images, the third lowest at a missing file,
  // so the worst false negatives show both thumbnails and placeholders.
  const id: ScoredSample[] = Array.from({ length: 24 }, (_, i) => ({
    input: path.join(dir, `id-${i}.png`),
    score: 0.6 + 0.35 * rand(),
    label: i % 2 === 0 ? "cat" : "dog",
    predicted: i % 3 === 0 ? "dog" : "cat",
  }));
  id[0] = { input: images[0]!, score: 0.11, label: "cat", predicted: "dog" };
  id[1] = { input: images[1]!, score: 0.12, label: "東京", predicted: "cat" };
  id[2] = { input: missing, score: 0.13, label: "dog", predicted: "dog" };
  const oodSamples = (seed: number, n: number): ScoredSample[] => {
    const r = sequence(seed);
    const out: ScoredSample[] = Array.from({ length: n }, (_, i) => ({ input: `embeddings.jsonl#${100 + i}`, score: 0.2 + 0.4 * r(), predicted: "cat" }));
    // The highest OOD scores: two real images, one embeddings row and a missing file.
    out[3] = { input: images[2]!, score: 0.97, predicted: "cat <b>" };
    out[5] = { input: rows[0]!, score: 0.96, predicted: "dog" };
    out[7] = { input: images[3]!, score: 0.95, predicted: "cat" };
    out[9] = { input: missing, score: 0.94, predicted: "dog" };
    out[11] = { input: rows[1]!, score: 0.93, predicted: "dog" };
    return out;
  };
  const setSamples: Record<string, ScoredSample[]> = { [OOD_A]: oodSamples(777, 18), [OOD_B]: oodSamples(4242, 30) };
  const methods: MethodResult[] = [METHOD_A, METHOD_B].map((method, mi) => ({
    method,
    // The second method's ID scores are shifted so that the two methods' curves differ.
    id: id.map((s) => ({ ...s, score: s.score - 0.05 * mi })),
    sets: [OOD_A, OOD_B].map((ood) => ({
      ood,
      metrics: METRICS[method]![ood]!,
      n: { id: id.length, ood: setSamples[ood]!.length },
      samples: setSamples[ood]!,
    })),
    average: AVERAGES[method]!,
    idAccuracy: ID_ACCURACY[method] ?? null,
  }));
  return {
    result: { model: "ViT-B/16 <openai> & co", idSet: ID_SET, convention: "hendrycks", methods, imageSets: [ID_SET, OOD_A, OOD_B], createdAt: "2024-05-06T07:08:09.000Z" },
    images,
    notImages,
  };
}

/**
 * Few-shot rows by hand for the fixture's result: METHOD_B fitted at 1, 4 and 16 shots over 3 seeds,
 * METHOD_A evaluated once. The 16-shot AUROC band, 0.95 ± 0.1, runs past 1 and must be clipped.
 */
export function shotsSummary(): ShotsSummary {
  const spread = (auroc: number, idAccuracy: number | null) => ({ auroc, fpr95: 0.01, auprIn: 0.01, auprOut: 0.01, detectionAccuracy: 0.01, threshold: 0.01, idAccuracy });
  const at = (shots: number, auroc: number, std: number, idAccuracy: number, idStd: number): ShotsRow[] =>
    [OOD_A, "average"].map((ood) => ({ method: METHOD_B, ood, ...METRICS[METHOD_B]![OOD_A]!, auroc, idAccuracy, shots, seeds: 3, n: { id: 24, ood: 18 }, std: spread(std, idStd) }));
  const once: ShotsRow = { method: METHOD_A, ood: "average", ...AVERAGES[METHOD_A]!, idAccuracy: ID_ACCURACY[METHOD_A]!, shots: null, seeds: null, n: { id: 24, ood: 48 }, std: null };
  return { shots: [1, 4, 16], seeds: 3, rows: [once, ...at(1, 0.6, 0.1, 0.5, 0.05), ...at(4, 0.8, 0.05, 0.7, 0.02), ...at(16, 0.95, 0.1, 0.9, 0.01)] };
}
