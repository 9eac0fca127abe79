/**
 * clip-ood eval: methods (or saved detectors) × OOD sets → the OOD metrics as a table, JSON Lines or
 * CSV, and optionally an HTML report and chart files.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { InvalidArgumentError, Option } from "commander";
import type { Command } from "commander";
import type { ClipModel } from "../../clip.js";
import { ClipOodError } from "../../errors.js";
import { FPR_CONVENTIONS } from "../../maths/metrics.js";
import type { FprConvention } from "../../maths/metrics.js";
import type { Matrix } from "../../maths/vectors.js";
import { writePlots } from "../../eval/plots.js";
import { writeReport } from "../../eval/report.js";
import { evaluate, evaluateShots } from "../../eval/run.js";
import type { EvaluateOptions } from "../../eval/run.js";
import { evalRows } from "../../eval/evaluate.js";
import type { EvalRow, NamedDetector } from "../../eval/evaluate.js";
import { DEFAULT_SEEDS } from "../../eval/shots.js";
import type { EvalResult, ShotsRow } from "../../eval/types.js";
import { classesFromLabels, readDataset } from "../../eval/datasets.js";
import { DETECTOR_METHODS, isFewShot } from "../../ood/detector.js";
import type { DetectorMethod } from "../../ood/detector.js";
import { loadDetector } from "../../ood/detector-file.js";
import { loadClasses } from "../../text/classes.js";
import { extensionsOf, format, openCacheStore, openModel, reportFailure, say, warn, warnConstantScore } from "../commands.js";
import { checkLabelledForHeads, embedFitData, embedOutlierImages, fitDetector, fitsWithoutModel, fitWithoutModel, prepareFromFiles, prepareFromOptions } from "../build-detector.js";
import { checkFitData, methodOptionsFor, METHODS_HELP, withMethodSettings } from "../method-options.js";
import type { MethodOptions } from "../method-options.js";
import { columnWidths, plural, rowWriter } from "../output.js";
import { progress } from "../progress.js";
import { queueMissing, queueStore } from "./queue-commands.js";
import type { QueueCommandOptions } from "./queue-commands.js";
import { EXIT_HELP } from "../exit.js";
import { collect, int, withClassOptions, withCommonOptions, withFormatOptions, withQueueBatchOptions } from "../options.js";
import type { SetStatus } from "../options.js";

export interface EvalCommandOptions extends Omit<MethodOptions, "method" | "id">, QueueCommandOptions {
  queue?: boolean;
  id: string;
  ood: string[];
  methods?: string;
  detector?: string[];
  fit?: string[];
  fprConvention: FprConvention;
  report?: string;
  plots?: string;
  /** Few-shot curves: examples per class, ascending (parsed by shotsList). */
  shots?: number[];
  seeds?: number;
}

/** `name=set`, or a bare set named after its file or folder. */
export function parseOodArg(arg: string): { name: string; spec: string } {
  const eq = existsSync(arg) ? -1 : arg.indexOf("=");
  const [name, spec] = eq >= 0 ? [arg.slice(0, eq).trim(), arg.slice(eq + 1).trim()] : [path.basename(arg.replace(/[\\/]+$/, "")).replace(/\.[^.]+$/, ""), arg];
  if (!name || !spec) throw new ClipOodError("USAGE", `--ood ${arg}: expected name=<set>`, { hint: "e.g. --ood textures=./dtd" });
  return { name, spec };
}

function parseMethods(list: string): DetectorMethod[] {
  const methods = list.split(",").map((m) => m.trim()).filter(Boolean);
  if (methods.length === 0) throw new ClipOodError("USAGE", "--methods is empty", { hint: "e.g. --methods mcm,energy,neglabel" });
  for (const m of methods) {
    if (!(DETECTOR_METHODS as readonly string[]).includes(m) || m === "combo") {
      throw new ClipOodError("USAGE", `unknown method "${m}" in --methods`, { hint: `choose from ${DETECTOR_METHODS.filter((x) => x !== "combo").join(", ")}; combined detectors go in with --detector` });
    }
  }
  if (new Set(methods).size !== methods.length) throw new ClipOodError("USAGE", `--methods names a method twice: ${list}`, { hint: "name each method once" });
  return methods as DetectorMethod[];
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "-" : (100 * x).toFixed(2));

