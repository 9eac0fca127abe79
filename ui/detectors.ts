/** The Detectors tab: the server's saved detectors, and forms to create, calibrate and edit them. */

import { getJson, send } from "./api.js";
import { byId, fillSelect, h, templatesControl } from "./dom.js";
import { offerDetectors, useDetector } from "./detect.js";
import { offerDiscoverDetectors } from "./discover.js";
import { offerEvalDetectors } from "./evaluate.js";
import { fmtPct, fmtScore, splitList } from "./format.js";
import { isRecord, list, numOrNull, str, strings } from "./json.js";
import type { Json } from "./json.js";
import { act, clearError, showError, usage } from "./messages.js";

interface DetectorSummary {
  name: string;
  method: string;
  classes: string[];
  templates: string[];
  threshold: number | null;
  model: string;
  warning: string;
}

function detectorSummary(v: Json): DetectorSummary {
  return { name: str(v.name), method: str(v.method), classes: strings(v.classes), templates: strings(v.templates), threshold: numOrNull(v.threshold), model: str(v.model), warning: str(v.warning) };
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

export async function refreshDetectors(): Promise<string> {
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
          use.addEventListener("click", () => useDetector(d.name));
          return h(
            "li",
            { class: "detector", "data-testid": "detector", "data-name": d.name },
            h("h4", {}, d.name),
            d.warning ? h("p", { class: "warning", role: "note", "data-testid": "detector-warning" }, d.warning) : null,
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
  offerDetectors(names);
  for (const select of document.querySelectorAll<HTMLSelectElement>("select.detector-choice")) fillSelect(select, names, names.length ? undefined : "No detectors yet");
  offerEvalDetectors(names);
  offerDiscoverDetectors(names);
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

export function setupDetectors(): void {
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
