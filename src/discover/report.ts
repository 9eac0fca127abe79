/**
 * The discovery as one self-contained HTML page (discover --report): a strip of thumbnails per cluster,
 * its most typical and least typical images, its candidate names, cohesion and nearest known class;
 * the known classes' counts; the images that fit no cluster; the scores against ground truth when
 * there were labels. Same look, thumbnails and Content-Security-Policy as the evaluation report; the
 * markup (`renderDiscoveryPage`) is pure and escapes every text from the data.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { ClipOodError, messageOf } from "../errors.js";
import { writeFileAtomic } from "../io/atomic-file.js";
import { thumbnails } from "../eval/report.js";
import { escapeHtml as esc, htmlDocument } from "../eval/report-html.js";
import type { Thumbnail } from "../eval/report-html.js";
import { STYLE } from "../eval/report-style.js";
import type { DiscoveredCluster, DiscoveryResult } from "./types.js";

/** Mean ± std over seeds of the scores of `discover --labels`. */
export interface ScoresSummary {
  seeds: number[];
  metrics: { name: string; mean: number | null; std: number | null }[];
}

function figure(input: string, thumb: Thumbnail | undefined, caption: string): string {
  const name = path.basename(input) || input;
  const picture =
    thumb?.ok === true
      ? `<img class="thumb" src="${thumb.uri}" width="${thumb.width}" height="${thumb.height}" alt="${esc(name)}">`
      : `<div class="thumb placeholder">${esc(thumb?.ok === false ? thumb.reason : "no preview")}</div>`;
  return `<li class="case" title="${esc(input)}">${picture}<span class="file">${esc(name)}</span><span class="meta">${esc(caption)}</span></li>`;
}

function clusterSection(c: DiscoveredCluster, thumbs: ReadonlyMap<string, Thumbnail>): string {
  const cos = new Map(c.members.map((m) => [m.input, m.cosine]));
  const strip = (inputs: readonly string[], kind: string) =>
    `<ol class="cases" data-list="${kind}">${inputs.map((i) => figure(i, thumbs.get(i), `cosine ${(cos.get(i) ?? 0).toFixed(3)}`)).join("")}</ol>`;
  const names = c.candidates.map((n, i) => `<li${i === 0 ? ' class="best"' : ""}>${esc(n.name)} <span class="muted">${n.score.toFixed(3)}</span></li>`).join("");
  const near = c.nearestKnown ? `${esc(c.nearestKnown.label)} (${c.nearestKnown.cosine.toFixed(3)})` : "none";
  return `<section class="cluster" data-testid="cluster" data-cluster="${c.id}">
<h3>Cluster ${c.id}: ${esc(c.candidates[0]?.name ?? "unnamed")} <span class="muted">· ${c.size} image${c.size === 1 ? "" : "s"}</span></h3>
<dl class="facts"><dt>Candidate names</dt><dd><ol class="names">${names}</ol></dd><dt>Cohesion</dt><dd>${c.cohesion.toFixed(3)} (mean cosine of the images to the centroid)</dd><dt>Nearest known class</dt><dd>${near}</dd></dl>
<div class="case-lists"><div class="case-list"><h4>Most typical</h4>${strip(c.typical, "typical")}</div><div class="case-list"><h4>Least typical</h4>${strip(c.atypical, "atypical")}</div></div>
</section>`;
}

