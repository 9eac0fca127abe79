/**
 * Progress bars on stderr, only when stderr is a terminal and --quiet is off, so piped and scripted
 * runs stay clean.
 */
import cliProgress from "cli-progress";
import type { DownloadProgress } from "../model/hub-download.js";

export interface Progress {
  download(p: DownloadProgress): void;
  images(done: number, total: number): void;
  /** Any other counted work, e.g. "embedding negative-label candidates". */
  count(what: string, done: number, total: number): void;
  stop(): void;
}

const silent: Progress = { download() {}, images() {}, count() {}, stop() {} };

export function progress(enabled: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!enabled || !stream.isTTY) return silent;
  let bar: cliProgress.SingleBar | undefined;
  let current: string | undefined;
  const open = (format: string, total: number, payload: Record<string, unknown>) => {
    bar?.stop();
    bar = new cliProgress.SingleBar({ format, stream, hideCursor: true, clearOnComplete: false, etaBuffer: 20 }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, payload);
  };
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return {
    download(p) {
      const total = p.total ?? 0;
      if (current !== `dl:${p.file}`) {
        current = `dl:${p.file}`;
        open("downloading {file} [{bar}] {percentage}% {got}/{all} MB | ETA {eta_formatted}", total, { file: p.file, got: "0", all: mb(total) });
      }
      bar?.update(p.received, { got: mb(p.received), all: p.total === undefined ? "?" : mb(p.total) });
      if (p.done) {
        bar?.stop();
        bar = undefined;
        current = undefined;
      }
    },
    images(done, total) {
      this.count("embedding images", done, total);
    },
    count(what, done, total) {
      if (current !== `count:${what}`) {
        current = `count:${what}`;
        open(`${what} [{bar}] {value}/{total} | {eta_formatted} left`, total, {});
      }
      bar?.update(done);
    },
    stop() {
      bar?.stop();
      bar = undefined;
      current = undefined;
    },
  };
}
