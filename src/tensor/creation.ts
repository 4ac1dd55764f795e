/** Creating tensors: from arrays and typed arrays, and the factory functions of PyTorch. */
import { call, type Handle } from '../core/binding.js';
import { type DType, dtypeCode, dtypeOfTypedArray, type TypedArray } from '../core/dtype.js';
import { checkDevice } from '../core/device.js';
import { ArgumentError, ShapeError } from '../core/errors.js';
import { Tensor } from './tensor.js';
import { recorder } from './record.js';

export interface CreateOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

const dt = (o?: CreateOptions, dflt: DType | null = null) => (o?.dtype ? dtypeCode(o.dtype) : dflt ? dtypeCode(dflt) : null);
const dev = (o?: CreateOptions) => (o?.device ? checkDevice(o.device) : null);
function finish(h: Handle, o?: CreateOptions): Tensor {
  const t = new Tensor(h);
  if (o?.requiresGrad) t.requiresGrad_(true);
  return t;
}
function checkShape(shape: number[], op: string): number[] {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${op}: shape [${shape}] must hold non-negative integers`);
  }
  return shape;
}

type Nested = number | boolean | Nested[];

/** libtorch's limit on dimensions; deeper nesting (or a cyclic array) is refused before any recursion. */
const MAX_DIMS = 64;

function inferShape(x: Nested, op: string): number[] {
  const shape: number[] = [];
  let cur: Nested = x;
  while (Array.isArray(cur)) {
    if (shape.length === MAX_DIMS) throw new ShapeError(`${op}: nested array deeper than ${MAX_DIMS} levels (a tensor has at most ${MAX_DIMS} dimensions)`);
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

function flattenNested(x: Nested, shape: number[], depth: number, out: number[], op: string): void {
  if (depth === shape.length) {
    if (Array.isArray(x)) throw new ShapeError(`${op}: ragged nested array (too deep at depth ${depth})`);
    out.push(typeof x === 'boolean' ? Number(x) : x);
    return;
  }
  if (!Array.isArray(x) || x.length !== shape[depth]) {
    throw new ShapeError(`${op}: ragged nested array: expected length ${shape[depth]} at depth ${depth}, found ${Array.isArray(x) ? x.length : 'a number'}`);
  }
  for (const v of x) flattenNested(v, shape, depth + 1, out, op);
}

function firstLeaf(x: Nested): Nested {
  let c = x;
  while (Array.isArray(c)) c = c[0];
  return c;
}

/**
 * A tensor from nested arrays, a typed array (with `shape`), or a number.
 * Numbers default to float32 (JS has one number type), booleans to bool, typed arrays to their own dtype.
 */
export function tensor(data: Nested | TypedArray, opts: CreateOptions & { shape?: number[] } = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    const ta = data as TypedArray;
    const shape = checkShape(opts.shape ?? [ta.length], 'tensor');
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== ta.length) throw new ShapeError(`tensor: typed array of ${ta.length} elements does not fit shape [${shape}] (${n} elements)`);
    const own = dtypeOfTypedArray(ta);
    const h = call('fromBuffer', ta, shape, dtypeCode(own), null);
    let t = new Tensor(h);
    if (opts.dtype && opts.dtype !== own) { const c = t.to(opts.dtype); t.dispose(); t = c; }
    if (opts.device && opts.device !== 'cpu') { const c = t.to(opts.device); t.dispose(); t = c; }
    if (opts.requiresGrad) t.requiresGrad_(true);
    return t;
  }
  const shape = opts.shape ?? inferShape(data, 'tensor');
  const flat: number[] = [];
  if (opts.shape) {
    flattenNested(data, inferShape(data, 'tensor'), 0, flat, 'tensor');
    if (flat.length !== shape.reduce((a, b) => a * b, 1)) throw new ShapeError(`tensor: ${flat.length} values do not fit shape [${shape}]`);
  } else {
    flattenNested(data, shape, 0, flat, 'tensor');
  }
  const leaf = firstLeaf(data);
  const dtype: DType = opts.dtype ?? (typeof leaf === 'boolean' ? 'bool' : 'float32');
  const buf = toBuffer(flat, dtype);
  return finish(call('fromBuffer', buf, shape, dtypeCode(dtype), dev(opts)), opts);
}

/** Alias of `tensor`, for readers of tfjs code. */
export const fromArray = tensor;

function toBuffer(flat: number[], dtype: DType): TypedArray {
  switch (dtype) {
    case 'float32': return Float32Array.from(flat);
    case 'float64': return Float64Array.from(flat);
    case 'int32': return Int32Array.from(flat);
    case 'int16': return Int16Array.from(flat);
    case 'int8': return Int8Array.from(flat);
    case 'uint8': return Uint8Array.from(flat);
    case 'bool': return Uint8Array.from(flat, (v) => (v ? 1 : 0));
    case 'int64': return BigInt64Array.from(flat, (v) => BigInt(Math.trunc(v)));
    default: throw new ArgumentError(`tensor: cannot build a ${dtype} tensor from numbers; build float32 and convert`);
  }
}

export function scalar(v: number | boolean, opts?: CreateOptions): Tensor {
  return finish(call('scalarTensor', v, dt(opts, typeof v === 'boolean' ? 'bool' : 'float32'), dev(opts)), opts);
}
export function zeros(shape: number[], opts?: CreateOptions): Tensor { return finish(call('zeros', checkShape(shape, 'zeros'), dt(opts, 'float32'), dev(opts)), opts); }
export function ones(shape: number[], opts?: CreateOptions): Tensor { return finish(call('ones', checkShape(shape, 'ones'), dt(opts, 'float32'), dev(opts)), opts); }
export function empty(shape: number[], opts?: CreateOptions): Tensor { return finish(call('empty', checkShape(shape, 'empty'), dt(opts, 'float32'), dev(opts)), opts); }
export function full(shape: number[], value: number | boolean, opts?: CreateOptions): Tensor {
  return finish(call('full', checkShape(shape, 'full'), value, dt(opts, typeof value === 'boolean' ? 'bool' : 'float32'), dev(opts)), opts);
}
/** arange(end) or arange(start, end, step); int64 when every bound is an integer, as in PyTorch. */
export function arange(startOrEnd: number, end?: number, step = 1, opts?: CreateOptions): Tensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  if (step === 0) throw new ArgumentError('arange: step must be non-zero');
  const allInt = Number.isInteger(s) && Number.isInteger(e) && Number.isInteger(step);
  return finish(call('arange', s, e, step, dt(opts, allInt ? 'int64' : 'float32'), dev(opts)), opts);
}
export function linspace(start: number, end: number, steps: number, opts?: CreateOptions): Tensor {
  return finish(call('linspace', start, end, steps, dt(opts, 'float32'), dev(opts)), opts);
}
export function eye(n: number, m = n, opts?: CreateOptions): Tensor { return finish(call('eye', n, m, dt(opts, 'float32'), dev(opts)), opts); }
export function rand(shape: number[], opts?: CreateOptions): Tensor { return finish(call('rand', checkShape(shape, 'rand'), dt(opts, 'float32'), dev(opts)), opts); }
export function randn(shape: number[], opts?: CreateOptions): Tensor { return finish(call('randn', checkShape(shape, 'randn'), dt(opts, 'float32'), dev(opts)), opts); }
/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: number[], opts?: CreateOptions): Tensor {
  if (!(high > low)) throw new ArgumentError(`randint: high (${high}) must exceed low (${low})`);
  return finish(call('randint', low, high, checkShape(shape, 'randint'), dt(opts, 'int64'), dev(opts)), opts);
}
export function randperm(n: number, opts?: CreateOptions): Tensor { return finish(call('randperm', n, dt(opts, 'int64'), dev(opts)), opts); }
/** Independent draws with probability p (a number) or p elementwise (a tensor of probabilities). */
export function bernoulli(p: Tensor, prob?: number): Tensor { return new Tensor(call('bernoulli', p.h, prob ?? null)); }
export function multinomial(probs: Tensor, n: number, replacement = false): Tensor {
  return new Tensor(call('multinomial', probs.h, n, replacement));
}

const like = (t: Tensor, o?: CreateOptions): CreateOptions => ({ dtype: o?.dtype ?? t.dtype, device: o?.device ?? t.device, requiresGrad: o?.requiresGrad });
export function zerosLike(t: Tensor, o?: CreateOptions): Tensor { return zeros(t.shape, like(t, o)); }
export function onesLike(t: Tensor, o?: CreateOptions): Tensor { return ones(t.shape, like(t, o)); }
export function fullLike(t: Tensor, v: number | boolean, o?: CreateOptions): Tensor { return full(t.shape, v, like(t, o)); }
export function randLike(t: Tensor, o?: CreateOptions): Tensor { return rand(t.shape, like(t, o)); }
export function randnLike(t: Tensor, o?: CreateOptions): Tensor { return randn(t.shape, like(t, o)); }
export function emptyLike(t: Tensor, o?: CreateOptions): Tensor { return empty(t.shape, like(t, o)); }

// ---- functions over several tensors ----------------------------------------------------------------
export function cat(ts: Tensor[], dim = 0): Tensor {
  if (ts.length === 0) throw new ArgumentError('cat: expected a non-empty list of tensors');
  const y = new Tensor(call('cat', ts.map((t) => t.h), dim));
  if (recorder !== null) recorder.op('cat', ts, { dim }, y);
  return y;
}
export function stack(ts: Tensor[], dim = 0): Tensor {
  if (ts.length === 0) throw new ArgumentError('stack: expected a non-empty list of tensors');
  const y = new Tensor(call('stack', ts.map((t) => t.h), dim));
  if (recorder !== null) recorder.op('stack', ts, { dim }, y);
  return y;
}
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const y = new Tensor(call('where', cond.h, a instanceof Tensor ? a.h : a, b instanceof Tensor ? b.h : b));
  if (recorder !== null) recorder.op('where', [cond, a instanceof Tensor ? a : null, b instanceof Tensor ? b : null], { a: a instanceof Tensor ? null : a, b: b instanceof Tensor ? null : b }, y);
  return y;
}
export function maximum(a: Tensor, b: Tensor): Tensor { return a.maximum(b); }
export function minimum(a: Tensor, b: Tensor): Tensor { return a.minimum(b); }
export function matmul(a: Tensor, b: Tensor): Tensor { return a.matmul(b); }
export function outer(a: Tensor, b: Tensor): Tensor {
  const y = new Tensor(call('outer', a.h, b.h));
  if (recorder !== null) recorder.op('outer', [a, b], {}, y);
  return y;
}
