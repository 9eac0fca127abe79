/**
 * clip-ood eval: methods (or saved detectors) × OOD sets → the OOD metrics as a table, JSON Lines or
 * CSV, and optionally an HTML report and chart files.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import type { ClipModel } from "../clip.js";
import { ClipOodError } from "../errors.js";
import type { Matrix } from "../maths/vectors.js";
import { writePlots } from "../eval/plots.js";
import { writeReport } from "../eval/report.js";
import { evaluate, evaluateShots } from "../eval/run.js";
import type { EvaluateOptions } from "../eval/run.js";
import { evalRows } from "../eval/evaluate.js";
import type { EvalRow, NamedDetector } from "../eval/evaluate.js";
import { DEFAULT_SEEDS } from "../eval/shots.js";
import type { EvalResult, FprConvention, ShotsRow } from "../eval/types.js";
import { classesFromLabels, readDataset } from "../io/datasets.js";
import { DETECTOR_METHODS, isFewShot } from "../ood/detector.js";
import type { DetectorMethod } from "../ood/detector.js";
import { loadDetector } from "../ood/detector-file.js";
import { loadClasses } from "../text/classes.js";
import { extensionsOf, format, openCacheStore, openModel, say, warn } from "./commands.js";
import { checkLabelledForHeads, embedFitData, embedOutlierImages, fitDetector, prepareFromOptions } from "./build-detector.js";
import { methodOptionsFor } from "./method-options.js";
import type { MethodOptions } from "./method-options.js";
import { rowWriter } from "./output.js";
import { progress } from "./progress.js";
import { queueMissing, queueStore } from "./queue-commands.js";
import type { QueueCommandOptions } from "./queue-commands.js";

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
  /** Few-shot curves: examples per class, ascending (parsed by main.ts). */
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
  const needsModel = methods.length > 0 || [idSet, ...oodSets.map((o) => o.dataset)].some((d) => !d.embeddings);
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
      say(opts, `the workers embedded ${run.queued - run.failures.length} images (${run.alreadyStored} were stored already)`);
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
        if (shots && isFewShot(method)) {
          // Every fitted method takes the same --fit data and classes, so it is embedded for the first only.
          fitData ??= await embedFitData(fit ?? [], classes, model!, perMethod[i]!);
          checkLabelledForHeads(method, fitData.labelled);
          const outliers = await embedOutlierImages(perMethod[i]!, model!);
          fewShot.push({ name: method, detector: await prepareFromOptions(perMethod[i]!, templatesGiven, model!, bars, fitData.classes), ...(outliers ? { outliers } : {}) });
        } else {
          detectors.push({ name: method, detector: await fitDetector(perMethod[i]!, templatesGiven, model!, bars, classes) });
        }
      }
    }
    detectors.push(...fileDetectors);
    const evalOptions: EvaluateOptions = {
      id: { name: opts.id, dataset: idSet },
      ood: oodSets,
      detectors,
      convention: opts.fprConvention,
      ...(store ? { store } : {}),
      onProgress: (set, done, total) => bars.count(`embedding ${set}`, done, total),
      onFailure: (input, reason) => {
        failed++;
        bars.stop();
        process.stderr.write(`failed ${input}: ${reason}\n`);
      },
      onWarning: (message) => warn(message, bars),
    };
    const seeds = opts.seeds ?? DEFAULT_SEEDS;
    if (shots) say(opts, `few-shot curves: ${fewShot.map((d) => d.name).join(", ")} at ${shots.join(", ")} shots per class × ${seeds} seed${seeds === 1 ? "" : "s"}`);
    const result: EvalResult =
      shots && fitData
        ? await evaluateShots(model, { ...evalOptions, fewShot, fitData, shots, seeds, onDraw: (done, total) => bars.count("fitting draws", done, total) })
        : await evaluate(model, evalOptions);
    bars.stop();
    if (result.embedding) say(opts, `image embeddings: ${result.embedding.computed} computed, ${result.embedding.fromStore} from the store`);
    const fmt = format(opts);
    const oodWidth = Math.max(7, ...oodSets.map((o) => o.name.length));
    if (result.shots) {
      const width = Math.max(6, ...result.shots.rows.map((r) => r.method.length));
      const out = rowWriter(fmt, process.stdout, SHOTS_HEADER, [width, 5, oodWidth, 7, 6, 7, 6, 8, 8, 9, 9, 7, 7, 10, 6, 6, 7, 6]);
      for (const r of result.shots.rows) out.row(shotsCellsOf(r), shotsJson(r));
    } else {
      const width = Math.max(6, ...result.methods.map((m) => m.method.length));
      const out = rowWriter(fmt, process.stdout, HEADER, [width, oodWidth, 7, 7, 8, 9, 7, 10, 6, 6]);
      for (const r of evalRows(result)) out.row(cellsOf(r), { ...r });
    }
    if (opts.report) {
      await writeReport(result, opts.report);
      say(opts, `report: ${opts.report}`);
    }
    if (opts.plots) {
      const files = await writePlots(result, opts.plots);
      say(opts, `${files.length} chart files in ${opts.plots}`);
    }
    if (failed > 0) process.stderr.write(`${failed} inputs could not be used (see above); the metrics cover the others.\n`);
    return failed > 0 ? 1 : 0;
  } finally {
    await store?.close();
    await model?.close();
  }
}
