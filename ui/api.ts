/**
 * The HTTP client for docs/API.md: every request goes through `send`, which adds the key from the
 * page's "API key" field and turns any failure into an ApiError the tabs can show.
 */

import { byId } from "./dom.js";
import { isRecord, str } from "./json.js";
import type { Json } from "./json.js";

/** The header's key field; read at every request, so a new key applies at once. */
export const apiKeyInput = byId("api-key", HTMLInputElement);

/** A failed request, as the server described it (or as the UI describes a network failure). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint: string,
    readonly retryAfter: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

function apiHeaders(extra: Record<string, string> = {}): Headers {
  const headers = new Headers(extra);
  const key = apiKeyInput.value.trim();
  if (key !== "") headers.set("Authorization", `Bearer ${key}`);
  return headers;
}

export async function send(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const { json, ...rest } = init;
  const headers = apiHeaders(json === undefined ? {} : { "Content-Type": "application/json" });
  let res: Response;
  try {
    res = await fetch(path, { ...rest, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) });
  } catch (e) {
    throw new ApiError(0, "NETWORK", `Could not reach the server (${e instanceof Error ? e.message : String(e)}).`, "Check that `clip-ood serve` is still running and that this page was opened from it, then try again.");
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

/** The server's `{"error": {code, message, hint}}`, or a description of whatever else came back. */
async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const err = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  const code = str(err?.code, res.status === 401 ? "AUTH" : "HTTP");
  const message = str(err?.message) || `The server answered ${res.status} ${res.statusText}${text && !err ? `: ${text.slice(0, 200)}` : ""}.`;
  return new ApiError(res.status, code, message, str(err?.hint), res.headers.get("Retry-After"));
}

export async function getJson(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Json> {
  const res = await send(path, init);
  if (res.status === 204) return {};
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(res.status, "HTTP", `The server's answer to ${path} is not JSON.`, "Is this page served by `clip-ood serve`?");
  }
  if (!isRecord(body)) throw new ApiError(res.status, "HTTP", `The server's answer to ${path} is not a JSON object.`, "");
  return body;
}
