/**
 * heads: what fitting each learned head costs at CLIP scale (16 shots × 1000 classes × 512 dims), how
 * close each comes to the rate of its matrix products, and what the onnxruntime objective gained over
 * the scalar loops it replaced, measured in one run.
 */
import { parseArgs } from "node:util";
import { fitLogistic } from "../../src/maths/optimise/logistic.js";
import type { LogisticData } from "../../src/maths/optimise/logistic.js";
import { logisticObjective } from "../../src/maths/optimise/logistic-reference.js";
import { logisticKernel } from "../../src/maths/kernels/logistic-kernel.js";
import type { KernelPrecision } from "../../src/maths/kernels/logistic-kernel.js";
import { mulberry32 } from "../../src/maths/random.js";
import { matrix } from "../../src/maths/vectors.js";
import { normalizeRows } from "../../src/maths/vectors.js";
import { fitLinearProbe } from "../../src/ood/heads/linear-probe.js";
import { fitTaskRes, taskResDefaultEpochs } from "../../src/ood/heads/taskres.js";
import { fitTipAdapter, fitTipAdapterF, TIP_F_DEFAULTS } from "../../src/ood/heads/tip-adapter.js";
import { count, figuresHead, ints, log, mb, ms, seconds } from "./kit.js";
import type { Bench } from "./kit.js";

/**
 * Unit-norm embeddings clustered like CLIP's: every class centre is a shared mean direction plus a
 * smaller class-specific part (classes are similar to each other), and each shot adds larger noise.
 */
function clustered(seed: number, classes: number, shots: number, dim: number): LogisticData & { centres: Float64Array } {
  const next = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const mean = Float64Array.from({ length: dim }, gauss);
  const centres = Float64Array.from({ length: classes * dim }, (_, t) => mean[t % dim]! + 0.5 * gauss());
  const n = classes * shots;
  const x = new Float64Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % classes;
    y[i] = k;
    const row = x.subarray(i * dim, (i + 1) * dim);
    for (let j = 0; j < dim; j++) row[j] = centres[k * dim + j]! + 2 * gauss();
    const norm = Math.hypot(...row);
    for (let j = 0; j < dim; j++) row[j]! /= norm;
  }
  return { x, n, d: dim, y, classes, centres };
}

