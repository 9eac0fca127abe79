/**
 * Reads the vision head behind image_embeds (post-layernorm and projection) from the ONNX graph itself,
 * by walking back from the image_embeds output, so that GL-MCM works on stock exports that have no
 * `local_embeds` output.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import onnxProto from "onnx-proto";
import type { onnx as Onnx } from "onnx-proto";
import { ClipOodError, messageOf } from "../../errors.js";
import { fromFloat16Bits } from "../../maths/float16.js";
import { headAgreement } from "./local-features.js";
import type { VisionHead } from "./local-features.js";

// onnx-proto is CommonJS: its namespace comes through the default export under ESM.
const { onnx } = onnxProto;

const HEAD_HINT =
  "GL-MCM needs patch tokens (last_hidden_state) and the head weights; export a local_embeds output [batch, patches, projection_dim] " +
  "from the vision model, or use an fp32/fp16 export whose image_embeds is post_layernorm(last_hidden_state[:,0]) · visual_projection " +
  "(quantised exports replace that MatMul with integer kernels)";

/** Below this cosine a head read from a graph does not reproduce its image_embeds (fp16 graphs reach ~0.9999). */
export const HEAD_MIN_COSINE = 0.999;

/** Throws MODEL_GRAPH when the head read from `file` does not reproduce the graph's own image_embeds. */
export function checkHeadAgreement(
  file: string,
  lastHiddenState: Float32Array,
  imageEmbeds: Float32Array,
  batch: number,
  head: VisionHead,
  minCosine = HEAD_MIN_COSINE,
): number {
  const agreement = headAgreement(lastHiddenState, imageEmbeds, batch, head);
  if (!(agreement >= minCosine)) {
    throw new ClipOodError("MODEL_GRAPH", `${file}: the post-layernorm and projection read from the graph do not reproduce its image_embeds (cosine ${agreement.toFixed(4)} < ${minCosine})`, { hint: HEAD_HINT });
  }
  return agreement;
}

/** Ops that move or retype a tensor without changing what the head computes. */
const PASS_THROUGH = new Set(["Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Cast", "Gather"]);

type Tensor = Onnx.ITensorProto;
type Node = Onnx.INodeProto;

interface Graph {
  file: string;
  producer: Map<string, Node>;
  initializers: Map<string, Tensor>;
}

/** A constant found in the graph; its values are decoded only when asked for. */
interface Constant {
  dims: number[];
  /** The values when stored in the model file itself; undefined when they live in an external file. */
  peek(): Float32Array | undefined;
  load(): Promise<Float32Array>;
}

/** Reads the post-layernorm (γ, β, ε) and projection behind a vision graph's image_embeds output. */
export async function readVisionHead(onnxFile: string): Promise<VisionHead> {
  let bytes: Buffer;
  try {
    bytes = await readFile(onnxFile);
  } catch (e) {
    throw new ClipOodError("MODEL_FOLDER", `${onnxFile}: cannot read the vision graph (${messageOf(e)})`, {
      hint: "check the model folder: GL-MCM reads the head weights from onnx/vision_model*.onnx",
    });
  }
  let model: Onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new ClipOodError("MODEL_GRAPH", `${onnxFile}: not an ONNX model (${messageOf(e)})`, { hint: "re-download or re-export the vision model" });
  }
  const graph = model.graph;
  if (!graph?.output?.some((o) => o.name === "image_embeds")) throw notFound(onnxFile, "the graph has no image_embeds output");
  const g: Graph = { file: onnxFile, producer: new Map(), initializers: new Map() };
  for (const t of graph.initializer ?? []) if (t.name) g.initializers.set(t.name, t);
  for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) g.producer.set(o, n);

  const proj = findProjection(g);
  const ln = findLayerNorm(g, proj.activation);
  const [width, dim] = proj.weight.dims as [number, number];
  const [projection, gamma, beta, epsilon] = await Promise.all([
    proj.weight.load(),
    vectorOf(g, ln.gamma, width, 1, "LayerNorm scale"),
    vectorOf(g, ln.beta, width, 0, "LayerNorm bias"),
    ln.epsilon.load(),
  ]);
  if (proj.scale !== 1) for (let i = 0; i < projection.length; i++) projection[i]! *= proj.scale;
  if (epsilon.length !== 1 || !(epsilon[0]! >= 0)) throw notFound(onnxFile, "the LayerNorm epsilon is not a non-negative scalar");
  return { gamma, beta, epsilon: epsilon[0]!, projection, width, dim };
}

