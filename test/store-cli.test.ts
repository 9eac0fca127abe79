/**
 * The embedding store from the CLI on a generated model: incremental indexing (add, modify, move,
 * delete), crash safety under SIGKILL, search by text, image and arithmetic, export and maintenance.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cp, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import { decodeNpy } from "../src/io/npy.js";
import type { CachedEmbeddingResult } from "../src/index.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { jsonLines, runCli } from "./support/cli.js";
import { writeOldStore } from "./support/old-store.js";
import { makeImages, makeModel, tempDir } from "./support/model.js";
import type { WorldImage } from "./support/model.js";
import { repoRoot } from "./support/shared.js";
import { skipUnlessPostgres, startPostgres } from "./support/postgres.js";
import type { PostgresServer } from "./support/postgres.js";

let model: string;
let cache: string;
let imgs: WorldImage[];

let server: PostgresServer | undefined;
after(async () => {
  await server?.stop();
});

before(async () => {
  if (!skipUnlessPostgres) server = await startPostgres();
  model = await makeModel();
  cache = await tempDir();
  imgs = await makeImages(["red", "green", "blue", "yellow", "purple", "white"].map((colour) => ({ colour, texture: "plain" as const })), 71);
});

const common = (store: string) => ["--model", model, "--cache-dir", cache, "--store", store, "--threads", "1", "--quiet"];

async function indexed(folder: string, store: string): Promise<Record<string, number | string>> {
  const r = await runCli(["index", folder, "--json", ...common(store)]);
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  return jsonLines(r.stdout)[0] as Record<string, number | string>;
}

test("index is incremental: unchanged files are skipped, moved ones recognised, modified ones re-embedded, deleted ones forgotten", async () => {
  const dir = await tempDir();
  const folder = path.join(dir, "photos");
  await mkdir(folder);
  for (const img of imgs.slice(0, 4)) await cp(img.file, path.join(folder, path.basename(img.file)));
  const store = path.join(dir, "s.sqlite");
  assert.deepEqual([(await indexed(folder, store))["embedded"], (await indexed(folder, store))["alreadyStored"]], [4, 4]);

  const [a, b, c] = imgs.slice(0, 3).map((i) => path.join(folder, path.basename(i.file)));
  await rename(a!, path.join(folder, "moved.png"));
  await writeFile(b!, await readFile(imgs[5]!.file));
  await rm(c!);
  const s = await indexed(folder, store);
  // moved: same content, no new embedding; modified: one new; deleted: forgotten (and the moved file's old path).
  assert.deepEqual([s["files"], s["embedded"], s["alreadyStored"], s["forgotten"]], [3, 1, 2, 2]);
  const stats = JSON.parse((await runCli(["store", "stats", "--store", store])).stdout) as { paths: number; embeddings: number };
  assert.equal(stats.paths, 3);
  // --json, as every other command takes it: the same object on one line.
  const line = await runCli(["store", "stats", "--json", "--store", store]);
  assert.equal(line.code, 0, line.stderr);
  assert.deepEqual(jsonLines(line.stdout), [stats]);
  const pruned = await runCli(["store", "prune", "--json", "--store", store]);
  assert.equal(pruned.code, 0, pruned.stderr);
  const [removed, after] = jsonLines(pruned.stdout);
  assert.deepEqual(removed, { removed: { paths: 0, embeddings: 2 } }, "the two embeddings no path refers to any more");
  assert.equal(after!["embeddings"], 3);
  assert.equal(pruned.stdout.trimEnd().split("\n").length, 2);
});

test("search: text ranks the image showing it first; image queries, arithmetic, --in, --json and --paths", async () => {
  const dir = await tempDir();
  const store = path.join(dir, "s.sqlite");
  const folder = path.dirname(imgs[0]!.file);
  assert.equal((await indexed(folder, store))["embedded"], imgs.length);
  for (const img of imgs) {
    const r = await runCli(["search", "a photo of a", img.colour, "--top", "3", "--json", ...common(store)]);
    assert.equal(r.code, 0, r.stderr);
    const rows = jsonLines(r.stdout);
    assert.deepEqual(Object.keys(rows[0]!), ["input", "score", "paths"]);
    assert.equal(rows[0]!["input"], img.file, `"${img.colour}" → ${JSON.stringify(rows)}`);
    assert.ok((rows[0]!["score"] as number) >= (rows[1]!["score"] as number), "best first");
  }
  const byImage = jsonLines((await runCli(["search", "--image", imgs[2]!.file, "--top", "1", "--json", ...common(store)])).stdout);
  assert.equal(byImage[0]!["input"], imgs[2]!.file);
  const arithmetic = jsonLines((await runCli(["search", "a photo of a red", "--subtract", "red", "--add", "blue", "--top", "1", "--json", ...common(store)])).stdout);
  assert.equal(arithmetic[0]!["input"], imgs[2]!.file, "red − red + blue = blue");
  const paths = (await runCli(["search", "green", "--paths", "--top", "2", ...common(store)])).stdout.trim().split("\n");
  assert.equal(paths[0], imgs[1]!.file);
  assert.equal(paths.length, 2);
  const elsewhere = await runCli(["search", "green", "--in", dir, "--json", ...common(store)]);
  assert.equal(jsonLines(elsewhere.stdout).length, 0);
  // A deleted file drops out of the results without re-indexing.
  const extra = path.join(dir, "copy-of-green.png");
  await cp(imgs[1]!.file, extra);
  await indexed(extra, store);
  await rm(extra);
  const after = jsonLines((await runCli(["search", "green", "--top", "2", "--json", ...common(store)])).stdout).map((x) => x["input"]);
  assert.ok(!after.includes(extra), JSON.stringify(after));
});

test("search and export cover the folders given to index, one result per content with its paths; --all covers what detect and the rest stored on the way", async () => {
  const dir = await tempDir();
  const store = path.join(dir, "s.sqlite");
  const photos = path.join(dir, "photos");
  const fit = path.join(dir, "fit");
  const [red, green, blue, yellow] = imgs;
  // The photos hold green twice (a copy in a subfolder); the fit folder holds a third copy of it.
  await mkdir(path.join(photos, "b"), { recursive: true });
  await mkdir(fit);
  for (const [img, to] of [[red!, path.join(photos, "red.png")], [green!, path.join(photos, "a-green.png")], [green!, path.join(photos, "b", "green.png")], [green!, path.join(fit, "green.png")], [blue!, path.join(fit, "blue.png")], [yellow!, path.join(fit, "yellow.png")]] as const) {
    await cp(img.file, to);
  }
  // Embedded on the way (the fit folder of a detector): before any index, search says how to start.
  assert.equal((await runCli(["embed", fit, "--out", path.join(dir, "fit.jsonl"), ...common(store)])).code, 0);
  const none = await runCli(["search", "blue", ...common(store)]);
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /nothing has been indexed for .* in .*s\.sqlite/);
  assert.match(none.stderr, /clip-ood index <folder>.*--all/s);
  assert.equal(none.stdout, "");

  await indexed(photos, store);
  const stats = JSON.parse((await runCli(["store", "stats", "--store", store])).stdout) as { models: { indexed: unknown }[] };
  assert.deepEqual(stats.models.map((m) => m.indexed), [{ folders: [photos], files: 0 }], "store stats names the indexed folder");
  const search = async (...args: string[]) => {
    const r = await runCli(["search", "green", "--top", "10", "--json", ...args, ...common(store)]);
    assert.equal(r.code, 0, r.stderr);
    return jsonLines(r.stdout) as { input: string; score: number; paths: string[] }[];
  };
  const indexedOnly = await search();
  assert.deepEqual(indexedOnly.map((r) => r.paths), [[path.join(photos, "a-green.png"), path.join(photos, "b", "green.png")], [path.join(photos, "red.png")]], "the photos only, green once with both its paths");
  assert.equal(indexedOnly[0]!.input, path.join(photos, "a-green.png"), "the first path in path order is shown");
  const table = await runCli(["search", "green", ...common(store)]);
  assert.match(table.stdout, /^input\s+score\s+copies$/m);
  assert.match(table.stdout, /a-green\.png\s+\d\.\d+\s+\+1$/m);

  const everything = await search("--all");
  assert.deepEqual(everything[0]!.paths, [path.join(fit, "green.png"), path.join(photos, "a-green.png"), path.join(photos, "b", "green.png")].sort(), "every path of green, once");
  assert.deepEqual(everything.map((r) => path.basename(r.input)).sort(), ["blue.png", "green.png", "red.png", "yellow.png"], "one result per content");
  // A folder named is searched whatever stored its images; only its own paths are listed.
  const inFit = await search("--in", fit);
  assert.deepEqual(inFit.map((r) => path.basename(r.input)).sort(), ["blue.png", "green.png", "yellow.png"]);
  assert.ok(inFit.every((r) => r.paths.length === 1 && r.input.startsWith(fit + path.sep)), JSON.stringify(inFit));

  const jsonl = path.join(dir, "photos.jsonl");
  assert.equal((await runCli(["export", "--out", jsonl, ...common(store)])).code, 0);
  const rows = jsonLines(await readFile(jsonl, "utf8")) as { input: string; paths: string[]; embedding: number[] }[];
  assert.deepEqual(rows.map((r) => r.paths), [[path.join(photos, "a-green.png"), path.join(photos, "b", "green.png")], [path.join(photos, "red.png")]]);
  assert.equal(rows[0]!.input, path.join(photos, "a-green.png"));
  const npy = path.join(dir, "all.npy");
  assert.equal((await runCli(["export", "--all", "--out", npy, ...common(store)])).code, 0);
  assert.deepEqual(decodeNpy(await readFile(npy)).shape, [4, 64], "one row per content");
  const sidecar = JSON.parse(await readFile(`${npy}.json`, "utf8")) as { rows: { input: string; paths: string[] }[] };
  assert.equal(sidecar.rows.find((r) => r.paths.length === 3)?.input, path.join(fit, "green.png"));
});

test("export writes the stored embeddings as .npy with a sidecar and as JSON Lines; store prune and vacuum", async () => {
  const dir = await tempDir();
  const store = path.join(dir, "s.sqlite");
  await indexed(path.dirname(imgs[0]!.file), store);
  const npy = path.join(dir, "all.npy");
  assert.equal((await runCli(["export", "--out", npy, ...common(store)])).code, 0);
  const { shape } = decodeNpy(await readFile(npy));
  assert.deepEqual(shape, [imgs.length, 64]);
  const sidecar = JSON.parse(await readFile(`${npy}.json`, "utf8")) as { rows: { input: string }[] };
  assert.deepEqual(sidecar.rows.map((r) => r.input).sort(), imgs.map((i) => i.file).sort());
  const jsonl = path.join(dir, "all.jsonl");
  assert.equal((await runCli(["export", "--out", jsonl, ...common(store)])).code, 0);
  assert.equal(jsonLines(await readFile(jsonl, "utf8")).length, imgs.length);
  assert.equal((await runCli(["store", "prune", "--store", store])).code, 0);
  assert.equal((await runCli(["store", "vacuum", "--store", store])).code, 0);
});

test("indexing killed with SIGKILL loses at most the batch in flight; the rerun finishes without duplicates", async () => {
  const dir = await tempDir();
  const many = await makeImages(Array.from({ length: 48 }, (_, i) => ({ colour: ["red", "green", "blue", "pink"][i % 4]!, texture: "striped" as const })), 81);
  const folder = path.dirname(many[0]!.file);
  const store = path.join(dir, "s.sqlite");
  const child = spawn(process.execPath, [path.join(repoRoot, "dist", "cli", "main.js"), "index", folder, ...common(store), "--batch-size", "4"], { stdio: "ignore" });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  let seen = 0;
  for (let i = 0; i < 400 && seen === 0; i++) {
    await sleep(25);
    try {
      const s = SqliteStore.open(store, { readonly: true });
      seen = (await s.stats()).embeddings;
      await s.close();
    } catch {
      // not created yet
    }
  }
  child.kill("SIGKILL");
  await exited;
  const mid = SqliteStore.open(store, { readonly: true });
  const partial = (await mid.stats()).embeddings;
  await mid.close();
  assert.ok(partial > 0 && partial <= many.length, `after the kill: ${partial}`);
  const s = await indexed(folder, store);
  assert.equal(Number(s["embedded"]) + Number(s["alreadyStored"]), many.length);
  const final = JSON.parse((await runCli(["store", "stats", "--store", store])).stdout) as { paths: number; embeddings: number };
  assert.deepEqual([final.paths, final.embeddings], [many.length, many.length]);
});

test("store bad input: not an SQLite file, --no-store for store commands", async () => {
  const dir = await tempDir();
  const bogus = path.join(dir, "bogus.sqlite");
  await writeFile(bogus, "hello, not a database\n");
  const r = await runCli(["index", path.dirname(imgs[0]!.file), ...common(bogus)]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /not a clip-ood store/);
  const off = await runCli(["search", "red", "--no-store", "--model", model, "--cache-dir", cache]);
  assert.equal(off.code, 2);
  assert.match(off.stderr, /--no-store/);
});

test("search above --ann-threshold uses the HNSW index beside the store and ranks like exact search", async () => {
  const dir = await tempDir();
  const store = path.join(dir, "s.sqlite");
  await indexed(path.dirname(imgs[0]!.file), store);
  for (const img of imgs) {
    const exact = jsonLines((await runCli(["search", img.colour, "--top", "3", "--json", ...common(store)])).stdout);
    const ann = jsonLines((await runCli(["search", img.colour, "--top", "3", "--json", "--ann-threshold", "1", ...common(store)])).stdout);
    assert.deepEqual(ann.map((x) => x["input"]), exact.map((x) => x["input"]), img.colour);
    ann.forEach((x, i) => assert.ok(Math.abs((x["score"] as number) - (exact[i]!["score"] as number)) < 1e-5, "cosine scores"));
  }
  const files = (await import("node:fs")).readdirSync(dir);
  assert.ok(files.some((f) => f.endsWith(".usearch")), files.join(", "));
});

test("index prebuilds the HNSW index above --ann-threshold, and a search restricted with --in reuses it", async () => {
  const dir = await tempDir();
  const store = path.join(dir, "s.sqlite");
  const folder = path.join(dir, "photos");
  const { copyFileSync, mkdirSync, readdirSync, statSync } = await import("node:fs");
  imgs.forEach((img, i) => {
    const to = path.join(folder, i % 2 === 0 ? "even" : "odd");
    mkdirSync(to, { recursive: true });
    copyFileSync(img.file, path.join(to, path.basename(img.file)));
  });
  const first = await runCli(["index", folder, "--json", "--ann-threshold", "1", ...common(store)]);
  assert.equal(first.code, 0, first.stderr);
  const summary = JSON.parse(first.stdout) as Record<string, unknown>;
  assert.equal(summary["annIndex"], true, JSON.stringify(summary));
  const annFile = readdirSync(dir).find((f) => f.endsWith(".usearch"));
  assert.ok(annFile, readdirSync(dir).join(", "));
  const built = statSync(path.join(dir, annFile)).mtimeMs;
  const sub = path.join(folder, "odd");
  // The query names an image in the other folder: restricted, it must not come back.
  const exact = jsonLines((await runCli(["search", imgs[0]!.colour, "--top", "2", "--json", "--in", sub, ...common(store)])).stdout);
  assert.equal(exact.length, 2, "two hits under --in");
  const ann = jsonLines((await runCli(["search", imgs[0]!.colour, "--top", "2", "--json", "--in", sub, "--ann-threshold", "1", ...common(store)])).stdout);
  assert.deepEqual(ann.map((x) => x["input"]), exact.map((x) => x["input"]), "the same hits under --in");
  ann.forEach((x, i) => assert.ok(Math.abs((x["score"] as number) - (exact[i]!["score"] as number)) < 1e-5, "cosine scores"));
  assert.ok(ann.every((x) => String(x["input"]).startsWith(sub)), "hits stay under the folder");
  assert.equal(statSync(path.join(dir, annFile)).mtimeMs, built, "the prebuilt index was reused, not rebuilt");
  // store stats shows the index kept for the model: what it holds and the width its self-check set
  // (a graph this small is searched whole).
  const stats = JSON.parse((await runCli(["store", "stats", "--json", "--store", store])).stdout) as { models: { annIndex: Record<string, unknown> | null }[] };
  const annIndex = stats.models[0]?.annIndex;
  assert.deepEqual([annIndex?.["contents"], annIndex?.["width"], annIndex?.["recallTarget"], annIndex?.["widthReached"]], [imgs.length, imgs.length, 0.98, true], JSON.stringify(annIndex));
  const small = JSON.parse((await runCli(["index", folder, "--json", ...common(store)])).stdout) as Record<string, unknown>;
  assert.equal(small["annIndex"], false, "below the default threshold no index is needed");
});

test("library: embedWithStore fills the store, search ranks by text, a second pass reads the store only", async () => {
  const lib = await import("../src/index.js");
  const dir = await tempDir();
  const store = await lib.openEmbeddingStore(path.join(dir, "lib.sqlite"));
  const clip = await lib.ClipModel.load({ model, cacheDir: cache, threads: 1 });
  try {
    const files = imgs.map((i) => i.file);
    const first: CachedEmbeddingResult[] = [];
    for await (const r of lib.embedWithStore(clip, store, files)) first.push(r);
    assert.deepEqual(first.map((r) => r.cached), files.map(() => false), "first pass embeds");
    const second = [];
    for await (const r of lib.embedWithStore(clip, store, files)) second.push(r);
    assert.deepEqual(second.map((r) => r.cached), files.map(() => true), "second pass is served by the store");
    second.forEach((r, i) => assert.deepEqual(r.embedding, first[i]!.embedding, r.input));
    for (const img of imgs) {
      // embedWithStore stores on the way, as detect does: only --all (or roots given to index) covers it.
      const [best] = await lib.search(clip, store, { text: [img.colour] }, { top: 1, all: true });
      assert.equal(best?.input, path.resolve(img.file), img.colour);
    }
  } finally {
    await store.close();
    await clip.close();
  }
});

test("library: a search restricted to a folder through the HNSW index reads the model's rows once", async () => {
  const lib = await import("../src/index.js");
  const store = await lib.openEmbeddingStore(path.join(await tempDir(), "lib.sqlite"));
  const clip = await lib.ClipModel.load({ model, cacheDir: cache, threads: 1 });
  try {
    for await (const r of lib.embedWithStore(clip, store, imgs.map((i) => i.file))) assert.ok(r.embedding, r.input);
    let reads = 0;
    const counting = new Proxy(store, {
      get(target, name) {
        const v = Reflect.get(target, name) as unknown;
        if (typeof v !== "function") return v;
        const f = (v as (...a: unknown[]) => unknown).bind(target);
        return name === "embeddingsFor" ? (...a: unknown[]) => (reads++, f(...a)) : f;
      },
    });
    const under = path.dirname(imgs[0]!.file);
    const [best] = await lib.search(clip, counting, { text: [imgs[0]!.colour] }, { top: 1, under, annThreshold: 1 });
    assert.equal(best?.input, path.resolve(imgs[0]!.file));
    assert.equal(reads, 1, "one read of the rows, filtered to the folder in memory");
  } finally {
    await store.close();
    await clip.close();
  }
});

test("library: a store written by an older clip-ood (schema 2) is migrated on opening and searched as a new one, exactly and through the HNSW index", async () => {
  const lib = await import("../src/index.js");
  const dir = await tempDir();
  const clip = await lib.ClipModel.load({ model, cacheDir: cache, threads: 1 });
  const fresh = await lib.openEmbeddingStore(path.join(dir, "new.sqlite"));
  const oldFile = path.join(dir, "old.sqlite");
  try {
    for await (const r of lib.embedWithStore(clip, fresh, imgs.map((i) => i.file))) assert.ok(r.embedding, r.input);
    const modelKey = (await fresh.stats()).models[0]!.modelKey;
    const rows = await fresh.embeddingsFor(modelKey);
    writeOldStore(
      oldFile,
      2,
      await Promise.all(
        rows.paths.map(async (p, i) => {
          const s = await stat(p);
          return { path: p, size: s.size, mtimeMs: s.mtimeMs, hash: rows.hashes[i]!, modelKey, embedding: rows.data.slice(i * rows.dim, (i + 1) * rows.dim) };
        }),
      ),
    );
    const old = await lib.openEmbeddingStore(oldFile);
    try {
      for (const img of imgs) {
        for (const annThreshold of [undefined, 1]) {
          const o = { top: 3, all: true, ...(annThreshold === undefined ? {} : { annThreshold }) };
          assert.deepEqual(await lib.search(clip, old, { text: [img.colour] }, o), await lib.search(clip, fresh, { text: [img.colour] }, o), `${img.colour}, ${JSON.stringify(o)}`);
        }
      }
      // Written after the migration, by the next index: found by the next search.
      const moved = path.join(dir, "later", "late.png");
      await mkdir(path.dirname(moved));
      await cp(imgs[0]!.file, moved);
      for await (const r of lib.embedWithStore(clip, old, [moved])) assert.equal(r.cached, true, "the content was stored before the migration");
      const [best] = await lib.search(clip, old, { text: [imgs[0]!.colour] }, { top: 1, all: true });
      assert.deepEqual(best?.paths, [path.resolve(imgs[0]!.file), moved].sort());
    } finally {
      await old.close();
    }
  } finally {
    await fresh.close();
    await clip.close();
  }
});

test("postgres: index, search (exact and through a local HNSW index), export and stats on a shared store; CLIP_OOD_STORE names it", { skip: skipUnlessPostgres }, async () => {
  const url = await server!.createDatabase("cli_store");
  const sqlite = path.join(await tempDir(), "s.sqlite");
  const folder = path.dirname(imgs[0]!.file);
  const first = await indexed(folder, url);
  assert.deepEqual([first["embedded"], first["store"]], [imgs.length, url]);
  // A second machine (here: another cache folder) finds everything stored already.
  const again = await runCli(["index", folder, "--json", "--model", model, "--cache-dir", await tempDir(), "--threads", "1", "--quiet"], { env: { CLIP_OOD_STORE: url } });
  assert.equal(JSON.parse(again.stdout)["alreadyStored"], imgs.length, again.stderr);
  await indexed(folder, sqlite);
  for (const img of imgs) {
    // The same ranking and cosines as the SQLite store of the same images.
    const reference = jsonLines((await runCli(["search", img.colour, "--top", "3", "--json", ...common(sqlite)])).stdout);
    const exact = jsonLines((await runCli(["search", img.colour, "--top", "3", "--json", ...common(url)])).stdout);
    const ann = jsonLines((await runCli(["search", img.colour, "--top", "3", "--json", "--ann-threshold", "1", ...common(url)])).stdout);
    assert.equal(exact[0]!["input"], img.file, img.colour);
    for (const got of [exact, ann]) {
      assert.deepEqual(got.map((x) => x["input"]), reference.map((x) => x["input"]), img.colour);
      got.forEach((x, i) => assert.ok(Math.abs((x["score"] as number) - (reference[i]!["score"] as number)) < 1e-5, "cosine scores"));
    }
  }
  const npy = path.join(await tempDir(), "all.npy");
  assert.equal((await runCli(["export", "--out", npy, ...common(url)])).code, 0);
  assert.deepEqual(decodeNpy(await readFile(npy), npy).shape, [imgs.length, 64]);
  const stats = JSON.parse((await runCli(["store", "stats", "--store", url])).stdout) as Record<string, unknown>;
  assert.deepEqual([stats["backend"], stats["location"], stats["paths"], stats["embeddings"]], ["postgres", url, imgs.length, imgs.length]);
  assert.match(String(stats["search"]), /no pgvector/);
  const bad = await runCli(["search", "red", ...common("postgres://clipood@127.0.0.1:9/x")]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /cannot open the store postgres:\/\/clipood@127\.0\.0\.1:9\/x: nothing listens there/);
});

test("the store's model key follows the vision graph's content, not its file dates", async () => {
  const lib = await import("../src/index.js");
  const { cp: copyDir, utimes } = await import("node:fs/promises");
  const folder = path.join(await tempDir(), "model");
  await copyDir(model, folder, { recursive: true });
  const keyOf = async (cacheDir: string) => {
    const clip = await lib.ClipModel.load({ model: folder, cacheDir, threads: 1 });
    try {
      return await lib.storeModelKey(clip);
    } finally {
      await clip.close();
    }
  };
  const graph = path.join(folder, "onnx", "vision_model.onnx");
  const before = await keyOf(await tempDir());
  // Another machine's download of the same file carries another date: the same key.
  const later = new Date(Date.now() + 60_000);
  await utimes(graph, later, later);
  assert.equal(await keyOf(await tempDir()), before);
  // Another graph at the same path: another key, even with the old date restored.
  const bytes = await readFile(graph);
  await writeFile(graph, Buffer.concat([bytes, Buffer.alloc(1)]));
  await utimes(graph, later, later);
  assert.notEqual(await keyOf(await tempDir()), before);
});