const HEADER = ["method", "ood", "AUROC%", "FPR95%", "AUPR-In%", "AUPR-Out%", "DetAcc%", "threshold", "n_id", "n_ood", "IDacc%"];

function cellsOf(r: EvalRow): string[] {
  return [r.method, r.ood, pct(r.auroc), pct(r.fpr95), pct(r.auprIn), pct(r.auprOut), pct(r.detectionAccuracy), r.threshold.toPrecision(6), String(r.n.id), String(r.n.ood), pct(r.idAccuracy)];
}

/** --shots: a shots column, and each metric followed by its standard deviation over the seeds. */
const SHOTS_HEADER = ["method", "shots", "ood", "AUROC%", "AUROC±", "FPR95%", "FPR95±", "AUPR-In%", "AUPR-In±", "AUPR-Out%", "AUPR-Out±", "DetAcc%", "DetAcc±", "threshold", "n_id", "n_ood", "IDacc%", "IDacc±", "seeds"];

function shotsCellsOf(r: ShotsRow): string[] {
  const d = r.std;
  return [
    r.method, r.shots === null ? "-" : String(r.shots), r.ood,
    pct(r.auroc), pct(d?.auroc), pct(r.fpr95), pct(d?.fpr95), pct(r.auprIn), pct(d?.auprIn), pct(r.auprOut), pct(d?.auprOut), pct(r.detectionAccuracy), pct(d?.detectionAccuracy),
    r.threshold.toPrecision(6), String(r.n.id), String(r.n.ood), pct(r.idAccuracy), pct(d?.idAccuracy), r.seeds === null ? "-" : String(r.seeds),
  ];
}

/** A --shots row for JSON Lines, in the order the help lists its fields. */
function shotsJson(r: ShotsRow): Record<string, unknown> {
  const { method, shots, ood, seeds, n, std, ...metrics } = r;
  return { method, shots, ood, ...metrics, n, seeds, std };
}

/** --shots and --seeds are refused where they would change nothing. */
function checkShotsOptions(opts: EvalCommandOptions, methods: readonly DetectorMethod[]): void {
  if (opts.seeds !== undefined && opts.shots === undefined) throw new ClipOodError("USAGE", "--seeds applies to --shots only", { hint: "e.g. --shots 1,2,4,8,16 --seeds 3" });
  if (opts.shots === undefined) return;
  if (!methods.some(isFewShot) || !opts.fit?.length) {
    throw new ClipOodError("USAGE", "--shots draws fitting examples from --fit for the methods fitted on it, and there are none", {
      hint: "e.g. --methods mcm,linear-probe --fit ./train --shots 1,2,4,8,16",
    });
  }
}

