/**
 * A real full disk for tests: a small tmpfs mounted in a private mount namespace (`unshare -r -m`, no
 * root needed where user namespaces are allowed), with the scenario run inside it by
 * test/support/disk-full-child.ts. The tmpfs exists only inside that namespace, so the child makes its
 * observations there and prints them as JSON. Where namespaces are not allowed, `diskFullSkip` says why.
 */
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { outputOf } from "./cli.js";
import type { CliResult } from "./cli.js";
import { repoRoot } from "./shared.js";

function probe(): string | false {
  const r = spawnSync("unshare", ["-r", "-m", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\""], { encoding: "utf8" });
  if (r.error) return `unshare is not available (${r.error.message})`;
  return r.status === 0 ? false : `cannot mount a tmpfs in a user namespace here (${r.stderr.trim() || `exit ${r.status}`})`;
}

/** false where a full disk can be made; otherwise the reason to skip. */
export const diskFullSkip: string | false = process.platform === "linux" ? probe() : "full-disk tests need Linux mount namespaces";

/**
 * Runs the child scenario `scenario` with a tmpfs of `sizeKiB` mounted at `mountpoint`; `args` are
 * passed through as JSON.
 */
export function runOnSmallDisk(mountpoint: string, sizeKiB: number, scenario: string, args: Record<string, unknown>): Promise<CliResult> {
  const child = path.join(repoRoot, "test", "support", "disk-full-child.ts");
  const script = `mount -t tmpfs -o size=${sizeKiB}k tmpfs "$1" && shift && exec "$@"`;
  return outputOf(
    spawn("unshare", ["-r", "-m", "sh", "-c", script, "sh", mountpoint, process.execPath, "--import", "tsx", child, scenario, JSON.stringify({ ...args, mountpoint })], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
}
