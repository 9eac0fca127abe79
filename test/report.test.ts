/**
 * The HTML report and the chart files, on the hand-made fixture of test/support/report-fixture.ts. The
 * browser test opens the written report in headless Chromium with every non-file request blocked.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { decodeHTML } from "entities";
import { chromium } from "playwright-core";
import { renderSvg, textWidth } from "../src/eval/chart-render.js";
import { histogramChart } from "../src/eval/histogram-chart.js";
import { slugify, writePlots } from "../src/eval/plots.js";
import { downsampleCurve, rocChart } from "../src/eval/roc-chart.js";
import { shotsChart } from "../src/eval/shots-chart.js";
import { renderReport, writeReport } from "../src/eval/report.js";
import type { EvalResult, MethodResult, ScoredSample } from "../src/eval/types.js";
import { rejectsWithCode, withTempDir } from "./support/assertions.js";
import { ID_SET, METHOD_A, METHOD_B, OOD_A, OOD_B, makeReportFixture, shotsSummary } from "./support/report-fixture.js";

const CHROMIUM = "/usr/bin/chromium";

/** Datasets of a spec, read back through JSON as plain records. */
function datasets(spec: unknown): Record<string, Record<string, unknown>[]> {
  return (JSON.parse(JSON.stringify(spec)) as { datasets: Record<string, Record<string, unknown>[]> }).datasets;
}

test("downsampleCurve: at most maxPoints, ends kept, every dropped vertex near a kept one", () => {
  // A staircase ROC of 100,001 vertices alternating right and up steps.
  const n = 100_001;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  for (let i = 1; i < n; i++) {
    x[i] = Math.ceil(i / 2) / 50_000;
    y[i] = Math.floor(i / 2) / 50_000;
  }
  const max = 2000;
  const thin = downsampleCurve(x, y, max);
  assert.ok(thin.x.length <= max && thin.x.length > max / 2, `kept ${thin.x.length} of ${n} points`);
  assert.equal(thin.x[0], 0);
  assert.equal(thin.y[thin.y.length - 1], 1);
  // The L1 length is 2, so the tolerance is 2 / (max − 2); each vertex must lie that close to the last
  // kept vertex at or before it (kept vertices are a subsequence, matched by position).
  const tolerance = 2 / (max - 2) + 1e-12;
  let k = 0;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    while (k + 1 < thin.x.length && thin.x[k + 1]! <= x[i]! && thin.y[k + 1]! <= y[i]!) k++;
    worst = Math.max(worst, Math.abs(x[i]! - thin.x[k]!) + Math.abs(y[i]! - thin.y[k]!));
  }
  assert.ok(worst <= tolerance, `a dropped vertex is ${worst} from the kept curve (tolerance ${tolerance})`);
  // Short curves are left alone.
  const short = downsampleCurve(Float64Array.of(0, 0.5, 1), Float64Array.of(0, 1, 1), max);
  assert.deepEqual([...short.x], [0, 0.5, 1]);
});

test("textWidth: DejaVu Sans advances", () => {
  // "Hi" = H (752) + i (278) thousandths of an em; at 10 px that is 10.30 px, times the 3% slack.
  assert.ok(Math.abs(textWidth("Hi", 10) - 10.3 * 1.03) < 1e-9, `width ${textWidth("Hi", 10)}`);
  assert.ok(textWidth("Hi", 10, true) > textWidth("Hi", 10), "bold is wider");
  // CJK takes a full em per character.
  assert.ok(Math.abs(textWidth("植物", 10) - 20 * 1.03) < 1e-9, `width ${textWidth("植物", 10)}`);
});

/** A result with many samples: ID scores shifted up, so AUROC is high. */
function bigResult(n: number): EvalResult {
  let s = 7;
  const rand = () => ((s = (s * 48271) % 2147483647) / 2147483647);
  const samples = (shift: number): ScoredSample[] => Array.from({ length: n }, (_, i) => ({ input: `x${i}`, score: rand() + shift, predicted: "a" }));
  const metrics = { auroc: 0.9, fpr95: 0.3, auprIn: 0.9, auprOut: 0.9, detectionAccuracy: 0.8, threshold: 0.7 };
  const method = (name: string): MethodResult => ({
    method: name,
    id: samples(0.5),
    sets: [{ ood: "big", metrics, n: { id: n, ood: n }, samples: samples(0) }],
    average: metrics,
    idAccuracy: null,
  });
  return { model: "m", idSet: "id", convention: "openood", methods: [method("one"), method("two")], createdAt: "2024-01-01T00:00:00Z" };
}

