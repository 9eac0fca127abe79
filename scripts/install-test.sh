#!/usr/bin/env bash
# A new user's first five minutes, on the package as npm would publish it: pack this checkout, install
# the tarball into an empty project the way the README's "Install" section says, with the network cut
# off, then run `clip-ood --help`, a `detect` on a generated model, and `import("clip-ood")` from
# `node -e` and from an .mjs file. Also checks that no CUDA provider was fetched and that the install
# printed none of the warnings a user would have to puzzle over.
#
# Run by .ci/run after `npm test`; by hand: `npm run install-test` after `npm ci` (the generated model
# needs the dev dependencies).
#
# The whole test runs in a network namespace of its own (`unshare --net`, or `unshare --user --net`
# without root), where only the loopback interface exists: every install script that reaches for the
# internet (onnxruntime-node's NuGet download, better-sqlite3's prebuilt-binary download) fails at
# once, as on an offline machine. An unreachable proxy would not do: install scripts need not honour
# npm's proxy settings. The registry is scripts/local-registry.ts on loopback: exactly the packages
# package-lock.json pins, from npm's cache. Where no namespace can be made, the test is skipped and
# says why.
set -euo pipefail
cd "$(dirname "$0")/.."
# Run as `npm run install-test`, this script inherits the outer npm's npm_* variables (npm_package_json,
# npm_config_local_prefix, …), which describe the clone, not the empty project: onnxruntime-node's
# install script, for one, reads those two to decide it is being installed in its own folder and exits
# at once. A user's shell has none of them.
for name in $(compgen -e); do
  case "$name" in npm_*) unset "$name" ;; esac
done

if [ -z "${CLIP_OOD_INSTALL_TEST_NETNS:-}" ]; then
  export CLIP_OOD_INSTALL_TEST_NETNS=1
  for ns in "--net" "--user --map-root-user --net"; do
    # shellcheck disable=SC2086 # the options are meant to split
    if unshare $ns true 2>/dev/null; then exec unshare $ns bash "$0" "$@"; fi
  done
  echo "install-test: SKIPPED: this machine refuses to make a network namespace (unshare --net, also with --user)," \
    "so an install with the network cut off cannot be tried here" >&2
  exit 0
