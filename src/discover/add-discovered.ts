/**
 * Growing a detector from a discovery: the chosen clusters become classes, named by their best
 * candidate or the user's name, and few-shot methods take the clusters' images as shots.
 */
import type { ClipModel } from "../clip.js";
import { ClipOodError } from "../errors.js";
import type { Detector } from "../ood/detector.js";
import type { AddDiscoveredOptions, AddedDiscovery, DiscoveryResult } from "./types.js";

export async function addDiscoveredClasses(detector: Detector, discovery: DiscoveryResult, options: AddDiscoveredOptions = {}, model?: ClipModel): Promise<AddedDiscovery> {
  void detector;
  void discovery;
  void options;
  void model;
  throw new ClipOodError("USAGE", "addDiscoveredClasses is not implemented yet");
}
