/**
 * GL-MCM's local features from a stock vision export (STACK.md §1.6): u_p = post_layernorm(h_p) ·
 * visual_projection for every patch token h_p of last_hidden_state, the head that the export applies to
 * the class token to make image_embeds. Exports that carry a `local_embeds` output [B,P,D] need none of
 * this: their rows, L2-normalised, are the local features. Pure: ./vision-head-graph.ts reads the head.
 */
import { matrix, normalizeRows, row } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";

/** The name of the optional exported output that holds the authors' local features directly. */
export const LOCAL_EMBEDS_OUTPUT = "local_embeds";

/** The vision head behind image_embeds: image_embeds = LayerNorm_{γ,β,ε}(class token) · projection. */
export interface VisionHead {
  /** LayerNorm scale, `width` values. */
  gamma: Float32Array;
  /** LayerNorm bias, `width` values. */
  beta: Float32Array;
  epsilon: number;
  /** width × dim, row-major: the projection is applied as x · projection. */
  projection: Float32Array;
  /** Hidden width W of last_hidden_state. */
  width: number;
  /** Embedding dimension D of image_embeds. */
  dim: number;
}

/**
 * Local features of one image: `lastHiddenState` holds its `tokens` × W values (class token first); the
 * result has one unit row per patch token (tokens − 1 rows, D columns).
 */
export function localFeatures(lastHiddenState: Float32Array, tokens: number, head: VisionHead): Matrix {
  if (!Number.isInteger(tokens) || tokens < 2) throw new RangeError(`need the class token and at least one patch token, got ${tokens} tokens`);
  if (lastHiddenState.length !== tokens * head.width) {
    throw new RangeError(`last_hidden_state has ${lastHiddenState.length} values, expected ${tokens} tokens × width ${head.width}`);
  }
  const out = matrix(tokens - 1, head.dim);
  for (let p = 1; p < tokens; p++) {
    applyHead(lastHiddenState.subarray(p * head.width, (p + 1) * head.width), head, row(out, p - 1));
  }
  return normalizeRows(out);
}

/** One image's per-token vision output; ClipModel's PatchTokens has this shape. */
export interface PatchTokensLike {
  /** local_embeds: `tokens` patch rows of D values, already projected; last_hidden_state: class token + patches, W values each. */
  kind: "local_embeds" | "last_hidden_state";
  tokens: number;
  width: number;
  data: Float32Array;
}

/**
 * Unit local features (P × D) from whichever per-token output the export has: local_embeds are used as
 * they are; last_hidden_state goes through the head read with readVisionHead.
 */
export function patchFeatures(patches: PatchTokensLike, head: VisionHead | undefined): Matrix {
  if (patches.kind === "local_embeds") return normalizeRows(matrix(patches.tokens, patches.width, patches.data));
  if (!head) throw new Error("local features from last_hidden_state need the vision head (readVisionHead)");
  if (patches.width !== head.width) throw new RangeError(`last_hidden_state is ${patches.width} wide but the head expects ${head.width}`);
  return localFeatures(patches.data, patches.tokens, head);
}

/**
 * image_embeds recomputed from the class token (the first W values), not normalised, like the graph's
 * output: comparing the two checks that the head was read correctly.
 */
export function classTokenEmbedding(lastHiddenState: Float32Array, head: VisionHead): Float32Array {
  if (lastHiddenState.length < head.width) {
    throw new RangeError(`last_hidden_state has ${lastHiddenState.length} values, fewer than the width ${head.width}`);
  }
  const out = new Float32Array(head.dim);
  applyHead(lastHiddenState.subarray(0, head.width), head, out);
  return out;
}

/**
 * The smallest cosine, over a batch, between a graph's image_embeds (batch × D) and the embeddings the
 * head recomputes from the class tokens of its last_hidden_state (batch × tokens × W).
 */
export function headAgreement(lastHiddenState: Float32Array, imageEmbeds: Float32Array, batch: number, head: VisionHead): number {
  if (imageEmbeds.length !== batch * head.dim || lastHiddenState.length % (batch * head.width) !== 0) {
    throw new RangeError(`a batch of ${batch} does not fit image_embeds (${imageEmbeds.length} values) and last_hidden_state (${lastHiddenState.length}) for width ${head.width}, dim ${head.dim}`);
  }
  const perImage = lastHiddenState.length / batch;
  let worst = Infinity;
  for (let b = 0; b < batch; b++) {
    const mine = classTokenEmbedding(lastHiddenState.subarray(b * perImage, (b + 1) * perImage), head);
    worst = Math.min(worst, cosine(mine, imageEmbeds.subarray(b * head.dim, (b + 1) * head.dim)));
  }
  return worst;
}

/** out = LayerNorm(x) · projection, in float64 (W = 768 sums of products lose digits in float32). */
function applyHead(x: Float32Array, head: VisionHead, out: Float32Array): void {
  const w = head.width;
  const d = head.dim;
  let mean = 0;
  for (let i = 0; i < w; i++) mean += x[i]!;
  mean /= w;
  let variance = 0;
  for (let i = 0; i < w; i++) variance += (x[i]! - mean) ** 2;
  const inv = 1 / Math.sqrt(variance / w + head.epsilon);
  const acc = new Float64Array(d);
  for (let i = 0; i < w; i++) {
    const y = head.gamma[i]! * (x[i]! - mean) * inv + head.beta[i]!;
    // Row i of the W×D projection is contiguous: walking it keeps the inner loop in cache.
    const base = i * d;
    for (let j = 0; j < d; j++) acc[j]! += y * head.projection[base + j]!;
  }
  out.set(acc);
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}
