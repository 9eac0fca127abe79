/**
 * Few-shot curves (eval --shots): seeded, stratified draws of k fitting examples per class, and the
 * aggregation of the draws' metrics into mean ± standard deviation over the seeds. Pure: embedding the
 * fitting data (once) and fitting each draw are the CLI's job.
 */
import { ClipOodError } from "../errors.js";
import type { OodMetrics } from "../maths/metrics.js";
import { mulberry32 } from "../maths/random.js";
import { evalRows } from "./evaluate.js";
import type { EvalResult, RowMetrics, ShotsRow } from "./types.js";

/** The seeds eval --shots draws with when --seeds is not given: seeds 0, 1, 2. */
export const DEFAULT_SEEDS = 3;

/**
 * The row indices (ascending) of a draw of `shots` rows from every class of `labels` (class indices
 * 0..classNames.length−1). Each class's rows are shuffled by one generator seeded with `seed`, and the
 * draw is the first `shots` of each, so for one seed a smaller draw is part of every larger one: a curve
 * then moves only by what the extra examples add, not by a fresh sample at every point.
 *
 * A class with fewer rows than `shots` is refused rather than drawn short: the point would be plotted
 * at a shot count it does not have.
 */
export function drawShots(labels: Int32Array, shots: number, seed: number, classNames: readonly string[]): Int32Array {
  if (!Number.isInteger(shots) || shots < 1) {
    throw new ClipOodError("USAGE", `shots must be a whole number ≥ 1, got ${shots}`, { hint: "e.g. --shots 1,2,4,8,16" });
  }
  const byClass: number[][] = classNames.map(() => []);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (c < 0 || c >= byClass.length) {
      throw new ClipOodError("INPUT", `fitting row ${i} has class index ${c}, outside 0..${byClass.length - 1}`, { hint: "label every fitting example with one of the classes" });
    }
    byClass[c]!.push(i);
  }
  const short = byClass.findIndex((rows) => rows.length < shots);
  if (short >= 0) {
    const have = byClass[short]!.length;
    throw new ClipOodError("INPUT", `--shots ${shots}: class "${classNames[short]}" has only ${have} fitting example${have === 1 ? "" : "s"} in --fit`, {
      hint: have > 0 ? `keep every --shots value at most ${Math.min(...byClass.map((r) => r.length))}, or add fitting images of that class` : "give every class fitting images, or leave the class out with --classes",
    });
  }
  const rand = mulberry32(seed);
  const picked: number[] = [];
  for (const rows of byClass) {
    // A whole Fisher–Yates shuffle whatever k is: the generator then reaches every class in the same
    // state for every k, which is what makes a seed's draws nested.
    for (let i = 0; i < rows.length - 1; i++) {
      const j = i + Math.floor(rand() * (rows.length - i));
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
    picked.push(...rows.slice(0, shots));
  }
  return Int32Array.from(picked.sort((a, b) => a - b));
}

/** Mean and sample standard deviation (n − 1 in the denominator; 0 for a single value). */
export function meanStd(values: ArrayLike<number>): { mean: number; std: number } {
  const n = values.length;
  if (n === 0) throw new ClipOodError("INPUT", "no values to average", { hint: "draw at least one seed" });
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i]!;
  const mean = sum / n;
  if (n === 1) return { mean, std: 0 };
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(ss / (n - 1)) };
}

const METRIC_KEYS: readonly (keyof OodMetrics)[] = ["auroc", "fpr95", "auprIn", "auprOut", "detectionAccuracy", "threshold"];

/** The rows of detectors evaluated once (no fitting data to draw): no shots, no spread. */
export function onceRows(result: EvalResult): ShotsRow[] {
  return evalRows(result).map((r) => ({ ...r, shots: null, seeds: null, std: null }));
}

/**
 * The rows of one shot count, each metric the mean over the seeds' results with its sample standard
 * deviation. Every result must hold the same methods and OOD sets in the same order (the same
 * detectors refitted on each seed's draw); ID accuracy stays null where the results have none.
 */
export function aggregateSeeds(shots: number, results: readonly EvalResult[]): ShotsRow[] {
  const perSeed = results.map(evalRows);
  const first = perSeed[0];
  if (first === undefined) throw new ClipOodError("INPUT", `no results to aggregate at ${shots} shots`, { hint: "draw at least one seed" });
  return first.map((row, j) => {
    const column = perSeed.map((rows, s) => {
      const r = rows[j];
      if (r?.method !== row.method || r.ood !== row.ood) {
        throw new ClipOodError("INPUT", `seed ${s}'s results at ${shots} shots do not line up with seed 0's (row ${j}: ${r?.method}/${r?.ood}, expected ${row.method}/${row.ood})`, {
          hint: "evaluate the same methods and OOD sets for every seed",
        });
      }
      return r;
    });
    const mean = {} as RowMetrics;
    const std = {} as RowMetrics;
    for (const key of METRIC_KEYS) {
      const m = meanStd(column.map((r) => r[key]));
      mean[key] = m.mean;
      std[key] = m.std;
    }
    const accuracies = column.map((r) => r.idAccuracy).filter((a): a is number => a !== null);
    const accuracy = accuracies.length > 0 ? meanStd(accuracies) : null;
    mean.idAccuracy = accuracy?.mean ?? null;
    std.idAccuracy = accuracy?.std ?? null;
    return { method: row.method, ood: row.ood, ...mean, shots, seeds: results.length, n: row.n, std };
  });
}

/** Rows of several shot counts, grouped by method (in first-seen order), each method's shot counts ascending. */
export function byMethodThenShots(rows: readonly ShotsRow[]): ShotsRow[] {
  const order = [...new Set(rows.map((r) => r.method))];
  return order.flatMap((m) => rows.filter((r) => r.method === m).sort((a, b) => (a.shots ?? 0) - (b.shots ?? 0)));
}
