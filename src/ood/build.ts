/**
 * Building and editing detectors with a loaded model: everything text-side is encoded once here and
 * stored in the detector, so scoring later needs no text encoder.
 */
import type { ClassFeatures, ClipModel, PatchTokens } from "../clip.js";
import type { Detection } from "../zeroshot.js";
import { ClipOodError } from "../errors.js";
import { concatRows, matrix, normalizeRows, row, stackRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { verbatimPrompts } from "../text/classes.js";
import type { ClassSpec } from "../text/classes.js";
import { DEFAULT_UNKNOWN_PROMPTS, SIGMOID_REFUSED, sigmoidRefusal } from "../zeroshot.js";
import { EMBEDDING_ONLY_METHODS, FEW_SHOT_METHODS, isEmbeddingOnly, isFewShot, isHead, isHeadState, predict, SIGMOID_REFUSED_METHODS } from "./detector.js";
import type { Detector, DetectorMethod, DetectorModelInfo, DetectorParams, FewShotMethod, HeadState } from "./detector.js";
import { fitKnn } from "./feature-space/knn.js";
import { fitMahalanobis } from "./feature-space/mahalanobis.js";
import { fitOcsvm } from "./feature-space/ocsvm.js";
import type { FewShotState } from "./feature-space/fewshot.js";
import { patchFeatures } from "./zero-shot/local-features.js";
import { fitLinearProbe } from "./heads/linear-probe.js";
import { negativeLabels } from "./zero-shot/negatives.js";
import { fitTaskRes } from "./heads/taskres.js";
import { fitTipAdapter, fitTipAdapterF } from "./heads/tip-adapter.js";
import { readVisionHead } from "./zero-shot/vision-head-graph.js";

export interface BuildOptions {
  method: DetectorMethod;
  classes: ClassSpec[];
  templates: string[];
  params?: DetectorParams;
  /** `unknown`: the "none of these" prompts (default DEFAULT_UNKNOWN_PROMPTS). */
  unknownPrompts?: ClassSpec[];
  /** `outliers`: outlier class names, templated like the classes. */
  outlierClasses?: ClassSpec[];
  /** `neglabel`: use these negative labels instead of mining WordNet; or CSP-style conjugated mining. */
  negLabels?: string[];
  negConjugated?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Few-shot methods: in-distribution embeddings (unit rows) and each row's class index. */
  fitData?: FitData;
}

/** In-distribution embeddings (unit rows) and each row's class index, 0-based. */
export interface FitData {
  embeddings: Matrix;
  labels: Int32Array;
  /** linear-probe: embeddings of known outlier images, trained as a synthetic outlier class. */
  outliers?: Matrix;
  /**
   * The embeddings were made for this fit alone and nothing reads them after it: a method that keeps
   * them (knn's bank) may normalise them in place and keep them rather than a copy, so that a training
   * set of millions of rows is held once.
   */
  owned?: boolean;
}

/**
 * A few-shot detector fitted on the given embeddings: a copy of `detector` (whose text side, settings
 * and model are kept) with new fitted statistics. No model is needed, so one prepared detector can be
 * refitted on many draws of the same embedded data (eval --shots) without encoding anything again.
 */
export async function fitOnEmbeddings(detector: Detector, data: FitData | undefined): Promise<Detector> {
  const method = detector.method;
  if (!isFewShot(method)) throw new ClipOodError("USAGE", `--method ${method} is not fitted on in-distribution data`, { hint: `fit one of ${FEW_SHOT_METHODS.join(", ")}` });
  if (!data || data.embeddings.rows === 0) {
    throw new ClipOodError("USAGE", `--method ${method} is fitted on in-distribution images, and none were given`, {
      hint: "pass --id with images (a folder per class, a flat folder, a list file) or embeddings from `clip-ood embed`",
    });
  }
  if (data.embeddings.cols !== detector.model.dim) {
    throw new ClipOodError("INPUT", `the fitting embeddings have ${data.embeddings.cols} dimensions, the model ${detector.model.id} has ${detector.model.dim}`, {
      hint: "fit on embeddings made by the same model",
    });
  }
  if (data.outliers && method !== "linear-probe") {
    throw new ClipOodError("USAGE", `--method ${method} cannot train on outlier images`, { hint: "use linear-probe for outlier images, or --outlier-neglabel for negative-label outlier classes" });
  }
  const fitted = await fitFewShot(method, data, detector.classFeatures, detector.params, detector.negatives?.features);
  // A head keeps what scoring needs in its own state: the mined negatives were fitting data only, and
  // keeping them would store their features a second time.
  const { negatives: _negatives, ...rest } = detector;
  return { ...(isHead(method) ? rest : detector), fitted, fitRows: data.embeddings.rows };
}

/**
 * An embedding-only detector (EMBEDDING_ONLY_METHODS) ready for `fitOnEmbeddings`, made without a model
 * (pure): `model` is what the fitting embeddings record, and each class's unit mean fitting embedding
 * stands where text features would, to name the class an input is nearest to.
 */
export function prepareWithoutModel(o: { method: DetectorMethod; classes: ClassSpec[]; params?: DetectorParams; model: DetectorModelInfo }, data: FitData): Detector {
  if (!isEmbeddingOnly(o.method)) {
    throw new ClipOodError("USAGE", `--method ${o.method} needs the model's text tower`, { hint: `only ${EMBEDDING_ONLY_METHODS.join(", ")} are fitted on embeddings alone` });
  }
  const { embeddings: x, labels } = data;
  const means = new Float32Array(o.classes.length * x.cols);
  for (let i = 0; i < x.rows; i++) {
    const c = labels[i]!;
    if (c < 0 || c >= o.classes.length) continue; // refused with its row by the fit's own label check
    const r = row(x, i);
    for (let j = 0; j < x.cols; j++) means[c * x.cols + j]! += r[j]!;
  }
  return {
    method: o.method,
    params: o.params ?? {},
    model: o.model,
    templates: [],
    classes: o.classes,
    classFeatures: { labels: o.classes.map((c) => c.label), prompts: o.classes.map(() => []), matrix: normalizeRows(matrix(o.classes.length, x.cols, means)) },
    classFeaturesFrom: "fit-means",
  };
}

export async function buildDetector(model: ClipModel, o: BuildOptions): Promise<Detector> {
  const detector = await prepareDetector(model, o);
  return isFewShot(o.method) ? await fitOnEmbeddings(detector, o.fitData) : detector;
}

/** Refuses, before any encoding, a method that sigmoid-scored models cannot run (SIGMOID_REFUSED_METHODS). */
function refuseForSigmoid(method: DetectorMethod): void {
  const why =
    SIGMOID_REFUSED_METHODS[method] ??
    ((SIGMOID_REFUSED as readonly string[]).includes(method) ? "it reads a softmax distribution over the candidates, and SigLIP's class probabilities are independent sigmoids" : undefined);
  if (why !== undefined) throw sigmoidRefusal(method, why);
}

/**
 * Everything of a detector that needs the model: class text features, negatives, extra prompts, the
 * settings. A few-shot detector comes back without fitted statistics, for `fitOnEmbeddings`.
 */
export async function prepareDetector(model: ClipModel, o: Omit<BuildOptions, "fitData">): Promise<Detector> {
  // CLIP detectors record nothing, so their files stay as they were; SigLIP's learned values go with the detector.
  const scoring = model.model.family === "clip" ? undefined : await model.scoring();
  if (scoring) refuseForSigmoid(o.method);
  const classFeatures = await model.classFeatures(o.classes, o.templates);
  const detector: Detector = {
    method: o.method,
    params: o.params ?? {},
    model: {
      id: model.id,
      dtype: model.model.dtype,
      dim: classFeatures.matrix.cols,
      exifRotate: model.exifRotate,
      preprocess: model.model.preprocess,
      ...(scoring ? { scoring } : {}),
    },
    templates: o.templates,
    classes: o.classes,
    classFeatures,
  };
  if (o.method === "unknown") {
    const classes = o.unknownPrompts ?? verbatimPrompts(DEFAULT_UNKNOWN_PROMPTS);
    detector.extra = { kind: "unknown", classes, features: await model.classFeatures(classes, o.templates) };
  } else if (o.method === "neglabel" || (isHead(o.method) && o.params?.outlierNeglabel)) {
    detector.negatives = await negativeLabels(model, classFeatures, {
      cacheDir: model.cacheDir,
      ...(o.negLabels === undefined ? {} : { userLabels: o.negLabels }),
      ...(o.negConjugated === undefined ? {} : { conjugated: o.negConjugated }),
      ...(o.params?.negFraction === undefined ? {} : { fraction: o.params.negFraction }),
      ...(o.params?.negGroups === undefined ? {} : { groups: o.params.negGroups }),
      ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress }),
    });
  } else if (o.method === "glmcm") {
    // Fail at fit time, not on the first image: the graph must give patch tokens and a readable head.
    const outputs = await model.visionOutputs();
    if (!outputs.includes("local_embeds")) {
      if (!outputs.includes("last_hidden_state")) {
        throw new ClipOodError("MODEL_GRAPH", `${model.model.visionModel} has no patch tokens (neither local_embeds nor last_hidden_state)`, {
          hint: "glmcm needs a vision export with last_hidden_state, as the Hugging Face exports have; use a global method such as mcm",
        });
      }
      await readVisionHead(model.model.visionModel);
    }
  } else if (o.method === "outliers") {
    if (!o.outlierClasses?.length) {
      throw new ClipOodError("USAGE", "--method outliers needs --outlier-classes", { hint: "name classes that look like yours but are not, e.g. --outlier-classes wolf,fox" });
    }
    checkDisjoint(o.classes, o.outlierClasses);
    detector.extra = { kind: "outliers", classes: o.outlierClasses, features: await model.classFeatures(o.outlierClasses, o.templates) };
  }
  return detector;
}

