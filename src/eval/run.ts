/**
 * An evaluation run: embed the ID and OOD sets (through the embedding store, so a rerun with other
 * methods or thresholds embeds nothing again), then evaluate every detector on them.
 */
import type { ClipModel } from "../clip.js";
import { ClipOodError } from "../errors.js";
import type { Dataset } from "./datasets.js";
import type { FprConvention } from "../maths/metrics.js";
import { matrix, row, stackRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { checkModel, fitOnEmbeddings, localFeatureMaker, needsLocalFeatures } from "../ood/build.js";
import type { FitData } from "../ood/build.js";
import type { Detector } from "../ood/detector.js";
import { embedWithStore } from "../store/cached.js";
import type { EmbeddingStore } from "../store/store.js";
import { evaluateEmbedded } from "./evaluate.js";
import type { EmbeddedSet, NamedDetector } from "./evaluate.js";
import { aggregateSeeds, byMethodThenShots, drawShots, onceRows } from "./shots.js";
import type { EvalResult, ShotsRow } from "./types.js";

export interface EmbedSetOptions {
  /** Needed when the set holds images; embeddings files need none. */
  model?: ClipModel;
  /** The model the embeddings must come from (embeddings files are checked against it). */
  modelId: string;
  /** Its dtype, where known: embeddings files that record another are refused (fp32 and q8 embeddings differ). */
  dtype?: string;
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
    if (o.dtype !== undefined && e.dtype !== undefined && e.dtype !== o.dtype) {
      throw new ClipOodError("MODEL_FOLDER", `embeddings file ${ds.spec} was made with --dtype ${e.dtype}, the model here runs ${o.dtype}`, {
        hint: `pass --dtype ${e.dtype}, or embed the set again with --dtype ${o.dtype}: the two give slightly different embeddings, and scores`,
      });
    }
    if (o.patches) throw new ClipOodError("USAGE", `glmcm needs images: ${ds.spec} holds global embeddings only, no patch tokens`, { hint: "evaluate glmcm on image sets" });
    return { name, inputs: e.inputs, labels: e.labels, embeddings: e.matrix };
  }
  if (!o.model) throw new ClipOodError("USAGE", `${ds.spec} holds images, and no model was loaded to embed them`, { hint: "pass --model, or give embeddings files" });
  const files = ds.images.map((i) => i.input);
  const labelOf = new Map(ds.images.map((i) => [i.input, i.label]));
  const inputs: string[] = [];
  // One matrix sized for every file, filled in place: a full training set's bank (1.28 M × 512 is
  // 2.4 GiB) is never held as a million small arrays and then a stacked copy of them.
  let out: Float32Array | undefined;
  let dim = 0;
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
    if (!out) {
      dim = r.embedding.length;
      out = new Float32Array(files.length * dim);
    } else if (r.embedding.length !== dim) {
      throw new ClipOodError("MODEL_FOLDER", `${r.input} gave a ${r.embedding.length}-value embedding, the set's others ${dim}`, { hint: "embed the set with one model" });
    }
    out.set(r.embedding, inputs.length * dim);
    inputs.push(r.input);
    if (toLocal && r.patches) local.push(toLocal(r.patches));
  }
  return {
    name,
    inputs,
    labels: inputs.map((i) => labelOf.get(i)),
    embedded: { computed: inputs.length - fromStore, fromStore },
    // Failed inputs leave the tail unused: a view, not a copy.
    embeddings: out ? matrix(inputs.length, dim, out.subarray(0, inputs.length * dim)) : matrix(0, await o.model.embeddingDim()),
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

/** The ID and OOD sets embedded once, ready for any number of `evaluateEmbedded` calls. */
export interface EmbeddedEvalSets {
  modelId: string;
  id: EmbeddedSet;
  oods: EmbeddedSet[];
  /** Rows computed by the model now, and rows read from the store, over every set. */
  embedding: { computed: number; fromStore: number };
}

/**
 * Embeds each set once, with patch tokens when one of `detectors` needs them, after checking that every
 * detector belongs to the model. `model` may be omitted when every set is an embeddings file.
 */
export async function embedEvalSets(model: ClipModel | undefined, o: EvaluateOptions): Promise<EmbeddedEvalSets> {
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
      ...(model ? { model, dtype: model.model.dtype } : {}),
      ...(o.store ? { store: o.store } : {}),
      ...(o.onProgress ? { onProgress: (done: number, total: number) => o.onProgress!(set.name, done, total) } : {}),
      ...(o.onFailure ? { onFailure: o.onFailure } : {}),
      ...(o.onWarning ? { onWarning: o.onWarning } : {}),
    });
  const id = await embed(o.id);
  const oods: EmbeddedSet[] = [];
  for (const set of o.ood) oods.push(await embed(set));
  const sum = (key: "computed" | "fromStore") => [id, ...oods].reduce((a, s) => a + (s.embedded?.[key] ?? 0), 0);
  return { modelId, id, oods, embedding: { computed: sum("computed"), fromStore: sum("fromStore") } };
}

