/**
 * discovery.json: a `DiscoveryResult` as JSON, written atomically and read back with every field
 * checked, since the file may come from anywhere.
 */
import { ClipOodError } from "../errors.js";
import type { DiscoveryResult } from "./types.js";

export async function saveDiscovery(result: DiscoveryResult, file: string): Promise<void> {
  void result;
  void file;
  throw new ClipOodError("USAGE", "saveDiscovery is not implemented yet");
}

export async function loadDiscovery(file: string): Promise<DiscoveryResult> {
  void file;
  throw new ClipOodError("USAGE", "loadDiscovery is not implemented yet");
}

/** A discovery from its JSON text (pure); `source` names it in errors. */
export function parseDiscovery(text: string, source: string): DiscoveryResult {
  void text;
  throw new ClipOodError("INPUT", `${source} is not a discovery file`);
}
