/** The Evaluate tab: an evaluation job on server-side image sets, polled to its metrics and HTML report. */

import { ApiError, apiKeyInput, getJson, send } from "./api.js";
import { byId, h } from "./dom.js";
import { pollJob, showProgress } from "./jobs.js";
import { isRecord, list, str } from "./json.js";
import type { Json } from "./json.js";
import { act, usage } from "./messages.js";

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
  let state: Json | undefined;
  try {
    state = await pollJob(job, () => token === evalUi.job, (status, p) => showProgress(evalUi.progress, evalUi.progressLabel, job, status, p));
  } catch (e) {
    evalUi.progressWrap.hidden = true;
    throw e;
  }
  if (!state) return "";
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

export function setupEval(): void {
  evalUi.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(evalUi.button, evalUi.status, evalUi.error, "Starting…", runEval);
  });
}

/** The Detectors tab's list changed: offer its detectors as checkboxes, keeping those ticked. */
export function offerEvalDetectors(names: readonly string[]): void {
  const boxes = byId("eval-detectors", HTMLElement);
  const checked = new Set(Array.from(boxes.querySelectorAll<HTMLInputElement>("input:checked"), (i) => i.value));
  boxes.replaceChildren(...names.map((n) => h("label", {}, h("input", { type: "checkbox", name: "detector", value: n, checked: checked.has(n) }), ` ${n}`)));
  byId("eval-detectors-fieldset", HTMLFieldSetElement).hidden = names.length === 0;
}
