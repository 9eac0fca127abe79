/**
 * ann: the store's two neighbour engines at 100k and 1M × 512 on two kinds of data — the exact scan and
 * the HNSW graph grown in place (src/search/hnsw.ts) — with what keeping the graph up to date costs.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ANN_DEFAULTS, AnnIndex } from "../../src/search/ann.js";
import { LATENCY_BUDGET_MS, MIN_ANN_ROWS } from "../../src/search/choose.js";
import { exactTopKBatch } from "../../src/search/engine.js";
import { exactSearch } from "../../src/search/exact.js";
import { ContentGraph, RECALL_AIM, RECALL_SAMPLE, RECALL_TARGET } from "../../src/search/hnsw.js";
import type { ContentHit, ContentRows } from "../../src/search/hnsw.js";
import { pendingLimit } from "../../src/store/ann-files.js";
import { count, figuresHead, ints, loadNote, log, mb, ms, quantile, seconds } from "./kit.js";
import type { Bench, BenchBlock } from "./kit.js";
import { CLIP_B32_SHAPE, clipShapedVectors, randomUnitVectors, shapeStatistics } from "./vectors.js";

export { randomUnitVectors } from "./vectors.js";

/**
 * A full garbage collection. usearch keeps its graph outside the JS heap, where V8 cannot see it, so a
 * dropped index is only freed when collected; the bench collects before measuring RSS and between
 * loads, or a 1M-vector run would hold several multi-GB copies at once.
 */
setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as () => void;

type DataKind = "uniform" | "clip";
const KINDS: Record<DataKind, { title: string; make: (n: number, dim: number, seed: number) => Float32Array }> = {
  uniform: { title: "uniform random unit vectors", make: randomUnitVectors },
  clip: { title: "clustered, shaped like CLIP ViT-B/32 image embeddings", make: (n, dim, seed) => clipShapedVectors(n, dim, seed) },
};

