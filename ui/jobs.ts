/** Polling a server job (`GET /v1/jobs/:id`) to its end, as the Evaluate and Discover tabs do. */

import { ApiError, getJson } from "./api.js";
import { isRecord, numOrNull, str } from "./json.js";
import type { Json } from "./json.js";

const POLL_MS = 400;

/**
 * Polls the job until it is done and returns its last state; throws the job's error if it failed, and
 * returns undefined once `wanted` says the page has moved on (a newer job started from the same form).
 * `show` hears each state with its progress read out of it.
 */
export async function pollJob(job: string, wanted: () => boolean, show: (status: string, progress: { label: string; done: number | null; total: number | null } | null) => void): Promise<Json | undefined> {
  for (;;) {
    await new Promise((r) => window.setTimeout(r, POLL_MS));
    if (!wanted()) return undefined;
    const state = await getJson(`v1/jobs/${encodeURIComponent(job)}`);
    const status = str(state.status);
    const p = isRecord(state.progress) ? state.progress : undefined;
    show(status, p ? { label: str(p.set) || str(p.stage) || "progress", done: numOrNull(p.done), total: numOrNull(p.total) } : null);
    if (status === "failed") {
      const e = isRecord(state.error) ? state.error : {};
      throw new ApiError(0, str(e.code, "JOB"), str(e.message, `Job ${job} failed.`), str(e.hint));
    }
    if (status === "done") return state;
  }
}

/** A job's progress on a <progress> bar and its label: indeterminate until the first count. */
export function showProgress(bar: HTMLProgressElement, label: HTMLElement, job: string, status: string, p: { label: string; done: number | null; total: number | null } | null): void {
  if (p && p.done !== null && p.total) {
    bar.max = p.total;
    bar.value = p.done;
  }
  label.textContent = `Job ${job}: ${status}${p ? ` · ${p.label} ${p.done ?? "?"}/${p.total ?? "?"}` : ""}`;
}
