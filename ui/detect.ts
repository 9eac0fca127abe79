/**
 * The Detect tab: images chosen by file field, drop or paste, scored by a server detector or
 * zero-shot, one card each with the verdict, a score gauge and the class probabilities.
 */

import { getJson } from "./api.js";
import { byId, fillSelect, h, templatesControl } from "./dom.js";
import { fmtPct, fmtScore } from "./format.js";
import { isRecord, list, numOrNull, str } from "./json.js";
import type { Json } from "./json.js";
import { act, clearError, usage } from "./messages.js";
import { currentTab, selectTab } from "./tabs.js";

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

/** A gauge end: short, since it only orients the eye. */
function fmtEnd(x: number): string {
  return String(Number(x.toPrecision(3)));
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

export function setupDetect(): void {
  setupDetectInputs();
  detect.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(detect.button, detect.status, detect.error, "Detecting…", runDetect);
  });
}

/** The Detectors tab's list changed: offer its detectors here too. */
export function offerDetectors(names: readonly string[]): void {
  fillSelect(detect.detector, names, "None: zero-shot with the classes below");
  detect.zeroShot.disabled = detect.detector.value !== "";
}

/** Opens this tab with a server detector chosen, whose own classes replace the zero-shot fields. */
export function useDetector(name: string): void {
  detect.detector.value = name;
  detect.zeroShot.disabled = true;
  selectTab("detect", true);
}