export const annBench: Bench = {
  title: "ann: exact search and the HNSW graph grown in place, on random and on CLIP-shaped vectors",
  intro: [
    "What `search` costs at 100k and 1M × 512, with the two engines it chooses between",
    "(src/search/choose.ts): the exact scan (`exactSearch`: onnxruntime matrix products on every core,",
    "the best rows re-scored in float64) and the HNSW graph (`ContentGraph` over usearch 2.25.3: cosine,",
    `f16 vectors, connectivity ${ANN_DEFAULTS.connectivity}, expansion_add ${ANN_DEFAULTS.expansionAdd}; one thread per query; its candidates re-scored exactly).`,
    `Search scans exactly up to ${count(MIN_ANN_ROWS)} rows, and beyond that while the scan's measured time`,
    `stays under ${LATENCY_BUDGET_MS} ms; above, it uses the graph. \`--ann-threshold\` overrides the choice.`,
    "",
    "Two data kinds in every run. Uniform random unit vectors are the worst case for a graph index: no",
    "structure to follow, a query's nearest neighbours barely closer than the rest. The clustered kind",
    "(`clipShapedVectors`, scripts/bench/vectors.ts) is z = normalise(w·m + √β·c_y + √γ·D·ε): a shared",
    `mean direction m with weight w = √α(1 + s·g), one of ${CLIP_B32_SHAPE.classes} class directions c_y, and Gaussian noise`,
    `whose variance falls as j^−${CLIP_B32_SHAPE.spectrum} over the 512 directions (α = ${CLIP_B32_SHAPE.alpha}, β = ${CLIP_B32_SHAPE.beta}, s = ${CLIP_B32_SHAPE.spread}). Those values were`,
    "fitted to published statistics of CLIP image embeddings, from the repository of Liang et al., \"Mind",
    "the Gap\" (NeurIPS 2022, github.com/Weixin-Liang/Modality-Gap): its Figure 2a notebook reports the",
    "pairwise cosines of CLIP image embeddings of the 5,000 MSCOCO validation images as mean 0.468, sd 0.090",
    "(the cone), and in its 500 MSCOCO image embeddings of CLIP ViT-B/16 (features_clip.npy) we measured",
    "pairwise cosines 0.53 ± 0.096, each image's nearest other image at median cosine 0.82, cosine to the",
    "mean 0.73 ± 0.065, and 39% / 70% of the variance around the mean in its top 10 / 50 principal",
    "directions. The generator gives 0.49 ± 0.099, 0.83, 0.70 ± 0.065 and 37% / 72% on 500 samples (each",
    "block lists its own). Queries are other draws of the same generator (held out: not in the index).",
    "",
    "Per block: the exact scan, one query at a time and batched; the graph's build (insertion, then the",
    `recall self-check: ${RECALL_SAMPLE} contents held back, searched at growing widths against exact answers,`,
    `the smallest width whose recall@10 reaches ${RECALL_AIM} with two standard errors to spare kept: the`,
    `aim sits above the promised ${RECALL_TARGET} because held-out queries find fewer neighbours than the sample);`,
    "its file (saved, loaded into memory, memory-mapped); queries at that width, one at a time and",
    "batched, with recall@10 against the exact top 10 on the held-out queries; and the cost of new rows:",
    "ranked exactly beside the graph while few (the pending path: only a diff of the contents, no file",
    "written), or folded into the graph in place (load, insert, save: what `index` and `search` do once",
    "they pile up past `pendingLimit`, 1% of the contents). A width sweep shows the recall/latency trade.",
  ].join("\n"),

  async run(argv, command) {
    const { values } = parseArgs({
      args: argv,
      options: {
        sizes: { type: "string", default: "100000,1000000" },
        data: { type: "string", default: "uniform,clip" },
        queries: { type: "string", default: "200" },
        batch: { type: "string", default: "64" },
        dim: { type: "string", default: "512" },
        connectivity: { type: "string", default: String(ANN_DEFAULTS.connectivity) },
        "expansion-add": { type: "string", default: String(ANN_DEFAULTS.expansionAdd) },
        ef: { type: "string", default: "" },
        seed: { type: "string", default: "1" },
        "build-budget": { type: "string", default: "" },
      },
      strict: true,
    });
    const kinds = values.data.split(",").map((k) => {
      if (!(k in KINDS)) throw new Error(`--data: ${Object.keys(KINDS).join(" or ")}, not ${k}`);
      return k as DataKind;
    });
    const [queries] = ints("queries", values.queries);
    const [batch] = ints("batch", values.batch);
    const [dim] = ints("dim", values.dim);
    const [connectivity] = ints("connectivity", values.connectivity);
    const [expansionAdd] = ints("expansion-add", values["expansion-add"]);
    const [seed] = ints("seed", values.seed);
    const budget = values["build-budget"] ? ints("build-budget", values["build-budget"])[0]! : Infinity;
    const sweep = values.ef ? ints("ef", values.ef) : [];
    const blocks: BenchBlock[] = [];
    for (const n of ints("sizes", values.sizes)) {
      for (const kind of kinds) {
        blocks.push(await annAt({ n, kind, queries: queries!, batch: batch!, dim: dim!, connectivity: connectivity!, expansionAdd: expansionAdd!, sweep, seed: seed!, budget, command }));
        collect();
      }
    }
    return blocks;
  },
};

interface AnnRun {
  n: number;
  kind: DataKind;
  queries: number;
  batch: number;
  dim: number;
  connectivity: number;
  expansionAdd: number;
  /** Extra widths to sweep besides the chosen one's neighbours. */
  sweep: number[];
  seed: number;
  /** Seconds the graph's insertion may take; past it only its progress is reported. */
  budget: number;
  command: string;
}

const K = 10;
const rss = () => process.memoryUsage().rss;

