/**
 * Inputs scored by saved detectors: embeddings files read as they are, images embedded by the model
 * the detector records (loaded only when there are images). Shared by detect, calibrate and combine.
 */
import type { ClipModel } from "../clip.js";
import type { Matrix } from "../maths/vectors.js";
import { ClipOodError } from "../errors.js";
import { isEmbeddingsFile, readEmbeddings } from "../io/embeddings.js";
import { checkModel, localFeatureMaker, needsLocalFeatures } from "../ood/build.js";
import { predict, predictBatch, searchesBank, UNKNOWN_DTYPE } from "../ood/detector.js";
import { stackRows } from "../maths/vectors.js";
import type { Detector, DetectorModelInfo } from "../ood/detector.js";
import type { InputProblem } from "../image/inputs.js";
import type { Detection } from "../zeroshot.js";
import type { CommonOptions } from "./commands.js";
import { eachImage, images, openModel, warn } from "./commands.js";
import { progress } from "./progress.js";

export interface Scored {
  input: string;
  detection: Detection;
}

/**
 * Scores images and embeddings files with a detector, in input order per kind. Embeddings files need
 * no model at all; images load the detector's model once.
 */
export async function scoreInputs(
  specs: readonly string[] | ScoreInputs,
  detector: Detector,
  opts: CommonOptions,
  onResult: (r: Scored) => void,
  onFailure: (input: string, reason: string) => void,
  target: { model: ClipModel } | RecordedModel,
  threshold = detector.threshold?.value,
): Promise<{ total: number; failed: number }> {
  const t = threshold === undefined ? {} : { threshold };
  if (!searchesBank(detector)) {
    return eachEmbedding(specs, target, opts, (input, e, local) => onResult({ input, detection: predict(detector, e, { ...t, ...(local ? { local } : {}) }) }), onFailure, needsLocalFeatures(detector));
  }
  // A KNN bank is searched with many queries at once (matrix products over the bank): results come in
  // chunks, still in input order, so a long run streams and holds only one chunk of queries.
  let chunk: { inputs: string[]; rows: Float32Array[]; locals: (Matrix | undefined)[] } = { inputs: [], rows: [], locals: [] };
  let scored: Promise<void> = Promise.resolve();
  const flush = () => {
    const c = chunk;
    chunk = { inputs: [], rows: [], locals: [] };
    if (c.rows.length === 0) return;
    scored = scored.then(async () => {
      const detections = await predictBatch(detector, stackRows(c.rows), { ...t, local: c.locals });
      detections.forEach((detection, i) => onResult({ input: c.inputs[i]!, detection }));
    });
    // Handled here so that a failure waits, unreported, for the await below instead of ending the process.
    scored.catch(() => {});
  };
  const counts = await eachEmbedding(
    specs,
    target,
    opts,
    (input, e, local) => {
      chunk.inputs.push(input);
      chunk.rows.push(e);
      chunk.locals.push(local);
      if (chunk.rows.length >= BANK_QUERY_CHUNK) flush();
    },
    onFailure,
    needsLocalFeatures(detector),
  );
  flush();
  await scored;
  return counts;
}

/** Queries per batched bank search in detect/calibrate: a multiple of the engine's query block. */
const BANK_QUERY_CHUNK = 1024;

/** Inputs to score, expanded: embeddings files as given, and the images the other inputs name. */
export interface ScoreInputs {
  embeddingFiles: string[];
  images: { files: string[]; failed: number; problems: InputProblem[] };
}

/**
 * Splits the inputs into embeddings files and images, expanding the latter; no images where no
 * embeddings file was given either is a usage error (see `images`), raised before any model is loaded.
 */
export async function expandScoreInputs(specs: readonly string[], opts: CommonOptions): Promise<ScoreInputs> {
  const embeddingFiles = specs.filter(isEmbeddingsFile);
  const imageSpecs = specs.filter((s) => !isEmbeddingsFile(s));
  const found = imageSpecs.length === 0 ? { files: [], failed: 0, problems: [] } : await images(imageSpecs, opts, embeddingFiles.length > 0);
  return { embeddingFiles, images: found };
}

/** A detector's recorded model, loaded only when images need embedding; `source` is the detector file. */
export type RecordedModel = { info: DetectorModelInfo; source: string };