fi
# The namespace's loopback starts down; the local registry needs it.
if ! ip link set lo up 2>/dev/null; then
  echo "install-test: SKIPPED: cannot bring up loopback in the network namespace (is iproute2's ip installed?)" >&2
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/clip-ood-install-test-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() {
  echo "install-test: FAILED: $1" >&2
  if [ $# -gt 1 ] && [ -f "$2" ]; then sed 's/^/  | /' "$2" | tail -n 60 >&2; fi
  exit 1
}
ok() { echo "install-test: ok: $1"; }

# `npm pack` runs `prepare` (the build) first, as `npm publish` would.
tarball=$(npm pack --pack-destination "$work" --silent 2>"$work/pack.log" | tail -n 1) || fail "npm pack" "$work/pack.log"
tarball="$work/$tarball"
[ -f "$tarball" ] || fail "npm pack wrote no tarball" "$work/pack.log"
contents=$(tar -tzf "$tarball")
for want in package/LICENSE package/README.md package/docs/ARCHITECTURE.md package/dist/cli/main.js package/dist/index.d.ts package/dist/ui/index.html; do
  grep -qx "$want" <<<"$contents" || fail "the tarball lacks ${want#package/}"
done
if grep -E '\.map$|^package/(src|test|scripts|ui)/' <<<"$contents" >"$work/extra.txt"; then
  fail "the tarball holds files users do not need" "$work/extra.txt"
fi
ok "packed $(wc -l <<<"$contents") files: dist/, docs/, LICENSE, README.md (no sources, tests or source maps)"

npx tsx scripts/make-test-model.ts "$work/model" --images "$work/images" >"$work/model.log" 2>&1 || fail "generating the model" "$work/model.log"

cache=$(npm config get cache)
node --import tsx scripts/local-registry.ts "$cache" "$tarball" >"$work/registry.url" 2>"$work/registry.log" &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/registry.url" ] && break; sleep 0.2; done
registry=$(cat "$work/registry.url")
[ -n "$registry" ] || fail "the local registry did not start" "$work/registry.log"

mkdir "$work/project"
cd "$work/project"
npm init --yes >/dev/null
# The README's install, word for word, from the local registry, with an empty cache of its own.
npm pkg set allowScripts.better-sqlite3=true allowScripts.usearch=true \
  allowScripts.onnxruntime-node=false allowScripts.protobufjs=false --json
npm install --registry "$registry" --cache "$work/npm-cache" --no-audit --no-fund clip-ood >"$work/install.log" 2>&1 ||
  fail "npm install clip-ood with the network cut off" "$work/install.log"
# No warning is let through, EBADENGINE included: clip-ood pins light-my-request 6.6.0 (whose cookie 1
# supports Node 20) so that fastify's ^6 is met without 6.8's cookie 2, which asks for Node 22.
if grep -E 'npm warn|EBADENGINE|allowScripts|Downloading' "$work/install.log" >"$work/warnings.txt"; then
  fail "the install printed warnings" "$work/warnings.txt"
fi
ok "installed offline, no warnings"

ort="node_modules/onnxruntime-node"
if [ -n "$(find "$ort/bin" -name 'libonnxruntime_providers_cuda*' -print -quit)" ]; then
  fail "the install fetched onnxruntime's CUDA provider"
fi
if [ "$(node -p 'process.platform + "/" + process.arch')" = linux/x64 ]; then
  # What the allowScripts entry spared the user: run by hand, onnxruntime-node's install script reaches
  # for NuGet on linux/x64 and fails offline, unless ONNXRUNTIME_NODE_INSTALL=skip (the README's
  # advice for npm before 11.16) tells it not to.
  if node "$ort/script/install" >"$work/ort.log" 2>&1; then
    fail "onnxruntime-node's install script succeeded offline without ONNXRUNTIME_NODE_INSTALL=skip: the README's reason for it is gone" "$work/ort.log"
  fi
  ONNXRUNTIME_NODE_INSTALL=skip node "$ort/script/install" >"$work/ort.log" 2>&1 ||
    fail "ONNXRUNTIME_NODE_INSTALL=skip did not stop onnxruntime-node's install script" "$work/ort.log"
fi
ok "no CUDA provider; onnxruntime-node's script downloads unless skipped"

npx clip-ood --help >"$work/help.log" 2>&1 || fail "clip-ood --help" "$work/help.log"
grep -q "detect" "$work/help.log" || fail "clip-ood --help does not list detect" "$work/help.log"
ok "npx clip-ood --help"

npx clip-ood detect "$work/images" --model "$work/model" --cache-dir "$work/cache" --classes red,green,blue --json \
  >"$work/detect.log" 2>"$work/detect.err" || fail "clip-ood detect" "$work/detect.err"
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const labelled = lines.filter((l) => ["red", "green", "blue"].includes(l.label) && typeof l.score === "number");
  if (labelled.length === 0 || labelled.length !== lines.length) { console.error(lines.slice(0, 3)); process.exit(1); }
' "$work/detect.log" || fail "clip-ood detect --json printed no scored images" "$work/detect.log"
ok "npx clip-ood detect on a generated model ($(wc -l <"$work/detect.log") images)"

probe='import("clip-ood").then((m) => { if (Object.keys(m).length < 50 || typeof m.ClipModel !== "function") process.exit(1); console.log(Object.keys(m).length); })'
node -e "$probe" >"$work/import.log" 2>&1 || fail 'import("clip-ood") from node -e' "$work/import.log"
echo "$probe" >probe.mjs
node probe.mjs >"$work/import.log" 2>&1 || fail 'import("clip-ood") from an .mjs file' "$work/import.log"
ok "import(\"clip-ood\") from node -e and from an .mjs file"
echo "install-test: passed"
