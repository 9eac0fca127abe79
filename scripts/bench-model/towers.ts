/** Each tower's graph for either family, the one entry the folder writer and the tests need. */
import { clipTextTower, clipVisionTower } from "./clip-towers.js";
import { siglipTextTower, siglipVisionTower } from "./siglip-towers.js";
import type { ClipSpec } from "./spec.js";
import type { Variant } from "./weights.js";

export function visionGraph(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  return spec.family === "siglip" ? siglipVisionTower(spec, seed, variant) : clipVisionTower(spec, seed, variant);
}

export function textGraph(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  return spec.family === "siglip" ? siglipTextTower(spec, seed, variant) : clipTextTower(spec, seed, variant);
}