test("rocChart: one series per method with its AUROC, long curves thinned, renders", async () => {
  const result = bigResult(20_000);
  const spec = rocChart(result, "big");
  const roc = datasets(spec)["roc"]!;
  const series = new Set(roc.map((r) => String(r["series"])));
  // AUROC 0.9 → "90.00%" in the legend.
  assert.deepEqual([...series], ["one (AUROC 90.00%)", "two (AUROC 90.00%)"]);
  for (const name of series) {
    const count = roc.filter((r) => r["series"] === name).length;
    assert.ok(count <= 2000 && count > 100, `${name}: ${count} points`);
  }
  const svg = await renderSvg(spec);
  assert.ok(svg.startsWith("<svg") && svg.includes("AUROC 90.00%"), "the SVG shows the legend");
  // Under OpenOOD's convention the 95% mark is OOD-positive TPR, i.e. ID-positive FPR = 5%.
  assert.ok(svg.includes("95% of OOD caught"), "the OpenOOD 95% line is labelled");
  assert.throws(() => rocChart(result, "nope"), rejectsWithCode("USAGE", "nope"));
});

test("histogramChart: each set's bins sum to 1 and the threshold is a labelled rule", async () => {
  await withTempDir(async (dir) => {
    const { result } = await makeReportFixture(dir);
    const spec = histogramChart(result, METHOD_A, OOD_A);
    const data = datasets(spec);
    const bins = data["bins"]!;
    for (const set of new Set(bins.map((b) => String(b["set"])))) {
      const total = bins.filter((b) => b["set"] === set).reduce((a, b) => a + Number(b["fraction"]), 0);
      assert.ok(Math.abs(total - 1) < 1e-9, `${set}: fractions sum to ${total}`);
    }
    // The fixture's threshold for this pair is 0.61234, shown with 4 significant digits.
    assert.equal(data["threshold"]![0]!["threshold"], 0.61234);
    const svg = await renderSvg(spec);
    assert.ok(svg.includes("threshold 0.6123"), "the rule's label is drawn");
    assert.ok(svg.includes("Textures &amp; &lt;DTD&gt;"), "set names are escaped in the SVG");
    assert.throws(() => histogramChart(result, "nope", OOD_A), rejectsWithCode("USAGE", "nope"));
  });
});

test("shotsChart: few-shot means with clipped ± std bands on a log2 axis, methods evaluated once as dashed lines", async () => {
  await withTempDir(async (dir) => {
    const { result } = await makeReportFixture(dir);
    assert.throws(() => shotsChart(result, "auroc"), rejectsWithCode("USAGE", "few-shot"));
    result.shots = shotsSummary();
    const spec = shotsChart(result, "auroc");
    const data = datasets(spec);
    // The averages only (the OOD_A rows are left out): 0.6 ± 0.1, 0.8 ± 0.05, 0.95 ± 0.1 with its top clipped to 1.
    const points = data["points"]!.map((p) => [p["series"], p["shots"], p["mean"], p["std"], Number(p["lo"]).toFixed(4), p["hi"]]);
    assert.deepEqual(points, [
      [METHOD_B, 1, 0.6, 0.1, "0.5000", 0.7],
      [METHOD_B, 4, 0.8, 0.05, "0.7500", 0.8500000000000001],
      [METHOD_B, 16, 0.95, 0.1, "0.8500", 1],
    ]);
    assert.deepEqual(data["fixed"], [{ series: `${METHOD_A} (fixed)`, value: 0.875617 }]);
    const x = JSON.stringify(spec);
    assert.ok(x.includes(`"scale":{"type":"log","base":2,"domain":[1,16]}`), "log2 x axis over the shot counts");
    const accuracy = datasets(shotsChart(result, "idAccuracy"));
    assert.deepEqual(accuracy["points"]!.map((p) => p["mean"]), [0.5, 0.7, 0.9]);
    assert.deepEqual(accuracy["fixed"], [{ series: `${METHOD_A} (fixed)`, value: 0.7654321 }]);
    const svg = await renderSvg(spec);
    assert.ok(svg.startsWith("<svg") && svg.includes("(fixed)") && svg.includes(">16<"), "the SVG has the legend and the shot counts on the axis");
    // One shot count: the log axis gets an octave either side instead of an empty domain.
    result.shots = { ...result.shots, shots: [8] };
    assert.ok(JSON.stringify(shotsChart(result, "auroc")).includes(`"domain":[4,16]`));
  });
});

