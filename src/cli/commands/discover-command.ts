/**
 * clip-ood discover: cluster the images the known classes do not explain, name the clusters from a
 * vocabulary, and (with --labels) score the result against ground truth over several seeds. The
 * images are embedded once, through the store; each seed reclusters the same embeddings.
 */
import path from "node:path";
import { InvalidArgumentError, Option } from "commander";
import type { Command } from "commander";
import type { ClipModel } from "../../clip.js";
import { ClipOodError } from "../../errors.js";
import { DEFAULT_K_MAX, DEFAULT_K_METHOD, DEFAULT_RESTARTS, DEFAULT_TOP_NAMES, discover, embedForDiscovery } from "../../discover/discover.js";
import { saveDiscovery } from "../../discover/discovery-file.js";
import { scoreDiscovery } from "../../discover/evaluate.js";
import { writeDiscoveryReport } from "../../discover/report.js";
import type { ScoresSummary } from "../../discover/report.js";
import type { DiscoverOptions, DiscoveryResult, DiscoveryScores, EmbeddedInputs, KMethod } from "../../discover/types.js";
import { loadVocabulary } from "../../discover/vocabulary.js";
import { labelsOf, readDataset } from "../../eval/datasets.js";
import { DEFAULT_SEEDS, meanStd } from "../../eval/shots.js";
import { loadDetector } from "../../ood/detector-file.js";
import type { Detector } from "../../ood/detector.js";
import { loadClasses } from "../../text/classes.js";
import type { ClassSpec } from "../../text/classes.js";
import { resolveTemplates } from "../../text/templates.js";
import { embedFitData } from "../build-detector.js";
import type { CommonOptions } from "../commands.js";
import { extensionsOf, images, openCacheStore, openModel, reportFailure, say, warn } from "../commands.js";
import { EXIT_HELP } from "../exit.js";
import { collect, int, withClassOptions, withCommonOptions } from "../options.js";
import type { SetStatus } from "../options.js";
import { columnWidths, plural } from "../output.js";
import { progress } from "../progress.js";

export interface DiscoverCommandOptions extends CommonOptions {
  detector?: string;
  id?: string[];
  onlyOod?: boolean;
  k: number | "auto";
  kMax: number;
  kMethod: Exclude<KMethod, "given">;
  vocabulary: string;
  topNames: number;
  seed: number;
  restarts: number;
  out?: string;
  report?: string;
  labels?: string;
  labelSynonyms?: string;
  seeds?: number;
}

function kValue(v: string): number | "auto" {
  if (v === "auto") return "auto";
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('--k must be "auto" or a whole number ≥ 0');
  return n;
}

