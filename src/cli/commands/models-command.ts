/**
 * clip-ood models: the presets --model accepts, what each stands for on the Hub, and its family.
 */
import type { Command } from "commander";
import { MODEL_PRESETS } from "../../model/presets.js";
import type { ModelPreset } from "../../model/presets.js";
import type { Format } from "../output.js";
import { rowWriter } from "../output.js";
import { withFormatOptions } from "../options.js";
import type { SetStatus } from "../options.js";

/** "fp32 606 MB, q8 154 MB, int8 ?": every variant the export holds, with its size where the Hub listing showed it. */
export function variantsText(p: ModelPreset): string {
  return Object.entries(p.variants)
    .map(([dtype, mb]) => `${dtype} ${mb === undefined ? "?" : mb >= 1000 ? `${(mb / 1000).toFixed(2)} GB` : `${Math.round(mb)} MB`}`)
    .join(", ");
}

export function runModels(opts: { json?: boolean; csv?: boolean }): number {
  const format: Format = opts.json ? "json" : opts.csv ? "csv" : "table";
  const out = rowWriter(format, process.stdout, ["preset", "hub id", "family", "image", "dim", "variants (download, both towers)"], [14, 34, 11, 5, 4]);
  for (const p of MODEL_PRESETS) {
    out.row([p.name, p.hubId, p.family, String(p.imageSize), String(p.embeddingDim), variantsText(p)], {
      preset: p.name,
      hubId: p.hubId,
      family: p.family,
      imageSize: p.imageSize,
      embeddingDim: p.embeddingDim,
      variantsMB: Object.fromEntries(Object.entries(p.variants).map(([d, mb]) => [d, mb ?? null])),
    });
  }
  return 0;
}

export function addModelsCommand(program: Command, setStatus: SetStatus): void {
  withFormatOptions(program.command("models"))
    .description("List the model presets --model accepts: the Hub id each stands for, image size, embedding width, the dtype variants the export holds and their download sizes.")
    .addHelpText("after", `
A preset is a name for its Hub id: it downloads and caches exactly as the id would, and detectors and the
store record the id. A full Hub id (owner/name) or a local folder works wherever a preset does; a local
folder of the same name wins. Sizes are the Hub's (MB = 10^6 bytes), text and vision graphs together.

Examples:
  clip-ood classify ./photos --model clip-b16 --classes cat,dog
  clip-ood models --json`)
    .action((opts: { json?: boolean; csv?: boolean }) => {
      setStatus(runModels(opts));
    });
}
