/** The tab strip: which tab shows, kept in the URL hash so a reload or a link opens the same one. */

import { byId } from "./dom.js";

const TAB_NAMES = ["detect", "search", "detectors", "evaluate", "discover"] as const;
type TabName = (typeof TAB_NAMES)[number];
const tabs = TAB_NAMES.map((name) => ({ name, tab: byId(`tab-${name}`, HTMLButtonElement), panel: byId(`panel-${name}`, HTMLElement) }));
export let currentTab: TabName = "detect";

export function selectTab(name: TabName, focus: boolean): void {
  currentTab = name;
  for (const t of tabs) {
    const on = t.name === name;
    t.tab.setAttribute("aria-selected", String(on));
    t.tab.tabIndex = on ? 0 : -1;
    t.panel.hidden = !on;
    if (on && focus) t.tab.focus();
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

export function setupTabs(): void {
  tabs.forEach((t, i) => {
    t.tab.addEventListener("click", () => selectTab(t.name, false));
    // Arrow keys move between tabs (and select them), as the ARIA tabs pattern describes.
    t.tab.addEventListener("keydown", (ev) => {
      const moves: Record<string, number> = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      const to = moves[ev.key];
      if (to === undefined) return;
      ev.preventDefault();
      const next = tabs[(to + tabs.length) % tabs.length];
      if (next) selectTab(next.name, true);
    });
  });
  const fromHash = () => {
    const name = location.hash.slice(1);
    const tab = TAB_NAMES.find((n) => n === name);
    if (tab) selectTab(tab, false);
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
}