function notFound(file: string, why: string): ClipOodError {
  return new ClipOodError("MODEL_GRAPH", `${file}: cannot find the post-layernorm and projection behind image_embeds (${why})`, { hint: HEAD_HINT });
}

/** The projection MatMul (or Gemm) that makes image_embeds: its W×D weight and its activation input. */
function findProjection(g: Graph): { weight: Constant; activation: string; scale: number } {
  const node = g.producer.get(skipPassThrough(g, "image_embeds"));
  if (node?.opType === "MatMul") {
    const weight = constantOf(g, node.input?.[1] ?? "");
    if (!weight || weight.dims.length !== 2) throw notFound(g.file, "the MatMul before it has no constant 2-D weight");
    return { weight, activation: node.input![0]!, scale: 1 };
  }
  if (node?.opType === "Gemm") {
    if (intAttr(node, "transA", 0) !== 0) throw notFound(g.file, "its Gemm transposes the activations");
    if (node.input?.[2] && !isZeroConstant(g, node.input[2])) throw notFound(g.file, "its Gemm adds a bias, which CLIP's projection does not have");
    let weight = constantOf(g, node.input?.[1] ?? "");
    if (!weight || weight.dims.length !== 2) throw notFound(g.file, "the Gemm before it has no constant 2-D weight");
    if (intAttr(node, "transB", 0) === 1) weight = transposed(weight);
    return { weight, activation: node.input![0]!, scale: floatAttr(node, "alpha", 1) };
  }
  throw notFound(g.file, node ? `it comes from a ${node.opType} node, not a MatMul` : "it is not computed by any node");
}

interface LayerNormRefs {
  gamma: Constant | undefined;
  beta: Constant | undefined;
  epsilon: Constant;
}

/** The LayerNorm that feeds the projection: a LayerNormalization node or PyTorch's decomposed pattern. */
function findLayerNorm(g: Graph, activation: string): LayerNormRefs {
  let node = g.producer.get(skipPassThrough(g, activation));
  if (node?.opType === "LayerNormalization") {
    if (intAttr(node, "axis", -1) !== -1) throw notFound(g.file, "its LayerNormalization does not normalise the last axis");
    const gamma = constantOf(g, node.input?.[1] ?? "");
    if (!gamma) throw notFound(g.file, "its LayerNormalization has no constant scale");
    const bias = node.input?.[2];
    const beta = bias ? constantOf(g, bias) : undefined;
    if (bias && !beta) throw notFound(g.file, "its LayerNormalization has a bias that is not a constant");
    return { gamma, beta, epsilon: literal(floatAttr(node, "epsilon", 1e-5)) };
  }
  // Decomposed, from the end: [Add β] ← [Mul γ] ← Div(d, Sqrt(Add(ReduceMean(Pow(d, 2)), ε))),
  // d = Sub(x, ReduceMean(x)).
  let beta: Constant | undefined;
  let gamma: Constant | undefined;
  if (node?.opType === "Add") {
    const split = constantOperand(g, node);
    if (split) {
      beta = split.constant;
      node = g.producer.get(split.other);
    }
  }
  if (node?.opType === "Mul") {
    const split = constantOperand(g, node);
    if (split) {
      gamma = split.constant;
      node = g.producer.get(split.other);
    }
  }
  const fail = () => notFound(g.file, `the projection's input is not a LayerNorm (found ${node?.opType ?? "a graph input"})`);
  if (node?.opType !== "Div") throw fail();
  const [centred, denominator] = node.input ?? [];
  const sub = g.producer.get(centred ?? "");
  const mean = g.producer.get(sub?.input?.[1] ?? "");
  if (sub?.opType !== "Sub" || mean?.opType !== "ReduceMean" || mean.input?.[0] !== sub.input?.[0]) throw fail();
  const sqrt = g.producer.get(denominator ?? "");
  const addEps = g.producer.get(sqrt?.opType === "Sqrt" ? (sqrt.input?.[0] ?? "") : "");
  const split = addEps?.opType === "Add" ? constantOperand(g, addEps) : undefined;
  const variance = g.producer.get(split?.other ?? "");
  const square = g.producer.get(variance?.opType === "ReduceMean" ? (variance.input?.[0] ?? "") : "");
  const exponent = square?.opType === "Pow" ? constantOf(g, square.input?.[1] ?? "")?.peek() : undefined;
  const squares =
    (square?.opType === "Pow" && square.input?.[0] === centred && exponent?.length === 1 && exponent[0] === 2) ||
    (square?.opType === "Mul" && square.input?.[0] === centred && square.input?.[1] === centred);
  if (!split || !squares) throw fail();
  return { gamma, beta, epsilon: split.constant };
}