/** Milliseconds per objective evaluation at a small random θ, the median of `rounds` after one warm-up. */
async function perEvaluation(rounds: number, evaluate: (theta: Float64Array, grad: Float64Array) => unknown, size: number): Promise<number> {
  const next = mulberry32(1);
  const theta = Float64Array.from({ length: size }, () => 0.1 * (next() - 0.5));
  const grad = new Float64Array(size);
  await evaluate(theta, grad);
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await evaluate(theta, grad);
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

const kernelEval = (data: LogisticData, precision: KernelPrecision) => {
  const kernel = logisticKernel(data, precision);
  return (theta: Float64Array, grad: Float64Array) => kernel.evaluate(1, theta, grad);
};

const HEADS = ["linear-probe", "tip-adapter", "tip-adapter-f", "taskres"] as const;

export const headsBench: Bench = {
  title: "heads: fitting the learned few-shot heads at CLIP scale",
  intro: [
    "Each head fitted on synthetic clustered unit-norm embeddings (seeded; a shared mean direction plus a",
    "class part, plus per-shot noise), `--shots` × `--classes` × `--dim`, with the class centres as the",
    "text embeddings, at its defaults (the official schedules). Their work is matrix products (\"MAC\":",
    "multiply-adds) on onnxruntime's CPU kernels in in-memory graphs (src/maths/*-kernel.ts); each row",
    "gives the MAC the fit needed and the rate it ran at, to compare with the raw objective's rate in the",
    "same run: a head near that rate is bound by arithmetic, not by JavaScript. Linear probe: one",
    "objective evaluation is 2·n·d·k MAC; the ratio block compares it with the scalar loops it replaced",
    "(`logisticObjective`, kept as the tests' reference) on a smaller problem; the fixed-C fit starts",
    "from zero; the CV fit is the whole default `fitLinearProbe` (folds until 2,000 rows are held out,",
    "coarse-to-fine warm-started C search in float32, then the refit on all rows). Tip-Adapter-F: per",
    "batch of B rows against N keys, 2·B·N·d + B·k·d MAC. TaskRes: 2·B·k·d per batch. Peak RSS is the",
    "process's maximum resident set over the whole run.",
  ].join("\n"),
  async run(argv, command) {
    const { values } = parseArgs({
      args: argv,
      options: {
        classes: { type: "string", default: "1000" },
        shots: { type: "string", default: "16" },
        dim: { type: "string", default: "512" },
        "ratio-classes": { type: "string", default: "100" },
        c: { type: "string", default: "10" },
        "skip-cv": { type: "boolean", default: false },
        heads: { type: "string", default: HEADS.join(",") },
        "tip-epochs": { type: "string", default: String(TIP_F_DEFAULTS.epochs) },
        "taskres-epochs": { type: "string" },
        seed: { type: "string", default: "0" },
      },
      strict: true,
    });
    const [classes, shots, dim, ratioClasses] = ["classes", "shots", "dim", "ratio-classes"].map((f) => ints(f, values[f as "classes"])[0]!) as [number, number, number, number];
    const seed = Number(values.seed);
    const c = Number(values.c);
    const heads = values.heads.split(",").map((h) => h.trim());
    for (const h of heads) if (!(HEADS as readonly string[]).includes(h)) throw new Error(`--heads: unknown head "${h}"; there are: ${HEADS.join(", ")}`);
    const lines = figuresHead(`${shots} shots × ${classes} classes × ${dim} dims`, command, `, seed ${seed}`);
    const row = (measure: string, value: string) => lines.push(`| ${measure} | ${value} |`);

    // Old against new kernel on the smaller problem, where the scalar loops still finish.
    const small = clustered(seed, ratioClasses, shots, dim);
    const smallSize = ratioClasses * dim + ratioClasses;
    const smallMac = 2 * small.n * dim * ratioClasses;
    log(`linear-probe: kernels at ${ratioClasses} classes`);
    const scalar = await perEvaluation(3, (t, g) => logisticObjective(small, 1, t, g), smallSize);
    const small32 = await perEvaluation(5, kernelEval(small, "float32"), smallSize);
    const small64 = await perEvaluation(5, kernelEval(small, "float64"), smallSize);
    const gmac = (mac: number, msPer: number) => (mac / (msPer / 1000) / 1e9).toFixed(1);
    row(`objective + gradient, ${shots}×${ratioClasses}×${dim}: scalar loops (old)`, `${ms(scalar)} ms (${gmac(smallMac, scalar)} GMAC/s)`);
    row(`… onnxruntime float32 (new)`, `${ms(small32)} ms (${gmac(smallMac, small32)} GMAC/s), ${(scalar / small32).toFixed(0)}× faster`);
    row(`… onnxruntime float64 (new)`, `${ms(small64)} ms (${gmac(smallMac, small64)} GMAC/s), ${(scalar / small64).toFixed(0)}× faster`);

    log(`linear-probe: data ${shots}×${classes}×${dim}`);
    const data = clustered(seed, classes, shots, dim);
    const size = classes * dim + classes;
    const mac = 2 * data.n * dim * classes;
    const full32 = await perEvaluation(3, kernelEval(data, "float32"), size);
    const full64 = await perEvaluation(3, kernelEval(data, "float64"), size);
    row(`objective + gradient, ${shots}×${classes}×${dim}, float32`, `${ms(full32)} ms = ${(1000 / full32).toFixed(2)} evaluations/s (${gmac(mac, full32)} GMAC/s)`);
    row(`… float64`, `${ms(full64)} ms = ${(1000 / full64).toFixed(2)} evaluations/s (${gmac(mac, full64)} GMAC/s)`);
    row(`… scalar loops (old), extrapolated from the smaller problem`, `${((scalar * (mac / smallMac)) / 1000).toFixed(0)} s`);

    const x = matrix(data.n, dim, Float32Array.from(data.x));
    const rate = (macs: number, t0: number) => `${seconds(t0).toFixed(1)} s, ${(macs / 1e12).toFixed(2)} T MAC at ${(macs / seconds(t0) / 1e9).toFixed(1)} GMAC/s`;
    let t0 = 0;
    if (heads.includes("linear-probe")) {
      log(`linear-probe: fit at C = ${c}`);
      t0 = performance.now();
      const fit = await fitLogistic(data, { c });
      row(`linear-probe at fixed C = ${c} (tol 1e-6, from zero)`, `${seconds(t0).toFixed(1)} s, ${fit.iterations} iterations, ${fit.converged ? "converged" : "NOT converged"}`);

      if (!values["skip-cv"]) {
        log("linear-probe: fitLinearProbe with cross-validation");
        t0 = performance.now();
        const probe = await fitLinearProbe(x, data.y);
        const cv = probe.cv!;
        row("linear-probe, the default: CV of C, then the refit", `${seconds(t0).toFixed(1)} s`);
        row("… folds scored, C values fitted, chosen C", `${cv.scoredFolds} of 5 folds; ${cv.tried.length} of 13 (${cv.tried.map((v) => v.toPrecision(2)).join(", ")}), C = ${probe.c.toPrecision(3)}`);
        row("… held-out log-loss at those C", cv.losses.map((l) => l.toFixed(3)).join(", "));
      }
    }
    const text = normalizeRows(matrix(classes, dim, Float32Array.from(data.centres)));
    if (heads.includes("tip-adapter")) {
      log("heads: tip-adapter");
      t0 = performance.now();
      fitTipAdapter(x, data.y, text);
      row("tip-adapter (training-free: the cache is the shots)", `${seconds(t0).toFixed(2)} s`);
    }
    const batches = (epochs: number, batch: number) => epochs * Math.ceil(data.n / batch);
    if (heads.includes("tip-adapter-f")) {
      const epochs = ints("tip-epochs", values["tip-epochs"])[0]!;
      log(`heads: tip-adapter-f, ${epochs} epochs`);
      t0 = performance.now();
      await fitTipAdapterF(x, data.y, text, { epochs });
      const b = TIP_F_DEFAULTS.batchSize;
      row(`tip-adapter-f, ${epochs} epochs × batch ${b}`, rate(batches(epochs, b) * (2 * b * data.n * dim + b * classes * dim), t0));
    }
    if (heads.includes("taskres")) {
      const epochs = values["taskres-epochs"] === undefined ? taskResDefaultEpochs([shots]) : ints("taskres-epochs", values["taskres-epochs"])[0]!;
      log(`heads: taskres, ${epochs} epochs`);
      t0 = performance.now();
      const fitted = await fitTaskRes(x, data.y, text, { epochs });
      const b = fitted.training.batchSize;
      row(`taskres, ${epochs} epochs × batch ${b}`, rate(batches(epochs, b) * 2 * b * classes * dim, t0));
    }
    row("rows × classes × dims", `${count(data.n)} × ${count(classes)} × ${dim}`);
    row("peak RSS", mb(process.resourceUsage().maxRSS * 1024));
    return [{ key: `shots=${shots},classes=${classes},dim=${dim}`, markdown: lines.join("\n") }];
  },
};
