/**
 * The CLI's table writer and count wording (src/cli/output.ts).
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { columnWidths, plural, rowWriter, widest } from "../src/cli/output.js";

test("plural: a count with its noun in the right number", () => {
  assert.equal(plural(1, "class", "classes"), "1 class");
  assert.equal(plural(0, "class", "classes"), "0 classes");
  assert.equal(plural(2, "batch", "batches"), "2 batches");
  assert.equal(plural(1, "embedding"), "1 embedding");
  assert.equal(plural(3, "embedding"), "3 embeddings");
});

test("a table sized by columnWidths keeps every column aligned, and no cell is cut", () => {
  const header = ["input", "threshold", "n"];
  const rows = [
    ["/a/very/long/path/that/goes/on/and/on/and/on/and/on/beyond/forty-eight/characters/img.png", "-2.43508e-8", "48"],
    ["b.png", "0.334040", "1234"],
  ];
  const out = new PassThrough();
  const w = rowWriter("table", out, header, columnWidths([header, ...rows]));
  for (const r of rows) w.row(r, {});
  const lines = String(out.read()).trimEnd().split("\n");
  assert.equal(lines.length, 3);
  assert.ok(lines[1]!.startsWith(rows[0]![0]! + "  "), "the long path whole");
  for (const line of lines) {
    assert.equal(line.indexOf(line.split(/\s{2,}/)[1]!), lines[0]!.indexOf("threshold"), line);
    assert.equal(line.lastIndexOf(line.split(/\s{2,}/)[2]!), lines[0]!.lastIndexOf("n"), line);
  }
});

test("widest: the longest cell, at least the minimum, even over a folder of 300,000 paths", () => {
  assert.equal(widest([], 5), 5);
  assert.equal(widest(["ab", "abcdefg", "abc"], 5), 7);
  assert.equal(widest(["ab"], 5), 5);
  // Math.max(...paths) throws RangeError at this size: the table width must not.
  const paths = Array.from({ length: 300_000 }, (_, i) => `photos/${i}.jpg`);
  assert.equal(widest(paths), "photos/299999.jpg".length);
});
