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
export { DEFAULT_MAX_PIXELS, preprocessImage } from "./image/preprocess.js";
export type { ImageOptions } from "./image/preprocess.js";
export { parsePreprocessorConfig } from "./model/preprocessor-config.js";
export type { PreprocessConfig } from "./model/preprocessor-config.js";
export { availableDtypes, DTYPE_SUFFIX, openModelFolder } from "./model/folder.js";
export type { Dtype, ModelFolder } from "./model/folder.js";
export { DEFAULT_HUB_URL, DEFAULT_MODEL_ID, defaultCacheDir } from "./model/hub-cache.js";
export type { DownloadProgress } from "./model/hub-download.js";
export { modelRefToHubId, resolveModel } from "./model/resolve.js";
export { findPreset, MODEL_PRESETS } from "./model/presets.js";
export type { ModelFamily, ModelPreset } from "./model/presets.js";
export { decodeNpy, encodeNpy } from "./io/npy.js";
export { CLIP_LOGIT_SCALE, classProbabilities, MCM_DEFAULT_TEMPERATURE, mcmScore } from "./maths/scores.js";
export { cosineMatrix, matrix, meanOfNormalized, normalizeRows, softmax, topK } from "./maths/vectors.js";
export type { Matrix } from "./maths/vectors.js";
export type { PatchTokens } from "./clip.js";
export { DEFAULT_UNKNOWN_PROMPTS, ZERO_SHOT_METHODS } from "./zeroshot.js";
export type { ZeroShotMethod } from "./zeroshot.js";
export { LABEL_SETS } from "./text/label-sets.js";

// Detectors: build (fit) once, save, calibrate, score images or embeddings.
export { calibrate, DETECTOR_METHODS, FEW_SHOT_METHODS, HEAD_METHODS, predict, predictBatch, scoreBatch } from "./ood/detector.js";
export type { Detector, DetectorMethod, DetectorModelInfo, DetectorParams, HeadMethod, HeadState, PredictOptions } from "./ood/detector.js";
export { addClasses, buildDetector, buildDetector as fitDetector, detectImages, fitOnEmbeddings, localFeatureMaker, prepareDetector, removeClasses } from "./ood/build.js";
export type { BuildOptions, FitData, ImageDetection } from "./ood/build.js";
export { loadDetector, saveDetector, DETECTOR_FORMAT, DETECTOR_VERSION } from "./ood/detector-file.js";
export { thresholdAtFpr, thresholdAtTpr } from "./ood/calibration.js";
export type { Threshold } from "./ood/calibration.js";
export { readEmbeddings } from "./io/embeddings.js";
export type { EmbeddingSet } from "./io/embeddings.js";
export { fitKnn } from "./ood/feature-space/knn.js";
export { fitMahalanobis } from "./ood/feature-space/mahalanobis.js";
export { fitOcsvm } from "./ood/feature-space/ocsvm.js";
export { fewShotScore } from "./ood/feature-space/fewshot.js";
export { standardize, combineScores, chooseWeights } from "./ood/combine.js";
export type { Standardizer, ValidationScores, WeightChoice } from "./ood/combine.js";
export type { FewShotState } from "./ood/feature-space/fewshot.js";
export type { KnnState } from "./ood/feature-space/knn.js";
export type { MahalanobisState } from "./ood/feature-space/mahalanobis.js";
export type { OcsvmState } from "./ood/feature-space/ocsvm.js";
export { DEFAULT_HEAD_SCORE, HEAD_SCORES } from "./ood/heads/heads.js";
export type { HeadScore } from "./ood/heads/heads.js";
export { fitLinearProbe, linearProbePredict, linearProbeScore, linearProbeScores } from "./ood/heads/linear-probe.js";
export type { LinearProbeOptions, LinearProbeState } from "./ood/heads/linear-probe.js";
export { fitTipAdapter, fitTipAdapterF, TIP_DEFAULT_ALPHA, TIP_DEFAULT_BETA, TIP_F_DEFAULTS, tipAdapterLogits, tipAdapterPredict, tipAdapterScores } from "./ood/heads/tip-adapter.js";
export type { TipAdapterFOptions, TipAdapterOptions, TipAdapterState, TipAdapterTraining } from "./ood/heads/tip-adapter.js";
export { fitTaskRes, TASKRES_DEFAULTS, taskResPredict, taskResScores } from "./ood/heads/taskres.js";
export type { TaskResOptions, TaskResState, TaskResTraining } from "./ood/heads/taskres.js";
export { fitLogistic } from "./maths/optimise/logistic.js";
export type { LogisticData, LogisticFit, LogisticModel, LogisticOptions } from "./maths/optimise/logistic.js";
export { crossValidateC, DEFAULT_C_GRID, stratifiedFolds } from "./maths/optimise/logistic-cv.js";
export type { CrossValidation } from "./maths/optimise/logistic-cv.js";
export { mineNegativeLabels, negLabelGroups, negLabelScore } from "./ood/zero-shot/neglabel.js";
export { negativeLabels } from "./ood/zero-shot/negatives.js";
export { glmcmScore } from "./ood/zero-shot/glmcm.js";
export { readVisionHead } from "./ood/zero-shot/vision-head-graph.js";
export { loadWordNetLexicon } from "./ood/zero-shot/wordnet.js";
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
export { ANN_DEFAULTS, AnnIndex, DEFAULT_ANN_THRESHOLD, useAnn } from "./search/ann.js";
export type { AnnBuildOptions, AnnOptions } from "./search/ann.js";
export { combineQueries, exactTopK } from "./search/exact.js";
export type { SearchHit } from "./search/exact.js";

