/**
 * The world's concepts as directions of the embedding space, kept orthonormal so that concepts do not
 * leak into each other's similarities.
 */
import { COLOURS, TEXT_ONLY_CONCEPTS, TEXTURES } from "../world.js";

export const COLOUR_NAMES = Object.keys(COLOURS);
/** Concepts with a direction of their own; each SYNONYMS word gets one near its target's. */
export const CONCEPTS = [...COLOUR_NAMES, ...TEXTURES, ...TEXT_ONLY_CONCEPTS];

/**
 * What every graph's weights are made from, so that the towers of one model share its directions and
 * draw from the one seeded stream in a fixed order.
 */
export interface WeightSource {
  /** Each concept's and synonym's direction in the embedding space. */
  directions: Map<string, number[]>;
  /** The shared "this is a caption/photo" direction. */
  generic: number[];
  /** A seeded random unit vector of the given length. */
  randomVector: (n: number) => number[];
  /** The variant's rounding of each weight (none for fp32). */
  q: (v: number) => number;
}

export function unit(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/**
 * `count` random orthonormal rows, also orthogonal to the unit rows of `against`. Draws exactly
 * `count` random vectors whatever `against` holds, so later draws from the stream do not move.
 */
export function orthonormalRows(count: number, dim: number, randomVector: (n: number) => number[], against: readonly number[][] = []): number[][] {
  if (count + against.length > dim) throw new Error(`cannot make ${count} orthonormal rows in ${dim} dimensions`);
  const rows: number[][] = [];
  while (rows.length < count) rows.push(unit(orthogonalTo(randomVector(dim), [...against, ...rows])));
  return rows;
}

/** v minus its components along the orthonormal `rows` (one Gram–Schmidt step). */
export function orthogonalTo(v: readonly number[], rows: readonly (readonly number[])[]): number[] {
  let out = [...v];
  for (const r of rows) {
    const d = out.reduce((s, x, i) => s + x * r[i]!, 0);
    out = out.map((x, i) => x - d * r[i]!);
  }
  return out;
}
