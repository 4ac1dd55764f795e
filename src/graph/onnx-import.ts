/**
 * ONNX import ("bring your own model"): an ONNX file (most often from torch.onnx.export) becomes a
 * GraphModule that runs on topiary's ops, with its float initializers as named, trainable parameters
 * and BatchNorm statistics as buffers. The model is decoded with the generated protobuf-es types,
 * checked (opset, one float input, every name made before it is read, no cycles, sizes before any
 * allocation, external data only from inside the model's folder), and its nodes mapped one by one
 * to graph ops (onnx-ops.ts). Shape arithmetic (Shape, Gather, Concat, ... feeding a Reshape) is
 * folded at import for the given example shape, with the batch kept symbolic: every value is
 * computed at two batch sizes while importing, so a size reads `a + k*N`, and a reshape keeps the
 * batch (`null`) or its multiples (`-1`).
 */
import { fromBinary } from '@bufbuild/protobuf';
import { closeSync, existsSync, fstatSync, lstatSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';
import type { DType } from '../core/dtype.js';
import { TopiaryError } from '../core/errors.js';
import { noGrad } from '../tensor/autograd.js';
import { ones, tensor, zeros } from '../tensor/creation.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { Graph, type Dim } from './ir.js';
import { MAX_ELEMENTS, mapNode, SUPPORTED_OPS } from './onnx-ops.js';
import {
  ModelProtoSchema, TensorProto_DataLocation, TensorProto_DataType as DT,
  type GraphProto, type ModelProto, type NodeProto, type TensorProto,
} from './proto/onnx_pb.js';
import { GraphModule } from './run.js';

/** A file topiary cannot import (corrupt, unsupported op or opset, external data out of bounds); the message names it. */
export class OnnxImportError extends TopiaryError {
  override readonly code = 'ONNX_IMPORT_ERROR';
}

export interface ImportOptions {
  /** Parameters require gradients (default true); false freezes them. */
  trainable?: boolean;
  /**
   * Shape of one example without the batch, e.g. [3, 32, 32]. Default: the file's input shape
   * (its first dimension is the batch); required when the file leaves other dimensions symbolic.
   */
  inputShape?: number[];
  /** Name for messages when bytes are given (default 'model.onnx'). */
  name?: string;
}

/** Opsets of the default domain accepted (PyTorch 1.13 writes 7 to 17; 13 to 17 are tested). */
export const MIN_IMPORT_OPSET = 11, MAX_IMPORT_OPSET = 21;
/** A file over this is refused before it is read (protobuf's own limit is 2 GiB). */
const MAX_FILE_BYTES = 2 ** 31 - 1;
/** The two batch sizes every value is computed at while importing (a size is a + k*N). */
export const IMPORT_BATCHES: [number, number] = [2, 3];

const DTYPES: Partial<Record<number, { dt: DType; size: number }>> = {
  [DT.FLOAT]: { dt: 'float32', size: 4 }, [DT.DOUBLE]: { dt: 'float64', size: 8 }, [DT.INT64]: { dt: 'int64', size: 8 },
  [DT.INT32]: { dt: 'int32', size: 4 }, [DT.INT16]: { dt: 'int16', size: 2 }, [DT.INT8]: { dt: 'int8', size: 1 },
  [DT.UINT8]: { dt: 'uint8', size: 1 }, [DT.BOOL]: { dt: 'bool', size: 1 },
};
export function dtypeOf(code: number, what: string): { dt: DType; size: number } {
  const d = DTYPES[code];
  if (!d) throw new OnnxImportError(`ONNX import: ${what} has data type ${DT[code] ?? code}, which topiary does not import (float32/64, int8-64, uint8, bool)`);
  return d;
}

/** Dims of a tensor proto, checked: non-negative integers, at most MAX_ELEMENTS elements. */
export function checkedDims(t: TensorProto, what: string): number[] {
  const dims = t.dims.map((d) => Number(d));
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new OnnxImportError(`ONNX import: ${what} has dims [${t.dims.join(', ')}]`);
  const n = dims.reduce((a, b) => a * b, 1);
  if (n > MAX_ELEMENTS) throw new OnnxImportError(`ONNX import: ${what} declares ${n} elements (dims [${dims}]); more than ${MAX_ELEMENTS} is refused`);
  return dims;
}

/** Reads external data strictly inside the model's folder. */
interface Source { dir: string | null; file: string }

function externalBytes(t: TensorProto, src: Source, need: number, what: string): Uint8Array {
  const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
  const loc = kv.get('location');
  if (!loc) throw new OnnxImportError(`ONNX import: ${what} says its data is external but names no location`);
  if (src.dir === null) throw new OnnxImportError(`ONNX import: ${what} keeps its data in an external file ('${loc}'); import the model from its path, not from bytes, so the file can be found beside it`);
  if (isAbsolute(loc) || loc.split(/[\\/]/).includes('..') || normalize(loc).startsWith('..')) {
    throw new OnnxImportError(`ONNX import: ${what}: external data location '${loc}' is outside the model's folder (absolute paths and '..' are refused)`);
  }
  const path = join(src.dir, loc);
  if (!existsSync(path)) throw new OnnxImportError(`ONNX import: ${what}: external data file '${loc}' is not beside ${src.file} (looked for ${path})`);
  const real = realpathSync(path), realDir = realpathSync(src.dir);
  const rel = relative(realDir, real);
  if (rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..')) {
    throw new OnnxImportError(`ONNX import: ${what}: external data file '${loc}' resolves outside the model's folder (a link to ${real}); refused`);
  }
  if (lstatSync(path).isSymbolicLink()) throw new OnnxImportError(`ONNX import: ${what}: external data file '${loc}' is a symbolic link; refused`);
  const offset = Number(kv.get('offset') ?? 0), length = kv.has('length') ? Number(kv.get('length')) : need;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) throw new OnnxImportError(`ONNX import: ${what}: external data offset/length '${kv.get('offset')}'/'${kv.get('length')}' are not byte counts`);
  if (length !== need) throw new OnnxImportError(`ONNX import: ${what}: external data length ${length} bytes, its dims need ${need}`);
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (offset + length > size) throw new OnnxImportError(`ONNX import: ${what}: external data '${loc}' has ${size} bytes, the tensor reads ${offset}..${offset + length}`);
    const buf = new Uint8Array(length);
    readSync(fd, buf, 0, length, offset);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** A tensor proto's elements as numbers (bigints converted; bounded by checkedDims). */
export function protoNumbers(t: TensorProto, src: Source, what: string): { dims: number[]; dt: DType; data: number[] } {
  const dims = checkedDims(t, what);
  const { dt, size } = dtypeOf(t.dataType, what);
  const n = dims.reduce((a, b) => a * b, 1);
  const typed = protoTyped(t, src, what, dims, dt, size, n);
  return { dims, dt, data: Array.from(typed as ArrayLike<number | bigint>, (v) => Number(v)) };
}

function protoTyped(t: TensorProto, src: Source, what: string, dims: number[], dt: DType, size: number, n: number): ArrayLike<number | bigint> {
  let raw: Uint8Array | null = null;
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) raw = externalBytes(t, src, n * size, what);
  else if (t.rawData.length > 0 || (n === 0)) raw = t.rawData;
  if (raw !== null) {
    if (raw.length !== n * size) throw new OnnxImportError(`ONNX import: ${what} holds ${raw.length} bytes, its dims [${dims}] need ${n * size}`);
    const buf = new Uint8Array(raw).buffer; // an aligned copy of exactly these bytes (a Buffer.slice would share the file)
    switch (dt) {
      case 'float32': return new Float32Array(buf);
      case 'float64': return new Float64Array(buf);
      case 'int64': return new BigInt64Array(buf);
      case 'int32': return new Int32Array(buf);
      case 'int16': return new Int16Array(buf);
      case 'int8': return new Int8Array(buf);
      default: return new Uint8Array(buf);
    }
  }
  const arr: ArrayLike<number | bigint> = dt === 'float32' ? t.floatData : dt === 'float64' ? t.doubleData : dt === 'int64' ? t.int64Data : t.int32Data;
  if (arr.length !== n) throw new OnnxImportError(`ONNX import: ${what} holds ${arr.length} values, its dims [${dims}] need ${n}`);
  return arr;
}

