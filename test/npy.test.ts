import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { decodeNpy, encodeNpy, npyParts } from "../src/io/npy.js";
import { ClipOodError } from "../src/errors.js";
import { sharedDir, skipUnlessShared } from "./support/shared.js";

const PREFIX_V1 = "\x93NUMPY\x01\x00";

/** The header bytes of an .npy file: magic, version, little-endian length, then the padded dict text. */
function header(buf: Buffer): { prefix: string; len: number; text: string } {
  const len = buf.readUInt16LE(8);
  return { prefix: buf.toString("latin1", 0, 8), len, text: buf.toString("latin1", 10, 10 + len) };
}

test("encodeNpy writes the header numpy.save writes (2, 3)", () => {
  const buf = encodeNpy(new Float32Array([0, 1, 2, 3, 4, 5]), [2, 3]);
  // Hand-written from the format spec: dict, spaces up to a 64-byte boundary, '\n'. numpy 2.4.6 np.save of a
  // (2, 3) float32 array gives exactly these 128 header bytes (header length 118).
  const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const expectedText = dict + " ".repeat(128 - 10 - dict.length - 1) + "\n";
  const h = header(buf);
  assert.equal(h.prefix, PREFIX_V1);
  assert.equal(h.len, 118);
  assert.equal(h.text, expectedText);
  assert.equal((10 + h.len) % 64, 0);
  assert.equal(buf.length, 128 + 6 * 4);
  assert.deepEqual([...new Float32Array(buf.buffer.slice(buf.byteOffset + 128, buf.byteOffset + buf.length))], [0, 1, 2, 3, 4, 5]);
});

test("encodeNpy: 1-d and 0-d shapes use Python tuple syntax", () => {
  assert.equal(header(encodeNpy(new Float32Array(5), [5])).text.trimEnd(), "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }");
  assert.equal(header(encodeNpy(new Float32Array(1), [])).text.trimEnd(), "{'descr': '<f4', 'fortran_order': False, 'shape': (), }");
});

test("encodeNpy reserves numpy's growth room for the first axis", () => {
  // numpy 2.4.6: np.save(np.zeros((0,)+(100,)*9, np.float32)) has header length 182 (the dict is 101 chars;
  // +20 spaces of growth room push it past the 128-byte boundary).
  const shape = [0, 100, 100, 100, 100, 100, 100, 100, 100, 100];
  const h = header(encodeNpy(new Float32Array(0), shape));
  assert.equal(h.len, 182);
  assert.equal(h.text.trimEnd(), `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}), }`);
  assert.equal(h.text.slice(-2), " \n");
});

test("encodeNpy rejects a shape that does not match the data", () => {
  assert.throws(() => encodeNpy(new Float32Array(5), [2, 3]), RangeError);
});

test("round trip keeps values and shape, including for a subarray view", () => {
  const backing = new Float32Array([9, 1.5, -2.25, 3.4028234663852886e38, -0, 1e-45, 7]);
  const view = backing.subarray(1, 6);
  const { data, shape } = decodeNpy(encodeNpy(view, [5, 1]));
  assert.deepEqual(shape, [5, 1]);
  assert.deepEqual([...data], [...view]);
  assert.ok(Object.is(data[3], -0), "negative zero lost");
});

test("decodeNpy reads a little-endian float64 file written by numpy", () => {
  // Bytes of numpy 2.4.6 np.save(np.array([1.5, -2.25, 1e-3], '<f8')).
  const dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
  const head = Buffer.from(PREFIX_V1 + "\x76\x00" + dict + " ".repeat(118 - dict.length - 1) + "\n", "latin1");
  const body = Buffer.from("000000000000f83f00000000000002c0fca9f1d24d62503f", "hex");
  const { data, shape } = decodeNpy(Buffer.concat([head, body]), "f8.npy");
  assert.deepEqual(shape, [3]);
  assert.deepEqual([...data], [1.5, -2.25, Math.fround(1e-3)]);
});

