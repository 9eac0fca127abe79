/**
 * clip-ood embed: unit-norm embeddings of images and texts as JSON Lines or .npy, optionally with each
 * image's label so that fit and eval can take the file as labelled data.
 */
import type { Writable } from "node:stream";
import type { Command } from "commander";
import { ClipOodError } from "../../errors.js";
import { readDataset } from "../../eval/datasets.js";
import { writeEmbeddingsNpy } from "../../io/embeddings.js";
import { stackRows } from "../../maths/vectors.js";
import type { CommonOptions } from "../commands.js";
import { eachImage, extensionsOf, images, openModel, say, summary } from "../commands.js";
import { EXIT_HELP } from "../exit.js";
import { collect, withCommonOptions, withFormatOptions } from "../options.js";
import type { SetStatus } from "../options.js";
import { csvCell, outputFile, plural } from "../output.js";
import { progress } from "../progress.js";

/**
 * The images of labelled sets (class folders, labelled lists or CSVs, read as fit and eval read them)
 * and each image's label, for `embed --labelled`: the output can then be fitted on directly.
 */
async function labelledImages(specs: readonly string[], opts: CommonOptions): Promise<{ files: string[]; failed: number; labels: Map<string, string> }> {
  const labels = new Map<string, string>();
  const files: string[] = [];
  let failed = 0;
  for (const spec of specs) {
    const set = await readDataset(spec, { extensions: extensionsOf(opts) });
    if (set.layout === "embeddings") throw new ClipOodError("USAGE", `${spec} is an embeddings file already`, { hint: "give --labelled image sets: a folder of class folders, or a list/CSV with labels" });
    if (!set.labelled) {
      throw new ClipOodError("USAGE", `--labelled: ${spec} carries no class labels`, { hint: "give a folder with one sub-folder per class, or a list/CSV with a label column; leave out --labelled for unlabelled images" });
    }
    for (const p of set.problems) process.stderr.write(`skipped ${p.input}: ${p.reason}\n`);
    failed += set.problems.length;
    for (const img of set.images) {
      files.push(img.input);
      if (img.label !== undefined) labels.set(img.input, img.label);
    }
  }
  if (files.length === 0) throw new ClipOodError("INPUT", `no images found in ${specs.join(", ")}`, { hint: "check the class folders or the list's paths" });
  return { files, failed, labels };
}

/**
 * CSV of embedding lines: the first line's fields but the embedding as columns (a field a line leaves
 * undefined, such as a text's label, is an empty cell), then the embedding as e0 … e(dim−1).
 */
function csvEmbeddingLines(sink: Writable): (line: Record<string, unknown> & { embedding: number[] }) => void {
  let columns: string[] | undefined;
  return ({ embedding, ...fields }) => {
    if (!columns) {
      columns = Object.keys(fields);
      sink.write([...columns, ...embedding.map((_, i) => `e${i}`)].map(csvCell).join(",") + "\n");
    }
    const cells = columns.map((c) => (fields[c] === undefined ? "" : csvCell(String(fields[c]))));
    sink.write([...cells, ...embedding.map(String)].join(",") + "\n");
  };
}

export interface EmbedOptions extends CommonOptions {
  text: string[];
  out?: string;
  labelled?: boolean;
}