export async function runEval(opts: EvalCommandOptions, templatesGiven = true): Promise<number> {
  const methods = opts.methods !== undefined ? parseMethods(opts.methods) : opts.detector?.length ? [] : (["mcm"] as DetectorMethod[]);
  checkFitData("eval", methods, opts.fit, "--fit");
  checkShotsOptions(opts, methods);
  const oodArgs = opts.ood.map(parseOodArg);
  if (oodArgs.length === 0) throw new ClipOodError("USAGE", "eval needs at least one --ood name=<set>", { hint: "e.g. --ood textures=./dtd --ood places=./places.txt" });
  const extensions = extensionsOf(opts);
  const idSet = await readDataset(opts.id, { extensions });
  const oodSets = await Promise.all(oodArgs.map(async (o) => ({ name: o.name, dataset: await readDataset(o.spec, { extensions }) })));
  const fileDetectors: NamedDetector[] = [];
  for (const file of opts.detector ?? []) {
    const base = path.basename(file).replace(/\.json$/i, "");
    const name = fileDetectors.some((d) => d.name === base) || methods.includes(base as DetectorMethod) ? file : base;
    fileDetectors.push({ name, detector: await loadDetector(file) });
  }
  // --id names the evaluated ID set here; the few-shot methods' fitting data comes from --fit.
  const { id: _idSet, fit, shots, seeds: _seeds, ...settings } = opts;
  const perMethod = methods.map((m) => methodOptionsFor(m, { ...settings, id: fit }, methods));
  // Like fit, eval loads no model when nothing needs one: every set an embeddings file, and every
  // method one fitted on embeddings files alone (knn, mahalanobis, ocsvm, linear-probe with --fit files).
  const withoutModel = perMethod.every(fitsWithoutModel) && [idSet, ...oodSets.map((o) => o.dataset)].every((d) => d.embeddings);
  const needsModel = !withoutModel;
  const bars = progress(!opts.quiet);
  const first = fileDetectors[0];
  const fallback = first ? { ...first.detector.model, source: opts.detector![0]! } : undefined;
  let model: ClipModel | undefined;
  // --queue: the images are embedded by workers on the PostgreSQL store first, then read from it.
  const queued = opts.queue ? await queueStore(opts, "eval --queue") : undefined;
  const store = queued?.store ?? (await openCacheStore(opts));
  let failed = 0;
  try {
    model = needsModel ? await openModel(opts, bars, fallback) : undefined;
    if (queued && model) {
      const fitSets = await Promise.all((fit ?? []).map((spec) => readDataset(spec, { extensions })));
      const files = [idSet, ...oodSets.map((o) => o.dataset), ...fitSets].flatMap((d) => d.images.map((i) => i.input));
      const run = await queueMissing(queued.store, queued.url, model, [...new Set(files)], { ...opts, wait: true }, bars);
      // Images no worker could embed are tried here once more, and reported with the other failures.
      say(opts, `the workers embedded ${plural(run.queued - run.failures.length, "image")} (${plural(run.alreadyStored, "was", "were")} stored already)`);
    }
    const detectors: NamedDetector[] = [];
    // --shots: the few-shot methods are prepared once here and fitted on each draw by evaluateShots.
    const fewShot: (NamedDetector & { outliers?: Matrix })[] = [];
    let fitData: Awaited<ReturnType<typeof embedFitData>> | undefined;
    if (methods.length > 0) {
      const classes = opts.classes !== undefined ? await loadClasses(opts.classes) : classesFromLabels([idSet]);
      for (const [i, method] of methods.entries()) {
        if (!classes && !isFewShot(method)) {
          throw new ClipOodError("USAGE", "eval needs class names for --methods", { hint: "pass --classes, or give --id a folder with one sub-folder per class" });
        }
        say(opts, `building ${method}`);
        if (shots && isFewShot(method) && !model) {
          // Without a model each method's files are read for it (as fit reads them); the draws come from the first's.
          const read = await prepareFromFiles(perMethod[i]!, classes, "--fit");
          fitData ??= read.data;
          checkLabelledForHeads(method, read.data.labelled);
          fewShot.push({ name: method, detector: read.prepared, ...(read.outliers ? { outliers: read.outliers } : {}) });
        } else if (shots && isFewShot(method)) {
          // Every fitted method takes the same --fit data and classes, so it is embedded for the first only.
          fitData ??= await embedFitData(fit ?? [], classes, model!, perMethod[i]!, "--fit");
          checkLabelledForHeads(method, fitData.labelled);
          const outliers = await embedOutlierImages(perMethod[i]!, model!);
          fewShot.push({ name: method, detector: await prepareFromOptions(perMethod[i]!, templatesGiven, model!, bars, fitData.classes), ...(outliers ? { outliers } : {}) });
        } else {
          const detector = model ? await fitDetector(perMethod[i]!, templatesGiven, model, bars, classes, "--fit") : await fitWithoutModel(perMethod[i]!, classes, "--fit");
          detectors.push({ name: method, detector });
        }
      }
    }
    detectors.push(...fileDetectors);
    for (const d of detectors) warnConstantScore(d.detector, bars);
    const evalOptions: EvaluateOptions = {
      id: { name: opts.id, dataset: idSet },
      ood: oodSets,
      detectors,
      convention: opts.fprConvention,
      ...(store ? { store } : {}),
      onProgress: (set, done, total) => bars.count(`embedding ${set}`, done, total),
      onFailure: (input, reason) => {
        failed++;
        reportFailure(input, reason, bars);
      },
      onWarning: (message) => warn(message, bars),
    };
    const seeds = opts.seeds ?? DEFAULT_SEEDS;
    if (shots) say(opts, `few-shot curves: ${fewShot.map((d) => d.name).join(", ")} at ${shots.join(", ")} shots per class × ${plural(seeds, "seed")}`);
    const result: EvalResult =
      shots && fitData
        ? await evaluateShots(model, { ...evalOptions, fewShot, fitData, shots, seeds, onDraw: (done, total) => bars.count("fitting draws", done, total) })
        : await evaluate(model, evalOptions);
    bars.stop();
    if (result.embedding) say(opts, `image embeddings: ${result.embedding.computed} computed, ${result.embedding.fromStore} from the store`);
    const fmt = format(opts);
    // Every row is known here, so each column is as wide as its widest cell (a threshold such as -2.43508e-8 included).
    const table = result.shots
      ? { header: SHOTS_HEADER, rows: result.shots.rows.map((r) => ({ cells: shotsCellsOf(r), json: shotsJson(r) })) }
      : { header: HEADER, rows: evalRows(result).map((r) => ({ cells: cellsOf(r), json: { ...r } })) };
    const out = rowWriter(fmt, process.stdout, table.header, columnWidths([table.header, ...table.rows.map((r) => r.cells)]));
    for (const r of table.rows) out.row(r.cells, r.json);
    if (opts.report) {
      await writeReport(result, opts.report);
      say(opts, `report: ${opts.report}`);
    }
    if (opts.plots) {
      const files = await writePlots(result, opts.plots);
      say(opts, `${plural(files.length, "chart file")} in ${opts.plots}`);
    }
    if (failed > 0) process.stderr.write(`${plural(failed, "input")} could not be used (see above); the metrics cover the others.\n`);
    return failed > 0 ? 1 : 0;
  } finally {
    await store?.close();
    await model?.close();
  }
}

