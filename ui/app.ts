/**
 * The clip-ood web UI: plain DOM code over the HTTP API of docs/API.md, served by `clip-ood serve` at
 * `/`. Every URL is relative, so the page works behind any prefix-free host and fully offline.
 * Four tabs: Detect (upload images, zero-shot or a server detector), Search (the embedding store),
 * Detectors (server detectors: create, calibrate, edit classes, delete) and Evaluate (jobs + report).
 */

// ─────────────────────────────────────────── DOM helpers ───────────────────────────────────────────

function byId<T extends HTMLElement>(id: string, type: { new (): T }): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`the page lacks #${id} (${type.name})`);
  return el;
}

type Child = Node | string | null | undefined | false;

/** A new element with attributes (false/undefined ones left out) and children. */
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

// ─────────────────────────────────────────── JSON reading ───────────────────────────────────────────
// Responses are checked field by field, so a server that answers something unexpected produces a
// readable error instead of "undefined" on the page.

type Json = Record<string, unknown>;

function isRecord(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown, fallback = ""): string {
  return typeof v === "string" ? v : fallback;
}

function numOrNull(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function strings(v: unknown): string[] {
  return list(v).filter((s): s is string => typeof s === "string");
}

// ─────────────────────────────────────────── API client ───────────────────────────────────────────

const KEY_STORAGE = "clip-ood.apiKey";

/** A failed request, as the server described it (or as the UI describes a network failure). */
class ApiError extends Error {
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

function storedKey(): string {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? "";
  } catch {
    return ""; // storage can be disabled; the field still works for this page view
  }
}

function apiHeaders(extra: Record<string, string> = {}): Headers {
  const headers = new Headers(extra);
  const key = apiKeyInput.value.trim();
  if (key !== "") headers.set("Authorization", `Bearer ${key}`);
  return headers;
}

async function send(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
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

async function getJson(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Json> {
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

// ─────────────────────────────────────────── Messages ───────────────────────────────────────────

/** Shows an error (with the server's hint) in a polite live region next to the action that failed. */
function showError(region: HTMLElement, e: unknown): void {
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

function clearError(region: HTMLElement): void {
  region.replaceChildren();
}

/** Client-side checks fail the same way the server does: a message and a hint. */
function usage(message: string, hint: string): ApiError {
  return new ApiError(0, "UI", message, hint);
}

/**
 * Runs an action from a button: one at a time, busy state on the button (aria-disabled keeps it
 * focusable, so keyboard users do not lose their place), errors into the region.
 */
async function act(button: HTMLButtonElement, status: HTMLElement, errorRegion: HTMLElement, busyText: string, run: () => Promise<string>): Promise<void> {
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

// ─────────────────────────────────────────── Formatting ───────────────────────────────────────────

function fmtScore(x: number): string {
  return Math.abs(x) >= 1000 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toFixed(4);
}

/** A gauge end: short, since it only orients the eye. */
function fmtEnd(x: number): string {
  return String(Number(x.toPrecision(3)));
}

function fmtPct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function baseName(p: string): string {
  return p.split(/[\\/]/).pop() || p;
}

/** Comma list or, when the text has several lines, one item per line. */
function splitList(text: string): string[] {
  const items = /\n/.test(text.trim()) ? text.split(/\r?\n/) : text.split(",");
  return items.map((s) => s.trim()).filter((s) => s !== "");
}

/** Where a score and threshold sit on a gauge: probability-like scores on [0, 1], others on the range seen. */
function gaugeRange(method: string, scores: readonly number[], threshold: number | null): { lo: number; hi: number } {
  const values = threshold === null ? [...scores] : [...scores, threshold];
  if ((method === "mcm" || method === "neglabel") && values.every((v) => v >= 0 && v <= 1)) return { lo: 0, hi: 1 };
  const min = Math.min(...values);
  const max = Math.max(...values);
  const pad = Math.max((max - min) * 0.15, Math.abs(max) * 0.05, 1e-6);
  return { lo: min - pad, hi: max + pad };
}

function position(x: number, r: { lo: number; hi: number }): number {
  return Math.min(100, Math.max(0, (100 * (x - r.lo)) / (r.hi - r.lo)));
}

// ─────────────────────────────────────────── API key and server status ───────────────────────────────────────────

const apiKeyInput = byId("api-key", HTMLInputElement);
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

// ─────────────────────────────────────────── Tabs ───────────────────────────────────────────

const TAB_NAMES = ["detect", "search", "detectors", "evaluate"] as const;
type TabName = (typeof TAB_NAMES)[number];
const tabs = TAB_NAMES.map((name) => ({ name, tab: byId(`tab-${name}`, HTMLButtonElement), panel: byId(`panel-${name}`, HTMLElement) }));
let currentTab: TabName = "detect";

function selectTab(name: TabName, focus: boolean): void {
  currentTab = name;
  for (const t of tabs) {
    const on = t.name === name;
    t.tab.setAttribute("aria-selected", String(on));
    t.tab.tabIndex = on ? 0 : -1;
    t.panel.hidden = !on;
    if (on && focus) t.tab.focus();
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

function setupTabs(): void {
  tabs.forEach((t, i) => {
    t.tab.addEventListener("click", () => selectTab(t.name, false));
    // Arrow keys move between tabs (and select them), as the ARIA tabs pattern describes.
    t.tab.addEventListener("keydown", (ev) => {
      const moves: Record<string, number> = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      const to = moves[ev.key];
      if (to === undefined) return;
      ev.preventDefault();
      const next = tabs[(to + tabs.length) % tabs.length];
      if (next) selectTab(next.name, true);
    });
  });
  const fromHash = () => {
    const name = location.hash.slice(1);
    const tab = TAB_NAMES.find((n) => n === name);
    if (tab) selectTab(tab, false);
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
}

// ─────────────────────────────────────────── Templates select (Detect and Create) ───────────────────────────────────────────

/** A preset select with a "custom" choice that reveals a textarea of templates, one per line. */
function templatesControl(select: HTMLSelectElement, customField: HTMLElement, custom: HTMLTextAreaElement): () => string[] | string {
  const sync = () => {
    customField.hidden = select.value !== "custom";
  };
  select.addEventListener("change", sync);
  sync();
  return () => {
    if (select.value !== "custom") return select.value;
    const lines = custom.value.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== "");
    return lines.length === 1 ? (lines[0] ?? "") : lines;
  };
}

// ─────────────────────────────────────────── Detect ───────────────────────────────────────────

interface Chosen {
  file: File;
  url: string;
}

const detect = {
  form: byId("detect-form", HTMLFormElement),
  fileInput: byId("file-input", HTMLInputElement),
  dropZone: byId("drop-zone", HTMLElement),
  chosenList: byId("chosen-files", HTMLUListElement),
  clearFiles: byId("clear-files", HTMLButtonElement),
  detector: byId("detector-select", HTMLSelectElement),
  zeroShot: byId("zero-shot-fields", HTMLFieldSetElement),
  classes: byId("classes-input", HTMLTextAreaElement),
  method: byId("method-select", HTMLSelectElement),
  threshold: byId("threshold-input", HTMLInputElement),
  button: byId("detect-button", HTMLButtonElement),
  status: byId("detect-status", HTMLElement),
  error: byId("detect-error", HTMLElement),
  results: byId("detect-results", HTMLUListElement),
  resultsHeading: byId("detect-results-heading", HTMLElement),
  summary: byId("detect-summary", HTMLElement),
  templates: templatesControl(byId("templates-select", HTMLSelectElement), byId("templates-custom-field", HTMLElement), byId("templates-custom", HTMLTextAreaElement)),
  chosen: [] as Chosen[],
  /** Object URLs that the cards on screen show; revoked when those cards go. */
  shown: new Set<string>(),
  pasted: 0,
};

function addFiles(files: Iterable<File>): void {
  let added = 0;
  for (const f of files) {
    if (f.type !== "" && !f.type.startsWith("image/")) continue;
    // Pasted images all arrive as "image.png"; numbered names keep the cards apart.
    const file = f.name === "image.png" || f.name === "" ? new File([f], `pasted-${++detect.pasted}.${(f.type.split("/")[1] ?? "png").replace(/\W/g, "")}`, { type: f.type }) : f;
    detect.chosen.push({ file, url: URL.createObjectURL(file) });
    added++;
  }
  if (added > 0) {
    clearError(detect.error);
    renderChosen();
    detect.status.textContent = `${detect.chosen.length} image${detect.chosen.length === 1 ? "" : "s"} chosen.`;
  }
}

function releaseUrl(url: string): void {
  if (!detect.shown.has(url) && !detect.chosen.some((c) => c.url === url)) URL.revokeObjectURL(url);
}

function renderChosen(): void {
  detect.chosenList.replaceChildren(
    ...detect.chosen.map((c, i) => {
      const remove = h("button", { type: "button", class: "link-button", "aria-label": `Remove ${c.file.name}` }, "Remove");
      remove.addEventListener("click", () => {
        detect.chosen.splice(i, 1);
        releaseUrl(c.url);
        renderChosen();
        detect.fileInput.focus();
      });
      return h("li", { "data-testid": "chosen-file" }, h("img", { src: c.url, alt: "", width: 40, height: 40 }), h("span", { class: "file-name" }, c.file.name), remove);
    }),
  );
  detect.clearFiles.hidden = detect.chosen.length === 0;
}

function setupDetectInputs(): void {
  detect.fileInput.addEventListener("change", () => {
    addFiles(Array.from(detect.fileInput.files ?? []));
    detect.fileInput.value = ""; // the list below shows the choice; picking again adds more
  });
  detect.clearFiles.addEventListener("click", () => {
    const old = detect.chosen;
    detect.chosen = [];
    old.forEach((c) => releaseUrl(c.url));
    renderChosen();
    detect.status.textContent = "No images chosen.";
    detect.fileInput.focus();
  });
  const panel = byId("panel-detect", HTMLElement);
  panel.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    detect.dropZone.classList.add("dragging");
  });
  panel.addEventListener("dragleave", (ev) => {
    if (ev.target === detect.dropZone) detect.dropZone.classList.remove("dragging");
  });
  panel.addEventListener("drop", (ev) => {
    ev.preventDefault();
    detect.dropZone.classList.remove("dragging");
    addFiles(Array.from(ev.dataTransfer?.files ?? []));
  });
  document.addEventListener("paste", (ev) => {
    if (currentTab !== "detect") return;
    const images = Array.from(ev.clipboardData?.files ?? []).filter((f) => f.type.startsWith("image/"));
    if (images.length === 0) return; // text pastes go where they were aimed
    ev.preventDefault();
    addFiles(images);
  });
  detect.detector.addEventListener("change", () => {
    // A server detector brings its own classes, templates and method.
    detect.zeroShot.disabled = detect.detector.value !== "";
  });
}

function parseThreshold(text: string): number | null {
  const t = text.trim();
  if (t === "") return null;
  const x = Number(t);
  if (!Number.isFinite(x)) throw usage(`The threshold “${t}” is not a number.`, "Type a number such as 0.35, or leave the field empty for no threshold.");
  return x;
}

interface Probability {
  label: string;
  prob: number;
}

function probabilities(v: unknown): Probability[] {
  return list(v)
    .filter(isRecord)
    .map((p) => ({ label: str(p.label), prob: numOrNull(p.prob) ?? 0 }));
}

async function runDetect(): Promise<string> {
  const images = [...detect.chosen];
  if (images.length === 0) throw usage("No images chosen.", "Pick images with the file field, drop them on it, or paste one with Ctrl+V.");
  const threshold = parseThreshold(detect.threshold.value);
  const body = new FormData();
  for (const c of images) body.append("image", c.file, c.file.name);
  if (detect.detector.value !== "") {
    body.append("detector", detect.detector.value);
  } else {
    body.append("classes", detect.classes.value);
    const templates = detect.templates();
    body.append("templates", typeof templates === "string" ? templates : JSON.stringify(templates));
    body.append("method", detect.method.value);
  }
  if (threshold !== null) body.append("threshold", String(threshold));
  const res = await getJson("v1/detect", { method: "POST", body });
  renderDetections(res, images);
  const n = list(res.results).length;
  return `Done: ${n} result${n === 1 ? "" : "s"}.`;
}

function renderDetections(res: Json, images: readonly Chosen[]): void {
  const method = str(res.method, detect.method.value);
  const threshold = numOrNull(res.threshold);
  const results = list(res.results).filter(isRecord);
  const scores = results.map((r) => numOrNull(r.score)).filter((s): s is number => s !== null);
  const range = gaugeRange(method, scores.length ? scores : [0], threshold);
  const old = [...detect.shown];
  detect.shown = new Set();
  const cards = results.map((r, i) => {
    // Results come back in upload order; the name is the fallback if a server ever reorders them.
    const input = str(r.input, `image ${i + 1}`);
    const image = images[i]?.file.name === input ? images[i] : (images.find((c) => c.file.name === input) ?? images[i]);
    if (image) detect.shown.add(image.url);
    return resultCard(r, input, image, method, threshold, range);
  });
  old.forEach(releaseUrl);
  detect.results.replaceChildren(...cards);
  detect.resultsHeading.hidden = cards.length === 0;
  detect.summary.textContent = `${cards.length} image${cards.length === 1 ? "" : "s"} · method ${method}${threshold === null ? " · no threshold" : ` · threshold ${fmtScore(threshold)}`}${res.model ? ` · model ${str(res.model)}` : ""}`;
}

function resultCard(r: Json, input: string, image: Chosen | undefined, method: string, threshold: number | null, range: { lo: number; hi: number }): HTMLLIElement {
  const preview = image ? h("img", { class: "preview", src: image.url, alt: `Preview of ${input}` }) : h("div", { class: "preview placeholder" }, "No preview");
  const title = h("h3", { class: "card-title" }, input);
  if (typeof r.error === "string" || isRecord(r.error)) {
    const e = isRecord(r.error) ? r.error : { message: r.error };
    return h(
      "li",
      { class: "result-card failed", "data-testid": "result-card", "data-input": input, "data-error": "true" },
      preview,
      h(
        "div",
        { class: "card-body" },
        title,
        h("div", { class: "card-error", "data-testid": "card-error" }, h("p", {}, h("strong", {}, "Could not score this image: "), str(e.message, "unknown error")), str(e.hint) ? h("p", {}, `Hint: ${str(e.hint)}`) : null),
      ),
    );
  }
  const score = numOrNull(r.score);
  const verdict = r.ood === true ? "ood" : r.ood === false ? "id" : "none";
  const verdictText = { id: "ID", ood: "OOD", none: "No threshold" }[verdict];
  const verdictLong = { id: "in-distribution", ood: "out-of-distribution", none: "no threshold set, so no verdict" }[verdict];
  const top = probabilities(r.top);
  return h(
    "li",
    { class: `result-card verdict-${verdict}`, "data-testid": "result-card", "data-input": input, "data-score": score ?? undefined, "data-verdict": verdict },
    preview,
    h(
      "div",
      { class: "card-body" },
      h("div", { class: "card-head" }, title, h("p", { class: `verdict ${verdict}`, "data-testid": "verdict", "data-verdict": verdict, title: verdictLong }, h("span", { class: "visually-hidden" }, "Verdict: "), verdictText)),
      h("p", { class: "top-class" }, "Top class: ", h("strong", { "data-testid": "top-label" }, str(r.label, top[0]?.label ?? "?"))),
      score === null ? null : scoreGauge(score, threshold, method, range, verdictLong),
    ),
    probabilityBars(top),
  );
}

function scoreGauge(score: number, threshold: number | null, method: string, range: { lo: number; hi: number }, verdictLong: string): HTMLElement {
  const label = `${method} score ${fmtScore(score)}${threshold === null ? "" : `, threshold ${fmtScore(threshold)}`}: ${verdictLong}`;
  const track = h("div", { class: "gauge-track" }, h("div", { class: "gauge-fill" }));
  const fill = track.firstElementChild as HTMLElement;
  fill.style.width = `${position(score, range)}%`;
  if (threshold !== null) {
    const mark = h("div", { class: "gauge-mark", "data-testid": "threshold-mark" });
    mark.style.left = `${position(threshold, range)}%`;
    track.append(mark);
  }
  return h(
    "div",
    { class: "score" },
    h("p", { class: "score-line" }, "Score ", h("strong", { "data-testid": "score" }, fmtScore(score)), threshold === null ? " · no threshold" : ` · threshold ${fmtScore(threshold)}`),
    h("div", { class: "gauge", role: "img", "aria-label": label, "data-testid": "score-gauge" }, track),
    h("div", { class: "gauge-scale", "aria-hidden": "true" }, h("span", {}, fmtEnd(range.lo)), h("span", {}, fmtEnd(range.hi))),
    h("p", { class: "help gauge-note" }, `${method}: higher = more in-distribution`),
  );
}

const BARS_SHOWN = 5;

function probabilityBars(top: readonly Probability[]): HTMLElement {
  const bar = (p: Probability) => {
    const fill = h("span", { class: "bar-fill" });
    fill.style.width = `${Math.max(0, Math.min(1, p.prob)) * 100}%`;
    return h("li", { class: "prob", "data-testid": "prob-bar", "data-label": p.label, "data-prob": p.prob }, h("span", { class: "prob-label" }, p.label), h("span", { class: "bar", "aria-hidden": "true" }, fill), h("span", { class: "prob-value" }, fmtPct(p.prob)));
  };
  const head = h("ol", { class: "probs", "aria-label": "Class probabilities" }, ...top.slice(0, BARS_SHOWN).map(bar));
  if (top.length <= BARS_SHOWN) return h("div", { class: "card-probs" }, head);
  return h("div", { class: "card-probs" }, head, h("details", {}, h("summary", {}, `All ${top.length} classes`), h("ol", { class: "probs", start: BARS_SHOWN + 1, "aria-label": "Other class probabilities" }, ...top.slice(BARS_SHOWN).map(bar))));
}

function setupDetect(): void {
  setupDetectInputs();
  detect.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(detect.button, detect.status, detect.error, "Detecting…", runDetect);
  });
}

// ─────────────────────────────────────────── Search ───────────────────────────────────────────

const search = {
  form: byId("search-form", HTMLFormElement),
  text: byId("search-text", HTMLInputElement),
  add: byId("search-add", HTMLInputElement),
  subtract: byId("search-subtract", HTMLInputElement),
  top: byId("search-top", HTMLInputElement),
  folder: byId("search-in", HTMLInputElement),
  button: byId("search-button", HTMLButtonElement),
  status: byId("search-status", HTMLElement),
  error: byId("search-error", HTMLElement),
  results: byId("search-results", HTMLUListElement),
  urls: [] as string[],
};

async function runSearch(): Promise<string> {
  const text = search.text.value.trim();
  const add = splitList(search.add.value);
  const subtract = splitList(search.subtract.value);
  if (text === "" && add.length === 0) throw usage("The query is empty.", "Type what to look for, e.g. “a red car”.");
  const top = Number(search.top.value || "10");
  if (!Number.isInteger(top) || top < 1) throw usage(`Top k “${search.top.value}” is not a whole number ≥ 1.`, "Use e.g. 10.");
  const body: Json = { text, top };
  if (add.length) body.add = add;
  if (subtract.length) body.subtract = subtract;
  if (search.folder.value.trim()) body.in = search.folder.value.trim();
  const res = await getJson("v1/search", { method: "POST", json: body });
  const results = list(res.results).filter(isRecord);
  search.urls.forEach((u) => URL.revokeObjectURL(u));
  search.urls = [];
  search.results.replaceChildren(
    ...results.map((r, i) => {
      const input = str(r.input, `result ${i + 1}`);
      const score = numOrNull(r.score);
      const img = h("img", { class: "thumb", alt: baseName(input), loading: "lazy" });
      const figure = h("figure", {}, img, h("figcaption", {}, h("span", { class: "path", title: input }, baseName(input)), h("span", { class: "score-value", "data-testid": "search-score" }, score === null ? "" : `score ${fmtScore(score)}`)));
      const thumb = str(r.thumbnail);
      if (thumb) void loadThumbnail(thumb, img);
      return h("li", { "data-testid": "search-result", "data-input": input }, figure);
    }),
  );
  return results.length ? `${results.length} result${results.length === 1 ? "" : "s"}.` : "No results.";
}

/** Thumbnails are fetched (not linked) so the API key goes along with them. */
async function loadThumbnail(url: string, img: HTMLImageElement): Promise<void> {
  try {
    const res = await send(url.replace(/^\//, ""));
    const objectUrl = URL.createObjectURL(await res.blob());
    search.urls.push(objectUrl);
    img.src = objectUrl;
  } catch {
    img.replaceWith(h("div", { class: "thumb placeholder" }, "No thumbnail"));
  }
}

function setupSearch(): void {
  search.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(search.button, search.status, search.error, "Searching…", runSearch);
  });
}

// ─────────────────────────────────────────── Detectors ───────────────────────────────────────────

interface DetectorSummary {
  name: string;
  method: string;
  classes: string[];
  templates: string[];
  threshold: number | null;
  model: string;
}

function detectorSummary(v: Json): DetectorSummary {
  return { name: str(v.name), method: str(v.method), classes: strings(v.classes), templates: strings(v.templates), threshold: numOrNull(v.threshold), model: str(v.model) };
}

const dets = {
  list: byId("detector-list", HTMLUListElement),
  refresh: byId("detectors-refresh", HTMLButtonElement),
  status: byId("detectors-status", HTMLElement),
  error: byId("detectors-error", HTMLElement),
  known: [] as DetectorSummary[],
};

function detectorPath(name: string, rest = ""): string {
  return `v1/detectors/${encodeURIComponent(name)}${rest}`;
}

async function refreshDetectors(): Promise<string> {
  clearError(dets.error);
  try {
    const res = await getJson("v1/detectors");
    dets.known = list(res.detectors).filter(isRecord).map(detectorSummary);
  } catch (e) {
    showError(dets.error, e);
    dets.known = [];
  }
  renderDetectors();
  return `${dets.known.length} detector${dets.known.length === 1 ? "" : "s"}.`;
}

/** The list, and every select and checkbox group that offers a detector. */
function renderDetectors(): void {
  dets.list.replaceChildren(
    ...(dets.known.length === 0
      ? [h("li", { class: "muted" }, "No detectors on the server yet.")]
      : dets.known.map((d) => {
          const del = h("button", { type: "button", class: "danger", "data-testid": "delete-detector", "aria-label": `Delete detector ${d.name}` }, "Delete");
          del.addEventListener("click", () => void act(del, dets.status, dets.error, `Deleting ${d.name}…`, () => deleteDetector(d.name)));
          const use = h("button", { type: "button", class: "secondary", "aria-label": `Use detector ${d.name} on the Detect tab` }, "Use in Detect");
          use.addEventListener("click", () => {
            detect.detector.value = d.name;
            detect.zeroShot.disabled = true;
            selectTab("detect", true);
          });
          return h(
            "li",
            { class: "detector", "data-testid": "detector", "data-name": d.name },
            h("h4", {}, d.name),
            h(
              "dl",
              {},
              h("dt", {}, "Method"),
              h("dd", {}, d.method),
              h("dt", {}, "Threshold"),
              h("dd", {}, d.threshold === null ? "none (calibrate to set one)" : fmtScore(d.threshold)),
              h("dt", {}, `Classes (${d.classes.length})`),
              h("dd", { class: "wrap" }, d.classes.join(", ")),
              h("dt", {}, "Templates"),
              h("dd", { class: "wrap" }, d.templates.length > 3 ? `${d.templates.length} templates` : d.templates.join(" · ")),
              d.model ? h("dt", {}, "Model") : null,
              d.model ? h("dd", { class: "wrap" }, d.model) : null,
            ),
            h("div", { class: "inline" }, use, del),
          );
        })),
  );
  const names = dets.known.map((d) => d.name);
  fillSelect(detect.detector, names, "None: zero-shot with the classes below");
  detect.zeroShot.disabled = detect.detector.value !== "";
  for (const select of document.querySelectorAll<HTMLSelectElement>("select.detector-choice")) fillSelect(select, names, names.length ? undefined : "No detectors yet");
  const boxes = byId("eval-detectors", HTMLElement);
  const checked = new Set(Array.from(boxes.querySelectorAll<HTMLInputElement>("input:checked"), (i) => i.value));
  boxes.replaceChildren(...names.map((n) => h("label", {}, h("input", { type: "checkbox", name: "detector", value: n, checked: checked.has(n) }), ` ${n}`)));
  byId("eval-detectors-fieldset", HTMLFieldSetElement).hidden = names.length === 0;
}

/** Options for names, keeping the current choice when it still exists; `empty` labels a "" option. */
function fillSelect(select: HTMLSelectElement, names: readonly string[], empty: string | undefined): void {
  const before = select.value;
  const options = names.map((n) => h("option", { value: n }, n));
  select.replaceChildren(...(empty === undefined ? [] : [h("option", { value: "" }, empty)]), ...options);
  if (before && names.includes(before)) select.value = before;
}

async function deleteDetector(name: string): Promise<string> {
  if (!window.confirm(`Delete the detector “${name}” from the server?`)) return "";
  await send(detectorPath(name), { method: "DELETE" });
  await refreshDetectors();
  return `Deleted ${name}.`;
}

function chosenDetector(select: HTMLSelectElement): string {
  if (!select.value) throw usage("No detector chosen.", "Create a detector first, then pick it here.");
  return select.value;
}

function setupDetectors(): void {
  dets.refresh.addEventListener("click", () => void act(dets.refresh, dets.status, dets.error, "Loading…", refreshDetectors));

  const createTemplates = templatesControl(byId("create-templates", HTMLSelectElement), byId("create-templates-custom-field", HTMLElement), byId("create-templates-custom", HTMLTextAreaElement));
  const create = { form: byId("create-form", HTMLFormElement), name: byId("create-name", HTMLInputElement), classes: byId("create-classes", HTMLTextAreaElement), method: byId("create-method", HTMLSelectElement), button: byId("create-button", HTMLButtonElement), status: byId("create-status", HTMLElement), error: byId("create-error", HTMLElement) };
  create.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(create.button, create.status, create.error, "Creating…", async () => {
      const body = { name: create.name.value.trim(), classes: create.classes.value, templates: createTemplates(), method: create.method.value };
      const d = detectorSummary(await getJson("v1/detectors", { method: "POST", json: body }));
      await refreshDetectors();
      return `Created ${d.name || body.name} (${d.classes.length} classes).`;
    });
  });

  const cal = { form: byId("calibrate-form", HTMLFormElement), detector: byId("calibrate-detector", HTMLSelectElement), tpr: byId("calibrate-tpr", HTMLInputElement), id: byId("calibrate-id", HTMLInputElement), ood: byId("calibrate-ood", HTMLInputElement), button: byId("calibrate-button", HTMLButtonElement), status: byId("calibrate-status", HTMLElement), error: byId("calibrate-error", HTMLElement) };
  cal.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(cal.button, cal.status, cal.error, "Calibrating…", async () => {
      const name = chosenDetector(cal.detector);
      const ids = Array.from(cal.id.files ?? []);
      if (ids.length === 0) throw usage("No in-distribution images chosen.", "Pick images the detector should accept; the threshold keeps the chosen TPR of them.");
      const tpr = Number(cal.tpr.value);
      if (!(tpr > 0 && tpr <= 1)) throw usage(`TPR “${cal.tpr.value}” is not in (0, 1].`, "Use e.g. 0.95.");
      const body = new FormData();
      ids.forEach((f) => body.append("id", f, f.name));
      Array.from(cal.ood.files ?? []).forEach((f) => body.append("ood", f, f.name));
      body.append("tpr", String(tpr));
      const res = await getJson(detectorPath(name, "/calibrate"), { method: "POST", body });
      await refreshDetectors();
      const t = isRecord(res.threshold) ? res.threshold : {};
      const value = numOrNull(t.value);
      const fpr = numOrNull(t.fpr);
      return `Threshold of ${name}: ${value === null ? "?" : fmtScore(value)} (TPR ${fmtPct(numOrNull(t.tpr) ?? tpr)}${fpr === null ? "" : `, FPR ${fmtPct(fpr)}`}; ${numOrNull(t.idCount) ?? ids.length} ID, ${numOrNull(t.oodCount) ?? 0} OOD images).`;
    });
  });

  const cls = { form: byId("classes-form", HTMLFormElement), detector: byId("classes-detector", HTMLSelectElement), add: byId("classes-add", HTMLTextAreaElement), remove: byId("classes-remove", HTMLTextAreaElement), button: byId("classes-button", HTMLButtonElement), status: byId("classes-status", HTMLElement), error: byId("classes-error", HTMLElement) };
  cls.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(cls.button, cls.status, cls.error, "Updating…", async () => {
      const name = chosenDetector(cls.detector);
      const add = splitList(cls.add.value);
      const remove = splitList(cls.remove.value);
      if (add.length === 0 && remove.length === 0) throw usage("Nothing to add or remove.", "List classes to add, to remove, or both.");
      const d = detectorSummary(await getJson(detectorPath(name, "/classes"), { method: "POST", json: { ...(add.length ? { add } : {}), ...(remove.length ? { remove } : {}) } }));
      await refreshDetectors();
      return `${name} now has ${d.classes.length} classes.`;
    });
  });
}

