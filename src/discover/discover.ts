/**
 * `discover`: cluster images that the known classes do not explain and name the clusters from a
 * vocabulary (docs/DISCOVERY.md). Embeds through the store, keeps the detector's rejections with
 * `onlyOod`, estimates k, runs semi-supervised k-means with labelled known classes fixed, recognises
 * the free clusters that are known classes by name, names each new cluster, and returns a
 * `DiscoveryResult`.
 */
import type { ClipModel } from "../clip.js";
import { ClipOodError } from "../errors.js";
import { dotProducts } from "../maths/kernels/kmeans-kernel.js";
import { semiSupervisedKMeans } from "../maths/clustering/kmeans.js";
import type { KMeansResult } from "../maths/clustering/kmeans.js";
import { mulberry32 } from "../maths/random.js";
import { concatRows, matrix, normalizeRows, row } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { checkModel } from "../ood/build.js";
import { predict, predictBatch } from "../ood/detector.js";
import type { Detector } from "../ood/detector.js";
import { embedWithStore, storeModelKey } from "../store/cached.js";
import type { EmbeddingStore } from "../store/store.js";
import { resolveTemplates } from "../text/templates.js";
import { estimateK } from "./estimate-k.js";
import { detectorFingerprint } from "./fingerprint.js";
import { loadVocabulary, rankNames, vocabularyFeatures, withoutKnownNames } from "./vocabulary.js";
import { DISCOVERY_FORMAT, DISCOVERY_VERSION } from "./types.js";
import type { ClusterMember, DiscoveredCluster, DiscoverOptions, DiscoveryResult, EmbeddedInputs, KEstimate, KnownAssignment, UnassignedInput } from "./types.js";

/** New clusters "auto" tries at most. */
export const DEFAULT_K_MAX = 20;
/** How "auto" estimates k; docs/DISCOVERY.md says why. */
export const DEFAULT_K_METHOD = "silhouette";
/** Seeded k-means restarts per k. */
export const DEFAULT_RESTARTS = 4;
/** Candidate names per cluster. */
export const DEFAULT_TOP_NAMES = 3;
/** Most and least typical members listed per cluster. */
export const TYPICAL_COUNT = 5;
/** Free rows the k search clusters (a seeded sample beyond this): its silhouette needs n² distances. */
export const K_SEARCH_SAMPLE = 2000;
/** Beyond this many rows the restarts run on a seeded sample of this size, and the best is refined on every row. */
export const FULL_RESTART_LIMIT = 20000;

