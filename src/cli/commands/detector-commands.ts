/**
 * Saved detectors from the command line: fit, calibrate, combine, detect, and editing the class list
 * of a saved detector.
 */
import { InvalidArgumentError } from "commander";
import type { Command } from "commander";
import { ClipOodError } from "../../errors.js";
import { addDiscoveredClasses, checkDiscoveryFits, chosenClusters } from "../../discover/add-discovered.js";
import { loadDiscovery } from "../../discover/discovery-file.js";
import { addClasses, checkModel, removeClasses } from "../../ood/build.js";
import { calibrate, predict, UNKNOWN_DTYPE } from "../../ood/detector.js";
import { chooseWeights, standardize } from "../../ood/combine.js";
import type { WeightChoice } from "../../ood/combine.js";
import type { Detector } from "../../ood/detector.js";
import { loadDetector, saveDetector } from "../../ood/detector-file.js";
import { summarizeDetector } from "../../ood/detector-summary.js";
import type { ClassSpec } from "../../text/classes.js";
import type { CommonOptions } from "../commands.js";
import { openCacheStore, openModel, reportFailure, say, warn, warnConstantScore } from "../commands.js";
import { fitDetector, fitsWithoutModel, fitWithoutModel, readFitSetsFirst } from "../build-detector.js";
import { checkFitData, checkMethodOptions, METHODS_HELP, withMethodOptions } from "../method-options.js";
import type { MethodOptions } from "../method-options.js";
import { plural } from "../output.js";
import { progress } from "../progress.js";
import { eachEmbedding, scoreInputs } from "../score-inputs.js";
import { EXIT_HELP } from "../exit.js";
import { collect, num, withClassOptions, withCommonOptions } from "../options.js";
import type { SetStatus } from "../options.js";

export interface FitOptions extends MethodOptions {
  out: string;
}

export async function runFit(opts: FitOptions, templatesGiven = true): Promise<number> {
  checkMethodOptions(opts);
  checkFitData("fit", [opts.method], opts.id, "--id");
  const detector = fitsWithoutModel(opts) ? await fitWithoutModel(opts) : await fitWithModel(opts, templatesGiven);
  warnConstantScore(detector);
  await saveDetector(detector, opts.out);
  say(opts, `saved a ${detector.method} detector for ${plural(detector.classes.length, "class", "classes")} (model ${detector.model.id}) to ${opts.out}`);
  say(opts, `next: clip-ood calibrate --detector ${opts.out} --id <in-distribution validation images>`);
  return 0;
}

async function fitWithModel(opts: FitOptions, templatesGiven: boolean): Promise<Detector> {
  const sets = await readFitSetsFirst(opts);
  const bars = progress(!opts.quiet);
  const model = await openModel(opts, bars);
  try {
    return await fitDetector(opts, templatesGiven, model, bars, undefined, "--id", sets);
  } finally {
    await model.close();
  }
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
    `threshold ${threshold.value.toFixed(6)}: keeps ${pct(threshold.tpr)} of ${plural(threshold.idCount, "in-distribution input")}` +
      (threshold.fpr === null ? "" : `, lets ${pct(threshold.fpr)} of ${plural(threshold.oodCount, "OOD input")} through`) +
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
    say(opts, `added ${labels.join(", ")}: ${plural(updated.classes.length, "class", "classes")}. The threshold was kept${detector.threshold ? "; recalibrate if the class list changed much (see README)" : ""}.`);
    return 0;
  } finally {
    await model.close();
  }
}

export interface AddFromOptions extends CommonOptions {
  from: string;
  clusters?: number[];
  name: string[];
}

/** --name 1=fox (repeatable) → cluster id → name. */
function clusterNames(specs: readonly string[]): Map<number, string> {
  const names = new Map<number, string>();
  for (const spec of specs) {
    const m = /^\s*(\d+)\s*=(.*)$/.exec(spec);
    const name = m?.[2]?.trim() ?? "";
    if (!m || name === "") throw new ClipOodError("USAGE", `--name "${spec}" is not <cluster>=<name>`, { hint: "e.g. --name 1=fox --name 3=red deer" });
    const id = Number(m[1]);
    if (names.has(id)) throw new ClipOodError("USAGE", `--name gives cluster ${id} two names`, { hint: "name each cluster once" });
    names.set(id, name);
  }
  return names;
}

/**
 * add-class --from discovery.json: the chosen clusters become classes (named by their best candidate
 * or --name), few-shot methods take their images as shots. Everything that can be refused — a discovery
 * of another model or detector, unknown clusters, clashing names — is, before the model loads.
 */
