import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ClipOodError } from "../src/errors.js";
import { DEFAULT_TEMPLATES, TEMPLATE_PRESETS, fillTemplate, resolveTemplates } from "../src/text/templates.js";
import { rejectsWithCode, withTempDir } from "./support/assertions.js";

const templatesError = (...fragments: string[]) => rejectsWithCode("TEMPLATES", ...fragments);

test("presets: the MCM default, the notebook's 80 and its 7-template subset, the bare name", () => {
  // METHODS.md §1.3: MCM/GL-MCM/EOE use "a photo of a {c}" with no trailing period.
  assert.equal(DEFAULT_TEMPLATES, "photo");
  assert.deepEqual(TEMPLATE_PRESETS.photo, ["a photo of a {}"]);
  assert.deepEqual(TEMPLATE_PRESETS.name, ["{}"]);

  const all80 = TEMPLATE_PRESETS["imagenet-80"]!;
  assert.equal(all80.length, 80);
  assert.equal(new Set(all80).size, 80);
  // First and last entries as quoted in METHODS.md §1.3.
  assert.equal(all80[0], "a bad photo of a {}.");
  assert.equal(all80[79], "a tattoo of the {}.");

  // The forward-selected subset as listed in METHODS.md §1.3.
  const seven = TEMPLATE_PRESETS["clip-7"]!;
  assert.deepEqual(seven, [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
  ]);
  for (const t of seven) assert.ok(all80.includes(t), `${t} is not among the 80`);

  for (const [name, templates] of Object.entries(TEMPLATE_PRESETS)) {
    for (const t of templates) assert.equal(t.split("{}").length, 2, `${name}: ${t}`);
  }
});

test("resolveTemplates: default, preset names and literal templates", async () => {
  assert.deepEqual(await resolveTemplates(undefined), ["a photo of a {}"]);
  assert.deepEqual(await resolveTemplates("clip-7"), TEMPLATE_PRESETS["clip-7"]);
  assert.equal((await resolveTemplates("imagenet-80")).length, 80);
  assert.deepEqual(await resolveTemplates("name"), ["{}"]);
  assert.deepEqual(await resolveTemplates("a blurry photo of a {}."), ["a blurry photo of a {}."]);
  // Returned arrays are copies: callers cannot corrupt the presets.
  const copy = await resolveTemplates("photo");
  copy.push("x {}");
  assert.deepEqual(TEMPLATE_PRESETS.photo, ["a photo of a {}"]);
});

test("resolveTemplates: unknown names, path-like names and bad literals fail with TEMPLATES errors", async () => {
  await assert.rejects(resolveTemplates("fancy"), (e: unknown) => {
    templatesError('unknown template preset "fancy"')(e);
    const hint = (e as ClipOodError).hint!;
    for (const preset of Object.keys(TEMPLATE_PRESETS)) assert.ok(hint.includes(preset), `hint lacks ${preset}`);
    assert.ok(hint.includes("{}") && hint.includes("file"), "hint.includes(\"{}\") && hint.includes(\"file\")");
    return true;
  });
  // Inherited object keys are not presets.
  await assert.rejects(resolveTemplates("toString"), templatesError('unknown template preset "toString"'));
  await assert.rejects(resolveTemplates("no/such/templates.txt"), templatesError("no/such/templates.txt", "does not exist"));
  await assert.rejects(resolveTemplates("{} and {}"), templatesError('"{} and {}"', "2"));
});

test("resolveTemplates: text files skip blanks and comments; JSON arrays work too", async () => {
  await withTempDir(async (dir) => {
    const txt = path.join(dir, "mine.txt");
    await writeFile(txt, "\uFEFF# my templates\r\n\r\n  a photo of a {}.  \r\nart of the {}.\n# done\na photo of a {}.\n");
    assert.deepEqual(await resolveTemplates(txt), ["a photo of a {}.", "art of the {}."]);

    const json = path.join(dir, "mine.json");
    await writeFile(json, JSON.stringify(["itap of a {}.", "a toy {}."]));
    assert.deepEqual(await resolveTemplates(json), ["itap of a {}.", "a toy {}."]);

    // A JSON array in a file without the .json extension.
    const list = path.join(dir, "list");
    await writeFile(list, ' ["{} in the wild"] ');
    assert.deepEqual(await resolveTemplates(list), ["{} in the wild"]);
  }, "clip-ood-templates-");
});

test("resolveTemplates: broken files name the file and the template at fault", async () => {
  await withTempDir(async (dir) => {
    const noSlot = path.join(dir, "bad.txt");
    await writeFile(noSlot, "a photo of a {}.\na photo of something\n");
    await assert.rejects(resolveTemplates(noSlot), templatesError('"a photo of something"', `${noSlot}:2`, "no"));

    const twoSlots = path.join(dir, "two.json");
    await writeFile(twoSlots, JSON.stringify(["a {} and a {}"]));
    await assert.rejects(resolveTemplates(twoSlots), templatesError('"a {} and a {}"', "item 1"));

    const notJson = path.join(dir, "broken.json");
    await writeFile(notJson, '["a photo of a {}",');
    await assert.rejects(resolveTemplates(notJson), templatesError(notJson, "not valid JSON"));

    const notStrings = path.join(dir, "numbers.json");
    await writeFile(notStrings, "[1, 2]");
    await assert.rejects(resolveTemplates(notStrings), templatesError(notStrings, "array of strings"));

    const empty = path.join(dir, "empty.txt");
    await writeFile(empty, "# nothing here\n\n");
    await assert.rejects(resolveTemplates(empty), templatesError(empty, "no templates"));

    const sub = path.join(dir, "folder");
    await mkdir(sub);
    await assert.rejects(resolveTemplates(sub), templatesError(sub, "directory"));
  }, "clip-ood-templates-");
});

test("fillTemplate puts the name in place of {} literally", () => {
  assert.equal(fillTemplate("a photo of a {}", "cat"), "a photo of a cat");
  assert.equal(fillTemplate("{}", "kite (bird of prey)"), "kite (bird of prey)");
  assert.equal(fillTemplate("a {} in a video game.", "crème brûlée"), "a crème brûlée in a video game.");
  // "$&" would expand under String.replace with a string replacement.
  assert.equal(fillTemplate("a photo of a {}", "$& $1"), "a photo of a $& $1");
});
