/**
 * SIGKILL trials of queue workers (test/queue.test.ts runs a few, scripts/queue-trials.ts many): workers
 * are killed at random moments while they hold batches, a last worker drains the queue (taking over the
 * batches whose leases ran out), and the store and queue are checked: every input stored exactly once,
 * no orphan rows, every batch completed by exactly one transaction.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import pg from "pg";
import { repoRoot } from "./shared.js";

export interface Worker {
  /** Resolves when the worker exits, with its exit code or signal and its JSON batch lines. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; batches: Record<string, unknown>[]; stderr: string }>;
  /** Resolves after the worker has reported `n` completed batches (or exited). */
  completed(n: number): Promise<void>;
  /** Resolves with the first match of `re` in the worker's stderr (rejects if it exits first). */
  stderrMatch(re: RegExp): Promise<RegExpMatchArray>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts `clip-ood worker --json` (the built CLI) with the given extra arguments, in `cwd` (default: the repository). */
export function startWorker(args: readonly string[], opts: { cwd?: string } = {}): Worker {
  const child = spawn(process.execPath, [path.join(repoRoot, "dist", "cli", "main.js"), "worker", "--json", ...args], { stdio: ["ignore", "pipe", "pipe"], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  const batches: Record<string, unknown>[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  let buffer = "";
  let stderr = "";
  const done = () => batches.filter((b) => b["outcome"] === "completed").length;
  child.stdout.on("data", (d: Buffer) => {
    buffer += d.toString();
    for (let i = buffer.indexOf("\n"); i >= 0; i = buffer.indexOf("\n")) {
      const line = buffer.slice(0, i).trim();
      buffer = buffer.slice(i + 1);
      if (line) batches.push(JSON.parse(line) as Record<string, unknown>);
    }
    for (const w of waiters.filter((x) => done() >= x.n)) w.resolve();
  });
  const stderrWaiters: (() => void)[] = [];
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    for (const w of stderrWaiters) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; batches: Record<string, unknown>[]; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      for (const w of waiters) w.resolve();
      resolve({ code, signal, batches, stderr });
    });
  });
  return {
    exited,
    completed: (n) => (done() >= n || child.exitCode !== null ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    stderrMatch: (re) =>
      new Promise((resolve, reject) => {
        const look = () => {
          const m = stderr.match(re);
          if (m) resolve(m);
          else if (child.exitCode !== null) reject(new Error(`the worker exited without printing ${re}: ${stderr}`));
        };
        stderrWaiters.push(look);
        child.on("close", look);
        look();
      }),
    kill: (signal) => child.kill(signal),
  };
}

export interface QueueCheck {
  paths: number;
  embeddings: number;
  /** Path records whose content has no embedding, and embeddings no path refers to. */
  orphans: number;
  /** Jobs by state. */
  states: Record<string, number>;
  /** Sum over completed jobs of the rows each stored: equals the inputs when each was written once. */
  storedByJobs: number;
}

/** Reads the store and the queue straight from the database. */
export async function inspectQueue(url: string): Promise<QueueCheck> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const one = async (sql: string) => Number((await c.query<{ n: string }>(sql)).rows[0]!.n);
    const states: Record<string, number> = {};
    for (const r of (await c.query<{ state: string; n: number }>("SELECT state::text AS state, count(*)::int AS n FROM clip_ood_queue.job WHERE starts_with(name, 'clip_ood_embed_') GROUP BY state")).rows) {
      states[r.state] = r.n;
    }
    return {
      paths: await one("SELECT count(*) AS n FROM clip_ood.paths"),
      embeddings: await one("SELECT count(*) AS n FROM clip_ood.embeddings"),
      orphans:
        (await one("SELECT count(*) AS n FROM clip_ood.paths p WHERE NOT EXISTS (SELECT 1 FROM clip_ood.embeddings e WHERE e.hash = p.hash)")) +
        (await one("SELECT count(*) AS n FROM clip_ood.embeddings e WHERE NOT EXISTS (SELECT 1 FROM clip_ood.paths p WHERE p.hash = e.hash)")),
      states,
      storedByJobs: await one("SELECT coalesce(sum((output->>'stored')::int), 0) AS n FROM clip_ood_queue.job WHERE starts_with(name, 'clip_ood_embed_') AND state = 'completed'"),
    };
  } finally {
    await c.end();
  }
}

/**
 * One trial: workers started one after another, each SIGKILLed after a random number of completed
 * batches (0–2) plus a random delay, so that most die holding a batch. Returns how many were killed.
 */
export async function killWorkers(args: readonly string[], kills: number, random: () => number): Promise<number> {
  let killed = 0;
  for (let i = 0; i < kills; i++) {
    const w = startWorker(args);
    await w.completed(Math.floor(random() * 3));
    await new Promise((r) => setTimeout(r, Math.floor(random() * 200)));
    w.kill("SIGKILL");
    if ((await w.exited).signal === "SIGKILL") killed++;
  }
  return killed;
}
