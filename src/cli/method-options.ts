/**
 * The OOD method options: how detect, fit and eval declare them, which method each setting applies to,
 * and the checks that refuse a setting the chosen method would ignore. One file, so that adding a
 * method setting means touching one place for its flag, its help and its applicability.
 */
import { Option } from "commander";
import type { Command } from "commander";
import { ClipOodError } from "../errors.js";
import { DETECTOR_METHODS, isFewShot, isHead } from "../ood/detector.js";
import type { DetectorMethod, DetectorParams } from "../ood/detector.js";
import { HEAD_SCORES } from "../ood/heads/heads.js";
import { DEFAULT_UNKNOWN_PROMPTS, EOE_BETA } from "../zeroshot.js";
import type { CommonOptions } from "./commands.js";
import { collect, int, num } from "./options.js";

/**
 * Method options shared by fit and detect: every detector parameter is a flag of the same name, plus
 * the method, the word lists and the data the detector is built from.
 */
export interface MethodOptions extends CommonOptions, DetectorParams {
  method: DetectorMethod;
  unknownPrompts?: string;
  outlierClasses?: string;
  negLabels?: string;
  negConjugated?: boolean;
  id?: string[];
  outlierImages?: string[];
}

/** Each method setting, its flag, and the methods it applies to. */
const METHOD_SETTINGS: readonly [keyof MethodOptions, string, (m: DetectorMethod) => boolean][] = [
  ["unknownPrompts", "--unknown-prompts", (m) => m === "unknown"],
  ["outlierClasses", "--outlier-classes", (m) => m === "outliers"],
  ["beta", "--beta", (m) => m === "outliers"],
  ["negLabels", "--neg-labels", (m) => m === "neglabel" || isHead(m)],
  ["negGroups", "--neg-groups", (m) => m === "neglabel"],
  ["negFraction", "--neg-fraction", (m) => m === "neglabel" || isHead(m)],
  ["negConjugated", "--neg-conjugated", (m) => m === "neglabel" || isHead(m)],
  ["lambda", "--lambda", (m) => m === "glmcm"],
  ["id", "--id", isFewShot],
  ["k", "--k", (m) => m === "knn"],
  ["nu", "--nu", (m) => m === "ocsvm"],
  ["gamma", "--gamma", (m) => m === "ocsvm"],
  ["shrinkage", "--shrinkage", (m) => m === "mahalanobis"],
  ["headScore", "--head-score", isHead],
  ["probeC", "--probe-c", (m) => m === "linear-probe"],
  ["tipAlpha", "--tip-alpha", (m) => m === "tip-adapter" || m === "tip-adapter-f"],
  ["tipBeta", "--tip-beta", (m) => m === "tip-adapter" || m === "tip-adapter-f"],
  ["epochs", "--epochs", (m) => m === "tip-adapter-f" || m === "taskres"],
  ["taskresAlpha", "--taskres-alpha", (m) => m === "taskres"],
  ["outlierNeglabel", "--outlier-neglabel", isHead],
  // Outlier images need a class of their own with no text, which only the probe has (docs/OOD-METHODS.md).
  ["outlierImages", "--outlier-images", (m) => m === "linear-probe"],
];

/**
 * The options for one of several methods evaluated together: the settings that apply to it. A setting
 * that applies to none of `all` is refused rather than silently ignored.
 */
export function methodOptionsFor<T extends Omit<MethodOptions, "method">>(method: DetectorMethod, opts: T, all: readonly DetectorMethod[], idFlag = "--fit"): T & { method: DetectorMethod } {
  const picked: T & { method: DetectorMethod } = { ...opts, method };
  for (const [key, flag, applies] of METHOD_SETTINGS) {
    if (opts[key as keyof T] === undefined) continue;
    if (!all.some(applies)) {
      throw new ClipOodError("USAGE", `${key === "id" ? idFlag : flag} does not apply to any of the methods (${all.join(", ")})`, { hint: "see the Methods list in --help for which options each method takes" });
    }
    if (!applies(method)) delete picked[key as keyof typeof picked];
  }
  return picked;
}

/** Refuses options that the chosen method would silently ignore. */
export function checkMethodOptions(opts: MethodOptions): void {
  for (const [key, flag, ok] of METHOD_SETTINGS) {
    if (opts[key] !== undefined && !ok(opts.method)) {
      throw new ClipOodError("USAGE", `${flag} does not apply to --method ${opts.method}`, { hint: "see the Methods list in --help for which options each method takes" });
    }
  }
  if (opts.method === "combo") throw new ClipOodError("USAGE", "combined detectors are made with `clip-ood combine`", { hint: "clip-ood combine a.json b.json --id <validation data> --out c.json" });
  if (isHead(opts.method) && !opts.outlierNeglabel) {
    const flag = opts.negLabels !== undefined ? "--neg-labels" : opts.negFraction !== undefined ? "--neg-fraction" : opts.negConjugated ? "--neg-conjugated" : undefined;
    if (flag) throw new ClipOodError("USAGE", `${flag} with --method ${opts.method} shapes synthetic outliers, and --outlier-neglabel is not given`, { hint: `add --outlier-neglabel, or drop ${flag}` });
  }
  if (opts.temperature !== undefined && !(opts.temperature > 0)) {
    throw new ClipOodError("USAGE", `--temperature must be positive, got ${opts.temperature}`, { hint: "the MCM paper uses 1" });
  }
}

