/**
 * The database-retry policy (src/store/db-retry.ts) by hand-computed cases: which errors mean "the
 * database is away for now", the backoff schedule, the bound, and the log lines. The real restart is
 * in test/queue.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ClipOodError } from "../src/errors.js";
import { toHttpError } from "../src/server/http/http-errors.js";
import { backoffMs, dbRetrySeconds, DEFAULT_DB_RETRY_SECONDS, transientDbReason, withDbRetry } from "../src/store/db-retry.js";

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

test("transient: refused and reset sockets, a server starting up or shutting down, connection exceptions (08xxx), also when wrapped", () => {
  assert.equal(transientDbReason(pgError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432")), "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:5432");
  assert.equal(transientDbReason(pgError("ECONNRESET", "read ECONNRESET")), "ECONNRESET: read ECONNRESET");
  assert.equal(transientDbReason(pgError("57P03", "the database system is starting up")), "57P03: the database system is starting up");
  assert.equal(transientDbReason(pgError("57P01", "terminating connection due to administrator command")), "57P01: terminating connection due to administrator command");
  assert.equal(transientDbReason(pgError("08006", "connection failure")), "08006: connection failure");
  // node-postgres's own: no code, only the message.
  assert.equal(transientDbReason(new Error("Connection terminated unexpectedly")), "Connection terminated unexpectedly");
  assert.equal(transientDbReason(new Error("the database system is shutting down")), "the database system is shutting down");
  // The store and the queue wrap them in ClipOodErrors; the cause decides.
  const wrapped = new ClipOodError("INPUT", "postgres://x@db/clip: cannot read the job queue (connect ECONNREFUSED)", { cause: pgError("ECONNREFUSED", "connect ECONNREFUSED 10.0.0.1:5432") });
  assert.equal(transientDbReason(wrapped), "ECONNREFUSED: connect ECONNREFUSED 10.0.0.1:5432");
});

test("not transient: SQL errors, refused credentials, a missing database, a missing host, anything else", () => {
  for (const e of [
    pgError("42P01", 'relation "clip_ood.paths" does not exist'),
    pgError("23505", "duplicate key value violates unique constraint"),
    pgError("28P01", "password authentication failed for user clip"),
    pgError("3D000", 'database "clip" does not exist'),
    pgError("ENOTFOUND", "getaddrinfo ENOTFOUND db.internal"),
    new ClipOodError("INPUT", "a.png: cannot be read"),
    new Error("out of memory"),
    "a string",
    undefined,
  ]) {
    assert.equal(transientDbReason(e), undefined, String((e as Error | undefined)?.message ?? e));
  }
});

test("backoff doubles from 250 ms and stops at 5 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 100].map((a) => backoffMs(a)), [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  assert.deepEqual([1, 2, 3].map((a) => backoffMs(a, { firstMs: 100, maxMs: 300 })), [100, 200, 300]);
});

test("the bound: --db-retry, else $CLIP_OOD_DB_RETRY, else the default; a bad variable is a usage error naming it", () => {
  assert.equal(dbRetrySeconds(15, "120"), 15);
  assert.equal(dbRetrySeconds(undefined, "120"), 120);
  assert.equal(dbRetrySeconds(undefined, "0"), 0);
  assert.equal(dbRetrySeconds(undefined, undefined), DEFAULT_DB_RETRY_SECONDS);
  assert.equal(dbRetrySeconds(undefined, ""), DEFAULT_DB_RETRY_SECONDS);
  assert.throws(() => dbRetrySeconds(undefined, "soon"), (e: ClipOodError) => e.code === "USAGE" && /CLIP_OOD_DB_RETRY must be a number of seconds/.test(e.message));
});

test("withDbRetry: retries a transient failure with one log line each, says when the database is back, and returns the result", async () => {
  const lines: string[] = [];
  const states: (string | undefined)[] = [];
  let calls = 0;
  const out = await withDbRetry(
    async () => {
      if (++calls < 3) throw pgError("57P03", "the database system is starting up");
      return "rows";
    },
    { what: "taking a batch", limitSeconds: 10, backoff: { firstMs: 1, maxMs: 2 }, log: (l) => lines.push(l), onState: (s) => states.push(s) },
  );
  assert.equal(out, "rows");
  assert.equal(calls, 3);
  assert.deepEqual(lines.slice(0, 2), [
    "database unreachable while taking a batch (57P03: the database system is starting up); retry 1 in 0.00 s",
    "database unreachable while taking a batch (57P03: the database system is starting up); retry 2 in 0.00 s",
  ]);
  assert.match(lines[2]!, /^database back after \d+\.\d s; taking a batch again$/);
  assert.deepEqual(states, ["57P03: the database system is starting up", "57P03: the database system is starting up", undefined]);
});

test("withDbRetry: other errors are thrown at once; past the bound the last transient error is thrown as it was", async () => {
  let calls = 0;
  const sqlError = pgError("42P01", "no such table");
  await assert.rejects(withDbRetry(async () => { calls++; throw sqlError; }, { what: "x", limitSeconds: 10, log: () => {} }), sqlError);
  assert.equal(calls, 1);

  const lines: string[] = [];
  const down = new ClipOodError("INPUT", "postgres://db/clip: cannot read the job queue (connect ECONNREFUSED)", { cause: pgError("ECONNREFUSED", "connect ECONNREFUSED") });
  const started = Date.now();
  await assert.rejects(withDbRetry(async () => { throw down; }, { what: "following the workers", limitSeconds: 0.05, backoff: { firstMs: 10, maxMs: 10 }, log: (l) => lines.push(l) }), down);
  assert.ok(Date.now() - started < 1000);
  assert.ok(lines.length >= 2);
  assert.match(lines.at(-1)!, /^database still unreachable after 0\.\d s \(--db-retry 0\.05\); giving up$/);

  // 0 never retries.
  const none: string[] = [];
  await assert.rejects(withDbRetry(async () => { throw down; }, { what: "x", limitSeconds: 0, log: (l) => none.push(l) }), down);
  assert.deepEqual(none, []);
});

test("serve: the store's lost database is 503 DATABASE_UNAVAILABLE with Retry-After; a refused Hub download or an SQL error is not", () => {
  const lost = toHttpError(new ClipOodError("INPUT", "postgres://db/clip: Connection terminated unexpectedly; everything committed before is kept", { cause: new Error("Connection terminated unexpectedly") }));
  assert.equal(lost.status, 503);
  assert.deepEqual(lost.headers, { "retry-after": "5" });
  assert.equal(lost.body.error.code, "DATABASE_UNAVAILABLE");
  assert.match(lost.body.error.message, /^the store's database is unreachable \(postgres:\/\/db\/clip: Connection terminated unexpectedly; /);
  const hub = toHttpError(new ClipOodError("DOWNLOAD", "cannot download model.onnx", { cause: pgError("ECONNREFUSED", "connect ECONNREFUSED") }));
  assert.equal(hub.status, 500);
  const sql = toHttpError(new ClipOodError("INPUT", "postgres://db/clip: no such table", { cause: pgError("42P01", "no such table") }));
  assert.equal(sql.status, 400);
});
