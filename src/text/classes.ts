import path from "node:path";
import { ClipOodError, messageOf } from "../errors.js";
import { looksLikePath, readSpecFile } from "./spec-file.js";
import { labelSet } from "./label-sets.js";
import { fillTemplate } from "./templates.js";

export interface ClassSpec {
  label: string;
  /** The label first, then synonyms; each is put into every template. */
  names: string[];
  /** Complete prompts used verbatim, without a template. */
  descriptions: string[];
}

/** A parsed class and where it came from ("classes.txt:3", "item 2"), for error messages. */
interface Located {
  spec: ClassSpec;
  where: string;
}

const FORMS_HINT =
  "pass a comma-separated list (--classes cat,dog,car), a label set (cifar10, cifar100, imagenet1k), a text file with one class per line " +
  '("label", "label = synonym", "label: description | description"), or a JSON file ' +
  '(["cat","dog"], {"cat": ["a fluffy cat"]}, or [{"label":"cat","synonyms":[],"descriptions":[]}])';

function clean(s: string): string {
  return s.normalize("NFC").trim();
}

/** Cleaned, non-empty, first occurrence kept: repeated prompts would only re-weight the class mean. */
function uniqueCleaned(items: readonly string[]): string[] {
  return [...new Set(items.map(clean).filter((s) => s !== ""))];
}

function makeClass(label: string, synonyms: readonly string[], descriptions: readonly string[]): ClassSpec {
  const l = clean(label);
  return { label: l, names: uniqueCleaned([l, ...synonyms]), descriptions: uniqueCleaned(descriptions) };
}

/** The one place every input form is checked, so all of them fail the same way. */
function validateClasses(classes: readonly Located[], source: string): ClassSpec[] {
  if (classes.length === 0) {
    throw new ClipOodError("CLASSES", `no classes given in ${source}`, { hint: FORMS_HINT });
  }
  const empty = classes.find((c) => c.spec.label === "");
  if (empty) {
    throw new ClipOodError("CLASSES", `empty class label at ${empty.where}`, {
      hint: "give every class a name before any ':' description or '=' synonym, e.g. \"cat = kitty: a fluffy cat\"",
    });
  }
  const byKey = new Map<string, Located[]>();
  for (const c of classes) {
    const key = c.spec.label.toLowerCase();
    byKey.set(key, [...(byKey.get(key) ?? []), c]);
  }
  const duplicates = [...byKey.values()].filter((group) => group.length > 1);
  if (duplicates.length > 0) {
    const list = duplicates
      .map((group) => group.map((c) => `"${c.spec.label}" (${c.where})`).join(" and "))
      .join("; ");
    throw new ClipOodError("CLASSES", `duplicate class labels in ${source}: ${list}`, {
      hint: 'labels are compared ignoring case; merge each group into one class and list the other names as synonyms, e.g. "sunglasses = dark glasses"',
    });
  }
  return classes.map((c) => c.spec);
}

/**
 * One class per line: `label`, `label = synonym = …`, optionally followed by `: description | …`.
 * Only the first ':' splits, so descriptions may contain colons. Blank lines and `#` lines are skipped.
 */
export function parseClassesText(text: string, source: string): ClassSpec[] {
  const classes: Located[] = [];
  text
    .replace(/^\uFEFF/, "")
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const colon = line.indexOf(":");
      const head = colon < 0 ? line : line.slice(0, colon);
      const descriptions = colon < 0 ? [] : line.slice(colon + 1).split("|");
      const [label = "", ...synonyms] = head.split("=");
      classes.push({ spec: makeClass(label, synonyms, descriptions), where: `${source}:${i + 1}` });
    });
  return validateClasses(classes, source);
}

function stringArray(value: unknown, what: string, source: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === "string")) {
    throw new ClipOodError("CLASSES", `${what} in ${source} must be an array of strings`, { hint: FORMS_HINT });
  }
  return value;
}

const OBJECT_KEYS = new Set(["label", "synonyms", "descriptions"]);

function classFromItem(item: unknown, where: string, source: string): ClassSpec {
  if (typeof item === "string") return makeClass(item, [], []);
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw new ClipOodError("CLASSES", `${where} of ${source} is neither a class name nor a class object`, {
      hint: FORMS_HINT,
    });
  }
  const record = item as Record<string, unknown>;
  // A misspelt key would otherwise silently drop the user's synonyms or descriptions.
  const unknown = Object.keys(record).filter((k) => !OBJECT_KEYS.has(k));
  if (unknown.length > 0) {
    throw new ClipOodError("CLASSES", `${where} of ${source} has unknown key${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `"${k}"`).join(", ")}`, {
      hint: 'a class object may hold "label" (required), "synonyms" and "descriptions" (arrays of strings)',
    });
  }
  if (typeof record.label !== "string") {
    throw new ClipOodError("CLASSES", `${where} of ${source} has no string "label"`, {
      hint: 'write e.g. {"label": "cat", "synonyms": ["kitty"], "descriptions": ["a fluffy cat"]}',
    });
  }
  return makeClass(
    record.label,
    stringArray(record.synonyms, `"synonyms" of ${where}`, source),
    stringArray(record.descriptions, `"descriptions" of ${where}`, source),
  );
}

