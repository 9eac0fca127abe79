/**
 * Every import in src/ points down the layer order of docs/ARCHITECTURE.md (scripts/check-layers.ts):
 * maths and io at the bottom, then model, text and image, … up to the CLI.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { upwardImports } from "../scripts/check-layers.js";

test("no module imports from a layer above its own", () => {
  assert.deepEqual(upwardImports(), []);
});
