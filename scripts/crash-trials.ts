/**
 * The long version of test/crash.test.ts: many SIGKILL trials of `index` and `eval` at random moments
 * (by time, or as soon as the store holds a random number of rows), each followed by the integrity,
 * duplicate and orphan checks and a rerun. Prints one line per trial and a summary; exits 1 on any
 * failed check. Usage: `npm run build && tsx scripts/crash-trials.ts [--trials 50] [--seed 1]`.
 */
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { mulberry32 } from "../src/maths/random.js";
import { crashTrial, timedRun } from "../test/support/crash-trials.js";
import type { KillAt, TrialResult } from "../test/support/crash-trials.js";
import { generateModel, writeWorldImages } from "./make-test-model.js";

const { values } = parseArgs({ options: { trials: { type: "string", default: "50" }, seed: { type: "string", default: "1" } } });
const trials = Number(values.trials);
const random = mulberry32(Number(values.seed));
const work = await mkdtemp(path.join(os.tmpdir(), "clip-ood-crash-"));
try {
  const model = path.join(work, "model");
  await generateModel(model);
  const idDir = path.join(work, "val");
  const oodDir = path.join(work, "ood");
  const colours = ["red", "green", "blue"];
  const ids = await writeWorldImages(path.join(work, "raw-id"), Array.from({ length: 96 }, (_, i) => ({ colour: colours[i % 3]!, texture: "striped" as const, seed: 5000 + i })));
  for (const [i, f] of ids.entries()) {
    await mkdir(path.join(idDir, colours[i % 3]!), { recursive: true });
    await copyFile(f, path.join(idDir, colours[i % 3]!, path.basename(f)));
  }
  await writeWorldImages(oodDir, Array.from({ length: 64 }, (_, i) => ({ colour: i % 2 ? "yellow" : "pink", texture: "plain" as const, seed: 6000 + i })));
  const total = 160;
  const common = (store: string) => ["--model", model, "--cache-dir", path.join(work, "cache"), "--store", store, "--threads", "1", "--quiet"];
  const commands: Record<string, (store: string) => string[]> = {
    index: (store) => ["index", idDir, oodDir, ...common(store)],
    eval: (store) => ["eval", "--id", idDir, "--ood", `ood=${oodDir}`, "--methods", "mcm,energy", "--json", ...common(store)],
  };
  const failures: string[] = [];
  const summary: Record<string, { trials: number; killed: number; midWrite: number }> = {};
  for (const [name, command] of Object.entries(commands)) {
    const full = await timedRun(command(path.join(work, `${name}-timing.sqlite`)));
    if (full.code !== 0) throw new Error(`${name} does not run to the end uninterrupted (exit ${full.code})`);
    summary[name] = { trials: 0, killed: 0, midWrite: 0 };
    for (let i = 0; i < trials; i++) {
      const store = path.join(work, `${name}-${i}.sqlite`);
      const kill: KillAt = random() < 0.5 ? { afterMs: Math.round(random() * full.ms) } : { rows: 1 + Math.floor(random() * (total - 1)), store };
      const r: TrialResult = await crashTrial(command(store), store, kill);
      const problems = [
        r.integrity !== "ok" && `integrity ${r.integrity}`,
        r.duplicates > 0 && `${r.duplicates} duplicate paths`,
        r.orphans > 0 && `${r.orphans} orphaned paths`,
        r.rerunCode !== 0 && `rerun exited ${r.rerunCode}`,
        r.rowsAfterRerun !== total && `${r.rowsAfterRerun} rows after the rerun, expected ${total}`,
      ].filter(Boolean);
      const s = summary[name]!;
      s.trials++;
      if (r.killed) s.killed++;
      if (r.killed && r.rowsAfterKill > 0 && r.rowsAfterKill < total) s.midWrite++;
      console.log(`${name} #${i + 1} ${JSON.stringify(kill).replace(/,"store":"[^"]*"/, "")}: killed=${r.killed} rows at the kill ${r.rowsAfterKill}/${total} → ${problems.length ? problems.join("; ") : "ok"}`);
      if (problems.length) failures.push(`${name} #${i + 1}: ${problems.join("; ")}`);
      await rm(store, { force: true });
      await rm(`${store}-wal`, { force: true });
      await rm(`${store}-shm`, { force: true });
    }
  }
  for (const [name, s] of Object.entries(summary)) console.log(`${name}: ${s.trials} trials, ${s.killed} killed before the end, ${s.midWrite} with a partly written store; ${failures.filter((f) => f.startsWith(name)).length} failed checks`);
  if (failures.length) {
    console.log(failures.join("\n"));
    process.exitCode = 1;
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