/**
 * JSON class lists: an array of names and/or `{label, synonyms?, descriptions?}` objects, or an
 * object mapping each label to its descriptions.
 */
export function parseClassesJson(value: unknown, source: string): ClassSpec[] {
  if (Array.isArray(value)) {
    return validateClasses(
      value.map((item, i) => ({ spec: classFromItem(item, `item ${i + 1}`, source), where: `item ${i + 1}` })),
      source,
    );
  }
  if (typeof value === "object" && value !== null) {
    return validateClasses(
      Object.entries(value).map(([label, descriptions]) => ({
        spec: makeClass(label, [], stringArray(descriptions, `the value of "${label}"`, source)),
        where: `key "${label}"`,
      })),
      source,
    );
  }
  throw new ClipOodError("CLASSES", `${source} holds neither a JSON array nor a JSON object of classes`, {
    hint: FORMS_HINT,
  });
}

/**
 * Classes from a file (`.json` → JSON, anything else → the line format) or, when `spec` names no
 * file, from a comma-separated list of plain names. Empty list items (a trailing comma) are skipped.
 */
export async function loadClasses(spec: string): Promise<ClassSpec[]> {
  const text = await readSpecFile(spec, "CLASSES", "class file", FORMS_HINT);
  if (text !== undefined) {
    if (path.extname(spec).toLowerCase() !== ".json") return parseClassesText(text, spec);
    let value: unknown;
    try {
      value = JSON.parse(text.replace(/^\uFEFF/, "")) as unknown;
    } catch (e) {
      throw new ClipOodError("CLASSES", `class file ${spec} is not valid JSON: ${messageOf(e)}`, {
        hint: FORMS_HINT,
        cause: e,
      });
    }
    return parseClassesJson(value, spec);
  }
  if (!spec.includes(",") && looksLikePath(spec)) {
    throw new ClipOodError("CLASSES", `class file ${spec} does not exist`, { hint: FORMS_HINT });
  }
  return parseClassList(spec);
}

/**
 * Classes given inline, never read from a file (what a server accepts from clients): a label-set name
 * (`cifar10`, …), a comma-separated list of names, a JSON array, or the class-file line format when
 * the text has several lines.
 */
export function parseClassList(spec: string | readonly unknown[], source = "the class list"): ClassSpec[] {
  if (typeof spec !== "string") return parseClassesJson(spec, source);
  const text = spec.trim();
  if (text.startsWith("[")) {
    let value: unknown;
    try {
      value = JSON.parse(text) as unknown;
    } catch (e) {
      throw new ClipOodError("CLASSES", `${source} is not a valid JSON array: ${messageOf(e)}`, { hint: FORMS_HINT, cause: e });
    }
    return parseClassesJson(value, source);
  }
  if (/\r?\n/.test(text)) return parseClassesText(text, source);
  const preset = labelSet(text);
  if (preset) return preset.map((name) => makeClass(name, [], []));
  const classes: Located[] = [];
  text.split(",").forEach((item, i) => {
    if (item.trim() !== "") classes.push({ spec: makeClass(item, [], []), where: `position ${i + 1}` });
  });
  return validateClasses(classes, source);
}

/** Every template filled with every name (template-major), then the descriptions; repeats dropped. */
export function classPrompts(spec: ClassSpec, templates: readonly string[]): string[] {
  const filled = templates.flatMap((t) => spec.names.map((n) => fillTemplate(t, n)));
  return [...new Set([...filled, ...spec.descriptions])];
}

/**
 * Verbatim prompts used as extra candidates (the `unknown` method's "none of these" prompts): a file
 * with one prompt per line (# comments and blank lines skipped), or a comma-separated list. Each
 * becomes a candidate whose only prompt is itself, untouched by templates.
 */
export async function loadPromptList(spec: string): Promise<ClassSpec[]> {
  const hint = 'give a file with one prompt per line, or a list like "an unknown object,something else"';
  const text = await readSpecFile(spec, "CLASSES", "prompt file", hint);
  const prompts = (text === undefined ? spec.split(",") : text.split(/\r?\n/).filter((l) => !l.trimStart().startsWith("#")))
    .map((p) => p.trim().normalize("NFC"))
    .filter((p) => p.length > 0);
  if (prompts.length === 0) throw new ClipOodError("CLASSES", `no prompts in "${spec}"`, { hint });
  return verbatimPrompts([...new Set(prompts)]);
}

/** Candidates whose only prompt is the text itself, untouched by templates. */
export function verbatimPrompts(prompts: readonly string[]): ClassSpec[] {
  return prompts.map((p) => ({ label: p, names: [], descriptions: [p] }));
}
