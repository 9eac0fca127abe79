/**
 * linear-probe: what fitting the probe costs at CLIP scale (16 shots × 1000 classes × 512 dims), and
 * what the onnxruntime objective gained over the scalar loops it replaced, measured in one run.
 */
import { parseArgs } from "node:util";
import { fitLogistic, logisticObjective } from "../../src/maths/logistic.js";
import type { LogisticData } from "../../src/maths/logistic.js";
import { logisticKernel } from "../../src/maths/logistic-kernel.js";
import type { KernelPrecision } from "../../src/maths/logistic-kernel.js";
import { mulberry32 } from "../../src/maths/random.js";
import { matrix } from "../../src/maths/vectors.js";
import { fitLinearProbe } from "../../src/ood/linear-probe.js";
import { count, figuresHead, ints, log, mb, ms, seconds } from "./kit.js";
import type { Bench } from "./kit.js";

/**
 * Unit-norm embeddings clustered like CLIP's: every class centre is a shared mean direction plus a
 * smaller class-specific part (classes are similar to each other), and each shot adds larger noise.
 */
function clustered(seed: number, classes: number, shots: number, dim: number): LogisticData {
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
  return { x, n, d: dim, y, classes };
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

export const linearProbeBench: Bench = {
  title: "linear-probe: fitting the probe at CLIP scale",
  intro: [
    "`fitLinearProbe` on synthetic clustered unit-norm embeddings (seeded; a shared mean direction plus a",
    "class part, plus per-shot noise), `--shots` × `--classes` × `--dim`. Each objective evaluation is two",
    "n×d×k matrix products (2·n·d·k multiply-adds, \"MAC\"), run by onnxruntime's CPU kernels in one",
    "in-memory graph (src/maths/logistic-kernel.ts); the ratio block compares it with the scalar",
    "JavaScript loops it replaced (`logisticObjective`, kept as the tests' reference) on a smaller",
    "problem in the same run. The fixed-C fit starts from zero; the CV fit is the whole default",
    "`fitLinearProbe` (5 folds, warm-started C path, then the refit on all rows). Peak RSS is the",
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
        seed: { type: "string", default: "0" },
      },
      strict: true,
    });
    const [classes, shots, dim, ratioClasses] = ["classes", "shots", "dim", "ratio-classes"].map((f) => ints(f, values[f as "classes"])[0]!) as [number, number, number, number];
    const seed = Number(values.seed);
    const c = Number(values.c);
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

    log(`linear-probe: fit at C = ${c}`);
    let t0 = performance.now();
    const fit = await fitLogistic(data, { c });
    row(`fit at fixed C = ${c} (tol 1e-6, from zero)`, `${seconds(t0).toFixed(1)} s, ${fit.iterations} iterations, ${fit.converged ? "converged" : "NOT converged"}`);

    if (!values["skip-cv"]) {
      log("linear-probe: fitLinearProbe with cross-validation");
      const x = matrix(data.n, dim, Float32Array.from(data.x));
      t0 = performance.now();
      const probe = await fitLinearProbe(x, data.y);
      const cv = probe.cv!;
      row("fitLinearProbe with CV (5 folds, warm-started C path, refit)", `${seconds(t0).toFixed(1)} s`);
      row("… C values fitted, chosen C", `${cv.tried.length} of 13 (${cv.tried.map((v) => v.toPrecision(2)).join(", ")}), C = ${probe.c.toPrecision(3)}`);
      row("… held-out log-loss along the path", cv.losses.map((l) => l.toFixed(3)).join(", "));
    }
    row("rows × classes × dims", `${count(data.n)} × ${count(classes)} × ${dim}`);
    row("peak RSS", mb(process.resourceUsage().maxRSS * 1024));
    return [{ key: `shots=${shots},classes=${classes},dim=${dim}`, markdown: lines.join("\n") }];
  },
};
