/**
 * `discover`: cluster images that the known classes do not explain and name the clusters from a
 * vocabulary (docs/DISCOVERY.md). Embeds through the store, keeps the detector's rejections with
 * `onlyOod`, runs semi-supervised k-means with the known classes anchored, estimates k, names each new
 * cluster, and returns a `DiscoveryResult`.
 */
import type { ClipModel } from "../clip.js";
import { ClipOodError } from "../errors.js";
import type { DiscoverOptions, DiscoveryResult, EmbeddedInputs } from "./types.js";

/** New clusters "auto" tries at most. */
export const DEFAULT_K_MAX = 20;
/** How "auto" estimates k; see docs/DISCOVERY.md for why. */
export const DEFAULT_K_METHOD = "gcd";
/** Seeded k-means restarts per k. */
export const DEFAULT_RESTARTS = 4;
/** Candidate names per cluster. */
export const DEFAULT_TOP_NAMES = 3;

export async function discover(model: ClipModel, inputs: readonly string[] | EmbeddedInputs, options: DiscoverOptions): Promise<DiscoveryResult> {
  void model;
  void inputs;
  void options;
  throw new ClipOodError("USAGE", "discover is not implemented yet");
}