// ─────────────────────────────────────────── Evaluate ───────────────────────────────────────────

const evalUi = {
  form: byId("eval-form", HTMLFormElement),
  id: byId("eval-id", HTMLInputElement),
  ood: byId("eval-ood", HTMLTextAreaElement),
  classes: byId("eval-classes", HTMLInputElement),
  convention: byId("eval-convention", HTMLSelectElement),
  button: byId("eval-button", HTMLButtonElement),
  status: byId("eval-status", HTMLElement),
  error: byId("eval-error", HTMLElement),
  progressWrap: byId("eval-progress-wrap", HTMLElement),
  progressLabel: byId("eval-progress-label", HTMLElement),
  progress: byId("eval-progress", HTMLProgressElement),
  results: byId("eval-results", HTMLElement),
  table: byId("eval-table", HTMLTableElement),
  report: byId("eval-report", HTMLIFrameElement),
  reportLink: byId("eval-report-link", HTMLAnchorElement),
  job: 0,
  reportUrl: "",
};

/** `name=path` lines → {name: path}. */
function parseOodSets(text: string): Record<string, string> {
  const sets: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    const eq = line.indexOf("=");
    const name = line.slice(0, eq).trim();
    const p = line.slice(eq + 1).trim();
    if (eq < 0 || name === "" || p === "") throw usage(`OOD line ${i + 1} (“${line}”) is not name=path.`, "Write one set per line, e.g. textures=/data/dtd.");
    if (name in sets) throw usage(`The OOD set name “${name}” appears twice.`, "Give every OOD set its own name.");
    sets[name] = p;
  });
  return sets;
}

