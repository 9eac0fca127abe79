/**
 * The clip-ood web UI: plain DOM code over the HTTP API of docs/API.md, served by `clip-ood serve` at
 * `/`. Every URL is relative, so the page works behind any prefix-free host and fully offline.
 * Five tabs, one module each: Detect (upload images, zero-shot or a server detector), Search (the
 * embedding store), Detectors (server detectors: create, calibrate, edit classes, delete), Evaluate
 * (jobs + report) and Discover (cluster and name unexplained images, add them as classes). This entry module owns the header (API key, server status) and starts them.
 */

import { apiKeyInput } from "./api.js";
import { setupDetect } from "./detect.js";
import { refreshDetectors, setupDetectors } from "./detectors.js";
import { setupDiscover } from "./discover.js";
import { byId } from "./dom.js";
import { setupEval } from "./evaluate.js";
import { isRecord, str } from "./json.js";
import { setupSearch } from "./search.js";
import { setupTabs } from "./tabs.js";

const KEY_STORAGE = "clip-ood.apiKey";

function storedKey(): string {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? "";
  } catch {
    return ""; // storage can be disabled; the field still works for this page view
  }
}

const modelStatus = byId("model-status", HTMLElement);

function setupApiKey(): void {
  apiKeyInput.value = storedKey();
  // A form only so browsers treat the password field as one; Enter just keeps the key.
  byId("api-key-form", HTMLFormElement).addEventListener("submit", (ev) => ev.preventDefault());
  let timer: number | undefined;
  const save = () => {
    try {
      const key = apiKeyInput.value.trim();
      if (key === "") localStorage.removeItem(KEY_STORAGE);
      else localStorage.setItem(KEY_STORAGE, key);
    } catch {
      // storage disabled: the key is used for this page view only
    }
  };
  apiKeyInput.addEventListener("input", () => {
    save();
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void refreshDetectors(), 400);
  });
  byId("api-key-clear", HTMLButtonElement).addEventListener("click", () => {
    apiKeyInput.value = "";
    save();
    void refreshDetectors();
    apiKeyInput.focus();
  });
}

/** /readyz needs no key; while the model loads it answers 503, so poll until ready. */
async function watchReady(): Promise<void> {
  try {
    const res = await fetch("readyz", { headers: { Accept: "application/json" } });
    const body: unknown = await res.json().catch(() => undefined);
    const model = isRecord(body) ? str(body.model) : "";
    if (res.ok) {
      modelStatus.textContent = model ? `Model: ${model}` : "Server ready";
      return;
    }
    modelStatus.textContent = "Loading the model…";
  } catch {
    modelStatus.textContent = "The server is not reachable; retrying…";
  }
  window.setTimeout(() => void watchReady(), 3000);
}

setupApiKey();
setupTabs();
setupDetect();
setupSearch();
setupDetectors();
setupEval();
setupDiscover();
void watchReady();
void refreshDetectors();
