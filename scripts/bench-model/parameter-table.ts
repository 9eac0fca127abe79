/** The entries of a parameter table (parameters.ts) and the shapes the families share. */
import type { TowerSpec } from "./spec.js";

type Init = { normal: number } | "ones" | "zeros";
export interface ParameterInfo {
  name: string;
  /** As stored in the graph: Linear weights are [in, out] (MatMul's B), i.e. PyTorch's transposed. */
  shape: number[];
  init: Init;
  /** A buffer (BatchNorm's running statistics): in the graph, not counted among the parameters. */
  buffer?: boolean;
}

export const elements = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export const qkStd = (width: number) => Math.sqrt(2 / width);

export const linearParameters = (name: string, nIn: number, nOut: number, std = 0.02, bias = true): ParameterInfo[] => [
  { name: `${name}.weight`, shape: [nIn, nOut], init: { normal: std } },
  ...(bias ? [{ name: `${name}.bias`, shape: [nOut], init: { normal: 0.02 } }] : []),
];

export const mlpParameters = (name: string, t: TowerSpec): ParameterInfo[] => [...linearParameters(`${name}.fc1`, t.width, t.mlp), ...linearParameters(`${name}.fc2`, t.mlp, t.width)];

export const normParameters = (name: string, width: number): ParameterInfo[] => [
  { name: `${name}.weight`, shape: [width], init: "ones" },
  { name: `${name}.bias`, shape: [width], init: "zeros" },
];
