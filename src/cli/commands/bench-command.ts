/**
 * clip-ood bench: the throughput suite (src/bench/suite.ts) on a model folder or Hub model, as a
 * table on stdout and, with --out <file>, the full report as JSON.
 */
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { runSuite } from "../../bench/suite.js";
import type { SuiteReport } from "../../bench/suite.js";
import { ClipOodError } from "../../errors.js";
import { DEFAULT_DTYPE, parseDtype } from "../../model/folder.js";
import type { Dtype } from "../../model/folder.js";
import { DEFAULT_MODEL_ID } from "../../model/hub-cache.js";
import { resolveModel } from "../../model/resolve.js";
import type { CommonOptions } from "../commands.js";
import { say } from "../commands.js";
import { EXIT_HELP } from "../exit.js";
import { int, withCommonOptions } from "../options.js";
import type { SetStatus } from "../options.js";

export interface BenchOptions extends CommonOptions {
  dtypes?: string;
  batchSizes: string;
  workerCounts: string;
  threadCounts?: string;
  images?: string;
  count: number;
  seconds: number;
  texts: number;
  skip?: string;
  out?: string;
}

function ints(flag: string, v: string): number[] {
  const xs = v.split(",").map((s) => Number(s.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1)) throw new ClipOodError("USAGE", `${flag} takes positive integers separated by commas, got "${v}"`, { hint: `e.g. ${flag} 8,16,32` });
  return xs;
}

const SKIPPABLE = ["text", "cold", "rss", "ensemble"] as const;

/** The report as the table `clip-ood bench` prints (and docs/PERFORMANCE.md shows). */
export function reportTables(r: SuiteReport): string {
  const lines = [
    "| dtype | batch | workers × threads | raw graph images/s | end-to-end images/s | end-to-end ÷ raw | decoding alone images/s |",
    "|---|---|---|---|---|---|---|",
    ...r.imageRuns.map((x) => `| ${x.dtype} | ${x.batchSize} | ${x.workers} × ${x.threads} | ${x.rawImagesPerSecond.toFixed(1)} | ${x.endToEndImagesPerSecond.toFixed(1)} | ${(100 * x.ratio).toFixed(0)}% | ${x.preprocessImagesPerSecond.toFixed(0)} |`),
    "",
    "| dtype | lowest image cosine to the first dtype | text prompts/s, padded to longest | padded to the context (tokens) | speed-up | max abs diff | cold start to first result | peak RSS of detect | ensemble: encode → from cache |",
    "|---|---|---|---|---|---|---|---|---|",
    ...r.dtypes.map((d) =>
      [
        d.dtype,
        d.lowestCosineToFirst === undefined ? "–" : d.lowestCosineToFirst.toFixed(4),
        !d.text ? "–" : d.text.longestPromptsPerSecond === undefined ? "– (always padded)" : d.text.longestPromptsPerSecond.toFixed(0),
        d.text ? `${d.text.paddedToContextPromptsPerSecond.toFixed(0)} (${d.text.contextLength})` : "–",
        d.text?.speedup === undefined ? "–" : `${d.text.speedup.toFixed(1)}×`,
        d.text?.maxAbsDiff === undefined ? "–" : d.text.maxAbsDiff.toExponential(1),
        d.coldStartSeconds === undefined ? "–" : `${d.coldStartSeconds.toFixed(2)} s`,
        d.detectPeakRssBytes === undefined ? "–" : `${(d.detectPeakRssBytes / 2 ** 20).toFixed(0)} MiB (${d.detectImages} images)`,
        d.ensemble ? `${d.ensemble.prompts} prompts: ${d.ensemble.encodeSeconds.toFixed(1)} s → ${d.ensemble.cachedSeconds.toFixed(2)} s` : "–",
      ].join(" | ").replace(/^/, "| ").concat(" |"),
    ),
  ];
  return lines.join("\n");
}

export async function runBench(opts: BenchOptions): Promise<number> {
  const dtypes = (opts.dtypes ?? opts.dtype ?? DEFAULT_DTYPE).split(",").map((d) => parseDtype(d.trim())) as Dtype[];
  const skip = new Set((opts.skip ?? "").split(",").map((s) => s.trim()).filter(Boolean));
  for (const s of skip) if (!(SKIPPABLE as readonly string[]).includes(s)) throw new ClipOodError("USAGE", `--skip ${s}: unknown part`, { hint: `choose from ${SKIPPABLE.join(", ")}` });
  const ref = opts.model ?? process.env["CLIP_OOD_MODEL"] ?? DEFAULT_MODEL_ID;
  const folder = await resolveModel(ref, { dtype: dtypes[0]!, ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(opts.offline ? { offline: true } : {}) });
  const report = await runSuite({
    model: folder.dir,
    dtypes,
    batchSizes: ints("--batch-sizes", opts.batchSizes),
    workers: ints("--worker-counts", opts.workerCounts),
    ...(opts.threadCounts ? { threads: ints("--thread-counts", opts.threadCounts) } : {}),
    ...(opts.images ? { images: opts.images } : {}),
    count: opts.count,
    seconds: opts.seconds,
    texts: opts.texts,
    skip: skip as ReadonlySet<(typeof SKIPPABLE)[number]>,
    log: (m) => say(opts, m),
  });
  process.stdout.write(reportTables(report) + "\n");
  if (opts.out) await writeFile(opts.out, JSON.stringify(report, null, 2) + "\n");
  return 0;
}

export function addBenchCommand(program: Command, setStatus: SetStatus): void {
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
pool and scores them. Text compares padding each batch to its longest prompt (what clip-ood does for
CLIP) with padding to the context length (77), and checks the embeddings agree; prompts that must
always be padded to the context (SigLIP's 64, fixed-length text graphs) are timed that way only.
Cold start is process start → first result line of clip-ood detect; peak RSS is that of clip-ood
detect over all the images.

Examples:
  clip-ood bench --model ./clip-vit-base-patch32 --dtypes fp32,q8
  clip-ood bench --batch-sizes 1,8,16,32 --worker-counts 1,2 --skip ensemble --out bench.json
${EXIT_HELP}`)
    .action(async (opts: BenchOptions) => {
      setStatus(await runBench(opts));
    });
}
