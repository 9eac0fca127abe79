/**
 * A `serve` process of its own, for the tests that kill one with SIGKILL mid-job:
 *
 *   node --import tsx test/support/serve-child.ts '<ServerOptions as JSON>'
 *
 * Prints the server's URL on one line once it listens, then serves until killed.
 */
import { startServer } from "../../src/server/app.js";
import type { ServerOptions } from "../../src/server/app.js";

const server = await startServer(JSON.parse(process.argv[2] ?? "{}") as ServerOptions);
process.stdout.write(`${server.url}\n`);
