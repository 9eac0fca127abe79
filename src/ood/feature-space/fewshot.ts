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
import { ClipOodError } from "../../errors.js";
import { concatRows, normalizeRows } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";
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

/**
 * The state with new classes added from their images (one matrix of embeddings per new class), without
 * the fitting data of the old classes, which a detector does not keep: KNN's bank takes the new
 * (unit) rows, exactly as fitting on old and new rows together would give; Mahalanobis takes each new
 * class's mean and keeps the tied covariance it was fitted with (a refit would pool the new classes'
 * scatter into it too). The one-class SVM's boundary cannot be extended without the old rows.
 */
export function addShots(state: FewShotState, classes: readonly Matrix[]): FewShotState {
  const rows = classes.filter((m) => m.rows > 0);
  for (const m of rows) {
    if (m.cols !== state.dim) throw new ClipOodError("INPUT", `the new class's embeddings have ${m.cols} dimensions, the detector's ${state.dim}`, { hint: "embed the images with the detector's model" });
  }
  switch (state.kind) {
    case "knn": {
      if (rows.length === 0) return state;
      const added = normalizeRows(concatRows(...rows));
      const bank = new Float32Array(state.bank.length + added.data.length);
      bank.set(state.bank);
      bank.set(added.data, state.bank.length);
      return { ...state, bank };
    }
    case "mahalanobis": {
      const d = state.dim;
      const means = new Float32Array((state.classes + classes.length) * d);
      means.set(state.means);
      classes.forEach((m, c) => {
        if (m.rows === 0) throw new ClipOodError("INPUT", "a class to add to a mahalanobis detector has no images", { hint: "give each new class at least one image" });
        const unit = normalizeRows(m);
        const acc = new Float64Array(d);
        for (let i = 0; i < unit.rows; i++) for (let j = 0; j < d; j++) acc[j]! += unit.data[i * d + j]!;
        for (let j = 0; j < d; j++) means[(state.classes + c) * d + j] = acc[j]! / unit.rows;
      });
      return { ...state, classes: state.classes + classes.length, means };
    }
    case "ocsvm":
      throw new ClipOodError("USAGE", "cannot add classes with images to an ocsvm detector: its boundary was fitted on in-distribution images it does not keep", {
        hint: "fit it again on the old images and the new classes' images: clip-ood fit --method ocsvm --id <old> --id <new>",
      });
  }
}
