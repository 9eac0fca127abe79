/**
 * The web UI end to end: the real server (in-process, on a generated model) serving dist/ui/, driven
 * in Debian's headless Chromium. Expected outcomes come from the generated world (scripts/world.ts):
 * a red image is "red" among red/green/blue, a yellow one is out-of-distribution for those classes
 * and in-distribution for yellow/green. Every request that is not to the local server is blocked and
 * fails the test. Needs `npm run build` first (the server serves the compiled UI from dist/ui/).
 *
 * Set CLIP_OOD_UI_SCREENSHOTS=<folder> to keep screenshots of the Detect tab at desktop and phone width.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { chromium } from "playwright-core";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { startServer } from "../src/server/app.js";
import type { ServerOptions } from "../src/server/app.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";
import type { WorldImage } from "./support/model.js";

const CHROMIUM = "/usr/bin/chromium";

/** The page-side globals that the paste and drop simulation uses (again: no DOM lib here). */
interface PageGlobals {
  document: { dispatchEvent(e: unknown): boolean; querySelector(selector: string): { dispatchEvent(e: unknown): boolean } | null };
  DataTransfer: new () => { items: { add(file: unknown): unknown } };
  File: new (parts: unknown[], name: string, options: { type: string }) => unknown;
  ClipboardEvent: new (type: string, init: { clipboardData: unknown; bubbles: boolean; cancelable: boolean }) => unknown;
  DragEvent: new (type: string, init: { dataTransfer: unknown; bubbles: boolean; cancelable: boolean }) => unknown;
}

/** The little of the DOM that the page-side callbacks use (this project's tsconfig has no DOM lib). */
interface El {
  textContent: string | null;
  children: ArrayLike<El>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): El | null;
  querySelectorAll(selector: string): ArrayLike<El>;
}
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent`;
const SHOTS = process.env.CLIP_OOD_UI_SCREENSHOTS;

async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** A page whose every request must go to `origin`; others are aborted and recorded, as are script errors. */
async function openPage(browser: Browser, origin: string, viewport = { width: 1280, height: 900 }): Promise<{ context: BrowserContext; page: Page; blocked: string[]; errors: string[] }> {
  const context = await browser.newContext({ viewport });
  const blocked: string[] = [];
  const errors: string[] = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`)) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    // 4xx answers are part of the scenario; Chromium logs each as "Failed to load resource".
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  page.on("dialog", (d) => void d.accept());
  await page.goto(`${origin}/`, { waitUntil: "load" });
  return { context, page, blocked, errors };
}

/**
 * Serves the built UI on a generated model (plus `options`), opens it in Chromium and runs `body` on
 * the page; afterwards no request may have left the local server and no script may have failed.
 */
