/**
 * The graph IR (torch.fx's Graph/Node, ONNX's typed values): a model's forward pass as a list of
 * nodes in execution order. A node is an op with attributes; its inputs and outputs are values,
 * each with a shape and a dtype. Parameters and buffers are values named by their dot paths
 * (`features.0.weight`); the data input has a symbolic batch dimension ('N').
 */
import type { DType } from '../core/dtype.js';
import { ArgumentError } from '../core/errors.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * A dimension: a size, or 'N' for the batch (symbolic: any batch size runs). It is dim 0 of the
 * input and of most values, but attention moves it (a [3, N, H, L, d] view of q, k and v).
 */
export type Dim = number | 'N';

/**
 * The ops a graph can hold. Attributes per op (all plain JSON):
 * - linear [x, w, b|null]; matmul [a, b]; addmm [c, a, b] {beta, alpha}
 * - conv2d [x, w, b|null] {stride, padding, dilation: [h, w], groups}
 * - batchNorm [x, weight|null, bias|null, runningMean, runningVar] {eps, momentum} (traced in eval mode;
 *   a GraphModule in training mode normalizes by batch statistics and updates the running ones)
 * - dropout {p} (the identity in eval mode)
 * - layerNorm [x, w|null, b|null] {normalizedShape, eps}
 * - maxPool2d {kernel, stride, padding, dilation, ceilMode}; avgPool2d {kernel, stride, padding, ceilMode, countIncludePad};
 *   adaptiveAvgPool2d {outputSize}
 * - unary: relu sigmoid tanh gelu neg abs exp log sqrt rsqrt square reciprocal; leakyRelu {slope};
 *   softmax/logSoftmax {dim}; clamp {min, max} (null for no bound)
 * - binary add sub mul div maximum minimum pow: [a, b], or [a] with {scalar}; add/sub may carry {alpha}; rsub [a] {scalar} (scalar - a)
 * - flatten {startDim, endDim}; reshape {shape}, expand {shape}: null in the shape is the batch (a size equal
 *   to the traced batch); permute {dims}; squeeze {dim|null}; unsqueeze {dim}
 * - slice {dim, start, end, step} (end clipped to the size); select {dim, index}; pad {pads, value} (torch order: last dim first)
 * - cat/stack [...xs] {dim}; sum/mean {dims|null, keepdim}
 * - embedding [table, ids]: rows of the table at integer ids, shape [...ids, ...table.shape[1:]] (an imported Gather)
 */
export const OPS = [
  'linear', 'matmul', 'addmm', 'conv2d', 'batchNorm', 'layerNorm', 'dropout', 'maxPool2d', 'avgPool2d', 'adaptiveAvgPool2d',
  'relu', 'sigmoid', 'tanh', 'gelu', 'neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'square', 'reciprocal',
  'leakyRelu', 'softmax', 'logSoftmax', 'clamp',
  'add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'pow', 'rsub',
  'flatten', 'reshape', 'permute', 'squeeze', 'unsqueeze', 'expand', 'slice', 'select', 'pad', 'cat', 'stack', 'sum', 'mean',
  'embedding',
] as const;
export type OpName = (typeof OPS)[number];
const OP_SET = new Set<string>(OPS);
export const isOpName = (s: string): s is OpName => OP_SET.has(s);

export type AttrValue = number | boolean | string | null | number[] | (number | null)[];
export type Attrs = Record<string, AttrValue>;

/**
 * - input: the data input (graph.inputs)
 * - param / buffer: a module's parameter or buffer, named by its dot path
 * - constant: a tensor made inside forward that does not depend on the input (its data is kept)
 * - op: the output of a node
 */
export type ValueKind = 'input' | 'param' | 'buffer' | 'constant' | 'op';

export interface Value {
  /** Index in graph.values. */
  readonly id: number;
  /** 'input', a dot path for params and buffers, 'c3' for constants, 'v12' for op outputs. */
  name: string;
  kind: ValueKind;
  shape: Dim[];
  dtype: DType;
  /** The node that makes this value (op values only). */
  producer: Node | null;
  /** Nodes that read it, in execution order. */
  users: Node[];
  /** A constant's data (kept; the graph owns it). */
  data?: Tensor;
}

export interface Node {
  /** Index in graph.nodes (execution order). */
  readonly id: number;
  op: OpName;
  /** Operands in the op's order; null for an absent optional operand (a conv without bias). */
  inputs: (Value | null)[];
  attrs: Attrs;
  outputs: Value[];
  /** Dot path of the module whose forward ran the op ('' for the root). */
  module: string;
}

export class Graph {
  readonly values: Value[] = [];
  readonly nodes: Node[] = [];
  /** The data inputs (one for now). */
  readonly inputs: Value[] = [];
  /** Every parameter and buffer of the traced module, in state-dict order (some may be unused). */
  readonly state: Value[] = [];
  outputs: Value[] = [];
  /** The batch size of the example input it was traced with (a reshape size equal to it reads 'N'). */
  tracedBatch = 1;

  addValue(kind: ValueKind, name: string, shape: Dim[], dtype: DType): Value {
    const v: Value = { id: this.values.length, name, kind, shape, dtype, producer: null, users: [] };
    this.values.push(v);
    if (kind === 'input') this.inputs.push(v);
    if (kind === 'param' || kind === 'buffer') this.state.push(v);
    return v;
  }