export async function discover(model: ClipModel, inputs: readonly string[] | EmbeddedInputs, options: DiscoverOptions): Promise<DiscoveryResult> {
  const detector = options.detector;
  if (detector) checkModel(detector, model);
  const knownSpecs = detector ? detector.classes : (options.classes ?? []);
  const templates = options.templates ?? (detector && detector.templates.length > 0 ? detector.templates : await resolveTemplates(undefined));
  const seed = options.seed ?? 0;
  const restarts = options.restarts ?? DEFAULT_RESTARTS;
  const topNames = options.topNames ?? DEFAULT_TOP_NAMES;
  if (options.onlyOod) checkOnlyOod(detector);
  if (options.k !== undefined && options.k !== "auto" && !(Number.isInteger(options.k) && options.k >= 0)) {
    throw new ClipOodError("USAGE", `k must be "auto" or a whole number ≥ 0, got ${String(options.k)}`, { hint: "e.g. --k 5, or --k auto to estimate it" });
  }
  const kMax = options.kMax ?? DEFAULT_K_MAX;
  if (!(Number.isInteger(kMax) && kMax >= 1)) throw new ClipOodError("USAGE", `the largest k to try must be a positive whole number, got ${kMax}`, { hint: `e.g. --k-max ${DEFAULT_K_MAX}` });

  // Vocabulary words first: a bad vocabulary file fails before any image is embedded.
  const allWords = options.vocabulary === undefined || options.vocabulary === "wordnet" ? await loadVocabulary("wordnet") : [...options.vocabulary];
  const words = withoutKnownNames(allWords, knownSpecs);
  const vocabularySource = options.vocabularySource ?? (options.vocabulary === undefined || options.vocabulary === "wordnet" ? "wordnet" : "list");
  if (words.length === 0) {
    throw new ClipOodError("INPUT", `the vocabulary (${vocabularySource}) holds no word besides the known class names`, { hint: "give a vocabulary with other words to name new clusters by" });
  }

  const embedded = Array.isArray(inputs)
    ? await embedForDiscovery(model, inputs as readonly string[], {
        ...(options.store ? { store: options.store } : {}),
        onProgress: (done, n) => options.onProgress?.("embedding", done, n),
        ...(options.onFailure ? { onFailure: options.onFailure } : {}),
      })
    : { ...(inputs as EmbeddedInputs), failed: (inputs as EmbeddedInputs).failed ?? [] };
  const total = embedded.inputs.length;
  if (total === 0) {
    throw embedded.failed.length > 0
      ? new ClipOodError("INPUT", `none of the ${embedded.failed.length} images could be embedded`, { hint: "check the files; each failure was reported with its reason" })
      : new ClipOodError("INPUT", "no images to cluster", { hint: "give discover the images to look through" });
  }
  let kept = embedded;
  if (options.onlyOod && detector) {
    const detections = await predictBatch(detector, embedded.embeddings);
    const rows = detections.flatMap((d, i) => (d.ood ? [i] : []));
    kept = { inputs: rows.map((i) => embedded.inputs[i]!), embeddings: gather(embedded.embeddings, rows), failed: embedded.failed };
  }
  const modelInfo = { id: model.id, dtype: model.model.dtype, dim: await model.embeddingDim(), key: await storeModelKey(model) };
  const base = {
    format: DISCOVERY_FORMAT,
    version: DISCOVERY_VERSION,
    model: modelInfo,
    detector: detector ? { ...(options.detectorFile === undefined ? {} : { file: options.detectorFile }), method: detector.method, fingerprint: detectorFingerprint(detector) } : null,
    knownClasses: knownSpecs.map((c) => c.label),
    templates,
    vocabulary: { source: vocabularySource, words: words.length },
    inputs: kept.inputs.length,
    keptInDistribution: embedded.inputs.length - kept.inputs.length,
    failed: embedded.failed,
    seed,
  } as const;
  const nothing = (note: string, method: KEstimate["method"]): DiscoveryResult => ({
    ...base,
    k: { new: 0, known: knownSpecs.length, method, tried: [] },
    clusters: [],
    known: [],
    unassigned: [],
    note,
  });
  if (kept.inputs.length === 0) {
    return nothing(`the detector rejects none of the ${total} images at its threshold: no new classes`, options.k === undefined || options.k === "auto" ? (options.kMethod ?? DEFAULT_K_METHOD) : "given");
  }
  if (kept.inputs.length === 1) {
    throw new ClipOodError("INPUT", `only one image${options.onlyOod ? " is rejected by the detector" : " was given"} (${kept.inputs[0]}): one image cannot be clustered`, {
      hint: "discover groups several images; give it at least two",
    });
  }
  if (typeof options.k === "number" && options.k > kept.inputs.length) {
    throw new ClipOodError("USAGE", `${kept.inputs.length} images cannot form ${options.k} clusters`, { hint: `ask for at most ${kept.inputs.length} with --k, or leave k to be estimated` });
  }

  const classFeatures = detector ? detector.classFeatures : knownSpecs.length > 0 ? await model.classFeatures(knownSpecs, templates) : undefined;
  const vocab = await vocabularyFeatures(model, words, templates, {
    cacheDir: options.cacheDir ?? model.cacheDir,
    onProgress: (done, n) => options.onProgress?.("vocabulary", done, n),
  });
  // Labelled known classes are GCD's fixed clusters 0…L−1; every other cluster is free.
  const labelled = options.labelled && options.labelled.embeddings.rows > 0 ? options.labelled : undefined;
  if (labelled) checkLabelled(labelled, knownSpecs.length, modelInfo.dim);
  const labelledClasses = labelled ? [...new Set(labelled.labels)].sort((a, b) => a - b) : [];
  const fixedCluster = new Map(labelledClasses.map((c, i) => [c, i]));
  const L = labelledClasses.length;
  const n = kept.inputs.length;
  const x = labelled ? concatRows(kept.embeddings, labelled.embeddings) : kept.embeddings;
  const fixed = new Int32Array(x.rows).fill(-1);
  for (let i = 0; labelled && i < labelled.labels.length; i++) fixed[n + i] = fixedCluster.get(labelled.labels[i]!)!;

  options.onProgress?.("clustering", 0, 1);
  let free: number;
  let k: KEstimate;
  if (typeof options.k === "number") {
    free = options.k;
    k = { new: free, known: knownSpecs.length, method: "given", tried: [] };
  } else {
    const method = options.kMethod ?? DEFAULT_K_METHOD;
    const sample = sampleRows(x, fixed, K_SEARCH_SAMPLE, seed);
    const found = await estimateK({ x: sample.x, fixed: sample.fixed, known: L }, { method, kMax: Math.min(kMax, n), seed, restarts });
    // Too few images to compare two clusterings (no k could be scored): they form one cluster.
    free = L === 0 && found.tried.length === 0 ? 1 : found.k;
    k = { new: free, known: knownSpecs.length, method, tried: found.tried };
  }
  if (L + free === 0) return nothing("--k 0 asks for no clusters beyond the labelled known classes: no new classes", k.method);
  const clustering = await clusterAll(x, fixed, L, free, seed, restarts);
  options.onProgress?.("clustering", 1, 1);

  // Which known class each cluster is, if any: a labelled class's own, or a free cluster that its name
  // says is one (matchKnown); the rest are the new clusters.
  const unit = normalizeRows(clustering.centroids);
  const nameCos = await dotProducts(unit, vocab);
  const knownCos = classFeatures ? await dotProducts(unit, classFeatures.matrix) : undefined;
  const knownOf = Array.from({ length: L + free }, (_, c) =>
    c < L ? labelledClasses[c]! : matchKnown(row(nameCos, c), knownCos ? row(knownCos, c) : undefined, detector, row(unit, c)),
  );

  const cosToOwn = new Float64Array(n);
  for (let i = 0; i < n; i++) cosToOwn[i] = dot(row(x, i), row(unit, clustering.assignment[i]!));
  const membersOf = Array.from({ length: L + free }, () => [] as number[]);
  for (let i = 0; i < n; i++) membersOf[clustering.assignment[i]!]!.push(i);
  const outliers: { row: number; cluster: number }[] = [];
  const rowsOf = membersOf.map((rows, c) => {
    const out = new Set(lowOutliers(rows.map((i) => cosToOwn[i]!)).map((j) => rows[j]!));
    for (const i of out) outliers.push({ row: i, cluster: c });
    return rows.filter((i) => !out.has(i)).sort((a, b) => cosToOwn[b]! - cosToOwn[a]! || a - b);
  });
  const order = rowsOf
    .map((rows, c) => ({ c, rows }))
    .filter((e) => knownOf[e.c] === -1 && e.rows.length > 0)
    .sort((a, b) => b.rows.length - a.rows.length || a.c - b.c);
  const idOf = new Map(order.map((e, i) => [e.c, i + 1]));
  const unassigned: UnassignedInput[] = outliers
    .map(({ row: i, cluster: c }) => ({ input: kept.inputs[i]!, nearest: knownOf[c]! >= 0 ? { known: knownSpecs[knownOf[c]!]!.label } : { cluster: idOf.get(c)! }, cosine: cosToOwn[i]! }))
    .sort((a, b) => a.cosine - b.cosine || (a.input < b.input ? -1 : 1));
  const member = (i: number): ClusterMember => ({ input: kept.inputs[i]!, cosine: cosToOwn[i]! });
  const clusters: DiscoveredCluster[] = order.map((e, j) => {
    const members = e.rows.map(member);
    let nearestKnown: DiscoveredCluster["nearestKnown"] = null;
    knownSpecs.forEach((spec, c) => {
      const v = knownCos!.data[e.c * knownSpecs.length + c]!;
      if (!nearestKnown || v > nearestKnown.cosine) nearestKnown = { label: spec.label, cosine: v };
    });
    return {
      id: j + 1,
      size: members.length,
      members,
      candidates: rankNames(words, row(nameCos, e.c), topNames),
      typical: members.slice(0, TYPICAL_COUNT).map((m) => m.input),
      atypical: members.slice(Math.max(0, members.length - TYPICAL_COUNT)).reverse().map((m) => m.input),
      cohesion: members.length === 0 ? 0 : members.reduce((s, m) => s + m.cosine, 0) / members.length,
      nearestKnown,
      centroid: Array.from(row(unit, e.c)),
    };
  });
  const knownAssignments: KnownAssignment[] = knownSpecs
    .map((spec, c) => ({
      label: spec.label,
      members: rowsOf
        .flatMap((rows, cluster) => (knownOf[cluster] === c ? rows : []))
        .sort((a, b) => cosToOwn[b]! - cosToOwn[a]! || a - b)
        .map(member),
    }))
    .filter((a) => a.members.length > 0);
  const result: DiscoveryResult = { ...base, k: { ...k, new: clusters.length }, clusters, known: knownAssignments, unassigned };
  if (clusters.length === 0) result.note = `every image fits a known class (${knownAssignments.map((a) => a.label).join(", ")}): no new classes`;
  return result;
}