const FRACTION_KEYS = new Set(["auroc", "fpr95", "auprIn", "auprOut", "detectionAccuracy", "idAccuracy"]);
const COLUMN_NAMES: Record<string, string> = { auroc: "AUROC %", fpr95: "FPR@95 %", auprIn: "AUPR-In %", auprOut: "AUPR-Out %", detectionAccuracy: "Det. acc. %", idAccuracy: "ID acc. %", "n.id": "n ID", "n.ood": "n OOD" };

/** Nested objects (`n: {id, ood}`) become dotted columns. */
function flatten(row: Json, prefix = ""): [string, unknown][] {
  return Object.entries(row).flatMap(([k, v]) => (isRecord(v) ? flatten(v, `${prefix}${k}.`) : [[`${prefix}${k}`, v] as [string, unknown]]));
}

function cell(key: string, v: unknown): string {
  if (typeof v === "number") return FRACTION_KEYS.has(key) ? (100 * v).toFixed(2) : Number.isInteger(v) ? String(v) : v.toPrecision(5);
  if (v === null || v === undefined) return "–";
  return typeof v === "string" ? v : JSON.stringify(v);
}

function renderRows(rows: readonly Json[]): void {
  const flat = rows.map((r) => new Map(flatten(r)));
  const keys = [...new Set(flat.flatMap((m) => [...m.keys()]))];
  evalUi.table.replaceChildren(
    h("caption", { class: "visually-hidden" }, "Evaluation metrics by method and OOD set"),
    h("thead", {}, h("tr", {}, ...keys.map((k) => h("th", { scope: "col" }, COLUMN_NAMES[k] ?? k)))),
    h("tbody", {}, ...flat.map((m) => h("tr", { "data-testid": "eval-row" }, ...keys.map((k, i) => (i === 0 ? h("th", { scope: "row" }, cell(k, m.get(k))) : h("td", { "data-metric": k }, cell(k, m.get(k)))))))),
  );
}