function skipPassThrough(g: Graph, name: string): string {
  let current = name;
  // Bounded: a malformed graph with a cycle must not hang the caller.
  for (let steps = 0, node = g.producer.get(current); node && PASS_THROUGH.has(node.opType ?? "") && steps < MAX_CHAIN; steps++, node = g.producer.get(current)) {
    current = node.input?.[0] ?? "";
  }
  return current;
}

/** The longest chain of pass-through or constant-forming nodes followed; real exports have one or two. */
const MAX_CHAIN = 32;

/** For a binary node with one constant operand: that constant and the other input. */
function constantOperand(g: Graph, node: Node): { constant: Constant; other: string } | undefined {
  const [a, b] = node.input ?? [];
  if (!a || !b) return undefined;
  const cb = constantOf(g, b);
  if (cb && !constantOf(g, a)) return { constant: cb, other: a };
  const ca = constantOf(g, a);
  if (ca && !cb) return { constant: ca, other: b };
  return undefined;
}

/** A tensor whose value is fixed by the graph: an initializer or a Constant node, possibly through Identity, Cast or Transpose. */
function constantOf(g: Graph, name: string, depth = 0): Constant | undefined {
  const init = g.initializers.get(name);
  if (init) return tensorConstant(g, init);
  const node = depth < MAX_CHAIN ? g.producer.get(name) : undefined;
  switch (node?.opType) {
    case "Constant": {
      const attr = node.attribute?.[0];
      if (attr?.name === "value" && attr.t) return tensorConstant(g, attr.t);
      if (attr?.name === "value_float") return literal(attr.f ?? 0);
      if (attr?.name === "value_floats") return known(Float32Array.from(attr.floats ?? []), [attr.floats?.length ?? 0]);
      return undefined;
    }
    case "Identity":
    case "Cast":
      return constantOf(g, node.input?.[0] ?? "", depth + 1);
    case "Transpose": {
      const inner = constantOf(g, node.input?.[0] ?? "", depth + 1);
      const perm = (node.attribute ?? []).find((a) => a.name === "perm")?.ints?.map(toNumber);
      const swaps = !perm || (perm.length === 2 && perm[0] === 1 && perm[1] === 0);
      return inner && inner.dims.length === 2 && swaps ? transposed(inner) : undefined;
    }
    default:
      return undefined;
  }
}

function literal(value: number): Constant {
  return known(Float32Array.of(value), []);
}

function known(values: Float32Array, dims: number[]): Constant {
  return { dims, peek: () => values.slice(), load: async () => values.slice() };
}

function transposed(c: Constant): Constant {
  const [r, k] = c.dims as [number, number];
  const swap = (a: Float32Array) => {
    const out = new Float32Array(a.length);
    for (let i = 0; i < r; i++) for (let j = 0; j < k; j++) out[j * r + i] = a[i * k + j]!;
    return out;
  };
  return {
    dims: [k, r],
    peek: () => {
      const a = c.peek();
      return a && swap(a);
    },
    load: async () => swap(await c.load()),
  };
}

function isZeroConstant(g: Graph, name: string): boolean {
  // A bias that cannot be read without I/O is treated as a real one.
  return constantOf(g, name)?.peek()?.every((v) => v === 0) ?? false;
}

/** A γ or β of `width` values (a single value broadcasts; absent means `fill`). */
async function vectorOf(g: Graph, c: Constant | undefined, width: number, fill: number, what: string): Promise<Float32Array> {
  if (!c) return new Float32Array(width).fill(fill);
  const v = await c.load();
  if (v.length === width) return v;
  if (v.length === 1) return new Float32Array(width).fill(v[0]!);
  throw notFound(g.file, `the ${what} has ${v.length} values but the projection expects width ${width}`);
}