/**
 * A fitted method asked for without data to fit it on, named with the flag that gives that data
 * (`--id` for detect and fit, `--fit` for eval), before any model is loaded.
 */
export function checkFitData(command: string, methods: readonly DetectorMethod[], data: readonly string[] | undefined, flag: "--id" | "--fit"): void {
  const fitted = methods.filter(isFewShot);
  if (fitted.length === 0 || (data?.length ?? 0) > 0) return;
  const asked = command === "eval" ? `--methods ${fitted.join(",")}` : `--method ${fitted[0]!}`;
  throw new ClipOodError("USAGE", `${command} ${asked} is fitted on in-distribution images, and ${flag} gives none`, {
    hint: `add ${flag} <a folder of class folders, a flat folder, a list or CSV of images, or an embeddings file>; repeatable`,
  });
}

/** Options naming an OOD method and its settings, shared by detect and fit (keys: METHOD_OPTION_KEYS). */
export function withMethodOptions(cmd: Command): Command {
  return withMethodSettings(
    cmd.addOption(new Option("--method <method>", "OOD score (see Methods below)").choices([...DETECTOR_METHODS]).default("mcm")),
  ).option("--id <input>", "fitted methods (mahalanobis, knn, ocsvm and the learned heads): in-distribution images (a folder of class folders, a flat folder, a list or CSV) or an embeddings file; unlabelled ones pool into one class (--classes, default \"normal\"); repeatable", collect);
}

/** The methods' settings (each applies to the methods it names), shared by detect, fit and eval. */
export function withMethodSettings(cmd: Command): Command {
  return cmd
    .option("--temperature <T>", "softmax temperature on cosines for mcm, energy, entropy, outliers (default 1)", num("--temperature"))
    .option("--unknown-prompts <list|file>", `unknown: "none of these" prompts (default: ${DEFAULT_UNKNOWN_PROMPTS.map((p) => `"${p}"`).join(", ")})`)
    .option("--outlier-classes <list|file>", "outliers: outlier class names (same forms as --classes)")
    .option("--beta <b>", `outliers: penalty weight (EOE: ${EOE_BETA})`, num("--beta"))
    .option("--neg-labels <list|file>", "neglabel (and heads with --outlier-neglabel): use these negative labels instead of mining WordNet")
    .option("--neg-fraction <f>", "neglabel (and heads with --outlier-neglabel): share of WordNet nouns and of adjectives kept by mining (default 0.15)", num("--neg-fraction"))
    .option("--neg-groups <n>", "neglabel: groups the negatives are split into (default 100; 1 = no grouping)", int("--neg-groups"))
    .option("--neg-conjugated", "neglabel (and heads with --outlier-neglabel): CSP-style negatives (adjective + superclass labels, CSP's lexicon and filter)")
    .option("--lambda <l>", "glmcm: weight of the local term (default 0.5)", num("--lambda"))
    .option("--k <k>", "knn: distance to the k-th nearest in-distribution embedding (default 1; Sun et al. use 1000 with a full training set)", int("--k"))
    .option("--nu <nu>", "ocsvm: ν, the share of training points allowed outside (default 0.1)", num("--nu"))
    .option("--gamma <g>", "ocsvm: RBF γ (default 1/(dim·variance), scikit-learn's 'scale')", num("--gamma"))
    .option("--shrinkage <a>", "mahalanobis: covariance shrinkage in [0, 1] (default Ledoit–Wolf)", num("--shrinkage"))
    .addOption(new Option("--head-score <s>", "linear-probe, tip-adapter, tip-adapter-f, taskres: OOD score from the head's logits: msp = max softmax (default), maxlogit, energy = logsumexp").choices([...HEAD_SCORES]))
    .option("--probe-c <C>", "linear-probe: fix the inverse L2 penalty C instead of choosing it by cross-validation over 10^-2…10^4", num("--probe-c"))
    .option("--tip-alpha <a>", "tip-adapter, tip-adapter-f: weight α of the cache logits (default 1.17)", num("--tip-alpha"))
    .option("--tip-beta <b>", "tip-adapter, tip-adapter-f: sharpness β of the cache affinities exp(−β(1−cos)) (default 1)", num("--tip-beta"))
    .option("--epochs <n>", "tip-adapter-f (default 20), taskres (default 100 with ≤ 4 images per class, else 200): training epochs", int("--epochs"))
    .option("--taskres-alpha <a>", "taskres: scale α of the learned residual t' = t + α·x (default 0.5)", num("--taskres-alpha"))
    .option("--outlier-neglabel", "learned heads: synthetic outliers from NegLabel's negative labels (mined from WordNet, or --neg-labels): extra classes for tip-adapter(-f)/taskres, an outlier class for linear-probe")
    .option("--outlier-images <set>", "linear-probe: images (or embeddings) known to be out of distribution, trained as a synthetic outlier class; repeatable", collect);
}