export async function runAddFromDiscovery(file: string, opts: AddFromOptions): Promise<number> {
  const detector = await loadDetector(file);
  const discovery = await loadDiscovery(opts.from);
  const names = clusterNames(opts.name);
  checkDiscoveryFits(detector, discovery, { detector: file, discovery: opts.from });
  const chosen = chosenClusters(discovery, { ...(opts.clusters ? { clusters: opts.clusters } : {}), names }, opts.from);
  const existing = new Set(detector.classes.map((c) => c.label.toLowerCase()));
  const dup = chosen.filter((c) => existing.has(c.label.toLowerCase()));
  if (dup.length > 0) {
    throw new ClipOodError("CLASSES", `the detector already has ${dup.map((c) => `"${c.label}" (cluster ${c.cluster.id}'s name)`).join(", ")}`, {
      hint: `name the cluster otherwise: --name ${dup[0]!.cluster.id}=<another name>, or leave it out with --clusters`,
    });
  }
  const bars = progress(!opts.quiet);
  const model = await openModel(opts, bars, { ...detector.model, source: file });
  const store = await openCacheStore(opts);
  let failed = 0;
  try {
    const { detector: updated, added } = await addDiscoveredClasses(
      detector,
      discovery,
      {
        clusters: chosen.map((c) => c.cluster.id),
        names: new Map(chosen.map((c) => [c.cluster.id, c.label])),
        ...(store ? { store } : {}),
        onFailure: (input, reason) => {
          failed++;
          reportFailure(input, reason, bars);
        },
      },
      model,
    );
    await saveDetector(updated, file);
    const what = added.map((a) => `${a.label} (cluster ${a.cluster}${a.shots > 0 ? `, ${plural(a.shots, "image")} as shots` : ""})`).join(", ");
    say(opts, `added ${what}: ${plural(updated.classes.length, "class", "classes")}.`);
    say(opts, `The threshold was kept${detector.threshold ? "" : " (there was none)"}; recalibrate on validation images of every class, the new ones included: clip-ood calibrate --detector ${file} --id <validation images>`);
    return failed > 0 ? 1 : 0;
  } finally {
    await store?.close();
    await model.close();
  }
}

export async function runRemoveClass(file: string, labels: string[], opts: CommonOptions): Promise<number> {
  const detector = await loadDetector(file);
  const updated = removeClasses(detector, labels);
  await saveDetector(updated, file);
  say(opts, `removed ${labels.join(", ")}: ${plural(updated.classes.length, "class", "classes")} left. The threshold was kept.`);
  return 0;
}

export async function runShow(file: string): Promise<number> {
  process.stdout.write(JSON.stringify(summarizeDetector(await loadDetector(file)), null, 2) + "\n");
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
  // Parts of one model but another dtype score slightly different embeddings: one input set cannot suit both.
  const dtypes = parts.map((p) => p.model.dtype);
  const odd = dtypes.findIndex((d) => d !== UNKNOWN_DTYPE && dtypes[0] !== UNKNOWN_DTYPE && d !== dtypes[0]);
  if (odd >= 0) {
    throw new ClipOodError("MODEL_FOLDER", `${files[0]} was fitted on ${dtypes[0]} embeddings, ${files[odd]} on ${dtypes[odd]}`, {
      hint: `fit both with the same --dtype: fp32 and q8 embeddings differ slightly, and so do scores and thresholds`,
    });
  }
  const unknown = files.filter((_, i) => dtypes[i] === UNKNOWN_DTYPE);
  if (unknown.length > 0 && unknown.length < files.length) warn(`${unknown.join(", ")} ${unknown.length === 1 ? "does" : "do"} not record a dtype; cannot check that every part was fitted on the same one`);
  let failed = 0;
  const onFailure = (input: string, reason: string) => {
    failed++;
    reportFailure(input, reason);
  };
  const scoresOf = async (specs: readonly string[]) => {
    const scores = parts.map(() => [] as number[]);
    await eachEmbedding(specs, { info: parts[0]!.model, source: files[0]! }, opts, (_input, e) => parts.forEach((p, i) => scores[i]!.push(predict(p, e).score)), onFailure);
    return scores;
  };
  const id = await scoresOf(opts.id);
  if (id[0]!.length === 0) throw new ClipOodError("INPUT", "no usable in-distribution validation data in --id", { hint: "check the paths; each unreadable file was reported above" });
  const standardizers = id.map((s, i) =>
    standardize(Float32Array.from(s), (mean) =>
      warn(`${files[i]} scores are constant on --id (every score ${+mean.toPrecision(6)}): it was probably fitted on the same images. Its scores are only centred, not scaled; give held-out validation data`),
    ),
  );
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
    ...(first.classFeaturesFrom ? { classFeaturesFrom: first.classFeaturesFrom } : {}),
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
  say(opts, `saved a combination of ${files.join(", ")} to ${opts.out}: weights ${weights.map((w) => +w.toFixed(4)).join(", ")} (${weightsFrom}), standardised on ${plural(id[0]!.length, "in-distribution input")}`);
  if (chosen) say(opts, `validation AUROC ${pct(chosen.auroc)} combined; alone: ${files.map((f, i) => `${f} ${pct(chosen.partAuroc[i]!)}`).join(", ")} (best of ${plural(chosen.tried, "weighting")})`);
  say(opts, `next: clip-ood calibrate --detector ${opts.out} --id <in-distribution validation data>`);
  return failed > 0 ? 1 : 0;
}

