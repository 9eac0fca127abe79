/**
 * GL-MCM (Miyai et al., IJCV 2025; METHODS.md §3): MCM on the global image embedding plus λ times the
 * best MCM over per-patch local features. Pure: the local features come from ./local-features.ts.
 */
import { MCM_DEFAULT_TEMPERATURE, mcmScore } from "../../maths/scores.js";
import { row } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";

/** λ of the authors' ImageNet script (their argparse default is 1.0; METHODS.md §3). */
export const GLMCM_DEFAULT_LAMBDA = 0.5;

export interface GlmcmOptions {
  /** Softmax temperature on raw cosines (default 1, as MCM). */
  temperature?: number;
  /** Weight of the local term (default 0.5). */
  lambda?: number;
}

export interface GlmcmResult {
  /** S = max_k softmax(s^g/T) + λ · local; larger means more in-distribution. */
  score: number;
  /** The class with the largest global cosine. */
  index: number;
  /** L-MCM: max over patches p of max_k softmax_k(s^(p)/T), before λ. */
  local: number;
  /** The patch that gave `local` (the first one on ties). */
  patch: number;
}

/**
 * GL-MCM from the global cosines (K) and the local cosines (P patches × K classes). The softmax runs per
 * patch over the classes, so a patch is scored by how clearly it names one class, not by its raw cosine.
 */
export function glmcmScore(globalCosines: ArrayLike<number>, localCosines: Matrix, opts: GlmcmOptions = {}): GlmcmResult {
  const temperature = opts.temperature ?? MCM_DEFAULT_TEMPERATURE;
  const lambda = opts.lambda ?? GLMCM_DEFAULT_LAMBDA;
  if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new RangeError(`GL-MCM's lambda must be a non-negative number, got ${lambda}`);
  if (localCosines.cols !== globalCosines.length) {
    throw new RangeError(`local cosines have ${localCosines.cols} classes, global cosines ${globalCosines.length}`);
  }
  if (localCosines.rows === 0) throw new RangeError("GL-MCM needs at least one patch");
  const global = mcmScore(globalCosines, temperature);
  let local = -Infinity;
  let patch = -1;
  for (let p = 0; p < localCosines.rows; p++) {
    const s = mcmScore(row(localCosines, p), temperature).score;
    if (s > local) {
      local = s;
      patch = p;
    }
  }
  return { score: global.score + lambda * local, index: global.index, local, patch };
}