/** A tensor proto as a topiary tensor (float data keeps its dtype). */
export function protoTensor(t: TensorProto, src: Source, what: string): Tensor {
  const dims = checkedDims(t, what);
  const { dt, size } = dtypeOf(t.dataType, what);
  const n = dims.reduce((a, b) => a * b, 1);
  const typed = protoTyped(t, src, what, dims, dt, size, n);
  if (dt === 'float32') return tensor(Float32Array.from(typed as ArrayLike<number>), { shape: dims });
  if (dt === 'float64') return tensor(Float64Array.from(typed as ArrayLike<number>), { shape: dims, dtype: 'float64' });
  return tensor(Array.from(typed, (v) => Number(v)), { shape: dims, dtype: dt });
}

function decode(bytes: Uint8Array, file: string): ModelProto {
  if (bytes.byteLength === 0) throw new OnnxImportError(`ONNX import: ${file} is empty (0 bytes)`);
  let m: ModelProto;
  try {
    m = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    throw new OnnxImportError(`ONNX import: ${file} is not a readable ONNX model (${(e as Error).message}); truncated or not ONNX?`, { cause: e });
  }
  if (!m.graph || m.graph.node.length === 0) throw new OnnxImportError(`ONNX import: ${file} holds no graph (not an ONNX model?)`);
  return m;
}