export async function runDiscover(inputs: string[], opts: DiscoverCommandOptions, templatesGiven: boolean): Promise<number> {
  if ((opts.detector === undefined) === (opts.classes === undefined)) {
    throw new ClipOodError("USAGE", opts.detector === undefined ? "discover needs the known classes: --detector or --classes" : "give either --detector or --classes, not both", {
      hint: "--detector det.json takes its classes (and, with --only-ood, its threshold); --classes cat,dog names them",
    });
  }
  if (opts.seeds !== undefined && opts.labels === undefined) throw new ClipOodError("USAGE", "--seeds applies to --labels only", { hint: "e.g. --labels truth.csv --seeds 3" });
  if (opts.labelSynonyms !== undefined && opts.labels === undefined) throw new ClipOodError("USAGE", "--label-synonyms applies to --labels only", { hint: "e.g. --labels truth.csv --label-synonyms classes.txt" });
  // Everything that can be wrong with the files is found before a model loads or an image is embedded.
  const detector: Detector | undefined = opts.detector === undefined ? undefined : await loadDetector(opts.detector);
  const classes: ClassSpec[] = detector ? detector.classes : await loadClasses(opts.classes!);
  const templates = detector && !templatesGiven && detector.templates.length > 0 ? detector.templates : await resolveTemplates(opts.templates);
  // Read once for every seed: WordNet's data.noun alone is 15 MB of text to parse.
  const words = await loadVocabulary(opts.vocabulary);
  const truth = opts.labels === undefined ? undefined : await readTruth(opts.labels, opts);
  const synonyms = opts.labelSynonyms === undefined ? undefined : new Map((await loadClasses(opts.labelSynonyms)).map((c) => [c.label, c.names] as const));
  const expanded = await images(inputs, opts);
  // Absolute paths: discovery.json is read later, maybe from another folder, and its paths become shots.
  const files = expanded.files.map((f) => path.resolve(f));

  const bars = progress(!opts.quiet);
  const model = await openModel(opts, bars, detector ? { ...detector.model, source: opts.detector! } : undefined);
  try {
    const labelled = opts.id?.length ? await labelledKnown(opts.id, classes, model, opts) : undefined;
    const embedded = await embedAll(model, files, opts, bars);
    if (embedded.inputs.length === 0) throw new ClipOodError("INPUT", `none of the ${plural(files.length, "image")} could be embedded`, { hint: "check the files; each failure was reported above" });
    const seeds = truth ? Array.from({ length: opts.seeds ?? DEFAULT_SEEDS }, (_, i) => opts.seed + i) : [opts.seed];
    const runs: { result: DiscoveryResult; scores?: DiscoveryScores }[] = [];
    for (const seed of seeds) {
      const options: DiscoverOptions = {
        ...(detector ? { detector, detectorFile: opts.detector! } : { classes }),
        templates,
        ...(labelled ? { labelled } : {}),
        ...(opts.onlyOod ? { onlyOod: true } : {}),
        k: opts.k,
        kMax: opts.kMax,
        kMethod: opts.kMethod,
        vocabulary: words,
        vocabularySource: opts.vocabulary,
        topNames: opts.topNames,
        seed,
        restarts: opts.restarts,
        onProgress: (stage, done, total) => (stage === "vocabulary" ? bars.count("embedding the vocabulary", done, total) : undefined),
      };
      const result = await discover(model, embedded, options);
      bars.stop();
      runs.push({ result, ...(truth ? { scores: scoreDiscovery(result, truth, synonyms ? { synonyms } : {}) } : {}) });
    }
    const first = runs[0]!.result;
    const summary = truth ? summarise(seeds, runs.map((r) => r.scores!)) : undefined;
    printResult(first, opts);
    if (summary) printScores(summary, runs.map((r) => r.scores!), opts);
    if (opts.out) {
      await saveDiscovery(first, opts.out);
      say(opts, `saved the discovery to ${opts.out}`);
    }
    if (opts.report) {
      await writeDiscoveryReport(first, opts.report, summary);
      say(opts, `report: ${opts.report}`);
    }
    if (first.note) say(opts, first.note + ".");
    else if (opts.detector) say(opts, `next: clip-ood detector add-class ${opts.detector} --from ${opts.out ?? "discovery.json"} --clusters ${first.clusters.map((c) => c.id).join(",")} [--name 1=<name>], then recalibrate`);
    if (embedded.failed.length > 0) {
      process.stderr.write(`${embedded.failed.length} of ${plural(files.length + expanded.failed, "input")} could not be processed (see above); the others were clustered.\n`);
      return 1;
    }
    return expanded.failed > 0 ? 1 : 0;
  } finally {
    bars.stop();
    await model.close();
  }
}

/** The --labels set: input path (absolute) → class label. */
async function readTruth(spec: string, opts: CommonOptions): Promise<Map<string, string>> {
  const ds = await readDataset(spec, { extensions: extensionsOf(opts) });
  if (!ds.labelled || ds.embeddings) {
    throw new ClipOodError("USAGE", `--labels ${spec} holds no image labels`, { hint: "give a folder of class folders, or a list or CSV of `path label`, naming the true class of each image" });
  }
  const labels = labelsOf(ds);
  return new Map(ds.images.flatMap((img, i) => (labels[i] === undefined ? [] : [[path.resolve(img.input), labels[i]!] as const])));
}

/** --id: labelled images of the known classes, embedded; each row's index into the known classes. */
async function labelledKnown(specs: readonly string[], classes: ClassSpec[], model: ClipModel, opts: CommonOptions): Promise<{ embeddings: EmbeddedInputs["embeddings"]; labels: Int32Array }> {
  const data = await embedFitData(specs, classes, model, opts);
  if (!data.labelled) {
    throw new ClipOodError("USAGE", "--id has no class labels: discover fixes labelled images in their known class's cluster", {
      hint: "give a folder per known class (./known/red/*.png), or a list or CSV with labels",
    });
  }
  return { embeddings: data.embeddings, labels: data.labels };
}

async function embedAll(model: ClipModel, files: readonly string[], opts: CommonOptions, bars: ReturnType<typeof progress>): Promise<EmbeddedInputs & { failed: { input: string; reason: string }[] }> {
  const store = await openCacheStore(opts);
  try {
    return await embedForDiscovery(model, files, {
      ...(store ? { store } : {}),
      batchSize: Math.max(opts.batchSize, 64),
      onProgress: (done, total) => bars.images(done, total),
      onFailure: (input, reason) => reportFailure(input, reason, bars),
      onStoreError: (m) => warn(m, bars),
    });
  } finally {
    bars.stop();
    await store?.close();
  }
}

const SCORE_NAMES = ["all", "old", "new", "namingTop1", "namingTop3"] as const;

