import path from "node:path";
import { ClipOodError, messageOf } from "../errors.js";
import { looksLikePath, readSpecFile } from "./spec-file.js";

/**
 * `imagenet_templates` from OpenAI CLIP's notebooks/Prompt_Engineering_for_ImageNet.ipynb
 * (METHODS.md §1.3), in the notebook's order.
 */
const IMAGENET_80: readonly string[] = [
  "a bad photo of a {}.",
  "a photo of many {}.",
  "a sculpture of a {}.",
  "a photo of the hard to see {}.",
  "a low resolution photo of the {}.",
  "a rendering of a {}.",
  "graffiti of a {}.",
  "a bad photo of the {}.",
  "a cropped photo of the {}.",
  "a tattoo of a {}.",
  "the embroidered {}.",
  "a photo of a hard to see {}.",
  "a bright photo of a {}.",
  "a photo of a clean {}.",
  "a photo of a dirty {}.",
  "a dark photo of the {}.",
  "a drawing of a {}.",
  "a photo of my {}.",
  "the plastic {}.",
  "a photo of the cool {}.",
  "a close-up photo of a {}.",
  "a black and white photo of the {}.",
  "a painting of the {}.",
  "a painting of a {}.",
  "a pixelated photo of the {}.",
  "a sculpture of the {}.",
  "a bright photo of the {}.",
  "a cropped photo of a {}.",
  "a plastic {}.",
  "a photo of the dirty {}.",
  "a jpeg corrupted photo of a {}.",
  "a blurry photo of the {}.",
  "a photo of the {}.",
  "a good photo of the {}.",
  "a rendering of the {}.",
  "a {} in a video game.",
  "a photo of one {}.",
  "a doodle of a {}.",
  "a close-up photo of the {}.",
  "a photo of a {}.",
  "the origami {}.",
  "the {} in a video game.",
  "a sketch of a {}.",
  "a doodle of the {}.",
  "a origami {}.",
  "a low resolution photo of a {}.",
  "the toy {}.",
  "a rendition of the {}.",
  "a photo of the clean {}.",
  "a photo of a large {}.",
  "a rendition of a {}.",
  "a photo of a nice {}.",
  "a photo of a weird {}.",
  "a blurry photo of a {}.",
  "a cartoon {}.",
  "art of a {}.",
  "a sketch of the {}.",
  "a embroidered {}.",
  "a pixelated photo of a {}.",
  "itap of the {}.",
  "a jpeg corrupted photo of the {}.",
  "a good photo of a {}.",
  "a plushie {}.",
  "a photo of the nice {}.",
  "a photo of the small {}.",
  "a photo of the weird {}.",
  "the cartoon {}.",
  "art of the {}.",
  "a drawing of the {}.",
  "a photo of the large {}.",
  "a black and white photo of a {}.",
  "the plushie {}.",
  "a dark photo of a {}.",
  "itap of a {}.",
  "graffiti of the {}.",
  "a toy {}.",
  "itap of my {}.",
  "a photo of a cool {}.",
  "a photo of a small {}.",
  "a tattoo of the {}.",
];

export const TEMPLATE_PRESETS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  // MCM, GL-MCM and EOE's single prompt; their code has no trailing period (METHODS.md §1.3).
  photo: ["a photo of a {}"],
  // The notebook's forward-selected subset, in the notebook's order.
  "clip-7": [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
  ],
  "imagenet-80": IMAGENET_80,
  name: ["{}"],
});

/** The prompt the OOD papers use, so scores are comparable with theirs. */
export const DEFAULT_TEMPLATES = "photo";

const PLACEHOLDER = "{}";

const FORMS_HINT =
  `use a preset (${Object.keys(TEMPLATE_PRESETS).join(", ")}), a file with one template per line ` +
  `(or a JSON array of strings), or a literal template containing {} such as "a blurry photo of a {}."`;

function countPlaceholders(template: string): number {
  return template.split(PLACEHOLDER).length - 1;
}

