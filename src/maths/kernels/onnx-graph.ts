/**
 * A small builder for ONNX graphs on top of onnx-proto: the generated test models (scripts/) and the
 * in-memory kernels that run the learned heads' matrix products on onnxruntime (logistic-kernel.ts,
 * tip-adapter-kernel.ts). Names are generated so that the graph-building code reads like the maths it
 * implements.
 */
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";
import type { onnx as Onnx } from "onnx-proto";
import os from "node:os";

// onnx-proto is CommonJS: its namespace comes through the default export under ESM.
const { onnx } = onnxProto;

type Dim = number | string;

export const OPSET = 13;

/** An attribute value: integers and integer lists as written, floats and strings wrapped (`{ float: 1e-5 }`, `{ string: "add" }`). */
export type Attr = number | number[] | { float: number } | { string: string };

export class GraphBuilder {
  private readonly nodes: Onnx.INodeProto[] = [];
  private readonly initializers: Onnx.ITensorProto[] = [];
  private readonly inputs: Onnx.IValueInfoProto[] = [];
  private readonly outputs: Onnx.IValueInfoProto[] = [];
  /** Operator sets beyond the default domain's (e.g. com.microsoft for contrib ops). */
  private readonly domains = new Map<string, number>();
  private counter = 0;

  constructor(
    private readonly name: string,
    private readonly opset: number = OPSET,
  ) {}

  input(name: string, elemType: Onnx.TensorProto.DataType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares `value` as a graph output under `name` (outputs are listed in call order). */
  output(value: string, name: string, elemType: Onnx.TensorProto.DataType, dims: readonly Dim[]): void {
    this.op("Identity", [value], {}, name);
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  floats(values: ArrayLike<number>, dims: readonly number[]): string {
    const name = `w${this.counter++}`;
    const data = Float32Array.from(values);
    this.initializers.push({ name, dims: [...dims], dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  ints(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = `i${this.counter++}`;
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims: [...dims], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  /**
   * A float initializer that shares `data`'s memory instead of copying it (full-size weights run to
   * hundreds of MB). The caller must not change `data` before encode().
   */
  floatArray(data: Float32Array, dims: readonly number[], name?: string): string {
    return this.raw(onnx.TensorProto.DataType.FLOAT, data, dims, name ?? `w${this.counter++}`);
  }

  /** An int8 initializer (quantised weights, zero points), sharing `data`'s memory. */
  int8s(data: Int8Array, dims: readonly number[], name?: string): string {
    return this.raw(onnx.TensorProto.DataType.INT8, data, dims, name ?? `q${this.counter++}`);
  }

  /** A uint8 initializer, sharing `data`'s memory. */
  uint8s(data: Uint8Array, dims: readonly number[], name?: string): string {
    return this.raw(onnx.TensorProto.DataType.UINT8, data, dims, name ?? `q${this.counter++}`);
  }

  private raw(dataType: Onnx.TensorProto.DataType, data: ArrayBufferView, dims: readonly number[], name: string): string {
    const count = dims.reduce((a, b) => a * b, 1);
    const width = data instanceof Float32Array ? 4 : 1;
    if (data.byteLength !== count * width) throw new Error(`initializer ${name}: ${data.byteLength} bytes for dims [${dims.join(", ")}]`);
    this.initializers.push({ name, dims: [...dims], dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  /** Declares an operator set for `domain` (e.g. "com.microsoft", 1), as graphs using contrib ops must. */
  importDomain(domain: string, version: number): void {
    this.domains.set(domain, version);
  }

  scalar(value: number): string {
    return this.floats([value], []);
  }

  /** A scalar initializer of `dataType` FLOAT or DOUBLE (kernels build one graph per precision). */
  scalarOf(dataType: typeof FLOAT | typeof DOUBLE, value: number): string {
    const data = dataType === DOUBLE ? Float64Array.of(value) : Float32Array.of(value);
    const name = `s${this.counter++}`;
    this.initializers.push({ name, dims: [], dataType, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  /**
   * A float scalar emitted as a Constant node rather than an initializer, as PyTorch's exporter writes
   * small literals (a LayerNorm's epsilon, the 2 of its Pow).
   */
  constant(value: number): string {
    const out = `c${this.counter++}`;
    const t: Onnx.ITensorProto = { dims: [], dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(Float32Array.of(value).buffer) };
    this.nodes.push({ opType: "Constant", input: [], output: [out], name: `Constant_${this.counter++}`, attribute: [{ name: "value", type: onnx.AttributeProto.AttributeType.TENSOR, t }] });
    return out;
  }

  op(type: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, outName?: string): string {
    const out = outName ?? `t${this.counter++}`;
    const attribute = Object.entries(attrs).map(([name, v]) => attributeProto(name, v));
    this.nodes.push({ opType: type, input: [...inputs], output: [out], name: `${type}_${this.counter++}`, attribute });
    return out;
  }

  /**
   * A node with `count` outputs (DynamicQuantizeLinear has three), optionally from another domain
   * (declare it with importDomain). Returns the output names in order.
   */
  ops(type: string, inputs: readonly string[], count: number, attrs: Record<string, Attr> = {}, domain = ""): string[] {
    const outs = Array.from({ length: count }, () => `t${this.counter++}`);
    const attribute = Object.entries(attrs).map(([name, v]) => attributeProto(name, v));
    this.nodes.push({ opType: type, input: [...inputs], output: outs, name: `${type}_${this.counter++}`, attribute, ...(domain ? { domain } : {}) });
    return outs;
  }

  encode(): Uint8Array {
    const model: Onnx.IModelProto = {
      irVersion: 8,
      producerName: "clip-ood",
      opsetImport: [{ domain: "", version: this.opset }, ...[...this.domains].map(([domain, version]) => ({ domain, version }))],
      graph: { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}

function attributeProto(name: string, v: Attr): Onnx.IAttributeProto {
  return Array.isArray(v)
    ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v }
    : typeof v === "number"
      ? { name, type: onnx.AttributeProto.AttributeType.INT, i: v }
      : "string" in v
        ? { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(v.string) }
        : { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v.float };
}

function valueInfo(name: string, elemType: Onnx.TensorProto.DataType, dims: readonly Dim[]): Onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export const FLOAT = onnx.TensorProto.DataType.FLOAT;
export const DOUBLE = onnx.TensorProto.DataType.DOUBLE;
export const INT64 = onnx.TensorProto.DataType.INT64;
export const INT8 = onnx.TensorProto.DataType.INT8;
export const UINT8 = onnx.TensorProto.DataType.UINT8;

const kernelSessions = new Map<string, Promise<ort.InferenceSession>>();

/**
 * One onnxruntime session per in-memory kernel graph (`key` names the graph and its precision), created
 * on first use and kept for the process; a failed creation is forgotten so the next call retries.
 */
export function kernelSession(key: string, build: () => Uint8Array): Promise<ort.InferenceSession> {
  let s = kernelSessions.get(key);
  if (!s) {
    s = ort.InferenceSession.create(build(), {
      executionProviders: ["cpu"],
      intraOpNumThreads: os.availableParallelism(),
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      // Idle spinning threads would take the cores from the rest of the process between calls.
      extra: { session: { intra_op: { allow_spinning: "0" } } },
    });
    kernelSessions.set(key, s);
    s.catch(() => kernelSessions.delete(key));
  }
  return s;
}
