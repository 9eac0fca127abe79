/**
 * A lock file that lets one process at a time create a file that several processes may want (a
 * download into a shared cache), across processes and machines sharing the folder.
 *
 * Why a lock rather than unique temp names: resuming needs a `.part` name that a later process can
 * find, and two processes appending to one `.part` would corrupt it. So a process writes only while it
 * holds the lock, created with `open(…, "wx")` (atomic create-if-absent). The holder refreshes the
 * lock's mtime every few seconds; others poll until the work is done or the lock goes away. A lock is
 * taken over when its owner is a dead process on this host or it has not been refreshed for `staleMs`
 * (a crash, or a machine sharing the cache). Takeover renames the stale lock aside and checks it was the
 * one judged stale, so two takers cannot both win; and a holder that was frozen past the stale limit
 * re-reads the lock before writing again and backs off if it is no longer the owner.
 */
import { randomBytes } from "node:crypto";
import { link, open, readFile, rename, stat, unlink, utimes } from "node:fs/promises";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";

export interface LockOptions {
  /** A lock not refreshed for this long is taken over (default 2 minutes). */
  staleMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Another process took our lock over (we were frozen past the stale limit): stop writing. */
export class LockLost extends Error {}

interface LockOwner {
  host: string;
  pid: number;
  token: string;
}

const POLL_MS = 200;

export class FileLock {
  private lost = false;
  private verifiedAt = Date.now();
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly file: string,
    private readonly token: string,
    private readonly heartbeatMs: number,
  ) {
    this.timer = setInterval(() => void this.verify(), heartbeatMs);
    this.timer.unref();
  }

  /**
   * Waits for the lock; resolves undefined instead when `done()` turns true meanwhile (another process
   * finished the work while we waited).
   */
  static async acquire(file: string, done: () => Promise<boolean>, opts: LockOptions = {}): Promise<FileLock | undefined> {
    const staleMs = opts.staleMs ?? 120_000;
    const heartbeatMs = Math.max(20, Math.min(5_000, Math.floor(staleMs / 6)));
    const me: LockOwner = { host: os.hostname(), pid: process.pid, token: randomBytes(12).toString("hex") };
    const text = JSON.stringify(me);
    for (;;) {
      opts.signal?.throwIfAborted();
      try {
        const fh = await open(file, "wx");
        try {
          await fh.writeFile(text);
        } finally {
          await fh.close();
        }
        return new FileLock(file, text, heartbeatMs);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      if (await done()) return undefined;
      const held = await readFile(file, "utf8").catch(() => undefined);
      const st = await stat(file).catch(() => undefined);
      if (held === undefined || !st) continue; // released between our calls
      if (isStale(held, st.mtimeMs, staleMs)) {
        await takeOver(file, held, me.token);
        continue;
      }
      await sleep(POLL_MS, undefined, opts.signal ? { signal: opts.signal } : {});
    }
  }

  /** Throws LockLost when another process owns the lock now. */
  async ensureHeld(): Promise<void> {
    if (!this.lost && Date.now() - this.verifiedAt > 2 * this.heartbeatMs) await this.verify();
    if (this.lost) throw new LockLost("lock taken over");
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    if (this.lost) return;
    const held = await readFile(this.file, "utf8").catch(() => undefined);
    if (held === this.token) await unlink(this.file).catch(() => undefined);
  }

  private async verify(): Promise<void> {
    if (this.lost) return;
    let held = await readFile(this.file, "utf8").catch(() => undefined);
    if (held === undefined) {
      // Moved aside by a taker that judged us stale, or by one about to put it back: we are alive,
      // so claim it again the same atomic way; whoever creates it first owns it.
      const fh = await open(this.file, "wx").catch(() => undefined);
      if (fh) {
        await fh.writeFile(this.token).finally(() => fh.close());
        held = this.token;
      } else {
        held = await readFile(this.file, "utf8").catch(() => undefined);
      }
    }
    if (held !== this.token) {
      this.lost = true;
      return;
    }
    const now = new Date();
    await utimes(this.file, now, now).catch(() => undefined);
    this.verifiedAt = Date.now();
  }
}

function isStale(held: string, mtimeMs: number, staleMs: number): boolean {
  if (Date.now() - mtimeMs > staleMs) return true;
  let owner: Partial<LockOwner>;
  try {
    owner = JSON.parse(held) as Partial<LockOwner>;
  } catch {
    return false; // half-written by a live creator, or foreign: let the age decide
  }
  if (owner.host !== os.hostname() || typeof owner.pid !== "number") return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH"; // EPERM: alive, someone else's
  }
}

/**
 * Removes the stale lock `held`. Rename is atomic, so of several takers only one moves a given lock
 * file; if what we moved is not the lock we judged stale (another taker already replaced it), we put
 * it back with link(), which never overwrites.
 */
async function takeOver(file: string, held: string, token: string): Promise<void> {
  const aside = `${file}.${token}.stale`;
  try {
    await rename(file, aside);
  } catch {
    return;
  }
  const moved = await readFile(aside, "utf8").catch(() => undefined);
  if (moved !== held) await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}
