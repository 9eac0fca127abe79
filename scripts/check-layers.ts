/**
 * Lists the imports in src/ that run against the layer order of docs/ARCHITECTURE.md: a module may
 * import from its own layer or any below it, never from one above, so each layer can be read (and
 * tested) knowing only what is under it. Exits 1 when it finds any; test/layers.test.ts runs it in
 * `npm test`, so a new upward import fails CI.
 *
 *   npx tsx scripts/check-layers.ts
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Lowest first; a top-level file (src/clip.ts) counts as the folder of its name. */
const LAYERS: readonly (readonly string[])[] = [
  ["errors"],
  ["maths"],
  ["io"],
  ["engine"],
  ["model"],
  ["text", "image"],
  ["clip", "zeroshot"],
  ["ood", "search"],
  ["store"],
  ["eval", "queue", "discover"],
  ["bench", "server"],
  ["cli"],
  ["index"],
];

const src = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src");

function area(file: string): string {
  const [first] = path.relative(src, file).split(path.sep);
  return first!.replace(/\.ts$/, "");
}

function rank(file: string): number {
  const r = LAYERS.findIndex((l) => l.includes(area(file)));
  if (r < 0) throw new Error(`${path.relative(src, file)}: ${area(file)} is in no layer; add it to LAYERS`);
  return r;
}

/** "src/a.ts → src/b.ts (a below b)" for every import that points up the layers, sorted. */
export function upwardImports(): string[] {
  const found = new Set<string>();
  for (const entry of readdirSync(src, { recursive: true, encoding: "utf8" })) {
    if (!entry.endsWith(".ts")) continue;
    const file = path.join(src, entry);
    // Static imports, re-exports and import(): type-only imports count too, as they still tie the layers.
    for (const m of readFileSync(file, "utf8").matchAll(/\b(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
      const target = path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, ".ts"));
      if (rank(target) > rank(file)) found.add(`src/${entry} → src/${path.relative(src, target)} (${area(file)} below ${area(target)})`);
    }
  }
  return [...found].sort();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const found = upwardImports();
  for (const line of found) console.log(line);
  console.log(found.length === 0 ? "no upward imports" : `${found.length} upward import(s)`);
  process.exitCode = found.length === 0 ? 0 : 1;
}
