/**
 * A small HTTP client for the API tests (test/server.test.ts): requests as JSON or multipart over
 * loopback, answers read whole, and the error-body checks every failing request shares.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { Server } from "node:net";

export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  raw: Buffer;
  text: string;
  /** The parsed body when the server answered JSON. */
  body: T;
}

export interface CallOptions {
  method?: string;
  /** Sent as application/json (serialised here). */
  json?: unknown;
  form?: FormData;
  /** Sent as-is, with the content-type given in headers. */
  body?: string | Buffer;
  headers?: Record<string, string>;
}

export async function call<T = unknown>(base: string, route: string, o: CallOptions = {}): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...o.headers };
  let body: string | Buffer | FormData | undefined = o.body ?? o.form;
  if (o.json !== undefined) {
    body = JSON.stringify(o.json);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(base + route, { method: o.method ?? (body === undefined ? "GET" : "POST"), headers, ...(body === undefined ? {} : { body }) });
  const raw = Buffer.from(await res.arrayBuffer());
  const text = raw.toString("utf8");
  const parsed = (res.headers.get("content-type") ?? "").includes("application/json") && text !== "" ? (JSON.parse(text) as unknown) : undefined;
  return { status: res.status, headers: res.headers, raw, text, body: parsed as T };
}

export interface Part {
  field: string;
  name: string;
  data: Buffer;
  type?: string;
}

/** multipart/form-data with text fields (repeated for arrays) and file parts. */
export function form(fields: Record<string, string | readonly string[]>, files: readonly Part[] = []): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) for (const value of typeof v === "string" ? [v] : v) f.append(k, value);
  for (const p of files) f.append(p.field, new Blob([p.data], { type: p.type ?? "image/png" }), p.name);
  return f;
}

export interface ErrorBody {
  error: { code: string; message: string; hint?: string; limit?: string };
}

/**
 * Asserts the error contract of docs/API.md: the status, a JSON body with the code, a message (and for
 * limits the limit's name); returns the error for further checks.
 */
export function assertError(r: Reply, status: number, code: string, limit?: string): ErrorBody["error"] {
  const what = `${status} ${code}${limit ? ` (${limit})` : ""} expected, got ${r.status}: ${r.text.slice(0, 300)}`;
  assert.equal(r.status, status, what);
  assert.match(r.headers.get("content-type") ?? "", /application\/json/, `a JSON error body: ${what}`);
  const e = (r.body as Partial<ErrorBody> | undefined)?.error;
  assert.ok(e && typeof e.message === "string" && e.message.length > 0, `the body holds {"error": {"message"}}: ${what}`);
  assert.equal(e.code, code, what);
  if (limit !== undefined) assert.equal(e.limit, limit, `the error names the limit: ${what}`);
  return e;
}

/** A loopback TCP server that only counts the connections made to it (to prove nothing calls it). */
export async function connectionCounter(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server: Server = createServer((socket) => {
    n++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address && typeof address === "object", "the counting server listens on a TCP port");
  return {
    url: `http://127.0.0.1:${address.port}/red.png`,
    connections: () => n,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Reads one Prometheus sample: the value of `name` on the line carrying every given label. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}
