/**
 * Bounded property-based fuzzing of the parsers that read input from other hands (the properties live
 * in test/support/fuzz-properties.ts; `tsx scripts/fuzz.ts` runs them for longer). The seed is fixed
 * so that a failure here replays; a failure prints its counterexample and the seed/path to replay it.
 */
import { after, before, test } from "node:test";
import fc from "fast-check";
import { FUZZ_TARGETS, makeFuzzEnv } from "./support/fuzz-properties.js";
import type { FuzzEnv } from "./support/fuzz-properties.js";

const SEED = 20240611;

let env: FuzzEnv;
before(async () => {
  env = await makeFuzzEnv();
});
after(async () => {
  await env.close();
});

for (const target of FUZZ_TARGETS) {
  test(`fuzz ${target.name}: a valid result or a ClipOodError, never a crash`, async () => {
    await fc.assert(await target.property(env), { numRuns: target.testRuns, seed: SEED, endOnFailure: true });
  });
}
