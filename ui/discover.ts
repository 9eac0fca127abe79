/**
 * The Discover tab: a discovery job over images the known classes do not explain (a server folder or
 * uploads), polled to its clusters; each cluster shows a strip of thumbnails, its suggested names,
 * size and cohesion, and the chosen clusters, under names the user may edit, become classes of a
 * server detector with one button, after which the detector wants calibrating again.
 */

import { ApiError, getJson } from "./api.js";
import { refreshDetectors } from "./detectors.js";
import { byId, fillSelect, h, templatesControl } from "./dom.js";
import { fmtScore, splitList } from "./format.js";
import { pollJob, showProgress } from "./jobs.js";
import { isRecord, list, numOrNull, str, strings } from "./json.js";
import type { Json } from "./json.js";
import { act, clearError, usage } from "./messages.js";
import { selectTab } from "./tabs.js";
import { baseName, Thumbnails, thumbnailUrl } from "./thumbnails.js";

interface Cluster {
  id: number;
  size: number;
  candidates: { name: string; score: number }[];
  typical: string[];
  atypical: string[];
  cohesion: number | null;
  nearestKnown: { label: string; cosine: number | null } | null;
}

/** The discovery the results show, with where its images are (server paths or the uploaded files). */
interface Shown {
  job: string;
  clusters: Cluster[];
  uploads: Map<string, File> | null;
}

const disc = {
  form: byId("discover-form", HTMLFormElement),
  path: byId("discover-path", HTMLInputElement),
  files: byId("discover-files", HTMLInputElement),
  detector: byId("discover-detector", HTMLSelectElement),
  classesField: byId("discover-classes-field", HTMLElement),
  classes: byId("discover-classes", HTMLTextAreaElement),
  onlyOod: byId("discover-only-ood", HTMLInputElement),
  k: byId("discover-k", HTMLInputElement),
  seed: byId("discover-seed", HTMLInputElement),
  vocabulary: byId("discover-vocabulary", HTMLSelectElement),
  wordsField: byId("discover-words-field", HTMLElement),
  words: byId("discover-words", HTMLTextAreaElement),
  templates: templatesControl(byId("discover-templates", HTMLSelectElement), byId("discover-templates-custom-field", HTMLElement), byId("discover-templates-custom", HTMLTextAreaElement)),
  button: byId("discover-button", HTMLButtonElement),
  status: byId("discover-status", HTMLElement),
  error: byId("discover-error", HTMLElement),
  progressWrap: byId("discover-progress-wrap", HTMLElement),
  progressLabel: byId("discover-progress-label", HTMLElement),
  progress: byId("discover-progress", HTMLProgressElement),
  results: byId("discover-results", HTMLElement),
  summary: byId("discover-summary", HTMLElement),
  clusters: byId("discover-clusters", HTMLOListElement),
  others: byId("discover-others", HTMLElement),
  addForm: byId("discover-add-form", HTMLFormElement),
  target: byId("discover-target", HTMLSelectElement),
  addButton: byId("discover-add-button", HTMLButtonElement),
  addStatus: byId("discover-add-status", HTMLElement),
  addError: byId("discover-add-error", HTMLElement),
  added: byId("discover-added", HTMLElement),
  thumbnails: new Thumbnails(),
  job: 0,
  shown: null as Shown | null,
  /** The detector the shown discovery was made with: the default place to add its clusters. */
  madeWith: "",
};

function cluster(v: Json): Cluster {
  const near = isRecord(v.nearestKnown) ? v.nearestKnown : null;
  return {
    id: numOrNull(v.id) ?? 0,
    size: numOrNull(v.size) ?? 0,
    candidates: list(v.candidates)
      .filter(isRecord)
      .map((c) => ({ name: str(c.name), score: numOrNull(c.score) ?? 0 })),
    typical: strings(v.typical),
    atypical: strings(v.atypical),
    cohesion: numOrNull(v.cohesion),
    nearestKnown: near ? { label: str(near.label), cosine: numOrNull(near.cosine) } : null,
  };
}

/** Server detectors, as the Detectors tab lists them: a choice for the known classes and a target to add to. */
export function offerDiscoverDetectors(names: readonly string[]): void {
  fillSelect(disc.detector, names, "None: the classes below");
  syncKnownFields();
  fillSelect(disc.target, names, names.length ? undefined : "No detectors yet");
  if (disc.madeWith && names.includes(disc.madeWith)) disc.target.value = disc.madeWith;
}

