/** How an action started from a button reports: busy state, then a status line or an error box. */

import { apiKeyInput, ApiError } from "./api.js";
import { h } from "./dom.js";
import type { Child } from "./dom.js";

/** Shows an error (with the server's hint) in a polite live region next to the action that failed. */
export function showError(region: HTMLElement, e: unknown): void {
  const err = e instanceof ApiError ? e : new ApiError(0, "UI", e instanceof Error ? e.message : String(e), "");
  const parts: Child[] = [h("p", { class: "error-message", "data-testid": "error-message" }, err.message)];
  if (err.hint) parts.push(h("p", { class: "error-hint", "data-testid": "error-hint" }, h("span", { class: "hint-label" }, "Hint: "), err.hint));
  if (err.status === 401) {
    parts.push(
      h(
        "p",
        { class: "error-hint", "data-testid": "error-auth" },
        apiKeyInput.value.trim() === ""
          ? "This server needs an API key: enter it in the “API key” field at the top of the page, then try again."
          : "The server refused the API key in the “API key” field at the top of the page: check it and try again.",
      ),
    );
  }
  if (err.status === 503 && err.retryAfter) parts.push(h("p", { class: "error-hint" }, `The server is busy: try again in ${err.retryAfter} s.`));
  if (err.code && err.code !== "UI" && err.code !== "NETWORK") parts.push(h("p", { class: "error-code" }, `Error code: ${err.code}${err.status ? ` (HTTP ${err.status})` : ""}`));
  region.replaceChildren(h("div", { class: "error-box" }, ...parts));
}

export function clearError(region: HTMLElement): void {
  region.replaceChildren();
}

/** Client-side checks fail the same way the server does: a message and a hint. */
export function usage(message: string, hint: string): ApiError {
  return new ApiError(0, "UI", message, hint);
}

/**
 * Runs an action from a button: one at a time, busy state on the button (aria-disabled keeps it
 * focusable, so keyboard users do not lose their place), errors into the region.
 */
export async function act(button: HTMLButtonElement, status: HTMLElement, errorRegion: HTMLElement, busyText: string, run: () => Promise<string>): Promise<void> {
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  clearError(errorRegion);
  status.textContent = busyText;
  try {
    status.textContent = await run();
  } catch (e) {
    status.textContent = "";
    showError(errorRegion, e);
  } finally {
    button.removeAttribute("aria-disabled");
  }
}
