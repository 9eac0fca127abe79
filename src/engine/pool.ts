/**
 * A pool of worker threads running onnxruntime sessions, so inference never blocks the event loop.
 * Threads: `workers` workers × `threads` intra-op threads each; the default uses every core once.
 */
import os from "node:os";
import { Piscina } from "piscina";
import { ClipOodError, messageOf } from "../errors.js";
import type { Device, GraphInfo, TensorValue } from "./tensors.js";
import type { SessionKey, WorkerTask } from "./worker.js";

export interface PoolOptions {
  /** Worker threads (default 1: a CLI job batches; a server wants more). */
  workers?: number;
  /** onnxruntime intra-op threads per worker (default: cores / workers, at least 1). */
  threads?: number;
  /** Where graphs run (default cpu); cuda falls back to the CPU where the provider is missing. */
  device?: Device;
}

export function defaultThreads(workers: number): number {
  return Math.max(1, Math.floor(os.availableParallelism() / workers));
}

export class InferencePool {
  readonly workers: number;
  readonly threads: number;
  readonly device: Device;
  private readonly piscina: Piscina;

  constructor(options: PoolOptions = {}) {
    this.workers = positiveInt(options.workers ?? 1, "--workers");
    this.threads = positiveInt(options.threads ?? defaultThreads(this.workers), "--threads");
    this.device = options.device ?? "cpu";
    // Run from TypeScript sources (tests, tsx) or from the compiled dist/: the worker sits beside this file.
    const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    this.piscina = new Piscina({
      filename: new URL(`./worker${ext}`, import.meta.url).href,
      minThreads: this.workers,
      maxThreads: this.workers,
      idleTimeout: 60_000,
      // onnxruntime recurses deeply inside session.run on some inputs; the default 4 MB worker stack overflowed (SIGSEGV).
      resourceLimits: { stackSizeMb: 64 },
    });
  }

  async describe(file: string): Promise<GraphInfo> {
    return (await this.call({ kind: "describe", session: this.key(file) }, [])) as GraphInfo;
  }

  async run(file: string, feeds: Record<string, TensorValue>, outputs: string[]): Promise<Record<string, TensorValue>> {
    const transfer = Object.values(feeds).map((f) => f.data.buffer as ArrayBuffer);
    return (await this.call({ kind: "run", session: this.key(file), feeds, outputs }, transfer)) as Record<string, TensorValue>;
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }

  private key(file: string): SessionKey {
    return { file, threads: this.threads, device: this.device };
  }

  private async call(task: WorkerTask, transferList: ArrayBuffer[]): Promise<unknown> {
    try {
      return await this.piscina.run(task, { transferList });
    } catch (e) {
      // onnxruntime refuses external weights named outside the graph's folder: the folder's fault, not the run's.
      if (/External data path/i.test(messageOf(e))) {
        throw new ClipOodError("MODEL_GRAPH", `${task.session.file} keeps weights outside its folder: ${messageOf(e)}`, {
          hint: "a graph's external data (.onnx_data) must lie in the graph's own folder; download the export again",
          cause: e,
        });
      }
      throw new ClipOodError("INFERENCE", `onnxruntime failed on ${task.session.file}: ${messageOf(e)}`, {
        hint: "the graph may be corrupt or not a CLIP export; re-download the model or try another --dtype",
        cause: e,
      });
    }
  }
}

function positiveInt(v: number, flag: string): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new ClipOodError("USAGE", `${flag} must be a positive integer, got ${v}`, { hint: `e.g. ${flag} 2` });
  }
  return v;
}
