/**
 * Evaluation over embedded sets: every detector scores the ID set and each OOD set, then the metrics
 * of METHODS.md §9 are computed per OOD set and averaged (unweighted, as the papers report). No I/O:
 * embedding the sets is run.ts's job.
 */
import { ClipOodError } from "../errors.js";
import { meanMetrics, oodMetrics } from "../maths/metrics.js";
import type { FprConvention, OodMetrics } from "../maths/metrics.js";
import type { Matrix } from "../maths/vectors.js";
import { predictBatch } from "../ood/detector.js";
import type { Detector } from "../ood/detector.js";
import type { ClassSpec } from "../text/classes.js";
import type { EvalResult, MethodResult, ScoredSample } from "./types.js";

/** A set's unit embeddings, one row per input that could be embedded. */
export interface EmbeddedSet {
  name: string;
  inputs: string[];
  /** Class labels (names or indices) where the set carries them. */
  labels: (string | undefined)[];
  embeddings: Matrix;
  /** For image sets: rows computed by the model now, and rows read from the embedding store. */
  embedded?: { computed: number; fromStore: number };
  /** Per-row local (patch) features, for detectors that need them (glmcm). */
  local?: Matrix[];
}

export interface NamedDetector {
  name: string;
  detector: Detector;
}

/**
 * The class a set's label names: a class label or synonym (case-insensitive), else an integer index
 * into the class list (OpenOOD's image lists give indices). undefined when it names none.
 */
export function classOfLabel(classes: readonly ClassSpec[], label: string): number | undefined {
  const key = label.trim().toLowerCase();
  const byName = classes.findIndex((c) => c.label.toLowerCase() === key || c.names.some((n) => n.toLowerCase() === key));
  if (byName >= 0) return byName;
  const index = /^\d+$/.test(key) ? Number(key) : NaN;
  return index < classes.length ? index : undefined;
}

/**
 * Every row of a set scored by one detector, in input order; labels resolved to class names where they
 * match. The whole set goes to `predictBatch` at once, so KNN searches its bank with batched queries.
 */
export async function scoreSet(detector: Detector, set: EmbeddedSet): Promise<ScoredSample[]> {
  const detections = await predictBatch(detector, set.embeddings, set.local ? { local: set.local } : {});
  return detections.map((d, i) => {
    const raw = set.labels[i];
    const cls = raw === undefined ? undefined : classOfLabel(detector.classes, raw);
    const label = raw === undefined ? undefined : cls === undefined ? raw : detector.classes[cls]!.label;
    return { input: set.inputs[i]!, score: d.score, predicted: d.label, ...(label === undefined ? {} : { label }) };
  });
}

/** Top-1 accuracy over the samples whose label is one of the classes; null when none is. */
export function idAccuracy(samples: readonly ScoredSample[], classes: readonly ClassSpec[]): number | null {
  const known = new Set(classes.map((c) => c.label));
  const labelled = samples.filter((s) => s.label !== undefined && known.has(s.label));
  if (labelled.length === 0) return null;
  return labelled.filter((s) => s.predicted === s.label).length / labelled.length;
}

function scoresOf(samples: readonly ScoredSample[]): Float64Array {
  return Float64Array.from(samples, (s) => s.score);
}

export async function evaluateMethod(named: NamedDetector, id: EmbeddedSet, oods: readonly EmbeddedSet[], convention: FprConvention): Promise<MethodResult> {
  const idSamples = await scoreSet(named.detector, id);
  const idScores = scoresOf(idSamples);
  const sets = [];
  for (const set of oods) {
    const samples = await scoreSet(named.detector, set);
    sets.push({ ood: set.name, metrics: oodMetrics(idScores, scoresOf(samples), convention), n: { id: idSamples.length, ood: samples.length }, samples });
  }
  return { method: named.name, id: idSamples, sets, average: meanMetrics(sets.map((s) => s.metrics)), idAccuracy: idAccuracy(idSamples, named.detector.classes) };
}

/** Every detector against every OOD set. Names must be unique: they key the report's tables and charts. */
export async function evaluateEmbedded(
  detectors: readonly NamedDetector[],
  id: EmbeddedSet,
  oods: readonly EmbeddedSet[],
  o: { model: string; idSet: string; convention?: FprConvention },
): Promise<EvalResult> {
  if (detectors.length === 0) throw new ClipOodError("USAGE", "nothing to evaluate", { hint: "give --methods mcm,energy,… or --detector <file>" });
  if (oods.length === 0) throw new ClipOodError("USAGE", "no OOD set", { hint: "give at least one --ood name=<set>" });
  const seen = new Set<string>();
  for (const d of [...detectors.map((x) => x.name), ...oods.map((x) => `ood:${x.name}`)]) {
    if (seen.has(d)) throw new ClipOodError("USAGE", `"${d.replace(/^ood:/, "")}" is named twice`, { hint: "give each method, detector and OOD set its own name" });
    seen.add(d);
  }
  for (const set of [id, ...oods]) {
    if (set.embeddings.rows === 0) {
      throw new ClipOodError("INPUT", `the ${set === id ? "ID" : "OOD"} set ${set.name} has no usable inputs`, { hint: "check its path; each unreadable file was reported above" });
    }
  }
  const convention = o.convention ?? "hendrycks";
  const imageSets = [id, ...oods].filter((s) => s.embedded !== undefined).map((s) => s.name);
  const methods: MethodResult[] = [];
  for (const d of detectors) methods.push(await evaluateMethod(d, id, oods, convention));
  return { model: o.model, idSet: o.idSet, convention, methods, imageSets, createdAt: new Date().toISOString() };
}

/** One line of eval's JSON output: a method against one OOD set, or its average (`ood: "average"`). */
export interface EvalRow extends OodMetrics {
  method: string;
  ood: string;
  n: { id: number; ood: number };
  idAccuracy: number | null;
}

/** The result as rows, each method's OOD sets in order and then its average (which counts every OOD input). */
export function evalRows(result: EvalResult): EvalRow[] {
  return result.methods.flatMap((m) => [
    ...m.sets.map((s) => ({ method: m.method, ood: s.ood, ...s.metrics, n: s.n, idAccuracy: m.idAccuracy })),
    { method: m.method, ood: "average", ...m.average, n: { id: m.id.length, ood: m.sets.reduce((a, s) => a + s.n.ood, 0) }, idAccuracy: m.idAccuracy },
  ]);
}