function summarise(seeds: number[], scores: readonly DiscoveryScores[]): ScoresSummary {
  return {
    seeds,
    metrics: SCORE_NAMES.map((name) => {
      const values = scores.map((s) => s[name]).filter((v): v is number => v !== null);
      if (values.length === 0) return { name, mean: null, std: null };
      return { name, ...meanStd(values) };
    }),
  };
}

const pct = (v: number | null) => (v === null ? "-" : (100 * v).toFixed(1));

function printResult(r: DiscoveryResult, opts: DiscoverCommandOptions): void {
  const out = process.stdout;
  if (opts.json) {
    for (const c of r.clusters) {
      const { members, centroid: _centroid, ...rest } = c;
      out.write(JSON.stringify({ kind: "cluster", ...rest, members: members.map((m) => m.input) }) + "\n");
    }
    for (const a of r.known) out.write(JSON.stringify({ kind: "known", label: a.label, size: a.members.length, members: a.members.map((m) => m.input) }) + "\n");
    for (const u of r.unassigned) out.write(JSON.stringify({ kind: "unassigned", ...u }) + "\n");
    // As every command's --json gives an input that failed.
    for (const f of r.failed) out.write(JSON.stringify({ input: f.input, error: f.reason }) + "\n");
    out.write(
      JSON.stringify({
        kind: "summary",
        model: r.model.id,
        dtype: r.model.dtype,
        detector: r.detector,
        knownClasses: r.knownClasses,
        k: r.k,
        inputs: r.inputs,
        keptInDistribution: r.keptInDistribution,
        failed: r.failed.length,
        seed: r.seed,
        vocabulary: r.vocabulary,
        ...(r.note ? { note: r.note } : {}),
        ...(opts.out ? { out: opts.out } : {}),
      }) + "\n",
    );
    return;
  }
  if (r.clusters.length > 0) {
    const rows = [
      ["cluster", "size", "candidate names", "cohesion", "nearest known", "most typical"],
      ...r.clusters.map((c) => [
        String(c.id),
        String(c.size),
        c.candidates.map((n) => `${n.name} ${n.score.toFixed(3)}`).join(", "),
        c.cohesion.toFixed(3),
        c.nearestKnown ? `${c.nearestKnown.label} ${c.nearestKnown.cosine.toFixed(3)}` : "-",
        c.typical[0] ?? "",
      ]),
    ];
    printTable(rows);
  }
  if (r.known.length > 0) {
    if (r.clusters.length > 0) out.write("\n");
    printTable([["known class", "size"], ...r.known.map((a) => [a.label, String(a.members.length)])]);
  }
  if (r.unassigned.length > 0) {
    out.write("\n");
    printTable([["fits no cluster well", "nearest", "cosine"], ...r.unassigned.map((u) => [u.input, "cluster" in u.nearest ? `cluster ${u.nearest.cluster}` : u.nearest.known, u.cosine.toFixed(3)])]);
  }
  say(
    opts,
    `${plural(r.inputs, "image")} clustered${r.keptInDistribution > 0 ? ` (${r.keptInDistribution} the detector accepts left out)` : ""}: ${plural(r.k.new, "new cluster")}` +
      (r.k.method === "given" ? " (given)" : ` (estimated by ${r.k.method}${r.k.tried.length > 0 ? `; tried k = ${r.k.tried.map((t) => `${t.k}: ${t.score.toFixed(3)}`).join(", ")}` : ""})`),
  );
}

function printTable(rows: readonly (readonly string[])[]): void {
  const widths = columnWidths(rows);
  for (const row of rows) process.stdout.write(row.map((c, i) => (i < row.length - 1 ? c.padEnd(widths[i]!) : c)).join("  ").trimEnd() + "\n");
}

function printScores(summary: ScoresSummary, scores: readonly DiscoveryScores[], opts: DiscoverCommandOptions): void {
  if (opts.json) {
    const json = Object.fromEntries(summary.metrics.map((m) => [m.name, { mean: m.mean, std: m.std }]));
    process.stdout.write(JSON.stringify({ kind: "scores", seeds: summary.seeds, images: scores[0]!.images, ...json, perSeed: scores }) + "\n");
    return;
  }
  process.stdout.write("\n");
  const label: Record<string, string> = { all: "accuracy, all", old: "accuracy, old classes", new: "accuracy, new classes", namingTop1: "naming, top-1", namingTop3: "naming, top-3" };
  printTable([
    ["metric (%)", "mean", "±std", `over seeds ${summary.seeds.join(",")}`],
    ...summary.metrics.map((m) => [label[m.name]!, pct(m.mean), pct(m.std), ""]),
  ]);
}

