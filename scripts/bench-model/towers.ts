/** Each tower's graph for any family, the one entry the folder writer and the tests need. */
import { clipTextTower, clipVisionTower } from "./clip-towers.js";
import { mobileclipTextTower, mobileclipVisionTower } from "./mobileclip-towers.js";
import { siglipTextTower, siglipVisionTower } from "./siglip-towers.js";
import type { ClipSpec } from "./spec.js";
import type { Variant } from "./weights.js";

type TowerBuilder = (spec: ClipSpec, seed: number, variant: Variant) => Uint8Array;

const BUILDERS: Readonly<Record<ClipSpec["family"], { vision: TowerBuilder; text: TowerBuilder }>> = {
  clip: { vision: clipVisionTower, text: clipTextTower },
  siglip: { vision: siglipVisionTower, text: siglipTextTower },
  mobileclip: { vision: mobileclipVisionTower, text: mobileclipTextTower },
};

export function visionGraph(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  return BUILDERS[spec.family].vision(spec, seed, variant);
}

export function textGraph(spec: ClipSpec, seed: number, variant: Variant): Uint8Array {
  return BUILDERS[spec.family].text(spec, seed, variant);
}