/**
 * The known class a free cluster is, or −1 for a new one. With text class features: the class whose
 * feature is nearer the cluster's centroid than every vocabulary word is (the class would be the
 * cluster's best name, were known names not left out of the vocabulary): image and text embeddings are
 * compared only with each other, so CLIP's modality gap does not enter. A detector fitted on
 * embeddings alone has no text: there, a class is recognised only by the detector's threshold,
 * accepting the centroid.
 */
function matchKnown(vocabCos: Float32Array, knownCos: Float32Array | undefined, detector: Detector | undefined, centroid: Float32Array): number {
  if (!knownCos || knownCos.length === 0) return -1;
  if (detector?.classFeaturesFrom === "fit-means") {
    if (!detector.threshold) return -1;
    const d = predict(detector, centroid);
    return d.ood ? -1 : detector.classFeatures.labels.indexOf(d.label);
  }
  let best = 0;
  for (let c = 1; c < knownCos.length; c++) if (knownCos[c]! > knownCos[best]!) best = c;
  let bestWord = -Infinity;
  for (let w = 0; w < vocabCos.length; w++) if (vocabCos[w]! > bestWord) bestWord = vocabCos[w]!;
  return knownCos[best]! >= bestWord ? best : -1;
}

function checkOnlyOod(detector: Detector | undefined): void {
  if (!detector) throw new ClipOodError("USAGE", "--only-ood keeps the images a detector rejects, and no detector was given", { hint: "pass --detector <file>, or leave out --only-ood to cluster every image" });
  if (!detector.threshold) {
    throw new ClipOodError("USAGE", "--only-ood needs a calibrated detector: this one has no threshold", { hint: "calibrate it first: clip-ood calibrate --detector <file> --id <in-distribution validation images>" });
  }
  if (detector.method === "glmcm" || (detector.parts ?? []).some((p) => p.detector.method === "glmcm")) {
    throw new ClipOodError("USAGE", "--only-ood cannot score with a glmcm detector here: it needs each image's patch tokens", {
      hint: "run `clip-ood detect --detector <file> --json` and pass the images it flags OOD, without --only-ood",
    });
  }
}

