/**
 * Saved detectors from the command line: fit, calibrate, detect --detector, and editing the class
 * list of a saved detector.
 */
import type { ClipModel } from "../clip.js";
import { stackRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { ClipOodError } from "../errors.js";
import { isEmbeddingsFile, readEmbeddings } from "../io/embeddings.js";
import { classesFromLabels, readDataset } from "../io/datasets.js";
import { classOfLabel } from "../eval/evaluate.js";
import { embedDataset } from "../eval/run.js";
import { addClasses, checkModel, fitOnEmbeddings, localFeatureMaker, needsLocalFeatures, prepareDetector, removeClasses } from "../ood/build.js";
import type { FitData } from "../ood/build.js";
import { calibrate, isFewShot, predict, TEXT_HEAD_METHODS } from "../ood/detector.js";
import { chooseWeights, standardize } from "../ood/combine.js";
import type { WeightChoice } from "../ood/combine.js";
import type { Detector, DetectorMethod, DetectorModelInfo } from "../ood/detector.js";
import { loadDetector, saveDetector } from "../ood/detector-file.js";
import { loadClasses, loadPromptList } from "../text/classes.js";
import type { ClassSpec } from "../text/classes.js";
import { resolveTemplates } from "../text/templates.js";
import { NEGLABEL_ID_TEMPLATE } from "../ood/neglabel.js";
import type { Detection } from "../zeroshot.js";
import type { CommonOptions } from "./commands.js";
import { eachImage, extensionsOf, format, images, openModel, openCacheStore, say, summary } from "./commands.js";
import { checkMethodOptions } from "./method-options.js";
import type { MethodOptions } from "./method-options.js";
import { rowWriter } from "./output.js";
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
        onFailure: (input, reason) => {
          bars.stop();
          process.stderr.write(`failed ${input}: ${reason}\n`);
        },
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
  if (rows.length === 0) throw new ClipOodError("INPUT", `no usable ${flag === "--id" ? "in-distribution " : ""}data in ${flag}`, { hint: "check the paths; each unreadable file was reported above" });
  return { classes: finalClasses, embeddings: stackRows(rows), labels: Int32Array.from(labels), labelled: labelled > 0 };
}

export interface FitOptions extends MethodOptions {
  out: string;
}

/**
 * Builds the detector the options describe with a loaded model, embedding a few-shot method's fitting
 * data (--id). `templatesGiven`: false when --templates was left at its default, so a method may use
 * its paper's prompt.
 */
export async function fitDetector(opts: MethodOptions, templatesGiven: boolean, model: ClipModel, bars: ReturnType<typeof progress>, givenClasses?: ClassSpec[]): Promise<Detector> {
  checkMethodOptions(opts);
  if (!isFewShot(opts.method)) return prepareFromOptions(opts, templatesGiven, model, bars, givenClasses ?? (await loadClasses(opts.classes ?? "")));
  const data = await embedFitData(opts.id ?? [], givenClasses ?? (opts.classes === undefined ? undefined : await loadClasses(opts.classes)), model, opts);
  checkLabelledForHeads(opts.method, data.labelled);
  const outliers = await embedOutlierImages(opts, model);
  const detector = await fitOnEmbeddings(await prepareFromOptions(opts, templatesGiven, model, bars, data.classes), outliers ? { ...data, outliers } : data);
  if (outliers) say(opts, `with ${outliers.rows} outlier embeddings as a synthetic outlier class`);
  say(opts, `fitted on ${detector.fitRows} in-distribution embeddings`);
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
  if (detector.negatives) say(opts, `${detector.negatives.labels.length} negative labels (${detector.negatives.source}) in ${detector.negatives.groups.length} groups`);
  return detector;
}

export async function runFit(opts: FitOptions, templatesGiven = true): Promise<number> {
  checkMethodOptions(opts);
  const bars = progress(!opts.quiet);
  const model = await openModel(opts, bars);
  try {
    const detector = await fitDetector(opts, templatesGiven, model, bars);
    await saveDetector(detector, opts.out);
    say(opts, `saved a ${detector.method} detector for ${detector.classes.length} classes (model ${detector.model.id}) to ${opts.out}`);
    say(opts, `next: clip-ood calibrate --detector ${opts.out} --id <in-distribution validation images>`);
    return 0;
  } finally {
    await model.close();
  }
}

interface Scored {
  input: string;
  detection: Detection;
}

/**
 * Scores images and embeddings files with a detector, in input order per kind. Embeddings files need
 * no model at all; images load the detector's model once.
 */
