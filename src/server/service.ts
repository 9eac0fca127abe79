/**
 * What the server does, independent of HTTP: classify, detect, embed, search, and keep named detectors,
 * all on one loaded model. Client data never names server files, except through DataRoots
 * (./data-roots.ts), which only admits paths inside the configured data roots.
 */
import path from "node:path";
import sharp from "sharp";
import type { ClipModel, ImageEmbeddingResult, ImageSource } from "../clip.js";
import { ClipOodError, isClipOodError } from "../errors.js";
import { IMAGE_EXTENSIONS } from "../image/inputs.js";
import type { Dataset } from "../eval/datasets.js";
import { addDiscoveredClasses, checkDiscoveryFits } from "../discover/add-discovered.js";
import type { AddedCluster, DiscoveryResult, EmbeddedInputs } from "../discover/types.js";
import { stackRows } from "../maths/vectors.js";
import type { Matrix } from "../maths/vectors.js";
import { addClasses, buildDetector, checkModel, localFeatureMaker, needsLocalFeatures, removeClasses } from "../ood/build.js";
import { calibrate, constantScoreReason, isFewShot, predictBatch } from "../ood/detector.js";
import type { Detector, DetectorMethod } from "../ood/detector.js";
import { NEGLABEL_ID_TEMPLATE } from "../ood/zero-shot/neglabel.js";
import { search } from "../store/search.js";
import type { EmbeddingStore } from "../store/store.js";
import { parseClassList } from "../text/classes.js";
import type { ClassSpec } from "../text/classes.js";
import { inlineTemplates } from "../text/templates.js";
import { classify } from "../zeroshot.js";
import type { LabelProbability } from "../zeroshot.js";
import { DataRoots } from "./data-roots.js";
import { DETECTOR_NAME, loadDetectorFiles, MemoryCatalog } from "./detector-catalog.js";
import type { CatalogEntry, DetectorCatalog } from "./detector-catalog.js";
import { checkCount, checkLength, LimitError } from "./limits.js";
import type { Limits } from "./limits.js";
import type { Upload } from "./http/request.js";
import { ConflictError, NotFoundError } from "./service-errors.js";

/** Methods a request may build on the fly (fitted ones need training data: create them with `clip-ood fit`). */
export const REQUEST_METHODS = ["mcm", "maxlogit", "energy", "entropy", "unknown", "neglabel", "glmcm"] as const satisfies readonly DetectorMethod[];

export interface DetectorSummary {
  name: string;
  method: DetectorMethod;
  classes: string[];
  templates: string[];
  threshold: number | null;
  model: string;
  /** Present when the detector cannot do its job as made: a softmax method over one class scores every input alike. */
  warning?: string;
}

export interface ServiceOptions {
  model: ClipModel;
  limits: Limits;
  store?: EmbeddingStore;
  /** Folders whose files server-side requests (eval sets, calibration folders, thumbnails, --in) may name. */
  dataRoots?: readonly string[];
  /** Where created and edited detectors are saved (and loaded from at start); none: memory only. */
  detectorsDir?: string;
  /**
   * Where detectors created through the API live when other processes share them (a PostgresCatalog);
   * then `detectorsDir` is not used, and detector files given at start stay this process's own.
   */
  catalog?: DetectorCatalog;
  /** Called with the number of images embedded (for metrics). */
  onImages?: (count: number) => void;
}

function summary(name: string, d: Detector): DetectorSummary {
  const warning = constantScoreReason(d);
  return { name, method: d.method, classes: d.classes.map((c) => c.label), templates: d.templates, threshold: d.threshold?.value ?? null, model: d.model.id, ...(warning ? { warning } : {}) };
}

/** A pixel-limit failure is the client's to fix by sending a smaller image: it carries the limit's name. */
function isPixelLimit(e: ClipOodError | null): boolean {
  return e !== null && /pixel limit|pixels exceeds the limit/.test(e.message);
}

export interface ImageResult {
  input: string;
  embedding?: Float32Array;
  error?: string;
  limit?: "maxPixels";
}

/** Tries of an edit that keeps meeting edits by other requests before it gives up. */
const EDIT_TRIES = 3;

export class ClipService {
  /** Detector files given at start; the same catalog as `catalog` unless that one is shared. */
  private readonly local: MemoryCatalog;
  private readonly catalog: DetectorCatalog;
  private readonly roots: DataRoots;
  /** Detectors built for one request's classes and method, reused by the next identical request. */
  private readonly adHoc = new Map<string, Promise<Detector>>();
  private readonly creating = new Set<string>();