function checkLabelled(labelled: { embeddings: Matrix; labels: Int32Array }, known: number, dim: number): void {
  if (labelled.embeddings.cols !== dim) {
    throw new ClipOodError("INPUT", `the labelled images' embeddings have ${labelled.embeddings.cols} dimensions, the model's ${dim}`, { hint: "embed them with the same model" });
  }
  if (labelled.labels.length !== labelled.embeddings.rows) {
    throw new ClipOodError("INPUT", `${labelled.labels.length} labels for ${labelled.embeddings.rows} labelled images`, { hint: "give one known-class index per labelled image" });
  }
  for (const l of labelled.labels) {
    if (!(Number.isInteger(l) && l >= 0 && l < known)) throw new ClipOodError("CLASSES", `a labelled image has class index ${l}, outside the ${known} known classes`, { hint: "label the --id images with the known classes" });
  }
}

export interface EmbedForDiscoveryOptions {
  store?: EmbeddingStore;
  /** Images looked up in the store (and embedded) per batch; default 64. */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** An image that could not be embedded (it is left out and listed in `failed`). */
  onFailure?: (input: string, reason: string) => void;
  /** A store that cannot be written: reported once, and the run goes on without storing. Without it, the failure is thrown. */
  onStoreError?: (message: string) => void;
}

/**
 * The images' embeddings, through the store when one is given, as `discover` takes them: embed once,
 * then discover with several seeds (discover --labels). Images that cannot be read are listed, not thrown.
 */
