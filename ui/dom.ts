/** Finding and building elements, and the two form controls that more than one tab uses. */

export function byId<T extends HTMLElement>(id: string, type: { new (): T }): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`the page lacks #${id} (${type.name})`);
  return el;
}

export type Child = Node | string | null | undefined | false;

/** A new element with attributes (false/undefined ones left out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** A preset select with a "custom" choice that reveals a textarea of templates, one per line. */
export function templatesControl(select: HTMLSelectElement, customField: HTMLElement, custom: HTMLTextAreaElement): () => string[] | string {
  const sync = () => {
    customField.hidden = select.value !== "custom";
  };
  select.addEventListener("change", sync);
  sync();
  return () => {
    if (select.value !== "custom") return select.value;
    const lines = custom.value.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== "");
    return lines.length === 1 ? (lines[0] ?? "") : lines;
  };
}

/** Options for names, keeping the current choice when it still exists; `empty` labels a "" option. */
export function fillSelect(select: HTMLSelectElement, names: readonly string[], empty: string | undefined): void {
  const before = select.value;
  const options = names.map((n) => h("option", { value: n }, n));
  select.replaceChildren(...(empty === undefined ? [] : [h("option", { value: "" }, empty)]), ...options);
  if (before && names.includes(before)) select.value = before;
}
