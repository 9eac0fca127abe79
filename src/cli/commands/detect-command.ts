/**
 * clip-ood detect: an OOD score (and with a threshold, a verdict) for every input, from a saved
 * detector or from one the method options describe, built in memory exactly as fit would.
 */
import type { Command } from "commander";
import type { ClipModel } from "../../clip.js";
import { ClipOodError } from "../../errors.js";
import { isFewShot } from "../../ood/detector.js";
import type { Detector, DetectorMethod } from "../../ood/detector.js";
import { loadDetector } from "../../ood/detector-file.js";
import { fitDetector, fitsWithoutModel, fitWithoutModel, readFitSetsFirst } from "../build-detector.js";
import { format, openModel, say, summary, warn, warnConstantScore } from "../commands.js";
import { EXIT_HELP } from "../exit.js";
import { checkFitData, checkMethodOptions, METHOD_OPTION_KEYS, METHODS_HELP, withMethodOptions } from "../method-options.js";
import type { MethodOptions } from "../method-options.js";
import { num, withClassOptions, withCommonOptions, withFormatOptions } from "../options.js";
import type { SetStatus } from "../options.js";
import { plural, rowWriter, widest } from "../output.js";
import { progress } from "../progress.js";
import { expandScoreInputs, scoreInputs } from "../score-inputs.js";

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
    let detector: Detector | undefined = opts.detector === undefined ? undefined : await loadDetector(opts.detector);
    if (!detector) {
      checkFitData("detect", [opts.method], opts.id, "--id");
      if (opts.classes === undefined && !(isFewShot(opts.method) && opts.id)) {
        throw new ClipOodError("USAGE", "detect needs --classes or --detector", { hint: "e.g. --classes cat,dog,car" });
      }
      checkMethodOptions(opts);
    }
    // Inputs first: a command whose inputs give nothing fails before a model is loaded or fitted.
    const expanded = await expandScoreInputs(inputs, opts);
    if (!detector) {
      if (fitsWithoutModel(opts)) detector = await fitWithoutModel(opts);
      else {
        const sets = await readFitSetsFirst(opts);
        model = await openModel(opts, bars);
        detector = await fitDetector(opts, templatesGiven, model, bars, undefined, "--id", sets);
      }
    }
    warnConstantScore(detector);
    const threshold = opts.threshold ?? detector.threshold?.value;
    if (detector.method === "mcm" && threshold !== undefined && threshold <= 1 / detector.classes.length) {
      warn(`threshold ${threshold} is at or below 1/${detector.classes.length}, the lowest possible MCM score: nothing will be flagged OOD`);
    }
    const fmt = format(opts);
    // Rows are printed as they come: the columns fit the images' paths and the labels, known up front.
    const labels = [...detector.classFeatures.labels, ...(detector.method === "unknown" ? ["unknown"] : [])];
    const widths = [widest(expanded.images.files), widest(labels), 8];
    const out = rowWriter(fmt, process.stdout, ["input", "label", "score", "ood"], widths);
    const scores: number[] = [];
    const { total, failed } = await scoreInputs(
      expanded,
      detector,
      opts,
      ({ input, detection: d }) => {
        scores.push(d.score);
        const verdict = d.ood === null ? (fmt === "table" ? "-" : "") : fmt === "table" ? (d.ood ? "OOD" : "ID") : String(d.ood);
        out.row([input, d.label, d.score.toFixed(6), verdict], { input, label: d.label, score: d.score, ood: d.ood });
      },
      (input, reason) => out.failure(input, reason),
      model ? { model } : { info: detector.model, source: opts.detector ?? "the --id embeddings" },
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
  const floor = method === "mcm" ? ` (the floor for ${plural(classCount, "class", "classes")} is ${(1 / classCount).toFixed(4)})` : "";
  return [
    `No --threshold given, so "ood" is empty. ${method} scores of the ${plural(s.length, "input")}: min ${q(0)}, median ${q(0.5)}, max ${q(1)}${floor}.`,
    `To choose one, run detect on in-distribution images you trust and take the 5th percentile of their scores (95% of them then pass); pass it as --threshold.`,
  ].join("\n");
}

export function addDetectCommand(program: Command, setStatus: SetStatus): void {
  withFormatOptions(withMethodOptions(withClassOptions(withCommonOptions(program.command("detect")), false)))
    .description("Is each image one of the classes? Scores every input with an OOD method (default MCM) or a saved detector; low scores are out-of-distribution.")
    .argument("<inputs...>", "image files, folders (recursive), globs, - to read paths from stdin, or embeddings files (.jsonl/.npy from embed)")
    .option("-d, --detector <file>", "score with a saved detector (from `clip-ood fit`): its model, classes, method and threshold")
    .option("--threshold <t>", "flag inputs whose score is below t as OOD (without it, scores only)", num("--threshold"))
    .addHelpText("after", `
${METHODS_HELP}
Choosing a threshold:
  Run detect on in-distribution validation images without --threshold and take the 5th percentile
  of their scores: 95% of in-distribution images then pass (the FPR@95%TPR convention).
  \`clip-ood calibrate\` does this for a saved detector. MCM scores of K classes lie in [1/K, 1].

Examples:
  clip-ood detect ./photos --classes cat,dog,car
  clip-ood detect ./incoming --classes classes.txt --threshold 0.36 --json
  clip-ood detect ./incoming --method knn --id ./train          # ./train/{cat,dog}/*.jpg
  clip-ood detect --detector pets.json ./incoming photos.jsonl
${EXIT_HELP}`)
    .action(async (inputs: string[], opts: DetectOptions, cmd: Command) => {
      if (opts.detector !== undefined) {
        const clashing = [...METHOD_OPTION_KEYS, "classes", "templates", "threshold"].filter((k) => cmd.getOptionValueSource(k) === "cli");
        if (clashing.length > 0) {
          throw new ClipOodError("USAGE", `--detector already holds ${clashing.map((k) => "--" + k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())).join(", ")}`, {
            hint: "edit the class list with `clip-ood detector add-class/remove-class`, the threshold with `clip-ood calibrate`, or fit a new detector",
          });
        }
      }
      setStatus(await runDetect(inputs, opts, cmd.getOptionValueSource("templates") === "cli"));
    });
}
