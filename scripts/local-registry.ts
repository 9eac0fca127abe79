/**
 * A read-only npm registry on 127.0.0.1 holding a packed clip-ood and exactly the packages that
 * package-lock.json pins for its users (the non-dev entries), each of those read from npm's cache by
 * its integrity. scripts/install-test.sh installs from it with the network cut off, so the user's
 * `npm install clip-ood` is tried word for word: `npm ci` leaves the tarballs in npm's cache but not the
 * package metadata an `npm install` resolves ranges with, so `--offline` alone cannot install there,
 * and a tarball installed from a file is not treated as a registry package (npm lists its `prepare`
 * among the install scripts to review; from a registry `prepare` never runs).
 *
 * Usage: `tsx scripts/local-registry.ts <npm cache folder> <clip-ood tarball>`; prints the registry's
 * URL on one line, then serves until killed. Tarballs keep the registry's URL layout
 * (`<name>/-/<base>-<version>.tgz`), from which npm reads a package's trusted name and version for
 * `allowScripts`.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

interface LockEntry {
  version: string;
  integrity?: string;
  dev?: boolean;
  [field: string]: unknown;
}

/** Lock fields that are also fields of a version in a packument. */
const MANIFEST_FIELDS = ["dependencies", "optionalDependencies", "peerDependencies", "peerDependenciesMeta", "bin", "engines", "os", "cpu", "libc", "hasInstallScript", "license"];

const [cacheDir, ownTarball] = process.argv.slice(2);
if (!cacheDir || !existsSync(path.join(cacheDir, "_cacache")) || !ownTarball || !existsSync(ownTarball)) {
  console.error("usage: tsx scripts/local-registry.ts <npm cache folder (npm config get cache)> <tarball from npm pack>");
  process.exit(2);
}
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const lock = JSON.parse(readFileSync(path.join(repo, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
const own = JSON.parse(readFileSync(path.join(repo, "package.json"), "utf8")) as LockEntry & { name: string };
const ownIntegrity = `sha512-${createHash("sha512").update(readFileSync(ownTarball)).digest("base64")}`;

/** name → version → lock entry; a name can be pinned at several versions in nested folders. */
const packages = new Map<string, Map<string, LockEntry>>();
for (const [where, entry] of Object.entries(lock.packages)) {
  if (where === "" || entry.dev || !entry.integrity) continue;
  const name = where.slice(where.lastIndexOf("node_modules/") + "node_modules/".length);
  if (!packages.has(name)) packages.set(name, new Map());
  packages.get(name)!.set(entry.version, entry);
}
packages.set(own.name, new Map([[own.version, { ...own, integrity: ownIntegrity }]]));

/** cacache keeps content under content-v2/<algorithm>/<hex digest split 2/2/rest>. */
function cachedContent(integrity: string): string | undefined {
  const [algorithm, digest] = integrity.split(" ")[0]!.split("-", 2) as [string, string];
  const hex = Buffer.from(digest, "base64").toString("hex");
  const file = path.join(cacheDir!, "_cacache", "content-v2", algorithm, hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
  return existsSync(file) ? file : undefined;
}

const baseName = (name: string) => name.slice(name.lastIndexOf("/") + 1);

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  const at = decodeURIComponent(url.pathname).slice(1);
  const origin = `http://${req.headers.host ?? "localhost"}`;
  const tarballAt = at.indexOf("/-/");
  if (tarballAt > 0) {
    const name = at.slice(0, tarballAt);
    const file = at.slice(tarballAt + 3);
    const version = file.slice(baseName(name).length + 1, -".tgz".length);
    const integrity = packages.get(name)?.get(version)?.integrity;
    const content = name === own.name ? ownTarball : integrity && cachedContent(integrity);
    if (!content) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream" });
    createReadStream(content).pipe(res);
    return;
  }
  const versions = packages.get(at);
  if (!versions) {
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not found" }));
    return;
  }
  const doc = {
    name: at,
    "dist-tags": { latest: [...versions.keys()].at(-1) },
    versions: Object.fromEntries(
      [...versions].map(([version, entry]) => [
        version,
        {
          name: at,
          version,
          ...Object.fromEntries(MANIFEST_FIELDS.filter((f) => f in entry).map((f) => [f, entry[f]])),
          dist: { tarball: `${origin}/${at}/-/${baseName(at)}-${version}.tgz`, integrity: entry.integrity },
        },
      ]),
    ),
  };
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(doc));
});
server.listen(0, "127.0.0.1", () => {
  console.log(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
});
