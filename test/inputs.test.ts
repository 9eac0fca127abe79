import { after, before, mock, test } from "node:test";
import assert from "node:assert/strict";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { IMAGE_EXTENSIONS, expandInputs } from "../src/image/inputs.js";

let root: string;
/** Path under the temp root. */
const p = (...parts: string[]): string => path.join(root, ...parts);

before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), "clip-ood-inputs-"));
  // Contents only need to exist: expandInputs never decodes.
  for (const f of [
    "a.jpg",
    "B.PNG",
    "c.webp",
    "notes.txt",
    ".hidden.jpg",
    "weird[1].jpg",
    "sub/d.jpeg",
    "sub/e.gif",
    "sub/z.TIFF",
    "sub/deeper/f.avif",
    "sub/deeper/g.tif",
    ".git/h.jpg",
    "texts/readme.txt",
  ]) {
    await fsp.mkdir(path.dirname(p(f)), { recursive: true });
    await fsp.writeFile(p(f), "x");
  }
  // A link back up the tree: the walk must not loop.
  await fsp.symlink(root, p("sub", "loop"));
});

after(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

const SUB = ["sub/d.jpeg", "sub/deeper/f.avif", "sub/deeper/g.tif", "sub/e.gif", "sub/z.TIFF"];

test("IMAGE_EXTENSIONS lists the decodable formats", () => {
  assert.deepEqual(IMAGE_EXTENSIONS, [".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif"]);
});

test("a folder is listed recursively: image extensions (any case), sorted, hidden entries skipped, links not looped", async () => {
  const { files, problems } = await expandInputs([root]);
  // Byte order: upper case before lower case, "d." before "deeper/" before "e.".
  const expected = ["B.PNG", "a.jpg", "c.webp", ...SUB, "weird[1].jpg"].map((f) => p(f));
  assert.deepEqual(files, expected);
  assert.deepEqual(problems, []);
});

test("the extension filter can be replaced", async () => {
  const { files } = await expandInputs([root], { extensions: [".PNG", ".txt"] });
  assert.deepEqual(files, [p("B.PNG"), p("notes.txt"), p("texts/readme.txt")]);
});

test("a file is taken as-is whatever its extension, and a literal path wins over glob syntax", async () => {
  const { files, problems } = await expandInputs([p("notes.txt"), p("weird[1].jpg")]);
  assert.deepEqual(files, [p("notes.txt"), p("weird[1].jpg")]);
  assert.deepEqual(problems, []);
});

test("globs expand to sorted image files", async () => {
  const { files, problems } = await expandInputs([p("*.jpg"), `${root}/**/*.{gif,tif}`]);
  assert.deepEqual(files, [p("a.jpg"), p("weird[1].jpg"), p("sub/deeper/g.tif"), p("sub/e.gif")]);
  assert.deepEqual(problems, []);
});

test("a glob matching nothing, or nothing that is an image, is a problem and the rest go on", async () => {
  const { files, problems } = await expandInputs([p("*.bmp"), p("texts/*"), p("a.jpg")]);
  assert.deepEqual(files, [p("a.jpg")]);
  assert.equal(problems.length, 2);
  assert.equal(problems[0]?.input, p("*.bmp"));
  assert.match(problems[0]?.reason ?? "", /matched no files/);
  assert.equal(problems[1]?.input, p("texts/*"));
  assert.match(problems[1]?.reason ?? "", /matched 1 file\(s\) but none has an image extension/);
});

test("a missing path is a problem and the rest go on", async () => {
  const { files, problems } = await expandInputs([p("missing.jpg"), p("a.jpg")]);
  assert.deepEqual(files, [p("a.jpg")]);
  assert.deepEqual(problems, [{ input: p("missing.jpg"), reason: "no such file or folder" }]);
});

test('"-" reads newline-separated paths (files or folders) from stdin, once', async () => {
  const stdin = Readable.from([`${p("c.webp")}\n${p("sub")}\r\n\n   \n`, `${p("nope.png")}\n${p("*.jpg")}\n`]);
  const { files, problems } = await expandInputs(["-", p("a.jpg"), "-"], { stdin });
  assert.deepEqual(files, [p("c.webp"), ...SUB.map((f) => p(f)), p("a.jpg")]);
  // Lines are literal paths, not globs.
  assert.deepEqual(
    problems.map((x) => x.input),
    [p("nope.png"), p("*.jpg")],
  );
});

test("duplicates are dropped, first occurrence kept, also across spellings of the same path", async () => {
  const relative = path.relative(process.cwd(), p("c.webp"));
  const { files } = await expandInputs([p("c.webp"), root, relative, p("sub", "..", "a.jpg"), p("*.jpg")]);
  assert.equal(files[0], p("c.webp"));
  assert.equal(files.length, 3 + SUB.length + 1);
  assert.equal(new Set(files.map((f) => path.resolve(f))).size, files.length);
});

test("an unreadable folder is a problem (real permissions)", async (t) => {
  const locked = p("locked");
  await fsp.mkdir(path.join(locked, "inner"), { recursive: true });
  await fsp.writeFile(path.join(locked, "inner", "x.jpg"), "x");
  await fsp.chmod(locked, 0o000);
  try {
    const blocked = await fsp.readdir(locked).then(
      () => false,
      () => true,
    );
    if (!blocked) {
      // root bypasses file modes; the next test covers the same code path through a failing readdir.
      t.skip("running as root: chmod 000 does not block reading");
      return;
    }
    const { files, problems } = await expandInputs([locked, p("a.jpg")]);
    assert.deepEqual(files, [p("a.jpg")]);
    assert.equal(problems.length, 1);
    assert.match(problems[0]?.reason ?? "", /permission denied/);
  } finally {
    await fsp.chmod(locked, 0o755);
    await fsp.rm(locked, { recursive: true });
  }
});

test("a folder whose listing fails with EACCES is a problem; its siblings are still listed", async () => {
  const deeper = p("sub", "deeper");
  const realReaddir = fsp.readdir.bind(fsp);
  // expandInputs calls readdir on the same fs/promises object, so a mock there reaches it.
  const fakeReaddir = async (dir: string, options: { withFileTypes: true }) => {
    if (path.resolve(dir) === deeper) {
      throw Object.assign(new Error(`EACCES: permission denied, scandir '${dir}'`), { code: "EACCES" });
    }
    return realReaddir(dir, options);
  };
  mock.method(fsp, "readdir", fakeReaddir as unknown as typeof fsp.readdir);
  try {
    const { files, problems } = await expandInputs([p("sub")]);
    assert.deepEqual(files, [p("sub/d.jpeg"), p("sub/e.gif"), p("sub/z.TIFF")]);
    assert.deepEqual(problems, [{ input: deeper, reason: "cannot list folder: permission denied" }]);
  } finally {
    mock.restoreAll();
  }
});

test("inside a folder, links to files are listed, links to folders are not, broken links are problems", async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "clip-ood-links-"));
  try {
    await fsp.mkdir(path.join(dir, "real"));
    await fsp.writeFile(path.join(dir, "real", "x.jpg"), "x");
    await fsp.symlink(path.join(dir, "real", "x.jpg"), path.join(dir, "alias.jpg"));
    await fsp.symlink(path.join(dir, "real"), path.join(dir, "linked-folder"));
    await fsp.symlink(path.join(dir, "gone.jpg"), path.join(dir, "broken.jpg"));
    const { files, problems } = await expandInputs([dir]);
    assert.deepEqual(files, [path.join(dir, "alias.jpg"), path.join(dir, "real", "x.jpg")]);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.input, path.join(dir, "broken.jpg"));
    assert.match(problems[0]?.reason ?? "", /broken symbolic link: no such file/);
    // Named explicitly, the linked folder is listed.
    assert.deepEqual((await expandInputs([path.join(dir, "linked-folder")])).files, [path.join(dir, "linked-folder", "x.jpg")]);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a folder that yields no images is a problem marked empty, even beside files that do (issue 17)", async () => {
  // `texts/` holds only readme.txt; `shots.jpg/` is a folder whose name looks like an image.
  await fsp.mkdir(p("shots.jpg"), { recursive: true });
  await fsp.mkdir(p("bare"), { recursive: true });
  try {
    const { files, problems } = await expandInputs([p("a.jpg"), p("shots.jpg"), p("texts"), p("bare")]);
    assert.deepEqual(files, [p("a.jpg")]);
    assert.deepEqual(
      problems.map((x) => [x.input, x.empty]),
      [
        [p("shots.jpg"), true],
        [p("texts"), true],
        [p("bare"), true],
      ],
    );
    assert.match(problems[0]!.reason, /^folder holds no images \(no file in it or below ends in \.jpg \.jpeg .*\.avif\)$/);
    // The extensions named are the ones asked for.
    assert.match((await expandInputs([p("texts")], { extensions: [".bmp"] })).problems[0]!.reason, /ends in \.bmp\)$/);
    // A folder whose images were all listed already is not empty, only de-duplicated.
    assert.deepEqual((await expandInputs([p("sub", "deeper", "f.avif"), p("sub", "deeper")])).problems, []);
    // Folders named on stdin are treated the same way.
    const fromStdin = await expandInputs(["-"], { stdin: Readable.from([`${p("bare")}\n${p("a.jpg")}\n`]) });
    assert.deepEqual([fromStdin.files, fromStdin.problems.map((x) => x.input)], [[p("a.jpg")], [p("bare")]]);
  } finally {
    await fsp.rm(p("shots.jpg"), { recursive: true });
    await fsp.rm(p("bare"), { recursive: true });
  }
});
