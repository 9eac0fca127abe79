/**
 * clip-ood bench: the throughput suite (src/bench/suite.ts) on a model folder or Hub model, as a
 * table on stdout and, with --json <file>, the full report as JSON.
 */
import { writeFile } from "node:fs/promises";
import { runSuite } from "../bench/suite.js";
import type { SuiteReport } from "../bench/suite.js";
import { ClipOodError } from "../errors.js";
import { DEFAULT_DTYPE, parseDtype } from "../model/folder.js";
import type { Dtype } from "../model/folder.js";
import { DEFAULT_MODEL_ID } from "../model/hub.js";
import { resolveModel } from "../model/resolve.js";
import type { CommonOptions } from "./commands.js";
import { say } from "./commands.js";

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
