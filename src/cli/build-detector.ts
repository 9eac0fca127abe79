/**
 * A detector from the command line's method options: the data a few-shot method is fitted on (--id,
 * --outlier-images) embedded and labelled, then the detector prepared and fitted. Shared by fit,
 * detect (without --detector) and eval.
 */
import type { ClipModel } from "../clip.js";
import { stackRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { ClipOodError } from "../errors.js";
import { classesFromLabels, readDataset } from "../eval/datasets.js";
import { classOfLabel } from "../eval/evaluate.js";
import { embedDataset } from "../eval/run.js";
import { fitOnEmbeddings, prepareDetector } from "../ood/build.js";
import type { FitData } from "../ood/build.js";
import { isFewShot, TEXT_HEAD_METHODS } from "../ood/detector.js";
import type { Detector, DetectorMethod } from "../ood/detector.js";
import { loadClasses, loadPromptList } from "../text/classes.js";
import type { ClassSpec } from "../text/classes.js";
import { resolveTemplates } from "../text/templates.js";
import { NEGLABEL_ID_TEMPLATE } from "../ood/neglabel.js";
import type { CommonOptions } from "./commands.js";
import { extensionsOf, openCacheStore, reportFailure, say } from "./commands.js";
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
  const sets = await Promise.all(specs.map((s) => readDataset(s, { extensions: extensionsOf(opts) })));
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
  const store = await openCacheStore(opts);
  const bars = progress(!opts.quiet);
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  try {
    for (const set of sets) {
      const embedded = await embedDataset(set.spec, set, {
        model,
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
        rows.push(embedded.embeddings.data.slice(i * embedded.embeddings.cols, (i + 1) * embedded.embeddings.cols));
        labels.push(label);
      }
    }
  } finally {
    await store?.close();
  }
  if (rows.length === 0) {
    throw new ClipOodError("INPUT", `no usable ${flag === "--outlier-images" ? "" : "in-distribution "}data in ${flag} ${specs.join(", ")}`, { hint: "check the paths; each unreadable file was reported above" });
  }
  return { classes: finalClasses, embeddings: stackRows(rows), labels: Int32Array.from(labels), labelled: labelled > 0 };
}

/**
 * Builds the detector the options describe with a loaded model, embedding a few-shot method's fitting
 * data (--id; `idFlag` names the flag that gave it in messages: eval's --fit). `templatesGiven`: false when --templates was left at its default, so a method may use
 * its paper's prompt.
 */
export async function fitDetector(opts: MethodOptions, templatesGiven: boolean, model: ClipModel, bars: ReturnType<typeof progress>, givenClasses?: ClassSpec[], idFlag = "--id"): Promise<Detector> {
  checkMethodOptions(opts);
  if (!isFewShot(opts.method)) return prepareFromOptions(opts, templatesGiven, model, bars, givenClasses ?? (await loadClasses(opts.classes ?? "")));
  const data = await embedFitData(opts.id ?? [], givenClasses ?? (opts.classes === undefined ? undefined : await loadClasses(opts.classes)), model, opts, idFlag);
  checkLabelledForHeads(opts.method, data.labelled);
  const outliers = await embedOutlierImages(opts, model);
  const detector = await fitOnEmbeddings(await prepareFromOptions(opts, templatesGiven, model, bars, data.classes), outliers ? { ...data, outliers } : data);
  if (outliers) say(opts, `with ${plural(outliers.rows, "outlier embedding")} as a synthetic outlier class`);
  say(opts, `fitted on ${plural(detector.fitRows ?? 0, "in-distribution embedding")}`);
  return detector;
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
    params: {
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
    },
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