async function withUi(options: ServerOptions, body: (page: Page) => Promise<void>): Promise<void> {
  const cacheDir = await tempDir("clip-ood-ui-cache-");
  const model = await makeModel();
  const server = await startServer({ model, cacheDir, threads: 1, store: false, host: "127.0.0.1", port: 0, ...options });
  const browser = await launch();
  try {
    const index = await fetch(`${server.url}/`);
    assert.equal(index.status, 200, "the server serves the UI at / (run `npm run build` first: it serves dist/ui/)");
    assert.match(await index.text(), /data-testid="detect-button"/, "the page at / is the clip-ood UI");
    // The browser fetches each compiled module by its own URL, and the server serves only the files it lists.
    for (const source of await readdir(new URL("../ui/", import.meta.url))) {
      if (source.endsWith(".json")) continue;
      const name = source.replace(/\.ts$/, ".js");
      const file = await fetch(`${server.url}/${name}`);
      assert.equal(file.status, 200, `the server serves ${name} (a new ui/ module belongs in UI_MODULES, src/server/ui-files.ts)`);
    }

    const { context, page, blocked, errors } = await openPage(browser, server.url);
    try {
      await body(page);
      assert.deepEqual(blocked, [], "no request left the local server");
      assert.deepEqual(errors, [], "no script errors on the page");
    } finally {
      await context.close();
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

const detectButton = '[data-testid="detect-button"]';

/** Runs `action` (which submits the Detect form) and waits until the page has rendered the answer. */
async function detectWith(page: Page, action: () => Promise<void>): Promise<{ status: number; body: unknown }> {
  const response = page.waitForResponse((r) => r.url().endsWith("/v1/detect") && r.request().method() === "POST");
  await action();
  const r = await response;
  // The button is aria-disabled from the submit until the results or the error are on the page.
  await page.waitForSelector(`${detectButton}:not([aria-disabled])`);
  return { status: r.status(), body: (await r.json()) as unknown };
}

/** Replaces the chosen images (picking adds to them). */
async function chooseFiles(page: Page, files: string[]): Promise<void> {
  if (await page.isVisible('[data-testid="clear-files"]')) await page.click('[data-testid="clear-files"]');
  if (files.length) await page.setInputFiles('[data-testid="file-input"]', files);
}

async function clickDetect(page: Page): Promise<{ status: number; body: unknown }> {
  return detectWith(page, () => page.click(detectButton));
}

interface CardView {
  input: string | null;
  verdict: string | null;
  score: number;
  top: string | null;
  bars: { label: string | null; prob: number }[];
  marks: number;
  error: string | null;
}

async function cards(page: Page): Promise<CardView[]> {
  return page.$$eval('[data-testid="result-card"]', (els: El[]) =>
    els.map((el) => ({
      input: el.getAttribute("data-input"),
      verdict: el.querySelector('[data-testid="verdict"]')?.getAttribute("data-verdict") ?? null,
      score: Number(el.getAttribute("data-score")),
      top: el.querySelector('[data-testid="top-label"]')?.textContent ?? null,
      bars: Array.from(el.querySelectorAll('[data-testid="prob-bar"]'), (b: El) => ({ label: b.getAttribute("data-label"), prob: Number(b.getAttribute("data-prob")) })),
      marks: el.querySelectorAll('[data-testid="threshold-mark"]').length,
      error: el.querySelector('[data-testid="card-error"]')?.textContent ?? null,
    })),
  );
}

function card(all: readonly CardView[], image: WorldImage): CardView {
  const c = all.find((x) => x.input === path.basename(image.file));
  assert.ok(c, `a card for ${path.basename(image.file)} among ${all.map((x) => x.input).join(", ")}`);
  return c;
}

async function focusedTestId(page: Page): Promise<string | null> {
  return page.$eval(":focus", (el: El) => el.getAttribute("data-testid")).catch(() => null);
}

async function noHorizontalOverflow(page: Page, where: string): Promise<void> {
  const { scroll, client } = await page.$eval("html", (el) => ({ scroll: el.scrollWidth, client: el.clientWidth }));
  assert.ok(scroll <= client, `${where}: the page is ${scroll} px wide in a ${client} px viewport`);
}

test("web UI: detect, errors, keyboard, phone width, detectors and evaluation against the real server", { skip, timeout: 240_000 }, async (t) => {
  const dataRoot = await tempDir("clip-ood-ui-data-");
  const [red, yellow] = await makeImages([{ colour: "red", texture: "plain" }, { colour: "yellow", texture: "plain" }], 3);
  assert.ok(red && yellow, "two world images");
  await withUi({ dataRoots: [dataRoot] }, async (page) => {
    await t.test("the page loads offline with its tabs; arrow keys move between them", async () => {
      // (Not waitForFunction: the page's CSP forbids evaluating strings.)
      await page.locator('[data-testid="model-status"]').filter({ hasText: /^Model: / }).waitFor();
      assert.equal(await page.getAttribute('[data-testid="tab-detect"]', "aria-selected"), "true", "Detect is the first tab");
      await page.focus('[data-testid="tab-detect"]');
      await page.keyboard.press("ArrowRight");
      assert.equal(await page.getAttribute('[data-testid="tab-search"]', "aria-selected"), "true", "ArrowRight selects Search");
      assert.ok(await page.isVisible('[data-testid="panel-search"]'), "the Search panel shows");
      assert.ok(await page.isHidden('[data-testid="panel-detect"]'), "the Detect panel hides");
      await page.keyboard.press("Home");
      assert.equal(await focusedTestId(page), "tab-detect", "Home focuses the first tab");
      assert.ok(await page.isVisible('[data-testid="panel-detect"]'), "the Detect panel is back");
    });

    let threshold = 0;
    await t.test("red and yellow images without a threshold: top class, scores, no verdict", async () => {
      await page.fill('[data-testid="classes-input"]', "red,green,blue");
      await page.setInputFiles('[data-testid="file-input"]', [red.file, yellow.file]);
      const r = await clickDetect(page);
      assert.equal(r.status, 200, `detect answered ${r.status}: ${JSON.stringify(r.body)}`);
      const all = await cards(page);
      assert.equal(all.length, 2, "one card per image");
      const R = card(all, red);
      const Y = card(all, yellow);
      assert.equal(R.top, "red", "the red image's top class is red");
      assert.equal(R.bars.length, 3, "a probability bar per class");
      assert.equal(R.bars[0]?.label, "red", "the longest bar is red's, listed first");
      const sum = R.bars.reduce((a, b) => a + b.prob, 0);
      assert.ok(Math.abs(sum - 1) < 1e-6, `the bars are a softmax over all classes (sum ${sum})`);
      assert.equal(R.verdict, "none", "no threshold, no verdict");
      assert.equal(R.marks, 0, "no threshold mark without a threshold");
      // MCM ranks the in-distribution red image above the yellow one (the world's outlier colour).
      assert.ok(R.score > Y.score, `red scores ${R.score} above yellow ${Y.score}`);
      threshold = (R.score + Y.score) / 2;
    });

    await t.test("a threshold between the two scores: red is ID, yellow is OOD, the gauge marks the threshold", async () => {
      await page.fill('[data-testid="threshold-input"]', String(threshold));
      await clickDetect(page);
      const all = await cards(page);
      assert.equal(card(all, red).verdict, "id", "red is in-distribution");
      assert.equal(card(all, yellow).verdict, "ood", "yellow is out-of-distribution");
      assert.ok(all.every((c) => c.marks === 1), "each gauge marks the threshold");
      const redVerdict = page.locator(`[data-testid="result-card"][data-input="${path.basename(red.file)}"] [data-testid="verdict"]`);
      assert.match((await redVerdict.textContent()) ?? "", /\bID\b/, "the verdict reads ID");
      if (SHOTS) await page.screenshot({ path: path.join(SHOTS, "detect-desktop.png"), fullPage: true });
    });

    await t.test("classes yellow,green: the yellow image becomes ID", async () => {
      await page.fill('[data-testid="classes-input"]', "yellow,green");
      await clickDetect(page);
      const Y = card(await cards(page), yellow);
      assert.equal(Y.top, "yellow", "its top class is yellow");
      assert.equal(Y.verdict, "id", `yellow scores ${Y.score} ≥ ${threshold} among yellow/green`);
    });

    await t.test("an empty class list: the server's message and hint in the error region", async () => {
      await page.fill('[data-testid="classes-input"]', "");
      const r = await clickDetect(page);
      assert.equal(r.status, 400, "the server refuses an empty class list");
      const error = (r.body as { error?: { message?: string; hint?: string } }).error;
      assert.ok(error?.message && error.hint, `the server sends a message and a hint: ${JSON.stringify(r.body)}`);
      const region = page.locator('[data-testid="error"]');
      assert.equal(await region.getAttribute("aria-live"), "polite", "the error region is a polite live region");
      assert.ok(await region.isVisible(), "the error region shows");
      const text = (await region.textContent()) ?? "";
      assert.ok(text.includes(error.message), `the region shows the message "${error.message}": ${text}`);
      assert.ok(text.includes(error.hint), `the region shows the hint "${error.hint}": ${text}`);
    });

    await t.test("keyboard only: Tab to the Detect button, Enter submits, the error clears", async () => {
      await page.fill('[data-testid="classes-input"]', "red,green,blue");
      await page.focus('[data-testid="classes-input"]');
      let focused: string | null = null;
      for (let i = 0; i < 20 && focused !== "detect-button"; i++) {
        await page.keyboard.press("Tab");
        focused = await focusedTestId(page);
      }
      assert.equal(focused, "detect-button", "Tab reaches the Detect button");
      const r = await detectWith(page, () => page.keyboard.press("Enter"));
      assert.equal(r.status, 200, "Enter on the button runs the detection");
      assert.equal(card(await cards(page), red).verdict, "id", "red is ID again among red/green/blue");
      assert.equal(((await page.textContent('[data-testid="error"]')) ?? "").trim(), "", "the old error is gone");
    });

    await t.test("paste (Ctrl+V of an image) and drop add images; they are scored like picked ones", async () => {
      await chooseFiles(page, []);
      const png = async (file: string) => (await readFile(file)).toString("base64");
      // Clipboard images arrive named "image.png"; the UI numbers them.
      await page.evaluate(
        ({ pasted, dropped, droppedName }) => {
          // No named helpers in here: tsx would wrap them in a __name() that the page lacks.
          const g = globalThis as unknown as PageGlobals;
          const [clip, drag] = [
            [pasted, "image.png"],
            [dropped, droppedName],
          ].map(([b64, name]) => {
            const dt = new g.DataTransfer();
            dt.items.add(new g.File([Uint8Array.from(atob(b64 ?? ""), (c) => c.charCodeAt(0))], name ?? "", { type: "image/png" }));
            return dt;
          });
          g.document.dispatchEvent(new g.ClipboardEvent("paste", { clipboardData: clip, bubbles: true, cancelable: true }));
          g.document.querySelector('[data-testid="drop-zone"]')?.dispatchEvent(new g.DragEvent("drop", { dataTransfer: drag, bubbles: true, cancelable: true }));
        },
        { pasted: await png(red.file), dropped: await png(yellow.file), droppedName: path.basename(yellow.file) },
      );
      const chosen = await page.$$eval('[data-testid="chosen-file"]', (lis: El[]) => lis.map((li) => li.textContent));
      assert.equal(chosen.length, 2, `the pasted and the dropped image are listed: ${JSON.stringify(chosen)}`);
      await clickDetect(page);
      const all = await cards(page);
      const pasted = all.find((c) => c.input === "pasted-1.png");
      assert.equal(pasted?.top, "red", `the pasted red image is scored as red: ${JSON.stringify(all)}`);
      assert.equal(card(all, yellow).verdict, "ood", "the dropped yellow image is OOD");
    });

    await t.test("a file that is not an image: an error on its own card, the other image scored", async () => {
      const dir = await tempDir("clip-ood-ui-bad-");
      const bad = path.join(dir, "broken.png");
      await writeFile(bad, "this is not a PNG");
      await chooseFiles(page, [red.file, bad]);
      const r = await clickDetect(page);
      assert.equal(r.status, 200, `one bad image does not fail the request: ${JSON.stringify(r.body)}`);
      const all = await cards(page);
      const broken = all.find((c) => c.input === "broken.png");
      assert.ok(broken?.error, `the broken file's card shows its error: ${JSON.stringify(broken)}`);
      assert.equal(card(all, red).verdict, "id", "the red image is still scored");
      await chooseFiles(page, [red.file, yellow.file]);
      await clickDetect(page);
    });

    await t.test("at 375 px: no horizontal scrolling on any tab", async () => {
      await page.setViewportSize({ width: 375, height: 800 });
      assert.equal((await cards(page)).length, 2, "the results are still shown");
      await noHorizontalOverflow(page, "Detect with results");
      if (SHOTS) await page.screenshot({ path: path.join(SHOTS, "detect-phone.png"), fullPage: true });
      for (const tab of ["search", "detectors", "evaluate", "detect"]) {
        await page.click(`[data-testid="tab-${tab}"]`);
        await noHorizontalOverflow(page, `the ${tab} tab`);
      }
      await page.setViewportSize({ width: 1280, height: 900 });
    });

    await t.test("detectors: create one, use it with a threshold, calibrate it, delete it", async () => {
      await page.click('[data-testid="tab-detectors"]');
      await page.fill('[data-testid="create-name"]', "colours");
      await page.fill('[data-testid="create-classes"]', "red,green,blue");
      await page.click('[data-testid="create-button"]');
      await page.waitForSelector('[data-testid="detector"][data-name="colours"]');
      assert.ok((await page.$$eval('[data-testid="detector-select"] option', (os: El[]) => os.map((o) => o.getAttribute("value")))).includes("colours"), "the Detect tab offers the new detector");

      await page.setInputFiles('[data-testid="calibrate-id"]', [red.file]);
      await page.selectOption('[data-testid="calibrate-detector"]', "colours");
      await page.click('[data-testid="calibrate-button"]');
      await page.locator('[data-testid="calibrate-status"]').filter({ hasText: /^Threshold of colours/ }).waitFor();
      assert.equal(((await page.textContent('[data-testid="calibrate-error"]')) ?? "").trim(), "", "calibration succeeded");

      await page.click('[data-testid="tab-detect"]');
      await page.selectOption('[data-testid="detector-select"]', "colours");
      assert.ok(await page.isDisabled('[data-testid="classes-input"]'), "a server detector brings its own classes");
      await clickDetect(page);
      const all = await cards(page);
      assert.equal(card(all, red).top, "red", "the detector's classes are used");
      assert.equal(card(all, yellow).verdict, "ood", `yellow is OOD at the threshold given (${threshold})`);
      await page.selectOption('[data-testid="detector-select"]', "");

      await page.click('[data-testid="tab-detectors"]');
      await page.click('[data-testid="detector"][data-name="colours"] [data-testid="delete-detector"]');
      await page.waitForSelector('[data-testid="detector"][data-name="colours"]', { state: "detached" });
    });

    await t.test("evaluate: a job on class folders shows progress, metric rows and the report", async () => {
      // ID: class folders red/green/blue; OOD: yellow and purple images, all inside the data root.
      const id = await makeImages(["red", "green", "blue"].flatMap((colour) => [{ colour, texture: "plain" as const }, { colour, texture: "striped" as const }]), 11);
      const ood = await makeImages([{ colour: "yellow", texture: "plain" }, { colour: "purple", texture: "plain" }, { colour: "yellow", texture: "striped" }], 12);
      for (const img of id) {
        await mkdir(path.join(dataRoot, "id", img.colour), { recursive: true });
        await copyFile(img.file, path.join(dataRoot, "id", img.colour, path.basename(img.file)));
      }
      await mkdir(path.join(dataRoot, "ood"), { recursive: true });
      for (const img of ood) await copyFile(img.file, path.join(dataRoot, "ood", path.basename(img.file)));

      await page.click('[data-testid="tab-evaluate"]');
      await page.fill('[data-testid="eval-id"]', path.join(dataRoot, "id"));
      await page.fill('[data-testid="eval-ood"]', `colours=${path.join(dataRoot, "ood")}`);
      await page.check('[data-testid="eval-methods"] input[value="energy"]');
      await page.click('[data-testid="eval-button"]');
      await page.waitForSelector('[data-testid="eval-results"]:not([hidden])', { timeout: 60_000 });
      const rows = await page.$$eval('[data-testid="eval-row"]', (trs: El[]) => trs.map((tr) => Array.from(tr.children, (c) => c.textContent)));
      const methods = new Set(rows.map((r) => r[0]));
      assert.ok(methods.has("mcm") && methods.has("energy"), `a row per method: ${JSON.stringify(rows)}`);
      const auroc = await page.$$eval('[data-testid="eval-row"] [data-metric="auroc"]', (tds: El[]) => tds.map((td) => Number(td.textContent)));
      assert.ok(auroc.length >= 2 && auroc.every((a) => a > 50 && a <= 100), `AUROC (%) above chance for red/green/blue vs yellow/purple: ${auroc.join(", ")}`);
      const frame = page.frameLocator('[data-testid="eval-report"]');
      await frame.locator("#metrics").waitFor({ timeout: 10_000 });
      assert.equal(await page.getAttribute('[data-testid="eval-report"]', "sandbox"), "", "the report frame is sandboxed");
      assert.equal(((await page.textContent('[data-testid="eval-error"]')) ?? "").trim(), "", "no error");
    });
  });
});

test("web UI: a server with an API key explains a 401, and the key field fixes it", { skip, timeout: 120_000 }, async () => {
  const [red] = await makeImages([{ colour: "red", texture: "plain" }], 5);
  assert.ok(red, "a world image");
  const apiKey = "s3cret-key";
  await withUi({ apiKey }, async (page) => {
    await page.setInputFiles('[data-testid="file-input"]', [red.file]);
    const refused = await clickDetect(page);
    assert.equal(refused.status, 401, "without the key the server refuses");
    const text = (await page.textContent('[data-testid="error"]')) ?? "";
    assert.match(text, /needs an API key/, `the error says a key is needed: ${text}`);
    assert.ok(await page.isVisible('[data-testid="error-auth"]'), "and points at the API key field");

    await page.fill('[data-testid="api-key-input"]', apiKey);
    const ok = await clickDetect(page);
    assert.equal(ok.status, 200, "with the key the detection runs");
    assert.equal((await cards(page))[0]?.top, "red", "and shows its result");

    // The key survives a reload (localStorage).
    await page.reload({ waitUntil: "load" });
    assert.equal(await page.inputValue('[data-testid="api-key-input"]'), apiKey, "the key is remembered");
  });
});

interface ClusterView {
  id: string | null;
  candidates: (string | null)[];
  name: string;
  facts: string | null;
  thumbs: { input: string | null; alt: string | null; loaded: boolean }[];
}

async function clusterViews(page: Page): Promise<ClusterView[]> {
  return page.$$eval('[data-testid="cluster"]', (els: El[]) =>
    els.map((el) => ({
      id: el.getAttribute("data-cluster"),
      candidates: Array.from(el.querySelectorAll('[data-testid="candidate"]'), (c: El) => c.getAttribute("data-name")),
      name: (el.querySelector('[data-testid="cluster-name"]') as unknown as { value: string }).value,
      facts: el.querySelector('[data-testid="cluster-facts"]')?.textContent ?? null,
      thumbs: Array.from(el.querySelectorAll('[data-testid="cluster-thumb"]'), (t: El) => {
        const img = t.querySelector("img") as unknown as { naturalWidth: number; complete: boolean; alt: string } | null;
        return { input: t.getAttribute("data-input"), alt: img?.alt ?? null, loaded: Boolean(img && img.complete && img.naturalWidth > 0) };
      }),
    })),
  );
}

/** The clusters once every thumbnail has loaded (they are fetched one by one after the clusters show). */
async function loadedClusters(page: Page): Promise<ClusterView[]> {
  const until = Date.now() + 20_000;
  for (;;) {
    const views = await clusterViews(page);
    if (views.every((v) => v.thumbs.every((t) => t.loaded))) return views;
    assert.ok(Date.now() < until, `thumbnails still loading after 20 s: ${JSON.stringify(views)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("web UI: discover clusters a server folder and uploads, shows names and thumbnails, adds a renamed cluster to a detector and says to recalibrate", { skip, timeout: 180_000 }, async (t) => {
  const dataRoot = await tempDir("clip-ood-ui-discover-");
  // New colours (yellow, purple) among known ones (red, green, blue); plain, so that colour alone parts them.
  const images = await makeImages(["yellow", "yellow", "yellow", "yellow", "purple", "purple", "purple", "purple", "red", "red"].map((colour) => ({ colour, texture: "plain" as const })), 21);
  await mkdir(path.join(dataRoot, "rejected"));
  for (const img of images) await copyFile(img.file, path.join(dataRoot, "rejected", path.basename(img.file)));
  const colourOf = (input: string | null) => images.find((i) => path.basename(i.file) === path.basename(input ?? ""))?.colour;

  await withUi({ dataRoots: [dataRoot] }, async (page) => {
    const origin = new URL(page.url()).origin;
    const created = await fetch(`${origin}/v1/detectors`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "colours", classes: "red,green,blue", templates: ["a photo of a {}"] }) });
    assert.equal(created.status, 201, await created.text());
    await page.click('[data-testid="tab-detectors"]');
    await page.click('[data-testid="detectors-refresh"]');
    await page.waitForSelector('[data-testid="detector"][data-name="colours"]');

    let clusters: ClusterView[] = [];
    await t.test("a folder on the server with a detector: one cluster per new colour, its names, facts and thumbnails", async () => {
      await page.click('[data-testid="tab-discover"]');
      assert.ok(await page.isVisible('[data-testid="panel-discover"]'), "the Discover panel shows");
      assert.ok(await page.isDisabled('[data-testid="discover-only-ood"]'), "only a detector can reject images");
      await page.click('[data-testid="discover-button"]');
      assert.match((await page.textContent('[data-testid="discover-error"]')) ?? "", /No images given\..*Type a folder on the server/, "no images: the page says what to give");
      await page.fill('[data-testid="discover-path"]', path.join(dataRoot, "rejected"));
      await page.selectOption('[data-testid="discover-detector"]', "colours");
      assert.ok(await page.isHidden('[data-testid="discover-classes"]'), "a detector brings its own classes");
      await page.selectOption('[data-testid="discover-vocabulary"]', "custom");
      await page.fill('[data-testid="discover-words"]', "yellow, purple, orange, cat");
      await page.click('[data-testid="discover-button"]');
      await page.waitForSelector('[data-testid="discover-results"]:not([hidden])', { timeout: 60_000 });
      assert.equal(((await page.textContent('[data-testid="discover-error"]')) ?? "").trim(), "", "no error");
      clusters = await loadedClusters(page);
      assert.equal(clusters.length, 2, `two clusters: ${JSON.stringify(clusters)}`);
      for (const c of clusters) {
        const colours = new Set(c.thumbs.map((th) => colourOf(th.input)));
        assert.equal(colours.size, 1, `cluster ${c.id}'s thumbnails show one colour: ${JSON.stringify(c.thumbs)}`);
        const colour = [...colours][0]!;
        assert.equal(c.thumbs.length, 4, `cluster ${c.id} shows its four images`);
        assert.ok(c.thumbs.every((th) => th.alt === path.basename(th.input ?? "")), "each thumbnail's alt text is its file name");
        assert.equal(c.candidates.length, 3, "three suggested names");
        assert.equal(c.candidates[0], colour, `cluster ${c.id} is named ${colour} first: ${JSON.stringify(c.candidates)}`);
        assert.equal(c.name, colour, "the name field starts at the best name");
        assert.match(c.facts ?? "", /^4 images · cohesion \d\.\d{3} · nearest known class: \w+/, `size, cohesion and the nearest known class: ${c.facts}`);
      }
      const known = (await page.textContent('[data-testid="discover-known"]')) ?? "";
      assert.match(known, /red 2/, `the red images are in the known class red: ${known}`);
      assert.equal(await page.inputValue('[data-testid="discover-target"]'), "colours", "the clusters go to the detector the discovery used");
      if (SHOTS) await page.screenshot({ path: path.join(SHOTS, "discover-desktop.png"), fullPage: true });
    });

    await t.test("keyboard: a suggested name is chosen with Enter; the name field has its label", async () => {
      const yellow = clusters.find((c) => c.candidates[0] === "yellow")!;
      const card = page.locator(`[data-testid="cluster"][data-cluster="${yellow.id}"]`);
      await card.locator('[data-testid="candidate"]').nth(1).focus();
      const second = yellow.candidates[1]!;
      await page.keyboard.press("Enter");
      assert.equal(await page.getByLabel(`Name of cluster ${yellow.id}`).inputValue(), second, "Enter on a suggestion puts it in the name field");
      assert.equal(await focusedTestId(page), "cluster-name", "and moves the focus there to edit it");
    });

    await t.test("one cluster chosen and renamed: added to the detector under its new name; the page says to recalibrate", async () => {
      const yellow = clusters.find((c) => c.candidates[0] === "yellow")!;
      const purple = clusters.find((c) => c.candidates[0] === "purple")!;
      await page.uncheck(`[data-testid="cluster"][data-cluster="${yellow.id}"] [data-testid="cluster-choose"]`);
      // The world's synonym of purple.
      await page.getByLabel(`Name of cluster ${purple.id}`).fill("violet");
      await page.click('[data-testid="discover-add-button"]');
      await page.locator('[data-testid="discover-add-status"]').filter({ hasText: /^Added / }).waitFor();
      assert.equal(await page.textContent('[data-testid="discover-add-status"]'), "Added violet to colours (4 classes now).");
      assert.match((await page.textContent('[data-testid="discover-added"]')) ?? "", /Recalibrate now/);
      const detector = (await (await fetch(`${origin}/v1/detectors/colours`)).json()) as { classes: string[] };
      assert.deepEqual(detector.classes, ["red", "green", "blue", "violet"], "only the chosen cluster, under the edited name");
      await page.click('[data-testid="discover-calibrate"]');
      assert.equal(await page.getAttribute('[data-testid="tab-detectors"]', "aria-selected"), "true", "the button opens the Detectors tab");
      assert.equal(await page.inputValue('[data-testid="calibrate-detector"]'), "colours", "with the detector chosen for calibration");
      assert.equal(await focusedTestId(page), "calibrate-id", "and the focus on its image field");
    });

    await t.test("uploads with a class list: thumbnails come from the chosen files; no horizontal scrolling at 375 px", async () => {
      await page.click('[data-testid="tab-discover"]');
      await page.fill('[data-testid="discover-path"]', "");
      await page.selectOption('[data-testid="discover-detector"]', "");
      await page.fill('[data-testid="discover-classes"]', "red,green,blue");
      await page.setInputFiles('[data-testid="discover-files"]', images.map((i) => i.file));
      const job = page.waitForResponse((r) => r.url().endsWith("/v1/discover") && r.request().method() === "POST");
      await page.click('[data-testid="discover-button"]');
      assert.equal((await job).status(), 202);
      await page.locator('[data-testid="discover-status"]').filter({ hasText: /done/ }).waitFor({ timeout: 60_000 });
      const views = await loadedClusters(page);
      assert.deepEqual(views.map((v) => v.candidates[0]).sort(), ["purple", "yellow"], JSON.stringify(views));
      assert.ok(views.every((v) => v.thumbs.length === 4), "each cluster shows its four uploads");
      await page.setViewportSize({ width: 375, height: 800 });
      await noHorizontalOverflow(page, "Discover with clusters");
      if (SHOTS) await page.screenshot({ path: path.join(SHOTS, "discover-phone.png"), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 900 });
    });
  });
});
