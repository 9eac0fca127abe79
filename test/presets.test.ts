/**
 * Model presets (src/model/presets.ts) as a user meets them: `clip-ood models` lists every preset with
 * its Hub id and family, names resolve case-insensitively, and a name that is neither a preset, a Hub id
 * nor a folder is refused before any download with the presets listed. Each family's preset is reached
 * through a stand-in Hub by test/contracts.test.ts (B/16, L/14) and test/mobileclip.test.ts.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { findPreset, MODEL_PRESETS, presetForHubId } from "../src/model/presets.js";
import { jsonLines, runCli } from "./support/cli.js";
import { repoRoot } from "./support/shared.js";

test("clip-ood models lists every preset with its Hub id, family, image size and variants", async () => {
  const r = await runCli(["models", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonLines(r.stdout);
  assert.deepEqual(
    rows.map((x) => x["preset"]),
    MODEL_PRESETS.map((p) => p.name),
  );
  const byName = new Map(rows.map((x) => [x["preset"], x]));
  assert.deepEqual(
    { hubId: byName.get("mobileclip-s0")!["hubId"], family: byName.get("mobileclip-s0")!["family"], imageSize: byName.get("mobileclip-s0")!["imageSize"] },
    { hubId: "Xenova/mobileclip_s0", family: "mobileclip", imageSize: 256 },
  );
  assert.equal(byName.get("siglip-b16")!["family"], "siglip");
  assert.equal((byName.get("clip-b32")!["variantsMB"] as Record<string, number>)["q8"], 153.6);
  const table = await runCli(["models"]);
  assert.equal(table.code, 0, table.stderr);
  for (const p of MODEL_PRESETS) assert.match(table.stdout, new RegExp(`${p.name}\\s+${p.hubId.replace("/", "\\/")}\\s+${p.family}`), p.name);
});

test("presets resolve by name and by Hub id, case-insensitively", () => {
  assert.equal(findPreset("CLIP-B16")?.hubId, "Xenova/clip-vit-base-patch16");
  assert.equal(presetForHubId("xenova/MOBILECLIP_S2")?.name, "mobileclip-s2");
  assert.equal(findPreset("clip-b99"), undefined);
});

test("an unknown model name is refused before any download, listing the presets", async () => {
  // A text to embed: inputs are checked before the model, so a missing image would be reported first.
  const r = await runCli(["embed", "--text", "a photo of a cat", "--model", "clip-b99", "--offline", "--quiet"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /model "clip-b99" is not a preset, a Hub id \(owner\/name\) or an existing folder/);
  for (const p of MODEL_PRESETS) assert.ok(r.stderr.includes(p.name), `hint lists ${p.name}: ${r.stderr}`);
});

test("the README's model table has one row per preset, with its Hub id, image size and embedding width", async () => {
  const readme = await readFile(path.join(repoRoot, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("\n## Models\n"), readme.indexOf("\n## ", readme.indexOf("\n## Models\n") + 1));
  const rows = section.split("\n").filter((l) => /^\| `[a-z0-9-]+`/.test(l));
  const cells = rows.map((l) => l.split("|").map((c) => c.trim()));
  assert.deepEqual(
    cells.map((c) => c[1]!.replace(/`/g, "").replace(" (default)", "")),
    MODEL_PRESETS.map((p) => p.name),
    "one row per preset, in the presets' order",
  );
  for (const [i, p] of MODEL_PRESETS.entries()) {
    assert.deepEqual([cells[i]![2], Number(cells[i]![4]), Number(cells[i]![5])], [p.hubId, p.imageSize, p.embeddingDim], p.name);
  }
});