function checkTemplate(template: string, where: string): string {
  const n = countPlaceholders(template);
  if (n !== 1) {
    throw new ClipOodError(
      "TEMPLATES",
      `template "${template}"${where} has ${n === 0 ? "no" : n} "{}" placeholder${n === 1 ? "" : "s"}; it needs exactly one`,
      { hint: `write the class name's place as {} once, e.g. "a photo of a {}."` },
    );
  }
  return template;
}

function parseTemplateFile(text: string, file: string): string[] {
  const body = text.replace(/^\uFEFF/, "");
  const trimmed = body.trim();
  const looksJson = path.extname(file).toLowerCase() === ".json" || trimmed.startsWith("[");
  if (looksJson) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed) as unknown;
    } catch (e) {
      throw new ClipOodError("TEMPLATES", `template file ${file} is not valid JSON: ${messageOf(e)}`, {
        hint: 'a JSON template file holds an array of strings, e.g. ["a photo of a {}.", "art of the {}."]',
        cause: e,
      });
    }
    if (!Array.isArray(value) || !value.every((v): v is string => typeof v === "string")) {
      throw new ClipOodError("TEMPLATES", `template file ${file} is not a JSON array of strings`, {
        hint: 'write e.g. ["a photo of a {}.", "art of the {}."]',
      });
    }
    return value.map((t, i) => checkTemplate(t.trim(), ` (${file}, item ${i + 1})`));
  }
  const templates: string[] = [];
  body.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t !== "" && !t.startsWith("#")) templates.push(checkTemplate(t, ` (${file}:${i + 1})`));
  });
  return templates;
}

/**
 * Templates from a preset name, a file, or one literal template (checked in that order);
 * `undefined` gives the default preset. Duplicates are dropped, keeping the first.
 */
export async function resolveTemplates(spec: string | undefined): Promise<string[]> {
  if (spec === undefined) return [...TEMPLATE_PRESETS[DEFAULT_TEMPLATES]!];
  const preset = Object.hasOwn(TEMPLATE_PRESETS, spec) ? TEMPLATE_PRESETS[spec] : undefined;
  if (preset) return [...preset];

  const text = await readSpecFile(spec, "TEMPLATES", "template file", FORMS_HINT);
  if (text !== undefined) {
    const templates = [...new Set(parseTemplateFile(text, spec))];
    if (templates.length === 0) {
      throw new ClipOodError("TEMPLATES", `template file ${spec} holds no templates`, { hint: FORMS_HINT });
    }
    return templates;
  }

  if (spec.includes(PLACEHOLDER)) return inlineTemplates(spec);
  // A path-like spec that does not exist is a mistyped file name, not a preset.
  if (looksLikePath(spec)) {
    throw new ClipOodError("TEMPLATES", `template file ${spec} does not exist`, { hint: FORMS_HINT });
  }
  throw new ClipOodError("TEMPLATES", `unknown template preset "${spec}"`, { hint: FORMS_HINT });
}

/**
 * Templates given inline, never read from a file (what a server accepts from clients): a preset name,
 * one literal template with {}, or a list of them.
 */
export function inlineTemplates(spec: string | readonly string[] | undefined): string[] {
  if (spec === undefined || spec === "") return [...TEMPLATE_PRESETS[DEFAULT_TEMPLATES]!];
  if (typeof spec !== "string") {
    if (spec.length === 0) throw new ClipOodError("TEMPLATES", "the template list is empty", { hint: FORMS_HINT });
    return [...new Set(spec.map((t) => checkTemplate(String(t), "")))];
  }
  const preset = Object.hasOwn(TEMPLATE_PRESETS, spec) ? TEMPLATE_PRESETS[spec] : undefined;
  if (preset) return [...preset];
  if (spec.includes(PLACEHOLDER)) return [checkTemplate(spec, "")];
  throw new ClipOodError("TEMPLATES", `unknown template preset "${spec}"`, { hint: FORMS_HINT });
}

/** The prompt for one class name; a function replacer keeps "$&"-like names literal. */
export function fillTemplate(template: string, name: string): string {
  return template.replace(PLACEHOLDER, () => name);
}