/**
 * Fits a few-shot method's statistics or head; `classFeatures` name the classes and are the zero-shot
 * classifier the text heads start from, and `negatives` negative-label text embeddings that become
 * synthetic outliers for a head.
 */
async function fitFewShot(method: FewShotMethod, data: FitData, classFeatures: ClassFeatures, p: DetectorParams, negatives?: Matrix): Promise<FewShotState | HeadState> {
  const { embeddings: x, labels } = data;
  const text = classFeatures.matrix;
  const neg = negatives ? { negatives } : {};
  const outlierRows = [data.outliers, negatives].filter((m): m is Matrix => m !== undefined && m.rows > 0);
  const score = p.headScore === undefined ? {} : { score: p.headScore };
  const tip = { ...score, ...(p.tipAlpha === undefined ? {} : { alpha: p.tipAlpha }), ...(p.tipBeta === undefined ? {} : { beta: p.tipBeta }) };
  const epochs = p.epochs === undefined ? {} : { epochs: p.epochs };
  switch (method) {
    case "mahalanobis":
      return fitMahalanobis(x, labels, p.shrinkage === undefined ? {} : { shrinkage: p.shrinkage });
    case "knn":
      return fitKnn(x, p.k, undefined, { inPlace: data.owned === true });
    case "ocsvm":
      return fitOcsvm(x, { ...(p.nu === undefined ? {} : { nu: p.nu }), ...(p.gamma === undefined ? {} : { gamma: p.gamma }) });
    case "linear-probe":
      return fitLinearProbe(x, labels, {
        classes: text.rows,
        classNames: classFeatures.labels,
        ...score,
        ...(p.probeC === undefined ? {} : { c: p.probeC }),
        ...(outlierRows.length > 0 ? { outliers: concatRows(...outlierRows) } : {}),
      });
    case "tip-adapter":
      return fitTipAdapter(x, labels, text, { ...tip, ...neg });
    case "tip-adapter-f":
      return fitTipAdapterF(x, labels, text, { ...tip, ...epochs, ...neg });
    case "taskres":
      return fitTaskRes(x, labels, text, { ...score, ...epochs, ...neg, ...(p.taskresAlpha === undefined ? {} : { alpha: p.taskresAlpha }) });
  }
}

