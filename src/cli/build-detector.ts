/**
 * A detector from the command line's method options: the data a few-shot method is fitted on (--id,
 * --outlier-images) embedded and labelled, then the detector prepared and fitted. Shared by fit,
 * detect (without --detector) and eval.
 */
import { ClipModel } from "../clip.js";
import { concatRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { ClipOodError } from "../errors.js";
import { classesFromLabels, readDataset } from "../eval/datasets.js";
import type { Dataset } from "../eval/datasets.js";
import { isEmbeddingsFile } from "../io/embeddings.js";
import { DEFAULT_MODEL_ID } from "../model/hub-cache.js";
import { modelIdFor } from "../model/resolve.js";
import { classOfLabel } from "../eval/evaluate.js";
import { embedDataset } from "../eval/run.js";
import { fitOnEmbeddings, prepareDetector, prepareWithoutModel } from "../ood/build.js";
import type { FitData } from "../ood/build.js";
import { isEmbeddingOnly, isFewShot, TEXT_HEAD_METHODS, UNKNOWN_DTYPE } from "../ood/detector.js";
import type { Detector, DetectorMethod, DetectorModelInfo, DetectorParams } from "../ood/detector.js";
import { loadClasses, loadPromptList } from "../text/classes.js";
import type { ClassSpec } from "../text/classes.js";
import { resolveTemplates } from "../text/templates.js";
import { NEGLABEL_ID_TEMPLATE } from "../ood/zero-shot/neglabel.js";
import type { CommonOptions } from "./commands.js";
import { extensionsOf, openCacheStore, reportFailure, say, warn } from "./commands.js";
import { checkMethodOptions } from "./method-options.js";
import type { MethodOptions } from "./method-options.js";
import { plural } from "./output.js";
import { progress } from "./progress.js";

/**
 * The class that unlabelled fitting data is pooled into when no --classes names it: the inspection
 * case, where a folder of "normal" images is all there is and anything unlike them is the anomaly.
 */
export const POOLED_CLASS = "normal";

/**
 * Embeds the fitting data (--id sets: class folders, labelled lists or CSVs, or loose images and
 * embeddings files) and labels each row with its class index: from the sets' labels (classes default
 * to the labels seen), or all 0 for unlabelled data pooled into one class (`POOLED_CLASS` unless
 * --classes names it).
 */
export async function embedFitData(specs: readonly string[], classes: ClassSpec[] | undefined, model: ClipModel, opts: CommonOptions, flag = "--id"): Promise<FitData & { classes: ClassSpec[]; labelled: boolean }> {
  return embedFitSets(await readFitSets(specs, opts), classes, model, opts, flag);
}

function readFitSets(specs: readonly string[], opts: CommonOptions): Promise<Dataset[]> {
  return Promise.all(specs.map((s) => readDataset(s, { extensions: extensionsOf(opts) })));
}

/**
 * A few-shot method's --id sets, read before any model is opened, so that a mistyped path fails at
 * once instead of after the model loads (or, for a Hub model not yet cached, after a download); then
 * given to `fitDetector`, which consumes them: the fit may keep an embeddings file's rows and normalise
 * them in place (FitData.owned), so one set list serves one fit. Undefined for methods fitted on no images.
 */
export async function readFitSetsFirst(opts: MethodOptions): Promise<Dataset[] | undefined> {
  return isFewShot(opts.method) ? readFitSets(opts.id ?? [], opts) : undefined;
}

/**
 * `embedFitData` on sets already read. `model`: the loaded model, or, where every set is an embeddings
 * file, only the id their rows must record.
 */
async function embedFitSets(sets: readonly Dataset[], classes: ClassSpec[] | undefined, model: ClipModel | { readonly id: string }, opts: CommonOptions, flag = "--id"): Promise<FitData & { classes: ClassSpec[]; labelled: boolean }> {
  const loaded = model instanceof ClipModel ? model : undefined;
  const labelled = sets.filter((s) => s.labelled).length;
  if (labelled > 0 && labelled < sets.length) {
    throw new ClipOodError("USAGE", `${flag} mixes labelled data (class folders, labelled lists) with unlabelled images or embeddings`, {
      hint: "give either labelled data for every class, or loose data for a single pooled class",
    });
  }
  let finalClasses = classes;
  if (!finalClasses) {
    finalClasses = labelled === 0 ? await loadClasses(POOLED_CLASS) : classesFromLabels(sets);
    if (!finalClasses) throw new ClipOodError("USAGE", `the ${flag} labels are class indices, not names`, { hint: "pass --classes to name the classes the indices refer to" });
  }
  const store = loaded ? await openCacheStore(opts) : undefined;
  const bars = progress(!opts.quiet);
  const parts: Matrix[] = [];
  const labels: number[] = [];
  try {
    for (const set of sets) {
      const embedded = await embedDataset(set.spec, set, {
        ...(loaded ? { model: loaded, dtype: loaded.model.dtype } : {}),
        modelId: model.id,
        ...(store ? { store } : {}),
        onProgress: (done, total) => bars.images(done, total),
        onFailure: (input, reason) => reportFailure(input, reason, bars),
      });
      bars.stop();
      for (let i = 0; i < embedded.embeddings.rows; i++) {
        const raw = embedded.labels[i];
        const label = labelled === 0 ? 0 : raw === undefined ? undefined : classOfLabel(finalClasses, raw);
        if (label === undefined) {
          throw new ClipOodError("CLASSES", `${embedded.inputs[i]} is labelled "${raw ?? ""}", which is not one of the classes (${finalClasses.map((c) => c.label).join(", ")})`, {
            hint: "name each class folder or label after its class, or leave out --classes to take the labels as classes",
          });
        }
        labels.push(label);
      }
      parts.push(embedded.embeddings);
    }
  } finally {
    await store?.close();
  }
  if (labels.length === 0) {
    throw new ClipOodError("INPUT", `no usable ${flag === "--outlier-images" ? "" : "in-distribution "}data in ${flag} ${sets.map((s) => s.spec).join(", ")}`, { hint: "check the paths; each unreadable file was reported above" });
  }
  // One set (say a .npy of a million rows) is used as read; several are joined with one copy, never
  // through a copy per row: a full training set is gigabytes. Either way the rows were read or
  // embedded for this fit alone, so the fit may keep them as they are (FitData.owned).
  const embeddings = parts.length === 1 ? parts[0]! : concatRows(...parts);
  return { classes: finalClasses, embeddings, labels: Int32Array.from(labels), labelled: labelled > 0, owned: true };
}

/**
 * Builds the detector the options describe with a loaded model, embedding a few-shot method's fitting
 * data (--id; `idFlag` names the flag that gave it in messages: eval's --fit). `templatesGiven`: false when --templates was left at its default, so a method may use
 * its paper's prompt.
 */
export async function fitDetector(opts: MethodOptions, templatesGiven: boolean, model: ClipModel, bars: ReturnType<typeof progress>, givenClasses?: ClassSpec[], idFlag = "--id", sets?: readonly Dataset[]): Promise<Detector> {
  checkMethodOptions(opts);
  if (!isFewShot(opts.method)) return prepareFromOptions(opts, templatesGiven, model, bars, givenClasses ?? (await loadClasses(opts.classes ?? "")));
  const classes = givenClasses ?? (opts.classes === undefined ? undefined : await loadClasses(opts.classes));
  const data = await embedFitSets(sets ?? (await readFitSets(opts.id ?? [], opts)), classes, model, opts, idFlag);
  checkLabelledForHeads(opts.method, data.labelled);
  const outliers = await embedOutlierImages(opts, model);
  const detector = await fitOnEmbeddings(await prepareFromOptions(opts, templatesGiven, model, bars, data.classes), outliers ? { ...data, outliers } : data);
  if (outliers) say(opts, `with ${plural(outliers.rows, "outlier embedding")} as a synthetic outlier class`);
  say(opts, `fitted on ${plural(detector.fitRows ?? 0, "in-distribution embedding")}`);
  return detector;
}

/**
 * Whether the options' detector can be fitted without loading any model: a method that uses no text
 * (EMBEDDING_ONLY_METHODS, without negative-label outliers) on data that are all embeddings files.
 */
export function fitsWithoutModel(opts: MethodOptions): boolean {
  const data = [...(opts.id ?? []), ...(opts.outlierImages ?? [])];
  return isEmbeddingOnly(opts.method) && !opts.outlierNeglabel && (opts.id?.length ?? 0) > 0 && data.every(isEmbeddingsFile);
}

/**
 * `fitDetector` for `fitsWithoutModel` options: nothing is resolved, loaded or downloaded. The detector
 * records the model, dtype and dimension the embeddings files record, so embeddings made on another
 * machine, or by another CLIP implementation, are fitted offline.
 */
export async function fitWithoutModel(opts: MethodOptions, givenClasses?: ClassSpec[], idFlag = "--id"): Promise<Detector> {
  const { prepared, data, outliers, model } = await prepareFromFiles(opts, givenClasses, idFlag);
  const detector = await fitOnEmbeddings(prepared, outliers ? { ...data, outliers } : data);
  if (outliers) say(opts, `with ${outliers.rows} outlier embeddings as a synthetic outlier class`);
  say(opts, `fitted on ${detector.fitRows} in-distribution embeddings of model ${model.id} (dtype ${model.dtype === UNKNOWN_DTYPE ? "not recorded" : model.dtype}), as the files record; no model was loaded`);
  return detector;
}

/**
 * What `fitWithoutModel` fits, before fitting: the fitting data (and outliers) read from the options'
 * embeddings files, the model they record, and the detector prepared on them (eval --shots fits it on
 * each draw). `idFlag` names the flag that gave the data in messages (eval's --fit).
 */
export async function prepareFromFiles(
  opts: MethodOptions,
  givenClasses?: ClassSpec[],
  idFlag = "--id",
): Promise<{ prepared: Detector; data: FitData & { classes: ClassSpec[]; labelled: boolean }; outliers: Matrix | undefined; model: DetectorModelInfo }> {
  checkMethodOptions(opts);
  const idSets = await readFitSets(opts.id ?? [], opts);
  const outlierSets = await readFitSets(opts.outlierImages ?? [], opts);
  const model = embeddingsModel([...idSets, ...outlierSets], opts);
  const data = await embedFitSets(idSets, givenClasses ?? (opts.classes === undefined ? undefined : await loadClasses(opts.classes)), model, opts, idFlag);
  const outliers = outlierSets.length > 0 ? (await embedFitSets(outlierSets, undefined, model, opts, "--outlier-images")).embeddings : undefined;
  const prepared = prepareWithoutModel({ method: opts.method, classes: data.classes, params: detectorParams(opts), model }, data);
  return { prepared, data, outliers, model };
}

/**
 * The model, dtype and dimension embeddings files record, one for all of them. --model and --dtype may
 * name them (for files that do not say) but not contradict them; files that name no model are taken
 * as --model's, $CLIP_OOD_MODEL's or the default model's, with a warning.
 */
function embeddingsModel(sets: readonly Dataset[], opts: MethodOptions): DetectorModelInfo {
  const files = sets.map((s) => ({ spec: s.spec, e: s.embeddings! }));
  const recorded = (key: "model" | "dtype", flag: string, given: string | undefined): string | undefined => {
    const known = files.filter((f) => f.e[key] !== undefined);
    const first = known[0];
    const other = known.find((f) => f.e[key] !== first?.e[key]);
    if (first && other) {
      throw new ClipOodError("MODEL_FOLDER", `the fitting data mix ${key === "model" ? "models" : "dtypes"}: ${first.spec} says ${first.e[key]!}, ${other.spec} says ${other.e[key]!}`, {
        hint: `embed every set with the same ${flag}`,
      });
    }
    if (first && given !== undefined && given !== first.e[key]) {
      throw new ClipOodError("MODEL_FOLDER", `${flag} ${given} does not match ${first.spec}, made by ${key === "model" ? "model" : "dtype"} ${first.e[key]!}`, {
        hint: `leave out ${flag}: a detector fitted on embeddings files records their own ${key === "model" ? "model" : "dtype"}`,
      });
    }
    return first?.e[key];
  };
  const given = opts.model ?? process.env["CLIP_OOD_MODEL"];
  const id = recorded("model", "--model", opts.model === undefined ? undefined : modelIdFor(opts.model)) ?? modelIdFor(given ?? DEFAULT_MODEL_ID);
  if (files.some((f) => f.e.model === undefined) && opts.model === undefined) {
    warn(`${files.filter((f) => f.e.model === undefined).map((f) => f.spec).join(", ")} do not say which model made them; recording ${id} (--model names it)`);
  }
  const dtype = recorded("dtype", "--dtype", opts.dtype) ?? opts.dtype ?? UNKNOWN_DTYPE;
  const dim = files[0]!.e.matrix.cols;
  const odd = files.find((f) => f.e.matrix.cols !== dim);
  if (odd) throw new ClipOodError("INPUT", `${odd.spec} has ${odd.e.matrix.cols} dimensions, ${files[0]!.spec} has ${dim}`, { hint: "fit on embeddings made by one model" });
  return { id, dtype, dim, exifRotate: opts.exifRotate };
}

/** The embeddings of --outlier-images (images or embeddings files, labels ignored), or undefined without. */
export async function embedOutlierImages(opts: MethodOptions, model: ClipModel): Promise<Matrix | undefined> {
  if (!opts.outlierImages?.length) return undefined;
  return (await embedFitData(opts.outlierImages, undefined, model, opts, "--outlier-images")).embeddings;
}

/** Pooled unlabelled data has no class names for the zero-shot classifier the text heads start from. */
export function checkLabelledForHeads(method: DetectorMethod, labelled: boolean): void {
  if (!labelled && (TEXT_HEAD_METHODS as readonly string[]).includes(method)) {
    throw new ClipOodError("USAGE", `--method ${method} needs labelled in-distribution data: --id has no class labels, so its images would pool into one class`, {
      hint: 'pass a folder per class, a list or CSV with labels, or an embeddings file whose rows carry "label"; for one pooled class of normal images use knn, mahalanobis or ocsvm',
    });
  }
}

/**
 * The detector the options describe, before any fitting: text features, negatives, settings. A few-shot
 * method's comes back unfitted, for `fitOnEmbeddings` on embeddings from `embedFitData` (once, or per
 * draw as eval --shots does).
 */
export async function prepareFromOptions(opts: MethodOptions, templatesGiven: boolean, model: ClipModel, bars: ReturnType<typeof progress>, classes: ClassSpec[]): Promise<Detector> {
  checkMethodOptions(opts);
  // NegLabel embeds ID classes with its own prompt, "the nice {}" (METHODS.md §4).
  const templates = opts.method === "neglabel" && !templatesGiven ? [NEGLABEL_ID_TEMPLATE] : await resolveTemplates(opts.templates);
  const negLabels = opts.negLabels === undefined ? undefined : (await loadPromptList(opts.negLabels)).map((c) => c.label);
  const unknownPrompts = opts.unknownPrompts === undefined ? undefined : await loadPromptList(opts.unknownPrompts);
  const outlierClasses = opts.outlierClasses === undefined ? undefined : await loadClasses(opts.outlierClasses);
  const detector = await prepareDetector(model, {
    method: opts.method,
    classes,
    templates,
    params: detectorParams(opts),
    ...(negLabels === undefined ? {} : { negLabels }),
    ...(opts.negConjugated ? { negConjugated: true } : {}),
    onProgress: (done, total) => bars.count("embedding negative-label candidates", done, total),
    ...(unknownPrompts === undefined ? {} : { unknownPrompts }),
    ...(outlierClasses === undefined ? {} : { outlierClasses }),
  });
  bars.stop();
  if (detector.negatives) say(opts, `${plural(detector.negatives.labels.length, "negative label")} (${detector.negatives.source}) in ${plural(detector.negatives.groups.length, "group")}`);
  return detector;
}

/** The detector settings the options give (those left out keep each method's defaults). */
function detectorParams(opts: MethodOptions): DetectorParams {
  return {
    ...(opts.temperature === undefined ? {} : { temperature: opts.temperature }),
    ...(opts.beta === undefined ? {} : { beta: opts.beta }),
    ...(opts.negFraction === undefined ? {} : { negFraction: opts.negFraction }),
    ...(opts.negGroups === undefined ? {} : { negGroups: opts.negGroups }),
    ...(opts.lambda === undefined ? {} : { lambda: opts.lambda }),
    ...(opts.k === undefined ? {} : { k: opts.k }),
    ...(opts.nu === undefined ? {} : { nu: opts.nu }),
    ...(opts.gamma === undefined ? {} : { gamma: opts.gamma }),
    ...(opts.shrinkage === undefined ? {} : { shrinkage: opts.shrinkage }),
    ...(opts.headScore === undefined ? {} : { headScore: opts.headScore }),
    ...(opts.probeC === undefined ? {} : { probeC: opts.probeC }),
    ...(opts.tipAlpha === undefined ? {} : { tipAlpha: opts.tipAlpha }),
    ...(opts.tipBeta === undefined ? {} : { tipBeta: opts.tipBeta }),
    ...(opts.epochs === undefined ? {} : { epochs: opts.epochs }),
    ...(opts.taskresAlpha === undefined ? {} : { taskresAlpha: opts.taskresAlpha }),
    ...(opts.outlierNeglabel ? { outlierNeglabel: true } : {}),
  };
}
