/**
 * Benchmarks: `npm run bench` runs them all, `npm run bench -- ann [--n 100000] [--queries 200]` one.
 * Each writes its section of docs/PERFORMANCE.md with the machine, the date and the command. Figures
 * are compared within one run only: these machines are shared and noisy.
 */
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { mulberry32 } from "../src/maths/random.js";
import { AnnIndex, ANN_DEFAULTS } from "../src/search/ann.js";
import { exactTopK } from "../src/search/exact.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const perfFile = path.join(root, "docs", "PERFORMANCE.md");

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function unitVectors(n: number, dim: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < dim; j++) {
      // Box–Muller: Gaussian components make uniformly distributed directions.
      const g = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
      out[i * dim + j] = g;
      ss += g * g;
    }
    const inv = 1 / Math.sqrt(ss);
    for (let j = 0; j < dim; j++) out[i * dim + j]! *= inv;
  }
  return out;
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function annBench(): Promise<string> {
  const n = arg("n", 100_000);
  const queries = arg("queries", 200);
  const dim = 512;
  const data = unitVectors(n, dim, 1);
  const q = unitVectors(queries, dim, 2);
  const rss0 = process.memoryUsage().rss;
  let t = performance.now();
  const index = AnnIndex.build(data, dim);
  const buildS = (performance.now() - t) / 1000;
  const rssMb = (process.memoryUsage().rss - rss0) / 1e6;
  const exactMs: number[] = [];
  const annMs: number[] = [];
  let found = 0;
  for (let i = 0; i < queries; i++) {
    const query = q.subarray(i * dim, (i + 1) * dim);
    t = performance.now();
    const truth = exactTopK(data, dim, query, 10);
    exactMs.push(performance.now() - t);
    t = performance.now();
    const approx = index.search(query, 10);
    annMs.push(performance.now() - t);
    const want = new Set(truth.map((h) => h.index));
    found += approx.filter((h) => want.has(h.index)).length;
  }
  const recall = found / (10 * queries);
  const rows = [
    `| vectors | ${n.toLocaleString("en")} × ${dim} (random unit, float32) |`,
    `| HNSW settings | connectivity ${ANN_DEFAULTS.connectivity}, expansion_add ${ANN_DEFAULTS.expansionAdd}, expansion_search ${ANN_DEFAULTS.expansionSearch} |`,
    `| HNSW build | ${buildS.toFixed(1)} s (usearch, all cores); RSS +${rssMb.toFixed(0)} MB |`,
    `| recall@10 vs exact | ${recall.toFixed(4)} over ${queries} queries |`,
    `| exact query (JS scan, 1 core) | median ${quantile(exactMs, 0.5).toFixed(2)} ms, p95 ${quantile(exactMs, 0.95).toFixed(2)} ms |`,
    `| HNSW query (1 thread) | median ${quantile(annMs, 0.5).toFixed(3)} ms, p95 ${quantile(annMs, 0.95).toFixed(3)} ms |`,
  ];
  console.log(rows.join("\n"));
  return [`### n = ${n.toLocaleString("en")}`, "", `Command: \`npm run bench -- ann --n ${n} --queries ${queries}\``, "", "| measure | value |", "|---|---|", ...rows].join("\n");
}

const BENCHES: Record<string, () => Promise<string>> = { ann: annBench };

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((a) => !a.startsWith("--") && !/^\d/.test(a));
  const run = names.length > 0 ? names : Object.keys(BENCHES);
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const machine = `${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
  let doc = await readFile(perfFile, "utf8").catch(() => "# Performance\n\nFigures from `npm run bench`; each section names its machine, date and command.\n");
  for (const name of run) {
    const bench = BENCHES[name];
    if (!bench) throw new Error(`unknown bench "${name}" (have: ${Object.keys(BENCHES).join(", ")})`);
    const body = await bench();
    const heading = `## ${name}`;
    const section = `${heading}\n\nMachine: ${machine}.\n\n${body}\n`;
    const n = /### n = ([\d,]+)/.exec(body)?.[1] ?? "";
    // Replace this bench's section for the same n, keep the others.
    const re = new RegExp(`${heading}\\n\\nMachine: [^\\n]*\\n\\n### n = ${n.replace(/,/g, ",")}\\n[\\s\\S]*?(?=\\n## |$)`);
    doc = re.test(doc) ? doc.replace(re, section.trimEnd()) : `${doc.trimEnd()}\n\n${section}`;
  }
  await writeFile(perfFile, doc.trimEnd() + "\n");
  console.log(`wrote ${path.relative(root, perfFile)}`);
}

await main();