function opsetOf(m: ModelProto, file: string): number {
  const def = m.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (!def) throw new OnnxImportError(`ONNX import: ${file} imports no default-domain opset`);
  const v = Number(def.version);
  if (v < MIN_IMPORT_OPSET || v > MAX_IMPORT_OPSET) throw new OnnxImportError(`ONNX import: ${file} uses opset ${v}; topiary imports opsets ${MIN_IMPORT_OPSET} to ${MAX_IMPORT_OPSET}`);
  return v;
}

/** Nodes in an order where every input is made first; a cycle or a name nothing makes is refused. */
function topoOrder(g: GraphProto, known: Set<string>, file: string): NodeProto[] {
  const producer = new Map<string, number>();
  g.node.forEach((n, i) => n.output.forEach((o) => {
    if (!o) return;
    if (producer.has(o) || known.has(o)) throw new OnnxImportError(`ONNX import: ${file}: value '${o}' is made twice (node '${n.name || n.opType}')`);
    producer.set(o, i);
  }));
  for (const n of g.node) for (const i of n.input) {
    if (i && !known.has(i) && !producer.has(i)) throw new OnnxImportError(`ONNX import: ${file}: node '${n.name || n.opType}' (${n.opType}) reads '${i}', which no node, initializer or input makes`);
  }
  const indeg = g.node.map((n) => new Set(n.input.filter((i) => i && producer.has(i))).size);
  const users = new Map<number, number[]>();
  g.node.forEach((n, j) => new Set(n.input.filter((i) => i && producer.has(i))).forEach((i) => {
    const p = producer.get(i)!;
    users.set(p, [...(users.get(p) ?? []), j]);
  }));
  const ready = g.node.map((_, i) => i).filter((i) => indeg[i] === 0);
  const order: NodeProto[] = [];
  while (ready.length) {
    const i = ready.shift()!;
    order.push(g.node[i]);
    for (const j of users.get(i) ?? []) if (--indeg[j] === 0) ready.push(j);
  }
  if (order.length !== g.node.length) {
    const stuck = g.node.find((_, i) => indeg[i] > 0)!;
    throw new OnnxImportError(`ONNX import: ${file}: the graph has a cycle (through node '${stuck.name || stuck.opType}', ${stuck.opType})`);
  }
  return order;
}

