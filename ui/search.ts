/** The Search tab: a text query (plus terms to add or subtract) over the server's embedding store. */

import { getJson } from "./api.js";
import { byId, h } from "./dom.js";
import { fmtScore, splitList } from "./format.js";
import { isRecord, list, numOrNull, str, strings } from "./json.js";
import type { Json } from "./json.js";
import { act, usage } from "./messages.js";
import { baseName, Thumbnails } from "./thumbnails.js";

const search = {
  form: byId("search-form", HTMLFormElement),
  text: byId("search-text", HTMLInputElement),
  add: byId("search-add", HTMLInputElement),
  subtract: byId("search-subtract", HTMLInputElement),
  top: byId("search-top", HTMLInputElement),
  folder: byId("search-in", HTMLInputElement),
  all: byId("search-all", HTMLInputElement),
  button: byId("search-button", HTMLButtonElement),
  status: byId("search-status", HTMLElement),
  error: byId("search-error", HTMLElement),
  results: byId("search-results", HTMLUListElement),
  thumbnails: new Thumbnails(),
};

async function runSearch(): Promise<string> {
  const text = search.text.value.trim();
  const add = splitList(search.add.value);
  const subtract = splitList(search.subtract.value);
  if (text === "" && add.length === 0) throw usage("The query is empty.", "Type what to look for, e.g. “a red car”.");
  const top = Number(search.top.value || "10");
  if (!Number.isInteger(top) || top < 1) throw usage(`Top k “${search.top.value}” is not a whole number ≥ 1.`, "Use e.g. 10.");
  const body: Json = { text, top };
  if (add.length) body.add = add;
  if (subtract.length) body.subtract = subtract;
  if (search.folder.value.trim()) body.in = search.folder.value.trim();
  if (search.all.checked) body.all = true;
  const res = await getJson("v1/search", { method: "POST", json: body });
  const results = list(res.results).filter(isRecord);
  search.thumbnails.release();
  search.results.replaceChildren(
    ...results.map((r, i) => {
      const input = str(r.input, `result ${i + 1}`);
      const score = numOrNull(r.score);
      // One result per content: the same image stored under other paths is named in the tooltip.
      const paths = strings(r.paths);
      const copies = paths.length > 1 ? ` (+${paths.length - 1} ${paths.length === 2 ? "copy" : "copies"})` : "";
      const img = h("img", { class: "thumb", alt: baseName(input), loading: "lazy" });
      const name = h("span", { class: "path", title: paths.length > 1 ? paths.join("\n") : input }, baseName(input) + copies);
      const figure = h("figure", {}, img, h("figcaption", {}, name, h("span", { class: "score-value", "data-testid": "search-score" }, score === null ? "" : `score ${fmtScore(score)}`)));
      const thumb = str(r.thumbnail);
      if (thumb) void search.thumbnails.load(thumb, img);
      return h("li", { "data-testid": "search-result", "data-input": input }, figure);
    }),
  );
  return results.length ? `${results.length} result${results.length === 1 ? "" : "s"}.` : "No results.";
}

export function setupSearch(): void {
  search.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(search.button, search.status, search.error, "Searching…", runSearch);
  });
}