test("decodeNpy reads a version 2.0 header", () => {
  const v1 = encodeNpy(new Float32Array([1, 2]), [2]);
  const text = v1.subarray(10);
  const v2 = Buffer.concat([Buffer.from(PREFIX_V1.replace("\x01", "\x02"), "latin1"), Buffer.alloc(4), text]);
  v2.writeUInt32LE(v1.readUInt16LE(8), 8);
  assert.deepEqual([...decodeNpy(v2).data], [1, 2]);
});

function assertInputError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ClipOodError, String(e));
    assert.equal(e.code, "INPUT");
    assert.match(e.message, /^bad\.npy: /);
    assert.match(e.message, pattern);
    assert.ok(e.hint, "no hint");
    return true;
  });
}

function withDescr(descr: string, fortran = "False"): Buffer {
  const good = encodeNpy(new Float32Array([1, 2]), [2]);
  const text = good.toString("latin1", 10, 10 + good.readUInt16LE(8)).replace("'<f4'", `'${descr}'`).replace("False", fortran);
  return Buffer.concat([good.subarray(0, 10), Buffer.from(text, "latin1"), good.subarray(10 + good.readUInt16LE(8))]);
}

test("decodeNpy rejects other dtypes, Fortran order, bad magic and truncation with INPUT errors", () => {
  assertInputError(() => decodeNpy(withDescr(">f4"), "bad.npy"), /unsupported dtype '>f4'/);
  assertInputError(() => decodeNpy(withDescr("<i4"), "bad.npy"), /unsupported dtype '<i4'/);
  assertInputError(() => decodeNpy(withDescr("<f4", "True "), "bad.npy"), /Fortran/);
  assertInputError(() => decodeNpy(Buffer.from("PK\x03\x04 not npy at all"), "bad.npy"), /not a \.npy file/);
  const good = encodeNpy(new Float32Array([1, 2, 3]), [3]);
  assertInputError(() => decodeNpy(good.subarray(0, good.length - 2), "bad.npy"), /truncated/);
  assertInputError(() => decodeNpy(good.subarray(0, 50), "bad.npy"), /truncated \.npy header/);
});

test("the reference tensors decode as float32 [3, 224, 224] and re-encode to the same bytes", { skip: skipUnlessShared }, async () => {
  const dir = path.join(sharedDir as string, "reference", "preprocess");
  const names = (await readdir(dir)).filter((n) => n.endsWith(".npy"));
  assert.ok(names.length > 0, "no reference .npy files");
  for (const name of names) {
    const buf = await readFile(path.join(dir, name));
    const { data, shape } = decodeNpy(buf, name);
    assert.deepEqual(shape, [3, 224, 224]);
    assert.equal(data.length, 3 * 224 * 224);
    // These files were written by numpy, so encodeNpy must reproduce them byte for byte.
    assert.ok(encodeNpy(data, shape).equals(buf), `${name}: re-encoded bytes differ`);
  }
});

test("npyParts: the header then views of the data in pieces of at most the piece size, the same bytes as encodeNpy", () => {
  // A bank of gigabytes is written this way: no copy of it, and no call given more than ~2 GiB
  // (one buffer past 2 GiB came out with a header of zeros). Small pieces stand in for 1 GiB here.
  const data = Float32Array.from({ length: 2 * 5 }, (_, i) => i + 0.5);
  const parts = npyParts(data, [2, 5], 12);
  assert.deepEqual(Buffer.concat(parts), encodeNpy(data, [2, 5]));
  const body = parts.slice(1);
  assert.deepEqual(body.map((p) => p.byteLength), [12, 12, 12, 4]);
  assert.ok(body.every((p) => p.buffer === data.buffer), "views of the caller's array, not copies");
  assert.deepEqual(decodeNpy(Buffer.concat(parts)).data, data);
  assert.equal(npyParts(new Float32Array(0), [0, 5]).length, 1, "an empty array is its header alone");
});
