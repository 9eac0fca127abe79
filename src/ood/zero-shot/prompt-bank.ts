/**
 * Text features of many candidates at once — NegLabel's WordNet candidates, discovery's naming
 * vocabulary — each the normalise → mean → renormalise of its prompts, cached on disk per model and
 * exact prompt list: they depend on nothing else, and tens of thousands of prompts take minutes.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { ClipModel } from "../../clip.js";
import { writeCacheFile } from "../../io/atomic-file.js";
import { matrix, meanOfNormalized, row, stackRows } from "../../maths/vectors.js";
import type { Matrix } from "../../maths/vectors.js";
import { textModelKey } from "../../text/cache.js";

export interface PromptBankOptions {
  /** The cache root (the model's cache folder). */
  cacheDir: string;
  /** The cache's sub-folder, one per use: "negative-labels", "vocabulary". */
  folder: string;
  onProgress?: (done: number, total: number) => void;
}

/** One row per candidate: its prompts' unit embeddings averaged and renormalised (a single prompt's as it is). */
export async function promptBankFeatures(model: ClipModel, prompts: readonly (readonly string[])[], o: PromptBankOptions): Promise<Matrix> {
  const key = createHash("sha256")
    .update(JSON.stringify([await textModelKey(model.id, model.model.dtype, model.model.textModel), prompts]))
    .digest("hex");
  const file = path.join(o.cacheDir, o.folder, `candidates-${key.slice(0, 24)}.f32`);
  const dim = await model.embeddingDim();
  const cached = await readFile(file).catch(() => undefined);
  if (cached && cached.length === prompts.length * dim * 4) {
    const data = new Float32Array(cached.length / 4);
    new Uint8Array(data.buffer).set(cached);
    return matrix(prompts.length, dim, data);
  }
  const flat = prompts.flat();
  const all = await model.embedTexts(flat, { cache: false, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  const rows: Float32Array[] = [];
  let offset = 0;
  for (const p of prompts) {
    rows.push(p.length === 1 ? row(all, offset) : meanOfNormalized(matrix(p.length, all.cols, all.data.slice(offset * all.cols, (offset + p.length) * all.cols))));
    offset += p.length;
  }
  const m = stackRows(rows, dim);
  await writeCacheFile(file, new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength), (w) => model.warn(w));
  return m;
}
