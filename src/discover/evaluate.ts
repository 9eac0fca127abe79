/**
 * A discovery scored against ground truth (`discover --labels`): GCD's clustering accuracy on all, old
 * and new classes under one Hungarian map, and naming accuracy of the new clusters.
 */
import { ClipOodError } from "../errors.js";
import type { DiscoveryResult, DiscoveryScores } from "./types.js";

export interface ScoreDiscoveryOptions {
  /** Names that count as a class's name (besides the label itself), by class label. */
  synonyms?: ReadonlyMap<string, readonly string[]>;
}

/** Scores `result` against `truth` (input → true class label); inputs without a label are left out. */
export function scoreDiscovery(result: DiscoveryResult, truth: ReadonlyMap<string, string>, options: ScoreDiscoveryOptions = {}): DiscoveryScores {
  void result;
  void truth;
  void options;
  throw new ClipOodError("USAGE", "scoreDiscovery is not implemented yet");
}