  /** Append a node; its outputs are new op values. */
  addNode(op: OpName, inputs: (Value | null)[], attrs: Attrs, outputs: { shape: Dim[]; dtype: DType }[], module = ''): Node {
    const node: Node = { id: this.nodes.length, op, inputs, attrs, outputs: [], module };
    for (const o of outputs) {
      const v = this.addValue('op', `v${this.values.length}`, o.shape, o.dtype);
      v.producer = node;
      node.outputs.push(v);
    }
    for (const i of inputs) if (i) i.users.push(node);
    this.nodes.push(node);
    return node;
  }

  /** A value by name ('input', 'features.0.weight', 'v12'); throws naming it if absent. */
  value(name: string): Value {
    const v = this.values.find((x) => x.name === name);
    if (!v) throw new ArgumentError(`graph: no value named '${name}'`);
    return v;
  }
  /** Parameters and buffers by dot path. */
  stateByName(): Map<string, Value> { return new Map(this.state.map((v) => [v.name, v])); }
  /** Nodes whose op is one of `ops`. */
  find(...ops: OpName[]): Node[] { return this.nodes.filter((n) => ops.includes(n.op)); }
  /** Parameters and buffers some node reads. */
  usedState(): Value[] { return this.state.filter((v) => v.users.length > 0); }

  /** One line per node, as torch.fx's print_tabular: `v5 = conv2d(input, features.0.weight, null) {...} [1x20x24x24] @features.0`. */
  toString(): string {
    const fmt = (v: Value | null) => (v === null ? 'null' : v.name);
    const lines = [`graph(${this.inputs.map((v) => `${v.name}: ${v.dtype}[${v.shape.join(', ')}]`).join(', ')})`];
    for (const n of this.nodes) {
      const attrs = Object.keys(n.attrs).length ? ' ' + JSON.stringify(n.attrs) : '';
      const outs = n.outputs.map((o) => `${o.name}: [${o.shape.join(', ')}]`).join(', ');
      lines.push(`  ${outs} = ${n.op}(${n.inputs.map(fmt).join(', ')})${attrs}${n.module ? ` @${n.module}` : ''}`);
    }
    lines.push(`  return ${this.outputs.map((v) => v.name).join(', ')}`);
    return lines.join('\n');
  }

  /**
   * A plain-JSON form (constants' data as number arrays; parameters and buffers by name only,
   * their data lives in a state dict). `graphFromJSON` reads it back.
   */
  toJSON(): GraphJSON {
    return {
      format: 'topiary-graph', version: 1, tracedBatch: this.tracedBatch,
      values: this.values.map((v) => ({
        name: v.name, kind: v.kind, shape: v.shape, dtype: v.dtype,
        ...(v.kind === 'constant' && v.data ? { data: v.data.dataSync() } : {}),
      })),
      nodes: this.nodes.map((n) => ({ op: n.op, inputs: n.inputs.map((i) => (i ? i.id : null)), attrs: n.attrs, outputs: n.outputs.map((o) => o.id), module: n.module })),
      outputs: this.outputs.map((v) => v.id),
    };
  }

  /** Free the constants' data. */
  dispose(): void {
    for (const v of this.values) if (v.data) { v.data.dispose(); delete v.data; }
  }
}

export interface GraphJSON {
  format: 'topiary-graph';
  version: 1;
  tracedBatch: number;
  values: { name: string; kind: ValueKind; shape: Dim[]; dtype: DType; data?: number[] }[];
  nodes: { op: string; inputs: (number | null)[]; attrs: Attrs; outputs: number[]; module: string }[];
  outputs: number[];
}

/**
 * Read a graph back from its JSON form. `makeConstant(data, shape, dtype)` builds a constant's
 * tensor (run.ts passes topiary's `tensor`; the IR itself makes no tensors).
 */
export function graphFromJSON(j: GraphJSON, makeConstant?: (data: number[], shape: number[], dtype: DType) => Tensor): Graph {
  if (j?.format !== 'topiary-graph' || j.version !== 1) throw new ArgumentError(`graph: not a topiary graph (format '${j?.format}', version ${j?.version})`);
  const g = new Graph();
  g.tracedBatch = j.tracedBatch;
  const byIndex: Value[] = [];
  // Values that are not op outputs first (inputs, state, constants), keeping their order.
  j.values.forEach((v, i) => {
    if (v.kind === 'op') return;
    const val = g.addValue(v.kind, v.name, v.shape, v.dtype);
    if (v.kind === 'constant') {
      if (!v.data || !makeConstant) throw new ArgumentError(`graph: constant '${v.name}' has no data (or no way to make it)`);
      val.data = makeConstant(v.data, v.shape.map((d) => (d === 'N' ? j.tracedBatch : d)), v.dtype);
    }
    byIndex[i] = val;
  });
  for (const n of j.nodes) {
    if (!isOpName(n.op)) throw new ArgumentError(`graph: unknown op '${n.op}'`);
    const inputs = n.inputs.map((i) => {
      if (i === null) return null;
      const v = byIndex[i];
      if (!v) throw new ArgumentError(`graph: op '${n.op}' reads value ${i} before it is made`);
      return v;
    });
    const node = g.addNode(n.op, inputs, n.attrs, n.outputs.map((o) => ({ shape: j.values[o].shape, dtype: j.values[o].dtype })), n.module);
    n.outputs.forEach((o, k) => { node.outputs[k].name = j.values[o].name; byIndex[o] = node.outputs[k]; });
  }
  g.outputs = j.outputs.map((o) => {
    const v = byIndex[o];
    if (!v) throw new ArgumentError(`graph: output ${o} is never made`);
    return v;
  });
  return g;
}

/** Concrete sizes for a shape, with `batch` for 'N'. */
export const concreteShape = (shape: Dim[], batch: number): number[] => shape.map((d) => (d === 'N' ? batch : d));
export const numelOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
