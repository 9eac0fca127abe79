/**
 * The folders whose files the server may read for a client (eval sets, calibration folders, thumbnails,
 * search folders): every path a request names is resolved through links and must land inside one of
 * them, so a request cannot read the rest of the machine.
 */
import { realpath } from "node:fs/promises";
import path from "node:path";
import { ClipOodError } from "../errors.js";
import { readDataset } from "../eval/datasets.js";
import type { Dataset } from "../eval/datasets.js";
import { NotFoundError } from "./service-errors.js";

export class DataRoots {
  private readonly roots: Promise<string[]>;

  constructor(dirs: readonly string[]) {
    this.roots = Promise.all(dirs.map((r) => realpath(r).catch(() => path.resolve(r))));
  }

  /** A server-side path, admitted only inside a data root. */
  async confine(p: string, what: string): Promise<string> {
    const roots = await this.roots;
    if (roots.length === 0) throw new ClipOodError("USAGE", `${what}: this server reads no server-side files`, { hint: "start it with --data-root <folder>, or upload the images" });
    const resolved = await realpath(path.resolve(roots[0]!, p)).catch(() => undefined);
    if (resolved === undefined || !roots.some((r) => within(r, resolved))) throw new NotFoundError(`${what} ${p} is not inside a data root of this server`);
    return resolved;
  }

  /**
   * A data set on the server; every image it names must lie inside a data root too (lists may point
   * anywhere, and a folder may hold links to files elsewhere, which the folder walk follows).
   */
  async dataset(spec: string, what: string): Promise<Dataset> {
    const file = await this.confine(spec, what);
    const ds = await readDataset(file);
    const roots = await this.roots;
    const real = await Promise.all(ds.images.map((i) => realpath(i.input).catch(() => path.resolve(i.input))));
    const outside = ds.images.find((_, k) => !roots.some((r) => within(r, real[k]!)));
    if (outside) throw new NotFoundError(`${what} ${spec} names ${outside.input}, which is not inside a data root`);
    return ds;
  }
}

/** Whether `p` is `root` or lies below it. */
function within(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}
