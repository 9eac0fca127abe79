/**
 * Where the service's, the gate's, the limits' and fastify's errors become HTTP statuses: one table, so
 * that a new error class is given its status in one place.
 */
import type { FastifyError } from "fastify";
import { isClipOodError, messageOf } from "../../errors.js";
import { transientDbReason } from "../../store/db-retry.js";
import { BusyError } from "../gate.js";
import { LimitError } from "../limits.js";
import { ConflictError, NotFoundError } from "../service-errors.js";

/** A request that outlived the server's requestTimeoutMs. */
export class TimeoutError extends Error {}

interface ErrorBody {
  error: { code: string; message: string; hint?: string; limit?: string };
}

/** Seconds a client is asked to wait while the store's database is away: about one pool reconnect. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** Every failure as the JSON error body of docs/API.md, with its status. */
export function toHttpError(e: unknown): { status: number; body: ErrorBody; headers?: Record<string, string> } {
  const body = (code: string, message: string, hint?: string, limit?: string): ErrorBody => ({ error: { code, message, ...(hint ? { hint } : {}), ...(limit ? { limit } : {}) } });
  if (e instanceof LimitError) return { status: e.status, body: body("LIMIT", e.message, `the server's ${e.limit} limit; split the request or send smaller images`, e.limit) };
  if (e instanceof BusyError) return { status: 503, body: body("BUSY", e.message, `retry after ${e.retryAfterSeconds} s`), headers: { "retry-after": String(e.retryAfterSeconds) } };
  if (e instanceof TimeoutError) return { status: 504, body: body("TIMEOUT", e.message, "send fewer images per request, or retry when the server is less busy") };
  if (e instanceof NotFoundError) return { status: 404, body: body("NOT_FOUND", e.message) };
  if (e instanceof ConflictError) return { status: 409, body: body("CONFLICT", e.message, e.hint) };
  // Before the ClipOodError case: the store wraps a lost connection as an INPUT one, and it is not the
  // client's fault. Other codes (a Hub download refused) are not the database's.
  const down = !isClipOodError(e) || e.code === "INPUT" ? transientDbReason(e) : undefined;
  if (down !== undefined) {
    return {
      status: 503,
      body: body("DATABASE_UNAVAILABLE", `the store's database is unreachable (${down})`, `retry after ${DATABASE_RETRY_AFTER_SECONDS} s; the server reconnects by itself once the database is back`),
      headers: { "retry-after": String(DATABASE_RETRY_AFTER_SECONDS) },
    };
  }
  if (isClipOodError(e)) {
    const status = ["MODEL_FOLDER", "MODEL_VARIANT", "MODEL_GRAPH", "OFFLINE", "DOWNLOAD", "INFERENCE"].includes(e.code) ? 500 : 400;
    return { status, body: body(e.code, e.message, e.hint) };
  }
  const fe = e as Partial<FastifyError>;
  if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE") return { status: 413, body: body("LIMIT", "the request body is too large", "the server's maxBodyBytes limit; split the request", "maxBodyBytes") };
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) return { status: fe.statusCode, body: body("USAGE", fe.message ?? "bad request", "see /openapi.json for the request format") };
  return { status: 500, body: body("INTERNAL", `internal error: ${messageOf(e)}`) };
}
