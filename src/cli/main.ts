#!/usr/bin/env node
/**
 * The clip-ood command: classify, detect and embed, all on the library's ClipModel.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { ClipOodError, fileSystemError, isClipOodError } from "../errors.js";
import { EXIT, EXIT_FOR, EXIT_HELP } from "./exit.js";
import { collect, int, num, withClassOptions, withCommonOptions, withFormatOptions, withQueueBatchOptions } from "./options.js";
import { METHOD_OPTION_KEYS, METHODS_HELP, withMethodOptions, withMethodSettings } from "./method-options.js";
import { runModels } from "./models-command.js";
import { runClassify } from "./classify-command.js";
import { runEmbed } from "./embed-command.js";
import { runDetect } from "./detect-command.js";
import type { DetectOptions } from "./detect-command.js";
import type { CommonOptions } from "./commands.js";
import { watchStdout } from "./output.js";
import { runExport, runIndex, runSearch, runStore } from "./store-commands.js";
import { runQueueCommand, runQueuedIndex, runWorkerCommand } from "./queue-commands.js";
import type { QueueCommandOptions, WorkerCommandOptions } from "./queue-commands.js";
import { DEFAULT_ANN_THRESHOLD } from "../search/ann.js";
import type { IndexCommandOptions, SearchCommandOptions } from "./store-commands.js";
import { runAddClass, runCalibrate, runCombine, runFit, runRemoveClass, runShow } from "./detector-commands.js";
import type { CalibrateOptions, CombineOptions, FitOptions } from "./detector-commands.js";
import { DETECTOR_METHODS } from "../ood/detector.js";
import { runEval } from "./eval-command.js";
import { runServe } from "./serve-command.js";
import { runBench } from "./bench-command.js";
import type { BenchOptions } from "./bench-command.js";
import type { ServeOptions } from "./serve-command.js";
import type { EvalCommandOptions } from "./eval-command.js";
import { FPR_CONVENTIONS } from "../eval/types.js";
import { DEFAULT_SEEDS } from "../eval/shots.js";

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("--port must be an integer in 0…65535");
  return n;
}

/** A comma-separated list of distinct positive integers, ascending (--shots 1,2,4,8,16). */
function shotsList(v: string): number[] {
  const items = v.split(",").map((x) => x.trim()).filter(Boolean);
  const n = items.map(Number);
  if (n.length === 0 || n.some((x) => !Number.isInteger(x) || x < 1)) throw new InvalidArgumentError("--shots must be positive integers, comma-separated, e.g. 1,2,4,8,16");
  if (new Set(n).size !== n.length) throw new InvalidArgumentError("--shots names a count twice");
  return n.sort((a, b) => a - b);
}

