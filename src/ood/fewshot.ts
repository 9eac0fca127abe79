/**
 * Few-shot / feature-space OOD detectors on CLIP image embeddings (METHODS.md §8): one state type over
 * Mahalanobis, KNN and the one-class SVM, and scoring that dispatches on it. Every score is oriented so
 * that LARGER = MORE IN-DISTRIBUTION.
 *
 * Every detector L2-normalises its inputs, both when fitting and when scoring. CLIP embeddings from this
 * toolkit are already unit vectors, so this is a no-op for them, but it keeps one geometry (cosines) for
 * embeddings that come from elsewhere, and it is what KNN requires (Sun et al. 2022).
 *
 * A fitted state is only plain numbers and typed arrays, so it can be written to a file and read back
 * bit-exactly. Scores depend only on the state, so a reloaded detector scores identically.
 */
import type { Matrix } from "../maths/vectors.js";
import { knnScore, knnScores } from "./knn.js";
import type { KnnState } from "./knn.js";
import { mahalanobisScore, mahalanobisScores } from "./mahalanobis.js";
import type { MahalanobisState } from "./mahalanobis.js";
import { ocsvmScore, ocsvmScores } from "./ocsvm.js";
import type { OcsvmState } from "./ocsvm.js";


export type FewShotState = MahalanobisState | KnnState | OcsvmState;

export function fewShotScore(state: FewShotState, embedding: Float32Array): number {
  switch (state.kind) {
    case "mahalanobis":
      return mahalanobisScore(state, embedding);
    case "knn":
      return knnScore(state, embedding);
    case "ocsvm":
      return ocsvmScore(state, embedding);
  }
}

/** Every row's score; KNN's through the batched neighbour engine, hence async. */
export async function fewShotScores(state: FewShotState, x: Matrix): Promise<Float32Array> {
  switch (state.kind) {
    case "mahalanobis":
      return mahalanobisScores(state, x);
    case "knn":
      return Float32Array.from(await knnScores(state, x));
    case "ocsvm":
      return ocsvmScores(state, x);
  }
}