// Evaluation: metrics (pure), data sets, runs, reports.
export { auprIn, auprOut, auroc, detectionAccuracy, fprAtTpr, histogram, meanMetrics, oodMetrics, rocCurve } from "./maths/metrics.js";
export { readDataset } from "./eval/datasets.js";
export type { Dataset, DatasetLayout, LabelledImage } from "./eval/datasets.js";
export { classOfLabel, evaluateEmbedded, evaluateMethod, scoreSet } from "./eval/evaluate.js";
export type { EmbeddedSet, NamedDetector } from "./eval/evaluate.js";
export { embedDataset, embedEvalSets, evaluate, evaluateShots } from "./eval/run.js";
export type { EmbedSetOptions, EmbeddedEvalSets, EvaluateOptions, ShotsOptions } from "./eval/run.js";
export { aggregateSeeds, DEFAULT_SEEDS, drawShots, meanStd } from "./eval/shots.js";
export { renderReport, writeReport } from "./eval/report.js";
export { renderPng, renderSvg } from "./eval/chart-render.js";
export { histogramChart } from "./eval/histogram-chart.js";
export { writePlots } from "./eval/plots.js";
export { rocChart } from "./eval/roc-chart.js";
export { shotsChart } from "./eval/shots-chart.js";
export type { ShotsMetric } from "./eval/shots-chart.js";
export { FPR_CONVENTIONS } from "./maths/metrics.js";
export type { FprConvention, OodMetrics } from "./maths/metrics.js";
export type { EvalResult, MethodResult, RowMetrics, ScoredSample, SetResult, ShotsRow, ShotsSummary } from "./eval/types.js";

// Open-world discovery: cluster and name what the known classes do not explain, and grow a detector from it.
export { discover, embedForDiscovery, DEFAULT_K_MAX, DEFAULT_K_METHOD, DEFAULT_RESTARTS, DEFAULT_TOP_NAMES } from "./discover/discover.js";
export type { EmbedForDiscoveryOptions } from "./discover/discover.js";
export { addDiscoveredClasses, checkDiscoveryFits } from "./discover/add-discovered.js";
export { loadDiscovery, parseDiscovery, saveDiscovery, serializeDiscovery } from "./discover/discovery-file.js";
export { renderDiscoveryPage, writeDiscoveryReport } from "./discover/report.js";
export type { ScoresSummary } from "./discover/report.js";
export { loadVocabulary, parseVocabulary, WORDNET_NOUN_FILES } from "./discover/vocabulary.js";
export { addShots } from "./ood/feature-space/fewshot.js";
export { clusteringAccuracy, linearSumAssignment } from "./maths/clustering/hungarian.js";
export type { Assignment, ClusteringAccuracy } from "./maths/clustering/hungarian.js";
export { KMEANS_DEFAULTS, semiSupervisedKMeans } from "./maths/clustering/kmeans.js";
export type { KMeansResult, SemiSupervisedKMeansOptions } from "./maths/clustering/kmeans.js";
export { silhouetteScore } from "./maths/clustering/silhouette.js";
export { minimizeBounded } from "./maths/optimise/brent.js";
export { scoreDiscovery } from "./discover/evaluate.js";
export type { ScoreDiscoveryOptions } from "./discover/evaluate.js";
export { detectorFingerprint } from "./discover/fingerprint.js";
export { DISCOVERY_FORMAT, DISCOVERY_VERSION, K_METHODS } from "./discover/types.js";
export type {
  AddDiscoveredOptions,
  AddedCluster,
  AddedDiscovery,
  ClusterMember,
  DiscoverOptions,
  DiscoverStage,
  DiscoveredCluster,
  DiscoveryDetectorRef,
  DiscoveryModel,
  DiscoveryResult,
  DiscoveryScores,
  EmbeddedInputs,
  KEstimate,
  KMethod,
  KnownAssignment,
  LabelledKnown,
  NameCandidate,
  UnassignedInput,
} from "./discover/types.js";