/** The settings a saved detector already holds: detect --detector refuses them. */
export const METHOD_OPTION_KEYS = ["method", "temperature", "unknownPrompts", "outlierClasses", "beta", "negLabels", "negFraction", "negGroups", "negConjugated", "lambda", "id", "k", "nu", "gamma", "shrinkage", "headScore", "probeC", "tipAlpha", "tipBeta", "epochs", "taskresAlpha", "outlierNeglabel", "outlierImages"];

export const METHODS_HELP = `Methods (every score: larger = more in-distribution; details and sources in docs/OOD-METHODS.md):
  mcm          max softmax(cos/T), T = 1 (default)                        Ming et al., NeurIPS 2022
  maxlogit     max cos
  energy       T·logsumexp(cos/T), T = 1
  entropy      −entropy of softmax(cos/T), T = 1
  unknown      mass on the classes under softmax(100·cos) over classes + "none of these" prompts;
               an input whose best match is such a prompt is labelled "unknown"
  outliers     max p(class) − β·max p(outlier), softmax over both at T = 1, β = 0.25   EOE, ICML 2024
  neglabel     mass on the classes under softmax(100·cos) over classes + negative labels mined from
               WordNet (lowest 0.95-quantile cosine, 15% per part of speech), averaged over 100 groups;
               classes use the prompt "the nice {}" unless --templates is given   Jiang et al., ICLR 2024
               (--neg-conjugated: CSP, Chen et al., NeurIPS 2024). The first use with a model embeds
               the ~70,000 WordNet candidates once (cached).
  glmcm        MCM(global) + λ·max over patches of MCM(local), λ = 0.5; local features are the patch
               tokens through the graph's post-layernorm and projection (images only)
                                                                            Miyai et al., IJCV 2025
  fitted on in-distribution data (--id; classes from --classes or the class folders' names):
  mahalanobis  −min_c (x−μ_c)ᵀ Σ⁻¹ (x−μ_c), tied covariance, Ledoit–Wolf shrinkage   Lee et al. 2018
  knn          −‖x − x_(k)‖² to the k-th nearest in-distribution embedding, k = 1   Sun et al., ICML 2022
  ocsvm        one-class SVM decision value, RBF kernel, ν = 0.1, γ = "scale"
  learned heads: classify by their own logits z; score max softmax(z) (--head-score msp, default),
  max z (maxlogit) or logsumexp z (energy); labelled data of ≥ 2 classes:
  linear-probe multinomial logistic regression on the embeddings (L-BFGS, L2 penalty C by stratified
               cross-validation: folds until 2,000 rows are held out, decades then half-decades)
                                                      CLIP's linear probe, Radford et al. 2021
  tip-adapter  z = 100·cos(v, class texts) + α·Σ_shots exp(−β(1 − cos(v, shot)))·onehot(shot),
               α = 1.17, β = 1 (--tip-alpha, --tip-beta)        Zhang et al., ECCV 2022
  tip-adapter-f  the same with the cached shots fine-tuned by cross-entropy (AdamW, lr 1e-3,
               20 epochs, --epochs)                                  Zhang et al., ECCV 2022
  taskres      z = 100·cos(v, t + α·x): class text embeddings t plus a residual x trained from 0
               (Adam, lr 2e-3, α = 0.5 --taskres-alpha, 100/200 epochs --epochs)   Yu et al., CVPR 2023
  synthetic outliers for the heads: --outlier-neglabel adds NegLabel's negative labels as extra
               classes (tip-adapter, tip-adapter-f, taskres) or as an outlier class (linear-probe);
               --outlier-images trains known outlier images as that class (linear-probe). Scores then
               weigh the best class against the outliers (docs/OOD-METHODS.md)
  combo        \`clip-ood combine\`: weighted sum of standardised scores of saved detectors
  sigmoid-scored models (SigLIP): mcm is the max per-class sigmoid, energy the joint energy
               Σ softplus, outliers uses sigmoids; entropy, unknown, neglabel, glmcm, tip-adapter,
               tip-adapter-f and taskres read CLIP's softmax and are refused (docs/OOD-METHODS.md)
`;