/** The page (pure): `thumbs` holds a thumbnail, or why there is none, per image shown. */
export function renderDiscoveryPage(result: DiscoveryResult, thumbs: ReadonlyMap<string, Thumbnail>, scores?: ScoresSummary): string {
  const facts: [string, string][] = [
    ["Model", `${result.model.id} (${result.model.dtype})`],
    ["Known classes", result.knownClasses.length > 0 ? result.knownClasses.join(", ") : "none"],
    ["Detector", result.detector ? `${result.detector.method}${result.detector.file ? ` (${result.detector.file})` : ""}` : "none: a class list"],
    ["Images clustered", `${result.inputs}${result.keptInDistribution > 0 ? `, after leaving out ${result.keptInDistribution} the detector accepts` : ""}${result.failed.length > 0 ? `; ${result.failed.length} could not be read` : ""}`],
    ["New clusters", `${result.k.new} (${result.k.method === "given" ? "given" : `estimated by ${result.k.method === "gcd" ? "GCD's Brent search on labelled accuracy" : "silhouette"}`})`],
    ["Vocabulary", `${result.vocabulary.source}, ${result.vocabulary.words} words`],
    ["Seed", String(result.seed)],
  ];
  const header = `<header><h1>Discovery: ${result.k.new} new cluster${result.k.new === 1 ? "" : "s"}</h1>
<dl class="facts">${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>
${result.note ? `<p class="note" data-testid="note">${esc(result.note)}</p>` : ""}
<p class="note">Add clusters to a detector: <code>clip-ood detector add-class det.json --from discovery.json --clusters 1,2 --name 1=&lt;name&gt;</code>, then recalibrate it.</p></header>`;
  const clusters = result.clusters.length > 0 ? `<section id="clusters"><h2>New clusters</h2>${result.clusters.map((c) => clusterSection(c, thumbs)).join("\n")}</section>` : "";
  const known =
    result.known.length > 0
      ? `<section id="known"><h2>Images in known classes</h2><table><thead><tr><th>class</th><th>images</th></tr></thead><tbody>${result.known.map((a) => `<tr><th scope="row">${esc(a.label)}</th><td>${a.members.length}</td></tr>`).join("")}</tbody></table></section>`
      : "";
  const unassigned =
    result.unassigned.length > 0
      ? `<section id="unassigned"><h2>Images that fit no cluster well</h2><p class="note">Their cosine to the centroid is an outlier for the cluster they were nearest.</p><ol class="cases">${result.unassigned
          .map((u) => figure(u.input, thumbs.get(u.input), `${"cluster" in u.nearest ? `near cluster ${u.nearest.cluster}` : `near ${u.nearest.known}`}, cosine ${u.cosine.toFixed(3)}`))
          .join("")}</ol></section>`
      : "";
  const scored = scores
    ? `<section id="scores"><h2>Against the labels</h2><p class="note">Mean ± std over seeds ${scores.seeds.join(", ")}. Clustering accuracy is GCD's (one Hungarian map over all images, then old and new classes under it); naming counts the new clusters whose majority class is new.</p><table><thead><tr><th>metric</th><th>mean</th><th>std</th></tr></thead><tbody>${scores.metrics
        .map((m) => `<tr><th scope="row">${esc(m.name)}</th><td>${m.mean === null ? "–" : m.mean.toFixed(4)}</td><td>${m.std === null ? "–" : m.std.toFixed(4)}</td></tr>`)
        .join("")}</tbody></table></section>`
    : "";
  return htmlDocument(
    `Discovery · ${result.model.id}`,
    `${STYLE}\nol.names { margin: 0; padding-left: 20px; } ol.names li.best { font-weight: 700; }`,
    [header, scored, clusters, known, unassigned].filter((s) => s !== ""),
    "Generated by clip-ood discover.",
  );
}

/** Writes the report (its folder created when missing) whole or not at all; returns the file. */
export async function writeDiscoveryReport(result: DiscoveryResult, file: string, scores?: ScoresSummary): Promise<string> {
  const shown = [...result.clusters.flatMap((c) => [...c.typical, ...c.atypical]), ...result.unassigned.map((u) => u.input)];
  const html = renderDiscoveryPage(result, await thumbnails(shown), scores);
  try {
    await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    await writeFileAtomic(file, html);
  } catch (e) {
    throw new ClipOodError("INPUT", `cannot write the report ${file}: ${messageOf(e)}`, { hint: "check that the folder is writable and the disk is not full", cause: e });
  }
  return file;
}