/** The input dtypes imported: float data, or integer ids (token ids read by a Gather: an embedding). */
const INPUT_DTYPES: DType[] = ['float32', 'int64', 'int32'];

/** The input's dtype (checked by exampleShape). */
function inputDtype(g: GraphProto, input: string): DType {
  const tt = g.input.find((v) => v.name === input)!.type!.value.value as { elemType: number };
  return dtypeOf(tt.elemType, `input '${input}'`).dt;
}

/** The example shape: options' or the file's (its dim 0 is the batch). */
function exampleShape(g: GraphProto, input: string, o: ImportOptions, file: string): number[] {
  const vi = g.input.find((v) => v.name === input)!;
  const tt = vi.type?.value.case === 'tensorType' ? vi.type.value.value : undefined;
  if (!tt) throw new OnnxImportError(`ONNX import: ${file}: input '${input}' is not a tensor`);
  const { dt } = dtypeOf(tt.elemType, `input '${input}'`);
  if (!INPUT_DTYPES.includes(dt)) throw new OnnxImportError(`ONNX import: ${file}: input '${input}' is ${dt}; topiary imports models with one float32 input, or int64 / int32 ids (token embeddings)`);
  const dims = tt.shape?.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : null)) ?? null;
  if (o.inputShape) {
    if (!o.inputShape.every((d) => Number.isInteger(d) && d > 0)) throw new OnnxImportError(`ONNX import: inputShape [${o.inputShape}] must hold positive integers`);
    if (dims && dims.length && dims.length !== o.inputShape.length + 1) {
      throw new OnnxImportError(`ONNX import: ${file}: input '${input}' has rank ${dims.length} ([batch, ...${dims.length - 1} dims]), inputShape [${o.inputShape}] has ${o.inputShape.length} dims`);
    }
    dims?.slice(1).forEach((d, i) => {
      if (d !== null && d !== o.inputShape![i]) throw new OnnxImportError(`ONNX import: ${file}: input '${input}' has shape [N, ${dims.slice(1).map((x) => x ?? '?').join(', ')}], inputShape gives [${o.inputShape}]`);
    });
    return o.inputShape;
  }
  if (!dims || dims.length < 2) throw new OnnxImportError(`ONNX import: ${file}: input '${input}' has no shape of rank 2 or more; pass inputShape`);
  const rest = dims.slice(1);
  if (rest.some((d) => d === null || d <= 0)) throw new OnnxImportError(`ONNX import: ${file}: input '${input}' has symbolic dims beyond the batch ([N, ${rest.map((d) => d ?? '?').join(', ')}]); pass inputShape`);
  return rest as number[];
}

/**
 * Import an ONNX model (a path, or the file's bytes) as a GraphModule: initializers become
 * parameters named as in the file (PyTorch's `layer.0.weight`; characters outside [A-Za-z0-9_.]
 * become '_'), BatchNorm statistics buffers (with a num_batches_tracked beside a `running_mean`).
 * The module starts in training mode, like any Module.
 */