  constructor(private readonly o: ServiceOptions) {
    this.local = new MemoryCatalog(o.catalog ? undefined : o.detectorsDir);
    this.catalog = o.catalog ?? this.local;
    this.roots = new DataRoots(o.dataRoots ?? []);
  }

  get model(): ClipModel {
    return this.o.model;
  }

  /** Loads detector files given at start, and those saved in the detectors folder; all must suit the model. */
  async loadDetectors(files: readonly string[]): Promise<void> {
    const given = await loadDetectorFiles(files);
    for (const g of given) checkModel(g.detector, this.o.model);
    for (const g of given) this.local.keep(g.name, g.detector);
    for (const e of await this.local.load()) checkModel(e.detector, this.o.model);
  }

  // --- inputs ---------------------------------------------------------------------------------------

  classes(spec: string | readonly string[] | undefined): ClassSpec[] {
    if (spec === undefined || (typeof spec === "string" ? spec.trim() === "" : spec.length === 0)) {
      throw new ClipOodError("CLASSES", "no classes given", { hint: 'send classes: "cat,dog,car" or a JSON array' });
    }
    const classes = typeof spec === "string" ? parseClassList(spec) : spec.length === 1 ? parseClassList(spec[0]!) : parseClassList(spec);
    checkCount("maxClasses", classes.length, this.o.limits, "classes");
    for (const c of classes) for (const t of [c.label, ...c.names, ...c.descriptions]) checkLength(t, this.o.limits, `class "${t.slice(0, 40)}…"`);
    return classes;
  }

  templates(spec: string | readonly string[] | undefined): string[] {
    const list = spec === undefined ? undefined : typeof spec === "string" ? spec : spec.length === 1 ? spec[0] : spec;
    const templates = inlineTemplates(list);
    for (const t of templates) checkLength(t, this.o.limits, "a template");
    return templates;
  }

  images(uploads: readonly Upload[]): ImageSource[] {
    if (uploads.length === 0) throw new ClipOodError("USAGE", "no images in the request", { hint: 'send image files in multipart fields named "image", or JSON "images": [{"name", "data": "<base64>"}]' });
    checkCount("maxImages", uploads.length, this.o.limits, "images");
    return uploads.map((u) => ({ name: u.name, data: u.data }));
  }

  /** A data set on the server, every file of it inside a data root. */
  dataset(spec: string, what: string): Promise<Dataset> {
    return this.roots.dataset(spec, what);
  }

  // --- inference ------------------------------------------------------------------------------------

  private async *embedSources(images: readonly ImageSource[], patches = false): AsyncGenerator<ImageEmbeddingResult> {
    let n = 0;
    for await (const r of this.o.model.embedImages(images, undefined, { patches })) {
      n++;
      yield r;
    }
    this.o.onImages?.(n);
  }

  /** Every image failed: the request as a whole is bad — answered with the first failure. */
  private allFailed(results: readonly { error?: string; limit?: string }[]): void {
    if (results.length > 0 && results.every((r) => r.error !== undefined)) {
      const first = results[0]!;
      if (first.limit === "maxPixels") throw new LimitError("maxPixels", first.error!, 413);
      throw new ClipOodError("IMAGE", first.error!, { hint: "send JPEG, PNG, WebP, GIF, TIFF or AVIF files" });
    }
  }

  async classify(images: ImageSource[], classes: ClassSpec[], templates: string[], top: number): Promise<{ model: string; results: ({ input: string; top: LabelProbability[] } | ImageResult)[] }> {
    const scoring = await this.o.model.scoring();
    const features = await this.o.model.classFeatures(classes, templates);
    const results: ({ input: string; top: LabelProbability[] } | ImageResult)[] = [];
    for await (const r of this.embedSources(images)) {
      results.push(r.embedding ? { input: r.input, top: classify(r.embedding, features, Math.min(top, classes.length), scoring) } : failure(r));
    }
    this.allFailed(results as ImageResult[]);
    return { model: this.o.model.id, results };
  }

  /** The detector a detect request names, or one built from its classes and method (cached). */
  async requestDetector(o: { detector?: string; classes?: ClassSpec[]; templates?: string[]; method?: string }): Promise<Detector> {
    if (o.detector !== undefined) return this.get(o.detector);
    const method = (o.method ?? "mcm") as DetectorMethod;
    if (!(REQUEST_METHODS as readonly string[]).includes(method)) {
      throw new ClipOodError("USAGE", `method "${o.method}" cannot be built per request`, {
        hint: `use one of ${REQUEST_METHODS.join(", ")}, or a server detector (fitted methods: create one with clip-ood fit and start the server with --detector)`,
      });
    }
    const classes = o.classes!;
    const templates = method === "neglabel" && o.templates === undefined ? [NEGLABEL_ID_TEMPLATE] : (o.templates ?? this.templates(undefined));
    const key = JSON.stringify([method, classes, templates]);
    let d = this.adHoc.get(key);
    if (!d) {
      d = buildDetector(this.o.model, { method, classes, templates });
      d.catch(() => this.adHoc.delete(key));
      this.adHoc.set(key, d);
      // Bounded: the oldest entry goes first.
      if (this.adHoc.size > 32) this.adHoc.delete(this.adHoc.keys().next().value!);
    }
    return d;
  }

