/**
 * ONNX export: a traced graph becomes an ONNX ModelProto (types generated from the official
 * onnx.proto by protoc-gen-es, src/graph/proto/onnx_pb.ts), with a dynamic batch dimension 'N',
 * BatchNorm in eval mode, and initializers named as topiary's parameters and buffers.
 * Opsets 13 to 21 are written (17 by default); the choice changes only the few ops whose form moved.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { existsSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { DType } from '../core/dtype.js';
import { ArgumentError, TopiaryError } from '../core/errors.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { concreteShape, type Attrs, type Dim, type Graph, type Node, type Value } from './ir.js';
import {
  AttributeProto_AttributeType as AT, ModelProtoSchema, TensorProto_DataType as DT,
  type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto,
  AttributeProtoSchema, NodeProtoSchema, TensorProtoSchema, ValueInfoProtoSchema,
} from './proto/onnx_pb.js';
import { foldBatchNorm } from './fold.js';
import { trace } from './trace.js';

/** An op (or an op's form) that ONNX cannot express here; nothing is written. */
export class OnnxExportError extends TopiaryError {
  override readonly code = 'ONNX_EXPORT_ERROR';
}

export interface OnnxOptions {
  /** Shape of one example, e.g. [1, 28, 28]. */
  inputShape: number[];
  /** ONNX opset, 13 to 21; 17 by default. */
  opset?: number;
  /** Batch size of the trace (see TraceOptions.batch). */
  batch?: number;
  /** Recorded in the file (producer_version, doc_string). */
  docString?: string;
  /**
   * Fold each BatchNorm into the convolution before it (src/graph/fold.ts) before writing: fewer
   * nodes and initializers; a folded convolution keeps its weight's name and gets '<conv>.bias'.
   * Off by default (the file then holds every parameter and buffer under topiary's names).
   */
  foldBatchNorm?: boolean;
}

const MIN_OPSET = 13, MAX_OPSET = 21;
const PRODUCER = 'topiary';

const ONNX_DTYPE: Partial<Record<DType, DT>> = {
  float32: DT.FLOAT, float64: DT.DOUBLE, float16: DT.FLOAT16, int64: DT.INT64, int32: DT.INT32,
  int16: DT.INT16, int8: DT.INT8, uint8: DT.UINT8, bool: DT.BOOL,
};
function onnxType(dt: DType, what: string): DT {
  const t = ONNX_DTYPE[dt];
  if (t === undefined) throw new OnnxExportError(`ONNX export: ${what} has dtype ${dt}, which has no ONNX type here`);
  return t;
}

// ---- protobuf builders ---------------------------------------------------------------------------
function attr(name: string, v: number | number[] | string | boolean, float = false): AttributeProto {
  if (typeof v === 'string') return create(AttributeProtoSchema, { name, type: AT.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return float
    ? create(AttributeProtoSchema, { name, type: AT.FLOATS, floats: v })
    : create(AttributeProtoSchema, { name, type: AT.INTS, ints: v.map((x) => BigInt(x)) });
  if (float) return create(AttributeProtoSchema, { name, type: AT.FLOAT, f: Number(v) });
  return create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(Number(v)) });
}
const f = (name: string, v: number) => attr(name, v, true);

function tensorProto(name: string, t: Tensor): TensorProto {
  const dt = onnxType(t.dtype, `'${name}'`);
  const a = t.toTypedArray();
  return create(TensorProtoSchema, {
    name, dims: t.shape.map((d) => BigInt(d)), dataType: dt,
    rawData: new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
  });
}
function int64Proto(name: string, values: number[], scalar = false): TensorProto {
  const a = BigInt64Array.from(values.map((v) => BigInt(v)));
  return create(TensorProtoSchema, { name, dims: scalar ? [] : [BigInt(values.length)], dataType: DT.INT64, rawData: new Uint8Array(a.buffer) });
}
function scalarProto(name: string, v: number, dt: DType): TensorProto {
  const type = onnxType(dt, 'a scalar operand');
  const a = dt === 'float64' ? Float64Array.of(v) : dt === 'int64' ? BigInt64Array.of(BigInt(Math.trunc(v)))
    : dt === 'int32' ? Int32Array.of(v) : dt === 'float32' ? Float32Array.of(v) : null;
  if (a === null) throw new OnnxExportError(`ONNX export: a scalar operand on a ${dt} tensor is not supported`);
  return create(TensorProtoSchema, { name, dims: [], dataType: type, rawData: new Uint8Array(a.buffer) });
}
function valueInfo(name: string, shape: Dim[], dt: DType): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: { value: { case: 'tensorType', value: {
      elemType: onnxType(dt, `'${name}'`),
      shape: { dim: shape.map((d) => ({ value: d === 'N' ? { case: 'dimParam' as const, value: 'N' } : { case: 'dimValue' as const, value: BigInt(d) } })) },
    } } },
  });
}

