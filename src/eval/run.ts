/**
 * An evaluation run: embed the ID and OOD sets (through the embedding store, so a rerun with other
 * methods or thresholds embeds nothing again), then evaluate every detector on them.
 */
import type { ClipModel } from "../clip.js";
import { ClipOodError } from "../errors.js";
import type { Dataset } from "../io/datasets.js";
import { matrix, stackRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { checkModel, localFeatureMaker, needsLocalFeatures } from "../ood/build.js";
import { embedWithStore } from "../store/cached.js";
import type { EmbeddingStore } from "../store/store.js";
import { evaluateEmbedded } from "./evaluate.js";
import type { EmbeddedSet, NamedDetector } from "./evaluate.js";
import type { EvalResult, FprConvention } from "./types.js";

export interface EmbedSetOptions {
  /** Needed when the set holds images; embeddings files need none. */
  model?: ClipModel;
  /** The model the embeddings must come from (embeddings files are checked against it). */
  modelId: string;
  store?: EmbeddingStore;
  /** Also compute local (patch) features, for glmcm; these bypass the store. */
  patches?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Each input that cannot be embedded; it is left out of the set and the run goes on. */
  onFailure?: (input: string, reason: string) => void;
  /** Problems that do not stop the run, such as a store that can no longer be written (a full disk). */
  onWarning?: (message: string) => void;
}

export async function embedDataset(name: string, ds: Dataset, o: EmbedSetOptions): Promise<EmbeddedSet> {
  for (const p of ds.problems) o.onFailure?.(p.input, p.reason);
  if (ds.embeddings) {
    const e = ds.embeddings;
    if (e.model !== undefined && e.model !== o.modelId) {
      throw new ClipOodError("MODEL_FOLDER", `embeddings file ${ds.spec} was made by model ${e.model}, not ${o.modelId}`, { hint: "embed the set again with the evaluated model" });
    }
    if (o.patches) throw new ClipOodError("USAGE", `glmcm needs images: ${ds.spec} holds global embeddings only, no patch tokens`, { hint: "evaluate glmcm on image sets" });
    return { name, inputs: e.inputs, labels: e.labels, embeddings: e.matrix };
  }
  if (!o.model) throw new ClipOodError("USAGE", `${ds.spec} holds images, and no model was loaded to embed them`, { hint: "pass --model, or give embeddings files" });
  const files = ds.images.map((i) => i.input);
  const labelOf = new Map(ds.images.map((i) => [i.input, i.label]));
  const inputs: string[] = [];
  const rows: Float32Array[] = [];
  const local: Matrix[] = [];
  const toLocal = o.patches ? await localFeatureMaker(o.model) : undefined;
  const results = o.store && !o.patches ? embedWithStore(o.model, o.store, files, { ...(o.onProgress ? { onProgress: o.onProgress } : {}), onStoreError: (m) => o.onWarning?.(m) }) : o.model.embedImages(files, o.onProgress, { patches: o.patches ?? false });
  let fromStore = 0;
  for await (const r of results) {
    if ("cached" in r && r.cached) fromStore++;
    if (!r.embedding) {
      o.onFailure?.(r.input, r.error?.message ?? `${r.input}: cannot be embedded`);
      continue;
    }
    inputs.push(r.input);
    rows.push(r.embedding);
    if (toLocal && r.patches) local.push(toLocal(r.patches));
  }
  return {
    name,
    inputs,
    labels: inputs.map((i) => labelOf.get(i)),
    embedded: { computed: inputs.length - fromStore, fromStore },
    embeddings: rows.length > 0 ? stackRows(rows) : matrix(0, await o.model.embeddingDim()),
    ...(toLocal ? { local } : {}),
  };
}

export interface EvaluateOptions {
  id: { name: string; dataset: Dataset };
  ood: readonly { name: string; dataset: Dataset }[];
  detectors: readonly NamedDetector[];
  convention?: FprConvention;
  store?: EmbeddingStore;
  /** Progress per set while embedding. */
  onProgress?: (set: string, done: number, total: number) => void;
  onFailure?: (input: string, reason: string) => void;
  onWarning?: (message: string) => void;
}

/**
 * Embeds each set once (with patch tokens when a detector needs them), then evaluates every detector.
 * `model` may be omitted when every set is an embeddings file.
 */
export async function evaluate(model: ClipModel | undefined, o: EvaluateOptions): Promise<EvalResult> {
  const modelId = model?.id ?? o.detectors[0]?.detector.model.id;
  if (modelId === undefined) throw new ClipOodError("USAGE", "nothing to evaluate", { hint: "give --methods mcm,energy,… or --detector <file>" });
  for (const d of o.detectors) {
    if (model) checkModel(d.detector, model);
    else if (d.detector.model.id !== modelId) {
      throw new ClipOodError("USAGE", `detector ${d.name} was made for model ${d.detector.model.id}, ${o.detectors[0]!.name} for ${modelId}`, { hint: "evaluate detectors of one model per run" });
    }
  }
  const patches = o.detectors.some((d) => needsLocalFeatures(d.detector));
  const embed = (set: { name: string; dataset: Dataset }) =>
    embedDataset(set.name, set.dataset, {
      modelId,
      patches,
      ...(model ? { model } : {}),
      ...(o.store ? { store: o.store } : {}),
      ...(o.onProgress ? { onProgress: (done: number, total: number) => o.onProgress!(set.name, done, total) } : {}),
      ...(o.onFailure ? { onFailure: o.onFailure } : {}),
      ...(o.onWarning ? { onWarning: o.onWarning } : {}),
    });
  const id = await embed(o.id);
  const oods: EmbeddedSet[] = [];
  for (const set of o.ood) oods.push(await embed(set));
  const result = evaluateEmbedded(o.detectors, id, oods, { model: modelId, idSet: o.id.name, ...(o.convention ? { convention: o.convention } : {}) });
  const sum = (key: "computed" | "fromStore") => [id, ...oods].reduce((a, s) => a + (s.embedded?.[key] ?? 0), 0);
  return { ...result, embedding: { computed: sum("computed"), fromStore: sum("fromStore") } };
}