/** A detector brings its own classes; only a detector can reject images (onlyOod). */
function syncKnownFields(): void {
  const withDetector = disc.detector.value !== "";
  disc.classes.disabled = withDetector;
  disc.classesField.hidden = withDetector;
  disc.onlyOod.disabled = !withDetector;
  if (!withDetector) disc.onlyOod.checked = false;
}

function requestBody(): { json: Json } | { body: FormData; uploads: Map<string, File> } {
  const folder = disc.path.value.trim();
  const files = Array.from(disc.files.files ?? []);
  if (folder !== "" && files.length > 0) throw usage("Both a server folder and uploaded images are given.", "Use one: clear the folder field, or the chosen files.");
  if (folder === "" && files.length === 0) throw usage("No images given.", "Type a folder on the server (inside a data root), or pick images to upload.");
  const fields: Json = {};
  if (disc.detector.value) fields.detector = disc.detector.value;
  else {
    const classes = disc.classes.value.trim();
    if (classes === "") throw usage("No known classes given.", "Choose a server detector, or list the classes the images may already belong to.");
    fields.classes = classes;
  }
  if (disc.onlyOod.checked) fields.onlyOod = true;
  const k = disc.k.value.trim() || "auto";
  if (k !== "auto" && !/^\d+$/.test(k)) throw usage(`Clusters “${disc.k.value}” is neither “auto” nor a whole number.`, "Leave “auto” to estimate it, or type e.g. 3.");
  fields.k = k === "auto" ? "auto" : Number(k);
  const seed = disc.seed.value.trim();
  if (seed !== "") {
    if (!/^\d+$/.test(seed)) throw usage(`Seed “${seed}” is not a whole number ≥ 0.`, "Use e.g. 0; the same seed gives the same clusters.");
    fields.seed = Number(seed);
  }
  if (disc.vocabulary.value === "custom") {
    const words = splitList(disc.words.value);
    if (words.length === 0) throw usage("The list of candidate names is empty.", "Type the names to choose from, comma-separated or one per line, or choose WordNet.");
    fields.vocabulary = words;
  } else fields.vocabulary = "wordnet";
  const templates = disc.templates();
  if (templates !== "" && !(Array.isArray(templates) && templates.length === 0)) fields.templates = templates;
  if (folder !== "") return { json: { path: folder, ...fields } };
  const body = new FormData();
  const uploads = new Map<string, File>();
  for (const f of files) {
    body.append("image", f, f.name);
    if (!uploads.has(f.name)) uploads.set(f.name, f);
  }
  for (const [k2, v] of Object.entries(fields)) body.append(k2, typeof v === "string" ? v : JSON.stringify(v));
  return { body, uploads };
}

async function runDiscovery(): Promise<string> {
  const request = requestBody();
  const started = await getJson("v1/discover", { method: "POST", ...("json" in request ? { json: request.json } : { body: request.body }) });
  const job = str(started.job);
  if (!job) throw new ApiError(0, "HTTP", "The server started no job.", "");
  const token = ++disc.job;
  disc.results.hidden = true;
  disc.progressWrap.hidden = false;
  disc.progress.removeAttribute("value");
  disc.progressLabel.textContent = `Job ${job}: queued`;
  let state: Json | undefined;
  try {
    state = await pollJob(job, () => token === disc.job, (status, p) => showProgress(disc.progress, disc.progressLabel, job, status, p));
  } finally {
    if (token === disc.job) disc.progressWrap.hidden = true;
  }
  if (!state) return "";
  const discovery = isRecord(state.discovery) ? state.discovery : undefined;
  if (!discovery) throw new ApiError(0, "HTTP", `Job ${job} is done but holds no discovery.`, "Is this server's version the same as this page's?");
  return render(job, discovery, "uploads" in request ? request.uploads : null);
}

