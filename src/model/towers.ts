/**
 * A loaded model's two tower graphs, run in the worker pool: what each graph declares, and one
 * inference call that turns a feed into L2-normalised embedding rows. The text and image embedders
 * build the feeds; nothing here knows about prompts or pixels.
 */
import { ClipOodError } from "../errors.js";
import type { InferencePool } from "../engine/pool.js";
import type { GraphInfo, TensorValue, ValueInfo } from "../engine/tensors.js";
import { fromFloat16Bits } from "../maths/float16.js";
import { matrix, normalizeRows } from "../maths/vectors.js";
import { TEXT_CONTRACTS } from "./family.js";
import type { ResolvedModel } from "./resolve.js";

export type Tower = "text" | "vision";

export class Towers {
  private textInfo: Promise<GraphInfo> | undefined;
  private visionInfo: Promise<GraphInfo> | undefined;
  private warnedFallback = false;

  constructor(
    readonly model: ResolvedModel,
    private readonly pool: InferencePool,
    private readonly warn: (message: string) => void,
  ) {}

  /** How many batches can run at once. */
  get workers(): number {
    return this.pool.workers;
  }

  file(tower: Tower): string {
    return tower === "text" ? this.model.textModel : this.model.visionModel;
  }

  /** The graph's inputs and outputs, read once per tower. */
  describe(tower: Tower): Promise<GraphInfo> {
    const file = this.file(tower);
    const info = tower === "text" ? (this.textInfo ??= this.pool.describe(file)) : (this.visionInfo ??= this.pool.describe(file));
    return info.then((i) => {
      if (i.fallback && !this.warnedFallback) {
        this.warnedFallback = true;
        this.warn(
          `--device cuda: onnxruntime's CUDA provider is not available (${i.fallback}); running on the CPU. ` +
            "To use an NVIDIA GPU, run `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install` in your project (linux/x64; it downloads the CUDA provider; CUDA 12 and cuDNN 9 must be installed).",
        );
      }
      return i;
    });
  }

  /** Embedding dimension, read from the vision graph's declared output (or, if symbolic, config.json). */
  async embeddingDim(): Promise<number> {
    const info = await this.describe("vision");
    const d = declared(info, "output", this.embeddingsOutput("vision"), this.model.visionModel).shape[1];
    if (typeof d === "number") return d;
    if (this.model.config.projectionDim !== undefined) return this.model.config.projectionDim;
    throw new ClipOodError("MODEL_GRAPH", `${this.model.visionModel}: image_embeds has a symbolic width and config.json has no projection_dim`, {
      hint: "add projection_dim to config.json",
    });
  }

  /**
   * Runs `tower` for its embeddings output (unit rows, one per batch item); `extraOutputs` are fetched
   * in the same call and returned as the graph gives them.
   */
  async embed(
    tower: Tower,
    feeds: Record<string, TensorValue>,
    extraOutputs: readonly string[] = [],
  ): Promise<{ rows: Float32Array[]; extras: Record<string, TensorValue> }> {
    const info = await this.describe(tower);
    const file = this.file(tower);
    const name = this.embeddingsOutput(tower);
    declared(info, "output", name, file);
    const outputs = await this.pool.run(file, feeds, [name, ...extraOutputs]);
    const extras: Record<string, TensorValue> = {};
    for (const x of extraOutputs) extras[x] = outputs[x]!;
    const result = outputs[name]!;
    const data = result.type === "float16" ? fromFloat16Bits(result.data as Uint16Array) : (result.data as Float32Array);
    const [rows, cols] = result.dims;
    if (result.dims.length !== 2 || rows === undefined || cols === undefined || data.length !== rows * cols) {
      throw new ClipOodError("MODEL_GRAPH", `${file}: ${name} has shape [${result.dims.join(", ")}], expected [batch, dim]`, {
        hint: "this graph does not follow the CLIP export contract (MODEL-FOLDER.md)",
      });
    }
    const m = normalizeRows(matrix(rows, cols, Float32Array.from(data)));
    return { rows: Array.from({ length: rows }, (_, i) => m.data.slice(i * cols, (i + 1) * cols)), extras };
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private embeddingsOutput(tower: Tower): string {
    const contract = TEXT_CONTRACTS[this.model.family];
    return tower === "text" ? contract.textOutput : contract.visionOutput;
  }
}

const GRAPH_HINTS = {
  input: "clip-ood needs the Hugging Face CLIP tower exports: text_model (input_ids) and vision_model (pixel_values)",
  output: "use the projection exports (CLIPTextModelWithProjection / CLIPVisionModelWithProjection), which output text_embeds and image_embeds; SigLIP towers output pooler_output",
};

/** The declared input or output `name`, or an error listing what the graph declares instead. */
export function declared(info: GraphInfo, kind: "input" | "output", name: string, file: string): ValueInfo {
  const values = kind === "input" ? info.inputs : info.outputs;
  const v = values.find((x) => x.name === name);
  if (!v) {
    throw new ClipOodError("MODEL_GRAPH", `${file} has no ${kind} "${name}" (it declares ${values.map((x) => x.name).join(", ") || "none"})`, {
      hint: GRAPH_HINTS[kind],
    });
  }
  return v;
}

export function unsupported(file: string, input: ValueInfo): ClipOodError {
  return new ClipOodError("MODEL_GRAPH", `${file} declares input "${input.name}" of type ${input.type}, which clip-ood cannot feed`, {
    hint: "CLIP text graphs take input_ids (and optionally attention_mask) as int64; vision graphs take pixel_values as float32 or float16",
  });
}
