/**
 * The built web UI (ui/, compiled to dist/ui/), read once at start and served from memory with a
 * Content-Security-Policy that admits only this origin's scripts and styles.
 */
import { readFile } from "node:fs/promises";
import type { FastifyInstance } from "fastify";

/** Where the built web UI lies: beside the compiled server (dist/server → dist/ui), or dist/ui when run from src. */
const UI_DIRS = [new URL("../ui/", import.meta.url), new URL("../../dist/ui/", import.meta.url)];
/** The UI's ES modules (ui/*.ts): the browser fetches each import by its own URL, so each needs a route. */
const UI_MODULES = ["app", "dom", "json", "api", "messages", "format", "tabs", "detect", "search", "detectors", "evaluate", "jobs", "thumbnails", "discover"];
const UI_FILES: Record<string, string> = {
  "/": "index.html",
  "/index.html": "index.html",
  "/style.css": "style.css",
  ...Object.fromEntries(UI_MODULES.map((m) => [`/${m}.js`, `${m}.js`])),
};
const UI_TYPES: Record<string, string> = { html: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" };

export async function loadUi(): Promise<Map<string, Buffer>> {
  for (const dir of UI_DIRS) {
    const files = new Map<string, Buffer>();
    for (const f of new Set(Object.values(UI_FILES))) {
      const data = await readFile(new URL(f, dir)).catch(() => undefined);
      if (data) files.set(f, data);
    }
    if (files.has("index.html")) return files;
  }
  return new Map();
}

/** A route per UI file; without a built UI each answers 404 with how to build it. */
export function registerUi(app: FastifyInstance, files: Map<string, Buffer>): void {
  for (const [url, file] of Object.entries(UI_FILES)) {
    app.get(url, { schema: { hide: true } }, async (_req, reply) => {
      const data = files.get(file);
      if (!data) return reply.code(404).type("text/plain").send("the web UI is not built: run npm run build");
      return reply.type(UI_TYPES[file.split(".").pop()!]!).header("content-security-policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'").send(data);
    });
  }
}
