/**
 * discovery.json: a `DiscoveryResult` as JSON, written atomically (a crash or a full disk never leaves
 * half a file) and read back with every field checked, since the file may come from anywhere and its
 * paths become a detector's shots.
 */
import { ClipOodError, messageOf, shownValue } from "../errors.js";
import { writeFileAtomic } from "../io/atomic-file.js";
import { readTextBounded } from "../io/bounded-read.js";
import { DETECTOR_METHODS } from "../ood/detector.js";
import type { DetectorMethod } from "../ood/detector.js";
import { DISCOVERY_FORMAT, DISCOVERY_VERSION, K_METHODS } from "./types.js";
import type { ClusterMember, DiscoveredCluster, DiscoveryResult, KMethod, KnownAssignment, NameCandidate, UnassignedInput } from "./types.js";

const HINT = "make it again with `clip-ood discover … --out <file>`";

export function serializeDiscovery(result: DiscoveryResult): string {
  return JSON.stringify(result, null, 1) + "\n";
}

export async function saveDiscovery(result: DiscoveryResult, file: string): Promise<void> {
  await writeFileAtomic(file, serializeDiscovery(result));
}

export async function loadDiscovery(file: string): Promise<DiscoveryResult> {
  const text = await readTextBounded(file, { what: "discovery file", code: "INPUT", hint: HINT });
  return parseDiscovery(text, file);
}

/** A discovery from its JSON text (pure); `source` names it in errors. */
export function parseDiscovery(text: string, source: string): DiscoveryResult {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (e) {
    throw new ClipOodError("INPUT", `${source} is not JSON: ${messageOf(e)}`, { hint: "give the discovery.json that `clip-ood discover --out` wrote", cause: e });
  }
  const r = new Reader(source);
  const o = r.object(value, "the file");
  if (o["format"] !== DISCOVERY_FORMAT) {
    throw new ClipOodError("INPUT", `${source} is not a discovery file (format ${shownValue(o["format"])}, expected "${DISCOVERY_FORMAT}")`, { hint: "give the discovery.json that `clip-ood discover --out` wrote" });
  }
  if (o["version"] !== DISCOVERY_VERSION) {
    throw new ClipOodError("INPUT", `${source} is a discovery file of version ${shownValue(o["version"])}; this clip-ood reads version ${DISCOVERY_VERSION}`, { hint: HINT });
  }
  const model = r.object(o["model"], "model");
  const detector = o["detector"] === null ? null : r.object(o["detector"], "detector");
  const k = r.object(o["k"], "k");
  const vocabulary = r.object(o["vocabulary"], "vocabulary");
  const result: DiscoveryResult = {
    format: DISCOVERY_FORMAT,
    version: DISCOVERY_VERSION,
    model: { id: r.string(model["id"], "model.id"), dtype: r.string(model["dtype"], "model.dtype"), dim: r.int(model["dim"], "model.dim"), key: r.string(model["key"], "model.key") },
    detector:
      detector === null
        ? null
        : {
            ...(detector["file"] === undefined ? {} : { file: r.string(detector["file"], "detector.file") }),
            method: r.oneOf(detector["method"], "detector.method", DETECTOR_METHODS) as DetectorMethod,
            fingerprint: r.string(detector["fingerprint"], "detector.fingerprint"),
          },
    knownClasses: r.array(o["knownClasses"], "knownClasses").map((v, i) => r.string(v, `knownClasses[${i}]`)),
    templates: r.array(o["templates"], "templates").map((v, i) => r.string(v, `templates[${i}]`)),
    vocabulary: { source: r.string(vocabulary["source"], "vocabulary.source"), words: r.int(vocabulary["words"], "vocabulary.words") },
    inputs: r.int(o["inputs"], "inputs"),
    keptInDistribution: r.int(o["keptInDistribution"], "keptInDistribution"),
    failed: r.array(o["failed"], "failed").map((v, i) => {
      const f = r.object(v, `failed[${i}]`);
      return { input: r.string(f["input"], `failed[${i}].input`), reason: r.string(f["reason"], `failed[${i}].reason`) };
    }),
    k: {
      new: r.int(k["new"], "k.new"),
      known: r.int(k["known"], "k.known"),
      method: r.oneOf(k["method"], "k.method", K_METHODS) as KMethod,
      tried: r.array(k["tried"], "k.tried").map((v, i) => {
        const t = r.object(v, `k.tried[${i}]`);
        return { k: r.int(t["k"], `k.tried[${i}].k`), score: r.number(t["score"], `k.tried[${i}].score`) };
      }),
    },
    seed: r.number(o["seed"], "seed"),
    clusters: r.array(o["clusters"], "clusters").map((v, i) => readCluster(r, v, `clusters[${i}]`)),
    known: r.array(o["known"], "known").map((v, i): KnownAssignment => {
      const a = r.object(v, `known[${i}]`);
      return { label: r.string(a["label"], `known[${i}].label`), members: r.array(a["members"], `known[${i}].members`).map((m, j) => readMember(r, m, `known[${i}].members[${j}]`)) };
    }),
    unassigned: r.array(o["unassigned"], "unassigned").map((v, i): UnassignedInput => {
      const u = r.object(v, `unassigned[${i}]`);
      const near = r.object(u["nearest"], `unassigned[${i}].nearest`);
      return {
        input: r.string(u["input"], `unassigned[${i}].input`),
        nearest: "cluster" in near ? { cluster: r.int(near["cluster"], `unassigned[${i}].nearest.cluster`) } : { known: r.string(near["known"], `unassigned[${i}].nearest.known`) },
        cosine: r.number(u["cosine"], `unassigned[${i}].cosine`),
      };
    }),
    ...(o["note"] === undefined ? {} : { note: r.string(o["note"], "note") }),
  };
  const ids = result.clusters.map((c) => c.id);
  if (new Set(ids).size !== ids.length) throw r.bad("clusters", "repeat a cluster id");
  for (const c of result.clusters) if (c.centroid.length !== result.model.dim) throw r.bad(`cluster ${c.id}'s centroid`, `has ${c.centroid.length} values for a model of ${result.model.dim} dimensions`);
  return result;
}

