/**
 * The long fuzzing run: the properties of test/fuzz.test.ts (test/support/fuzz-properties.ts) with many
 * more runs. Prints runs per target and, for each failure, the counterexample with the seed and path
 * that replay it.
 *
 *   tsx scripts/fuzz.ts [--runs N] [--seed S] [--only name,…] [--path P]
 *
 * --runs N is per target, scaled by each target's share (HTTP requests and image decodes cost more);
 * --path replays one shrunk counterexample (with --only and --seed from the report).
 */
import { parseArgs } from "node:util";
import fc from "fast-check";
import { FUZZ_TARGETS, makeFuzzEnv } from "../test/support/fuzz-properties.js";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "2000" }, seed: { type: "string" }, only: { type: "string" }, path: { type: "string" } },
});
const runs = Number(values.runs);
const seed = values.seed === undefined ? Date.now() ^ (Math.random() * 0x100000000) : Number(values.seed);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
  console.error("usage: tsx scripts/fuzz.ts [--runs N] [--seed S] [--only name,…] [--path P]  (N, S integers)");
  process.exit(2);
}
const only = values.only?.split(",").map((s) => s.trim());
const targets = FUZZ_TARGETS.filter((t) => !only || only.includes(t.name));
if (targets.length === 0) {
  console.error(`no target named ${values.only}; targets: ${FUZZ_TARGETS.map((t) => t.name).join(", ")}`);
  process.exit(2);
}

console.log(`seed ${seed}, --runs ${runs}`);
const env = await makeFuzzEnv();
let failed = 0;
try {
  for (const target of targets) {
    const numRuns = Math.max(1, Math.round(runs * target.longRunShare));
    const started = performance.now();
    const details = await fc.check(await target.property(env), { numRuns, seed, ...(values.path ? { path: values.path } : {}) });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (!details.failed) {
      console.log(`ok    ${target.name.padEnd(14)} ${String(details.numRuns).padStart(7)} runs  ${String(details.numSkips).padStart(3)} skipped  ${seconds} s`);
      continue;
    }
    failed++;
    console.log(`FAIL  ${target.name.padEnd(14)} after ${details.numRuns} runs  ${seconds} s`);
    console.log(`  counterexample: ${fc.stringify(details.counterexample)}`);
    console.log(`  replay: tsx scripts/fuzz.ts --only ${target.name} --seed ${details.seed} --path "${details.counterexamplePath ?? ""}"`);
    console.log(`  error: ${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}`.split("\n").slice(0, 12).join("\n"));
  }
} finally {
  await env.close();
}
console.log(failed === 0 ? `all ${targets.length} targets passed` : `${failed} of ${targets.length} targets failed`);
process.exitCode = failed === 0 ? 0 : 1;
