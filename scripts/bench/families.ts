/**
 * families: what each preset's architecture costs, every family measured in one run on one machine, so
 * that the rows compare (the per-arch throughput blocks may come from different days and hosts).
 */
import { parseArgs } from "node:util";
import { runSuite } from "../../src/bench/suite.js";
import type { SuiteReport } from "../../src/bench/suite.js";
import type { Dtype } from "../../src/model/folder.js";
import { quantizedDtype } from "../bench-model/folder.js";
import { parameterCount } from "../bench-model/parameters.js";
import { BENCH_ARCH_NAMES, benchSpec, isBenchArch } from "../bench-model/spec.js";
import type { BenchArch } from "../bench-model/spec.js";
import { figuresHead, ints, log, mb } from "./kit.js";
import type { Bench } from "./kit.js";
import { benchModelDir, generatedModel } from "./throughput.js";

/** The preset each generated architecture stands for (src/model/presets.ts). */
const PRESET: Readonly<Record<BenchArch, string>> = {
  "B/32": "clip-b32",
  "B/16": "clip-b16",
  "L/14": "clip-l14",
  "L/14-336": "clip-l14-336",
  "SigLIP-B/16": "siglip-b16",
  "MobileCLIP-S0": "mobileclip-s0",
  "MobileCLIP-S1": "mobileclip-s1",
  "MobileCLIP-S2": "mobileclip-s2",
};

const COLUMNS = ["preset", "generated as", "parameters, vision + text", "dtype", "raw graph images/s", "end-to-end images/s", "prompts/s at the context (tokens)", "cold start", "peak RSS of detect"];

export const familiesBench: Bench = {
  title: "families: what each preset's architecture costs, measured in one run",
  intro: [
    "`clip-ood bench`'s suite on every generated full-size architecture in turn (scripts/make-bench-model.ts:",
    "random weights, each export's structure and shapes), one batch size and one worker, so that every",
    "row comes from the same machine in the same hour. fp32 and an 8-bit variant with int8 weights per tensor:",
    "q8 (`_quantized`, the MatMuls) for CLIP and SigLIP; int8 (`_int8`, the variant MobileCLIP's exports",
    "have: its convolutions as ConvInteger too) for MobileCLIP. End to end reads, decodes, resizes (MobileCLIP: bilinear, in",
    "JavaScript, exactly as PIL) and infers 500–1000 px JPEGs. The per-architecture blocks under",
    "throughput have the fuller tables.",
  ].join("\n"),
  async run(argv, command) {
    const { values } = parseArgs({
      args: argv,
      options: {
        archs: { type: "string", default: BENCH_ARCH_NAMES.join(",") },
        "batch-size": { type: "string", default: "16" },
        count: { type: "string", default: "48" },
        seconds: { type: "string", default: "8" },
        texts: { type: "string", default: "128" },
        "models-dir": { type: "string" },
      },
      strict: true,
    });
    const archs = values.archs.split(",").map((a) => a.trim());
    for (const a of archs) if (!isBenchArch(a)) throw new Error(`--archs ${a}: use ${BENCH_ARCH_NAMES.join(", ")}`);
    const rows: string[] = [];
    for (const arch of archs as BenchArch[]) {
      const dtypes: Dtype[] = ["fp32", quantizedDtype(benchSpec(arch))];
      const model = values["models-dir"] ? benchModelDir(arch, "int8", values["models-dir"]) : benchModelDir(arch);
      await generatedModel(model, arch, dtypes, "int8", "families");
      const report = await runSuite({
        model,
        dtypes,
        batchSizes: ints("batch-size", values["batch-size"]).slice(0, 1),
        workers: [1],
        count: ints("count", values.count)[0]!,
        seconds: ints("seconds", values.seconds)[0]!,
        texts: ints("texts", values.texts)[0]!,
        skip: new Set(["ensemble"] as const),
        log: (m) => log(`families: ${arch}: ${m}`),
      });
      rows.push(...familyRows(arch, report));
    }
    const note = `; ${values.count} JPEGs of 500–1000 px, batch ${values["batch-size"]}, 1 worker × all cores`;
    // A run over some architectures gets its own block rather than replacing the one over all of them.
    const all = archs.join(",") === BENCH_ARCH_NAMES.join(",");
    const heading = all ? "every family" : archs.join(", ");
    return [{ key: all ? "all" : `archs=${archs.join(",")}`, markdown: [...figuresHead(heading, command, note, COLUMNS), ...rows].join("\n") }];
  },
};

/** One row per dtype of one architecture's report. */
export function familyRows(arch: BenchArch, r: SuiteReport): string[] {
  const p = parameterCount(arch);
  const millions = `${(p.vision / 1e6).toFixed(1)} + ${(p.text / 1e6).toFixed(1)} M`;
  return r.dtypes.map((d) => {
    const image = r.imageRuns.find((x) => x.dtype === d.dtype);
    const cells = [
      `\`${PRESET[arch]}\``,
      arch,
      millions,
      d.dtype,
      image ? image.rawImagesPerSecond.toFixed(1) : "–",
      image ? image.endToEndImagesPerSecond.toFixed(1) : "–",
      d.text ? `${d.text.paddedToContextPromptsPerSecond.toFixed(0)} (${d.text.contextLength})` : "–",
      d.coldStartSeconds === undefined ? "–" : `${d.coldStartSeconds.toFixed(2)} s`,
      d.detectPeakRssBytes === undefined ? "–" : mb(d.detectPeakRssBytes),
    ];
    return `| ${cells.join(" | ")} |`;
  });
}