/** A comma-separated list of distinct positive integers, ascending (--shots 1,2,4,8,16). */
function shotsList(v: string): number[] {
  const items = v.split(",").map((x) => x.trim()).filter(Boolean);
  const n = items.map(Number);
  if (n.length === 0 || n.some((x) => !Number.isInteger(x) || x < 1)) throw new InvalidArgumentError("--shots must be positive integers, comma-separated, e.g. 1,2,4,8,16");
  if (new Set(n).size !== n.length) throw new InvalidArgumentError("--shots names a count twice");
  return n.sort((a, b) => a - b);
}

export function addEvalCommand(program: Command, setStatus: SetStatus): void {
  const evalCmd = withFormatOptions(withMethodSettings(withClassOptions(withCommonOptions(program.command("eval")), false)))
    .description("Measure OOD detection: methods or saved detectors × OOD sets → AUROC, FPR@95TPR, AUPR-In/Out, detection accuracy, ID accuracy; an HTML report with plots.")
    .requiredOption("--id <set>", "in-distribution test set (see Sets below)")
    .option("--ood <name=set>", "an OOD test set and its name; repeatable", collect, [] as string[])
    .option("--methods <list>", `OOD methods to compare, comma-separated (default mcm): ${DETECTOR_METHODS.filter((m) => m !== "combo").join(", ")}`)
    .option("-d, --detector <file>", "also evaluate a saved detector (from fit, calibrate or combine); repeatable", collect)
    .option("--fit <set>", "fitted methods (mahalanobis, knn, ocsvm and the learned heads): in-distribution training data to fit on (not the --id test set); repeatable", collect)
    .option("--shots <list>", "few-shot curves: fit the --fit methods on k examples per class for each k, e.g. 1,2,4,8,16 (see Few-shot curves below)", shotsList)
    .option("--seeds <n>", `with --shots: draws per shot count, seeds 0…n−1 (default ${DEFAULT_SEEDS})`, int("--seeds"))
    .addOption(new Option("--fpr-convention <c>", "FPR@95TPR as the CLIP-OOD papers' code (hendrycks: ID positive) or OpenOOD v1.5 (openood: OOD positive)").choices([...FPR_CONVENTIONS]).default("hendrycks"))
    .option("--report <file.html>", "write a self-contained HTML report: metric table, ROC curves, score histograms, worst errors as thumbnails")
    .option("--plots <dir>", "write every chart as SVG and PNG into this folder")
    .option("--queue", "PostgreSQL stores: have `clip-ood worker` processes embed the sets' images first, wait for them, then score");
  withQueueBatchOptions(evalCmd)
    .addHelpText("after", `
Sets (--id, --ood, --fit): a folder of class folders (labels = folder names), a flat folder or glob,
a list file (.txt/.lst: \`path [label]\` per line, relative to the list), a CSV/TSV with a path column
(path/file/image/input) and an optional label column (label/class/target), or an embeddings file
(.jsonl/.npy from \`clip-ood embed\` or \`clip-ood export\`). Labels are class names or class indices.
Classes default to the --id set's class folders (or labels). Images are embedded through the store:
rerunning with other methods embeds nothing again. With --queue (a postgres:// store) the images the
store lacks are embedded by \`clip-ood worker\` processes first, with one progress bar over all of them.
When every set is an embeddings file and every method uses no text (knn, mahalanobis, ocsvm,
linear-probe, with --fit embeddings files), no model is loaded or downloaded.

Metrics (in-distribution is the positive class; docs/EVALUATION.md): AUROC (ties count ½), FPR at 95%
TPR (closest to 95% recall, ties grouped, as MCM/NegLabel; --fpr-convention openood: OpenOOD v1.5's
OOD-positive rate), AUPR-In and AUPR-Out (OpenOOD: trapezoidal area under the PR curve), detection
accuracy max ½(TPR + TNR), the threshold FPR95 was read at, and ID top-1 accuracy when --id has labels.
One row per method and OOD set, plus each method's unweighted average over the OOD sets. --json prints
{method, ood, auroc, fpr95, auprIn, auprOut, detectionAccuracy, threshold, n: {id, ood}, idAccuracy}
per row, metrics as fractions; the table shows percentages.

Few-shot curves (--shots, with --fit and a method fitted on it): the --fit data is embedded once; for
each k and seed 0…n−1 (--seeds, default ${DEFAULT_SEEDS}) k examples per class are drawn from it (seeded,
stratified, a seed's smaller draws inside its larger ones) and every fitted method is fitted on them and
evaluated. A class with fewer than k examples is an error. Methods that take no fitting data are
evaluated once. Rows gain a shots column (null/"-" for those evaluated once) and the number of seeds;
each metric is the mean over the seeds, and --json adds std: {auroc, fpr95, auprIn, auprOut,
detectionAccuracy, threshold, idAccuracy}, the sample standard deviations (n − 1; 0 with one seed;
null when evaluated once); the table and CSV add a ± column after each metric. --report and --plots
add AUROC (averaged over the OOD sets) and ID accuracy against shots; their other charts show each
fitted method at the largest k, seed 0.

${METHODS_HELP}
Examples:
  clip-ood eval --id ./val --ood textures=./dtd --ood places=places.txt --methods mcm,energy,neglabel
  clip-ood eval --id ./val --ood dtd=./dtd --methods mcm,knn --fit ./train --report report.html
  clip-ood eval --id val.jsonl --ood dtd=dtd.jsonl --detector pets.json --json
  clip-ood eval --id val.jsonl --ood dtd=dtd.jsonl --methods knn --fit train.npy --k 1000   # no model loaded
  clip-ood eval --id ./val --ood dtd=./dtd --methods mcm,linear-probe --fit ./train --shots 1,2,4,8,16 --plots curves/
${EXIT_HELP}`)
    .action(async (opts: EvalCommandOptions, cmd: Command) => {
      setStatus(await runEval(opts, cmd.getOptionValueSource("templates") === "cli"));
    });
}