async function scoreInputs(
  specs: readonly string[],
  detector: Detector,
  opts: CommonOptions,
  onResult: (r: Scored) => void,
  onFailure: (input: string, reason: string) => void,
  target: { model: ClipModel } | RecordedModel,
  threshold = detector.threshold?.value,
): Promise<{ total: number; failed: number }> {
  return eachEmbedding(
    specs,
    target,
    opts,
    (input, e, local) => onResult({ input, detection: predict(detector, e, { ...(threshold === undefined ? {} : { threshold }), ...(local ? { local } : {}) }) }),
    onFailure,
    needsLocalFeatures(detector),
  );
}

/** A detector's recorded model, loaded only when images need embedding; `source` is the detector file. */
type RecordedModel = { info: DetectorModelInfo; source: string };

/**
 * Unit embeddings of images and embeddings files, made by one model: a loaded one, or the one a
 * detector records (loaded only if there are images: embeddings files need no model). An embeddings
 * file that says it came from another model is refused; unreadable images are reported and skipped.
 */
async function eachEmbedding(
  specs: readonly string[],
  target: { model: ClipModel } | RecordedModel,
  opts: CommonOptions,
  onEmbedding: (input: string, embedding: Float32Array, local?: Matrix) => void,
  onFailure: (input: string, reason: string) => void = () => {},
  local = false,
): Promise<{ total: number; failed: number }> {
  const id = "model" in target ? target.model.id : target.info.id;
  let total = 0;
  const files = specs.filter(isEmbeddingsFile);
  if (local && files.length > 0) {
    throw new ClipOodError("USAGE", `glmcm needs images: ${files[0]} holds global embeddings only, no patch tokens`, { hint: "score the images themselves, or use a global method such as mcm" });
  }
  for (const file of files) {
    const set = await readEmbeddings(file);
    if (set.model === undefined) say(opts, `warning: ${file} does not say which model made it; assuming ${id}`);
    else if (set.model !== id) {
      throw new ClipOodError("MODEL_FOLDER", `embeddings file ${file} was made by model ${set.model}, not ${id}`, {
        hint: "embed the data again with the same model, or use a detector made for that model",
      });
    }
    for (let i = 0; i < set.matrix.rows; i++) onEmbedding(set.inputs[i]!, set.matrix.data.subarray(i * set.matrix.cols, (i + 1) * set.matrix.cols));
    total += set.matrix.rows;
  }
  const imageSpecs = specs.filter((s) => !isEmbeddingsFile(s));
  if (imageSpecs.length === 0) return { total, failed: 0 };
  const { files: images_, failed: skipped, problems } = await images(imageSpecs, opts);
  for (const p of problems) onFailure(p.input, p.reason);
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

export interface DetectOptions extends MethodOptions {
  detector?: string;
  threshold?: number;
}

/**
 * detect: with --detector, a saved detector scores the inputs (embeddings files need no model);
 * otherwise the detector the options describe is built in memory first, exactly as `fit` would.
 */
export async function runDetect(inputs: string[], opts: DetectOptions, templatesGiven = true): Promise<number> {
  const bars = progress(!opts.quiet);
  let model: ClipModel | undefined;
  try {
    let detector: Detector;
    if (opts.detector !== undefined) detector = await loadDetector(opts.detector);
    else {
      if (opts.classes === undefined && !(isFewShot(opts.method) && opts.id)) {
        throw new ClipOodError("USAGE", "detect needs --classes or --detector", { hint: "e.g. --classes cat,dog,car" });
      }
      checkMethodOptions(opts);
      model = await openModel(opts, bars);
      detector = await fitDetector(opts, templatesGiven, model, bars);
    }
    const threshold = opts.threshold ?? detector.threshold?.value;
    if (detector.method === "mcm" && threshold !== undefined && threshold <= 1 / detector.classes.length) {
      say(opts, `warning: threshold ${threshold} is at or below 1/${detector.classes.length}, the lowest possible MCM score: nothing will be flagged OOD`);
    }
    const fmt = format(opts);
    const out = rowWriter(fmt, process.stdout, ["input", "label", "score", "ood"], [48, 20, 8]);
    const scores: number[] = [];
    const { total, failed } = await scoreInputs(
      inputs,
      detector,
      opts,
      ({ input, detection: d }) => {
        scores.push(d.score);
        const verdict = d.ood === null ? (fmt === "table" ? "-" : "") : fmt === "table" ? (d.ood ? "OOD" : "ID") : String(d.ood);
        out.row([input, d.label, d.score.toFixed(6), verdict], { input, label: d.label, score: d.score, ood: d.ood });
      },
      (input, reason) => out.failure(input, reason),
      model ? { model } : { info: detector.model, source: opts.detector! },
      threshold,
    );
    if (threshold === undefined && scores.length > 0) {
      say(opts, thresholdHint(scores, detector.classes.length, detector.method));
      if (opts.detector) say(opts, `or calibrate the detector: clip-ood calibrate --detector ${opts.detector} --id <validation images>`);
    }
    return summary(opts, total, failed);
  } finally {
    await model?.close();
  }
}

/** What to do without a threshold: the score range seen and how to pick one. */
export function thresholdHint(scores: readonly number[], classCount: number, method: DetectorMethod = "mcm"): string {
  const s = [...scores].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(4);
  const floor = method === "mcm" ? ` (the floor for ${classCount} classes is ${(1 / classCount).toFixed(4)})` : "";
  return [
    `No --threshold given, so "ood" is empty. ${method} scores of these ${s.length} inputs: min ${q(0)}, median ${q(0.5)}, max ${q(1)}${floor}.`,
    `To choose one, run detect on in-distribution images you trust and take the 5th percentile of their scores (95% of them then pass); pass it as --threshold.`,
  ].join("\n");
}

export interface CalibrateOptions extends CommonOptions {
  detector: string;
  id: string[];
  ood?: string[];
  tpr?: number;
  fpr?: number;
  out?: string;
}

export async function runCalibrate(opts: CalibrateOptions): Promise<number> {
  if (opts.fpr !== undefined && !opts.ood?.length) {
    throw new ClipOodError("USAGE", "--fpr needs out-of-distribution validation data", { hint: "add --ood <images or embeddings>, or use --tpr" });
  }
  if (opts.fpr !== undefined && opts.tpr !== undefined) {
    throw new ClipOodError("USAGE", "give either --tpr or --fpr, not both", { hint: "--tpr keeps that fraction of in-distribution inputs; --fpr lets that fraction of OOD inputs through" });
  }
  const detector = await loadDetector(opts.detector);
  const collect = async (specs: string[]) => {
    const scores: number[] = [];
    const r = await scoreInputs(specs, detector, opts, (s) => scores.push(s.detection.score), () => {}, { info: detector.model, source: opts.detector });
    return { scores, failed: r.failed };
  };
  const id = await collect(opts.id);
  const ood = opts.ood?.length ? await collect(opts.ood) : undefined;
  // With OOD data and no --tpr, the target is a false-positive rate (default 0.05).
  const calibrated = calibrate(detector, id.scores, {
    ...(ood ? { oodScores: ood.scores } : {}),
    ...(ood && opts.tpr === undefined ? { fpr: opts.fpr ?? 0.05 } : { tpr: opts.tpr ?? 0.95 }),
  });
  const threshold = calibrated.threshold!;
  const out = opts.out ?? opts.detector;
  await saveDetector(calibrated, out);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  process.stdout.write(
    JSON.stringify({ detector: out, threshold: threshold.value, target: threshold.target, tpr: threshold.tpr, fpr: threshold.fpr, id: threshold.idCount, ood: threshold.oodCount }) + "\n",
  );
  say(
    opts,
    `threshold ${threshold.value.toFixed(6)}: keeps ${pct(threshold.tpr)} of ${threshold.idCount} in-distribution inputs` +
      (threshold.fpr === null ? "" : `, lets ${pct(threshold.fpr)} of ${threshold.oodCount} OOD inputs through`) +
      ` — saved to ${out}`,
  );
  return id.failed + (ood?.failed ?? 0) > 0 ? 1 : 0;
}

export async function runAddClass(file: string, labels: string[], opts: CommonOptions & { describe: string[] }): Promise<number> {
  const detector = await loadDetector(file);
  if (opts.describe.length > 0 && labels.length !== 1) {
    throw new ClipOodError("USAGE", "--describe applies to a single added class", { hint: "add classes one at a time when describing them" });
  }
  const added: ClassSpec[] = labels.map((label) => ({ label: label.trim().normalize("NFC"), names: [label.trim().normalize("NFC")], descriptions: opts.describe }));
  const model = await openModel(opts, progress(!opts.quiet), { ...detector.model, source: file });
  try {
    const updated = await addClasses(detector, model, added);
    await saveDetector(updated, file);
    say(opts, `added ${labels.join(", ")}: ${updated.classes.length} classes. The threshold was kept${detector.threshold ? "; recalibrate if the class list changed much (see README)" : ""}.`);
    return 0;
  } finally {
    await model.close();
  }
}

export async function runRemoveClass(file: string, labels: string[], opts: CommonOptions): Promise<number> {
  const detector = await loadDetector(file);
  const updated = removeClasses(detector, labels);
  await saveDetector(updated, file);
  say(opts, `removed ${labels.join(", ")}: ${updated.classes.length} classes left. The threshold was kept.`);
  return 0;
}

export async function runShow(file: string): Promise<number> {
  const d = await loadDetector(file);
  const summaryJson = {
    method: d.method,
    params: d.params,
    model: d.model,
    templates: d.templates,
    classes: d.classes.map((c) => c.label),
    extra: d.extra ? { kind: d.extra.kind, labels: d.extra.classes.map((c) => c.label) } : null,
    threshold: d.threshold ?? null,
  };
  process.stdout.write(JSON.stringify(summaryJson, null, 2) + "\n");
  return 0;
}

export interface CombineOptions extends CommonOptions {
  id: string[];
  ood?: string[];
  weights?: string;
  out: string;
}

/**
 * A detector whose score is Σ w·(s − mean)/std over saved detectors, each part standardised on the
 * same in-distribution validation data (embedded once, scored by every part). The weights are given
 * (--weights), chosen on OOD validation data (--ood: the grid point with the best validation AUROC,
 * src/ood/combine.ts), or equal.
 */
export async function runCombine(files: string[], opts: CombineOptions): Promise<number> {
  const usage = "clip-ood combine a.json b.json --id <validation data> [--ood <OOD validation data>] --out c.json";
  if (files.length < 2) throw new ClipOodError("USAGE", "combine needs at least two detectors", { hint: usage });
  if (opts.weights !== undefined && opts.ood?.length) {
    throw new ClipOodError("USAGE", "give either --weights or --ood, not both", { hint: "--ood chooses the weights on validation data; --weights fixes them" });
  }
  const parts = await Promise.all(files.map((f) => loadDetector(f)));
  const given = opts.weights?.split(",").map((w) => Number(w.trim()));
  if (given && (given.length !== parts.length || given.some((w) => !Number.isFinite(w)))) {
    throw new ClipOodError("USAGE", `--weights needs ${parts.length} numbers, got "${opts.weights}"`, { hint: "e.g. --weights 1,0.5" });
  }
  for (const p of parts.slice(1)) checkModel(parts[0]!, p.model);
  let failed = 0;
  const onFailure = (input: string, reason: string) => {
    failed++;
    process.stderr.write(`failed ${input}: ${reason}\n`);
  };
  const scoresOf = async (specs: readonly string[]) => {
    const scores = parts.map(() => [] as number[]);
    await eachEmbedding(specs, { info: parts[0]!.model, source: files[0]! }, opts, (_input, e) => parts.forEach((p, i) => scores[i]!.push(predict(p, e).score)), onFailure);
    return scores;
  };
  const id = await scoresOf(opts.id);
  if (id[0]!.length === 0) throw new ClipOodError("INPUT", "no usable in-distribution validation data in --id", { hint: "check the paths; each unreadable file was reported above" });
  const standardizers = id.map((s) => standardize(Float32Array.from(s)));
  let weights = given ?? parts.map(() => 1 / parts.length);
  let chosen: WeightChoice | undefined;
  let oodCount = 0;
  if (opts.ood?.length) {
    const ood = await scoresOf(opts.ood);
    oodCount = ood[0]!.length;
    chosen = chooseWeights(parts.map((_, i) => ({ id: id[i]!, ood: ood[i]!, standardizer: standardizers[i]! })));
    weights = chosen.weights;
  }
  const first = parts[0]!;
  const combo: Detector = {
    method: "combo",
    params: {},
    model: first.model,
    templates: first.templates,
    classes: first.classes,
    classFeatures: first.classFeatures,
    parts: parts.map((detector, i) => ({ detector: { ...detector, threshold: undefined }, weight: weights[i]!, standardizer: standardizers[i]! })),
  };
  await saveDetector(combo, opts.out);
  const weightsFrom = given ? "given" : chosen ? "validation" : "equal";
  process.stdout.write(
    JSON.stringify({
      detector: opts.out,
      parts: files,
      weights,
      weightsFrom,
      id: id[0]!.length,
      ...(chosen ? { ood: oodCount, validationAuroc: chosen.auroc, partAuroc: chosen.partAuroc, tried: chosen.tried } : {}),
    }) + "\n",
  );
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  say(opts, `saved a combination of ${files.join(", ")} to ${opts.out}: weights ${weights.map((w) => +w.toFixed(4)).join(", ")} (${weightsFrom}), standardised on ${id[0]!.length} in-distribution inputs`);
  if (chosen) say(opts, `validation AUROC ${pct(chosen.auroc)} combined; alone: ${files.map((f, i) => `${f} ${pct(chosen.partAuroc[i]!)}`).join(", ")} (best of ${chosen.tried} weightings)`);
  say(opts, `next: clip-ood calibrate --detector ${opts.out} --id <in-distribution validation data>`);
  return failed > 0 ? 1 : 0;
}
