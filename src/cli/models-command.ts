/**
 * clip-ood models: the presets --model accepts, what each stands for on the Hub, and whether clip-ood
 * runs it today.
 */
import { MODEL_PRESETS } from "../model/presets.js";
import type { ModelPreset } from "../model/presets.js";
import type { Format } from "./output.js";
import { rowWriter } from "./output.js";

/** "fp32 606 MB, q8 154 MB, int8 ?": every variant the export holds, with its size where the Hub listing showed it. */
export function variantsText(p: ModelPreset): string {
  return Object.entries(p.variants)
    .map(([dtype, mb]) => `${dtype} ${mb === undefined ? "?" : mb >= 1000 ? `${(mb / 1000).toFixed(2)} GB` : `${Math.round(mb)} MB`}`)
    .join(", ");
}

export function runModels(opts: { json?: boolean; csv?: boolean }): number {
  const format: Format = opts.json ? "json" : opts.csv ? "csv" : "table";
  const out = rowWriter(format, process.stdout, ["preset", "hub id", "image", "dim", "runs", "variants (download, both towers)"], [14, 34, 5, 4, 8]);
  for (const p of MODEL_PRESETS) {
    const runs = p.unsupported ? "not yet" : "yes";
    out.row([p.name, p.hubId, String(p.imageSize), String(p.embeddingDim), runs, variantsText(p)], {
      preset: p.name,
      hubId: p.hubId,
      family: p.family,
      imageSize: p.imageSize,
      embeddingDim: p.embeddingDim,
      variantsMB: Object.fromEntries(Object.entries(p.variants).map(([d, mb]) => [d, mb ?? null])),
      runs: !p.unsupported,
      ...(p.unsupported ? { why: p.unsupported.reason } : {}),
    });
  }
  if (format === "table") {
    const pending = MODEL_PRESETS.filter((p) => p.unsupported);
    const reasons = [...new Set(pending.map((p) => p.unsupported!.reason))];
    for (const reason of reasons) {
      const names = pending.filter((p) => p.unsupported!.reason === reason).map((p) => p.name);
      process.stdout.write(`\n${names.join(", ")}: ${reason}.\n`);
    }
  }
  return 0;
}
