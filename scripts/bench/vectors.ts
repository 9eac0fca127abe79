/**
 * Generated embeddings for the benches: uniformly random unit vectors (the worst case for a graph
 * index), and clustered unit vectors shaped like CLIP image embeddings: the statistics a graph
 * index is sensitive to (how concentrated the cone is, how spread its pairs are, how many directions
 * the variation really uses, how close a sample's nearest neighbour is) chosen to match measured CLIP
 * embeddings rather than guessed.
 *
 * The model: z = normalise(w·m + √β·c_y + √γ·D·ε), with m one shared unit direction (the cone's axis),
 * w = √α·(1 + s·g) a per-image weight on it (g standard normal: images differ in how typical they are),
 * c_y a unit class direction (y uniform over `classes`), ε standard normal and D a diagonal spectrum
 * with D_jj² ∝ j^(−p), scaled to unit expected length, so the variation around the axis concentrates in
 * a few dozen directions as real embeddings' does (cosines do not depend on the basis, so the spectrum
 * is laid on the coordinate axes). Class directions are drawn with the same spectrum.
 *
 * The reference figures (docs/PERFORMANCE.md, section ann), from the public repository of Liang et al.,
 * "Mind the Gap", NeurIPS 2022 (github.com/Weixin-Liang/Modality-Gap): its Figure 2a notebook reports the
 * pairwise cosines of CLIP image embeddings of the 5,000 MSCOCO validation images as mean 0.468, sd
 * 0.090 (quartiles 0.41, 0.47, 0.52); its Figure 1 file features_clip.npy holds 500 MSCOCO image
 * embeddings of CLIP ViT-B/16, in which we measured pairwise cosines 0.531 ± 0.096, each image's
 * nearest other image at median cosine 0.82, cosine to the mean direction 0.73 ± 0.065, and a residual
 * (around the mean) whose top 10 and top 50 principal directions carry 39% and 70% of its variance
 * (participation ratio 43). The defaults below give, on 500 samples: pairwise 0.50 ± 0.096, nearest
 * neighbour median 0.83, cosine to the mean 0.71 ± 0.063, top 10 / top 50 37% / 72%, participation 43.
 */
import { mulberry32 } from "../../src/maths/random.js";

/** Seeded uniformly random unit vectors: Gaussian components (Box–Muller), then L2-normalised. */
export function randomUnitVectors(n: number, dim: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) {
      const g = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
      out[o + j] = g;
      ss += g * g;
    }
    const inv = 1 / Math.sqrt(ss);
    for (let j = 0; j < dim; j++) out[o + j]! *= inv;
  }
  return out;
}

export interface ClipShape {
  /** Share of the squared length on the shared direction (the cone). */
  alpha: number;
  /** Share on the image's class direction. */
  beta: number;
  classes: number;
  /** Spectrum exponent p: variance of direction j ∝ j^(−p). 0 is isotropic. */
  spectrum: number;
  /** Relative spread s of the weight on the shared direction. */
  spread: number;
}

export const CLIP_B32_SHAPE: Readonly<ClipShape> = { alpha: 0.5, beta: 0.3, classes: 100, spectrum: 0.9, spread: 0.15 };

/** `n` seeded unit vectors of `dim` values shaped as `shape`; the axis and the classes are the same for every seed. */
export function clipShapedVectors(n: number, dim: number, seed: number, shape: ClipShape = CLIP_B32_SHAPE): Float32Array {
  const gamma = 1 - shape.alpha - shape.beta;
  if (!(gamma >= 0)) throw new Error(`alpha + beta must be at most 1, got ${shape.alpha} + ${shape.beta}`);
  const scale = new Float64Array(dim);
  let total = 0;
  for (let j = 0; j < dim; j++) total += scale[j] = (j + 1) ** -shape.spectrum;
  for (let j = 0; j < dim; j++) scale[j] = Math.sqrt(scale[j]! / total);
  const axis = randomUnitVectors(1, dim, 7);
  // Class directions: Gaussian with the spectrum, normalised.
  const classes = randomUnitVectors(shape.classes, dim, 8);
  for (let c = 0; c < shape.classes; c++) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += (classes[c * dim + j]! * scale[j]!) ** 2;
    const inv = 1 / Math.sqrt(ss);
    for (let j = 0; j < dim; j++) classes[c * dim + j] = classes[c * dim + j]! * scale[j]! * inv;
  }
  const r = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const sb = Math.sqrt(shape.beta);
  const sg = Math.sqrt(gamma);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * shape.classes) * dim;
    const w = Math.sqrt(shape.alpha) * (1 + shape.spread * normal());
    const o = i * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) {
      const v = w * axis[j]! + sb * classes[c + j]! + sg * scale[j]! * normal();
      out[o + j] = v;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss);
    for (let j = 0; j < dim; j++) out[o + j]! *= inv;
  }
  return out;
}

/** The statistics the shape is matched on, over the first `n` rows (pure; O(n²·dim), meant for n ≈ 500). */
export function shapeStatistics(data: Float32Array, dim: number, n: number): { pairMean: number; pairSd: number; nearestMedian: number; toMeanMean: number; toMeanSd: number } {
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j]! += data[i * dim + j]! / n;
  const norm = Math.sqrt(mean.reduce((s, x) => s + x * x, 0));
  let sum = 0;
  let sumSq = 0;
  let pairs = 0;
  const nearest: number[] = [];
  const toMean: number[] = [];
  for (let a = 0; a < n; a++) {
    let best = -Infinity;
    let m = 0;
    for (let j = 0; j < dim; j++) m += (data[a * dim + j]! * mean[j]!) / norm;
    toMean.push(m);
    for (let b = 0; b < n; b++) {
      if (a === b) continue;
      let s = 0;
      for (let j = 0; j < dim; j++) s += data[a * dim + j]! * data[b * dim + j]!;
      if (s > best) best = s;
      if (b > a) {
        sum += s;
        sumSq += s * s;
        pairs++;
      }
    }
    nearest.push(best);
  }
  nearest.sort((x, y) => x - y);
  const pairMean = sum / pairs;
  const tm = toMean.reduce((s, x) => s + x, 0) / n;
  return {
    pairMean,
    pairSd: Math.sqrt(sumSq / pairs - pairMean * pairMean),
    nearestMedian: nearest[Math.floor(n / 2)]!,
    toMeanMean: tm,
    toMeanSd: Math.sqrt(toMean.reduce((s, x) => s + (x - tm) ** 2, 0) / n),
  };
}
