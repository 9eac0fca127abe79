/**
 * Growing a detector from a discovery: the chosen clusters become classes, named by their best
 * candidate or the user's name, and few-shot methods take the clusters' images as shots. A discovery
 * made with another model, or against another detector, is refused: its clusters were formed in
 * another space, or against other known classes.
 */
import type { ClipModel } from "../clip.js";
import { ClipOodError } from "../errors.js";
import { matrix, normalizeRows, stackRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { addClasses } from "../ood/build.js";
import { isFewShot, isHeadState, UNKNOWN_DTYPE } from "../ood/detector.js";
import type { Detector } from "../ood/detector.js";
import { addShots } from "../ood/feature-space/fewshot.js";
import type { FewShotState } from "../ood/feature-space/fewshot.js";
import { embedWithStore } from "../store/cached.js";
import type { ClassSpec } from "../text/classes.js";
import { detectorFingerprint } from "./fingerprint.js";
import type { AddDiscoveredOptions, AddedDiscovery, DiscoveredCluster, DiscoveryResult } from "./types.js";

const REDISCOVER = "run discover again with this detector (`clip-ood discover <images> --detector <file> --out discovery.json`)";

/** Refuses a discovery made with another model, dtype or detector than `detector`. */
export function checkDiscoveryFits(detector: Detector, discovery: DiscoveryResult, names: { detector?: string; discovery?: string } = {}): void {
  const det = names.detector ?? "the detector";
  const disc = names.discovery ?? "the discovery";
  if (discovery.model.id !== detector.model.id) {
    throw new ClipOodError("MODEL_FOLDER", `${disc} was made with model ${discovery.model.id}, ${det} is for model ${detector.model.id}`, { hint: `its clusters live in another embedding space; ${REDISCOVER}` });
  }
  if (discovery.model.dtype !== detector.model.dtype && detector.model.dtype !== UNKNOWN_DTYPE) {
    throw new ClipOodError("MODEL_FOLDER", `${disc} was made with ${discovery.model.dtype} embeddings, ${det} with ${detector.model.dtype}`, { hint: `${REDISCOVER} and the detector's --dtype` });
  }
  if (discovery.model.dim !== detector.model.dim) {
    throw new ClipOodError("MODEL_FOLDER", `${disc} has ${discovery.model.dim}-dimensional embeddings, ${det} ${detector.model.dim}`, { hint: REDISCOVER });
  }
  const ref = discovery.detector;
  if (!ref) return;
  const missing = discovery.knownClasses.filter((l) => !detector.classFeatures.labels.includes(l));
  const same = ref.method === detector.method && missing.length === 0 && detectorFingerprint(detector, discovery.knownClasses) === ref.fingerprint;
  if (!same) {
    const why =
      ref.method !== detector.method
        ? `a ${ref.method} detector, ${det} is ${detector.method}`
        : missing.length > 0
          ? `a detector with class${missing.length === 1 ? "" : "es"} ${missing.join(", ")}, which ${det} lacks`
          : `a detector whose classes ${discovery.knownClasses.join(", ")} have other text features (other templates or model)`;
    throw new ClipOodError("USAGE", `${disc} was made against another detector${ref.file === undefined ? "" : ` (${ref.file})`}: ${why}`, { hint: `add it to that detector, or ${REDISCOVER}` });
  }
}

/** Each chosen cluster with the class name it is added under. */
export function chosenClusters(discovery: DiscoveryResult, options: Pick<AddDiscoveredOptions, "clusters" | "names">, source = "the discovery"): { cluster: DiscoveredCluster; label: string }[] {
  if (discovery.clusters.length === 0) {
    throw new ClipOodError("USAGE", `${source} found no new clusters${discovery.note ? ` (${discovery.note})` : ""}`, { hint: "there is nothing to add; discover on more or other images" });
  }
  const ids = discovery.clusters.map((c) => c.id);
  const wanted = options.clusters ?? ids;
  const unknown = wanted.filter((id) => !ids.includes(id));
  if (unknown.length > 0) {
    throw new ClipOodError("USAGE", `${source} has no cluster ${unknown.join(", ")}`, { hint: `its clusters are ${ids.join(", ")}` });
  }
  const names = options.names instanceof Map ? options.names : new Map(Object.entries(options.names ?? {}).map(([k, v]) => [Number(k), v] as const));
  for (const id of names.keys()) {
    if (!wanted.includes(id)) throw new ClipOodError("USAGE", `a name is given for cluster ${id}, which is not being added`, { hint: `the clusters being added are ${[...new Set(wanted)].join(", ")}` });
  }
  const out = [...new Set(wanted)].map((id) => {
    const cluster = discovery.clusters.find((c) => c.id === id)!;
    const label = (names.get(id) ?? cluster.candidates[0]?.name ?? "").trim().normalize("NFC");
    if (label === "") throw new ClipOodError("USAGE", `cluster ${id} has no candidate name`, { hint: `name it: --name ${id}=<class name>` });
    return { cluster, label };
  });
  const seen = new Map<string, number>();
  for (const { cluster, label } of out) {
    const other = seen.get(label.toLowerCase());
    if (other !== undefined) throw new ClipOodError("CLASSES", `clusters ${other} and ${cluster.id} would both be added as "${label}"`, { hint: `name one of them: --name ${cluster.id}=<another name>, or add one cluster only` });
    seen.set(label.toLowerCase(), cluster.id);
  }
  return out;
}

export async function addDiscoveredClasses(detector: Detector, discovery: DiscoveryResult, options: AddDiscoveredOptions = {}, model?: ClipModel): Promise<AddedDiscovery> {
  checkDiscoveryFits(detector, discovery);
  const chosen = chosenClusters(discovery, options);
  if (detector.method === "combo") {
    throw new ClipOodError("USAGE", "cannot add discovered classes to a combined detector: each part holds its own classes and fitted data", { hint: "add them to each part, then combine the parts again" });
  }
  if (detector.fitted && isHeadState(detector.fitted)) {
    throw new ClipOodError("USAGE", `cannot add classes to a ${detector.fitted.kind} detector: its classifier was trained on exactly its classes`, {
      hint: `fit it again with \`clip-ood fit --method ${detector.fitted.kind} --id <class folders>\`, a folder per class including the new ones`,
    });
  }
  const specs: ClassSpec[] = chosen.map((c) => ({ label: c.label, names: [c.label], descriptions: [] }));
  const needsShots = isFewShot(detector.method);
  if (needsShots && detector.fitted?.kind === "ocsvm") addShots(detector.fitted, []); // its refusal, before any embedding
  const shots = needsShots ? await clusterShots(chosen.map((c) => c.cluster), options, model) : undefined;
  let updated: Detector;
  if (detector.classFeaturesFrom === "fit-means") {
    // Its classes are named by mean fitting embeddings, not text: the new ones by their images' mean.
    updated = appendFeatures(detector, specs, shots!);
  } else {
    if (!model) throw new ClipOodError("USAGE", "adding classes encodes their names with the model, and no model was given", { hint: "pass the loaded model the detector was made for" });
    updated = await addClasses(detector, model, specs);
  }
  if (shots) updated = { ...updated, fitted: addShots(detector.fitted as FewShotState, shots), fitRows: (detector.fitRows ?? 0) + shots.reduce((s, m) => s + m.rows, 0) };
  return { detector: updated, added: chosen.map((c, i) => ({ cluster: c.cluster.id, label: c.label, shots: shots?.[i]!.rows ?? 0 })) };
}

/** The members' embeddings of each cluster, from the store where it has them; images that cannot be read are reported and left out. */
async function clusterShots(clusters: readonly DiscoveredCluster[], options: AddDiscoveredOptions, model: ClipModel | undefined): Promise<Matrix[]> {
  if (!model) throw new ClipOodError("USAGE", "few-shot detectors take the clusters' images as shots, and no model was given to embed them", { hint: "pass the loaded model the detector was made for" });
  const out: Matrix[] = [];
  for (const c of clusters) {
    const inputs = c.members.map((m) => m.input);
    const rows: Float32Array[] = [];
    const results = options.store ? embedWithStore(model, options.store, inputs) : model.embedImages(inputs);
    for await (const r of results) {
      if (r.embedding) rows.push(r.embedding);
      else options.onFailure?.(r.input, r.error?.message ?? "unknown error");
    }
    if (rows.length === 0) {
      throw new ClipOodError("INPUT", `none of cluster ${c.id}'s ${inputs.length} images could be read`, { hint: "the images have moved or changed since discover ran; run it again" });
    }
    out.push(stackRows(rows));
  }
  return out;
}

function appendFeatures(detector: Detector, specs: readonly ClassSpec[], shots: readonly Matrix[]): Detector {
  const existing = new Set(detector.classes.map((c) => c.label.toLowerCase()));
  const dup = specs.filter((c) => existing.has(c.label.toLowerCase())).map((c) => c.label);
  if (dup.length > 0) throw new ClipOodError("CLASSES", `the detector already has ${dup.join(", ")}`, { hint: "name the cluster otherwise with --name <id>=<name>" });
  const m = detector.classFeatures.matrix;
  const d = m.cols;
  const data = new Float32Array((m.rows + specs.length) * d);
  data.set(m.data.subarray(0, m.rows * d));
  shots.forEach((s, c) => {
    const unit = normalizeRows(s);
    const acc = new Float64Array(d);
    for (let i = 0; i < unit.rows; i++) for (let j = 0; j < d; j++) acc[j]! += unit.data[i * d + j]!;
    for (let j = 0; j < d; j++) data[(m.rows + c) * d + j] = acc[j]! / unit.rows;
  });
  const features = matrix(m.rows + specs.length, d, data);
  const rows = normalizeRows(matrix(specs.length, d, data.slice(m.rows * d)));
  features.data.set(rows.data, m.rows * d);
  return {
    ...detector,
    classes: [...detector.classes, ...specs],
    classFeatures: { labels: [...detector.classFeatures.labels, ...specs.map((c) => c.label)], prompts: [...detector.classFeatures.prompts, ...specs.map(() => [])], matrix: features },
  };
}