export function importOnnx(pathOrBytes: string | Uint8Array, o: ImportOptions = {}): GraphModule {
  let bytes: Uint8Array, src: Source;
  if (typeof pathOrBytes === 'string') {
    const file = pathOrBytes;
    if (!existsSync(file)) throw new OnnxImportError(`ONNX import: ${file} does not exist`);
    const st = statSync(file);
    if (st.isDirectory()) throw new OnnxImportError(`ONNX import: ${file} is a folder, not an ONNX file`);
    if (st.size > MAX_FILE_BYTES) throw new OnnxImportError(`ONNX import: ${file} has ${st.size} bytes; protobuf files over 2 GiB are refused (keep the weights as external data)`);
    bytes = readFileSync(file);
    src = { dir: dirname(file), file };
  } else {
    bytes = pathOrBytes;
    src = { dir: null, file: o.name ?? 'model.onnx' };
  }
  const m = decode(bytes, src.file);
  const opset = opsetOf(m, src.file);
  const g = m.graph!;
  const initNames = new Set(g.initializer.map((t) => t.name));
  const dataInputs = g.input.filter((v) => !initNames.has(v.name));
  if (dataInputs.length !== 1) throw new OnnxImportError(`ONNX import: ${src.file} has ${dataInputs.length} data inputs (${dataInputs.map((v) => v.name).join(', ')}); topiary imports models with one`);
  if (g.output.length !== 1) throw new OnnxImportError(`ONNX import: ${src.file} has ${g.output.length} outputs (${g.output.map((v) => v.name).join(', ')}); topiary imports models with one`);
  const inputName = dataInputs[0].name;
  const shape = exampleShape(g, inputName, o, src.file);
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel * IMPORT_BATCHES[1] > MAX_ELEMENTS) throw new OnnxImportError(`ONNX import: inputShape [${shape}] has ${numel} elements per example; too large to import`);
  const order = topoOrder(g, new Set([...initNames, inputName]), src.file);

  return noGrad(() => {
    const graph = new Graph();
    graph.tracedBatch = IMPORT_BATCHES[0];
    const imp = new ImportState(graph, g, opset, src, order);
    let gm: GraphModule | null = null;
    try {
      const dt = inputDtype(g, inputName);
      const xv = graph.addValue('input', 'input', ['N', ...shape], dt);
      // Ids are zeros at import (a valid row of any embedding); only shapes are read from these.
      const example = (b: number) => (dt === 'float32' ? ones([b, ...shape]) : zeros([b, ...shape], { dtype: dt }));
      const xs: [Tensor, Tensor] = [example(IMPORT_BATCHES[0]), example(IMPORT_BATCHES[1])];
      xs.forEach((t) => imp.own(t));
      imp.setDyn(inputName, { v: xv, t: xs, sym: [{ a: 0, k: 1 }, ...shape.map((d) => ({ a: d, k: 0 }))] });
      for (const n of order) {
        if (imp.done.has(n)) continue;
        const domain = n.domain;
        if (domain !== '' && domain !== 'ai.onnx') throw new OnnxImportError(`ONNX import: op '${n.opType}' of domain '${domain}' (node '${n.name}') is not supported at opset ${opset}; supported: ${SUPPORTED_OPS.join(', ')}`);
        mapNode(imp, n);
        imp.done.add(n);
      }
      const out = imp.dynOf(g.output[0].name, 'the graph output');
      if (out.v.kind !== 'op' || !dependsOnInput(out.v)) throw new OnnxImportError(`ONNX import: ${src.file}: the output does not depend on the input`);
      graph.outputs = [out.v];
      const state = imp.stateTensors();
      gm = new GraphModule(graph, state);
      for (const t of Object.values(state)) t.dispose();
    } catch (e) {
      imp.disposeAll();
      graph.dispose();
      if (e instanceof TopiaryError && e.message.startsWith('ONNX import')) throw e;
      throw new OnnxImportError(`ONNX import: ${src.file}: ${(e as Error).message}`, { cause: e });
    }
    imp.disposeAll();
    if (o.trainable === false) for (const p of gm.parameters()) p.requiresGrad_(false);
    return gm;
  });
}

function dependsOnInput(v: { kind: string; producer: { inputs: ({ kind: string; producer: unknown } | null)[] } | null }): boolean {
  const seen = new Set<unknown>();
  const stack = [v];
  while (stack.length) {
    const x = stack.pop()!;
    if (x.kind === 'input') return true;
    if (seen.has(x) || !x.producer) continue;
    seen.add(x);
    for (const i of x.producer.inputs) if (i) stack.push(i as typeof v);
  }
  return false;
}

// ---- import state shared with onnx-ops.ts -------------------------------------------------------

/** A size that may depend on the batch: a + k*N. */
export interface Sym { a: number; k: number }
/** A value known at import: its dims and elements (an element may depend on the batch). */
export interface Static { dt: DType; dims: number[]; vals: number[]; ks?: number[] }
/** A value of the graph, with its data at the two import batches (for shapes). */
export interface Dyn { v: import('./ir.js').Value; t: [Tensor, Tensor]; sym: Sym[] }

