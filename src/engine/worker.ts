/**
 * Worker-thread side of the inference pool. onnxruntime-node's run() is a synchronous native call
 * (STACK.md §2.4), so it runs here, never on the main thread. Each worker keeps one session per
 * graph file and thread count.
 */
import * as ort from "onnxruntime-node";
import type { GraphInfo, TensorValue, ValueInfo } from "./tensors.js";

export interface SessionKey {
  file: string;
  threads: number;
}

export type WorkerTask =
  | { kind: "describe"; session: SessionKey }
  | { kind: "run"; session: SessionKey; feeds: Record<string, TensorValue>; outputs: string[] };

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/** The session options of every graph clip-ood runs (the throughput bench's raw runs use them too). */
export function sessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    // Several workers share the cores: spinning idle threads would steal them from each other.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
}

function session(key: SessionKey): Promise<ort.InferenceSession> {
  const id = `${key.file}\u0000${key.threads}`;
  let s = sessions.get(id);
  if (!s) {
    s = ort.InferenceSession.create(key.file, sessionOptions(key.threads));
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
  const s = await session(task.session);
  if (task.kind === "describe") {
    return { inputs: s.inputMetadata.map(valueInfo), outputs: s.outputMetadata.map(valueInfo) };
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
