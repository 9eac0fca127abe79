/**
 * A detector's identity as a discovery records it: its method and its known classes' labels and text
 * features. Calibrating or adding classes leaves it unchanged, so a discovery's clusters can be added
 * one at a time; another detector, or the same classes under another model, differs.
 */
import { createHash } from "node:crypto";
import { ClipOodError } from "../errors.js";
import { row } from "../maths/vectors.js";
import type { Detector } from "../ood/detector.js";

/** SHA-256 (hex) over the method and, for each of `labels` (default all the detector's classes) in order, its label and feature. */
export function detectorFingerprint(detector: Pick<Detector, "method" | "classFeatures">, labels: readonly string[] = detector.classFeatures.labels): string {
  const h = createHash("sha256").update(JSON.stringify([detector.method, labels]));
  const m = detector.classFeatures.matrix;
  for (const label of labels) {
    const i = detector.classFeatures.labels.indexOf(label);
    if (i < 0) throw new ClipOodError("CLASSES", `the detector has no class "${label}"`, { hint: `its classes are ${detector.classFeatures.labels.join(", ")}` });
    const r = row(m, i);
    h.update(new Uint8Array(r.buffer, r.byteOffset, r.byteLength));
  }
  return h.digest("hex");
}
