/**
 * Thumbnails of server files (`GET /v1/thumbnail`), fetched rather than linked so that the API key goes
 * along; each view keeps its object URLs in a set and releases them when it draws its results again.
 */

import { send } from "./api.js";
import { h } from "./dom.js";

export class Thumbnails {
  private urls: string[] = [];

  /** Releases every object URL this set handed out (the images showing them are being replaced). */
  release(): void {
    this.urls.forEach((u) => URL.revokeObjectURL(u));
    this.urls = [];
  }

  /** An object URL for a local file, released with the rest. */
  local(file: Blob): string {
    const url = URL.createObjectURL(file);
    this.urls.push(url);
    return url;
  }

  /** Fills `img` from a server thumbnail URL, or puts a placeholder in its place when there is none. */
  async load(url: string, img: HTMLImageElement): Promise<void> {
    try {
      const res = await send(url.replace(/^\//, ""));
      img.src = this.local(await res.blob());
    } catch {
      img.replaceWith(h("div", { class: `${img.className} placeholder`, role: "img", "aria-label": `${img.alt}: no thumbnail` }, "No thumbnail"));
    }
  }
}

/** The thumbnail URL of a file inside a data root. */
export function thumbnailUrl(serverPath: string): string {
  return `v1/thumbnail?path=${encodeURIComponent(serverPath)}`;
}

export function baseName(p: string): string {
  return p.split(/[\\/]/).pop() || p;
}
