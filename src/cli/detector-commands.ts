/**
 * Saved detectors from the command line: fit, calibrate, detect --detector, and editing the class
 * list of a saved detector.
 */
import type { ClipModel } from "../clip.js";
import { ClipOodError } from "../errors.js";
import { isEmbeddingsFile, readEmbeddings } from "../io/embeddings.js";
import { addClasses, buildDetector, checkModel, removeClasses } from "../ood/build.js";
import { thresholdAtFpr, thresholdAtTpr } from "../ood/calibration.js";
import type { Threshold } from "../ood/calibration.js";
import { predict } from "../ood/detector.js";
import type { Detector, DetectorMethod } from "../ood/detector.js";
import { loadDetector, saveDetector } from "../ood/detector-file.js";
import { loadClasses, loadPromptList } from "../text/classes.js";
import type { ClassSpec } from "../text/classes.js";
import { resolveTemplates } from "../text/templates.js";
import type { Detection } from "../zeroshot.js";
import type { CommonOptions } from "./commands.js";
import { eachImage, format, images, openModel, say, summary } from "./commands.js";
import { rowWriter } from "./output.js";
import { progress } from "./progress.js";

export interface FitOptions extends CommonOptions {
  method: DetectorMethod;
  out: string;
  temperature?: number;
  beta?: number;
  unknownPrompts?: string;
  outlierClasses?: string;
}

export async function runFit(opts: FitOptions): Promise<number> {
  const classes = await loadClasses(opts.classes ?? "");
  const templates = await resolveTemplates(opts.templates);
  const unknownPrompts = opts.unknownPrompts === undefined ? undefined : await loadPromptList(opts.unknownPrompts);
  const outlierClasses = opts.outlierClasses === undefined ? undefined : await loadClasses(opts.outlierClasses);
  const model = await openModel(opts, progress(!opts.quiet));
  try {
    const detector = await buildDetector(model, {
      method: opts.method,
      classes,
      templates,
      params: {
        ...(opts.temperature === undefined ? {} : { temperature: opts.temperature }),
        ...(opts.beta === undefined ? {} : { beta: opts.beta }),
      },
      exifRotate: opts.exifRotate,
      ...(unknownPrompts === undefined ? {} : { unknownPrompts }),
      ...(outlierClasses === undefined ? {} : { outlierClasses }),
    });
    await saveDetector(detector, opts.out);
    say(opts, `saved a ${detector.method} detector for ${classes.length} classes (model ${detector.model.id}) to ${opts.out}`);
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
): Promise<{ total: number; failed: number }> {
  const embeddingFiles = specs.filter(isEmbeddingsFile);
  const imageSpecs = specs.filter((s) => !isEmbeddingsFile(s));
  let total = 0;
  for (const file of embeddingFiles) {
    const set = await readEmbeddings(file);
    if (set.model !== undefined) checkModel(detector, { id: set.model });
    else say(opts, `warning: ${file} does not say which model made it; assuming ${detector.model.id}`);
    for (let i = 0; i < set.matrix.rows; i++) {
      onResult({ input: set.inputs[i]!, detection: predict(detector, set.matrix.data.subarray(i * set.matrix.cols, (i + 1) * set.matrix.cols)) });
    }
    total += set.matrix.rows;
  }
  if (imageSpecs.length === 0) return { total, failed: 0 };
  const { files, failed: skipped } = await images(imageSpecs, opts);
  const bars = progress(!opts.quiet);
  let model: ClipModel | undefined;
  try {
    model = await openModel({ ...opts, exifRotate: detector.model.exifRotate }, bars, detector.model);
    checkModel(detector, model);
    const failed = await eachImage(model, files, bars, (r) => onResult({ input: r.input, detection: predict(detector, r.embedding) }), onFailure);
    return { total: total + files.length + skipped, failed: failed + skipped };
  } finally {
    await model?.close();
  }
}

export async function runDetectWithDetector(inputs: string[], opts: CommonOptions & { detector: string }): Promise<number> {
  const detector = await loadDetector(opts.detector);
  const fmt = format(opts);
  const out = rowWriter(fmt, process.stdout, ["input", "label", "score", "ood"], [48, 20, 8]);
  const { total, failed } = await scoreInputs(
    inputs,
    detector,
    opts,
    ({ input, detection: d }) => {
      const verdict = d.ood === null ? (fmt === "table" ? "-" : "") : fmt === "table" ? (d.ood ? "OOD" : "ID") : String(d.ood);
      out.row([input, d.label, d.score.toFixed(6), verdict], { input, label: d.label, score: d.score, ood: d.ood });
    },
    (input, reason) => out.failure(input, reason),
  );
  if (!detector.threshold) say(opts, `${opts.detector} has no threshold yet, so "ood" is empty: run clip-ood calibrate --detector ${opts.detector} --id <validation images>`);
  return summary(opts, total, failed);
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
    const r = await scoreInputs(specs, detector, opts, (s) => scores.push(s.detection.score), () => {});
    return { scores, failed: r.failed };
  };
  const id = await collect(opts.id);
  const ood = opts.ood?.length ? await collect(opts.ood) : undefined;
  const threshold: Threshold =
    ood && opts.tpr === undefined ? thresholdAtFpr(id.scores, ood.scores, opts.fpr ?? 0.05) : thresholdAtTpr(id.scores, opts.tpr ?? 0.95, ood?.scores);
  const out = opts.out ?? opts.detector;
  await saveDetector({ ...detector, threshold }, out);
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
  const model = await openModel(opts, progress(!opts.quiet), detector.model);
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