type Entry = { kind: 'dyn'; d: Dyn } | { kind: 'static'; s: Static } | { kind: 'init'; proto: TensorProto; name: string; d?: Dyn; s?: Static };

export const symToDim = (s: Sym): Dim => (s.k === 0 ? s.a : s.k === 1 && s.a === 0 ? 'N' : s.a + s.k * IMPORT_BATCHES[0]);
const sanitize = (n: string) => n.replace(/[^A-Za-z0-9_.]/g, '_').split('.').map((p) => p || '_').join('.');

class ImportState {
  readonly env = new Map<string, Entry>();
  readonly done = new Set<NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly graphOutputs: Set<string>;
  private readonly stateData = new Map<string, Tensor>();
  private readonly owned: Tensor[] = [];
  private nConst = 0;

  constructor(readonly graph: Graph, readonly proto: GraphProto, readonly opset: number, readonly src: Source, readonly order: NodeProto[]) {
    for (const t of proto.initializer) this.env.set(t.name, { kind: 'init', proto: t, name: t.name });
    for (const n of order) for (const i of n.input) if (i) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n]);
    this.graphOutputs = new Set(proto.output.map((v) => v.name));
  }

  has(name: string): boolean { return this.env.has(name); }
  isInit(name: string): boolean { return this.env.get(name)?.kind === 'init'; }
  isStatic(name: string): boolean { const e = this.env.get(name); return e !== undefined && (e.kind === 'static' || e.kind === 'init'); }
  initDims(name: string): number[] | null {
    const e = this.env.get(name);
    return e?.kind === 'init' ? checkedDims(e.proto, `initializer '${e.name}'`) : null;
  }

  setDyn(name: string, d: Dyn): void { this.env.set(name, { kind: 'dyn', d }); }
  setStatic(name: string, s: Static): void { this.env.set(name, { kind: 'static', s }); }
  /** `name` becomes another name for the initializer `of` (its own parameter when used). */
  aliasInit(name: string, of: string): void {
    const e = this.env.get(of);
    if (e?.kind !== 'init') throw new OnnxImportError(`ONNX import: '${of}' is not an initializer`);
    this.env.set(name, { kind: 'init', proto: e.proto, name });
  }
  alias(name: string, of: string): void { this.env.set(name, this.env.get(of)!); }

  staticOf(name: string, what: string): Static {
    const e = this.env.get(name);
    if (!e) throw new OnnxImportError(`ONNX import: ${what} '${name}' is not made`);
    if (e.kind === 'static') return e.s;
    if (e.kind === 'init') {
      if (!e.s) { const p = protoNumbers(e.proto, this.src, `initializer '${e.name}'`); e.s = { dt: p.dt, dims: p.dims, vals: p.data }; }
      return e.s;
    }
    throw new OnnxImportError(`ONNX import: ${what} '${name}' is computed from the input; topiary needs it known at import (a fixed input shape)`);
  }

  /** A graph value for `name`: parameters and buffers for initializers, constants for static data. */
  dynOf(name: string, what: string, role: 'param' | 'buffer' = 'param'): Dyn {
    const e = this.env.get(name);
    if (!e) throw new OnnxImportError(`ONNX import: ${what} '${name}' is not made`);
    if (e.kind === 'dyn') return e.d;
    if (e.kind === 'init') {
      if (e.d) return e.d;
      const t = protoTensor(e.proto, this.src, `initializer '${e.name}'`);
      if (t.dtype !== 'float32' && t.dtype !== 'float64') {
        e.d = this.constantDyn(t);
        return e.d;
      }
      e.d = this.stateDyn(e.name, t, role);
      return e.d;
    }
    const d = this.constantDyn(staticTensor(e.s, what, name));
    this.env.set(name, { kind: 'dyn', d });
    return d;
  }

  /** A new parameter or buffer (a unique sanitized name) holding `t` (owned by the import). */
  stateDyn(name: string, t: Tensor, role: 'param' | 'buffer'): Dyn {
    let n = sanitize(name), k = 2;
    while (this.stateData.has(n)) n = `${sanitize(name)}_${k++}`;
    const v = this.graph.addValue(role, n, t.shape, t.dtype);
    this.stateData.set(n, t);
    if (role === 'buffer' && n.endsWith('running_mean')) {
      const nb = n.slice(0, -'running_mean'.length) + 'num_batches_tracked';
      if (!this.stateData.has(nb)) { this.graph.addValue('buffer', nb, [], 'int64'); this.stateData.set(nb, zeros([], { dtype: 'int64' })); }
    }
    return { v, t: [t, t], sym: t.shape.map((d) => ({ a: d, k: 0 })) };
  }

  /** An initializer's tensor, transposed or reshaped once at import, as its own parameter. */
  paramFrom(name: string, f: (t: Tensor) => Tensor, rename?: string): Dyn {
    const e = this.env.get(name);
    if (e?.kind !== 'init') throw new OnnxImportError(`ONNX import: '${name}' is not an initializer`);
    const raw = protoTensor(e.proto, this.src, `initializer '${e.name}'`);
    const t = tidy(() => f(raw).contiguous().clone()); // the views on the way are freed
    raw.dispose();
    return this.stateDyn(rename && !this.env.has(rename) ? rename : e.name, t, 'param');
  }

  constantDyn(t: Tensor): Dyn {
    const v = this.graph.addValue('constant', `c${this.nConst++}`, t.shape, t.dtype);
    v.data = t;
    return { v, t: [t, t], sym: t.shape.map((d) => ({ a: d, k: 0 })) };
  }

  own(t: Tensor): void { this.owned.push(t); }

  stateTensors(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [k, t] of this.stateData) out[k] = t;
    this.stateData.clear();
    return out;
  }

  disposeAll(): void {
    for (const t of this.owned) if (!t.isDisposed) t.dispose();
    this.owned.length = 0;
    for (const t of this.stateData.values()) if (!t.isDisposed) t.dispose();
    this.stateData.clear();
  }
}

