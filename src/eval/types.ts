/**
 * The shape of an evaluation: what `evaluate` computes, what the CLI prints as JSON/CSV and what the
 * HTML report draws. Scores follow the detectors' convention: larger = more in-distribution, and an
 * input is accepted as in-distribution when its score is ≥ the threshold.
 */
import type { FprConvention, OodMetrics } from "../maths/metrics.js";

/** One scored input. */
export interface ScoredSample {
  input: string;
  score: number;
  /** The true class label, when the set carries labels (ID sets only). */
  label?: string;
  /** The detector's top class. */
  predicted: string;
}

export interface SetResult {
  /** The OOD set's name, as given in --ood name=<set>. */
  ood: string;
  metrics: OodMetrics;
  n: { id: number; ood: number };
  /** The OOD set's samples, in input order. */
  samples: ScoredSample[];
}

export interface MethodResult {
  /** A unique display name: the method, or a detector file's name. */
  method: string;
  /** The in-distribution samples, in input order. */
  id: ScoredSample[];
  sets: SetResult[];
  /** The unweighted mean of each metric over `sets` (threshold: the mean of theirs). */
  average: OodMetrics;
  /** Top-1 accuracy over the labelled ID samples whose label is one of the classes; null without labels. */
  idAccuracy: number | null;
}

/** Each metric of a row, and the ID accuracy (null without labels). */
export interface RowMetrics extends OodMetrics {
  idAccuracy: number | null;
}

/**
 * One line of `eval --shots`: a method against one OOD set (or `ood: "average"`) at one number of
 * fitting examples per class. The metric fields are means over the seeds' draws; `std` holds their
 * sample standard deviations (n − 1; 0 with one seed). Methods that take no fitting data (zero-shot
 * methods, saved detectors) are evaluated once: `shots`, `seeds` and `std` are null.
 */
export interface ShotsRow extends RowMetrics {
  method: string;
  ood: string;
  shots: number | null;
  seeds: number | null;
  n: { id: number; ood: number };
  std: RowMetrics | null;
}

/** What `eval --shots` measured: the shot counts (ascending), the seeds per count, and every row. */
export interface ShotsSummary {
  shots: number[];
  seeds: number;
  rows: ShotsRow[];
}

export interface EvalResult {
  model: string;
  /** The ID set as the user named it. */
  idSet: string;
  convention: FprConvention;
  methods: MethodResult[];
  /** Where the embeddings came from: computed by the model now, or read from the store (embeddings files count as neither). */
  embedding?: { computed: number; fromStore: number };
  /**
   * The sets whose inputs are image files this run read (by name: the ID set's and OOD sets'). Only
   * these get thumbnails in the report: inputs named inside an embeddings file come from another
   * machine and are never opened.
   */
  imageSets?: string[];
  /**
   * eval --shots: the few-shot methods' metrics against the number of fitting examples per class. The
   * methods above then hold the zero-shot methods and each few-shot method's largest-shots draw of seed 0.
   */
  shots?: ShotsSummary;
  /** ISO time the run finished. */
  createdAt: string;
}
