/**
 * Riding out a PostgreSQL database that goes away for a while (a restart for an upgrade, a managed
 * database's failover): which errors mean "the database is not there right now", the backoff between
 * attempts, and the loop that retries one operation for a bounded time. Workers, `index --queue --wait`
 * and `serve` (which answers 503 instead of retrying) all decide with `transientDbReason`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { ClipOodError } from "../errors.js";

/** Seconds a command waits for the database to come back before it gives up (--db-retry). */
export const DEFAULT_DB_RETRY_SECONDS = 90;

/** Node's socket errors that mean the server is not reachable or dropped the connection. */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNABORTED"]);

/**
 * PostgreSQL's SQLSTATEs for a server shutting down or starting up: admin_shutdown, crash_shutdown,
 * cannot_connect_now (class 57), and every connection exception (class 08).
 */
const SERVER_CODES = new Set(["57P01", "57P02", "57P03"]);

/** node-postgres's own messages for a connection that ended under it; it gives them no code. */
const CONNECTION_MESSAGES = [
  /the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)/i,
  /terminating connection due to (administrator command|crash of another server process)/i,
  /connection terminated/i,
  /client has encountered a connection error and is not queryable/i,
  /timeout exceeded when trying to connect/i,
  /server closed the connection unexpectedly/i,
];

/**
 * Why `e` (or an error it wraps, through `cause`) says the database is unreachable for now — a short
 * reason for a log line — or undefined for any other failure, which retrying would not fix.
 */
export function transientDbReason(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    if (typeof cur !== "object") break;
    const { code, message } = cur as { code?: unknown; message?: unknown };
    const text = typeof message === "string" ? message : "";
    if (typeof code === "string") {
      if (SOCKET_CODES.has(code)) return text ? `${code}: ${text}` : code;
      if (SERVER_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return `${code}: ${text}`;
    }
    if (CONNECTION_MESSAGES.some((m) => m.test(text))) return text;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

export function isTransientDbError(e: unknown): boolean {
  return transientDbReason(e) !== undefined;
}

export interface Backoff {
  /** Delay before the first retry, in milliseconds. */
  firstMs: number;
  /** The longest delay between two attempts. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { firstMs: 250, maxMs: 5000 };

/** Milliseconds to wait before retry `attempt` (1, 2, …): doubling from `firstMs`, capped at `maxMs`. */
export function backoffMs(attempt: number, b: Backoff = DEFAULT_BACKOFF): number {
  return Math.min(b.maxMs, b.firstMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
}

/** The bound from --db-retry, else $CLIP_OOD_DB_RETRY, else the default; in seconds, 0 = never retry. */
export function dbRetrySeconds(flag: number | undefined, env: string | undefined = process.env["CLIP_OOD_DB_RETRY"]): number {
  if (flag !== undefined) return flag;
  if (env === undefined || env.trim() === "") return DEFAULT_DB_RETRY_SECONDS;
  const n = Number(env);
  if (!Number.isFinite(n) || n < 0) {
    throw new ClipOodError("USAGE", `CLIP_OOD_DB_RETRY must be a number of seconds (0 or more), got ${JSON.stringify(env)}`, { hint: "unset it, or set it like CLIP_OOD_DB_RETRY=120" });
  }
  return n;
}

export interface RetryOptions {
  /** How long, from the first failure, the database may stay away; then the last error is thrown. */
  limitSeconds: number;
  /** What the caller was doing, for the log line ("taking a batch"). */
  what: string;
  /** One line per retry (default: stderr). */
  log?: (line: string) => void;
  /** Called with the reason on every retry, and with undefined once an attempt succeeds after retries. */
  onState?: (down: string | undefined) => void;
  backoff?: Backoff;
  signal?: AbortSignal;
}

/**
 * Runs `fn` until it succeeds; a transient database error is retried after a backoff, logged, until
 * `limitSeconds` have passed since the first one; any other error, or the last, is thrown as is.
 */
export async function withDbRetry<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const log = o.log ?? ((line: string) => process.stderr.write(line + "\n"));
  let firstFailure: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      const out = await fn();
      if (firstFailure !== undefined) {
        log(`database back after ${((Date.now() - firstFailure) / 1000).toFixed(1)} s; ${o.what} again`);
        o.onState?.(undefined);
      }
      return out;
    } catch (e) {
      const reason = transientDbReason(e);
      firstFailure ??= Date.now();
      const waited = Date.now() - firstFailure;
      if (reason === undefined || o.signal?.aborted || waited >= o.limitSeconds * 1000) {
        if (reason !== undefined && attempt > 1) log(`database still unreachable after ${(waited / 1000).toFixed(1)} s (--db-retry ${o.limitSeconds}); giving up`);
        throw e;
      }
      const delay = Math.min(backoffMs(attempt, o.backoff), Math.max(0, o.limitSeconds * 1000 - waited));
      log(`database unreachable while ${o.what} (${reason}); retry ${attempt} in ${(delay / 1000).toFixed(2)} s`);
      o.onState?.(reason);
      await sleep(delay, undefined, o.signal ? { signal: o.signal } : {}).catch(() => {});
    }
  }
}

/**
 * `fn` on a client lent by the pool. The pool listens for errors only on idle clients: a connection cut
 * while the client is lent (a database restart mid-transaction) would be an unhandled 'error' event and
 * end the process. Here it is caught, the query in flight fails as usual, and the broken client is
 * destroyed on release rather than handed out again.
 */
export async function withPoolClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (e: Error) => {
    broken = e;
  };
  client.on("error", onError);
  try {
    return await fn(client);
  } finally {
    client.off("error", onError);
    client.release(broken);
  }
}