/** Static data as a tensor (refused when an element depends on the batch). */
export function staticTensor(s: Static, what: string, name: string): Tensor {
  if (s.ks?.some((k) => k !== 0)) throw new OnnxImportError(`ONNX import: ${what} '${name}' holds sizes that depend on the batch and is used as data; topiary cannot import that`);
  const dt = s.dt;
  if (dt === 'float32') return tensor(Float32Array.from(s.vals), { shape: s.dims });
  return tensor(s.vals, { shape: s.dims, dtype: dt });
}

export type { Entry, Source };
export { ImportState };

/** The model name runs record for a model imported from `--from <file.onnx>`. */
export const ONNX_MODEL = 'onnx';
/** Whether a `--from` path names an ONNX file. */
export const isOnnxFile = (p: unknown): p is string => typeof p === 'string' && /\.onnx$/i.test(p);

/**
 * Import `file` for a dataset: its input must take the dataset's examples (`inputShape`) and its
 * output give `numClasses` scores per example; otherwise one line says which.
 */
export function importOnnxFor(file: string, o: { inputShape: number[]; numClasses: number; dataset?: string }): GraphModule {
  let gm: GraphModule;
  try {
    gm = importOnnx(file, { inputShape: o.inputShape });
  } catch (e) {
    if (e instanceof OnnxImportError && /inputShape gives|has rank/.test(e.message)) {
      throw new OnnxImportError(`${e.message.replace(/inputShape gives/, `the dataset${o.dataset ? ` '${o.dataset}'` : ''} has examples of shape`)}`, { cause: e });
    }
    throw e;
  }
  const out = gm.graph.outputs[0].shape;
  if (out.length !== 2 || out[0] !== 'N' || out[1] !== o.numClasses) {
    gm.dispose();
    throw new OnnxImportError(`ONNX import: ${file} outputs [${out.join(', ')}] per batch; the dataset${o.dataset ? ` '${o.dataset}'` : ''} needs [N, ${o.numClasses}] (one score per class)`);
  }
  return gm;
}