function readCluster(r: Reader, v: unknown, where: string): DiscoveredCluster {
  const c = r.object(v, where);
  const near = c["nearestKnown"] === null ? null : r.object(c["nearestKnown"], `${where}.nearestKnown`);
  const id = r.int(c["id"], `${where}.id`);
  if (id < 1) throw r.bad(`${where}.id`, `is ${id}; cluster ids start at 1`);
  return {
    id,
    size: r.int(c["size"], `${where}.size`),
    members: r.array(c["members"], `${where}.members`).map((m, j) => readMember(r, m, `${where}.members[${j}]`)),
    candidates: r.array(c["candidates"], `${where}.candidates`).map((m, j): NameCandidate => {
      const n = r.object(m, `${where}.candidates[${j}]`);
      return { name: r.string(n["name"], `${where}.candidates[${j}].name`), score: r.number(n["score"], `${where}.candidates[${j}].score`) };
    }),
    typical: r.array(c["typical"], `${where}.typical`).map((s, j) => r.string(s, `${where}.typical[${j}]`)),
    atypical: r.array(c["atypical"], `${where}.atypical`).map((s, j) => r.string(s, `${where}.atypical[${j}]`)),
    cohesion: r.number(c["cohesion"], `${where}.cohesion`),
    nearestKnown: near === null ? null : { label: r.string(near["label"], `${where}.nearestKnown.label`), cosine: r.number(near["cosine"], `${where}.nearestKnown.cosine`) },
    centroid: r.array(c["centroid"], `${where}.centroid`).map((x, j) => r.number(x, `${where}.centroid[${j}]`)),
  };
}

function readMember(r: Reader, v: unknown, where: string): ClusterMember {
  const m = r.object(v, where);
  return { input: r.string(m["input"], `${where}.input`), cosine: r.number(m["cosine"], `${where}.cosine`) };
}

/** Field readers that name the field and the file in their refusals. */
class Reader {
  constructor(private readonly source: string) {}

  bad(where: string, what: string): ClipOodError {
    return new ClipOodError("INPUT", `${this.source}: ${where} ${what}`, { hint: `the file is damaged or was edited by hand; ${HINT}` });
  }

  object(v: unknown, where: string): Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw this.bad(where, `is ${shownValue(v)}, not an object`);
    return v as Record<string, unknown>;
  }

  array(v: unknown, where: string): unknown[] {
    if (!Array.isArray(v)) throw this.bad(where, `is ${shownValue(v)}, not a list`);
    return v;
  }

  string(v: unknown, where: string): string {
    if (typeof v !== "string") throw this.bad(where, `is ${shownValue(v)}, not text`);
    return v;
  }

  number(v: unknown, where: string): number {
    if (typeof v !== "number" || !Number.isFinite(v)) throw this.bad(where, `is ${shownValue(v)}, not a number`);
    return v;
  }

  int(v: unknown, where: string): number {
    const n = this.number(v, where);
    if (!Number.isInteger(n) || n < 0) throw this.bad(where, `is ${n}, not a whole number ≥ 0`);
    return n;
  }

  oneOf(v: unknown, where: string, allowed: readonly string[]): string {
    const s = this.string(v, where);
    if (!allowed.includes(s)) throw this.bad(where, `is "${s}", not one of ${allowed.join(", ")}`);
    return s;
  }
}