export function checkDisjoint(classes: readonly ClassSpec[], outliers: readonly ClassSpec[]): void {
  const ids = new Set(classes.map((c) => c.label.toLowerCase()));
  const clash = outliers.filter((o) => ids.has(o.label.toLowerCase())).map((o) => o.label);
  if (clash.length > 0) {
    throw new ClipOodError("CLASSES", `${clash.join(", ")} ${clash.length === 1 ? "is" : "are"} both a class and an outlier class`, {
      hint: "remove each name from one of the two lists",
    });
  }
}

/**
 * Adds classes to a detector, encoding only the new classes' prompts with the detector's templates.
 * The threshold is kept: see the README on when to recalibrate.
 */
export async function addClasses(detector: Detector, model: ClipModel, added: readonly ClassSpec[]): Promise<Detector> {
  checkModel(detector, model);
  refuseProbeEdit(detector, "add");
  if (detector.classFeaturesFrom === "fit-means") {
    throw new ClipOodError("USAGE", `cannot add classes to this ${detector.method} detector: it was fitted from embeddings files without a model, and its classes are the means of their fitting embeddings, not text`, {
      hint: `fit it again with the new class's embeddings: \`clip-ood fit --method ${detector.method} --id <labelled embeddings>\``,
    });
  }
  const existing = new Set(detector.classes.map((c) => c.label.toLowerCase()));
  const dup = added.filter((c) => existing.has(c.label.toLowerCase())).map((c) => c.label);
  if (dup.length > 0) {
    throw new ClipOodError("CLASSES", `the detector already has ${dup.join(", ")}`, { hint: "remove it first, or add the new wording as a description" });
  }
  if (detector.extra?.kind === "outliers") checkDisjoint(added, detector.extra.classes);
  const f = await model.classFeatures(added, detector.templates);
  const m = detector.classFeatures.matrix;
  const rows = [...Array.from({ length: m.rows }, (_, i) => row(m, i)), ...Array.from({ length: f.matrix.rows }, (_, i) => row(f.matrix, i))];
  return {
    ...detector,
    classes: [...detector.classes, ...added],
    classFeatures: { labels: [...detector.classFeatures.labels, ...f.labels], prompts: [...detector.classFeatures.prompts, ...f.prompts], matrix: stackRows(rows, m.cols) },
  };
}