export function addFitCommand(program: Command, setStatus: SetStatus): void {
  const fit = withMethodOptions(withClassOptions(withCommonOptions(program.command("fit")), false))
    .description("Build a detector once — class text features, negatives, fitted statistics, settings — and save it for detect --detector and calibrate.")
    .requiredOption("-o, --out <file>", "where to save the detector (JSON, plus <file>.bin with its arrays)")
    .addHelpText("after", `
${METHODS_HELP}
Examples:
  clip-ood fit --classes cat,dog,car --out pets.json
  clip-ood fit --classes cat,dog,car --method neglabel --out pets-neg.json
  clip-ood fit --method knn --id ./train/pets --out pets-knn.json     # ./train/pets/{cat,dog,car}/*.jpg
  clip-ood fit --method ocsvm --id ./good-parts --out parts.json      # unlabelled normal images
  clip-ood fit --method linear-probe --id ./train/pets --out pets-probe.json
  clip-ood fit --method tip-adapter --id ./train/pets --out pets-tip.json   # 1+ image per class
  clip-ood fit --method knn --id train.jsonl --out pets-knn.json      # embeddings from \`embed\`: no model loaded

knn, mahalanobis, ocsvm and linear-probe use no text: on embeddings files they load no model and
record the files' model id, dtype and dimension (--model/--dtype may name, not contradict, them).
${EXIT_HELP}`);
  fit.action(async (opts: FitOptions, cmd: Command) => {
    setStatus(await runFit(opts, cmd.getOptionValueSource("templates") === "cli"));
  });
}

export function addCalibrateCommand(program: Command, setStatus: SetStatus): void {
  withCommonOptions(program.command("calibrate"))
    .description("Set a detector's threshold from validation data: keep a fraction of in-distribution inputs (--tpr), or let at most a fraction of OOD inputs through (--fpr).")
    .requiredOption("-d, --detector <file>", "the detector to calibrate (updated in place unless --out)")
    .requiredOption("--id <input>", "in-distribution validation images, a folder or an embeddings file; repeatable", collect)
    .option("--ood <input>", "out-of-distribution validation images, a folder or an embeddings file; repeatable", collect)
    .option("--tpr <rate>", "fraction of in-distribution inputs to keep (default 0.95 without --ood)", num("--tpr"))
    .option("--fpr <rate>", "fraction of OOD inputs to let through (default 0.05 with --ood)", num("--fpr"))
    .option("-o, --out <file>", "save the calibrated detector here instead")
    .addHelpText("after", `
Prints one JSON line: {detector, threshold, target, tpr, fpr, id, ood}.

Examples:
  clip-ood calibrate --detector pets.json --id ./val/pets
  clip-ood calibrate --detector pets.json --id ./val/pets --ood ./val/other --fpr 0.05
${EXIT_HELP}`)
    .action(async (opts: CalibrateOptions) => {
      setStatus(await runCalibrate(opts));
    });
}

export function addCombineCommand(program: Command, setStatus: SetStatus): void {
  withCommonOptions(program.command("combine"))
    .description("Combine saved detectors into one: a weighted sum of their scores, each standardised on in-distribution validation data.")
    .argument("<detectors...>", "two or more detector files made for the same model")
    .requiredOption("--id <input>", "in-distribution validation images, a folder or an embeddings file, to standardise each score; repeatable", collect)
    .option("--ood <input>", "OOD validation images or embeddings: choose the weights with the best validation AUROC (grid search); repeatable", collect)
    .option("--weights <list>", "one weight per detector, comma-separated (default: chosen on --ood data if given, otherwise equal)")
    .requiredOption("-o, --out <file>", "where to save the combined detector (then calibrate it)")
    .addHelpText("after", `
Each part's score is standardised on the --id data, then summed with the weights. With --ood, the
weights are the point of a grid on the simplex (steps of 0.05 for two parts, coarser for more; each
part alone included) whose sum separates --id from --ood best by AUROC, ties going to the most even
weights. The combined label is the first detector's: list the one whose labels you want first.
A part whose --id scores are constant (e.g. knn given its own fitting images) is only centred, not
scaled, with a warning: standardise on held-out data. Parts of different models or dtypes are refused.
Prints one JSON line: {detector, parts, weights, weightsFrom: given|validation|equal, id, and with
--ood: ood, validationAuroc, partAuroc, tried}.

Example, a zero-shot detector fused with a few-shot one:
  clip-ood combine mcm.json knn.json --id ./val/pets --ood ./val/other --out hybrid.json
${EXIT_HELP}`)
    .action(async (files: string[], opts: CombineOptions) => {
      setStatus(await runCombine(files, opts));
    });
}

