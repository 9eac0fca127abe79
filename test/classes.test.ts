import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ClipOodError } from "../src/errors.js";
import { classPrompts, loadClasses, loadPromptList, parseClassesJson, parseClassesText } from "../src/text/classes.js";
import type { ClassSpec } from "../src/text/classes.js";
import { rejectsWithCode, withTempDir } from "./support/assertions.js";

const classesError = (...fragments: string[]) => rejectsWithCode("CLASSES", ...fragments);

const plain = (label: string): ClassSpec => ({ label, names: [label], descriptions: [] });

test("text format: labels, synonyms, descriptions, comments and blank lines", () => {
  const text = [
    "\uFEFF# animals",
    "",
    "  cat = kitty = house cat : a fluffy cat | a tabby cat  ",
    "dog",
    "\t# not a class",
    "kite (bird of prey): a kite: the bird, not the toy |  | a raptor",
    "car=automobile",
    "crane bird:",
  ].join("\r\n");
  assert.deepEqual(parseClassesText(text, "classes.txt"), [
    { label: "cat", names: ["cat", "kitty", "house cat"], descriptions: ["a fluffy cat", "a tabby cat"] },
    plain("dog"),
    // Only the first ':' splits; empty descriptions are dropped.
    { label: "kite (bird of prey)", names: ["kite (bird of prey)"], descriptions: ["a kite: the bird, not the toy", "a raptor"] },
    { label: "car", names: ["car", "automobile"], descriptions: [] },
    plain("crane bird"),
  ]);
});

test("text format: unicode labels are NFC-normalised", () => {
  // "cafe" + U+0301 (combining acute) is the decomposed form of "café" (U+00E9).
  const [c] = parseClassesText("cafe\u0301 = 咖啡馆: un café parisien\n", "x.txt");
  assert.equal(c!.label, "caf\u00e9");
  assert.deepEqual(c!.names, ["caf\u00e9", "咖啡馆"]);
  assert.deepEqual(c!.descriptions, ["un café parisien"]);
  // Composed and decomposed spellings are the same label.
  assert.throws(() => parseClassesText("caf\u00e9\ncafe\u0301\n", "x.txt"), classesError("duplicate", "x.txt:1", "x.txt:2"));
});

test("validation: empty lists, empty labels and duplicates (case-insensitive) are CLASSES errors", () => {
  assert.throws(() => parseClassesText("# only comments\n\n", "empty.txt"), (e: unknown) => {
    classesError("no classes given", "empty.txt")(e);
    assert.ok((e as ClipOodError).hint!.includes("--classes"), "(e as ClipOodError).hint!.includes(\"--classes\")");
    return true;
  });
  assert.throws(() => parseClassesText("cat\n: a fluffy thing\n", "c.txt"), classesError("empty class label", "c.txt:2"));
  assert.throws(() => parseClassesText("cat\n = kitty\n", "c.txt"), classesError("empty class label", "c.txt:2"));
  assert.throws(
    () => parseClassesText("missile\ndog\nsunglasses\nMissile \ncat\nSUNGLASSES: shades\n", "imagenet.txt"),
    (e: unknown) => {
      classesError('"missile" (imagenet.txt:1)', '"Missile" (imagenet.txt:4)', '"sunglasses" (imagenet.txt:3)', '"SUNGLASSES" (imagenet.txt:6)')(e);
      assert.ok(!(e as ClipOodError).message.includes("dog"), "!(e as ClipOodError).message.includes(\"dog\")");
      assert.ok((e as ClipOodError).hint!.includes("synonym"), "(e as ClipOodError).hint!.includes(\"synonym\")");
      return true;
    },
  );
  assert.throws(() => parseClassesJson([], "c.json"), classesError("no classes given", "c.json"));
  assert.throws(() => parseClassesJson(["cat", "Cat"], "c.json"), classesError("duplicate", "item 1", "item 2"));
  assert.throws(() => parseClassesJson({ cat: [], " CAT ": [] }, "c.json"), classesError("duplicate", 'key "cat"', 'key " CAT "'));
  assert.throws(() => parseClassesJson(["cat", "  "], "c.json"), classesError("empty class label", "item 2"));
});

test("JSON forms: names, label→descriptions objects, and class objects", () => {
  assert.deepEqual(parseClassesJson(["cat", " dog "], "a.json"), [plain("cat"), plain("dog")]);
  assert.deepEqual(parseClassesJson({ cat: ["a fluffy cat", "a fluffy cat", "a tabby cat"], dog: [] }, "b.json"), [
    { label: "cat", names: ["cat"], descriptions: ["a fluffy cat", "a tabby cat"] },
    plain("dog"),
  ]);
  assert.deepEqual(
    parseClassesJson([{ label: "cat", synonyms: ["kitty"], descriptions: ["a fluffy cat"] }, { label: "dog" }, "car"], "c.json"),
    [{ label: "cat", names: ["cat", "kitty"], descriptions: ["a fluffy cat"] }, plain("dog"), plain("car")],
  );
});

test("JSON forms: malformed values name the item and the file", () => {
  assert.throws(() => parseClassesJson("cat", "s.json"), classesError("s.json", "neither"));
  assert.throws(() => parseClassesJson(null, "s.json"), classesError("s.json"));
  assert.throws(() => parseClassesJson([42], "n.json"), classesError("item 1", "n.json"));
  assert.throws(() => parseClassesJson([{ synonyms: ["x"] }], "o.json"), classesError("item 1", '"label"'));
  assert.throws(() => parseClassesJson([{ label: "cat", synonym: ["kitty"] }], "o.json"), classesError("item 1", '"synonym"'));
  assert.throws(() => parseClassesJson([{ label: "cat", synonyms: "kitty" }], "o.json"), classesError('"synonyms" of item 1', "array of strings"));
  assert.throws(() => parseClassesJson({ cat: "a fluffy cat" }, "m.json"), classesError('"cat"', "array of strings"));
});

