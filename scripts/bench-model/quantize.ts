/**
 * The q8 variant's weight quantisation, as onnxruntime.quantization's quantize_dynamic writes it
 * (compute_scale_zp / quantize_data), in pure maths so that the quantised graphs can be written
 * without Python and tested against hand-computed scales.
 */

/**
 * How one tower's MatMul weights are quantised for the q8 variant.
 * - op "matmul-integer": quantize_dynamic's QOperator output, DynamicQuantizeLinear(x) → MatMulInteger →
 *   Cast → Mul by x_scale·w_scale (→ Add bias), which onnxruntime fuses to DynamicQuantizeMatMul at load;
 *   "contrib": that com.microsoft DynamicQuantizeMatMul written directly (runs the same kernels).
 * - int8 weights are symmetric (zero point 0; ±127, or ±64 with reduceRange), uint8 weights asymmetric
 *   over [min(w,0), max(w,0)] (0..255, or 0..127), as onnxruntime.quantization computes them.
 */
export interface Q8Form {
  op: "matmul-integer" | "contrib";
  weights: "int8" | "uint8";
  /** One scale (and zero point) per output column rather than one per tensor. */
  perColumn: boolean;
  /** 7-bit weights (quantize_dynamic's reduce_range). */
  reduceRange: boolean;
}

export type Q8Preset = "xenova" | "int8";
export interface Q8Forms {
  vision: Q8Form;
  text: Q8Form;
}

/**
 * - "xenova" (default): what transformers.js's converter wrote for the Xenova CLIP exports
 *   (scripts/convert.py: quantize_dynamic with per_channel and reduce_range, QUInt8 weights for a graph
 *   that holds a Conv, i.e. the vision tower, QInt8 otherwise), so timings stand for the real q8 files.
 *   Unlike that converter the patch Conv and the token embedding stay fp32 (together ~5% of the work).
 * - "int8": quantize_dynamic's own defaults (QInt8, per tensor) for both towers. Signed weights run
 *   onnxruntime's u8s8 kernels, which use VNNI; uint8 weights run u8u8 kernels that cannot, and on an
 *   AVX-512 VNNI CPU the int8 vision tower is about twice as fast. Measured for ViT-B/32 vision, batch
 *   16, one thread, onnxruntime-node 1.30 on an AMD EPYC (Zen 5) core: fp32 25 images/s, "xenova" 37,
 *   "int8" 70 (per column 65, uint8 per tensor 36; the contrib op times as its MatMulInteger form).
 */
export const Q8_PRESETS: Readonly<Record<Q8Preset, Q8Forms>> = {
  xenova: {
    vision: { op: "matmul-integer", weights: "uint8", perColumn: true, reduceRange: true },
    text: { op: "matmul-integer", weights: "int8", perColumn: true, reduceRange: true },
  },
  int8: {
    vision: { op: "matmul-integer", weights: "int8", perColumn: false, reduceRange: false },
    text: { op: "matmul-integer", weights: "int8", perColumn: false, reduceRange: false },
  },
};

/** A preset, or one form for both towers (fields not given come from the "int8" preset). */
export function resolveQ8Forms(form: Q8Preset | Partial<Q8Form> = "xenova"): Q8Forms {
  if (typeof form === "string") {
    const preset = Q8_PRESETS[form];
    if (!preset) throw new Error(`unknown q8 form "${String(form)}": use ${Object.keys(Q8_PRESETS).join(" or ")}`);
    return preset;
  }
  return { vision: { ...Q8_PRESETS.int8.vision, ...form }, text: { ...Q8_PRESETS.int8.text, ...form } };
}

export interface QuantizedMatrix {
  data: Int8Array | Uint8Array;
  /** One per tensor, or one per column. */
  scale: Float32Array;
  zeroPoint: Int8Array | Uint8Array;
}

/** Quantises a row-major rows×cols matrix (MatMul's B) per tensor or per column. */
export function quantizeMatrix(w: Float32Array, rows: number, cols: number, form: Q8Form): QuantizedMatrix {
  const groups = form.perColumn ? cols : 1;
  const signed = form.weights === "int8";
  const [qmin, qmax] = signed ? (form.reduceRange ? [-64, 64] : [-127, 127]) : form.reduceRange ? [0, 127] : [0, 255];
  const lo = new Float32Array(groups);
  const hi = new Float32Array(groups);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = form.perColumn ? c : 0;
      const v = w[r * cols + c]!;
      if (v < lo[g]!) lo[g] = v;
      if (v > hi[g]!) hi[g] = v;
    }
  }
  const scale = new Float32Array(groups);
  const zero = new Int32Array(groups);
  for (let g = 0; g < groups; g++) {
    // The range always holds 0 so that 0 is exact; int8 weights are symmetric around it.
    const absmax = Math.max(-lo[g]!, hi[g]!);
    const [rmin, rmax] = signed ? [-absmax, absmax] : [lo[g]!, hi[g]!];
    const s = rmax > rmin ? (rmax - rmin) / (qmax - qmin) : 1;
    scale[g] = s;
    zero[g] = roundHalfEven(qmin - rmin / s);
  }
  const data = signed ? new Int8Array(rows * cols) : new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = form.perColumn ? c : 0;
      const q = roundHalfEven(w[r * cols + c]! / scale[g]!) + zero[g]!;
      data[r * cols + c] = Math.min(qmax, Math.max(qmin, q));
    }
  }
  return { data, scale, zeroPoint: signed ? Int8Array.from(zero) : Uint8Array.from(zero) };
}

/** numpy's round (ties to even), which onnxruntime.quantization uses; Math.round sends ties up. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