/** --clusters 1,3: distinct cluster ids from 1. */
function clusterIds(v: string): number[] {
  const ids = v.split(",").map((x) => x.trim()).filter(Boolean).map(Number);
  if (ids.length === 0 || ids.some((x) => !Number.isInteger(x) || x < 1)) throw new InvalidArgumentError("--clusters must be cluster ids from 1, comma-separated, e.g. 1,3");
  return [...new Set(ids)];
}

export function addDetectorCommand(program: Command, setStatus: SetStatus): void {
  const detectorCmd = program.command("detector").description("Inspect a saved detector or change its class list (open world).");
  withCommonOptions(detectorCmd.command("add-class"))
    .description("Add classes, encoding only their prompts with the detector's templates; or add the clusters `clip-ood discover` found (--from). The threshold is kept.")
    .argument("<detector>", "detector file")
    .argument("[labels...]", "class names to add (none with --from)")
    .option("--describe <text>", "a description prompt for the added class (repeatable)", collect, [] as string[])
    .option("--from <discovery.json>", "add clusters of a discovery (from `clip-ood discover --out`) made against this detector")
    .option("--clusters <ids>", "with --from: the clusters to add, comma-separated (default: all)", clusterIds)
    .option("--name <id=name>", "with --from: the class name of a cluster (default: its best candidate name); repeatable", collect, [] as string[])
    .addHelpText("after", `
With --from, each chosen cluster becomes a class named by its best candidate name or --name, and
few-shot detectors (knn, mahalanobis) also take the cluster's images as shots: knn's bank gains them,
mahalanobis gains their mean and keeps its covariance. ocsvm, the learned heads and combinations are
refused: refit them with the new classes' images. A discovery made with another model or dtype, or
against another detector, is refused; calibrating a detector or adding classes to it does not change
which discoveries fit it, so clusters can be added a few at a time.

Examples:
  clip-ood detector add-class pets.json fox
  clip-ood detector add-class pets.json --from discovery.json --clusters 1,3 --name 1=fox
Then recalibrate: clip-ood calibrate --detector pets.json --id <validation images of every class>
${EXIT_HELP}`)
    .action(async (file: string, labels: string[], opts: CommonOptions & { describe: string[]; from?: string; clusters?: number[]; name: string[] }) => {
      if (opts.from === undefined) {
        if (opts.clusters !== undefined || opts.name.length > 0) throw new ClipOodError("USAGE", "--clusters and --name apply to --from only", { hint: "add clusters with --from discovery.json --clusters 1,3 --name 1=fox" });
        if (labels.length === 0) throw new ClipOodError("USAGE", "name the classes to add, or give --from discovery.json", { hint: "e.g. clip-ood detector add-class pets.json fox" });
        setStatus(await runAddClass(file, labels, opts));
        return;
      }
      if (labels.length > 0 || opts.describe.length > 0) {
        throw new ClipOodError("USAGE", `--from adds the discovery's clusters; ${labels.length > 0 ? `the class names ${labels.join(", ")}` : "--describe"} cannot go with it`, {
          hint: "name clusters with --name <id>=<name>, or add plain classes in a separate add-class",
        });
      }
      setStatus(await runAddFromDiscovery(file, { ...opts, from: opts.from }));
    });
  detectorCmd
    .command("remove-class")
    .description("Remove classes by label; nothing is re-encoded and the threshold is kept.")
    .argument("<detector>", "detector file")
    .argument("<labels...>", "class names to remove")
    .option("-q, --quiet", "no notes on stderr")
    .action(async (file: string, labels: string[], opts: CommonOptions) => {
      setStatus(await runRemoveClass(file, labels, opts));
    });
  detectorCmd
    .command("show")
    .description("Print a detector as JSON: method, settings, model (id, dtype, dimension), classes with their synonyms and descriptions, what fitting chose (k, C and its cross-validation, α, β, ν, γ, shrinkage, epochs), combined parts, and the threshold with its calibration rates and counts.")
    .argument("<detector>", "detector file")
    .action(async (file: string) => {
      setStatus(await runShow(file));
    });
}