  async detect(images: ImageSource[], detector: Detector, threshold: number | undefined): Promise<{ model: string; method: DetectorMethod; threshold: number | null; results: unknown[] }> {
    const t = threshold ?? detector.threshold?.value;
    const local = needsLocalFeatures(detector) ? await localFeatureMaker(this.o.model) : undefined;
    const results: (Record<string, unknown> & { error?: string })[] = [];
    // Scored together after embedding, so that a KNN bank is searched once for the whole request.
    const embedded: { at: number; input: string; embedding: Float32Array; local?: Matrix }[] = [];
    for await (const r of this.embedSources(images, local !== undefined)) {
      if (!r.embedding) {
        results.push({ ...failure(r) });
        continue;
      }
      embedded.push({ at: results.length, input: r.input, embedding: r.embedding, ...(local && r.patches ? { local: local(r.patches) } : {}) });
      results.push({});
    }
    const detections = await predictBatch(detector, stackRows(embedded.map((e) => e.embedding)), {
      ...(t === undefined ? {} : { threshold: t }),
      local: embedded.map((e) => e.local),
    });
    embedded.forEach((e, i) => {
      const d = detections[i]!;
      const top = isFewShot(detector.method) || detector.method === "combo" ? [] : classify(e.embedding, detector.classFeatures, detector.classes.length, detector.model.scoring);
      results[e.at] = { input: e.input, label: d.label, score: d.score, ood: d.ood, top };
    });
    this.allFailed(results);
    return { model: this.o.model.id, method: detector.method, threshold: t ?? null, results };
  }

  /** Uploaded images as discovery takes them: unit rows with the upload's name, and those that failed. */
  async embedUploads(images: readonly ImageSource[], onProgress?: (done: number, total: number) => void): Promise<{ embedded: EmbeddedInputs; failed: { input: string; reason: string }[] }> {
    const inputs: string[] = [];
    const rows: Float32Array[] = [];
    const failed: { input: string; reason: string }[] = [];
    for await (const r of this.embedSources(images)) {
      if (r.embedding) {
        inputs.push(r.input);
        rows.push(r.embedding);
      } else failed.push({ input: r.input, reason: failure(r).error! });
      onProgress?.(inputs.length + failed.length, images.length);
    }
    return { embedded: { inputs, embeddings: stackRows(rows) }, failed };
  }

