/**
 * Benchmarks. `npm run bench` runs every bench with its defaults; `npm run bench -- <name> [flags]` runs
 * one. Each bench writes its own section of docs/PERFORMANCE.md (the machine, the date, the command and
 * its figures) and leaves the other sections alone, so a rerun of one bench replaces only its figures.
 * Speed and memory targets live here, never in timed unit tests.
 *
 * To add a bench: write a `Bench` (it parses its own flags with node:util's parseArgs and returns its
 * report as Markdown blocks) and register it in BENCHES.
 *
 *   npm run bench -- ann --sizes 100000,1000000 --data uniform,clip --queries 200 [--ef 64,512] [--build-budget 1200]
 *   npm run bench -- discover [--n 100000 --dim 512 --classes 10 --restarts 4]
 *   npm run bench -- families [--archs B/32,MobileCLIP-S0,…] [--models-dir <dir>]   (every preset's architecture, one run)
 *   npm run bench -- heads --classes 1000 --shots 16 --dim 512 [--c 10] [--skip-cv] [--heads linear-probe,tip-adapter,tip-adapter-f,taskres]
 *   npm run bench -- storesearch --rows 100000 --searches 10 [--backend sqlite,postgres]   (a search's rows: before/after the copy kept between searches)
 *   npm run bench -- knn --n 1280000 --queries 10000 --k 1,1000 --data uniform,clip-like
 *   npm run bench -- scan --n 1000000 --batch 256 --k 10,1000 --data uniform,clip-like   (int8 scan + exact rerank vs exact float32)
 *   npm run bench -- preprocess --rounds 200
 *   npm run bench -- queue --images 256 --workers 1,2,4
 *   npm run bench -- serve --duration 60 --connections 8
 *   npm run bench -- soak --duration 600
 *   npm run bench -- throughput --arch B/32 --dtypes fp32,q8 --batch-sizes 1,16
 *   npm run bench -- throughput --arch SigLIP-B/16 --dtypes fp32,q8 --batch-sizes 16   (also B/16, L/14, L/14-336)
 *   npm run bench -- throughput --arch MobileCLIP-S0 --dtypes fp32,int8 --batch-sizes 16   (also S1, S2)
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { annBench } from "./bench/ann.js";
import { discoverBench } from "./bench/discover.js";
import { familiesBench } from "./bench/families.js";
import { log } from "./bench/kit.js";
import { headsBench } from "./bench/heads.js";
import { knnBench } from "./bench/knn.js";
import type { Bench, BenchBlock } from "./bench/kit.js";
import { preprocessBench } from "./bench/preprocess.js";
import { queueBench } from "./bench/queue.js";
import { scanBench } from "./bench/scan.js";
import { serveBench } from "./bench/serve.js";
import { soakBench } from "./bench/soak.js";
import { storesearchBench } from "./bench/storesearch.js";
import { throughputBench } from "./bench/throughput.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const perfFile = path.join(root, "docs", "PERFORMANCE.md");

const BENCHES: Record<string, Bench> = { ann: annBench, discover: discoverBench, families: familiesBench, heads: headsBench, knn: knnBench, preprocess: preprocessBench, queue: queueBench, scan: scanBench, serve: serveBench, soak: soakBench, storesearch: storesearchBench, throughput: throughputBench };

const HEADER = [
  "# Performance",
  "",
  "Figures written by `npm run bench` (scripts/bench.ts). One section per bench; each block of figures",
  "names its machine, date and command, and a rerun replaces only its own block. Compare figures",
  "within one block: other blocks may come from other machines or a busier moment.",
].join("\n");

const open = (id: string) => `<!-- bench:${id} -->`;
const close = (id: string) => `<!-- /bench:${id} -->`;

/** Replaces the marked block `id` in doc, or inserts it before `before`'s closing marker, or appends it. */
function upsert(doc: string, id: string, body: string, within?: string): string {
  const block = `${open(id)}\n${body.trim()}\n${close(id)}`;
  const a = doc.indexOf(open(id));
  const b = doc.indexOf(close(id));
  if (a >= 0 && b > a) return doc.slice(0, a) + block + doc.slice(b + close(id).length);
  const end = within === undefined ? -1 : doc.indexOf(close(within));
  if (end >= 0) return `${doc.slice(0, end).trimEnd()}\n\n${block}\n${doc.slice(end)}`;
  return `${doc.trimEnd()}\n\n${block}\n`;
}

/** The bench's section: its heading and intro are rewritten, its figure blocks kept or replaced. */
function writeSection(doc: string, name: string, bench: Bench, blocks: BenchBlock[]): string {
  const head = `${name}:head`;
  const intro = `## ${bench.title}\n\n${bench.intro}`;
  if (!doc.includes(open(name))) doc = upsert(doc, name, open(head) + "\n" + close(head));
  doc = upsert(doc, head, intro);
  for (const b of blocks) doc = upsert(doc, `${name}:${b.key}`, b.markdown, name);
  return doc;
}

async function main(): Promise<void> {
  const [first, ...rest] = process.argv.slice(2);
  const chosen = first === undefined || first.startsWith("-") ? Object.keys(BENCHES) : [first];
  const flags = first === undefined || first.startsWith("-") ? process.argv.slice(2) : rest;
  for (const name of chosen) {
    const bench = BENCHES[name];
    if (!bench) throw new Error(`unknown bench "${name}"; there are: ${Object.keys(BENCHES).join(", ")}`);
    const command = ["npm run bench --", name, ...flags].join(" ");
    const blocks = await bench.run(flags, command);
    // Re-read just before writing: benches run for minutes and another may have written meanwhile.
    const doc = await readFile(perfFile, "utf8").catch(() => HEADER + "\n");
    await writeFile(perfFile, writeSection(doc, name, bench, blocks).trimEnd() + "\n");
    log(`${name}: wrote ${path.relative(root, perfFile)}`);
  }
}

await main();
