/**
 * clip-ood classify: the top-k zero-shot classes of each image, as a table, JSON Lines or CSV.
 */
import type { Command } from "commander";
import type { ClassFeatures } from "../../clip.js";
import type { Scoring } from "../../maths/scores.js";
import { loadClasses } from "../../text/classes.js";
import type { ClassSpec } from "../../text/classes.js";
import { resolveTemplates } from "../../text/templates.js";
import { classify } from "../../zeroshot.js";
import type { CommonOptions } from "../commands.js";
import { eachImage, format, images, openModel, summary } from "../commands.js";
import { EXIT_HELP } from "../exit.js";
import { int, withClassOptions, withCommonOptions, withFormatOptions } from "../options.js";
import type { SetStatus } from "../options.js";
import type { Format } from "../output.js";
import { rowWriter, widest } from "../output.js";
import { progress } from "../progress.js";

/** A zero-shot job's columns, and the row each image's embedding becomes. */
interface ZeroShotJob {
  header: string[];
  widths: number[];
  row(embedding: Float32Array, features: ClassFeatures, scoring: Scoring): { cells: string[]; json: Record<string, unknown> };
  finish?(): void;
}

/** The classify pipeline: classes → inputs → model → class features → a row per image. */
async function runZeroShot(
  inputs: string[],
  opts: CommonOptions,
  makeJob: (classes: ClassSpec[], fmt: Format, inputWidth: number) => Promise<ZeroShotJob> | ZeroShotJob,
): Promise<number> {
  const classes = await loadClasses(opts.classes ?? "");
  const templates = await resolveTemplates(opts.templates);
  const fmt = format(opts);
  const { files, failed: skipped, problems } = await images(inputs, opts);
  const job = await makeJob(classes, fmt, widest(files));
  const bars = progress(!opts.quiet);
  const model = await openModel(opts, bars);
  try {
    const scoring = await model.scoring();
    const features = await model.classFeatures(classes, templates);
    const out = rowWriter(fmt, process.stdout, job.header, job.widths);
    // Inputs that could not even be listed (missing files, broken links) get their row too, so that
    // JSON output has one line per input.
    for (const p of problems) out.failure(p.input, p.reason);
    const failed = await eachImage(
      model,
      files,
      bars,
      (r) => {
        const { cells, json } = job.row(r.embedding, features, scoring);
        out.row([r.input, ...cells], { input: r.input, ...json });
      },
      (input, reason) => out.failure(input, reason),
      opts,
    );
    job.finish?.();
    return summary(opts, files.length + skipped, failed + skipped);
  } finally {
    await model.close();
  }
}

export function runClassify(inputs: string[], opts: CommonOptions & { topK: number }): Promise<number> {
  return runZeroShot(inputs, opts, (classes, fmt, width) => {
    const k = Math.min(opts.topK, classes.length);
    const ranks = Array.from({ length: k }, (_, i) => i + 1);
    return {
      header: ["input", ...(fmt === "csv" ? ranks.flatMap((r) => [`label_${r}`, `prob_${r}`]) : ranks.map((r) => `top-${r}`))],
      widths: [width, ...Array<number>(k).fill(22)],
      row(embedding, features, scoring) {
        const top = classify(embedding, features, k, scoring);
        const cells = fmt === "csv" ? top.flatMap((t) => [t.label, t.prob.toFixed(6)]) : top.map((t) => `${t.label} ${(100 * t.prob).toFixed(1)}%`);
        return { cells, json: { top } };
      },
    };
  });
}

export function addClassifyCommand(program: Command, setStatus: SetStatus): void {
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
      setStatus(await runClassify(inputs, opts));
    });
}