/** Emits ONNX nodes for graph nodes, with the helper initializers they need. */
class Emitter {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  private readonly names = new Map<Value, string>();
  private batchName: string | null = null;
  private k = 0;

  constructor(readonly g: Graph, readonly opset: number) {}

  name(v: Value | null): string {
    if (v === null) return '';
    return this.names.get(v) ?? v.name;
  }
  rename(v: Value, n: string): void { this.names.set(v, n); }
  fresh(base: string): string { return `${base}_${this.k++}`; }
  /** Module path of the graph node being emitted: ONNX node names read `layers.0.conv1/Conv_12`. */
  module = '';
  node(op: string, inputs: string[], outputs: string[], attrs: AttributeProto[] = []): void {
    const name = `${this.module || 'root'}/${this.fresh(op)}`;
    this.nodes.push(create(NodeProtoSchema, { opType: op, input: inputs, output: outputs, attribute: attrs, name }));
  }
  ints(base: string, v: number[], scalar = false): string {
    const n = this.fresh(base);
    this.inits.push(int64Proto(n, v, scalar));
    return n;
  }
  scalar(base: string, v: number, dt: DType): string {
    const n = this.fresh(base);
    this.inits.push(scalarProto(n, v, dt));
    return n;
  }
  /** A 1-d int64 tensor holding the runtime batch size (Shape(input)[0:1]), made once. */
  batch(): string {
    if (this.batchName) return this.batchName;
    const shape = this.fresh('input_shape');
    this.node('Shape', [this.name(this.g.inputs[0])], [shape]);
    this.batchName = this.fresh('batch');
    this.node('Slice', [shape, this.ints('zero', [0]), this.ints('one', [1])], [this.batchName]);
    return this.batchName;
  }
  /** A shape tensor for `shape`, the batch where it says 'N' (or null). */
  shapeTensor(shape: (number | 'N' | null)[]): string {
    if (!shape.some((d) => d === 'N' || d === null)) return this.ints('shape', shape as number[]);
    const parts = shape.map((d) => (d === 'N' || d === null ? this.batch() : this.ints('dim', [d])));
    const out = this.fresh('shape');
    this.node('Concat', parts, [out], [attr('axis', 0)]);
    return out;
  }
  /** Reshape `x` to `shape` (the output value's shape). */
  reshape(x: string, inShape: Dim[], shape: Dim[], out: string): void {
    // 0 copies the input's size at the same index (ONNX), so a batch that stays in place is free.
    const simple = shape.map((d, i) => (d === 'N' ? (inShape[i] === 'N' ? 0 : null) : d));
    const target = simple.includes(null) ? this.shapeTensor(shape) : this.ints('shape', simple as number[]);
    this.node('Reshape', [x, target], [out]);
  }
}

const rank = (v: Value) => v.shape.length;
const pairs = (a: Attrs, k: string) => a[k] as number[];
const pads4 = (p: number[]) => [p[0], p[1], p[0], p[1]];

