/**
 * throughput: `clip-ood bench`'s suite on a full-size random-weight CLIP, SigLIP or MobileCLIP
 * (scripts/make-bench-model.ts, the real ViT-B/32, B/16, L/14, L/14-336, siglip-base-patch16-224 or
 * MobileCLIP-S0/S1/S2 structure), or on a real model folder with --model.
 */
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { runSuite } from "../../src/bench/suite.js";
import { reportTables } from "../../src/cli/commands/bench-command.js";
import { parseDtype } from "../../src/model/folder.js";
import type { Dtype } from "../../src/model/folder.js";
import { generateBenchModel, quantizedDtype } from "../bench-model/folder.js";
import { BENCH_ARCH_NAMES, benchSpec, isBenchArch } from "../bench-model/spec.js";
import type { BenchArch } from "../bench-model/spec.js";
import { ints, log, machineLine } from "./kit.js";
import type { Bench } from "./kit.js";

/** Where a generated bench model is kept by default: the user's cache, one folder per arch and q8 form. */
export function benchModelDir(arch: BenchArch, q8Form: "int8" | "xenova" = "int8", root = path.join(os.homedir(), ".cache", "clip-ood", "bench-models")): string {
  return path.join(root, arch.replace("/", "") + (q8Form === "int8" ? "" : "-xenova"));
}

/** Generates (or reuses) the full-size `arch` model in `dir`, with its 8-bit variant when the dtypes ask for it (q8; MobileCLIP: int8). */
export async function generatedModel(dir: string, arch: BenchArch, dtypes: readonly Dtype[], q8Form: "int8" | "xenova", bench: string): Promise<void> {
  log(`${bench}: generating (or reusing) the full-size ${arch} model in ${dir}`);
  await generateBenchModel(dir, { arch, q8: dtypes.includes(quantizedDtype(benchSpec(arch))), q8Form });
}

export const throughputBench: Bench = {
  title: "throughput: images and prompts per second, end to end against the raw graph",
  intro: [
    "`clip-ood bench` on a full-size CLIP or SigLIP with random weights and the real structure",
    "(scripts/make-bench-model.ts: ViT-B/32, B/16 or L/14 towers as the Hugging Face exports, or",
    "`--arch SigLIP-B/16`, siglip-base-patch16-224 as Xenova's export: 196 tokens without a class token,",
    "an attention-pooling head, bidirectional text always padded to 64; or `--arch MobileCLIP-S0` (S1, S2),",
    "apple's reparameterised MCi convolutional image towers at 256 px and non-causal text fixed at 77, whose",
    "8-bit variant is `--dtypes fp32,int8` (ConvInteger, as its exports' _int8 files); fp32 and a",
    "dynamically quantised q8 variant: int8 weights, per tensor, or `--q8-form xenova` for the uint8",
    "vision weights transformers.js's converter writes), so the timings stand for the real model's; `--model <folder>`",
    "runs the same on a real export. \"raw graph\" is the vision graph alone in onnxruntime on one pre-made",
    "batch; \"end to end\" reads, decodes, preprocesses, infers and scores a folder of photo-like JPEGs",
    "of 500–1000 px. Text is timed padded to the context length (77 for CLIP, 64 for SigLIP) and, where the",
    "model allows it (CLIP), to the batch's longest prompt. Every row of a block comes from one run.",
  ].join("\n"),
  async run(argv, command) {
    const { values } = parseArgs({
      args: argv,
      options: {
        arch: { type: "string", default: "B/32" },
        model: { type: "string" },
        dtypes: { type: "string", default: "fp32,q8" },
        "batch-sizes": { type: "string", default: "1,16" },
        "worker-counts": { type: "string", default: "1" },
        "thread-counts": { type: "string" },
        count: { type: "string", default: "200" },
        seconds: { type: "string", default: "15" },
        texts: { type: "string", default: "512" },
        skip: { type: "string", default: "" },
        "q8-form": { type: "string", default: "int8" },
        "model-dir": { type: "string" },
      },
      strict: true,
    });
    if (!isBenchArch(values.arch)) throw new Error(`--arch ${values.arch}: use ${BENCH_ARCH_NAMES.join(", ")}`);
    const arch = values.arch;
    const dtypes = values.dtypes.split(",").map((d) => parseDtype(d.trim()));
    let model = values.model;
    if (!model) {
      const q8Form = values["q8-form"] === "xenova" ? "xenova" : "int8";
      // --model-dir keeps a machine's runs apart from other users of the shared default cache.
      model = values["model-dir"] ?? benchModelDir(arch, q8Form);
      await generatedModel(model, arch, dtypes, q8Form, "throughput");
    }
    const report = await runSuite({
      model,
      dtypes,
      batchSizes: ints("batch-sizes", values["batch-sizes"]),
      workers: ints("worker-counts", values["worker-counts"]),
      ...(values["thread-counts"] ? { threads: ints("thread-counts", values["thread-counts"]) } : {}),
      count: ints("count", values.count)[0]!,
      seconds: ints("seconds", values.seconds)[0]!,
      texts: ints("texts", values.texts)[0]!,
      skip: new Set(values.skip.split(",").filter(Boolean) as ("text" | "cold" | "rss" | "ensemble")[]),
      log: (m) => log(`throughput: ${m}`),
    });
    const what = values.model ? `model ${values.model}` : `generated ${arch}`;
    return [
      {
        key: values.model ? `model=${path.basename(values.model)}` : `arch=${arch}`,
        markdown: [`### ${what}`, "", `Machine: ${machineLine()}.`, `Command: \`${command}\`.`, `Images: ${report.images.source}.`, "", reportTables(report)].join("\n"),
      },
    ];
  },
};