function tensorConstant(g: Graph, t: Tensor): Constant {
  const dims = (t.dims ?? []).map(toNumber);
  const checked = (values: Float32Array) => {
    const count = dims.reduce((a, b) => a * b, 1);
    if (values.length !== count) throw notFound(g.file, `tensor ${t.name ?? "(unnamed)"} holds ${values.length} values for shape [${dims.join(",")}]`);
    return values;
  };
  return {
    dims,
    peek: () => {
      const values = decodeInline(t);
      return values && checked(values);
    },
    load: async () => checked(decodeInline(t) ?? (await decodeExternal(g, t))),
  };
}

const DT = onnx.TensorProto.DataType;

/** Float values of a tensor stored in the model file (raw_data or the typed fields); undefined if stored externally. */
function decodeInline(t: Tensor): Float32Array | undefined {
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) return undefined;
  if (t.rawData && t.rawData.length > 0) return fromRaw(t.dataType ?? 0, t.rawData);
  switch (t.dataType) {
    case DT.FLOAT:
      return Float32Array.from(t.floatData ?? []);
    case DT.DOUBLE:
      return Float32Array.from(t.doubleData ?? []);
    case DT.FLOAT16:
      // Half-precision values are kept as their bit patterns in int32_data.
      return fromFloat16Bits(Uint16Array.from(t.int32Data ?? []));
    case DT.BFLOAT16:
      return fromBfloat16Bits(Uint16Array.from(t.int32Data ?? []));
    default:
      return new Float32Array(0);
  }
}

function fromRaw(dataType: number, raw: Uint8Array): Float32Array {
  // Copy first: raw_data is a view into the file at an arbitrary, often unaligned, offset.
  const bytes = new Uint8Array(raw).buffer;
  switch (dataType) {
    case DT.FLOAT:
      return new Float32Array(bytes);
    case DT.DOUBLE:
      return Float32Array.from(new Float64Array(bytes));
    case DT.FLOAT16:
      return fromFloat16Bits(new Uint16Array(bytes));
    case DT.BFLOAT16:
      return fromBfloat16Bits(new Uint16Array(bytes));
    default:
      return new Float32Array(0);
  }
}

function fromBfloat16Bits(bits: Uint16Array): Float32Array {
  // A plain loop: TypedArray.from with a map function runs ~25× slower, and projections hold ~10⁶ values.
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16;
  return new Float32Array(out.buffer);
}

/** Tensors over 2 GB models keep their bytes in a side file named by the tensor, relative to the model. */
async function decodeExternal(g: Graph, t: Tensor): Promise<Float32Array> {
  const entry = (key: string) => t.externalData?.find((e) => e.key === key)?.value ?? undefined;
  const location = entry("location");
  const dir = path.dirname(g.file);
  const target = location ? path.resolve(dir, location) : undefined;
  if (!target || path.relative(dir, target).startsWith("..") || path.isAbsolute(location!)) {
    throw notFound(g.file, `tensor ${t.name ?? "(unnamed)"} names no usable external data file`);
  }
  const offset = Number(entry("offset") ?? 0);
  let data: Buffer;
  try {
    data = await readFile(target);
  } catch (e) {
    throw new ClipOodError("MODEL_FOLDER", `${target}: cannot read the external weights of ${g.file} (${messageOf(e)})`, {
      hint: "download the .onnx_data file that belongs beside the model",
    });
  }
  const length = entry("length") === undefined ? data.length - offset : Number(entry("length"));
  return fromRaw(t.dataType ?? 0, data.subarray(offset, offset + length));
}

function intAttr(node: Node, name: string, fallback: number): number {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  return a?.i === undefined || a.i === null ? fallback : toNumber(a.i);
}

function floatAttr(node: Node, name: string, fallback: number): number {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  return a?.f === undefined || a.f === null ? fallback : a.f;
}

/** protobufjs decodes int64 fields as Long objects. */
function toNumber(v: number | { toNumber(): number }): number {
  return typeof v === "number" ? v : v.toNumber();
}