export function addDiscoverCommand(program: Command, setStatus: SetStatus): void {
  withClassOptions(withCommonOptions(program.command("discover")), false)
    .description("Find new classes: cluster the images the known classes do not explain, name each cluster from a vocabulary, and save the clusters for `detector add-class --from`.")
    .argument("<inputs...>", "images: files, folders (recursive), globs, or - to read paths from stdin")
    .option("-d, --detector <file>", "the detector whose classes are the known classes (and whose threshold --only-ood uses)")
    .option("--id <set>", "labelled images of known classes (a folder per class, a labelled list or CSV), kept in their class's cluster; repeatable", collect)
    .option("--only-ood", "cluster only the images the detector rejects at its threshold (needs a calibrated --detector)")
    .option("--k <n|auto>", "free clusters to form (those recognised as known classes are reported as known), or auto to estimate", kValue, "auto" as const)
    .option("--k-max <n>", "with --k auto: the most free clusters tried", int("--k-max"), DEFAULT_K_MAX)
    .addOption(new Option("--k-method <method>", "with --k auto: how k is estimated (see below)").choices(["silhouette", "gcd"]).default(DEFAULT_K_METHOD))
    .option("--vocabulary <wordnet|file>", "words to name clusters by: wordnet (WordNet's 67,244 nouns, each synset's first word) or a text file, one word or phrase per line", "wordnet")
    .option("--top-names <n>", "candidate names per cluster", int("--top-names"), DEFAULT_TOP_NAMES)
    .option("--seed <n>", "seeds k-means++ and the sampling, for a repeatable result", int("--seed", 0), 0)
    .option("--restarts <n>", "k-means restarts per k; the one with the least inertia is kept", int("--restarts"), DEFAULT_RESTARTS)
    .option("-o, --out <file>", "save the discovery (clusters, members, names) as JSON for `detector add-class --from`")
    .option("--report <file.html>", "write a self-contained HTML report: each cluster's thumbnails, names, cohesion")
    .option("--labels <set>", "ground truth (class folders, or a list or CSV with labels): score clustering and naming, over --seeds seeds")
    .option("--label-synonyms <file>", "with --labels: a class file (`label = synonym = …` per line) whose synonyms count as right names")
    .option("--seeds <n>", `with --labels: runs with seeds --seed, --seed+1, … (default ${DEFAULT_SEEDS}); the scores are mean ± std`, int("--seeds"))
    .option("--json", "JSON Lines on stdout: one {kind: cluster|known|unassigned|summary|scores, …} object per line")
    .addHelpText("after", `
How it works (docs/DISCOVERY.md):
  1. Every input is embedded through the store (rerunning embeds nothing again). With --only-ood
     only those the detector rejects at its threshold are clustered: point discover at everything and
     let the detector choose, or at a folder of rejects.
  2. Semi-supervised k-means (GCD, Vaze et al. 2022): the --id images of each known class stay in
     their class's cluster; k free clusters start by k-means++ (seeded by --seed) and take the rest.
  3. A free cluster is a known class when that class's text feature is nearer its centroid than every
     vocabulary word: the class would be its best name. The other clusters are the new ones.
  4. Each new cluster is named by the vocabulary words (put through --templates, as class names are)
     whose text features are nearest its centroid, known class names left out. The vocabulary's
     features are cached: the first run with wordnet encodes 67,244 prompts per template.
  --k counts the free clusters, so count the known classes present among the inputs too (with
  --only-ood there are few). --k auto estimates it: silhouette (default) scores k = 0…--k-max on a
  sample of at most 2,000 images and keeps the best; gcd is GCD's Brent search on the clustering
  accuracy of the --id images (needs --id of two or more classes). On the tests' worlds silhouette
  found k in 20 runs of 20, gcd in 1: the labelled accuracy does not change when new classes merge.
  Per cluster: size, candidate names with cosines, cohesion (mean cosine to the centroid), the nearest
  known class, the most and least typical images; images that fit their cluster badly are listed
  apart. Nothing new is not an error: discover says "no new classes" and exits 0.

Examples:
  clip-ood discover ./rejected --detector pets.json --out discovery.json --report discovery.html
  clip-ood discover ./incoming --detector pets.json --only-ood --out discovery.json
  clip-ood discover ./camera --classes fox,deer --id ./labelled --k 3 --vocabulary animals.txt
  clip-ood discover ./test --classes cat,dog --labels truth.csv --seeds 5      # clustering accuracy
Then: clip-ood detector add-class pets.json --from discovery.json --clusters 1,3 --name 1=fox
      clip-ood calibrate --detector pets.json --id <validation images of every class>
${EXIT_HELP}`)
    .action(async (inputs: string[], opts: DiscoverCommandOptions, cmd: Command) => {
      setStatus(await runDiscover(inputs, opts, cmd.getOptionValueSource("templates") === "cli"));
    });
}
