/**
 * Worker-thread side of the inference pool. onnxruntime-node's run() is a synchronous native call
 * (STACK.md §2.4), so it runs here, never on the main thread. Each worker keeps one session per
 * graph file and thread count.
 */
import * as ort from "onnxruntime-node";
import type { Device, GraphInfo, TensorValue, ValueInfo } from "./tensors.js";

export interface SessionKey {
  file: string;
  threads: number;
  device: Device;
}

export type WorkerTask =
  | { kind: "describe"; session: SessionKey }
  | { kind: "run"; session: SessionKey; feeds: Record<string, TensorValue>; outputs: string[] };

interface Opened {
  session: ort.InferenceSession;
  device: Device;
  fallback?: string;
}

const sessions = new Map<string, Promise<Opened>>();

/** The session options of every graph clip-ood runs (the throughput bench's raw runs use them too). */
export function sessionOptions(threads: number, device: Device = "cpu"): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: device === "cuda" ? [{ name: "cuda", deviceId: 0 }, "cpu"] : ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    // Several workers share the cores: spinning idle threads would steal them from each other.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
}

/**
 * A CUDA session where asked for and possible; otherwise the CPU, with the reason kept so that the
 * caller can say once why (the npm build ships without the CUDA provider unless installed for it).
 */
async function open(key: SessionKey): Promise<Opened> {
  if (key.device === "cuda") {
    // onnxruntime's process-wide logger would print a missing provider library as a native error
    // dump; the caller reports it once instead. Must be set before the first session of the process.
    ort.env.logLevel = "fatal";
    try {
      return { session: await ort.InferenceSession.create(key.file, sessionOptions(key.threads, "cuda")), device: "cuda" };
    } catch (e) {
      const fallback = e instanceof Error ? e.message.split("\n")[0]! : String(e);
      return { session: await ort.InferenceSession.create(key.file, sessionOptions(key.threads)), device: "cpu", fallback };
    }
  }
  return { session: await ort.InferenceSession.create(key.file, sessionOptions(key.threads)), device: "cpu" };
}

function session(key: SessionKey): Promise<Opened> {
  const id = `${key.file}\u0000${key.threads}\u0000${key.device}`;
  let s = sessions.get(id);
  if (!s) {
    s = open(key);
    sessions.set(id, s);
    s.catch(() => sessions.delete(id));
  }
  return s;
}

function valueInfo(m: ort.InferenceSession.ValueMetadata): ValueInfo {
  return m.isTensor
    ? { name: m.name, type: m.type, shape: m.shape.map((d) => (typeof d === "number" && d >= 0 ? d : String(d))) }
    : { name: m.name, type: "non-tensor", shape: [] };
}

export default async function handle(task: WorkerTask): Promise<GraphInfo | Record<string, TensorValue>> {
  const { session: s, device, fallback } = await session(task.session);
  if (task.kind === "describe") {
    return { inputs: s.inputMetadata.map(valueInfo), outputs: s.outputMetadata.map(valueInfo), device, ...(fallback ? { fallback } : {}) };
  }
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, v] of Object.entries(task.feeds)) feeds[name] = new ort.Tensor(v.type, v.data, v.dims);
  const results = await s.run(feeds, task.outputs);
  const out: Record<string, TensorValue> = {};
  for (const name of task.outputs) {
    const t = results[name];
    if (!t) throw new Error(`graph produced no output "${name}"`);
    out[name] = { type: t.type as TensorValue["type"], data: t.data as TensorValue["data"], dims: [...t.dims] };
  }
  // Outputs (B×D embeddings) are small: structured cloning them back costs less than a transfer dance.
  return out;
}