async function runEval(): Promise<string> {
  const id = evalUi.id.value.trim();
  if (id === "") throw usage("No in-distribution set given.", "Type the path of the ID set on the server, inside one of its data roots.");
  const ood = parseOodSets(evalUi.ood.value);
  if (Object.keys(ood).length === 0) throw usage("No OOD sets given.", "Add at least one line name=path.");
  const methods = Array.from(document.querySelectorAll<HTMLInputElement>("#eval-methods input:checked"), (i) => i.value);
  const detectors = Array.from(document.querySelectorAll<HTMLInputElement>("#eval-detectors input:checked"), (i) => i.value);
  if (methods.length === 0 && detectors.length === 0) throw usage("No methods chosen.", "Tick at least one method or server detector.");
  const body: Json = { id, ood, fprConvention: evalUi.convention.value };
  if (methods.length) body.methods = methods;
  if (detectors.length) body.detectors = detectors;
  if (evalUi.classes.value.trim()) body.classes = evalUi.classes.value.trim();
  const started = await getJson("v1/eval", { method: "POST", json: body });
  const job = str(started.job);
  if (!job) throw new ApiError(0, "HTTP", "The server started no job.", "");
  const token = ++evalUi.job;
  evalUi.results.hidden = true;
  evalUi.progressWrap.hidden = false;
  evalUi.progress.removeAttribute("value"); // indeterminate until the first progress report
  evalUi.progressLabel.textContent = `Job ${job}: queued`;
  let state: Json = {};
  for (;;) {
    await new Promise((r) => window.setTimeout(r, 400));
    if (token !== evalUi.job) return "";
    state = await getJson(`v1/jobs/${encodeURIComponent(job)}`);
    const status = str(state.status);
    const p = isRecord(state.progress) ? state.progress : undefined;
    const done = numOrNull(p?.done);
    const total = numOrNull(p?.total);
    if (done !== null && total) {
      evalUi.progress.max = total;
      evalUi.progress.value = done;
    }
    evalUi.progressLabel.textContent = `Job ${job}: ${status}${p ? ` · ${str(p.set, "set")} ${done ?? "?"}/${total ?? "?"}` : ""}`;
    if (status === "failed") {
      evalUi.progressWrap.hidden = true;
      const e = isRecord(state.error) ? state.error : {};
      throw new ApiError(0, str(e.code, "JOB"), str(e.message, `Job ${job} failed.`), str(e.hint));
    }
    if (status === "done") break;
  }
  evalUi.progressWrap.hidden = true;
  renderRows(list(state.rows).filter(isRecord));
  const reportPath = `v1/jobs/${encodeURIComponent(job)}/report`;
  const html = await (await send(reportPath)).text();
  // Framed from its URL, the report runs under its own CSP (inline styles allowed); an iframe cannot
  // send the key, so with one the fetched text goes into srcdoc, which inherits this page's stricter
  // CSP and shows unstyled. sandbox="" keeps either inert.
  if (apiKeyInput.value.trim() === "") {
    evalUi.report.removeAttribute("srcdoc");
    evalUi.report.src = reportPath;
  } else {
    evalUi.report.removeAttribute("src");
    evalUi.report.srcdoc = html;
  }
  if (evalUi.reportUrl) URL.revokeObjectURL(evalUi.reportUrl);
  evalUi.reportUrl = URL.createObjectURL(new Blob([html], { type: "text/html" }));
  evalUi.reportLink.href = evalUi.reportUrl;
  evalUi.reportLink.download = `clip-ood-report-${job}.html`;
  evalUi.results.hidden = false;
  return `Job ${job} done.`;
}

function setupEval(): void {
  evalUi.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(evalUi.button, evalUi.status, evalUi.error, "Starting…", runEval);
  });
}

// ─────────────────────────────────────────── Start ───────────────────────────────────────────

setupApiKey();
setupTabs();
setupDetect();
setupSearch();
setupDetectors();
setupEval();
void watchReady();
void refreshDetectors();