/**
 * Embeds each set once (with patch tokens when a detector needs them), then evaluates every detector.
 * `model` may be omitted when every set is an embeddings file.
 */
export async function evaluate(model: ClipModel | undefined, o: EvaluateOptions): Promise<EvalResult> {
  const sets = await embedEvalSets(model, o);
  const result = await evaluateEmbedded(o.detectors, sets.id, sets.oods, { model: sets.modelId, idSet: o.id.name, ...(o.convention ? { convention: o.convention } : {}) });
  return { ...result, embedding: sets.embedding };
}

export interface ShotsOptions extends EvaluateOptions {
  /** `detectors` are evaluated once; these few-shot detectors, as prepared (`prepareDetector`), are fitted on every draw. */
  /** Each with the outlier embeddings it trains on besides every draw (linear-probe --outlier-images). */
  fewShot: readonly (NamedDetector & { outliers?: Matrix })[];
  /** The fitting data, embedded once; its labels index the few-shot detectors' classes. */
  fitData: FitData;
  /** Examples per class, ascending. */
  shots: readonly number[];
  /** Draws per shot count, with seeds 0…seeds−1. */
  seeds: number;
  /** After each draw has been fitted and evaluated. */
  onDraw?: (done: number, total: number) => void;
}

/**
 * Few-shot curves: the sets are embedded once, `detectors` evaluated once, and each few-shot detector
 * fitted and evaluated on every draw of k examples per class (`drawShots`) for every k and seed. The
 * result's `shots` holds the rows (means and standard deviations over the seeds); its `methods` hold
 * the once-evaluated detectors and each few-shot detector at the largest k, seed 0, for the report's
 * per-method charts.
 */
export async function evaluateShots(model: ClipModel | undefined, o: ShotsOptions): Promise<EvalResult> {
  const first = o.fewShot[0];
  if (first === undefined || o.shots.length === 0) throw new ClipOodError("USAGE", "--shots needs a method fitted on --fit data", { hint: "e.g. --methods mcm,linear-probe --fit ./train --shots 1,2,4,8,16" });
  if (!Number.isInteger(o.seeds) || o.seeds < 1) throw new ClipOodError("USAGE", `--seeds must be a whole number ≥ 1, got ${o.seeds}`, { hint: "e.g. --seeds 3" });
  const classNames = first.detector.classes.map((c) => c.label);
  const { embeddings, labels } = o.fitData;
  // The largest draw refuses a class that is too small before anything is embedded.
  drawShots(labels, Math.max(...o.shots), 0, classNames);
  const sets = await embedEvalSets(model, { ...o, detectors: [...o.detectors, ...o.fewShot] });
  const context = { model: sets.modelId, idSet: o.id.name, ...(o.convention ? { convention: o.convention } : {}) };
  const once = o.detectors.length > 0 ? await evaluateEmbedded(o.detectors, sets.id, sets.oods, context) : undefined;
  const rows: ShotsRow[] = [];
  let largest: EvalResult | undefined;
  let done = 0;
  for (const k of o.shots) {
    const results: EvalResult[] = [];
    for (let seed = 0; seed < o.seeds; seed++) {
      const picked = drawShots(labels, k, seed, classNames);
      const draw = { embeddings: stackRows(Array.from(picked, (i) => row(embeddings, i)), embeddings.cols), labels: Int32Array.from(picked, (i) => labels[i]!) };
      const fitted: NamedDetector[] = [];
      for (const d of o.fewShot) fitted.push({ name: d.name, detector: await fitDraw(d, draw, k, seed) });
      results.push(await evaluateEmbedded(fitted, sets.id, sets.oods, context));
      o.onDraw?.(++done, o.shots.length * o.seeds);
    }
    rows.push(...aggregateSeeds(k, results));
    largest = results[0];
  }
  const k = o.shots[o.shots.length - 1]!;
  const shown = largest!.methods.map((m) => ({ ...m, method: `${m.method} (${k} shots, seed 0)` }));
  return {
    ...(once ?? largest!),
    methods: [...(once?.methods ?? []), ...shown],
    shots: { shots: [...o.shots], seeds: o.seeds, rows: [...(once ? onceRows(once) : []), ...byMethodThenShots(rows)] },
    embedding: sets.embedding,
  };
}

/** One draw's fit; a failure says which method, shot count and seed it came from. */
async function fitDraw(d: NamedDetector & { outliers?: Matrix }, draw: FitData, shots: number, seed: number): Promise<Detector> {
  try {
    return await fitOnEmbeddings(d.detector, d.outliers ? { ...draw, outliers: d.outliers } : draw);
  } catch (e) {
    if (!(e instanceof ClipOodError)) throw e;
    throw new ClipOodError(e.code, `${d.name} at ${shots} shot${shots === 1 ? "" : "s"} (seed ${seed}): ${e.message}`, { ...(e.hint === undefined ? {} : { hint: e.hint }), cause: e });
  }
}
