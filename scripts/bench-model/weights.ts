/**
 * Seeded weights, put into a graph on demand. Each tensor has its own stream, seeded by (seed, name), so
 * any tensor can be regenerated alone and identically for the fp32 and q8 graphs without holding a
 * tower twice.
 */
import { FLOAT } from "../../src/maths/kernels/onnx-graph.js";
import type { Attr, GraphBuilder } from "../../src/maths/kernels/onnx-graph.js";
import { elements } from "./parameters.js";
import type { ParameterInfo } from "./parameters.js";
import { quantizeMatrix } from "./quantize.js";
import type { Q8Form } from "./quantize.js";

/** FNV-1a over the name, mixed with the seed: the tensor's stream seed. */
function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Fills `out` with N(0, std²) draws: sfc32 uniforms through Box–Muller (both outputs used), inlined
 * because the full model needs ~150 M draws.
 */
export function fillNormal(out: Float32Array, std: number, seed: number): Float32Array {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed | 0;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next();
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    const u1 = (next() + 1) / 4294967297; // (0, 1]: log stays finite
    const u2 = next() / 4294967296;
    const r = std * Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    out[i] = r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

function materialize(p: ParameterInfo, seed: number): Float32Array {
  const out = new Float32Array(elements(p.shape));
  if (p.init === "ones") return out.fill(1);
  if (p.init === "zeros") return out;
  return fillNormal(out, p.init.normal, streamSeed(seed, p.name));
}

export type Variant = { kind: "fp32" } | { kind: "q8"; form: Q8Form };

/** The parameters of one tower, generated on demand and put into the graph under their own names. */
export class Weights {
  private readonly byName: Map<string, ParameterInfo>;
  /** Activations already quantised: like quantize_dynamic, q, k and v share one DynamicQuantizeLinear. */
  private readonly quantized = new Map<string, [string, string, string]>();
  constructor(
    private readonly g: GraphBuilder,
    params: readonly ParameterInfo[],
    private readonly seed: number,
    private readonly variant: Variant,
  ) {
    this.byName = new Map(params.map((p) => [p.name, p]));
  }

  private info(name: string): ParameterInfo {
    const p = this.byName.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    return p;
  }

  /** An fp32 initializer holding parameter `name`. */
  fp32(name: string): string {
    const p = this.info(name);
    return this.g.floatArray(materialize(p, this.seed), p.shape, name);
  }

  /** x · W (+ b) for the Linear `name` (parameters `${name}.weight` [in,out] and `${name}.bias`). */
  linear(x: string, name: string, bias = true): string {
    const p = this.info(`${name}.weight`);
    const [nIn, nOut] = p.shape as [number, number];
    const b = bias ? this.fp32(`${name}.bias`) : undefined;
    const g = this.g;
    let y: string;
    if (this.variant.kind === "fp32") {
      y = g.op("MatMul", [x, this.fp32(p.name)]);
    } else {
      const form = this.variant.form;
      const { wq, ws, wzp } = this.quantizedWeight(p, [nIn, nOut], form);
      if (form.op === "contrib") {
        return g.ops("DynamicQuantizeMatMul", [x, wq, ws, wzp, ...(b ? [b] : [])], 1, {}, "com.microsoft")[0]!;
      }
      const [xq, xs, xzp] = this.dynamicQuantized(x);
      const acc = g.op("MatMulInteger", [xq, wq, xzp, wzp]);
      y = g.op("Mul", [g.op("Cast", [acc], { to: FLOAT }), g.op("Mul", [xs, ws])]);
    }
    return b ? g.op("Add", [y, b]) : y;
  }

  /**
   * Conv(x, W) + b for the convolution `name` (`${name}.weight` [out, in/groups, kh, kw], `${name}.bias`).
   * q8: quantize_dynamic's ConvInteger form, per tensor only: DynamicQuantizeLinear(x) → ConvInteger →
   * Cast → Mul by x_scale·w_scale → Add the bias reshaped to [1, C, 1, 1].
   */
  conv(x: string, name: string, attrs: Record<string, Attr>): string {
    const p = this.info(`${name}.weight`);
    const b = this.fp32(`${name}.bias`);
    const g = this.g;
    if (this.variant.kind === "fp32") return g.op("Conv", [x, this.fp32(p.name), b], attrs);
    const form = this.variant.form;
    if (form.perColumn || form.op === "contrib") throw new Error(`${name}: convolutions are quantised per tensor with ConvInteger only`);
    const { wq, ws, wzp } = this.quantizedWeight(p, p.shape, form);
    const [xq, xs, xzp] = this.dynamicQuantized(x);
    const acc = g.op("ConvInteger", [xq, wq, xzp, wzp], attrs);
    const y = g.op("Mul", [g.op("Cast", [acc], { to: FLOAT }), g.op("Mul", [xs, ws])]);
    return g.op("Add", [y, g.op("Reshape", [b, g.ints([1, -1, 1, 1])])]);
  }

  /** A weight quantised as `form` says (columns: the last dim of a [in, out] matrix), with its scale and zero point. */
  private quantizedWeight(p: ParameterInfo, dims: readonly number[], form: Q8Form) {
    const g = this.g;
    const cols = dims.at(-1)!;
    const q = quantizeMatrix(materialize(p, this.seed), elements(dims) / cols, cols, form);
    const qName = `${p.name}_quantized`;
    const wq = q.data instanceof Int8Array ? g.int8s(q.data, dims, qName) : g.uint8s(q.data, dims, qName);
    const scaleDims = form.perColumn ? [cols] : [];
    const ws = g.floatArray(q.scale, scaleDims, `${p.name}_scale`);
    const zpName = `${p.name}_zero_point`;
    const wzp = q.zeroPoint instanceof Int8Array ? g.int8s(q.zeroPoint, scaleDims, zpName) : g.uint8s(q.zeroPoint, scaleDims, zpName);
    return { wq, ws, wzp };
  }

  /** DynamicQuantizeLinear of x, once per activation however many weights read it. */
  private dynamicQuantized(x: string): [string, string, string] {
    let dql = this.quantized.get(x);
    if (!dql) this.quantized.set(x, (dql = this.g.ops("DynamicQuantizeLinear", [x], 3) as [string, string, string]));
    return dql;
  }
}