  async embed(images: ImageSource[], texts: string[]): Promise<{ model: string; results: unknown[] }> {
    for (const t of texts) checkLength(t, this.o.limits, "a text");
    const results: unknown[] = [];
    const imageResults: ImageResult[] = [];
    for await (const r of this.embedSources(images)) {
      const item = r.embedding ? { input: r.input, kind: "image", embedding: Array.from(r.embedding) } : failure(r);
      results.push(item);
      imageResults.push(item as ImageResult);
    }
    if (texts.length === 0) this.allFailed(imageResults);
    if (texts.length > 0) {
      const m = await this.o.model.embedTexts(texts);
      texts.forEach((t, i) => results.push({ input: t, kind: "text", embedding: Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols)) }));
    }
    return { model: this.o.model.id, results };
  }

  /** Over the indexed folders, or `in`, or `all`, as `clip-ood search`; one result per content, with its paths. */
  async search(q: { text?: string; images: ImageSource[]; add: string[]; subtract: string[]; top: number; in?: string; all?: boolean }): Promise<{ results: { input: string; score: number; paths: string[]; thumbnail: string }[] }> {
    if (!this.o.store) throw new ClipOodError("USAGE", "this server has no embedding store to search", { hint: "start it without --no-store and index images with clip-ood index" });
    for (const t of [q.text ?? "", ...q.add, ...q.subtract]) checkLength(t, this.o.limits, "a search text");
    const under = q.in === undefined ? undefined : await this.roots.confine(q.in, "search folder");
    const hits = await searchWithImages(this.o.model, this.o.store, q, under);
    return { results: hits.map((h) => ({ ...h, thumbnail: `/v1/thumbnail?path=${encodeURIComponent(h.input)}` })) };
  }

  /** A JPEG thumbnail of an image inside a data root. */
  async thumbnail(p: string): Promise<Buffer> {
    const file = await this.roots.confine(p, "image");
    if (!IMAGE_EXTENSIONS.includes(path.extname(file).toLowerCase())) throw new NotFoundError(`${p} is not an image`);
    try {
      return await sharp(file, { limitInputPixels: this.o.limits.maxPixels, failOn: "error" }).rotate().resize(256, 256, { fit: "inside", withoutEnlargement: true }).jpeg({ quality: 80 }).toBuffer();
    } catch {
      throw new NotFoundError(`${p} cannot be read as an image`);
    }
  }

  // --- detectors ------------------------------------------------------------------------------------

  /** A detector and the catalog holding it: this process's own first, then the shared ones. */
  private async find(name: string): Promise<{ catalog: DetectorCatalog; entry: CatalogEntry }> {
    const own = await this.local.get(name);
    if (own) return { catalog: this.local, entry: own };
    const shared = this.catalog === this.local ? undefined : await this.catalog.get(name);
    if (shared) return { catalog: this.catalog, entry: shared };
    throw await this.notFound(name);
  }

  private async notFound(name: string): Promise<NotFoundError> {
    const names = [...new Set([...(await this.local.names()), ...(this.catalog === this.local ? [] : await this.catalog.names())])];
    return new NotFoundError(`no detector named "${name}" (this server has: ${names.join(", ") || "none"})`);
  }

  /** A detector to use; one from a shared catalog may have been made by a server on another model. */
  private async usable(name: string): Promise<{ catalog: DetectorCatalog; entry: CatalogEntry }> {
    const found = await this.find(name);
    try {
      checkModel(found.entry.detector, this.o.model);
    } catch (e) {
      throw new ClipOodError("USAGE", `detector "${name}" was made for model ${found.entry.detector.model.id}, not this server's ${this.o.model.id}`, {
        hint: `use it through a server on ${found.entry.detector.model.id}, or create a detector under another name here`,
        cause: e,
      });
    }
    return found;
  }

  async get(name: string): Promise<Detector> {
    return (await this.usable(name)).entry.detector;
  }

  async list(): Promise<DetectorSummary[]> {
    const own = await this.local.list();
    const shared = this.catalog === this.local ? [] : await this.catalog.list();
    // A detector file given at start keeps its name on this process, whatever the shared one of that name is.
    return [...own, ...shared.filter((e) => !own.some((o) => o.name === e.name))].map((e) => summary(e.name, e.detector));
  }

  async summary(name: string): Promise<DetectorSummary> {
    return summary(name, (await this.find(name)).entry.detector);
  }

  async create(name: string, classes: ClassSpec[], templates: string[] | undefined, method: string | undefined): Promise<DetectorSummary> {
    if (!DETECTOR_NAME.test(name)) throw new ClipOodError("USAGE", `detector name "${name}" is not allowed`, { hint: "1–64 letters, digits, -, _ or ., starting with a letter or digit" });
    const taken = () => new ConflictError(`a detector named "${name}" exists`);
    if (this.creating.has(name)) throw taken();
    // Reserved while it is built, so two concurrent creates of one name in this process cannot both
    // succeed; between processes the catalog's insert decides.
    this.creating.add(name);
    try {
      if (await this.find(name).catch(() => undefined)) throw taken();
      const d = await this.requestDetector({ classes, method: method ?? "mcm", ...(templates ? { templates } : {}) });
      if (!(await this.catalog.insert(name, d))) throw taken();
      return summary(name, d);
    } finally {
      this.creating.delete(name);
    }
  }

  /** Deletes without reading the detector, so that a damaged one can be deleted. */
  async remove(name: string): Promise<void> {
    if (await this.local.delete(name)) return;
    if (this.catalog !== this.local && (await this.catalog.delete(name))) return;
    throw await this.notFound(name);
  }

  /**
   * Applies `change` to the detector's newest version and stores the result, starting over when
   * another request (here or on another process) stored a change first, so no change is lost.
   */
  private async update(name: string, change: (d: Detector) => Promise<Detector>): Promise<Detector> {
    for (let attempt = 1; ; attempt++) {
      const { catalog, entry } = await this.usable(name);
      const next = await change(entry.detector);
      const outcome = await catalog.replace(name, next, entry.version);
      if (outcome === "replaced") return next;
      if (outcome === "gone") throw new NotFoundError(`detector "${name}" was deleted while this change was made`);
      if (attempt >= EDIT_TRIES) throw new ConflictError(`detector "${name}" kept being changed by other requests`, "send the change again");
    }
  }

  async editClasses(name: string, add: ClassSpec[], remove: string[]): Promise<DetectorSummary> {
    const d = await this.update(name, async (d) => {
      if (remove.length > 0) d = removeClasses(d, remove);
      if (add.length > 0) d = await addClasses(d, this.o.model, add);
      return d;
    });
    return summary(name, d);
  }

  /**
   * Adds a discovery's clusters as classes (`addDiscoveredClasses`, which refuses a discovery made for
   * another model or detector). A few-shot detector also takes the clusters' images as shots, read from
   * their paths: each must lie inside a data root, as every server file a request names must.
   */
  async addDiscovered(name: string, discovery: DiscoveryResult, o: { clusters?: number[]; names?: Record<number, string> }): Promise<{ detector: DetectorSummary; added: AddedCluster[]; warnings: string[] }> {
    let added: AddedCluster[] = [];
    let warnings: string[] = [];
    const d = await this.update(name, async (d) => {
      try {
        checkDiscoveryFits(d, discovery, { detector: `detector "${name}"` });
      } catch (e) {
        // The library says model mismatches in MODEL_FOLDER terms (a server error here) with the CLI's fix.
        if (!isClipOodError(e)) throw e;
        throw new ClipOodError("USAGE", e.message, { hint: `start a discovery with it on this server: POST /v1/discover with "detector": "${name}"`, cause: e });
      }
      if (isFewShot(d.method)) {
        const chosen = discovery.clusters.filter((c) => o.clusters === undefined || o.clusters.includes(c.id));
        for (const c of chosen) {
          for (const m of c.members) {
            if (!path.isAbsolute(m.input)) {
              throw new ClipOodError("USAGE", `${d.method} takes cluster ${c.id}'s images as shots, and its image "${m.input}" is not a file on this server (uploaded images are not kept)`, {
                hint: "run the discovery on a folder inside a data root (\"path\"), or add the names to a zero-shot detector",
              });
            }
            await this.roots.confine(m.input, `cluster ${c.id}'s image`);
          }
        }
      }
      const failures: string[] = [];
      const r = await addDiscoveredClasses(d, discovery, { ...o, ...(this.o.store ? { store: this.o.store } : {}), onFailure: (input, reason) => failures.push(`${input}: ${reason}`) }, this.o.model);
      added = r.added;
      warnings = failures;
      return r.detector;
    });
    return { detector: summary(name, d), added, warnings };
  }

  /** Scores of a calibration set (uploads or a server folder) under a detector. */
  async scores(d: Detector, images: ImageSource[]): Promise<number[]> {
    const local = needsLocalFeatures(d) ? await localFeatureMaker(this.o.model) : undefined;
    const rows: Float32Array[] = [];
    const locals: (Matrix | undefined)[] = [];
    for await (const r of this.embedSources(images, local !== undefined)) {
      if (!r.embedding) continue;
      rows.push(r.embedding);
      locals.push(local && r.patches ? local(r.patches) : undefined);
    }
    return (await predictBatch(d, stackRows(rows), { local: locals })).map((x) => x.score);
  }

  async calibrate(name: string, id: ImageSource[], ood: ImageSource[], target: { tpr?: number; fpr?: number }): Promise<{ detector: DetectorSummary; threshold: unknown }> {
    const calibrated = await this.update(name, async (d) => {
      const idScores = await this.scores(d, id);
      const oodScores = ood.length > 0 ? await this.scores(d, ood) : undefined;
      return calibrate(d, idScores, { ...target, ...(oodScores ? { oodScores } : {}) });
    });
    const t = calibrated.threshold!;
    return { detector: summary(name, calibrated), threshold: { value: t.value, tpr: t.tpr, fpr: t.fpr, idCount: t.idCount, oodCount: t.oodCount } };
  }
}

function failure(r: ImageEmbeddingResult): ImageResult {
  return { input: r.input, error: r.error?.message ?? `${r.input}: cannot be read`, ...(isPixelLimit(r.error) ? { limit: "maxPixels" as const } : {}) };
}

async function searchWithImages(model: ClipModel, store: EmbeddingStore, q: { text?: string; images: ImageSource[]; add: string[]; subtract: string[]; top: number; all?: boolean }, under: string | undefined) {
  return search(model, store, { text: q.text ? [q.text] : [], images: q.images, add: q.add, subtract: q.subtract }, { top: q.top, ...(q.all ? { all: true } : {}), ...(under === undefined ? {} : { under }) });
}
