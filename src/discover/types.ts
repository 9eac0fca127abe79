/**
 * What open-world discovery produces and takes: the typed result that `discover` returns and that
 * discovery.json holds (`DISCOVERY_FORMAT`), its options, and the options of adding discovered
 * clusters to a detector. Types only; the work is in discover.ts, add-discovered.ts and the pure
 * maths under src/maths/.
 */
import type { Detector, DetectorMethod } from "../ood/detector.js";
import type { Matrix } from "../maths/vectors.js";
import type { EmbeddingStore } from "../store/store.js";
import type { ClassSpec } from "../text/classes.js";

export const DISCOVERY_FORMAT = "clip-ood-discovery";
export const DISCOVERY_VERSION = 1;

/** How the number of new clusters was chosen. */
export const K_METHODS = ["given", "gcd", "silhouette"] as const;
export type KMethod = (typeof K_METHODS)[number];

/** A candidate name of a cluster: a vocabulary word and the cosine of its text feature to the cluster's centroid. */
export interface NameCandidate {
  name: string;
  score: number;
}

/** One member image of a cluster with its cosine to the cluster's unit centroid. */
export interface ClusterMember {
  input: string;
  cosine: number;
}

/** A cluster of images that no known class took: a candidate new class. */
export interface DiscoveredCluster {
  /** 1-based, as `detector add-class --from … --clusters 1,3` names it; clusters are numbered by size, largest first. */
  id: number;
  size: number;
  /** Every member, most typical (highest cosine to the centroid) first. */
  members: ClusterMember[];
  /** The best vocabulary names (top 3 by default), known class names excluded, best first. */
  candidates: NameCandidate[];
  /** The most and least typical members (up to 5 each), for a quick look and the report's thumbnails. */
  typical: string[];
  atypical: string[];
  /** Mean cosine of the members to the unit centroid: 1 is a single point, lower is looser. */
  cohesion: number;
  /** The known class whose anchor is nearest the centroid, with that cosine; null without known classes. */
  nearestKnown: { label: string; cosine: number } | null;
  /** The unit centroid (mean of the members' unit embeddings, renormalised). */
  centroid: number[];
}

/** The inputs that landed in a known class's cluster. */
export interface KnownAssignment {
  label: string;
  members: ClusterMember[];
}

/** An input that fits no cluster well: its cosine to its cluster's centroid is an outlier for that cluster. */
export interface UnassignedInput {
  input: string;
  /** The new cluster's id, or the known class, it was nearest. */
  nearest: { cluster: number } | { known: string };
  cosine: number;
}

/** How k was found, with the score of each candidate tried. */
export interface KEstimate {
  /** New clusters found: the free clusters formed, less those recognised as known classes. */
  new: number;
  /** Known classes. */
  known: number;
  method: KMethod;
  /**
   * Each number of free clusters tried (clusters beyond the labelled known classes') and its criterion:
   * mean silhouette, or (gcd) the labelled images' clustering accuracy; in the order tried.
   */
  tried: { k: number; score: number }[];
}

/** What the discovery was run against, so that adding its clusters to another model's or detector's class list is refused. */
export interface DiscoveryModel {
  id: string;
  dtype: string;
  dim: number;
  /** The embedding store's key of the model's image embeddings (`storeModelKey`: graph digest, dtype, preprocessing). */
  key: string;
}

export interface DiscoveryDetectorRef {
  /** The detector file as given, for the record; identity is `fingerprint`. */
  file?: string;
  method: DetectorMethod;
  /** SHA-256 over the method and each known class's label and text feature (`detectorFingerprint`); unchanged by calibrating or by adding classes. */
  fingerprint: string;
}

export interface DiscoveryResult {
  format: typeof DISCOVERY_FORMAT;
  version: typeof DISCOVERY_VERSION;
  model: DiscoveryModel;
  /** The detector whose classes were the known classes, or null when they came from a class list. */
  detector: DiscoveryDetectorRef | null;
  /** The known classes' labels, in the detector's (or list's) order. */
  knownClasses: string[];
  /** Templates the vocabulary words (and class names) went through. */
  templates: string[];
  /** "wordnet" or the vocabulary file as given, and how many words it held after removing the known class names. */
  vocabulary: { source: string; words: number };
  /** Images clustered (after --only-ood), and how many --only-ood left out as in-distribution. */
  inputs: number;
  keptInDistribution: number;
  /** Images that could not be embedded, with the reason. */
  failed: { input: string; reason: string }[];
  k: KEstimate;
  seed: number;
  clusters: DiscoveredCluster[];
  known: KnownAssignment[];
  unassigned: UnassignedInput[];
  /** When the run found no new class: a sentence saying so (the CLI prints it and exits 0). */
  note?: string;
}

