/**
 * Tensor: a JS handle on one libtorch tensor, with PyTorch's semantics and names in camelCase.
 * Methods are thin: each checks what the message needs and makes one native call.
 */
import { call, type Handle } from '../core/binding.js';
import { type DType, dtypeCode, dtypeName, typedArrayFor, type TypedArray } from '../core/dtype.js';
import { checkDevice } from '../core/device.js';
import { ArgumentError, DisposedTensorError, DtypeError, ShapeError } from '../core/errors.js';
import { track } from './scope.js';

export type Scalar = number | boolean;
export type TensorLike = Tensor | Scalar;
export type Dims = number | number[];

const arg = (x: TensorLike): Handle | Scalar => (x instanceof Tensor ? x.h : x);
const dims = (d: Dims | undefined | null): number[] | null => (d === undefined || d === null ? null : Array.isArray(d) ? d : [d]);

export class Tensor {
  /** @internal */ _h: Handle | null;
  /** Exempt from scopes (parameters, buffers, masks, kept results). */
  kept = false;
  private _shape: number[] | undefined;
  private _dtype: DType | undefined;

  /** @internal use the creation functions (tensor, zeros, ...) instead. */
  constructor(h: Handle) {
    this._h = h;
    track(this);
  }

  /** @internal The native handle; throws if disposed. */
  get h(): Handle {
    const h = this._h;
    if (h === null) throw new DisposedTensorError(`tensor was used after dispose()${this._shape ? ` (shape [${this._shape}])` : ''}`);
    return h;
  }

  // ---- lifetime and metadata ----------------------------------------------------------------
  dispose(): void {
    if (this._h !== null) {
      call('dispose', this._h);
      this._h = null;
    }
  }
  [Symbol.dispose](): void { this.dispose(); }
  /** @internal See Scoped.escape. */
  escape(): void { if (this._h !== null) call('reportExternal', this._h); }
  get isDisposed(): boolean { return this._h === null; }

  get shape(): number[] { return (this._shape ??= call('shape', this.h) as number[]).slice(); }
  get dtype(): DType { return (this._dtype ??= dtypeName(call('dtype', this.h))); }
  get device(): string { return call('device', this.h) as string; }
  get ndim(): number { return (this._shape ??= call('shape', this.h) as number[]).length; }
  get numel(): number { return (this._shape ??= call('shape', this.h) as number[]).reduce((a, b) => a * b, 1); }
  size(dim?: number): number | number[] {
    if (dim === undefined) return this.shape;
    const s = this._shape ??= call('shape', this.h) as number[];
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new ArgumentError(`size: dim ${dim} out of range for a ${s.length}-d tensor`);
    return s[d];
  }
  isContiguous(): boolean { return call('isContiguous', this.h); }

