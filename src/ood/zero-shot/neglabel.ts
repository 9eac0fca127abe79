/**
 * NegLabel (Jiang et al., ICLR 2024) and CSP (Chen et al., NeurIPS 2024): negative-label mining and the
 * grouped negative-label score (METHODS.md §4, §5). Pure functions over embeddings; the lexicon comes
 * from wordnet.ts and the embeddings from ClipModel.
 */
import { ClipOodError } from "../../errors.js";
import { matmulTransposed, matrix, normalizeRows, row, type Matrix } from "../../maths/vectors.js";
import type { LexiconPos } from "./wordnet.js";
import { mulberry32 } from "../../maths/random.js";

/** Prompt for noun candidates: template 85 of NegLabel's 91-entry list. */
export const NEGLABEL_NOUN_TEMPLATE = "the nice {}";
export const NEGLABEL_ADJ_TEMPLATE = "This is a {} photo";
/** ID classes use the noun prompt, with no template ensemble. */
export const NEGLABEL_ID_TEMPLATE = "the nice {}";

export const NEGLABEL_DEFAULT_FRACTION = 0.15;
export const NEGLABEL_DEFAULT_QUANTILE = 0.95;
export const NEGLABEL_DEFAULT_GROUPS = 100;
/** NegLabel's logits are 100·cosine (t = 1 over 100×cos in its config, i.e. τ = 0.01). */
export const NEGLABEL_LOGIT_SCALE = 100;

/** CSP's superclass suffixes: an adjective joined with one of them is a "conjugated" label. */
export const CSP_SUPERCLASSES: readonly string[] = Object.freeze([
  "environment", "space", "object", "scene", "place", "item", "area",
  "view", "thing", "pattern", "structure", "landscape", "vista", "creature",
]);
/** CSP embeds ID classes and noun candidates with these 8 templates, averaged. */
export const CSP_NOUN_TEMPLATES: readonly string[] = Object.freeze([
  "a close-up photo of the nice {}.",
  "a photo with the nice {}.",
  "a good photo with the nice {}.",
  "a photo of the nice {}.",
  "{}",
  "the {}",
  "the good {}",
  "the nice {}",
]);
/** CSP embeds each conjugated adjective label with these 4 wrappers, averaged. */
export const CSP_ADJ_WRAPPERS: readonly string[] = Object.freeze([
  "{}",
  "a nice photo of {}",
  "a good photo of {}",
  "a close-up photo of {}",
]);
export const CSP_EXCLUDED_LEX_FILES: readonly string[] = Object.freeze(["noun.person", "noun.quantity", "noun.group", "adj.pert"]);
/** CSP drops candidates whose largest cosine to any ID label exceeds this. */
export const CSP_MAX_COSINE = 0.95;

/**
 * The q-quantile of ascending values with linear interpolation between order statistics, as
 * torch.quantile and numpy.quantile (method "linear") compute it: position q·(n−1).
 */