/** Emit one graph node. `out` is the ONNX name of its output. */
function emitNode(e: Emitter, n: Node, where: string): void {
  const I = (i: number) => e.name(n.inputs[i]);
  const x = n.inputs[0];
  const out = e.name(n.outputs[0]);
  const outV = n.outputs[0];
  const a = n.attrs;
  const nope = (why: string): never => { throw new OnnxExportError(`ONNX export: op '${n.op}' at ${where} has no ONNX mapping (${why})`); };
  const unary: Record<string, string> = { relu: 'Relu', sigmoid: 'Sigmoid', tanh: 'Tanh', neg: 'Neg', abs: 'Abs', exp: 'Exp', log: 'Log', sqrt: 'Sqrt', reciprocal: 'Reciprocal' };
  const binary: Record<string, string> = { add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div', pow: 'Pow', maximum: 'Max', minimum: 'Min' };
  if (n.op in unary) { e.node(unary[n.op], [I(0)], [out]); return; }
  if (n.op in binary) {
    let b = n.inputs.length > 1 ? I(1) : e.scalar('scalar', a.scalar as number, x!.dtype);
    if (a.alpha !== undefined && a.alpha !== 1) {
      const scaled = e.fresh('alpha_times');
      e.node('Mul', [b, e.scalar('alpha', a.alpha as number, x!.dtype)], [scaled]);
      b = scaled;
    }
    e.node(binary[n.op], [I(0), b], [out]);
    return;
  }
  switch (n.op) {
    case 'linear': {
      const hasBias = n.inputs[2] !== null;
      if (rank(x!) === 2) { e.node('Gemm', hasBias ? [I(0), I(1), I(2)] : [I(0), I(1)], [out], [attr('transB', 1)]); return; }
      const wt = e.fresh(`${I(1)}_T`);
      e.node('Transpose', [I(1)], [wt], [attr('perm', [1, 0])]);
      if (!hasBias) { e.node('MatMul', [I(0), wt], [out]); return; }
      const mm = e.fresh('matmul');
      e.node('MatMul', [I(0), wt], [mm]);
      e.node('Add', [mm, I(2)], [out]);
      return;
    }
    case 'matmul': e.node('MatMul', [I(0), I(1)], [out]); return;
    case 'addmm': e.node('Gemm', [I(1), I(2), I(0)], [out], [f('alpha', a.alpha as number), f('beta', a.beta as number)]); return;
    case 'conv2d': {
      const w = n.inputs[1]!;
      const k = concreteShape(w.shape, 1).slice(2);
      e.node('Conv', n.inputs[2] ? [I(0), I(1), I(2)] : [I(0), I(1)], [out], [
        attr('kernel_shape', k), attr('strides', pairs(a, 'stride')), attr('pads', pads4(pairs(a, 'padding'))),
        attr('dilations', pairs(a, 'dilation')), attr('group', a.groups as number)]);
      return;
    }
    case 'batchNorm': {
      const c = concreteShape(x!.shape, 1)[1];
      const scale = n.inputs[1] ? I(1) : e.fresh('bn_scale'), bias = n.inputs[2] ? I(2) : e.fresh('bn_bias');
      if (!n.inputs[1]) e.inits.push(scalarsProto(scale, new Array(c).fill(1)));
      if (!n.inputs[2]) e.inits.push(scalarsProto(bias, new Array(c).fill(0)));
      e.node('BatchNormalization', [I(0), scale, bias, I(3), I(4)], [out], [f('epsilon', a.eps as number), f('momentum', 1 - ((a.momentum as number | undefined) ?? 0.1))]);
      return;
    }
    case 'layerNorm': {
      if (e.opset < 17) nope('LayerNormalization needs opset 17');
      const ns = a.normalizedShape as number[];
      if (!n.inputs[1]) nope('a LayerNorm without weight');
      e.node('LayerNormalization', n.inputs[2] ? [I(0), I(1), I(2)] : [I(0), I(1)], [out], [attr('axis', -ns.length), f('epsilon', a.eps as number)]);
      return;
    }
    case 'dropout': e.node('Identity', [I(0)], [out]); return;
    case 'maxPool2d':
      e.node('MaxPool', [I(0)], [out], [attr('kernel_shape', pairs(a, 'kernel')), attr('strides', pairs(a, 'stride')),
        attr('pads', pads4(pairs(a, 'padding'))), attr('dilations', pairs(a, 'dilation')), attr('ceil_mode', a.ceilMode ? 1 : 0)]);
      return;
    case 'avgPool2d':
      e.node('AveragePool', [I(0)], [out], [attr('kernel_shape', pairs(a, 'kernel')), attr('strides', pairs(a, 'stride')),
        attr('pads', pads4(pairs(a, 'padding'))), attr('ceil_mode', a.ceilMode ? 1 : 0), attr('count_include_pad', a.countIncludePad ? 1 : 0)]);
      return;
    case 'adaptiveAvgPool2d': {
      const [oh, ow] = pairs(a, 'outputSize');
      if (oh === 1 && ow === 1) { e.node('GlobalAveragePool', [I(0)], [out]); return; }
      const s = x!.shape.slice(-2) as number[];
      if (s[0] % oh || s[1] % ow) nope(`output ${oh}x${ow} does not divide the input ${s[0]}x${s[1]}`);
      const k = [s[0] / oh, s[1] / ow];
      e.node('AveragePool', [I(0)], [out], [attr('kernel_shape', k), attr('strides', k)]);
      return;
    }
    case 'rsqrt': { const s = e.fresh('sqrt'); e.node('Sqrt', [I(0)], [s]); e.node('Reciprocal', [s], [out]); return; }
    case 'square': e.node('Mul', [I(0), I(0)], [out]); return;
    case 'gelu': {
      if (e.opset >= 20) { e.node('Gelu', [I(0)], [out]); return; }
      // x * 0.5 * (1 + erf(x / sqrt 2)), PyTorch's exact GELU.
      const dt = x!.dtype, t1 = e.fresh('gelu'), t2 = e.fresh('gelu'), t3 = e.fresh('gelu'), t4 = e.fresh('gelu');
      e.node('Div', [I(0), e.scalar('sqrt2', Math.SQRT2, dt)], [t1]);
      e.node('Erf', [t1], [t2]);
      e.node('Add', [t2, e.scalar('one', 1, dt)], [t3]);
      e.node('Mul', [I(0), t3], [t4]);
      e.node('Mul', [t4, e.scalar('half', 0.5, dt)], [out]);
      return;
    }
    case 'leakyRelu': e.node('LeakyRelu', [I(0)], [out], [f('alpha', a.slope as number)]); return;
    case 'softmax': e.node('Softmax', [I(0)], [out], [attr('axis', a.dim as number)]); return;
    case 'logSoftmax': e.node('LogSoftmax', [I(0)], [out], [attr('axis', a.dim as number)]); return;
    case 'clamp': {
      const dt = x!.dtype;
      e.node('Clip', [I(0), a.min === null ? '' : e.scalar('min', a.min as number, dt), a.max === null ? '' : e.scalar('max', a.max as number, dt)], [out]);
      return;
    }
    case 'rsub': e.node('Sub', [e.scalar('scalar', a.scalar as number, x!.dtype), I(0)], [out]); return;
    case 'flatten': {
      const s = a.startDim as number, en = a.endDim as number;
      if (s === 1 && en === rank(x!) - 1 && x!.shape[0] === 'N') { e.node('Flatten', [I(0)], [out], [attr('axis', 1)]); return; }
      e.reshape(I(0), x!.shape, outV.shape, out);
      return;
    }
    case 'reshape': {
      // A -1 (an imported size that is a multiple of the batch, attention's [L, N*heads, d]) is kept as -1.
      const target = a.shape as (number | null)[];
      if (target.includes(-1)) { e.node('Reshape', [I(0), e.shapeTensor(target)], [out]); return; }
      e.reshape(I(0), x!.shape, outV.shape, out);
      return;
    }
    case 'expand': e.node('Expand', [I(0), e.shapeTensor((a.shape as (number | null)[]))], [out]); return;
    case 'permute': e.node('Transpose', [I(0)], [out], [attr('perm', a.dims as number[])]); return;
    case 'squeeze': {
      const axes = a.dim === null ? x!.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : [a.dim as number];
      e.node('Squeeze', [I(0), e.ints('axes', axes)], [out]);
      return;
    }
    case 'unsqueeze': e.node('Unsqueeze', [I(0), e.ints('axes', [a.dim as number])], [out]); return;
    case 'slice':
      e.node('Slice', [I(0), e.ints('starts', [a.start as number]), e.ints('ends', [a.end as number]), e.ints('axes', [a.dim as number]), e.ints('steps', [a.step as number])], [out]);
      return;
    case 'select': e.node('Gather', [I(0), e.ints('index', [a.index as number], true)], [out], [attr('axis', a.dim as number)]); return;
    case 'pad': {
      // torch: (last-dim begin, end, previous-dim begin, end, ...); ONNX: all begins, then all ends.
      const p = a.pads as number[], r = rank(x!);
      const begins = new Array(r).fill(0), ends = new Array(r).fill(0);
      for (let k = 0; k < p.length / 2; k++) { begins[r - 1 - k] = p[2 * k]; ends[r - 1 - k] = p[2 * k + 1]; }
      if ([...begins, ...ends].some((v) => v < 0)) nope('negative padding');
      e.node('Pad', [I(0), e.ints('pads', [...begins, ...ends]), e.scalar('pad_value', a.value as number, x!.dtype)], [out], [attr('mode', 'constant')]);
      return;
    }
    case 'cat': e.node('Concat', n.inputs.map((_, i) => I(i)), [out], [attr('axis', a.dim as number)]); return;
    case 'stack': {
      const parts = n.inputs.map((_, i) => { const u = e.fresh('unsqueeze'); e.node('Unsqueeze', [I(i), e.ints('axes', [a.dim as number])], [u]); return u; });
      e.node('Concat', parts, [out], [attr('axis', a.dim as number)]);
      return;
    }
    case 'sum': case 'mean': {
      const axes = (a.dims as number[] | null) ?? [...Array(rank(x!)).keys()];
      const keep = attr('keepdims', a.keepdim ? 1 : 0);
      const op = n.op === 'sum' ? 'ReduceSum' : 'ReduceMean';
      if (n.op === 'sum' || e.opset >= 18) e.node(op, [I(0), e.ints('axes', axes)], [out], [keep]);
      else e.node(op, [I(0)], [out], [attr('axes', axes), keep]);
      return;
    }
    default: nope('not written yet');
  }
}

function scalarsProto(name: string, v: number[]): TensorProto {
  const a = Float32Array.from(v);
  return create(TensorProtoSchema, { name, dims: [BigInt(v.length)], dataType: DT.FLOAT, rawData: new Uint8Array(a.buffer) });
}

/** A graph and the tensors of its parameters and buffers, as an ONNX model (the encoded bytes). */
export function graphToOnnx(g: Graph, state: Record<string, Tensor>, o: { opset?: number; docString?: string } = {}): Uint8Array {
  const opset = o.opset ?? 17;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) throw new OnnxExportError(`ONNX export: opset ${opset} is not supported (${MIN_OPSET} to ${MAX_OPSET}; 17 by default)`);
  if (g.inputs.length !== 1 || g.outputs.length !== 1) throw new OnnxExportError(`ONNX export: a graph with ${g.inputs.length} inputs and ${g.outputs.length} outputs (one of each is written)`);
  const e = new Emitter(g, opset);
  const input = g.inputs[0], output = g.outputs[0];
  if (output === input) throw new OnnxExportError('ONNX export: the model returns its input unchanged');
  e.rename(output, 'output');
  for (const n of g.nodes) {
    e.module = n.module;
    emitNode(e, n, n.module ? `module '${n.module}'` : 'the root module');
  }
  const inits: TensorProto[] = [];
  for (const v of g.values) {
    if (v.users.length === 0) continue;
    if (v.kind === 'param' || v.kind === 'buffer') {
      const t = state[v.name];
      if (!t) throw new ArgumentError(`ONNX export: no tensor for '${v.name}'`);
      inits.push(tensorProto(v.name, t));
    } else if (v.kind === 'constant') inits.push(tensorProto(v.name, v.data!));
  }
  const model = create(ModelProtoSchema, {
    irVersion: BigInt(opset >= 19 ? 9 : 8), // IR 8 goes with opsets up to 18
    producerName: PRODUCER,
    producerVersion: '1',
    docString: o.docString ?? '',
    opsetImport: [{ domain: '', version: BigInt(opset) }],
    graph: {
      name: 'topiary',
      node: e.nodes,
      initializer: [...inits, ...e.inits],
      input: [valueInfo('input', input.shape, input.dtype)],
      output: [valueInfo('output', output.shape, output.dtype)],
    },
  });
  return toBinary(ModelProtoSchema, model);
}

