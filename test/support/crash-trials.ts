/**
 * Crash-safety trials: a CLI run that writes the embedding store (index or eval) is killed with SIGKILL
 * at a chosen moment; then the store must open and pass SQLite's integrity check, hold no path twice
 * and no path without its embedding, and a rerun must finish the job. Used by test/crash.test.ts (a few
 * trials) and scripts/crash-trials.ts (many).
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { repoRoot } from "./shared.js";

export interface TrialResult {
  /** Milliseconds from start to the end of the first run (killed or not). */
  killAfterMs: number;
  killed: boolean;
  /** Rows the store held after the kill. */
  rowsAfterKill: number;
  integrity: string;
  /** Paths whose embedding is missing, or paths listed twice (both must be 0). */
  orphans: number;
  duplicates: number;
  /** Exit status and rows after the rerun. */
  rerunCode: number | null;
  rowsAfterRerun: number;
}

/** When to kill: after a time, or as soon as the store holds at least `rows` embeddings (mid-write for certain). */
export type KillAt = { afterMs: number } | { rows: number; store: string };

function storeRows(file: string): number {
  try {
    return inspectStore(file).rows;
  } catch {
    return 0; // not created yet, or briefly locked
  }
}

function runCli(args: readonly string[], kill?: KillAt): Promise<{ code: number | null; killed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [path.join(repoRoot, "dist", "cli", "main.js"), ...args], { stdio: "ignore" });
    let killed = false;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    if (kill && "afterMs" in kill) timer = setTimeout(() => (killed = child.kill("SIGKILL")), kill.afterMs);
    else if (kill) {
      const poll = () => {
        if (done) return;
        if (storeRows(kill.store) >= kill.rows) killed = child.kill("SIGKILL");
        else timer = setTimeout(poll, 5);
      };
      poll();
    }
    child.once("exit", (code) => {
      done = true;
      clearTimeout(timer);
      resolve({ code, killed, ms: performance.now() - t0 });
    });
  });
}

/** An uninterrupted run's exit status and duration, to spread the kills of a trial series over it. */
export async function timedRun(args: readonly string[]): Promise<{ code: number | null; ms: number }> {
  const { code, ms } = await runCli(args);
  return { code, ms };
}

/** What the store holds, checked the way a crash could break it. */
export function inspectStore(file: string): { rows: number; integrity: string; orphans: number; duplicates: number } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const integrity = String(db.pragma("integrity_check", { simple: true }));
    // Killed before the schema's transaction committed, the file holds a database with no tables yet (the
    // rerun creates them). The schema is made in one transaction, so some tables without the others
    // would be a defect: the counts below then throw.
    const tables = db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'").pluck().get();
    if (tables === 0) return { rows: 0, integrity, orphans: 0, duplicates: 0 };
    const count = (sql: string) => Number(db.prepare(sql).pluck().get() ?? 0);
    return {
      rows: count("SELECT count(*) FROM embeddings"),
      integrity,
      orphans: count("SELECT count(*) FROM paths p WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.hash = p.hash)"),
      duplicates: count("SELECT count(*) - count(DISTINCT path) FROM paths"),
    };
  } finally {
    db.close();
  }
}

/**
 * One trial: `args` (a store-writing CLI command with --store) killed after `killAfterMs`, inspected,
 * then run again to the end and inspected again.
 */
export async function crashTrial(args: readonly string[], store: string, kill: KillAt): Promise<TrialResult> {
  const first = await runCli(args, kill);
  // The killed process's WAL is recovered by the next opener; give the OS a moment to release locks.
  await sleep(20);
  let after = { rows: 0, integrity: "ok", orphans: 0, duplicates: 0 };
  try {
    after = inspectStore(store);
  } catch (e) {
    // Killed before the store file was created: nothing to check yet.
    if (!/unable to open|does not exist|SQLITE_CANTOPEN/i.test(String(e))) throw e;
  }
  const rerun = await runCli(args);
  const end = inspectStore(store);
  return {
    killAfterMs: Math.round(first.ms),
    killed: first.killed,
    rowsAfterKill: after.rows,
    integrity: after.integrity === "ok" && end.integrity === "ok" ? "ok" : `${after.integrity} / ${end.integrity}`,
    orphans: after.orphans + end.orphans,
    duplicates: after.duplicates + end.duplicates,
    rerunCode: rerun.code,
    rowsAfterRerun: end.rows,
  };
}
