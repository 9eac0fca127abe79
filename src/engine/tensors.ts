/** Plain tensor values that cross the worker-thread boundary (transferable buffers, no ORT objects). */
export type TensorType = "float32" | "float16" | "int64" | "int32";

export interface TensorValue {
  type: TensorType;
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array;
  dims: number[];
}

/** What the graph declares for one input or output, read from the session, never assumed. */
export interface ValueInfo {
  name: string;
  type: string;
  /** Numbers for fixed dimensions, strings for symbolic ones. */
  shape: (number | string)[];
}

export interface GraphInfo {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Where the session runs; with `fallback`, why the device asked for could not be used. */
  device: Device;
  fallback?: string;
}

/** Where graphs run: the CPU, or an NVIDIA GPU through onnxruntime's CUDA execution provider. */
export type Device = "cpu" | "cuda";
