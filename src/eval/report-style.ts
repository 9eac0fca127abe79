/**
 * The report's one style sheet, inlined into the page (the page's Content-Security-Policy admits no
 * other). Wide screens get a grid of charts; a phone gets one column, with the charts kept legible and
 * scrolled sideways rather than shrunk.
 */
export const STYLE = `
:root { --fg: #1d2430; --muted: #5d6675; --line: #dfe3ea; --bg: #f6f7f9; --card: #fff; --best: #e3f4e1; --best-fg: #145a1e; --err: #b3261e; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; overflow-wrap: anywhere; }
main { max-width: 1280px; margin: 0 auto; padding: 16px; }
header, section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 0 0 16px; }
section section { border: 0; padding: 0; margin: 12px 0 20px; }
h1 { font-size: 1.6rem; margin: 0 0 12px; }
h2 { font-size: 1.3rem; margin: 0 0 8px; }
h3 { font-size: 1.1rem; margin: 20px 0 8px; border-top: 1px solid var(--line); padding-top: 12px; }
h4 { font-size: 1rem; margin: 8px 0; }
.muted, .note { color: var(--muted); }
.note { margin: 0 0 12px; font-size: 0.92rem; }
code { background: var(--bg); padding: 1px 5px; border-radius: 4px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 12px; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
ul.counts { margin: 2px 0 0; padding-left: 20px; }
nav a { color: #2458a6; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 0.93rem; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th[scope="row"], thead th:first-child { text-align: left; white-space: normal; min-width: 8em; }
thead th { position: sticky; top: 0; background: var(--card); border-bottom: 2px solid var(--fg); }
tr.group th { text-align: left; background: var(--bg); font-weight: 600; padding-top: 10px; }
tr.avg th[scope="row"] { font-style: italic; }
td.best, span.best { background: var(--best); color: var(--best-fg); font-weight: 700; }
span.best { padding: 0 4px; border-radius: 3px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 460px), 1fr)); gap: 16px; }
figure.chart { margin: 0; min-width: 0; }
figure.chart svg { display: block; width: 100%; max-width: 100%; height: auto; overflow: visible; }
.case-lists { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap: 12px; }
ol.cases { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 10px; }
li.case { width: 140px; font-size: 0.8rem; line-height: 1.3; display: flex; flex-direction: column; gap: 2px; }
li.case.ok { opacity: 0.7; }
.thumb { width: 128px; height: 96px; object-fit: contain; background: var(--bg); border: 1px solid var(--line); border-radius: 4px; }
li.case.error .thumb { border-color: var(--err); }
.placeholder { display: flex; align-items: center; justify-content: center; text-align: center; color: var(--muted); font-size: 0.75rem; padding: 4px; }
.score { font-weight: 600; font-variant-numeric: tabular-nums; }
.file { word-break: break-all; }
.meta { color: var(--muted); }
footer { color: var(--muted); font-size: 0.85rem; text-align: center; padding: 8px 0 24px; }
@media (max-width: 600px) {
  body { font-size: 14px; }
  main { padding: 8px; }
  header, section { padding: 12px; border-radius: 6px; }
  dl.facts { grid-template-columns: 1fr; gap: 0; }
  dl.facts dd { margin-bottom: 6px; }
  th, td { padding: 5px 6px; }
  /* Scaled to a phone's width the charts' text would be unreadable: keep them legible and let each scroll. */
  figure.chart { overflow-x: auto; -webkit-overflow-scrolling: touch; }
  figure.chart svg { width: 560px; max-width: none; }
  li.case { width: calc(50% - 5px); }
  .thumb { width: 100%; }
}
`;
