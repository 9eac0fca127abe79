// `npm run build` step: tsc compiles ui/*.ts (app.ts and the modules it imports) into dist/ui/*.js; this
// copies the static files beside them, so dist/ui/ is the whole web UI that `clip-ood serve` hands out at `/`.
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = path.join(root, "dist", "ui");
await mkdir(out, { recursive: true });
for (const name of ["index.html", "style.css"]) {
  await copyFile(path.join(root, "ui", name), path.join(out, name));
}