export function quantileLinear(sortedAscending: ArrayLike<number>, q: number): number {
  const n = sortedAscending.length;
  if (n === 0) throw new RangeError("the quantile of an empty set is undefined");
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must lie in [0, 1], got ${q}`);
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const lower = sortedAscending[lo]!;
  return lower + (pos - lo) * (sortedAscending[hi]! - lower);
}

export interface MiningOptions {
  /** Share of each part of speech kept, floored per type. Default 0.15. */
  fraction?: number;
  /** Which quantile of a candidate's cosines to the ID labels ranks it. Default 0.95. */
  quantile?: number;
  /** CSP: never select a candidate whose max cosine to an ID label exceeds this. Default: no limit. */
  maxCosine?: number;
}

/** Rows scored per matrix product, so 70,000 candidates × 1,000 classes never sit in memory at once. */
const MINING_CHUNK = 512;

/**
 * NegMining: rank every candidate by the `quantile` of its cosines to the K ID labels (low = far from
 * all of them) and keep the lowest `fraction` of the nouns and, separately, of the adjectives.
 *
 * Returns candidate indices in mined order, as the reference concatenates them: the kept nouns by
 * ascending score, then the kept adjectives by ascending score. So the tail is the most ID-like
 * adjectives, which is what negLabelGroups drops. Equal scores keep candidate order.
 *
 * With maxCosine (CSP), the reference pushes offending candidates to the end of the ranking without
 * shrinking the quota: the quota stays floor(fraction × all candidates of the type). The same holds
 * here, and they are never selected, even where the quota would reach them.
 */
export function mineNegativeLabels(
  idFeatures: Matrix,
  candidates: readonly { pos: LexiconPos }[],
  candidateFeatures: Matrix,
  opts: MiningOptions = {},
): number[] {
  const fraction = opts.fraction ?? NEGLABEL_DEFAULT_FRACTION;
  const quantile = opts.quantile ?? NEGLABEL_DEFAULT_QUANTILE;
  checkUnit("fraction", fraction);
  checkUnit("quantile", quantile);
  if (idFeatures.rows === 0) throw new RangeError("negative-label mining needs at least one ID label");
  if (candidateFeatures.rows !== candidates.length) {
    throw new RangeError(`${candidates.length} candidates but ${candidateFeatures.rows} candidate embeddings`);
  }
  if (candidateFeatures.cols !== idFeatures.cols) {
    throw new RangeError(`candidate embeddings have ${candidateFeatures.cols} dimensions, ID embeddings ${idFeatures.cols}`);
  }

  const score = new Float64Array(candidates.length);
  const eligible = new Uint8Array(candidates.length);
  const sorted = new Float64Array(idFeatures.rows);
  const d = candidateFeatures.cols;
  for (let start = 0; start < candidates.length; start += MINING_CHUNK) {
    const n = Math.min(MINING_CHUNK, candidates.length - start);
    const chunk = matrix(n, d, candidateFeatures.data.subarray(start * d, (start + n) * d));
    const cos = matmulTransposed(chunk, idFeatures);
    for (let i = 0; i < n; i++) {
      sorted.set(row(cos, i));
      sorted.sort();
      score[start + i] = quantileLinear(sorted, quantile);
      const max = sorted[sorted.length - 1]!;
      eligible[start + i] = opts.maxCosine === undefined || !(max > opts.maxCosine) ? 1 : 0;
    }
  }

  const pick = (pos: LexiconPos): number[] => {
    const ofType: number[] = [];
    candidates.forEach((c, i) => {
      if (c.pos === pos) ofType.push(i);
    });
    // Same double arithmetic as the reference's int(len(ind) * neg_topk).
    const quota = Math.floor(ofType.length * fraction);
    return ofType
      .filter((i) => eligible[i] === 1)
      .sort((a, b) => score[a]! - score[b]! || a - b)
      .slice(0, quota);
  };
  return [...pick("noun"), ...pick("adj")];
}

/**
 * log Σ_{j∈idx} e^{scale·x_j}; −∞ for an empty set. Subtracting the max keeps 100·cos within exp's range.
 */
function logSumExp(x: ArrayLike<number>, scale: number, idx?: readonly number[]): number {
  const n = idx ? idx.length : x.length;
  const at = (k: number): number => {
    const j = idx ? idx[k]! : k;
    if (!(j >= 0 && j < x.length)) throw new RangeError(`negative-label index ${j} is outside 0..${x.length - 1}`);
    return scale * x[j]!;
  };
  let max = -Infinity;
  for (let k = 0; k < n; k++) max = Math.max(max, at(k));
  if (max === -Infinity) return max;
  let sum = 0;
  for (let k = 0; k < n; k++) sum += Math.exp(at(k) - max);
  return max + Math.log(sum);
}

/**
 * NegLabel's score (larger = more in-distribution): the softmax mass on the ID labels over ID ∪ negatives,
 *   S = Σ_ID e^{z} / (Σ_ID e^{z} + Σ_neg e^{z̃}),  z = scale·cos;
 * with groups, the mean of that over the groups, each group's sum running over its own negatives only.
 * `negCosines` are the image's cosines to the mined negatives in mined order; `groups` index into them.
 * Computed as 1/(1 + e^{L_neg − L_ID}) from log-sum-exps, so no exponential overflows.
 */
export function negLabelScore(
  idCosines: ArrayLike<number>,
  negCosines: ArrayLike<number>,
  groups: readonly (readonly number[])[] | undefined,
  scale = NEGLABEL_LOGIT_SCALE,
): number {
  if (idCosines.length === 0) throw new RangeError("the NegLabel score needs at least one ID label");
  if (groups !== undefined && groups.length === 0) throw new RangeError("the NegLabel score needs at least one group");
  const lId = logSumExp(idCosines, scale);
  const massOnId = (lNeg: number): number => 1 / (1 + Math.exp(lNeg - lId));
  if (groups === undefined) return massOnId(logSumExp(negCosines, scale));
  let sum = 0;
  for (const g of groups) sum += massOnId(logSumExp(negCosines, scale, g));
  return sum / groups.length;
}

/** A Fisher–Yates shuffle of 0..n−1 driven by mulberry32(seed). */
export function seededPermutation(n: number, seed: number): number[] {
  const rand = mulberry32(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/**
 * NegLabel's grouping of `count` mined negatives: drop the last count mod ngroup (the most ID-like
 * adjectives), shuffle the rest with one fixed permutation and cut it into ngroup equal groups of
 * indices into the mined list. The reference uses torch.randperm with seed 0; METHODS.md §4 notes that
 * any fixed permutation is equivalent, and torch's generator cannot be reproduced here anyway.
 *
 * With fewer negatives than groups the reference would drop every negative; here each negative becomes
 * its own group instead (min(ngroup, count) groups of one), so small lexicons still score.
 */
export function negLabelGroups(count: number, ngroup = NEGLABEL_DEFAULT_GROUPS, seed = 0): number[][] {
  if (!Number.isInteger(ngroup) || ngroup < 1) {
    throw new ClipOodError("USAGE", `the number of negative-label groups must be a positive integer, got ${ngroup}`, {
      hint: `NegLabel uses ${NEGLABEL_DEFAULT_GROUPS}; 1 turns grouping off`,
    });
  }
  if (!Number.isInteger(count) || count < 1) {
    throw new ClipOodError("INPUT", `NegLabel needs at least one negative label, but mining kept ${count}`, {
      hint: "mining keeps floor(fraction × count) of the nouns and of the adjectives: use a larger lexicon or a larger fraction",
    });
  }
  const groups = Math.min(ngroup, count);
  const size = Math.floor(count / groups);
  const perm = seededPermutation(groups * size, seed);
  return Array.from({ length: groups }, (_, g) => perm.slice(g * size, (g + 1) * size));
}

/**
 * CSP's conjugated labels: each adjective followed by one superclass word ("rutted creature"), the
 * choice drawn per adjective from mulberry32(seed). CSP draws with Python's random.choice after
 * random.seed(0); that Mersenne-Twister sequence could be replayed, but it is consumed in the order of
 * the reference's os.listdir-ordered txtfiles, which cannot be, so the exact pairs are not reproducible.
 */
export function conjugatedLabels(adjectives: readonly string[], seed = 0): string[] {
  const rand = mulberry32(seed);
  return adjectives.map((adj) => `${adj} ${CSP_SUPERCLASSES[Math.floor(rand() * CSP_SUPERCLASSES.length)]!}`);
}

/**
 * CSP's template average: the mean of the RAW embeddings, then L2-normalised (METHODS.md §1.3 ⚠), so
 * prompts whose embeddings have larger norms weigh more. ClipModel.embedTexts returns unit rows, and
 * on those this equals meanOfNormalized; reproducing CSP exactly would need the text encoder's
 * unnormalised output, which ClipModel does not expose. Callers holding raw embeddings get CSP's mean.
 */
export function meanOfRaw(m: Matrix): Float32Array {
  if (m.rows === 0) throw new RangeError("cannot average an empty set of embeddings");
  const acc = new Float64Array(m.cols);
  for (let i = 0; i < m.rows; i++) {
    const r = row(m, i);
    for (let j = 0; j < acc.length; j++) acc[j]! += r[j]!;
  }
  return normalizeRows(matrix(1, m.cols, Float32Array.from(acc, (x) => x / m.rows))).data;
}

function checkUnit(name: string, value: number): void {
  if (!(value >= 0 && value <= 1)) {
    throw new ClipOodError("USAGE", `the negative-label ${name} must lie in [0, 1], got ${value}`, {
      hint: `NegLabel uses fraction ${NEGLABEL_DEFAULT_FRACTION} and quantile ${NEGLABEL_DEFAULT_QUANTILE}`,
    });
  }
}
