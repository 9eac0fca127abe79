/**
 * A discovery scored against ground truth (`discover --labels`): GCD's clustering accuracy on all, old
 * and new classes under one Hungarian map ("v2", maths/clustering/hungarian.ts), and naming accuracy of the new
 * clusters. Pure.
 */
import { clusteringAccuracy } from "../maths/clustering/hungarian.js";
import type { DiscoveryResult, DiscoveryScores } from "./types.js";

export interface ScoreDiscoveryOptions {
  /** Names that count as a class's name (besides the label itself), by class label. */
  synonyms?: ReadonlyMap<string, readonly string[]>;
}

/**
 * Scores `result` against `truth` (input → true class label); inputs without a label are left out.
 * Every clustered image counts: those set apart as unassigned are scored in the cluster they were
 * nearest. A class is old when it is one of the discovery's known classes (ignoring case). Naming is
 * scored over the new clusters whose majority class is new: the top candidate (top 1) or one of the
 * first three (top 3) is that class's label or one of its synonyms, ignoring case.
 */
export function scoreDiscovery(result: DiscoveryResult, truth: ReadonlyMap<string, string>, options: ScoreDiscoveryOptions = {}): DiscoveryScores {
  const key = (s: string) => s.toLowerCase();
  const classIndex = new Map<string, number>(result.knownClasses.map((c, i) => [key(c), i]));
  const known = result.knownClasses.length;
  const indexOf = (label: string) => {
    const k = key(label);
    if (!classIndex.has(k)) classIndex.set(k, classIndex.size);
    return classIndex.get(k)!;
  };
  const clusterOf = new Map<string, number>();
  result.known.forEach((a) => a.members.forEach((m) => clusterOf.set(m.input, result.knownClasses.indexOf(a.label))));
  result.clusters.forEach((c) => c.members.forEach((m) => clusterOf.set(m.input, known + c.id - 1)));
  for (const u of result.unassigned) clusterOf.set(u.input, "cluster" in u.nearest ? known + u.nearest.cluster - 1 : result.knownClasses.indexOf(u.nearest.known));
  const t: number[] = [];
  const p: number[] = [];
  for (const [input, cluster] of clusterOf) {
    const label = truth.get(input);
    if (label === undefined || cluster < 0) continue;
    t.push(indexOf(label));
    p.push(cluster);
  }
  const labelOf = new Map<number, string>([...classIndex].map(([k, i]) => [i, k]));
  let named = 0;
  let top1 = 0;
  let top3 = 0;
  for (const c of result.clusters) {
    const counts = new Map<number, number>();
    for (const m of c.members) {
      const label = truth.get(m.input);
      if (label !== undefined) counts.set(indexOf(label), (counts.get(indexOf(label)) ?? 0) + 1);
    }
    const majority = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
    if (majority === undefined || majority < known) continue;
    const label = labelOf.get(majority)!;
    const names = new Set([label, ...[...(options.synonyms ?? new Map<string, readonly string[]>())].filter(([l]) => key(l) === label).flatMap(([, s]) => s.map(key))]);
    const candidates = c.candidates.map((n) => key(n.name));
    named++;
    if (candidates.length > 0 && names.has(candidates[0]!)) top1++;
    if (candidates.slice(0, 3).some((n) => names.has(n))) top3++;
  }
  if (t.length === 0) return { all: 0, old: null, new: null, namingTop1: named === 0 ? null : top1 / named, namingTop3: named === 0 ? null : top3 / named, images: 0 };
  const acc = clusteringAccuracy(Int32Array.from(t), Int32Array.from(p), (cls) => cls < known);
  return { all: acc.all, old: acc.old, new: acc.new, namingTop1: named === 0 ? null : top1 / named, namingTop3: named === 0 ? null : top3 / named, images: t.length };
}