/** Labelled images of the known classes (`--id`): each row's index into the known classes. */
export interface LabelledKnown {
  embeddings: Matrix;
  labels: Int32Array;
}

/** Images already embedded (unit rows), with the input each row came from. */
export interface EmbeddedInputs {
  inputs: string[];
  embeddings: Matrix;
}

export interface DiscoverOptions {
  /** The known classes, their templates and (for `onlyOod`) the threshold; recorded so add-class can check it. Its model must be `model`. */
  detector?: Detector;
  /** The detector's file, recorded in the result. */
  detectorFile?: string;
  /** The known classes when there is no detector. */
  classes?: ClassSpec[];
  /** Prompt templates for the vocabulary words and `classes`; default: the detector's, else the "photo" preset. */
  templates?: string[];
  /** Labelled images of known classes, fixed in their classes' clusters (GCD's labelled set). */
  labelled?: LabelledKnown;
  /** Keep only the inputs the detector rejects at its threshold (needs a calibrated detector). */
  onlyOod?: boolean;
  /**
   * Free clusters to form beyond the labelled known classes' (those then recognised as known classes
   * are reported as known), or "auto" (default) to estimate the number.
   */
  k?: number | "auto";
  /** The largest k "auto" tries (default DEFAULT_K_MAX, or fewer where there are fewer images). */
  kMax?: number;
  /** How "auto" estimates k (default DEFAULT_K_METHOD). */
  kMethod?: Exclude<KMethod, "given">;
  /** "wordnet" (default: WordNet's nouns) or a list of words. */
  vocabulary?: "wordnet" | readonly string[];
  /** Recorded as the vocabulary's source ("wordnet" or the file). */
  vocabularySource?: string;
  /** Candidate names per cluster (default 3). */
  topNames?: number;
  /** Seeds k-means++ and the restarts (default 0). */
  seed?: number;
  /** Seeded restarts of k-means per k; the lowest inertia is kept (default DEFAULT_RESTARTS). */
  restarts?: number;
  /** Embed through this store: reuse stored embeddings, store new ones. */
  store?: EmbeddingStore;
  /** Where vocabulary embeddings are cached; default the model's cache folder. */
  cacheDir?: string;
  onProgress?: (stage: DiscoverStage, done: number, total: number) => void;
  /** An input that could not be embedded (it is left out and listed in `failed`). */
  onFailure?: (input: string, reason: string) => void;
}

export type DiscoverStage = "embedding" | "vocabulary" | "clustering";

export interface AddDiscoveredOptions {
  /** Which clusters to add, by id; default every cluster. */
  clusters?: readonly number[];
  /** A name per cluster id; default its best candidate. */
  names?: Readonly<Record<number, string>> | ReadonlyMap<number, string>;
  /** Few-shot methods: the store to read the members' embeddings from (embedding only the rest). */
  store?: EmbeddingStore;
  onFailure?: (input: string, reason: string) => void;
}

/** A cluster added as a class, with how many of its images became the few-shot method's shots. */
export interface AddedCluster {
  cluster: number;
  label: string;
  shots: number;
}

export interface AddedDiscovery {
  detector: Detector;
  added: AddedCluster[];
}

/** Clustering and naming accuracy of a discovery against ground truth (GCD's "v2": one Hungarian map over all images). */
export interface DiscoveryScores {
  /** Clustering accuracy on all clustered images, on those of known ("old") and of new classes; null where a subset is empty. */
  all: number;
  old: number | null;
  new: number | null;
  /** Share of new clusters whose majority true class is the top-1 candidate name (synonyms counted), and among the top 3. */
  namingTop1: number | null;
  namingTop3: number | null;
  /** Images scored (those with a ground-truth label). */
  images: number;
}