export function buildProgram(): { program: Command; status: () => number } {
  let status: number = EXIT.ok;
  const program = new Command("clip-ood")
    .description("CLIP zero-shot classification and out-of-distribution detection, offline once the model is cached.")
    .version("0.1.0")
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText("after", EXIT_HELP)
    .exitOverride();

  withFormatOptions(withClassOptions(withCommonOptions(program.command("classify"))))
    .description("Top-k zero-shot classes per image, with probabilities softmax(100·cos).")
    .argument("<inputs...>", "image files, folders (recursive), globs, or - to read paths from stdin")
    .option("-k, --top-k <k>", "classes to show per image", int("--top-k"), 5)
    .addHelpText("after", `
Examples:
  clip-ood classify ./photos --classes cat,dog,car
  clip-ood classify img.jpg --classes classes.txt --templates imagenet-80 --json
  find . -name '*.png' | clip-ood classify - --classes red,green,blue --csv
${EXIT_HELP}`)
    .action(async (inputs: string[], opts: CommonOptions & { topK: number }) => {
      status = await runClassify(inputs, opts);
    });

  withFormatOptions(withMethodOptions(withClassOptions(withCommonOptions(program.command("detect")), false)))
    .description("Is each image one of the classes? Scores every input with an OOD method (default MCM) or a saved detector; low scores are out-of-distribution.")
    .argument("<inputs...>", "image files, folders (recursive), globs, - to read paths from stdin, or embeddings files (.jsonl/.npy from embed)")
    .option("-d, --detector <file>", "score with a saved detector (from `clip-ood fit`): its model, classes, method and threshold")
    .option("--threshold <t>", "flag inputs whose score is below t as OOD (without it, scores only)", num("--threshold"))
    .addHelpText("after", `
${METHODS_HELP}
Choosing a threshold:
  Run detect on in-distribution validation images without --threshold and take the 5th percentile
  of their scores: 95% of in-distribution images then pass (the FPR@95%TPR convention).
  \`clip-ood calibrate\` does this for a saved detector. MCM scores of K classes lie in [1/K, 1].

Examples:
  clip-ood detect ./photos --classes cat,dog,car
  clip-ood detect ./incoming --classes classes.txt --threshold 0.36 --json
  clip-ood detect ./incoming --method knn --id ./train          # ./train/{cat,dog}/*.jpg
  clip-ood detect --detector pets.json ./incoming photos.jsonl
${EXIT_HELP}`)
    .action(async (inputs: string[], opts: DetectOptions, cmd: Command) => {
      if (opts.detector !== undefined) {
        const clashing = [...METHOD_OPTION_KEYS, "classes", "templates", "threshold"].filter((k) => cmd.getOptionValueSource(k) === "cli");
        if (clashing.length > 0) {
          throw new ClipOodError("USAGE", `--detector already holds ${clashing.map((k) => "--" + k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())).join(", ")}`, {
            hint: "edit the class list with `clip-ood detector add-class/remove-class`, the threshold with `clip-ood calibrate`, or fit a new detector",
          });
        }
      }
      status = await runDetect(inputs, opts, cmd.getOptionValueSource("templates") === "cli");
    });

  const fit = withMethodOptions(withClassOptions(withCommonOptions(program.command("fit")), false))
    .description("Build a detector once — class text features, negatives, fitted statistics, settings — and save it for detect --detector and calibrate.")
    .requiredOption("-o, --out <file>", "where to save the detector (JSON, plus <file>.bin with its arrays)")
    .addHelpText("after", `
${METHODS_HELP}
Examples:
  clip-ood fit --classes cat,dog,car --out pets.json
  clip-ood fit --classes cat,dog,car --method neglabel --out pets-neg.json
  clip-ood fit --method knn --id ./train/pets --out pets-knn.json     # ./train/pets/{cat,dog,car}/*.jpg
  clip-ood fit --method ocsvm --id ./good-parts --out parts.json      # unlabelled normal images
  clip-ood fit --method linear-probe --id ./train/pets --out pets-probe.json
  clip-ood fit --method tip-adapter --id ./train/pets --out pets-tip.json   # 1+ image per class
${EXIT_HELP}`);
  fit.action(async (opts: FitOptions, cmd: Command) => {
    status = await runFit(opts, cmd.getOptionValueSource("templates") === "cli");
  });

  const evalCmd = withFormatOptions(withMethodSettings(withClassOptions(withCommonOptions(program.command("eval")), false)))
    .description("Measure OOD detection: methods or saved detectors × OOD sets → AUROC, FPR@95TPR, AUPR-In/Out, detection accuracy, ID accuracy; an HTML report with plots.")
    .requiredOption("--id <set>", "in-distribution test set (see Sets below)")
    .option("--ood <name=set>", "an OOD test set and its name; repeatable", collect, [] as string[])
    .option("--methods <list>", `OOD methods to compare, comma-separated (default mcm): ${DETECTOR_METHODS.filter((m) => m !== "combo").join(", ")}`)
    .option("-d, --detector <file>", "also evaluate a saved detector (from fit, calibrate or combine); repeatable", collect)
    .option("--fit <set>", "fitted methods (mahalanobis, knn, ocsvm and the learned heads): in-distribution training data to fit on (not the --id test set); repeatable", collect)
    .option("--shots <list>", "few-shot curves: fit the --fit methods on k examples per class for each k, e.g. 1,2,4,8,16 (see Few-shot curves below)", shotsList)
    .option("--seeds <n>", `with --shots: draws per shot count, seeds 0…n−1 (default ${DEFAULT_SEEDS})`, int("--seeds"))
    .addOption(new Option("--fpr-convention <c>", "FPR@95TPR as the CLIP-OOD papers' code (hendrycks: ID positive) or OpenOOD v1.5 (openood: OOD positive)").choices([...FPR_CONVENTIONS]).default("hendrycks"))
    .option("--report <file.html>", "write a self-contained HTML report: metric table, ROC curves, score histograms, worst errors as thumbnails")
    .option("--plots <dir>", "write every chart as SVG and PNG into this folder")
    .option("--queue", "PostgreSQL stores: have `clip-ood worker` processes embed the sets' images first, wait for them, then score");
  withQueueBatchOptions(evalCmd)
    .addHelpText("after", `
Sets (--id, --ood, --fit): a folder of class folders (labels = folder names), a flat folder or glob,
a list file (.txt/.lst: \`path [label]\` per line, relative to the list), a CSV/TSV with a path column
(path/file/image/input) and an optional label column (label/class/target), or an embeddings file
(.jsonl/.npy from \`clip-ood embed\` or \`clip-ood export\`). Labels are class names or class indices.
Classes default to the --id set's class folders (or labels). Images are embedded through the store:
rerunning with other methods embeds nothing again. With --queue (a postgres:// store) the images the
store lacks are embedded by \`clip-ood worker\` processes first, with one progress bar over all of them.

Metrics (in-distribution is the positive class; docs/EVALUATION.md): AUROC (ties count ½), FPR at 95%
TPR (closest to 95% recall, ties grouped, as MCM/NegLabel; --fpr-convention openood: OpenOOD v1.5's
OOD-positive rate), AUPR-In and AUPR-Out (OpenOOD: trapezoidal area under the PR curve), detection
accuracy max ½(TPR + TNR), the threshold FPR95 was read at, and ID top-1 accuracy when --id has labels.
One row per method and OOD set, plus each method's unweighted average over the OOD sets. --json prints
{method, ood, auroc, fpr95, auprIn, auprOut, detectionAccuracy, threshold, n: {id, ood}, idAccuracy}
per row, metrics as fractions; the table shows percentages.

Few-shot curves (--shots, with --fit and a method fitted on it): the --fit data is embedded once; for
each k and seed 0…n−1 (--seeds, default ${DEFAULT_SEEDS}) k examples per class are drawn from it (seeded,
stratified, a seed's smaller draws inside its larger ones) and every fitted method is fitted on them and
evaluated. A class with fewer than k examples is an error. Methods that take no fitting data are
evaluated once. Rows gain a shots column (null/"-" for those evaluated once) and the number of seeds;
each metric is the mean over the seeds, and --json adds std: {auroc, fpr95, auprIn, auprOut,
detectionAccuracy, threshold, idAccuracy}, the sample standard deviations (n − 1; 0 with one seed;
null when evaluated once); the table and CSV add a ± column after each metric. --report and --plots
add AUROC (averaged over the OOD sets) and ID accuracy against shots; their other charts show each
fitted method at the largest k, seed 0.

${METHODS_HELP}
Examples:
  clip-ood eval --id ./val --ood textures=./dtd --ood places=places.txt --methods mcm,energy,neglabel
  clip-ood eval --id ./val --ood dtd=./dtd --methods mcm,knn --fit ./train --report report.html
  clip-ood eval --id val.jsonl --ood dtd=dtd.jsonl --detector pets.json --json
  clip-ood eval --id ./val --ood dtd=./dtd --methods mcm,linear-probe --fit ./train --shots 1,2,4,8,16 --plots curves/
${EXIT_HELP}`)
    .action(async (opts: EvalCommandOptions, cmd: Command) => {
      status = await runEval(opts, cmd.getOptionValueSource("templates") === "cli");
    });

  withCommonOptions(program.command("serve"))
    .description("Serve the HTTP API (docs/API.md) and the web UI on one loaded model.")
    .option("--host <host>", "address to listen on (127.0.0.1: this machine only)", "127.0.0.1")
    .option("--port <port>", "port to listen on (0: any free port, printed at start)", port, 8080)
    .option("-d, --detector <file>", "serve this saved detector under its file name (repeatable)", collect)
    .option("--detectors-dir <dir>", "save detectors created or edited through the API here, and load those saved before (not with a PostgreSQL --store, which keeps them for every server on it)")
    .option("--api-key <key>", "require Authorization: Bearer <key> on /v1/ (default $CLIP_OOD_API_KEY)")
    .option("--cors <origins>", "allow these browser origins, comma-separated (default: CORS off)")
    .option("--data-root <dir>", "a folder whose files requests may name (eval sets, calibration folders, thumbnails); repeatable", collect)
    .option("--max-body-bytes <n>", "largest request body", int("--max-body-bytes"))
    .option("--max-images <n>", "images per request", int("--max-images"))
    .option("--max-classes <n>", "classes per request", int("--max-classes"))
    .option("--max-prompt-length <n>", "characters per class name, template or search text", int("--max-prompt-length"))
    .option("--max-queue <n>", "requests waiting for inference before 503 + Retry-After", int("--max-queue"))
    .option("--concurrency <n>", "requests running inference at once", int("--concurrency"))
    .option("--timeout <s>", "seconds a request may take, queueing included, before 504", int("--timeout"))
    .option("--log", "log every request as a JSON line on stdout")
    .addHelpText("after", `
Endpoints: POST /v1/classify, /v1/detect, /v1/embed, /v1/search; /v1/detectors (GET, POST, DELETE,
…/classes, …/calibrate); POST /v1/eval + GET /v1/jobs/:id; GET /healthz, /readyz, /metrics (Prometheus),
/openapi.json. Images come as multipart file fields named "image" or as base64 in JSON; the server
never fetches URLs. Limits answer 4xx with a JSON error naming the limit; a full queue answers 503.
/v1/search and eval jobs use the embedding store (--store, default <cache-dir>/store.sqlite). Defaults:
max body 50 MB, 64 images, 2000 classes, 1000 characters, queue 32, concurrency 2, timeout 120 s.

Examples:
  clip-ood serve                                   # http://127.0.0.1:8080/
  clip-ood serve --detector pets.json --api-key "$KEY" --host 0.0.0.0
  curl -F image=@cat.jpg -F classes=cat,dog http://127.0.0.1:8080/v1/detect
${EXIT_HELP}`)
    .action(async (opts: ServeOptions) => {
      status = await runServe(opts);
    });

  withCommonOptions(program.command("bench"))
    .description("Measure throughput on this machine: end-to-end images/s against the raw graph, text prompts/s, cold start, peak memory, the ensemble cache.")
    .option("--dtypes <list>", "variants to compare, comma-separated, e.g. fp32,q8 (default: --dtype or fp32)")
    .option("--batch-sizes <list>", "batch sizes to sweep", "16")
    .option("--worker-counts <list>", "worker-thread counts to sweep", "1")
    .option("--thread-counts <list>", "onnxruntime threads per worker to sweep (default: cores / workers)")
    .option("--images <folder>", "photos to run end to end (default: generated JPEGs of 500–1000 px)")
    .option("--count <n>", "images to run end to end", int("--count"), 300)
    .option("--seconds <s>", "seconds per raw-graph measurement", int("--seconds"), 10)
    .option("--texts <n>", "prompts for the text rates", int("--texts"), 512)
    .option("--skip <parts>", "leave out some of: text, cold, rss, ensemble")
    .option("-o, --out <file>", "also write the full report as JSON")
    .addHelpText("after", `
Every figure comes from one run, so ratios compare like with like on a busy machine. "raw graph" runs
the vision graph alone in onnxruntime (clip-ood's session options, workers × threads cores) on one
pre-made batch; "end to end" reads, decodes and preprocesses the images, runs them through the worker
pool and scores them. Text compares padding each batch to its longest prompt (what clip-ood does) with
padding to 77, and checks the embeddings agree. Cold start is process start → first result line of
clip-ood detect; peak RSS is that of clip-ood detect over all the images.

Examples:
  clip-ood bench --model ./clip-vit-base-patch32 --dtypes fp32,q8
  clip-ood bench --batch-sizes 1,8,16,32 --worker-counts 1,2 --skip ensemble --out bench.json
${EXIT_HELP}`)
    .action(async (opts: BenchOptions) => {
      status = await runBench(opts);
    });

  withCommonOptions(program.command("calibrate"))
    .description("Set a detector's threshold from validation data: keep a fraction of in-distribution inputs (--tpr), or let at most a fraction of OOD inputs through (--fpr).")
    .requiredOption("-d, --detector <file>", "the detector to calibrate (updated in place unless --out)")
    .requiredOption("--id <input>", "in-distribution validation images, a folder or an embeddings file; repeatable", collect)
    .option("--ood <input>", "out-of-distribution validation images, a folder or an embeddings file; repeatable", collect)
    .option("--tpr <rate>", "fraction of in-distribution inputs to keep (default 0.95 without --ood)", num("--tpr"))
    .option("--fpr <rate>", "fraction of OOD inputs to let through (default 0.05 with --ood)", num("--fpr"))
    .option("-o, --out <file>", "save the calibrated detector here instead")
    .addHelpText("after", `
Prints one JSON line: {detector, threshold, target, tpr, fpr, id, ood}.

Examples:
  clip-ood calibrate --detector pets.json --id ./val/pets
  clip-ood calibrate --detector pets.json --id ./val/pets --ood ./val/other --fpr 0.05
${EXIT_HELP}`)
    .action(async (opts: CalibrateOptions) => {
      status = await runCalibrate(opts);
    });

  withCommonOptions(program.command("combine"))
    .description("Combine saved detectors into one: a weighted sum of their scores, each standardised on in-distribution validation data.")
    .argument("<detectors...>", "two or more detector files made for the same model")
    .requiredOption("--id <input>", "in-distribution validation images, a folder or an embeddings file, to standardise each score; repeatable", collect)
    .option("--ood <input>", "OOD validation images or embeddings: choose the weights with the best validation AUROC (grid search); repeatable", collect)
    .option("--weights <list>", "one weight per detector, comma-separated (default: chosen on --ood data if given, otherwise equal)")
    .requiredOption("-o, --out <file>", "where to save the combined detector (then calibrate it)")
    .addHelpText("after", `
Each part's score is standardised on the --id data, then summed with the weights. With --ood, the
weights are the point of a grid on the simplex (steps of 0.05 for two parts, coarser for more; each
part alone included) whose sum separates --id from --ood best by AUROC, ties going to the most even
weights. The combined label is the first detector's: list the one whose labels you want first.
Prints one JSON line: {detector, parts, weights, weightsFrom: given|validation|equal, id, and with
--ood: ood, validationAuroc, partAuroc, tried}.

Example, a zero-shot detector fused with a few-shot one:
  clip-ood combine mcm.json knn.json --id ./val/pets --ood ./val/other --out hybrid.json
${EXIT_HELP}`)
    .action(async (files: string[], opts: CombineOptions) => {
      status = await runCombine(files, opts);
    });

  const indexCmd = withFormatOptions(withCommonOptions(program.command("index")))
    .description("Embed images into the store once: later classify, detect, fit, calibrate and search reuse them.")
    .argument("<inputs...>", "image files, folders (recursive), globs, or - to read paths from stdin")
    .option("--ann-threshold <n>", "collection size above which the HNSW search index is built", int("--ann-threshold"), DEFAULT_ANN_THRESHOLD)
    .option("--queue", "enqueue the images on the PostgreSQL store's job queue for `clip-ood worker` processes instead of embedding here")
    .option("--wait", "with --queue: follow the workers' progress until every batch is done");
  withQueueBatchOptions(indexCmd)
    .addHelpText("after", `
Unchanged files (same size and modification time) are skipped without reading them; moved or copied
files are recognised by their content. Each batch is committed on its own: an interrupted run loses
at most the batch in flight, and running it again finishes the rest. Files gone from an indexed folder
are forgotten. --json prints a summary line. A collection above --ann-threshold images also gets its
HNSW search index built (or brought up to date) here, so that searches find it ready.

With --queue (PostgreSQL stores only) the images the store lacks are enqueued in batches of --job-size,
and any number of \`clip-ood worker\` processes on any machines that see the same paths embed them;
--wait shows one progress bar over all of them and exits 1 if some images failed (\`clip-ood queue
failed\` lists them).

Examples:
  clip-ood index ~/Pictures
  clip-ood index ./dataset --store ./dataset.sqlite --dtype q8
  clip-ood index /mnt/photos --store postgres://clip@db/clip --queue --wait
${EXIT_HELP}`)
    .action(async (inputs: string[], opts: IndexCommandOptions & QueueCommandOptions & { queue?: boolean }) => {
      status = opts.queue ? await runQueuedIndex(inputs, opts) : await runIndex(inputs, opts);
    });

  withFormatOptions(withCommonOptions(program.command("worker")))
    .description("Embed batches from the PostgreSQL store's job queue (filled by `index --queue`) until stopped.")
    .option("--once", "exit once no batch is waiting or held by any worker")
    .option("--poll <seconds>", "how often an idle worker looks for new batches", int("--poll"), 1)
    .option("--check-every <seconds>", "how often this worker hands expired leases (batches of vanished workers) back to the queue", int("--check-every"), 30)
    .addHelpText("after", `
Each batch's embeddings are written and its job completed in one transaction: a worker killed at any
moment leaves nothing half-written, and its batch is taken again when its lease (index --lease) runs
out. Images that cannot be read are recorded once with the batch (\`clip-ood queue failed\`), not
retried. SIGTERM or SIGINT: the batch in hand is finished, then the worker exits. Start workers with
the same --model and --dtype as the index command; a worker with another model refuses the batch.
One line per batch on stderr (--json: on stdout).

Examples:
  CLIP_OOD_STORE=postgres://clip@db/clip clip-ood worker
  clip-ood worker --store postgres://clip@db/clip --dtype q8 --once
${EXIT_HELP}`)
    .action(async (opts: WorkerCommandOptions) => {
      status = await runWorkerCommand(opts);
    });

  const queueCmd = program.command("queue").description("Look at the PostgreSQL store's embedding queue (--store postgres://…, or $CLIP_OOD_STORE).");
  for (const [action, text] of [
    ["status", "print the number of batches and files by state as JSON"],
    ["failed", "list the images no worker could embed, and the files of batches that failed on every attempt"],
  ] as const) {
    queueCmd
      .command(action)
      .description(text)
      .option("--store <url>", "the PostgreSQL store (default $CLIP_OOD_STORE)")
      .option("--json", "JSON Lines on stdout")
      .action(async (opts: CommonOptions & { json?: boolean }) => {
        status = await runQueueCommand(action, opts);
      });
  }

  withFormatOptions(withCommonOptions(program.command("search")))
    .description("Find indexed images by text, by image, or by their arithmetic, best first.")
    .argument("[text...]", "what to look for, e.g. a dog wearing sunglasses")
    .option("--image <file>", "look for images like this one (repeatable)", collect, [] as string[])
    .option("--add <text>", "add this text to the query (repeatable)", collect, [] as string[])
    .option("--subtract <text>", "subtract this text from the query (repeatable)", collect, [] as string[])
    .option("--top <k>", "results to show", int("--top"), 10)
    .option("--in <folder>", "only images under this folder")
    .option("--paths", "print bare paths, one per line (for pipes)")
    .option("--ann-threshold <n>", "collection size above which an approximate HNSW index is used instead of exact search", int("--ann-threshold"), DEFAULT_ANN_THRESHOLD)
    .addHelpText("after", `
Each part of the query (text, --image, --add, --subtract) is normalised, then they are summed (subtract
counts −1) and normalised again. Scores are cosines. Search is exact up to --ann-threshold images and
uses an HNSW index above it (kept beside the store, rebuilt when the indexed files change). Files
deleted since they were indexed drop out of the results.

Examples:
  clip-ood search "a dog wearing sunglasses"
  clip-ood search --image cat.jpg --subtract "a cat" --add "a dog" --top 5 --json
  clip-ood search "sunset over the sea" --paths | xargs open
${EXIT_HELP}`)
    .action(async (text: string[], opts: SearchCommandOptions) => {
      status = await runSearch(text, opts);
    });

  withCommonOptions(program.command("export"))
    .description("Write the store's embeddings of the model: .npy (+ <file>.json listing the rows) or JSON Lines.")
    .requiredOption("-o, --out <file>", "output file (.npy or .jsonl)")
    .option("--in <folder>", "only images under this folder")
    .action(async (opts: CommonOptions & { out: string; in?: string }) => {
      status = await runExport(opts);
    });

  const storeCmd = program.command("store").description("Inspect and maintain the embedding store (--store <file or postgres:// URL>, default $CLIP_OOD_STORE or <cache-dir>/store.sqlite).");
  for (const [action, text] of [
    ["stats", "print counts per model and the file size as JSON"],
    ["prune", "forget files that no longer exist and embeddings nothing refers to"],
    ["vacuum", "compact the database file"],
  ] as const) {
    storeCmd
      .command(action)
      .description(text)
      .option("--store <file|url>", "the store: an SQLite file or a postgres:// URL (default $CLIP_OOD_STORE, else <cache-dir>/store.sqlite)")
      .option("--cache-dir <dir>", "cache folder holding the default store")
      .action(async (opts: CommonOptions) => {
        status = await runStore(action, opts);
      });
  }

  const detectorCmd = program.command("detector").description("Inspect a saved detector or change its class list (open world).");
  withCommonOptions(detectorCmd.command("add-class"))
    .description("Add classes, encoding only their prompts with the detector's templates; the threshold is kept.")
    .argument("<detector>", "detector file")
    .argument("<labels...>", "class names to add")
    .option("--describe <text>", "a description prompt for the added class (repeatable)", collect, [] as string[])
    .action(async (file: string, labels: string[], opts: CommonOptions & { describe: string[] }) => {
      status = await runAddClass(file, labels, opts);
    });
  detectorCmd
    .command("remove-class")
    .description("Remove classes by label; nothing is re-encoded and the threshold is kept.")
    .argument("<detector>", "detector file")
    .argument("<labels...>", "class names to remove")
    .option("-q, --quiet", "no notes on stderr")
    .action(async (file: string, labels: string[], opts: CommonOptions) => {
      status = await runRemoveClass(file, labels, opts);
    });
  detectorCmd
    .command("show")
    .description("Print a detector's method, model, classes and threshold as JSON.")
    .argument("<detector>", "detector file")
    .action(async (file: string) => {
      status = await runShow(file);
    });

  withFormatOptions(program.command("models"))
    .description("List the model presets --model accepts: the Hub id each stands for, image size, embedding width, the dtype variants the export holds and their download sizes, and whether clip-ood runs it yet.")
    .addHelpText("after", `
A preset is a name for its Hub id: it downloads and caches exactly as the id would, and detectors and the
store record the id. A full Hub id (owner/name) or a local folder works wherever a preset does; a local
folder of the same name wins. Sizes are the Hub's (MB = 10^6 bytes), text and vision graphs together.

Examples:
  clip-ood classify ./photos --model clip-b16 --classes cat,dog
  clip-ood models --json`)
    .action((opts: { json?: boolean; csv?: boolean }) => {
      status = runModels(opts);
    });

  withCommonOptions(program.command("embed"))
    .description("L2-normalised CLIP embeddings of images and texts, as JSON Lines (or .npy with a JSON sidecar).")
    .argument("[inputs...]", "image files, folders (recursive), globs, or - to read paths from stdin")
    .option("--text <text>", "embed this text exactly as given, no template (repeatable)", collect, [] as string[])
    .option("-o, --out <file>", "write here: .jsonl (default stdout) or .npy (+ <file>.json listing the rows)")
    .option("--labelled", "the inputs are labelled sets (a folder of class folders, a list or CSV with labels): record each image's \"label\", so fit and eval can use the file as labelled data")
    .addHelpText("after", `
Each JSON line: {"input", "kind": "image"|"text", ["label",] "model", "embedding": [...]}.

Examples:
  clip-ood embed ./photos --out photos.jsonl
  clip-ood embed --labelled ./train --out train.jsonl     # then: clip-ood fit --method linear-probe --id train.jsonl …
  clip-ood embed --text "a photo of a cat" --text "a photo of a dog" --out texts.npy
${EXIT_HELP}`)
    .action(async (inputs: string[], opts: CommonOptions & { text: string[]; out?: string; labelled?: boolean }) => {
      status = await runEmbed(inputs, opts);
    });

  return { program, status: () => status };
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { program, status } = buildProgram();
    if (argv.length <= 2) {
      program.outputHelp();
      return EXIT.usage;
    }
    await program.parseAsync(argv);
    return status();
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help" ? EXIT.ok : EXIT.usage;
    }
    const clear = isClipOodError(e) ? e : fileSystemError(e);
    if (clear) {
      process.stderr.write(`clip-ood: ${clear.message}\n`);
      if (clear.hint) process.stderr.write(`  hint: ${clear.hint}\n`);
      return EXIT_FOR[clear.code];
    }
    process.stderr.write(`clip-ood: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.internal;
  }
}

watchStdout();
process.exitCode = await main(process.argv);
