/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1, for tests that download models without the
 * network (point CLIP_OOD_HUB_URL or HubOptions.hubUrl at `url`).
 *
 * Serves `root/<owner>/<name>/<path>` at `/<owner>/<name>/resolve/<revision>/<path>`, for any revision
 * unless `revisions` restricts them, the way the Hub's resolve endpoint does: Content-Length, a strong
 * ETag, Accept-Ranges, single byte ranges (206, 416 past the end), If-Range, HEAD, and 404 for
 * anything else. Every request is recorded in `requests`.
 *
 * Faults, keyed by the file's path inside the repository (e.g. "onnx/vision_model.onnx"):
 * - `truncateAfterBytes`: the first `truncateTimes` (default 1) GETs of that file announce the full
 *   Content-Length, send only that many body bytes and then destroy the socket (a dropped connection).
 * - `status`: answer that file with this HTTP status (e.g. 500, 401) and a short text body.
 * - `ignoreRange`: answer every GET with 200 and the whole file, as servers without range support do.
 * - `throttle`: send bodies `chunkBytes` at a time with `delayMs` between, so a download lasts long
 *   enough for another process to meet it half-way (or to be killed mid-file).
 * - `redirect`: answer resolve URLs with 302 to `/cdn/<owner>/<name>/<revision>/<path>`, as the Hub
 *   does for LFS files, so clients must follow redirects (and keep their Range header).
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface HubServerOptions {
  truncateAfterBytes?: Record<string, number>;
  truncateTimes?: number;
  status?: Record<string, number>;
  ignoreRange?: boolean;
  redirect?: boolean;
  throttle?: { chunkBytes: number; delayMs: number };
  /** Only these revisions exist (404 for others); default: any revision serves the same files. */
  revisions?: readonly string[];
}

export interface HubRequest {
  method: string;
  /** Path and query as requested, e.g. "/owner/name/resolve/main/config.json". */
  url: string;
  /** The Range header, if any. */
  range: string | undefined;
  ifRange: string | undefined;
}

export interface HubServer {
  /** Base URL without a trailing slash, e.g. "http://127.0.0.1:40123". */
  url: string;
  requests: HubRequest[];
  close(): Promise<void>;
}

export async function startHubServer(root: string, opts: HubServerOptions = {}): Promise<HubServer> {
  const requests: HubRequest[] = [];
  const truncations = new Map<string, number>();

  const server = http.createServer((req, res) => {
    const one = (h: string | string[] | undefined) => (Array.isArray(h) ? h[0] : h);
    requests.push({ method: req.method ?? "GET", url: req.url ?? "", range: one(req.headers.range), ifRange: one(req.headers["if-range"]) });
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(e));
    });
  });

  const send = (res: http.ServerResponse, status: number, text: string, headers: http.OutgoingHttpHeaders = {}) => {
    res.writeHead(status, { "content-type": "text/plain", "content-length": Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const pathname = new URL(req.url ?? "/", "http://x").pathname;
    let segs: string[];
    try {
      segs = pathname.split("/").slice(1).map(decodeURIComponent);
    } catch {
      return send(res, 400, "bad path");
    }
    let owner: string, name: string, revision: string, rest: string[];
    if (segs[0] === "cdn" && segs.length >= 5) {
      [, owner, name, revision, ...rest] = segs as [string, string, string, string, ...string[]];
    } else if (segs.length >= 5 && segs[2] === "resolve") {
      [owner, name, , revision, ...rest] = segs as [string, string, string, string, ...string[]];
      if (opts.redirect) {
        const to = ["cdn", owner, name, revision, ...rest].map(encodeURIComponent).join("/");
        return send(res, 302, "Found", { location: `/${to}` });
      }
    } else {
      return send(res, 404, "Repository not found");
    }
    // The revision is only a key (and may hold "/", as in "refs/pr/1"); the rest names a file under root.
    const unsafe = (s: string) => s === "" || s === "." || s === ".." || s.includes("/") || s.includes("\\");
    if ([owner, name, ...rest].some(unsafe)) return send(res, 404, "Entry not found");
    if (opts.revisions && !opts.revisions.includes(revision)) return send(res, 404, "Revision not found");
    const file = rest.join("/");
    const forced = opts.status?.[file];
    if (forced !== undefined) return send(res, forced, `status ${forced} for ${file}`);

    const full = path.join(root, owner, name, ...rest);
    const info = await stat(full).catch(() => undefined);
    if (!info?.isFile()) return send(res, 404, "Entry not found");
    const size = info.size;
    const etag = `"${size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;

    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    const ifRange = req.headers["if-range"];
    if (range && !opts.ignoreRange && (ifRange === undefined || ifRange === etag)) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      if (m && (m[1] !== "" || m[2] !== "")) {
        if (m[1] === "") {
          start = Math.max(0, size - Number(m[2])); // suffix range: the last N bytes
        } else {
          start = Number(m[1]);
          if (m[2] !== "") end = Math.min(end, Number(m[2]));
        }
        if (start >= size || start > end) return send(res, 416, "Range Not Satisfiable", { "content-range": `bytes */${size}` });
        status = 206;
      }
    }
    const length = end - start + 1;
    const headers: http.OutgoingHttpHeaders = {
      "content-type": "application/octet-stream",
      "content-length": length,
      "accept-ranges": opts.ignoreRange ? "none" : "bytes",
      etag,
    };
    if (status === 206) headers["content-range"] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    if (req.method === "HEAD" || length === 0) return void res.end();

    const cut = opts.truncateAfterBytes?.[file];
    const cutSoFar = truncations.get(file) ?? 0;
    if (cut !== undefined && cutSoFar < (opts.truncateTimes ?? 1)) {
      truncations.set(file, cutSoFar + 1);
      const n = Math.max(0, Math.min(cut, length - 1));
      const chunks: Buffer[] = [];
      if (n > 0) for await (const c of createReadStream(full, { start, end: start + n - 1 })) chunks.push(c as Buffer);
      // Destroy only once the bytes are handed to the kernel, so the client does receive them.
      res.write(Buffer.concat(chunks), () => res.destroy());
      return;
    }
    if (opts.throttle) {
      const { chunkBytes, delayMs } = opts.throttle;
      for await (const c of createReadStream(full, { start, end, highWaterMark: chunkBytes })) {
        if (res.destroyed) return;
        res.write(c);
        await sleep(delayMs);
      }
      res.end();
      return;
    }
    createReadStream(full, { start, end }).pipe(res);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    // Idempotent, so a test may close early (to simulate the Hub going away) and still clean up after.
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections(); // keep-alive sockets would hold close() open
      })),
  };
}
