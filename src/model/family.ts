/**
 * Model families: what differs between CLIP and SigLIP exports, decided by config.json's model_type
 * (never by the model's name) and the files beside it (MODEL-FOLDER.md, "Families").
 */
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { ClipOodError, messageOf, shownValue } from "../errors.js";
import { CLIP_SCORING } from "../maths/scores.js";
import type { Scoring } from "../maths/scores.js";
import { DTYPE_SUFFIX } from "./folder.js";
import type { Dtype } from "./folder.js";

export const MODEL_FAMILIES = ["clip", "siglip"] as const;
export type ModelFamily = (typeof MODEL_FAMILIES)[number];

/** How a family's text tower wants its ids (the tokenizer reads ids and lengths from the files). */
export interface TextContract {
  /**
   * "longest": CLIP pools causally at the end token, so padding after it changes nothing and a batch
   * is padded to its longest prompt. "max": SigLIP attends in both directions and pools the last
   * position, so every prompt is padded to the full context length with the pad id, as it was trained.
   */
  padding: "longest" | "max";
  /** Whether a start token is put first (CLIP's <|startoftext|>; SigLIP has none). */
  startToken: boolean;
  /** Graph output that holds the pooled, projected embedding, by tower. */
  textOutput: string;
  visionOutput: string;
}

export const TEXT_CONTRACTS: Record<ModelFamily, TextContract> = {
  clip: { padding: "longest", startToken: true, textOutput: "text_embeds", visionOutput: "image_embeds" },
  // SigLIP's towers have no projection: SiglipModel.get_*_features return pooler_output, and the
  // transformers.js exports name the tower outputs so.
  siglip: { padding: "max", startToken: false, textOutput: "pooler_output", visionOutput: "pooler_output" },
};

/** The family a config.json declares; an absent model_type is read as CLIP, as older exports omit it. */
export function familyOf(modelType: unknown, configFile: string): ModelFamily {
  if (modelType === undefined || modelType === "clip") return "clip";
  if (modelType === "siglip") return "siglip";
  const shown = typeof modelType === "string" ? `"${shownValue(modelType).slice(1, -1)}"` : shownValue(modelType);
  throw new ClipOodError("MODEL_FOLDER", `${configFile} says model_type ${shown}, not "clip" or "siglip"`, {
    hint: "clip-ood runs CLIP and SigLIP exports (two towers: text_model and vision_model)",
  });
}

/** User-given logit scale and bias, which win over anything read from the folder. */
export interface LogitOverride {
  logitScale?: number;
  logitBias?: number;
}

/**
 * The family's scoring rule. CLIP's scale is the fixed 100 (exp of the stored 4.6052, MODEL-FOLDER.md).
 * SigLIP's scale and bias are learned parameters that neither tower graph holds: they are read from the
 * combined graph's initializers (onnx/model{sfx}.onnx, then onnx/model.onnx), unless both are given.
 */
export async function familyScoring(family: ModelFamily, dir: string, dtype: Dtype, override: LogitOverride = {}): Promise<Scoring> {
  if (family === "clip") return CLIP_SCORING;
  checkOverride(override);
  let found: { logitScale?: number; logitBias?: number } = {};
  const tried: string[] = [];
  if (override.logitScale === undefined || override.logitBias === undefined) {
    for (const name of [...new Set([`model${DTYPE_SUFFIX[dtype]}.onnx`, "model.onnx"])]) {
      const file = path.join(dir, "onnx", name);
      tried.push(path.relative(dir, file));
      const params = await readLogitInitializers(file);
      if (params === undefined) continue;
      found = params;
      if (found.logitScale !== undefined && found.logitBias !== undefined) break;
    }
  }
  const logitScale = override.logitScale ?? found.logitScale;
  const logitBias = override.logitBias ?? found.logitBias;
  if (logitScale === undefined || logitBias === undefined) {
    const missing = [logitScale === undefined ? "logit_scale" : "", logitBias === undefined ? "logit_bias" : ""].filter(Boolean).join(" and ");
    throw new ClipOodError("MODEL_FOLDER", `SigLIP model ${dir}: ${missing} not found (looked in ${tried.join(", ")})`, {
      hint:
        "SigLIP scores with sigmoid(scale·cos + bias), learned values that the tower graphs do not hold; download the combined onnx/model.onnx beside the towers, " +
        "or pass --logit-scale and --logit-bias (the scale as used, i.e. exp of the stored logit_scale; siglip-base-patch16-224: 117.3308 and -12.9324)",
    });
  }
  return { kind: "sigmoid", logitScale, logitBias };
}

function checkOverride(o: LogitOverride): void {
  if (o.logitScale !== undefined && !(o.logitScale > 0 && Number.isFinite(o.logitScale))) {
    throw new ClipOodError("USAGE", `--logit-scale must be a positive number, got ${o.logitScale}`, { hint: "give the scale as used (exp of the stored logit_scale), e.g. 117.3308" });
  }
  if (o.logitBias !== undefined && !Number.isFinite(o.logitBias)) {
    throw new ClipOodError("USAGE", `--logit-bias must be a finite number, got ${o.logitBias}`, { hint: "e.g. -12.9324" });
  }
}

/** Initializers above this size are weights, not the scalar logit parameters, and are skipped unread. */
const MAX_SCALAR_TENSOR_BYTES = 4096;
const FLOAT = 1;
const DOUBLE = 11;