/**
 * Unit embeddings of images and embeddings files, made by one model: a loaded one, or the one a
 * detector records (loaded only if there are images: embeddings files need no model). An embeddings
 * file that says it came from another model is refused; unreadable images are reported and skipped.
 */
export async function eachEmbedding(
  specs: readonly string[] | ScoreInputs,
  target: { model: ClipModel } | RecordedModel,
  opts: CommonOptions,
  onEmbedding: (input: string, embedding: Float32Array, local?: Matrix) => void,
  onFailure: (input: string, reason: string) => void = () => {},
  local = false,
): Promise<{ total: number; failed: number }> {
  const id = "model" in target ? target.model.id : target.info.id;
  const dtype = "model" in target ? target.model.model.dtype : target.info.dtype;
  const dtypeOf = "model" in target ? "the model" : target.source;
  if (!("model" in target) && opts.dtype !== undefined && dtype !== UNKNOWN_DTYPE && opts.dtype !== dtype) {
    throw new ClipOodError("MODEL_FOLDER", `--dtype ${opts.dtype} does not match ${target.source}, fitted on ${dtype} embeddings`, {
      hint: `leave out --dtype (the detector's own, ${dtype}, is used), or fit a detector with --dtype ${opts.dtype}: the two give slightly different embeddings, and scores`,
    });
  }
  let total = 0;
  const { embeddingFiles: files, images: found } = "embeddingFiles" in specs ? specs : await expandScoreInputs(specs, opts);
  const unchecked: string[] = [];
  if (local && files.length > 0) {
    throw new ClipOodError("USAGE", `glmcm needs images: ${files[0]} holds global embeddings only, no patch tokens`, { hint: "score the images themselves, or use a global method such as mcm" });
  }
  for (const file of files) {
    const set = await readEmbeddings(file);
    if (set.model === undefined) warn(`${file} does not say which model made it; assuming ${id}`);
    else if (set.model !== id) {
      throw new ClipOodError("MODEL_FOLDER", `embeddings file ${file} was made by model ${set.model}, not ${id}`, {
        hint: "embed the data again with the same model, or use a detector made for that model",
      });
    }
    if (set.dtype === undefined || dtype === UNKNOWN_DTYPE) unchecked.push(file);
    else if (set.dtype !== dtype) {
      throw new ClipOodError("MODEL_FOLDER", `embeddings file ${file} was made with --dtype ${set.dtype}, ${dtypeOf} with ${dtype}`, {
        hint: `embed the data again with --dtype ${dtype}, or use a detector fitted on ${set.dtype} embeddings: the two give slightly different embeddings, and scores`,
      });
    }
    for (let i = 0; i < set.matrix.rows; i++) onEmbedding(set.inputs[i]!, set.matrix.data.subarray(i * set.matrix.cols, (i + 1) * set.matrix.cols));
    total += set.matrix.rows;
  }
  if (unchecked.length > 0) {
    const why = dtype === UNKNOWN_DTYPE ? `${dtypeOf} does not record its dtype` : `${unchecked.join(", ")} ${unchecked.length === 1 ? "does" : "do"} not record ${unchecked.length === 1 ? "its" : "their"} dtype`;
    warn(`cannot check that ${unchecked.join(", ")} and ${dtypeOf} share a dtype (fp32, q8, …): ${why}; a threshold set on one dtype is slightly off on another`);
  }
  const { files: images_, failed: skipped, problems } = found;
  for (const p of problems) onFailure(p.input, p.reason);
  if (images_.length === 0) return { total: total + skipped, failed: skipped };
  const bars = progress(!opts.quiet);
  const loaded = "model" in target ? undefined : await openModel({ ...opts, exifRotate: target.info.exifRotate }, bars, { ...target.info, source: target.source });
  try {
    const model = "model" in target ? target.model : loaded!;
    if ("info" in target) checkModel({ model: target.info }, model);
    const toLocal = local ? await localFeatureMaker(model) : undefined;
    const failed = await eachImage(
      model,
      images_,
      bars,
      (r) => onEmbedding(r.input, r.embedding, toLocal && r.patches ? toLocal(r.patches) : undefined),
      onFailure,
      { ...opts, exifRotate: model.exifRotate },
      local,
    );
    return { total: total + images_.length + skipped, failed: failed + skipped };
  } finally {
    await loaded?.close();
  }
}
