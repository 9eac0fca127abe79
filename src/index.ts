/** clip-ood: CLIP zero-shot classification and out-of-distribution detection. */
export { ClipModel, DEFAULT_BATCH_SIZE } from "./clip.js";
export type { ClassFeatures, ClipOptions, ImageEmbeddingResult } from "./clip.js";
export { classify, classCosines, detect } from "./zeroshot.js";
export type { Detection, DetectOptions, LabelProbability } from "./zeroshot.js";
export { ClipOodError, isClipOodError } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { classPrompts, loadClasses, parseClassesJson, parseClassesText } from "./text/classes.js";
export type { ClassSpec } from "./text/classes.js";
export { DEFAULT_TEMPLATES, fillTemplate, resolveTemplates, TEMPLATE_PRESETS } from "./text/templates.js";
export { ClipTokenizer } from "./text/tokenizer.js";
export { expandInputs, IMAGE_EXTENSIONS } from "./image/inputs.js";
export { DEFAULT_MAX_PIXELS, parsePreprocessorConfig, preprocessImage } from "./image/preprocess.js";
export type { ImageOptions, PreprocessConfig } from "./image/preprocess.js";
export { availableDtypes, DTYPE_SUFFIX, openModelFolder } from "./model/folder.js";
export type { Dtype, ModelFolder } from "./model/folder.js";
export { DEFAULT_HUB_URL, DEFAULT_MODEL_ID, defaultCacheDir } from "./model/hub.js";
export type { DownloadProgress } from "./model/hub.js";
export { resolveModel } from "./model/resolve.js";
export { decodeNpy, encodeNpy } from "./io/npy.js";
export { CLIP_LOGIT_SCALE, classProbabilities, MCM_DEFAULT_TEMPERATURE, mcmScore } from "./maths/scores.js";
export { cosineMatrix, matrix, meanOfNormalized, normalizeRows, softmax, topK } from "./maths/vectors.js";
export type { Matrix } from "./maths/vectors.js";
export type { PatchTokens } from "./clip.js";
export { DEFAULT_UNKNOWN_PROMPTS, ZERO_SHOT_METHODS } from "./zeroshot.js";
export type { ZeroShotMethod } from "./zeroshot.js";
export { LABEL_SETS } from "./text/label-sets.js";

// Detectors: build (fit) once, save, calibrate, score images or embeddings.
export { calibrate, DETECTOR_METHODS, FEW_SHOT_METHODS, predict, scoreBatch } from "./ood/detector.js";
export type { Detector, DetectorMethod, DetectorModelInfo, DetectorParams, PredictOptions } from "./ood/detector.js";
export { addClasses, buildDetector, buildDetector as fitDetector, detectImages, fitOnEmbeddings, localFeatureMaker, prepareDetector, removeClasses } from "./ood/build.js";
export type { BuildOptions, FitData, ImageDetection } from "./ood/build.js";
export { loadDetector, saveDetector, DETECTOR_FORMAT, DETECTOR_VERSION } from "./ood/detector-file.js";
export { thresholdAtFpr, thresholdAtTpr } from "./ood/calibration.js";
export type { Threshold } from "./ood/calibration.js";
export { readEmbeddings } from "./io/embeddings.js";
export type { EmbeddingSet } from "./io/embeddings.js";
export { fitKnn, fitMahalanobis, fitOcsvm, fewShotScore, standardize, combineScores } from "./ood/fewshot.js";
export type { FewShotState, KnnState, MahalanobisState, OcsvmState, Standardizer } from "./ood/fewshot.js";
export { DEFAULT_PROBE_SCORE, fitLinearProbe, linearProbePredict, linearProbeScore, linearProbeScores, PROBE_SCORES } from "./ood/linear-probe.js";
export type { LinearProbeOptions, LinearProbeState, ProbeScore } from "./ood/linear-probe.js";
export { crossValidateC, DEFAULT_C_GRID, fitLogistic, stratifiedFolds } from "./maths/logistic.js";
export type { CrossValidation, LogisticData, LogisticFit, LogisticModel, LogisticOptions } from "./maths/logistic.js";
export { mineNegativeLabels, negLabelGroups, negLabelScore } from "./ood/neglabel.js";
export { negativeLabels } from "./ood/negatives.js";
export { glmcmScore, readVisionHead } from "./ood/glmcm.js";
export { loadWordNetLexicon } from "./ood/wordnet.js";
export { energyScore, maxLogitScore, negativeEntropyScore, outlierPenaltyScore, unknownMassScore } from "./maths/scores.js";

// Embedding store and cross-modal retrieval.
export { defaultStorePath, STORE_SCHEMA_VERSION } from "./store/store.js";
export type { EmbeddingStore, NearestHit, PathRecord, StoredRow, StoreRows, StoreStats } from "./store/store.js";
export { openEmbeddingStore } from "./store/open.js";
export type { OpenStoreOptions } from "./store/open.js";
export { SqliteStore } from "./store/sqlite-store.js";
export { PostgresStore } from "./store/postgres-store.js";
export { embedWithStore, storeModelKey } from "./store/cached.js";
export type { CachedEmbeddingResult } from "./store/cached.js";
export { prepareAnnIndex, queryVector, search } from "./store/search.js";
export type { AnnPrepareOptions, SearchOptions, SearchQuery, SearchResult } from "./store/search.js";
export { ANN_DEFAULTS, AnnIndex, annCacheKey, DEFAULT_ANN_THRESHOLD, useAnn } from "./search/ann.js";
export type { AnnBuildOptions, AnnOptions } from "./search/ann.js";
export { combineQueries, exactTopK } from "./search/exact.js";
export type { SearchHit } from "./search/exact.js";

// Evaluation: metrics (pure), data sets, runs, reports.
export { auprIn, auprOut, auroc, detectionAccuracy, fprAtTpr, histogram, meanMetrics, oodMetrics, rocCurve } from "./maths/metrics.js";
export { readDataset } from "./io/datasets.js";
export type { Dataset, DatasetLayout, LabelledImage } from "./io/datasets.js";
export { classOfLabel, evaluateEmbedded, evaluateMethod, scoreSet } from "./eval/evaluate.js";
export type { EmbeddedSet, NamedDetector } from "./eval/evaluate.js";
export { embedDataset, evaluate } from "./eval/run.js";
export type { EmbedSetOptions, EvaluateOptions } from "./eval/run.js";
export { renderReport, writeReport } from "./eval/report.js";
export { histogramChart, renderPng, renderSvg, rocChart, writePlots } from "./eval/plots.js";
export { FPR_CONVENTIONS } from "./eval/types.js";
export type { EvalResult, FprConvention, MethodResult, OodMetrics, ScoredSample, SetResult } from "./eval/types.js";