export async function runEmbed(inputs: string[], opts: EmbedOptions): Promise<number> {
  if (inputs.length === 0 && opts.text.length === 0) {
    throw new ClipOodError("USAGE", "nothing to embed", { hint: 'give image paths and/or --text "…"' });
  }
  const npy = opts.out?.toLowerCase().endsWith(".npy") ?? false;
  const csv = opts.csv === true || (opts.out?.toLowerCase().endsWith(".csv") ?? false);
  if (npy && (opts.csv || opts.json)) throw new ClipOodError("USAGE", `--out ${opts.out} writes .npy, not ${opts.csv ? "CSV" : "JSON Lines"}`, { hint: "leave out --csv/--json, or name a .csv or .jsonl file" });
  if (csv && opts.json) throw new ClipOodError("USAGE", `--out ${opts.out} writes CSV, not JSON Lines`, { hint: "leave out --json, or name a .jsonl file" });
  if (opts.labelled && inputs.length === 0) throw new ClipOodError("USAGE", "--labelled needs image sets to read labels from", { hint: "e.g. clip-ood embed --labelled ./train --out train.jsonl" });
  const { files, failed: skipped, labels } = opts.labelled ? await labelledImages(inputs, opts) : inputs.length > 0 ? { ...(await images(inputs, opts, opts.text.length > 0)), labels: undefined } : { files: [], failed: 0, labels: undefined };
  const bars = progress(!opts.quiet);
  const model = await openModel(opts, bars);
  const file = opts.out && !npy ? outputFile(opts.out) : undefined;
  const sink: Writable = file?.stream ?? process.stdout;
  const writeLine = csv ? csvEmbeddingLines(sink) : (line: Record<string, unknown>) => sink.write(JSON.stringify(line) + "\n");
  const rows: { input: string; kind: "image" | "text"; label?: string }[] = [];
  const vectors: Float32Array[] = [];
  let count = 0;
  const emit = (input: string, kind: "image" | "text", embedding: Float32Array) => {
    count++;
    // With --labelled every row has a label field, undefined for texts: JSON leaves it out, CSV leaves its cell empty.
    const described = { input, kind, ...(labels ? { label: kind === "image" ? labels.get(input) : undefined } : {}) };
    if (npy) {
      rows.push(described);
      vectors.push(embedding);
    } else writeLine({ ...described, model: model.id, dtype: model.model.dtype, embedding: Array.from(embedding) });
  };
  try {
    if (opts.text.length > 0) {
      const m = await model.embedTexts(opts.text);
      opts.text.forEach((t, i) => emit(t, "text", m.data.slice(i * m.cols, (i + 1) * m.cols)));
    }
    const failed = await eachImage(
      model,
      files,
      bars,
      (r) => emit(r.input, "image", r.embedding),
      () => {},
      opts,
    );
    if (npy && opts.out) {
      const dim = vectors[0]?.length ?? (await model.embeddingDim());
      await writeEmbeddingsNpy(opts.out, stackRows(vectors, dim).data, dim, { model: model.id, dtype: model.model.dtype, rows });
    }
    await file?.close();
    if (opts.out) say(opts, `wrote ${plural(count, "embedding")} to ${opts.out}`);
    return summary(opts, files.length + skipped + opts.text.length, failed + skipped);
  } catch (e) {
    await file?.abort();
    throw e;
  } finally {
    await model.close();
  }
}

export function addEmbedCommand(program: Command, setStatus: SetStatus): void {
  withFormatOptions(withCommonOptions(program.command("embed")))
    .description("L2-normalised CLIP embeddings of images and texts, as JSON Lines (or .npy with a JSON sidecar).")
    .argument("[inputs...]", "image files, folders (recursive), globs, or - to read paths from stdin")
    .option("--text <text>", "embed this text exactly as given, no template (repeatable)", collect, [] as string[])
    .option("-o, --out <file>", "write here: .jsonl (default stdout), .csv, or .npy (+ <file>.json listing the rows)")
    .option("--labelled", "the inputs are labelled sets (a folder of class folders, a list or CSV with labels): record each image's \"label\", so fit and eval can use the file as labelled data")
    .addHelpText("after", `
Each JSON line (the default, also --json): {"input", "kind": "image"|"text", ["label",] "model", "dtype",
"embedding": [...]}. --csv (or --out <file>.csv): a header, then one row per input with the same fields
(an empty label for texts) and the embedding as columns e0 … e(dim−1).
The model id and dtype go with the vectors: fit, detect and calibrate refuse embeddings of another
model or dtype than the detector's (fp32 and q8 embeddings differ slightly, and a threshold with them).

Examples:
  clip-ood embed ./photos --out photos.jsonl
  clip-ood embed --labelled ./train --out train.jsonl     # then: clip-ood fit --method linear-probe --id train.jsonl …
  clip-ood embed --text "a photo of a cat" --text "a photo of a dog" --out texts.npy
  clip-ood embed ./photos --csv > photos.csv
${EXIT_HELP}`)
    .action(async (inputs: string[], opts: EmbedOptions) => {
      setStatus(await runEmbed(inputs, opts));
    });
}