test("loadClasses: comma lists, text files, JSON files and their errors", async () => {
  assert.deepEqual(await loadClasses(" cat, dog ,car,"), [plain("cat"), plain("dog"), plain("car")]);
  assert.deepEqual(await loadClasses("crane bird"), [plain("crane bird")]);
  await assert.rejects(loadClasses("cat,dog,Cat"), classesError("duplicate", "position 1", "position 3"));
  await assert.rejects(loadClasses(" , "), classesError("no classes given"));
  await assert.rejects(loadClasses("missing/classes.txt"), classesError("missing/classes.txt", "does not exist"));

  await withTempDir(async (dir) => {
    const txt = path.join(dir, "classes.txt");
    await writeFile(txt, "cat = kitty: a fluffy cat\ndog\n");
    assert.deepEqual(await loadClasses(txt), [
      { label: "cat", names: ["cat", "kitty"], descriptions: ["a fluffy cat"] },
      plain("dog"),
    ]);

    const json = path.join(dir, "classes.json");
    await writeFile(json, "\uFEFF" + JSON.stringify({ cat: ["a fluffy cat"], dog: [] }));
    assert.deepEqual(await loadClasses(json), [{ label: "cat", names: ["cat"], descriptions: ["a fluffy cat"] }, plain("dog")]);

    const broken = path.join(dir, "broken.json");
    await writeFile(broken, '["cat", ');
    await assert.rejects(loadClasses(broken), classesError(broken, "not valid JSON"));

    const dupes = path.join(dir, "dupes.txt");
    await writeFile(dupes, "cat\ndog\nCAT\n");
    await assert.rejects(loadClasses(dupes), classesError(`${dupes}:1`, `${dupes}:3`));

    const sub = path.join(dir, "folder");
    await mkdir(sub);
    await assert.rejects(loadClasses(sub), classesError(sub, "directory"));
  }, "clip-ood-classes-");
});

test("classPrompts: every template with every name, then the descriptions, without repeats", () => {
  const cat: ClassSpec = { label: "cat", names: ["cat", "kitty"], descriptions: ["a fluffy cat", "a photo of a cat"] };
  assert.deepEqual(classPrompts(cat, ["a photo of a {}", "art of the {}."]), [
    "a photo of a cat",
    "a photo of a kitty",
    "art of the cat.",
    "art of the kitty.",
    "a fluffy cat",
  ]);
  assert.deepEqual(classPrompts(plain("dog"), ["{}"]), ["dog"]);
  assert.deepEqual(classPrompts(plain("dog"), []), []);
  // Synonyms that collide after filling appear once.
  assert.deepEqual(classPrompts({ label: "x", names: ["x"], descriptions: ["x"] }, ["{}"]), ["x"]);
});

test("loadPromptList: verbatim prompts from a list or a file, untouched by templates", async () => {
  const list = await loadPromptList(" an unknown object , something else,an unknown object");
  assert.deepEqual(list, [
    { label: "an unknown object", names: [], descriptions: ["an unknown object"] },
    { label: "something else", names: [], descriptions: ["something else"] },
  ]);
  assert.deepEqual(classPrompts(list[0]!, ["a photo of a {}"]), ["an unknown object"]);
  await withTempDir(async (dir) => {
    const file = path.join(dir, "unknown.txt");
    await writeFile(file, "# header\nnone of these, really\n\n  a strange thing  \n");
    assert.deepEqual((await loadPromptList(file)).map((c) => c.label), ["none of these, really", "a strange thing"]);
    const empty = path.join(dir, "empty.txt");
    await writeFile(empty, "# nothing\n");
    await assert.rejects(loadPromptList(empty), rejectsWithCode("CLASSES", "no prompts"));
  });
  await assert.rejects(loadPromptList(" , "), rejectsWithCode("CLASSES", "no prompts"));
});

test("label sets: cifar10 and cifar100 by name, in label-index order", async () => {
  const c10 = await loadClasses("cifar10");
  assert.deepEqual(c10.map((c) => c.label), ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]);
  const c100 = await loadClasses("CIFAR100");
  assert.equal(c100.length, 100);
  assert.equal(new Set(c100.map((c) => c.label)).size, 100);
  // Spot checks against the dataset's fine_label_names: index 0, 1 (underscore → space), 58, 99.
  assert.deepEqual([0, 1, 58, 99].map((i) => c100[i]!.label), ["apple", "aquarium fish", "pickup truck", "worm"]);
  // A list that merely contains a set's name is still a list.
  assert.deepEqual((await loadClasses("cifar10,dog")).map((c) => c.label), ["cifar10", "dog"]);
});

test("label set imagenet1k: 1,000 distinct names in class-index order", async () => {
  const c = await loadClasses("imagenet1k");
  assert.equal(c.length, 1000);
  assert.equal(new Set(c.map((x) => x.label.toLowerCase())).size, 1000);
  // ILSVRC-2012 index order (synsets n01440764 tench … n15075141 toilet tissue); disambiguated repeats.
  assert.deepEqual([0, 1, 134, 517, 999].map((i) => c[i]!.label), ["tench", "goldfish", "crane bird", "construction crane", "toilet tissue"]);
});