/** Removes classes by label (case-insensitive); nothing is re-encoded. */
export function removeClasses(detector: Detector, labels: readonly string[]): Detector {
  refuseProbeEdit(detector, "remove");
  const drop = new Set(labels.map((l) => l.trim().toLowerCase()));
  const missing = labels.filter((l) => !detector.classes.some((c) => c.label.toLowerCase() === l.trim().toLowerCase()));
  if (missing.length > 0) {
    throw new ClipOodError("CLASSES", `the detector has no class ${missing.map((l) => `"${l}"`).join(", ")}`, {
      hint: `its classes are ${detector.classes.map((c) => c.label).join(", ")}`,
    });
  }
  const keep = detector.classes.map((c, i) => (drop.has(c.label.toLowerCase()) ? -1 : i)).filter((i) => i >= 0);
  if (keep.length === 0) throw new ClipOodError("CLASSES", "removing these would leave the detector with no classes", { hint: "keep at least one class" });
  const m = detector.classFeatures.matrix;
  return {
    ...detector,
    classes: keep.map((i) => detector.classes[i]!),
    classFeatures: {
      labels: keep.map((i) => detector.classFeatures.labels[i]!),
      prompts: keep.map((i) => detector.classFeatures.prompts[i]!),
      matrix: keep.length === 0 ? matrix(0, m.cols) : stackRows(keep.map((i) => row(m, i)), m.cols),
    },
  };
}

/** A head's weights are one row per class, fitted jointly: a class list edited afterwards would not match them. */
function refuseProbeEdit(detector: Detector, verb: "add" | "remove"): void {
  const f = detector.fitted;
  if (f && isHeadState(f)) {
    throw new ClipOodError("USAGE", `cannot ${verb} classes of a ${f.kind} detector: its classifier was trained on exactly these classes`, {
      hint: `fit it again with \`clip-ood fit --method ${f.kind} --id <class folders>\` for the new class list`,
    });
  }
}

/** Refuses to mix embeddings of different models. */
export function checkModel(detector: Pick<Detector, "model">, model: { id: string }): void {
  if (detector.model.id !== model.id) {
    throw new ClipOodError("MODEL_FOLDER", `the detector was made for model ${detector.model.id}, not ${model.id}`, {
      hint: `leave out --model to use ${detector.model.id}, or fit a new detector for this model`,
    });
  }
}

/**
 * Unit local (patch) features of an image for glmcm: `local_embeds` where the export has it, else the
 * patch tokens through the post-layernorm and projection read (once) from the vision graph.
 */
export async function localFeatureMaker(model: ClipModel): Promise<(patches: PatchTokens) => Matrix> {
  const head = (await model.visionOutputs()).includes("local_embeds") ? undefined : await readVisionHead(model.model.visionModel);
  return (patches) => patchFeatures(patches, head);
}

export interface ImageDetection {
  input: string;
  /** null when the image could not be used (see error). */
  detection: Detection | null;
  error: ClipOodError | null;
}

/** Scores images with a detector, one result per input in order; unreadable images yield an error result. */
export async function* detectImages(
  model: ClipModel,
  detector: Detector,
  inputs: readonly string[],
  options: { threshold?: number; onProgress?: (done: number, total: number) => void } = {},
): AsyncGenerator<ImageDetection> {
  checkModel(detector, model);
  const local = needsLocalFeatures(detector) ? await localFeatureMaker(model) : undefined;
  for await (const r of model.embedImages(inputs, options.onProgress, { patches: local !== undefined })) {
    if (!r.embedding) {
      yield { input: r.input, detection: null, error: r.error };
      continue;
    }
    const detection = predict(detector, r.embedding, {
      ...(options.threshold === undefined ? {} : { threshold: options.threshold }),
      ...(local && r.patches ? { local: local(r.patches) } : {}),
    });
    yield { input: r.input, detection, error: null };
  }
}

/** Whether scoring needs patch tokens (glmcm, or a combination with a glmcm part). */
export function needsLocalFeatures(d: Detector): boolean {
  return d.method === "glmcm" || (d.parts ?? []).some((p) => needsLocalFeatures(p.detector));
}