function render(job: string, d: Json, uploads: Map<string, File> | null): string {
  const clusters = list(d.clusters).filter(isRecord).map(cluster);
  disc.shown = { job, clusters, uploads };
  const detector = isRecord(d.detector) ? d.detector : undefined;
  disc.madeWith = str(detector?.file);
  if (disc.madeWith && Array.from(disc.target.options, (o) => o.value).includes(disc.madeWith)) disc.target.value = disc.madeWith;
  disc.thumbnails.release();
  clearError(disc.addError);
  disc.addStatus.textContent = "";
  disc.added.replaceChildren();

  const k = isRecord(d.k) ? d.k : {};
  const inputs = numOrNull(d.inputs) ?? 0;
  const kept = numOrNull(d.keptInDistribution) ?? 0;
  const failed = list(d.failed).filter(isRecord);
  const method = str(k.method);
  disc.summary.replaceChildren(
    `${clusters.length} new cluster${clusters.length === 1 ? "" : "s"} among ${inputs} image${inputs === 1 ? "" : "s"}`,
    method ? ` (number of clusters: ${method === "given" ? "as given" : `estimated by ${method}`})` : "",
    kept ? `; ${kept} left out as in-distribution` : "",
    failed.length ? `; ${failed.length} could not be read` : "",
    ".",
  );
  const note = str(d.note);
  if (note) disc.summary.append(h("span", { class: "note", "data-testid": "discover-note" }, ` ${note}`));

  disc.clusters.replaceChildren(...clusters.map((c) => clusterCard(c, uploads)));
  disc.others.replaceChildren(...otherInputs(d, failed));
  disc.addForm.hidden = clusters.length === 0;
  disc.results.hidden = false;
  return `Job ${job} done: ${clusters.length} cluster${clusters.length === 1 ? "" : "s"}.`;
}

function thumb(input: string, uploads: Map<string, File> | null): HTMLElement {
  const img = h("img", { class: "strip-thumb", alt: baseName(input), title: input, loading: "lazy", width: 96, height: 96 });
  const file = uploads?.get(input);
  if (uploads) {
    if (file) img.src = disc.thumbnails.local(file);
  } else void disc.thumbnails.load(thumbnailUrl(input), img);
  return h("li", { "data-testid": "cluster-thumb", "data-input": input }, img);
}

function clusterCard(c: Cluster, uploads: Map<string, File> | null): HTMLElement {
  const base = `discover-cluster-${c.id}`;
  const best = c.candidates[0]?.name ?? "";
  const name = h("input", { id: `${base}-name`, type: "text", value: best, autocomplete: "off", spellcheck: "false", "data-testid": "cluster-name", "aria-describedby": `${base}-names-heading` });
  const choose = h("input", { type: "checkbox", id: `${base}-choose`, checked: true, "data-testid": "cluster-choose" });
  const facts = [`${c.size} image${c.size === 1 ? "" : "s"}`, c.cohesion === null ? "" : `cohesion ${c.cohesion.toFixed(3)}`, c.nearestKnown ? `nearest known class: ${c.nearestKnown.label}${c.nearestKnown.cosine === null ? "" : ` (${c.nearestKnown.cosine.toFixed(3)})`}` : ""].filter((s) => s !== "");
  const candidates = c.candidates.map((cand) => {
    const use = h("button", { type: "button", class: "chip", "data-testid": "candidate", "data-name": cand.name, "aria-label": `Name cluster ${c.id} “${cand.name}” (score ${fmtScore(cand.score)})` }, cand.name, h("span", { class: "chip-score" }, fmtScore(cand.score)));
    use.addEventListener("click", () => {
      name.value = cand.name;
      name.focus();
    });
    return h("li", {}, use);
  });
  // A small cluster's least typical images are among its most typical ones already.
  const atypical = c.atypical.filter((a) => !c.typical.includes(a));
  const strip = (inputs: readonly string[], label: string) => h("ul", { class: "strip", "aria-label": label }, ...inputs.map((i) => thumb(i, uploads)));
  return h(
    "li",
    { class: "cluster", "data-testid": "cluster", "data-cluster": c.id, "aria-labelledby": `${base}-title` },
    h(
      "div",
      { class: "cluster-head" },
      h("h4", { id: `${base}-title` }, `Cluster ${c.id}`),
      h("p", { class: "muted", "data-testid": "cluster-facts" }, facts.join(" · ")),
    ),
    strip(c.typical, `Most typical images of cluster ${c.id}`),
    atypical.length ? h("details", {}, h("summary", {}, `Least typical images (${atypical.length})`), strip(atypical, `Least typical images of cluster ${c.id}`)) : null,
    h("p", { class: "candidates-heading", id: `${base}-names-heading` }, c.candidates.length ? "Suggested names (score: cosine to the cluster’s centre):" : "No suggested names."),
    c.candidates.length ? h("ul", { class: "candidates", "data-testid": "cluster-candidates" }, ...candidates) : null,
    h("div", { class: "cluster-choice" }, h("div", { class: "field" }, h("label", { for: name.id }, `Name of cluster ${c.id}`), name), h("label", { class: "choose", for: choose.id }, choose, ` Add cluster ${c.id}`)),
  );
}