export async function embedForDiscovery(model: ClipModel, inputs: readonly string[], o: EmbedForDiscoveryOptions = {}): Promise<EmbeddedInputs & { failed: { input: string; reason: string }[] }> {
  const rows: Float32Array[] = [];
  const names: string[] = [];
  const failed: { input: string; reason: string }[] = [];
  const results = o.store
    ? embedWithStore(model, o.store, inputs, { ...(o.batchSize ? { batchSize: o.batchSize } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}), ...(o.onStoreError ? { onStoreError: o.onStoreError } : {}) })
    : model.embedImages(inputs, o.onProgress);
  for await (const r of results) {
    if (r.embedding) {
      rows.push(r.embedding);
      names.push(r.input);
    } else {
      const reason = r.error?.message ?? "unknown error";
      failed.push({ input: r.input, reason });
      o.onFailure?.(r.input, reason);
    }
  }
  const dim = rows[0]?.length ?? (await model.embeddingDim());
  const data = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => data.set(r, i * dim));
  return { inputs: names, embeddings: matrix(rows.length, dim, data), failed };
}

function gather(x: Matrix, rows: readonly number[]): Matrix {
  const out = new Float32Array(rows.length * x.cols);
  rows.forEach((r, i) => out.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), i * x.cols));
  return matrix(rows.length, x.cols, out);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** A seeded sample of at most `limit` free rows and `limit` fixed rows, for the k search. */
export function sampleRows(x: Matrix, fixed: Int32Array, limit: number, seed: number): { x: Matrix; fixed: Int32Array } {
  const free: number[] = [];
  const labelled: number[] = [];
  for (let i = 0; i < x.rows; i++) (fixed[i]! < 0 ? free : labelled).push(i);
  if (free.length <= limit && labelled.length <= limit) return { x, fixed };
  const rand = mulberry32(seed ^ 0x5eed);
  const rows = [...pick(free, limit, rand), ...pick(labelled, limit, rand)];
  return { x: gather(x, rows), fixed: Int32Array.from(rows, (i) => fixed[i]!) };
}

/** `count` of `items` drawn without replacement (a partial Fisher–Yates), in their original order. */
function pick(items: readonly number[], count: number, rand: () => number): number[] {
  if (items.length <= count) return [...items];
  const a = [...items];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rand() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, count).sort((p, q) => p - q);
}

/**
 * SS-k-means on every row. Beyond FULL_RESTART_LIMIT rows, the restarts run on a seeded sample and
 * the best of them is refined by Lloyd iterations on all the rows: the restarts only choose a start.
 */
export async function clusterAll(x: Matrix, fixed: Int32Array, known: number, k: number, seed: number, restarts: number): Promise<KMeansResult> {
  const common = { k, known, fixed, seed, restarts };
  if (x.rows <= FULL_RESTART_LIMIT) return semiSupervisedKMeans(x, common);
  const sample = sampleRows(x, fixed, FULL_RESTART_LIMIT / 2, seed);
  const start = await semiSupervisedKMeans(sample.x, { ...common, fixed: sample.fixed });
  return semiSupervisedKMeans(x, { ...common, initial: start.centroids });
}

/** A member within this cosine distance (1 − cos) of its centroid fits it, however tight the cluster. */
export const OUTLIER_MIN_DISTANCE = 0.05;

/**
 * Indices of the members that fit their cluster badly (pure): a cosine to the centroid below Tukey's
 * far-out fence, Q1 − 3·(Q3 − Q1), a distance 1 − cos more than twice the cluster's median one, and
 * more than OUTLIER_MIN_DISTANCE. The fence alone would flag ordinary members of a very tight cluster,
 * whose spread is tiny. Clusters of fewer than 5 have no quartiles worth the name.
 */
export function lowOutliers(cosines: readonly number[]): number[] {
  if (cosines.length < 5) return [];
  const s = [...cosines].sort((a, b) => a - b);
  const q = (p: number) => {
    const at = p * (s.length - 1);
    const lo = Math.floor(at);
    return s[lo]! + (at - lo) * (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!);
  };
  const fence = q(0.25) - 3 * (q(0.75) - q(0.25));
  const medianDistance = 1 - q(0.5);
  return cosines.flatMap((v, i) => (v < fence && 1 - v > Math.max(2 * medianDistance, OUTLIER_MIN_DISTANCE) ? [i] : []));
}
