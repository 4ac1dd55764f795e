/**
 * The tracer (torch.jit.trace's idea): run a module's forward once on an example input with a
 * recorder active, and append one node per topiary op. Functional ops report through
 * src/tensor/record.ts; Tensor methods are wrapped on the prototype for the duration of the trace
 * only (untraced code runs the plain methods). Module.call is wrapped the same way to know the
 * module path of each op. An op the graph cannot express, and reading a value computed from the
 * input (data-dependent control flow), are refused with the op and the module path named.
 */
import { TopiaryError } from '../core/errors.js';
import { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { ones } from '../tensor/creation.js';
import { setRecorder, type OpRecorder } from '../tensor/record.js';
import { keep, tidy } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { Graph, isOpName, type Attrs, type Dim, type OpName, type Value } from './ir.js';

/** The model uses an op the graph cannot express, or reads a traced value (data-dependent control flow). */
export class TraceError extends TopiaryError {
  override readonly code = 'TRACE_ERROR';
}

export interface TraceOptions {
  /** Shape of one example, e.g. [1, 28, 28]; the graph's input is ['N', ...inputShape]. */
  inputShape: number[];
  /**
   * Batch size of the example input (default 5). Sizes equal to it are read as the batch, so pick
   * one that no other dimension of the model has.
   */
  batch?: number;
}

type Rec = { op: OpName; inputs: (Tensor | null)[]; attrs: Attrs } | 'alias';
type Args = unknown[];

const flat = (a: Args): number[] => (a.length === 1 && Array.isArray(a[0]) ? (a[0] as number[]) : (a as number[]));
const normDim = (d: number, n: number) => (d < 0 ? d + n : d);
const unary = (op: OpName) => (t: Tensor): Rec => ({ op, inputs: [t], attrs: {} });
function binary(op: OpName) {
  return (t: Tensor, [o, alpha]: Args): Rec => {
    const attrs: Attrs = alpha === undefined || alpha === null || alpha === 1 ? {} : { alpha: alpha as number };
    if (o instanceof Tensor) return { op, inputs: [t, o], attrs };
    return { op, inputs: [t], attrs: { ...attrs, scalar: Number(o) } };
  };
}

/** How each Tensor method maps to a graph op (or to the same value: layout and copies). */
const METHODS: Record<string, (t: Tensor, a: Args) => Rec> = {
  ...Object.fromEntries((['relu', 'sigmoid', 'tanh', 'neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'square', 'reciprocal'] as OpName[]).map((op) => [op, unary(op)])),
  add: binary('add'), sub: binary('sub'), mul: binary('mul'), div: binary('div'), pow: binary('pow'),
  maximum: binary('maximum'), minimum: binary('minimum'),
  add_: binary('add'), sub_: binary('sub'), mul_: binary('mul'), div_: binary('div'),
  rsub: (t, [s]) => ({ op: 'rsub', inputs: [t], attrs: { scalar: s as number } }),
  clamp: (t, [min, max]) => ({ op: 'clamp', inputs: [t], attrs: { min: (min as number) ?? null, max: (max as number) ?? null } }),
  clamp_: (t, [min, max]) => ({ op: 'clamp', inputs: [t], attrs: { min: (min as number) ?? null, max: (max as number) ?? null } }),
  matmul: (t, [o]) => ({ op: 'matmul', inputs: [t, o as Tensor], attrs: {} }),
  mm: (t, [o]) => ({ op: 'matmul', inputs: [t, o as Tensor], attrs: {} }),
  flatten: (t, [s = 0, e = -1]) => ({ op: 'flatten', inputs: [t], attrs: { startDim: normDim(s as number, t.ndim), endDim: normDim(e as number, t.ndim) } }),
  reshape: (t, a) => ({ op: 'reshape', inputs: [t], attrs: { shape: flat(a) } }),
  view: (t, a) => ({ op: 'reshape', inputs: [t], attrs: { shape: flat(a) } }),
  permute: (t, a) => ({ op: 'permute', inputs: [t], attrs: { dims: flat(a).map((d) => normDim(d, t.ndim)) } }),
  transpose: (t, [d0, d1]) => {
    const dims = [...Array(t.ndim).keys()];
    const a = normDim(d0 as number, t.ndim), b = normDim(d1 as number, t.ndim);
    [dims[a], dims[b]] = [dims[b], dims[a]];
    return { op: 'permute', inputs: [t], attrs: { dims } };
  },
  squeeze: (t, [d]) => ({ op: 'squeeze', inputs: [t], attrs: { dim: d === undefined || d === null ? null : normDim(d as number, t.ndim) } }),
  unsqueeze: (t, [d]) => ({ op: 'unsqueeze', inputs: [t], attrs: { dim: normDim(d as number, t.ndim + 1) } }),
  expand: (t, a) => ({ op: 'expand', inputs: [t], attrs: { shape: flat(a) } }),
  expandAs: (t, [o]) => ({ op: 'expand', inputs: [t], attrs: { shape: (o as Tensor).shape } }),
  slice: (t, [dim, start, end, step = 1]) => {
    const d = normDim(dim as number, t.ndim), n = t.shape[d];
    const clip = (v: number) => Math.max(0, Math.min(n, v < 0 ? v + n : v));
    return { op: 'slice', inputs: [t], attrs: { dim: d, start: clip((start as number) ?? 0), end: clip((end as number) ?? n), step: step as number } };
  },
  narrow: (t, [dim, start, len]) => {
    const d = normDim(dim as number, t.ndim), s = normDim(start as number, t.shape[d]);
    return { op: 'slice', inputs: [t], attrs: { dim: d, start: s, end: s + (len as number), step: 1 } };
  },
  select: (t, [dim, index]) => {
    const d = normDim(dim as number, t.ndim);
    return { op: 'select', inputs: [t], attrs: { dim: d, index: normDim(index as number, t.shape[d]) } };
  },
  sum: (t, [dim, keepdim = false]) => reduce('sum', t, dim, keepdim as boolean),
  mean: (t, [dim, keepdim = false]) => reduce('mean', t, dim, keepdim as boolean),
  contiguous: () => 'alias', clone: () => 'alias', detach: () => 'alias',
};
function reduce(op: OpName, t: Tensor, dim: unknown, keepdim: boolean): Rec {
  const dims = dim === undefined || dim === null ? null : (Array.isArray(dim) ? dim : [dim]).map((d: number) => normDim(d, t.ndim));
  return { op, inputs: [t], attrs: { dims, keepdim } };
}
/** Casts and moves: the same value when they change nothing (float() of a float32 tensor). */
const CASTS = new Set(['to', 'float', 'double', 'long', 'bool', 'cpu']);
/** Reading values out: refused on anything computed from the input. */
const READS = new Set(['item', 'toTypedArray', 'dataSync', 'toArray', 'toString', 'equal', 'allclose']);
/** Metadata and lifetime: never recorded, never refused. */
const META = new Set(['constructor', 'dispose', 'escape', 'size', 'isContiguous', 'requiresGrad_', 'backward']);
const INPLACE = new Set(['add_', 'sub_', 'mul_', 'div_', 'clamp_']);

class Tracer implements OpRecorder {
  readonly g = new Graph();
  readonly map = new WeakMap<Tensor, Value>();
  /** Values computed from the input (reading them is data-dependent). */
  readonly live = new Set<Value>();
  depth = 0;
  readonly path: string[] = [];
  readonly modulePaths = new Map<Module, string>();
  private nConst = 0;

  constructor(readonly model: Module, readonly batch: number) {
    this.g.tracedBatch = batch;
    for (const [n, m] of model.namedModules()) if (!this.modulePaths.has(m)) this.modulePaths.set(m, n);
    for (const [n, t] of model.namedParameters()) if (!this.map.has(t)) this.map.set(t, this.g.addValue('param', n, t.shape, t.dtype));
    for (const [n, t] of model.namedBuffers()) if (!this.map.has(t)) this.map.set(t, this.g.addValue('buffer', n, t.shape, t.dtype));
  }

  where(): string {
    const p = this.path[this.path.length - 1];
    return p === undefined || p === '' ? `the root module (${this.model.typeName})` : `module '${p}'`;
  }
  private known(xs: readonly unknown[]): boolean {
    return xs.some((x) => x instanceof Tensor && this.map.has(x));
  }
  private valueOf(t: Tensor): Value {
    let v = this.map.get(t);
    if (!v) {
      // Made inside forward without the input (zeros, a mask held outside the state dict): a constant.
      v = this.g.addValue('constant', `c${this.nConst++}`, t.shape, t.dtype);
      this.depth++;
      try { v.data = keep(t.detach().clone()); } finally { this.depth--; }
      this.map.set(t, v);
    }
    return v;
  }
  private values(inputs: (Tensor | null)[]): (Value | null)[] {
    return inputs.map((t) => (t === null ? null : this.valueOf(t)));
  }

  /** A functional op (nn-ops, cat, stack, where). */
  op(op: string, inputs: (Tensor | null)[], attrs: Record<string, unknown>, output: Tensor): void {
    if (this.depth > 0 || !this.known(inputs)) return;
    if (op === 'dropout') {
      if (attrs.training && (attrs.p as number) > 0) throw new TraceError(`trace: dropout in training mode at ${this.where()} is random and cannot be traced (trace in eval mode)`);
      attrs = { p: attrs.p };
    }
    if (op === 'batchNorm') {
      if (attrs.training) throw new TraceError(`trace: batchNorm in training mode at ${this.where()} cannot be traced (it depends on the batch; trace in eval mode)`);
      attrs = { eps: attrs.eps, momentum: attrs.momentum };
    }
    if (!isOpName(op)) throw new TraceError(`trace: op '${op}' at ${this.where()} cannot be expressed in a graph`);
    this.record(op, this.values(inputs), attrs as Attrs, output);
  }

  /** A Tensor method, called through the prototype wrapper. */
  method(name: string, orig: (...a: Args) => unknown, self: Tensor, args: Args): unknown {
    const run = () => { this.depth++; try { return orig.apply(self, args); } finally { this.depth--; } };
    if (!this.known([self, ...args])) return run();
    if (READS.has(name)) {
      const v = this.map.get(self);
      if (v && this.live.has(v)) {
        throw new TraceError(`trace: ${name}() at ${this.where()} reads a value computed from the input: data-dependent control flow cannot be traced`);
      }
      return run();
    }
    if (CASTS.has(name)) {
      const out = run() as Tensor;
      if (out.dtype !== self.dtype) throw new TraceError(`trace: op '${name}' (a cast from ${self.dtype} to ${out.dtype}) at ${this.where()} cannot be expressed in a graph`);
      this.alias(self, out);
      return out;
    }
    const how = METHODS[name];
    if (!how) throw new TraceError(`trace: op '${name}' at ${this.where()} cannot be expressed in a graph`);
    const rec = how(self, args);
    if (rec === 'alias') {
      const out = run() as Tensor;
      this.alias(self, out);
      return out;
    }
    if (INPLACE.has(name)) {
      const v = this.map.get(self);
      if (v && (v.kind === 'param' || v.kind === 'buffer')) {
        throw new TraceError(`trace: in-place op '${name}' on ${v.kind} '${v.name}' at ${this.where()} cannot be traced`);
      }
    }
    const vals = this.values(rec.inputs); // before running: an in-place op changes self
    const out = run() as Tensor;
    this.record(rec.op, vals, rec.attrs, out); // an in-place op's self now maps to the op's result
    return out;
  }

  private alias(from: Tensor, to: Tensor): void {
    if (from !== to) this.map.set(to, this.valueOf(from));
  }

  private record(op: OpName, vals: (Value | null)[], attrs: Attrs, out: Tensor): void {
    const b = this.batch;
    const batchIn = vals.some((v) => v !== null && v.shape.includes('N'));
    let fromAttr: (number | null)[] | null = null;
    if ((op === 'reshape' || op === 'expand') && b > 1) {
      // A size equal to the traced batch is the batch (x.view(x.shape[0], -1), cls.expand(B, 1, D)).
      fromAttr = (attrs.shape as number[]).map((d) => (d === b ? null : d));
      attrs = { shape: fromAttr };
    }
    // With batch 1 only dim 0 can be told to be the batch; with a larger one, any dim of that size
    // computed from the input is (attention moves the batch to dim 1).
    const shape: Dim[] = out.shape.map((d, i) => {
      if (b === 1) return i === 0 && d === 1 && batchIn ? 'N' : d;
      return d === b && (batchIn || (fromAttr !== null && fromAttr[i] === null)) ? 'N' : d;
    });
    const node = this.g.addNode(op, vals, attrs, [{ shape, dtype: out.dtype }], this.path[this.path.length - 1] ?? '');
    const v = node.outputs[0];
    if (vals.some((x) => x !== null && this.live.has(x))) this.live.add(v);
    this.map.set(out, v);
  }
}

let active: Tracer | null = null;

/**
 * Run `fn` as the forward of the module at dot path `path`, for the active trace's module paths
 * (the interpreter calls it per node, so re-tracing a GraphModule keeps each node's module).
 * Without a trace it only calls `fn`.
 */
export function inModule<T>(path: string, fn: () => T): T {
  const tr = active;
  if (tr === null) return fn();
  tr.path.push(path);
  try { return fn(); } finally { tr.path.pop(); }
}
/** Whether a trace is running. */
export const tracing = (): boolean => active !== null;

function install(t: Tracer): () => void {
  const proto = Tensor.prototype as unknown as Record<string, unknown>;
  const saved: [string, unknown][] = [];
  for (const name of Object.getOwnPropertyNames(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, name)!;
    if (typeof d.value !== 'function' || META.has(name)) continue;
    const orig = d.value as (...a: Args) => unknown;
    saved.push([name, orig]);
    proto[name] = function (this: Tensor, ...args: Args) {
      const tr = active;
      if (tr === null || tr.depth > 0) return orig.apply(this, args);
      return tr.method(name, orig, this, args);
    };
  }
  const mproto = Module.prototype as unknown as { call: (x: Tensor) => Tensor };
  const origCall = mproto.call;
  mproto.call = function (this: Module, x: Tensor) {
    const tr = active!;
    const parent = tr.path[tr.path.length - 1] ?? '';
    tr.path.push(tr.modulePaths.get(this) ?? `${parent ? parent + '.' : ''}<${this.typeName}>`);
    try { return origCall.call(this, x); } finally { tr.path.pop(); }
  };
  const prevRec = setRecorder(t);
  active = t;
  return () => {
    active = null;
    setRecorder(prevRec);
    mproto.call = origCall;
    for (const [n, f] of saved) proto[n] = f;
  };
}

/**
 * Trace `model`'s forward pass into a graph, in eval mode (BatchNorm uses its running statistics,
 * dropout is the identity); the model's training flag is restored afterwards.
 */
export function trace(model: Module, opts: TraceOptions): Graph {
  const batch = opts.batch ?? 5;
  if (!Number.isInteger(batch) || batch < 1) throw new TraceError(`trace: batch must be a positive integer, got ${batch}`);
  if (!opts.inputShape.every((d) => Number.isInteger(d) && d > 0)) throw new TraceError(`trace: inputShape [${opts.inputShape}] must hold positive integers`);
  if (active) throw new TraceError('trace: a trace is already running (traces do not nest)');
  const t = new Tracer(model, batch);
  const wasTraining = model.training;
  model.eval();
  const uninstall = install(t);
  try {
    tidy(() => noGrad(() => {
      const x = ones([batch, ...opts.inputShape], { device: model.parameters()[0]?.device });
      const xv = t.g.addValue('input', 'input', ['N', ...opts.inputShape], x.dtype);
      t.map.set(x, xv);
      t.live.add(xv);
      const y = model.call(x);
      const yv = t.map.get(y);
      if (!yv || !t.live.has(yv)) throw new TraceError(`trace: the output of ${model.typeName} does not depend on its input`);
      t.g.outputs = [yv];
    }));
  } catch (e) {
    t.g.dispose();
    throw e;
  } finally {
    uninstall();
    model.train(wasTraining);
  }
  return t.g;
}