function times(fn: (i: number) => void, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

async function timesAsync(fn: (i: number) => Promise<void>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

const latency = (xs: number[]) => `median ${ms(quantile(xs, 0.5))} ms, p95 ${ms(quantile(xs, 0.95))} ms`;

/** Content hashes for rows: row i is content i (every row its own content, as in a store of distinct images). */
const hashesFor = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `c${from + i}`);

async function annAt(o: AnnRun): Promise<BenchBlock> {
  const { n, dim, kind } = o;
  const tag = `ann ${kind} n=${count(n)}`;
  const loadAtStart = os.loadavg()[0]!;
  const make = KINDS[kind].make;
  log(`${tag}: generating vectors`);
  let t0 = performance.now();
  // The collection, 1% more rows to add later, and held-out queries: three seed streams.
  const extra = Math.max(1000, Math.ceil(n / 100));
  const base = make(n, dim, o.seed);
  const more = make(extra, dim, o.seed + 7_000_001);
  const q = make(o.queries, dim, o.seed + 1_000_003);
  const genS = seconds(t0);
  const shape = shapeStatistics(base, dim, Math.min(500, n));
  const rows: ContentRows = { hashes: hashesFor(0, n), dim, data: base };
  const nq = o.queries;
  const queryOf = (i: number) => q.subarray(i * dim, (i + 1) * dim);

  log(`${tag}: exact answers for ${nq} queries`);
  const truthOf = async (r: ContentRows) => {
    const t = await exactTopKBatch(r.data, dim, q, K);
    return Array.from({ length: nq }, (_, i) => new Set(Array.from(t.indices.subarray(i * t.count, (i + 1) * t.count))));
  };
  const truth = await truthOf(rows);
  const recallOf = (hits: ContentHit[][], want: Set<number>[]) => hits.reduce((s, h, i) => s + h.slice(0, K).filter((x) => want[i]!.has(x.row)).length, 0) / (K * hits.length);

  log(`${tag}: exact scan latency`);
  const exactN = Math.min(nq, n >= 500_000 ? 20 : 50);
  await exactSearch(base, dim, queryOf(0), K); // the engine's session start-up is not a query's cost
  const exactOne = await timesAsync(async (i) => void (await exactSearch(base, dim, queryOf(i), K)), exactN);
  const batchN = Math.min(o.batch, nq);
  t0 = performance.now();
  await exactTopKBatch(base, dim, q.subarray(0, batchN * dim), K);
  const exactBatchMs = performance.now() - t0;

  // The block's opening is written last: it gives the load at the end of the run too.
  const opening = () => figuresHead(`${kind}: ${count(n)} × ${dim}`, o.command, ` (seed ${o.seed}, ${nq} held-out queries, k = ${K}; ${loadNote(loadAtStart)})`);
  const head = [
    `| data | ${KINDS[kind].title}; ${mb(base.byteLength)} float32, generated in ${genS.toFixed(0)} s; on 500 rows: pairwise cosine ${shape.pairMean.toFixed(2)} ± ${shape.pairSd.toFixed(3)}, nearest other row at median ${shape.nearestMedian.toFixed(2)}, cosine to the mean ${shape.toMeanMean.toFixed(2)} ± ${shape.toMeanSd.toFixed(3)} |`,
    `| exact scan, one query (all cores) | ${latency(exactOne)} (${exactN} queries) |`,
    `| exact scan, batched (${batchN} queries per call) | ${ms(exactBatchMs)} ms per call, ${ms(exactBatchMs / batchN)} ms per query |`,
    `| HNSW settings | connectivity ${o.connectivity}, expansion_add ${o.expansionAdd}, ${ANN_DEFAULTS.scalar}, cosine; ${os.availableParallelism()} insertion threads |`,
  ];

  log(`${tag}: building the graph`);
  collect();
  const rss0 = rss();
  const stop = new AbortController();
  let inserted = 0;
  let lastLog = performance.now();
  const progress: [number, number][] = [];
  t0 = performance.now();
  const onProgress = (done: number) => {
    inserted = done;
    progress.push([performance.now(), done]);
    if (performance.now() - lastLog > 60_000) {
      lastLog = performance.now();
      log(`${tag}: ${count(done)} rows inserted after ${seconds(t0).toFixed(0)} s`);
    }
    if (seconds(t0) > o.budget) stop.abort();
  };
  let built: Awaited<ReturnType<typeof ContentGraph.build>> | undefined;
  // CPU time as well as wall time: on a shared machine the wall time says more about the neighbours.
  const cpu0 = process.cpuUsage();
  try {
    built = await ContentGraph.build(rows, { connectivity: o.connectivity, expansionAdd: o.expansionAdd, onProgress, signal: stop.signal }, {});
  } catch (e) {
    if (!stop.signal.aborted) throw e;
  }
  const buildS = seconds(t0);
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const idle = `${cpuS.toFixed(0)} CPU-seconds, so about ${(cpuS / os.availableParallelism()).toFixed(0)} s on ${os.availableParallelism()} idle cores`;
  const buildRss = rss() - rss0;
  if (!built) {
    const [tEnd, end] = progress[progress.length - 1] ?? [t0, 0];
    const [tFrom, from] = progress.find(([t]) => tEnd - t <= 180_000) ?? [t0, 0];
    const recent = tEnd > tFrom ? ((end - from) / (tEnd - tFrom)) * 1000 : 0;
    log(`${tag}: build stopped by --build-budget after ${buildS.toFixed(0)} s at ${count(inserted)} rows`);
    head.push(
      `| HNSW build | **not finished**: stopped by \`--build-budget ${o.budget}\` after ${buildS.toFixed(0)} s (${idle}) with ${count(inserted)} of ${count(n)} rows inserted; ${(inserted / buildS).toFixed(0)} rows/s on average, ${recent.toFixed(0)} rows/s over the last 3 minutes (insertion slows as the graph grows); RSS +${mb(buildRss)} |`,
    );
    return { key: `${kind},n=${n},dim=${dim}`, markdown: [...opening(), ...head].join("\n") };
  }
  const { graph } = built;
  const check = built.check!;
  const checkS = check.seconds ?? 0;
  const insertS = buildS - checkS;
  log(`${tag}: built in ${buildS.toFixed(1)} s; width ${check.width}, recall ${check.recall.toFixed(4)}`);

  const dir = await mkdtemp(path.join(os.tmpdir(), "clip-ood-bench-"));
  const lines: string[] = [];
  const sweepRows: string[] = [];
  try {
    const file = path.join(dir, "g.usearch");
    t0 = performance.now();
    graph.ann.save(file);
    const saveS = seconds(t0);
    const fileBytes = (await stat(file)).size;
    t0 = performance.now();
    const viewed = AnnIndex.load(file, dim, { view: true, expansionSearch: check.width });
    const viewMs = performance.now() - t0;
    t0 = performance.now();
    AnnIndex.load(file, dim, { expansionSearch: check.width });
    const loadS = seconds(t0);
    collect(); // that copy was only timed

    log(`${tag}: queries at width ${check.width}`);
    const one: ContentHit[][] = [];
    const oneT = times((i) => void one.push(graph.search(queryOf(i), K)), nq);
    // The memory-mapped copy, as a search process opens it (page cache warm from the save).
    const mapped = ContentGraph.attach(viewed, [...graph.covered], rows);
    const mappedT = times((i) => void mapped.search(queryOf(i), K), nq);
    t0 = performance.now();
    const batched = graph.searchBatch(q.subarray(0, batchN * dim), K);
    const batchMs = performance.now() - t0;
    lines.push(
      `| HNSW build | ${buildS.toFixed(1)} s (${idle}): insertion ${insertS.toFixed(1)} s (${count(Math.round(n / insertS))} rows/s), self-check ${checkS.toFixed(1)} s; RSS +${mb(buildRss)} |`,
      `| self-check | width ${check.width}: recall@10 ${check.recall.toFixed(4)} on ${check.queries} held-back contents${check.reached ? "" : ` — **target ${RECALL_TARGET} not reached** at the widest search`} |`,
      `| HNSW file | ${mb(fileBytes)}; save ${saveS.toFixed(1)} s, load into memory ${loadS.toFixed(1)} s, memory-map ${ms(viewMs)} ms |`,
      `| query, one at a time, width ${check.width} | ${latency(oneT)}; memory-mapped: ${latency(mappedT)}; recall@10 ${recallOf(one, truth).toFixed(4)} vs exact |`,
      `| query, batched (${batchN} per call, all cores) | ${ms(batchMs)} ms per call, ${ms(batchMs / batchN)} ms per query; recall@10 ${recallOf(batched, truth.slice(0, batchN)).toFixed(4)} |`,
    );
    for (const w of [...new Set([Math.max(8, Math.round(check.width / 2)), check.width, 2 * check.width, 4 * check.width, ...o.sweep])].sort((a, b) => a - b)) {
      const hits: ContentHit[][] = [];
      const t = times((i) => void hits.push(graph.search(queryOf(i), K, w)), nq);
      sweepRows.push(`| ${w}${w === check.width ? " (self-check)" : ""} | ${recallOf(hits, truth).toFixed(4)} | ${ms(quantile(t, 0.5))} | ${ms(quantile(t, 0.95))} |`);
    }

    // New rows: 1% of the collection (at least 1,000), and exactly 1,000.
    for (const added of [...new Set([extra, 1000])]) {
      log(`${tag}: ${count(added)} new rows`);
      const data2 = new Float32Array((n + added) * dim);
      data2.set(base);
      data2.set(more.subarray(0, added * dim), n * dim);
      const rows2: ContentRows = { hashes: [...rows.hashes, ...hashesFor(n, n + added)], dim, data: data2 };
      const truth2 = await truthOf(rows2);
      // Pending: the open's diff, then searches that rank the new rows exactly beside the graph.
      t0 = performance.now();
      const pending = ContentGraph.attach(viewed, [...graph.covered], rows2);
      const diffMs = performance.now() - t0;
      const hitsP: ContentHit[][] = [];
      const tP = times((i) => void hitsP.push(pending.search(queryOf(i), K)), nq);
      // Folded in: what an update does when the pending rows pass the limit.
      t0 = performance.now();
      const reload = AnnIndex.load(file, dim, { expansionSearch: check.width });
      const reloadS = seconds(t0);
      const folded = ContentGraph.attach(reload, [...graph.covered], rows2);
      t0 = performance.now();
      const insCpu0 = process.cpuUsage();
      await folded.applyChanges();
      const insS = seconds(t0);
      const insCpu = process.cpuUsage(insCpu0);
      const insCpuS = (insCpu.user + insCpu.system) / 1e6;
      t0 = performance.now();
      folded.ann.save(path.join(dir, "g2.usearch"));
      const save2S = seconds(t0);
      const hitsF: ContentHit[][] = [];
      const tF = times((i) => void hitsF.push(folded.search(queryOf(i), K)), nq);
      const share = ((100 * added) / n).toFixed(added === extra ? 0 : 1);
      lines.push(
        `| ${count(added)} new rows (${share}%), pending${added <= pendingLimit(n) ? " (what an update leaves them as)" : ""} | diff on open ${ms(diffMs)} ms, nothing written; queries ${latency(tP)}, recall@10 ${recallOf(hitsP, truth2).toFixed(4)} |`,
        `| ${count(added)} new rows, folded into the graph | ${(reloadS + insS + save2S).toFixed(1)} s: load ${reloadS.toFixed(1)} s, insert ${insS.toFixed(1)} s (${count(Math.round(added / insS))} rows/s; ${insCpuS.toFixed(1)} CPU-seconds), save ${save2S.toFixed(1)} s; queries then ${latency(tF)}, recall@10 ${recallOf(hitsF, truth2).toFixed(4)} |`,
      );
      collect();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const markdown = [
    ...opening(),
    ...head,
    ...lines,
    "",
    "| width (ef) | recall@10 vs exact | median ms | p95 ms |",
    "|---|---|---|---|",
    ...sweepRows,
  ].join("\n");
  log(`${tag}: done`);
  return { key: `${kind},n=${n},dim=${dim}`, markdown };
}