/** The images no cluster of new classes took: those in known classes, those that fit nowhere, those unread. */
function otherInputs(d: Json, failed: readonly Json[]): HTMLElement[] {
  const known = list(d.known)
    .filter(isRecord)
    .map((k) => ({ label: str(k.label), count: list(k.members).length }))
    .filter((k) => k.count > 0);
  const unassigned = list(d.unassigned)
    .filter(isRecord)
    .map((u) => str(u.input));
  const out: HTMLElement[] = [];
  if (known.length) out.push(h("p", { "data-testid": "discover-known" }, `In known classes: ${known.map((k) => `${k.label} ${k.count}`).join(", ")}.`));
  const names = (items: readonly string[]) => h("ul", { class: "plain-list" }, ...items.map((i) => h("li", { title: i }, baseName(i))));
  if (unassigned.length) out.push(h("details", { "data-testid": "discover-unassigned" }, h("summary", {}, `${unassigned.length} image${unassigned.length === 1 ? "" : "s"} fit no cluster well`), names(unassigned)));
  if (failed.length) out.push(h("details", {}, h("summary", {}, `${failed.length} image${failed.length === 1 ? "" : "s"} could not be read`), names(failed.map((f) => `${str(f.input)}: ${str(f.reason)}`))));
  return out;
}

async function addChosen(): Promise<string> {
  const shown = disc.shown;
  if (!shown) throw usage("No discovery to add from.", "Run a discovery first.");
  const target = disc.target.value;
  if (!target) throw usage("No detector chosen.", "Create a detector on the Detectors tab, then pick it here.");
  const clusters: number[] = [];
  const names: Record<string, string> = {};
  for (const c of shown.clusters) {
    if (!byId(`discover-cluster-${c.id}-choose`, HTMLInputElement).checked) continue;
    const field = byId(`discover-cluster-${c.id}-name`, HTMLInputElement);
    const name = field.value.trim();
    if (name === "") {
      field.focus();
      throw usage(`Cluster ${c.id} has no name.`, "Type a name for it, pick a suggested one, or untick it.");
    }
    clusters.push(c.id);
    names[String(c.id)] = name;
  }
  if (clusters.length === 0) throw usage("No clusters chosen.", "Tick “Add cluster …” on the clusters to add.");
  const res = await getJson(`v1/detectors/${encodeURIComponent(target)}/discovered`, { method: "POST", json: { job: shown.job, clusters, names } });
  await refreshDetectors();
  const added = list(res.added)
    .filter(isRecord)
    .map((a) => str(a.label));
  const classes = isRecord(res.detector) ? strings(res.detector.classes).length : 0;
  const calibrate = h("button", { type: "button", class: "secondary", "data-testid": "discover-calibrate" }, `Calibrate ${target}…`);
  calibrate.addEventListener("click", () => {
    byId("calibrate-detector", HTMLSelectElement).value = target;
    selectTab("detectors", false);
    byId("calibrate-id", HTMLInputElement).focus();
  });
  disc.added.replaceChildren(
    h("p", {}, h("strong", {}, "Recalibrate now: "), `${target}’s threshold was set for its classes before these were added. Calibrate it again before relying on its in/out verdicts.`),
    ...strings(res.warnings).map((w) => h("p", { class: "muted" }, w)),
    calibrate,
  );
  return `Added ${added.join(", ")} to ${target} (${classes} classes now).`;
}

export function setupDiscover(): void {
  disc.detector.addEventListener("change", syncKnownFields);
  syncKnownFields();
  const syncWords = () => {
    disc.wordsField.hidden = disc.vocabulary.value !== "custom";
  };
  disc.vocabulary.addEventListener("change", syncWords);
  syncWords();
  disc.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(disc.button, disc.status, disc.error, "Starting…", runDiscovery);
  });
  disc.addForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(disc.addButton, disc.addStatus, disc.addError, "Adding…", addChosen);
  });
}
