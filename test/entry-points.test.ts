/**
 * `import("clip-ood")` in every way Node runs code. Under `node -e`, piped stdin and the REPL Node
 * defines globals (`__dirname` = ".") that a module does not see in a file, and a dependency that reads
 * them (usearch's ES module build did, and overflowed the stack) breaks only there. Each case imports
 * the built library (dist/, made by `npm run build`) and builds an ANN index, so the native search
 * library is loaded too. scripts/install-test.sh does the same with the packed, installed package.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { withTempDir } from "./support/assertions.js";
import { outputOf } from "./support/cli.js";
import type { CliResult } from "./support/cli.js";
import { repoRoot } from "./support/shared.js";

const entry = pathToFileURL(path.join(repoRoot, "dist", "index.js")).href;
const program = `import(${JSON.stringify(entry)}).then((m) => {
  const index = m.AnnIndex.build(new Float32Array([1, 0, 0, 1]), 2);
  console.log("RESULT " + JSON.stringify({ exports: Object.keys(m).length, rows: index.size }));
});`;

/**
 * Runs node with `args`, writing `stdin` to it. The REPL quits as soon as its input ends, before an
 * import could finish, so with `holdStdin` the input stays open until the result has been printed.
 */
function node(args: readonly string[], cwd: string, stdin = "", holdStdin = false): Promise<CliResult> {
  // Killed after a minute: before the fix, usearch's endless climb could spin for many minutes.
  const child = spawn(process.execPath, args, { cwd, stdio: ["pipe", "pipe", "pipe"], timeout: 60_000 });
  if (holdStdin) {
    child.stdin.write(stdin);
    child.stdout.on("data", (d: Buffer) => {
      if (d.toString().includes("RESULT ")) child.stdin.end();
    });
  } else {
    child.stdin.end(stdin);
  }
  return outputOf(child);
}

function assertImported(r: CliResult, how: string): void {
  const line = r.stdout.split("\n").find((l) => l.includes("RESULT "));
  assert.ok(line, `${how}: no result (exit ${r.code})\n${r.stderr.slice(0, 2000)}`);
  const got = JSON.parse(line.slice(line.indexOf("RESULT ") + 7)) as { exports: number; rows: number };
  assert.ok(got.exports > 50, `${how}: only ${got.exports} exports`);
  assert.equal(got.rows, 2, how);
}

test("import('clip-ood') works from -e, piped stdin, the REPL, a CommonJS file and an .mjs file", async () => {
  await withTempDir(async (dir) => {
    await writeFile(path.join(dir, "main.cjs"), program);
    await writeFile(path.join(dir, "main.mjs"), program);
    const cases: [string, Promise<CliResult>][] = [
      ["node -e", node(["-e", program], dir)],
      ["code piped to node", node([], dir, program)],
      // The REPL echoes prompts and the promise too; the program's line is found among them.
      ["the REPL", node(["-i"], dir, program.replace(/\n\s*/g, " ") + "\n", true)],
      ["a .cjs file", node(["main.cjs"], dir)],
      ["an .mjs file", node(["main.mjs"], dir)],
    ];
    for (const [how, run] of cases) assertImported(await run, how);
  });
});
