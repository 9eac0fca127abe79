/**
 * A real PostgreSQL server for the tests: Debian's `postgresql` package (initdb + pg_ctl) in a temporary
 * folder, on a free loopback port, trusting local connections, stopped and removed at the end. No mocks.
 * `.ci/run` installs the package where it is missing; elsewhere the tests that need it skip with the
 * reason (`skipUnlessPostgres`).
 */
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** The newest PostgreSQL server binaries: $CLIP_OOD_PG_BIN, else Debian's /usr/lib/postgresql/<version>/bin. */
function findBinaries(): string | undefined {
  const given = process.env["CLIP_OOD_PG_BIN"];
  if (given) return existsSync(path.join(given, "initdb")) ? given : undefined;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : path.join(root, versions[0], "bin");
}

const bin = findBinaries();
const isRoot = process.getuid?.() === 0;
/** The server refuses to run as root; as root it runs as Debian's `postgres` user. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}
const user = serverUser();

export const skipUnlessPostgres: string | false = !bin
  ? "no PostgreSQL server binaries (apt-get install postgresql; .ci/run does)"
  : isRoot && !user
    ? "running as root without a postgres user to run the server as"
    : false;

export interface PostgresServer {
  /** postgres://clipood@127.0.0.1:<port>/postgres */
  url: string;
  /** A URL for another database on the same server, created empty. */
  createDatabase(name: string): Promise<string>;
  /**
   * `pg_ctl stop -m immediate` (every connection cut, as in a crash or a failover), then, after
   * `downMs`, the server started again on its port (crash recovery). A gap rather than `pg_ctl
   * restart`, which is back in well under a second: clients between two queries might not notice it.
   */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function run(file: string, args: readonly string[]): string {
  return execFileSync(file, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    env: { ...process.env, LC_ALL: "C" },
  });
}

/** Starts a fresh server; every test file that needs one starts its own. */
export async function startPostgres(): Promise<PostgresServer> {
  if (skipUnlessPostgres) throw new Error(skipUnlessPostgres);
  const dir = mkdtempSync(path.join(os.tmpdir(), "clip-ood-pg-"));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = path.join(dir, "data");
  run(path.join(bin!, "initdb"), ["-D", data, "-U", "clipood", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]);
  const pgCtl = path.join(bin!, "pg_ctl");
  // fsync off: a throwaway server need not survive a power cut (an immediate stop is crash recovery, which it survives).
  const start = (port: number) => ["-D", data, "-l", path.join(dir, "server.log"), "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`, "-w", "-t", "60"];
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      run(pgCtl, [...start(port), "start"]);
      break;
    } catch (e) {
      // Another process took the port between the probe and the start: try another.
      if (attempt >= 3) throw e;
    }
  }
  const url = `postgres://clipood@127.0.0.1:${port}/postgres`;
  return {
    url,
    async createDatabase(name: string) {
      run(path.join(bin!, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "clipood", name]);
      return `postgres://clipood@127.0.0.1:${port}/${name}`;
    },
    async restart(downMs = 0) {
      run(pgCtl, ["-D", data, "-m", "immediate", "-w", "stop"]);
      await new Promise((r) => setTimeout(r, downMs));
      run(pgCtl, [...start(port), "start"]);
    },
    async stop() {
      try {
        run(pgCtl, ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