  // ---- reading out -----------------------------------------------------------------------------
  item(): number {
    const n = this.numel;
    if (n !== 1) throw new ShapeError(`item: tensor has ${n} elements (shape [${this.shape}]), expected 1`);
    const v = call('item', this.h);
    return typeof v === 'boolean' ? Number(v) : v;
  }
  /** A copy of the elements, flat, in a typed array of the dtype (BigInt64Array for int64, Uint8Array for bool). */
  toTypedArray(): TypedArray {
    const d = this.dtype;
    if (d === 'float16') return readAndDispose(this.to('float32'));
    return typedArrayFor(d, call('toBuffer', this.h) as ArrayBuffer);
  }
  /** Flat numbers (int64 converted to number). */
  dataSync(): number[] {
    const a = this.toTypedArray();
    return a instanceof BigInt64Array ? Array.from(a, Number) : Array.from(a as ArrayLike<number>);
  }
  /** Nested arrays of numbers, as torch's tolist(). */
  toArray(): unknown {
    const flat = this.dataSync();
    const shape = this.shape;
    if (shape.length === 0) return flat[0];
    let i = 0;
    const build = (d: number): unknown[] => {
      const out: unknown[] = [];
      for (let k = 0; k < shape[d]; k++) out.push(d === shape.length - 1 ? flat[i++] : build(d + 1));
      return out;
    };
    return build(0);
  }
  toString(): string {
    if (this._h === null) return 'Tensor(disposed)';
    const s = this.shape;
    const n = this.numel;
    let body: string;
    if (n <= 20) {
      body = JSON.stringify(this.toArray());
    } else {
      const flat = this.flatten();
      const first = Array.from(readAndDispose(flat.narrow(0, 0, 6)) as ArrayLike<number | bigint>, Number);
      flat.dispose();
      body = `[${first.map((v) => +v.toPrecision(4)).join(', ')}, ...]`;
    }
    return `Tensor(${body}, shape=[${s}], dtype=${this.dtype}, device=${this.device}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- conversion -------------------------------------------------------------------------------
  to(dtypeOrDevice: DType | string, device?: string): Tensor {
    const isDev = dtypeOrDevice === 'cpu' || dtypeOrDevice.startsWith('cuda');
    const dt = isDev ? null : dtypeCode(dtypeOrDevice as DType);
    const dev = isDev ? checkDevice(dtypeOrDevice) : device !== undefined ? checkDevice(device) : null;
    return new Tensor(call('to', this.h, dt, dev));
  }
  float(): Tensor { return this.to('float32'); }
  double(): Tensor { return this.to('float64'); }
  long(): Tensor { return this.to('int64'); }
  bool(): Tensor { return this.to('bool'); }
  cpu(): Tensor { return this.to('cpu'); }
  clone(): Tensor { return new Tensor(call('clone', this.h)); }
  /** A contiguous copy (or this tensor's storage if already so), in the given memory layout. */
  contiguous(memoryFormat: 'contiguous' | 'channels_last' = 'contiguous'): Tensor {
    if (memoryFormat === 'channels_last') return new Tensor(call('contiguousFormat', this.h, 1));
    return new Tensor(call('contiguous', this.h));
  }
  detach(): Tensor { return new Tensor(call('detach', this.h)); }

  // ---- elementwise ------------------------------------------------------------------------------
  add(o: TensorLike, alpha?: number): Tensor { return new Tensor(call('add', this.h, arg(o), alpha ?? null)); }
  sub(o: TensorLike, alpha?: number): Tensor { return new Tensor(call('sub', this.h, arg(o), alpha ?? null)); }
  /** scalar - this */
  rsub(s: number): Tensor { return new Tensor(call('rsub', this.h, s)); }
  mul(o: TensorLike): Tensor { return new Tensor(call('mul', this.h, arg(o))); }
  div(o: TensorLike): Tensor { return new Tensor(call('div', this.h, arg(o))); }
  pow(o: TensorLike): Tensor { return new Tensor(call('pow', this.h, arg(o))); }
  remainder(o: TensorLike): Tensor { return new Tensor(call('remainder', this.h, arg(o))); }
  neg(): Tensor { return new Tensor(call('neg', this.h)); }
  abs(): Tensor { return new Tensor(call('abs', this.h)); }
  sign(): Tensor { return new Tensor(call('sign', this.h)); }
  exp(): Tensor { return new Tensor(call('exp', this.h)); }
  log(): Tensor { return new Tensor(call('log', this.h)); }
  sqrt(): Tensor { return new Tensor(call('sqrt', this.h)); }
  rsqrt(): Tensor { return new Tensor(call('rsqrt', this.h)); }
  square(): Tensor { return new Tensor(call('square', this.h)); }
  reciprocal(): Tensor { return new Tensor(call('reciprocal', this.h)); }
  sin(): Tensor { return new Tensor(call('sin', this.h)); }
  cos(): Tensor { return new Tensor(call('cos', this.h)); }
  floor(): Tensor { return new Tensor(call('floor', this.h)); }
  ceil(): Tensor { return new Tensor(call('ceil', this.h)); }
  round(): Tensor { return new Tensor(call('round', this.h)); }
  relu(): Tensor { return new Tensor(call('relu', this.h)); }
  sigmoid(): Tensor { return new Tensor(call('sigmoid', this.h)); }
  tanh(): Tensor { return new Tensor(call('tanh', this.h)); }
  isnan(): Tensor { return new Tensor(call('isnan', this.h)); }
  isfinite(): Tensor { return new Tensor(call('isfinite', this.h)); }
  clamp(min?: number | null, max?: number | null): Tensor { return new Tensor(call('clamp', this.h, min ?? null, max ?? null)); }
  maximum(o: Tensor): Tensor { return new Tensor(call('maximum', this.h, o.h)); }
  minimum(o: Tensor): Tensor { return new Tensor(call('minimum', this.h, o.h)); }
  eq(o: TensorLike): Tensor { return new Tensor(call('eq', this.h, arg(o))); }
  ne(o: TensorLike): Tensor { return new Tensor(call('ne', this.h, arg(o))); }
  lt(o: TensorLike): Tensor { return new Tensor(call('lt', this.h, arg(o))); }
  le(o: TensorLike): Tensor { return new Tensor(call('le', this.h, arg(o))); }
  gt(o: TensorLike): Tensor { return new Tensor(call('gt', this.h, arg(o))); }
  ge(o: TensorLike): Tensor { return new Tensor(call('ge', this.h, arg(o))); }
  logicalAnd(o: Tensor): Tensor { return new Tensor(call('logicalAnd', this.h, o.h)); }
  logicalOr(o: Tensor): Tensor { return new Tensor(call('logicalOr', this.h, o.h)); }
  logicalXor(o: Tensor): Tensor { return new Tensor(call('logicalXor', this.h, o.h)); }
  logicalNot(): Tensor { return new Tensor(call('logicalNot', this.h)); }
  /** where(cond, this, other) as torch.where with this tensor as the true branch. */
  where(cond: Tensor, other: TensorLike): Tensor { return new Tensor(call('where', cond.h, this.h, arg(other))); }
  equal(o: Tensor): boolean { return call('equal', this.h, o.h); }
  allclose(o: Tensor, rtol = 1e-5, atol = 1e-8): boolean { return call('allclose', this.h, o.h, rtol, atol); }

  // ---- reductions -------------------------------------------------------------------------------
  sum(dim?: Dims | null, keepdim = false): Tensor { return new Tensor(call('sum', this.h, dims(dim), keepdim)); }
  mean(dim?: Dims | null, keepdim = false): Tensor { return new Tensor(call('mean', this.h, dims(dim), keepdim)); }
  var(dim?: Dims | null, keepdim = false, unbiased = true): Tensor { return new Tensor(call('varOp', this.h, dims(dim), keepdim, unbiased)); }
  std(dim?: Dims | null, keepdim = false, unbiased = true): Tensor { return new Tensor(call('stdOp', this.h, dims(dim), keepdim, unbiased)); }
  prod(): Tensor { return new Tensor(call('prod', this.h)); }
  /** Overall maximum; use maxDim for values and indices along a dim. */
  max(): Tensor { return new Tensor(call('max', this.h, null, false)); }
  min(): Tensor { return new Tensor(call('min', this.h, null, false)); }
  maxDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = call('max', this.h, dim, keepdim) as Handle[];
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  minDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = call('min', this.h, dim, keepdim) as Handle[];
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  argmax(dim?: number, keepdim = false): Tensor { return new Tensor(call('argmax', this.h, dim ?? null, keepdim)); }
  argmin(dim?: number, keepdim = false): Tensor { return new Tensor(call('argmin', this.h, dim ?? null, keepdim)); }
  norm(p = 2, dim?: Dims | null, keepdim = false): Tensor { return new Tensor(call('norm', this.h, p, dims(dim), keepdim)); }
  topk(k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
    const [v, i] = call('topk', this.h, k, dim, largest, sorted) as Handle[];
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  /** Stable sort: equal values keep their index order. */
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [v, i] = call('sort', this.h, dim, descending) as Handle[];
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  argsort(dim = -1, descending = false): Tensor { return new Tensor(call('argsort', this.h, dim, descending)); }
  kthvalue(k: number, dim = -1, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = call('kthvalue', this.h, k, dim, keepdim) as Handle[];
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  quantile(q: number | Tensor, dim?: number, keepdim = false, interpolation = 'linear'): Tensor {
    return new Tensor(call('quantile', this.h, arg(q), dim ?? null, keepdim, interpolation));
  }
  cumsum(dim: number): Tensor { return new Tensor(call('cumsum', this.h, dim)); }
  countNonzero(): Tensor { return new Tensor(call('countNonzero', this.h)); }
  all(): Tensor { return new Tensor(call('all', this.h)); }
  any(): Tensor { return new Tensor(call('any', this.h)); }

  // ---- shape and indexing ---------------------------------------------------------------------------
  reshape(...shape: number[] | [number[]]): Tensor { return new Tensor(call('reshape', this.h, flatArgs(shape))); }
  view(...shape: number[] | [number[]]): Tensor { return new Tensor(call('view', this.h, flatArgs(shape))); }
  flatten(startDim = 0, endDim = -1): Tensor { return new Tensor(call('flatten', this.h, startDim, endDim)); }
  permute(...order: number[] | [number[]]): Tensor { return new Tensor(call('permute', this.h, flatArgs(order))); }
  transpose(d0: number, d1: number): Tensor { return new Tensor(call('transpose', this.h, d0, d1)); }
  get T(): Tensor { return this.transpose(0, 1); }
  squeeze(dim?: number): Tensor { return new Tensor(call('squeeze', this.h, dim ?? null)); }
  unsqueeze(dim: number): Tensor { return new Tensor(call('unsqueeze', this.h, dim)); }
  expand(...shape: number[] | [number[]]): Tensor { return new Tensor(call('expand', this.h, flatArgs(shape))); }
  expandAs(o: Tensor): Tensor { return this.expand(o.shape); }
  repeat(...times: number[] | [number[]]): Tensor { return new Tensor(call('repeat', this.h, flatArgs(times))); }
  narrow(dim: number, start: number, length: number): Tensor { return new Tensor(call('narrow', this.h, dim, start, length)); }
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
    return new Tensor(call('slice', this.h, dim, start ?? null, end ?? null, step));
  }
  select(dim: number, index: number): Tensor { return new Tensor(call('select', this.h, dim, index)); }
  indexSelect(dim: number, index: Tensor): Tensor { return new Tensor(call('indexSelect', this.h, dim, index.h)); }
  gather(dim: number, index: Tensor): Tensor { return new Tensor(call('gather', this.h, dim, index.h)); }
  scatter(dim: number, index: Tensor, src: TensorLike): Tensor { return new Tensor(call('scatter', this.h, dim, index.h, arg(src))); }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor { return new Tensor(call('scatterAdd', this.h, dim, index.h, src.h)); }
  maskedFill(mask: Tensor, value: TensorLike): Tensor { boolMask('maskedFill', mask); return new Tensor(call('maskedFill', this.h, mask.h, arg(value))); }
  maskedSelect(mask: Tensor): Tensor { return new Tensor(call('maskedSelect', this.h, mask.h)); }
  nonzero(): Tensor { return new Tensor(call('nonzero', this.h)); }
  flip(dims: number[]): Tensor { return new Tensor(call('flip', this.h, dims)); }
  chunk(chunks: number, dim = 0): Tensor[] { return (call('chunk', this.h, chunks, dim) as Handle[]).map((h) => new Tensor(h)); }

  // ---- products ----------------------------------------------------------------------------------------
  matmul(o: Tensor): Tensor { return new Tensor(call('matmul', this.h, o.h)); }
  mm(o: Tensor): Tensor { return new Tensor(call('mm', this.h, o.h)); }

  // ---- in place (return this) ----------------------------------------------------------------------------
  add_(o: TensorLike, alpha?: number): this { call('add_', this.h, arg(o), alpha ?? null); return this; }
  sub_(o: TensorLike): this { call('sub_', this.h, arg(o)); return this; }
  mul_(o: TensorLike): this { call('mul_', this.h, arg(o)); return this; }
  div_(o: TensorLike): this { call('div_', this.h, arg(o)); return this; }
  addcmul_(a: Tensor, b: Tensor, value = 1): this { call('addcmul_', this.h, a.h, b.h, value); return this; }
  addcdiv_(a: Tensor, b: Tensor, value = 1): this { call('addcdiv_', this.h, a.h, b.h, value); return this; }
  lerp_(end: Tensor, weight: number): this { call('lerp_', this.h, end.h, weight); return this; }
  copy_(src: Tensor): this { call('copy_', this.h, src.h); return this; }
  zero_(): this { call('zero_', this.h); return this; }
  fill_(v: Scalar): this { call('fill_', this.h, v); return this; }
  clamp_(min?: number | null, max?: number | null): this { call('clamp_', this.h, min ?? null, max ?? null); return this; }
  sqrt_(): this { call('sqrt_', this.h); return this; }
  maskedFill_(mask: Tensor, value: TensorLike): this { boolMask('maskedFill_', mask); call('maskedFill_', this.h, mask.h, arg(value)); return this; }
  /** Copy `src`'s elements, in order, into the positions where `mask` is true. */
  maskedScatter_(mask: Tensor, src: Tensor): this { call('maskedScatter_', this.h, mask.h, src.h); return this; }
  indexPut_(indices: Tensor[], values: Tensor, accumulate = false): this {
    call('indexPut_', this.h, indices.map((t) => t.h), values.h, accumulate);
    return this;
  }
  uniform_(lo = 0, hi = 1): this { call('uniform_', this.h, lo, hi); return this; }
  normal_(mean = 0, std = 1): this { call('normal_', this.h, mean, std); return this; }
  bernoulli_(p: number): this { call('bernoulli_', this.h, p); return this; }

  // ---- autograd -------------------------------------------------------------------------------------------
  get requiresGrad(): boolean { return call('requiresGrad', this.h); }
  set requiresGrad(v: boolean) { call('setRequiresGrad', this.h, v); }
  requiresGrad_(v = true): this { call('setRequiresGrad', this.h, v); return this; }
  get isLeaf(): boolean { return call('isLeaf', this.h); }
  get gradFn(): string | null { return call('gradFnName', this.h); }
  /** The accumulated gradient (a new handle on it, which joins the current scope), or null. */
  get grad(): Tensor | null {
    const g = call('grad', this.h) as Handle | null;
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    // libtorch's C++ setter checks nothing (PyTorch's Python one does): a mismatched gradient
    // would be accepted and break the next backward or optimizer step far from here.
    if (g !== null) {
      const gs = g.shape, s = this.shape;
      if (gs.length !== s.length || gs.some((d, i) => d !== s[i])) throw new ShapeError(`grad: assigned gradient has shape [${gs}], the tensor has [${s}]`);
      if (g.dtype !== this.dtype) throw new DtypeError(`grad: assigned gradient is ${g.dtype}, the tensor is ${this.dtype}`);
    }
    call('setGrad', this.h, g === null ? null : g.h);
  }
  backward(gradient?: Tensor | null, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    if (!gradient && this.numel !== 1) throw new ShapeError(`backward: gradient can be implied only for a scalar output; this one has shape [${this.shape}]`);
    call('backward', this.h, gradient ? gradient.h : null, opts.retainGraph ?? false, opts.createGraph ?? false);
  }
}

// Temporaries made only to read elements are freed at once: toString() and float16 reads used to leak them.
function readAndDispose(t: Tensor): TypedArray {
  try { return t.toTypedArray(); } finally { t.dispose(); }
}

// libtorch 1.13 accepts a float mask in masked_fill and silently fills nothing: masks must be bool.
function boolMask(op: string, mask: Tensor): void {
  if (mask.dtype !== 'bool') throw new DtypeError(`${op}: mask must be bool, got ${mask.dtype} (use .bool() or a comparison)`);
}

function flatArgs(a: number[] | [number[]]): number[] {
  return (a.length === 1 && Array.isArray(a[0]) ? a[0] : a) as number[];
}

/** @internal Wrap a native handle (null stays null). */
export function wrap(h: Handle): Tensor {
  return new Tensor(h);
}