/**
 * logit_scale (stored as its log, as SiglipModel keeps it; exp is applied here) and logit_bias from an
 * ONNX file's initializers, or undefined when the file does not exist. The file is walked field by
 * field with positioned reads: combined graphs run to hundreds of MB, and only a few bytes of two
 * scalar tensors are wanted.
 */
export async function readLogitInitializers(file: string): Promise<{ logitScale?: number; logitBias?: number } | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, "r");
  } catch {
    return undefined;
  }
  try {
    const size = (await handle.stat()).size;
    const reader = new FieldReader(handle, file);
    const graph = await reader.find(0, size, 7); // ModelProto.graph
    if (!graph) return {};
    const out: { logitScale?: number; logitBias?: number } = {};
    for await (const init of reader.fields(graph.start, graph.end, 5)) {
      // GraphProto.initializer
      if (init.end - init.start > MAX_SCALAR_TENSOR_BYTES) continue;
      const tensor = parseScalarTensor(await reader.bytes(init.start, init.end));
      if (tensor?.name === "logit_scale") out.logitScale = Math.exp(tensor.value);
      else if (tensor?.name === "logit_bias") out.logitBias = tensor.value;
    }
    return out;
  } catch (e) {
    throw new ClipOodError("MODEL_FOLDER", `cannot read ${file}: ${messageOf(e)}`, {
      hint: "the combined graph is damaged or not an ONNX model; download it again, or pass --logit-scale and --logit-bias",
      cause: e,
    });
  } finally {
    await handle.close();
  }
}

interface Span {
  start: number;
  end: number;
}

/** Length-delimited protobuf fields of one number within a byte range of a file. */
class FieldReader {
  constructor(
    private readonly handle: FileHandle,
    private readonly file: string,
  ) {}

  async bytes(start: number, end: number): Promise<Uint8Array> {
    const buf = new Uint8Array(end - start);
    const { bytesRead } = await this.handle.read(buf, 0, buf.length, start);
    if (bytesRead !== buf.length) throw new Error(`${this.file} ends inside a field`);
    return buf;
  }

  async find(start: number, end: number, field: number): Promise<Span | undefined> {
    for await (const span of this.fields(start, end, field)) return span;
    return undefined;
  }

  async *fields(start: number, end: number, field: number): AsyncGenerator<Span> {
    let pos = start;
    while (pos < end) {
      // A tag and a length are at most 10 + 10 bytes.
      const head = await this.bytes(pos, Math.min(end, pos + 20));
      const tag = varint(head, 0);
      const wire = tag.value % 8;
      const number = Math.floor(tag.value / 8);
      let next: number;
      let span: Span | undefined;
      if (wire === 0) next = pos + varint(head, tag.next).next;
      else if (wire === 1) next = pos + tag.next + 8;
      else if (wire === 5) next = pos + tag.next + 4;
      else if (wire === 2) {
        const len = varint(head, tag.next);
        span = { start: pos + len.next, end: pos + len.next + len.value };
        next = span.end;
      } else throw new Error(`unexpected protobuf wire type ${wire} at byte ${pos}`);
      if (next > end) throw new Error(`a field at byte ${pos} runs past its message`);
      if (span && number === field) yield span;
      pos = next;
    }
  }
}

function varint(buf: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let mult = 1;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) return { value, next: i + 1 };
    mult *= 128;
  }
  throw new Error("truncated protobuf varint");
}

/** A TensorProto holding one float or double (dims [] or [1]), or undefined for anything else. */
export function parseScalarTensor(buf: Uint8Array): { name: string; value: number } | undefined {
  let name: string | undefined;
  let dataType: number | undefined;
  let count = 1;
  let raw: Uint8Array | undefined;
  let floats: number[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  while (pos < buf.length) {
    const tag = varint(buf, pos);
    const wire = tag.value % 8;
    const field = Math.floor(tag.value / 8);
    pos = tag.next;
    if (wire === 0) {
      const v = varint(buf, pos);
      if (field === 1) count *= v.value; // dims, unpacked
      if (field === 2) dataType = v.value;
      pos = v.next;
    } else if (wire === 5) {
      if (field === 4) floats.push(view.getFloat32(pos, true));
      pos += 4;
    } else if (wire === 1) {
      if (field === 10) floats.push(view.getFloat64(pos, true));
      pos += 8;
    } else if (wire === 2) {
      const len = varint(buf, pos);
      const body = buf.subarray(len.next, len.next + len.value);
      if (field === 1) {
        // dims, packed
        let p = 0;
        while (p < body.length) {
          const d = varint(body, p);
          count *= d.value;
          p = d.next;
        }
      } else if (field === 4 || field === 10) {
        const w = field === 4 ? 4 : 8;
        const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
        floats = Array.from({ length: Math.floor(body.length / w) }, (_, i) => (w === 4 ? v.getFloat32(i * w, true) : v.getFloat64(i * w, true)));
      } else if (field === 8) name = new TextDecoder().decode(body);
      else if (field === 9) raw = body;
      pos = len.next + len.value;
    } else return undefined;
  }
  if (name === undefined || count !== 1) return undefined;
  if (raw && (dataType === FLOAT || dataType === DOUBLE)) {
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const value = dataType === FLOAT && raw.length === 4 ? v.getFloat32(0, true) : dataType === DOUBLE && raw.length === 8 ? v.getFloat64(0, true) : undefined;
    return value === undefined ? undefined : { name, value };
  }
  return floats.length === 1 ? { name, value: floats[0]! } : undefined;
}
