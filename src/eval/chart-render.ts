/**
 * Renders the evaluation's Vega-Lite charts without a browser: Vega draws them to an SVG string
 * (renderer "none", so no canvas or DOM is needed) and resvg turns that SVG into a PNG. All data is
 * inlined in the spec, so rendering never loads anything.
 */
import { Resvg } from "@resvg/resvg-js";
import type * as Vega from "vega";
import type * as VegaLite from "vega-lite";
import type { ChartSpec } from "./chart-common.js";

/** For machines with none of the charts' fonts (chart-common.ts); the text widths below assume it. */
const PNG_DEFAULT_FONT = "DejaVu Sans";
/** PNGs are drawn at twice the SVG's size so that they stay sharp on high-density screens. */
const PNG_ZOOM = 2;

/**
 * Advance widths of DejaVu Sans (the PNGs' font, first in the charts' font list) for U+0020…U+007E, in
 * thousandths of an em, regular then bold, measured with a canvas in Chromium.
 */
const ADVANCE_REGULAR =
  "318,401,460,838,636,950,780,275,390,390,500,838,318,361,318,337,636,636,636,636,636,636,636,636,636,636,337,337,838,838,838,531,1000,684,686,698,770,632,575,775,752,295,295,656,557,863,748,787,603,787,695,635,611,732,684,989,685,611,685,390,337,390,838,500,500,613,635,550,635,615,352,635,634,278,278,579,278,974,634,612,635,635,411,521,392,634,592,818,592,592,525,636,337,636,838"
    .split(",")
    .map(Number);
const ADVANCE_BOLD =
  "348,456,521,838,696,1002,872,306,457,457,523,838,380,415,380,365,696,696,696,696,696,696,696,696,696,696,400,400,838,838,838,580,1000,774,762,734,830,683,683,821,837,372,372,775,637,995,837,850,733,850,770,720,682,812,774,1103,771,724,725,457,365,457,838,500,500,675,716,593,716,678,435,716,712,343,343,665,343,1042,712,687,716,716,493,595,478,712,652,924,645,652,582,712,365,712,838"
    .split(",")
    .map(Number);

/** East Asian wide characters and emoji take a full em. */
function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    cp >= 0x20000
  );
}

/** The width in pixels of a line of text in DejaVu Sans. */
export function textWidth(text: string, fontSize: number, bold = false): number {
  const table = bold ? ADVANCE_BOLD : ADVANCE_REGULAR;
  let em = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    em += cp >= 0x20 && cp <= 0x7e ? table[cp - 0x20]! : isWide(cp) ? 1000 : bold ? 680 : 620;
  }
  // A few percent of slack, so that a title set in a slightly wider fallback font still fits.
  return (em / 1000) * fontSize * 1.03;
}

interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
}
type WidthFn = (item: TextItem, text: string) => number;

/**
 * Vega lays out titles, legends and labels with text widths. Without a canvas it guesses 0.8 em per
 * character, which leaves wide empty margins; a width function of its own is Vega's supported way out
 * (vl-convert does the same). It is swapped in only while this module renders, so other users of Vega
 * in the process keep theirs.
 */
let rendering = 0;
let savedWidth: WidthFn | undefined;
const measure: WidthFn = (item, text) => {
  const weight = item.fontWeight;
  const bold = weight === "bold" || weight === "bolder" || (typeof weight === "number" && weight >= 600) || Number(weight) >= 600;
  return textWidth(String(text ?? ""), item.fontSize ?? 11, bold);
};

interface VegaModules {
  vega: typeof Vega;
  compile: typeof VegaLite.compile;
  textMetrics: { width: WidthFn };
  /** Silences Vega-Lite's compile-time warnings (e.g. merged legends), which would go to the console. */
  quietLogger: Vega.LoggerInterface;
}
let vegaModules: Promise<VegaModules> | undefined;

/**
 * Vega and Vega-Lite are loaded with the first chart, not with this module: they are the largest part
 * of what every clip-ood command would otherwise load before doing anything (about 0.4 s of CPU), and
 * only eval's charts need them.
 */
function loadVega(): Promise<VegaModules> {
  vegaModules ??= Promise.all([import("vega"), import("vega-lite")]).then(([vega, vegaLite]) => ({
    vega,
    compile: vegaLite.compile,
    textMetrics: (vega as unknown as { textMetrics: { width: WidthFn } }).textMetrics,
    quietLogger: vega.logger(vega.Error),
  }));
  return vegaModules;
}

/** Renders a Vega-Lite spec to a standalone SVG document string. */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const { vega, compile, textMetrics: vegaTextMetrics, quietLogger } = await loadVega();
  const { spec: vgSpec } = compile(spec, { logger: quietLogger });
  if (rendering++ === 0) {
    savedWidth = vegaTextMetrics.width;
    vegaTextMetrics.width = measure;
  }
  const view = new vega.View(vega.parse(vgSpec), { renderer: "none", logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
    if (--rendering === 0 && savedWidth !== undefined) vegaTextMetrics.width = savedWidth;
  }
}

/** Rasterises an SVG with the system fonts. */
export function renderPng(svg: string): Buffer {
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: PNG_DEFAULT_FONT, sansSerifFamily: PNG_DEFAULT_FONT },
    fitTo: { mode: "zoom", value: PNG_ZOOM },
    background: "white",
    logLevel: "off",
  });
  return resvg.render().asPng();
}