test("slugify: file-safe, and names without ASCII stay apart", () => {
  assert.equal(slugify("Textures & <DTD>"), "textures-dtd");
  assert.equal(slugify("Café/ü Ø"), "cafe-u-o");
  assert.match(slugify("植物"), /^u[0-9a-f]{8}$/);
  assert.notEqual(slugify("植物"), slugify("猫"));
});

test("writePlots: an .svg and a .png per chart, unique safe names, folder created", async () => {
  await withTempDir(async (dir) => {
    const { result } = await makeReportFixture(dir);
    // Two more OOD sets whose names collide once slugged.
    for (const m of result.methods) {
      const base = m.sets[0]!;
      m.sets.push({ ...base, ood: "a b" }, { ...base, ood: "a/b" });
    }
    const out = path.join(dir, "plots", "deep");
    const files = await writePlots(result, out);
    // 4 OOD sets → 4 ROC charts; 2 methods × 4 sets → 8 histograms; each as SVG and PNG.
    assert.equal(files.length, (4 + 8) * 2);
    assert.equal(new Set(files).size, files.length, "file names are unique");
    assert.deepEqual((await readdir(out)).sort(), files.map((f) => path.basename(f)).sort());
    for (const f of files) {
      assert.match(path.basename(f), /^[a-z0-9-]+\.(svg|png)$/);
      const body = await readFile(f);
      if (f.endsWith(".png")) {
        assert.deepEqual([...body.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${f} is a PNG`);
        assert.ok(body.length > 10_000, `${f} has only ${body.length} bytes`);
      } else {
        assert.ok(body.toString("utf8").startsWith("<svg"), `${f} is an SVG`);
      }
    }
    assert.ok(files.some((f) => path.basename(f) === "roc-a-b.svg") && files.some((f) => path.basename(f) === "roc-a-b-2.svg"), "colliding slugs get suffixes");
    // With few-shot rows: AUROC and ID accuracy against shots as well.
    result.shots = shotsSummary();
    const more = await writePlots(result, path.join(dir, "shots"));
    assert.equal(more.length, files.length + 4);
    for (const f of ["shots-auroc.svg", "shots-auroc.png", "shots-id-accuracy.svg", "shots-id-accuracy.png"]) assert.ok(more.some((m) => path.basename(m) === f), `${f} written`);
  });
});

/** Every table row: its method, OOD set (undefined for averages), and cells by data-metric. */
function tableRows(html: string): { method: string; ood: string | undefined; cells: Record<string, { text: string; best: boolean }> }[] {
  const table = /<table id="metrics"[\s\S]*?<\/table>/.exec(html)?.[0];
  assert.ok(table, "the report has a #metrics table");
  const rows = [];
  for (const m of table.matchAll(/<tr data-method="([^"]*)"(?: data-ood="([^"]*)")?[^>]*>([\s\S]*?)<\/tr>/g)) {
    const cells: Record<string, { text: string; best: boolean }> = {};
    for (const c of m[3]!.matchAll(/<td data-metric="([^"]+)"([^>]*)>([^<]*)<\/td>/g)) {
      cells[c[1]!] = { text: decodeHTML(c[3]!), best: /class="[^"]*\bbest\b/.test(c[2]!) };
    }
    rows.push({ method: decodeHTML(m[1]!), ood: m[2] === undefined ? undefined : decodeHTML(m[2]), cells });
  }
  return rows;
}

test("renderReport: one offline file, escaped names, the given metrics in %", async () => {
  await withTempDir(async (dir) => {
    const { result, images } = await makeReportFixture(dir);
    const html = await renderReport(result);
    // Nothing to fetch: no external URL outside the SVGs' xmlns declarations, no scripts, no links.
    const withoutXmlns = html.replace(/\sxmlns(:\w+)?="[^"]*"/g, "");
    assert.ok(!/https?:\/\//i.test(withoutXmlns), `an external URL: ${/.{0,60}https?:\/\/.{0,60}/i.exec(withoutXmlns)?.[0]}`);
    assert.ok(!/<script/i.test(html), "no <script>");
    for (const m of html.matchAll(/\s(?:src|href)="([^"]*)"/g)) {
      assert.ok(/^(data:|#)/.test(m[1]!), `a src/href that is not inline: ${m[1]}`);
    }
    // User text is escaped: the raw names never reach the markup.
    assert.ok(!html.includes(METHOD_A) && !html.includes("<DTD>"), "raw names with < and & are escaped");
    assert.ok(html.includes("MCM &#60;b&#62;&#38;amp;"), "the method name appears escaped");

    const rows = tableRows(html);
    assert.equal(rows.length, 6, "2 methods × 2 sets + 2 averages");
    const row = (method: string, ood: string | undefined) => {
      const r = rows.find((x) => x.method === method && x.ood === ood);
      assert.ok(r, `a row for ${method} / ${ood ?? "average"}`);
      return r.cells;
    };
    // Worked out by hand from the fixture's METRICS: 0.951234 → 95.12, 0.254321 → 25.43, 0.876543 → 87.65,
    // 0.888888 → 88.89; threshold 0.61234 to 4 significant digits; 24 ID and 18 OOD samples.
    const a = row(METHOD_A, OOD_A);
    assert.deepEqual(
      Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v.text])),
      { auroc: "95.12", fpr95: "25.43", auprIn: "90.00", auprOut: "87.65", detectionAccuracy: "88.89", threshold: "0.6123", n: "24 / 18", idAccuracy: "76.54" },
    );
    // Best per set: method A has the higher AUROC (0.951234 > 0.9), method B the lower FPR (0.2 < 0.254321).
    assert.ok(a["auroc"]!.best && !a["fpr95"]!.best, "A's AUROC is best, its FPR is not");
    const b = row(METHOD_B, OOD_A);
    assert.ok(b["fpr95"]!.best && !b["auroc"]!.best, "B's FPR is best, its AUROC is not");
    assert.equal(b["idAccuracy"]!.text, "—", "no ID accuracy without labels");
    // On OOD_B both have AUPR-In 0.7: a tie marks both.
    assert.ok(row(METHOD_A, OOD_B)["auprIn"]!.best && row(METHOD_B, OOD_B)["auprIn"]!.best, "ties are both best");
    // Averages (hand means in the fixture): 0.875617 → 87.56, 0.3771605 → 37.72, 0.7382715 → 73.83; n OOD 18 + 30.
    const avg = row(METHOD_A, undefined);
    assert.equal(avg["auroc"]!.text, "87.56");
    assert.equal(avg["fpr95"]!.text, "37.72");
    assert.equal(avg["auprOut"]!.text, "73.83");
    assert.equal(avg["n"]!.text, "24 / 48");

    // Charts: one ROC per set, one histogram per method × set.
    assert.equal(html.match(/data-chart="roc"/g)?.length, 2);
    assert.equal(html.match(/data-chart="histogram"/g)?.length, 4);
    // Thumbnails for the real PNGs, placeholders for the rest.
    const thumbs = html.match(/<img class="thumb" src="data:image\/jpeg;base64,/g)?.length ?? 0;
    assert.ok(thumbs > 0, "some thumbnails are images");
    assert.ok(html.includes('class="thumb placeholder"'), "missing files and embeddings rows get placeholders");
    assert.ok(html.includes(escapedByHand(path.basename(images[0]!))), "thumbnails carry their file name");
    assert.ok(html.includes(escapedByHand(ID_SET)), `the ID set ${ID_SET} is named, escaped`);
  });
});

/** The HTML-escaped form of text, spelt out by hand for the fixture's characters. */
function escapedByHand(text: string): string {
  return text.replace(/&/g, "&#38;").replace(/</g, "&#60;").replace(/>/g, "&#62;").replace(/"/g, "&#34;").replace(/'/g, "&#39;");
}

test("renderReport: thumbnails per list, 0 leaves them out, bad counts refused", async () => {
  await withTempDir(async (dir) => {
    const { result } = await makeReportFixture(dir);
    const two = await renderReport(result, { thumbnails: 2 });
    for (const list of two.matchAll(/<ol class="cases" data-list="[^"]+">([\s\S]*?)<\/ol>/g)) {
      assert.equal(list[1]!.match(/<li /g)?.length, 2, "2 entries per list");
    }
    assert.equal(two.match(/<ol class="cases"/g)?.length, 2 * 2 * 2, "FP and FN lists per method × set");
    const none = await renderReport(result, { thumbnails: 0 });
    assert.ok(!none.includes('id="hardest"'), "thumbnails: 0 leaves the section out");
    await assert.rejects(renderReport(result, { thumbnails: -1 }), rejectsWithCode("USAGE", "-1"));
  });
});

test("renderReport: inputs of sets read from embeddings files are never opened for thumbnails", async () => {
  await withTempDir(async (dir) => {
    const { result } = await makeReportFixture(dir);
    // The same samples, but every set now "came from an embeddings file": their inputs name real images
    // on this machine, which a file from elsewhere could point at; none of them may be read.
    const html = await renderReport({ ...result, imageSets: [] });
    assert.equal(html.match(/<img class="thumb"/g)?.length ?? 0, 0, "no thumbnail at all");
    assert.ok(html.includes('class="thumb placeholder" data-reason="no preview"'), "placeholders instead");
    const idOnly = await renderReport({ ...result, imageSets: [result.idSet] });
    const lists = [...idOnly.matchAll(/<ol class="cases" data-list="([^"]+)">([\s\S]*?)<\/ol>/g)];
    for (const [, kind, body] of lists) {
      const images = body!.match(/<img class="thumb"/g)?.length ?? 0;
      if (kind === "false-positives") assert.equal(images, 0, "OOD sets not read as images: no thumbnails");
    }
    assert.ok(lists.some(([, kind, body]) => kind === "false-negatives" && body!.includes("<img")), "the ID set's images still get thumbnails");
  });
});

test("writeReport: the file opens offline in Chromium, charts drawn, images loaded", { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent` }, async () => {
  await withTempDir(async (dir) => {
    const { result } = await makeReportFixture(dir);
    const file = path.join(dir, "out", "report <1>.html");
    assert.equal(await writeReport(result, file), file);
    assert.ok((await stat(file)).size > 10_000, "the report is written");

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const blocked: string[] = [];
      const errors: string[] = [];
      await page.route("**/*", (route) => {
        const url = route.request().url();
        if (url.startsWith("file:") || url.startsWith("data:")) return route.continue();
        blocked.push(url);
        return route.abort();
      });
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(pathToFileURL(file).href, { waitUntil: "load" });

      const sizes = await page.$$eval("figure[data-chart] svg", (svgs) =>
        svgs.map((s) => {
          const r = s.getBoundingClientRect();
          return { chart: s.parentElement?.getAttribute("data-chart"), w: r.width, h: r.height, marks: s.querySelectorAll("path, line, rect").length };
        }),
      );
      assert.equal(sizes.filter((s) => s.chart === "roc").length, 2, "two ROC charts");
      assert.equal(sizes.filter((s) => s.chart === "histogram").length, 4, "four histograms");
      for (const s of sizes) assert.ok(s.w > 200 && s.h > 150 && s.marks > 10, `a ${s.chart} chart drawn at ${s.w}×${s.h} with ${s.marks} marks`);

      const rows = await page.$$eval("#metrics tr[data-method]", (trs) =>
        trs.map((tr) => ({ method: tr.getAttribute("data-method"), ood: tr.getAttribute("data-ood"), auroc: tr.querySelector('[data-metric="auroc"]')?.textContent })),
      );
      // The DOM decodes the attributes, so these are the names as given.
      assert.deepEqual(rows, [
        { method: METHOD_A, ood: OOD_A, auroc: "95.12" },
        { method: METHOD_B, ood: OOD_A, auroc: "90.00" },
        { method: METHOD_A, ood: OOD_B, auroc: "80.00" },
        { method: METHOD_B, ood: OOD_B, auroc: "85.00" },
        { method: METHOD_A, ood: null, auroc: "87.56" },
        { method: METHOD_B, ood: null, auroc: "87.50" },
      ]);

      const images = await page.$$eval("img.thumb", (imgs) => imgs.map((i) => ({ ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, alt: i.alt })));
      assert.ok(images.length > 0, "the report has thumbnails");
      for (const i of images) assert.ok(i.ok, `thumbnail ${i.alt} did not load`);
      // The fixture's 300×200 PNG is fitted inside 128 px.
      assert.ok(images.some((i) => i.alt === "cat <1> & ü.png" && i.w === 128), "the 300×200 image is a 128 px wide thumbnail");
      const placeholders = await page.$$eval(".thumb.placeholder", (els) => els.length);
      assert.ok(placeholders > 0, "placeholders for inputs without an image");

      // At phone width nothing sticks out of the page (the table and charts scroll inside their boxes).
      await page.setViewportSize({ width: 375, height: 800 });
      const overflow = await page.$eval("html", (el) => el.scrollWidth);
      assert.ok(overflow <= 375, `the page is ${overflow}px wide at a 375px viewport`);

      assert.deepEqual(blocked, [], "the report requested nothing outside the file");
      assert.deepEqual(errors, [], "no console errors");
    } finally {
      await browser.close();
    }
  });
});

test("renderReport: with few-shot rows, a section with both curves and mean ± std per method and shot count", async () => {
  await withTempDir(async (dir) => {
    const { result } = await makeReportFixture(dir);
    assert.ok(!(await renderReport(result, { thumbnails: 0 })).includes(`id="shots"`), "no few-shot section without --shots");
    result.shots = shotsSummary();
    const html = await renderReport(result, { thumbnails: 0 });
    const section = /<section id="shots">[\s\S]*?<\/section>/.exec(html)?.[0];
    assert.ok(section, "the report has a #shots section");
    assert.ok(html.includes(`<a href="#shots">`), "linked from the header");
    assert.deepEqual([...section.matchAll(/data-chart="shots"[^>]*data-metric="([^"]+)"/g)].map((m) => m[1]), ["auroc", "idAccuracy"]);
    const rows = [...section.matchAll(/<tr data-method="([^"]*)" data-shots="([^"]*)">([\s\S]*?)<\/tr>/g)].map((m) => [decodeHTML(m[1]!), m[2], /data-metric="auroc">([^<]*)</.exec(m[3]!)?.[1]]);
    assert.deepEqual(rows, [
      [METHOD_A, "", "87.56"],
      [METHOD_B, "1", "60.00 ± 10.00"],
      [METHOD_B, "4", "80.00 ± 5.00"],
      [METHOD_B, "16", "95.00 ± 10.00"],
    ]);
  });
});

test("renderReport: an OOD set only some methods have, and empty inputs, still render", async () => {
  await withTempDir(async (dir) => {
    const { result } = await makeReportFixture(dir);
    result.methods[1]!.sets.pop();
    result.methods[0]!.sets[0]!.samples = [{ input: "x", score: Number.NaN, predicted: "a" }, ...result.methods[0]!.sets[0]!.samples];
    const html = await renderReport(result);
    assert.equal(html.match(/data-chart="histogram"/g)?.length, 3, "histograms for the 3 pairs that exist");
    assert.equal(tableRows(html).length, 5, "3 set rows + 2 averages");
    assert.ok(html.includes(`data-ood="${escapedByHand(OOD_B)}"`), "the set only one method has is shown");
  });
});