/** Refuse an output path whose folder does not exist (or is not a folder), before any work. */
export function checkOutPath(out: string): string {
  const path = resolve(out);
  const dir = dirname(path);
  if (!existsSync(dir)) throw new ArgumentError(`output folder '${dir}' does not exist (for ${out})`);
  if (!statSync(dir).isDirectory()) throw new ArgumentError(`'${dir}' is not a folder (for ${out})`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new ArgumentError(`'${out}' is a folder, not a file name`);
  return path;
}

/** Write bytes to a temporary name beside `path`, then rename: a failed write never replaces a good file. */
export function writeAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* not made */ }
    throw e;
  }
}

export interface ExportResult { path: string; bytes: number; opset: number }

/**
 * Trace `model` (eval mode) and write it as ONNX to `out`. The folder of `out` must exist; the
 * file is replaced only once the new one is complete.
 */
export function exportOnnx(model: Module, o: OnnxOptions & { out: string }): ExportResult {
  const path = checkOutPath(o.out);
  const bytes = encodeOnnx(model, o);
  writeAtomic(path, bytes);
  return { path, bytes: bytes.byteLength, opset: o.opset ?? 17 };
}

/** The ONNX bytes of `model` (traced in eval mode), without writing a file. */
export function encodeOnnx(model: Module, o: OnnxOptions): Uint8Array {
  const opset = o.opset ?? 17;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) throw new OnnxExportError(`ONNX export: opset ${opset} is not supported (${MIN_OPSET} to ${MAX_OPSET}; 17 by default)`);
  const g = trace(model, { inputShape: o.inputShape, batch: o.batch });
  const folded = o.foldBatchNorm ? foldBatchNorm(g, model.stateDict()) : null;
  try {
    return folded ? graphToOnnx(folded.graph, folded.state, { opset, docString: o.docString }) : graphToOnnx(g, model.stateDict(), { opset, docString: o.docString });
  } finally {
    folded?.dispose();
    g.dispose();
  }
}
