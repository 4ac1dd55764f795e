/**
 * ONNX operators -> graph ops, one mapping per operator (onnx-import.ts drives them). Shape
 * arithmetic on values known at import is folded here (with sizes a + k*N); everything computed
 * from the input becomes graph nodes, run at the two import batches to learn their shapes.
 * Patterns PyTorch's exporter spells out are put back together where pruning needs the layer:
 * MatMul by a weight (+ bias Add) is a linear, GELU's erf form is a gelu.
 */
import type { DType } from '../core/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import type { Attrs, OpName } from './ir.js';
import {
  IMPORT_BATCHES, OnnxImportError, symToDim, protoNumbers, type Dyn, type ImportState, type Static, type Sym,
} from './onnx-import.js';
import { AttributeProto_AttributeType as AT, type AttributeProto, type NodeProto } from './proto/onnx_pb.js';
import { RUN } from './run.js';

/** Largest tensor (elements) an import makes or accepts. */
export const MAX_ELEMENTS = 2 ** 28;

type Imp = ImportState;

// ---- attributes ------------------------------------------------------------------------------------
function attr(n: NodeProto, name: string): AttributeProto | undefined { return n.attribute.find((a) => a.name === name); }
function aInt(n: NodeProto, name: string, def: number): number {
  const a = attr(n, name);
  return a ? Number(a.i) : def;
}
function aFloat(n: NodeProto, name: string, def: number): number {
  const a = attr(n, name);
  return a ? a.f : def;
}
function aInts(n: NodeProto, name: string): number[] | null {
  const a = attr(n, name);
  return a ? a.ints.map((x) => Number(x)) : null;
}
function aStr(n: NodeProto, name: string, def: string): string {
  const a = attr(n, name);
  return a ? new TextDecoder().decode(a.s) : def;
}

const nodeName = (n: NodeProto) => n.name || `${n.opType}(${n.output[0] ?? ''})`;
/** Module path from PyTorch's node names: '/layer/self_attn/MatMul' -> 'layer.self_attn'. */
const moduleOf = (n: NodeProto) => {
  const parts = n.name.split('/').filter((p) => p);
  return parts.length > 1 ? parts.slice(0, -1).join('.') : '';
};

function fail(imp: Imp, n: NodeProto, why: string): never {
  throw new OnnxImportError(`ONNX import: node '${nodeName(n)}' (${n.opType}, opset ${imp.opset}): ${why}`);
}

const numel = (d: number[]) => d.reduce((a, b) => a * b, 1);
const isPure = (s: Sym) => s.k === 0;
const symEq = (a: Sym, b: Sym) => a.a === b.a && a.k === b.k;
const pureOf = (imp: Imp, n: NodeProto, s: Sym[], what: string): number[] => s.map((x) => {
  if (!isPure(x)) fail(imp, n, `${what} depends on the batch`);
  return x.a;
});

/** Run a graph op at both import batches and append it to the graph. */
function emit(imp: Imp, n: NodeProto, op: OpName, ins: (Dyn | null)[], attrs: Attrs): Dyn {
  const t = IMPORT_BATCHES.map((b, i) => {
    try {
      // In a scope: an op's temporaries (conv2d's channels-last copies) are freed, its output kept.
      return tidy(() => RUN[op](ins.map((d) => (d ? d.t[i] : null)), attrs, { training: false, batch: b }));
    } catch (e) {
      return fail(imp, n, `topiary's ${op} refused it (${(e as Error).message})`);
    }
  }) as [Tensor, Tensor];
  for (const x of t) { imp.own(x); if (x.shape.reduce((a, b) => a * b, 1) > MAX_ELEMENTS) fail(imp, n, `its output [${x.shape}] is too large`); }
  const [s1, s2] = [t[0].shape, t[1].shape];
  const db = IMPORT_BATCHES[1] - IMPORT_BATCHES[0];
  const sym = s1.map((d, i) => { const k = (s2[i] - d) / db; return { a: d - k * IMPORT_BATCHES[0], k }; });
  const node = imp.graph.addNode(op, ins.map((d) => (d ? d.v : null)), attrs, [{ shape: sym.map(symToDim), dtype: t[0].dtype }], moduleOf(n));
  return { v: node.outputs[0], t, sym };
}

const dyn = (imp: Imp, name: string, role: 'param' | 'buffer' = 'param') => imp.dynOf(name, 'input', role);
const input = (n: NodeProto, i: number) => n.input[i] ?? '';
const hasInput = (n: NodeProto, i: number) => (n.input[i] ?? '') !== '';
const normAxis = (imp: Imp, n: NodeProto, a: number, r: number) => {
  const x = a < 0 ? a + r : a;
  if (x < 0 || x >= r) fail(imp, n, `axis ${a} is out of range for rank ${r}`);
  return x;
};
/** A static scalar (numel 1, not batch-dependent), or null. */
function scalarOf(imp: Imp, name: string): number | null {
  if (!imp.isStatic(name)) return null;
  const d = imp.initDims(name);
  if (d && numel(d) !== 1) return null;
  const s = imp.staticOf(name, 'operand');
  if (s.vals.length !== 1 || (s.ks && s.ks[0] !== 0)) return null;
  return s.vals[0];
}
/** Ints from an input (opset 13+) or an attribute (older opsets), or null when neither is given. */
function intsFrom(imp: Imp, n: NodeProto, i: number, attrName: string): number[] | null {
  if (hasInput(n, i)) return pureOf(imp, n, symsOf(imp.staticOf(input(n, i), input(n, i))), `input ${i}`);
  return aInts(n, attrName);
}
const symsOf = (s: Static): Sym[] => s.vals.map((a, i) => ({ a, k: s.ks?.[i] ?? 0 }));
const fromSyms = (dims: number[], syms: Sym[], dt: DType = 'int64'): Static => {
  const ks = syms.map((s) => s.k);
  return { dt, dims, vals: syms.map((s) => s.a), ...(ks.some((k) => k !== 0) ? { ks } : {}) };
};
const single = (imp: Imp, n: NodeProto, out: Dyn) => imp.setDyn(n.output[0], out);

// ---- folding of static values ------------------------------------------------------------------
/** Broadcast two static values elementwise (small: shape arithmetic and constants). */
function foldBinary(imp: Imp, n: NodeProto, f: (x: Sym, y: Sym) => Sym, outDt?: DType): void {
  const a = imp.staticOf(input(n, 0), 'operand'), b = imp.staticOf(input(n, 1), 'operand');
  const r = Math.max(a.dims.length, b.dims.length);
  const pa = [...new Array(r - a.dims.length).fill(1), ...a.dims], pb = [...new Array(r - b.dims.length).fill(1), ...b.dims];
  const dims = pa.map((d, i) => {
    if (d !== pb[i] && d !== 1 && pb[i] !== 1) fail(imp, n, `shapes [${a.dims}] and [${b.dims}] do not broadcast`);
    return Math.max(d, pb[i]);
  });
  const total = numel(dims);
  if (total > MAX_ELEMENTS) fail(imp, n, 'the folded result is too large');
  const sa = symsOf(a), sb = symsOf(b);
  const idx = (pd: number[], k: number) => {
    let off = 0, stride = 1;
    for (let i = r - 1; i >= 0; i--) {
      const c = Math.floor(k / dims.slice(i + 1).reduce((x, y) => x * y, 1)) % dims[i];
      off += (pd[i] === 1 ? 0 : c) * stride;
      stride *= pd[i];
    }
    return off;
  };
  const out: Sym[] = [];
  for (let k = 0; k < total; k++) out.push(f(sa[idx(pa, k)], sb[idx(pb, k)]));
  imp.setStatic(n.output[0], fromSyms(dims, out, outDt ?? a.dt));
}
const isInt = (dt: DType) => dt !== 'float32' && dt !== 'float64';
function symArith(imp: Imp, n: NodeProto, op: string, dt: DType): (x: Sym, y: Sym) => Sym {
  const pure = (x: Sym, y: Sym) => { if (!isPure(x) || !isPure(y)) fail(imp, n, `${op} of sizes that depend on the batch`); };
  switch (op) {
    case 'Add': return (x, y) => ({ a: x.a + y.a, k: x.k + y.k });
    case 'Sub': return (x, y) => ({ a: x.a - y.a, k: x.k - y.k });
    case 'Mul': return (x, y) => {
      if (!isPure(x) && !isPure(y)) fail(imp, n, 'a product of two batch-dependent sizes');
      return { a: x.a * y.a, k: x.k * y.a + y.k * x.a };
    };
    case 'Div': return (x, y) => {
      if (!isPure(y)) fail(imp, n, 'a division by a batch-dependent size');
      if (isPure(x)) return { a: isInt(dt) ? Math.trunc(x.a / y.a) : x.a / y.a, k: 0 };
      if (x.a % y.a !== 0 || x.k % y.a !== 0) fail(imp, n, 'a batch-dependent size that does not divide evenly');
      return { a: x.a / y.a, k: x.k / y.a };
    };
    case 'Pow': return (x, y) => { pure(x, y); return { a: x.a ** y.a, k: 0 }; };
    case 'Max': return (x, y) => { pure(x, y); return { a: Math.max(x.a, y.a), k: 0 }; };
    case 'Min': return (x, y) => { pure(x, y); return { a: Math.min(x.a, y.a), k: 0 }; };
    case 'Equal': return (x, y) => {
      if (symEq(x, y)) return { a: 1, k: 0 };
      if (x.k === y.k) return { a: 0, k: 0 };
      // a + kN = b + jN for some batch N >= 1? (Expand's shape is tested against -1 this way.)
      const n0 = (y.a - x.a) / (x.k - y.k);
      if (!Number.isInteger(n0) || n0 < 1) return { a: 0, k: 0 };
      return fail(imp, n, 'comparing a batch-dependent size that could be equal');
    };
    default: return fail(imp, n, 'not foldable');
  }
}
function foldUnary(imp: Imp, n: NodeProto, f: (x: number) => number): void {
  const a = imp.staticOf(input(n, 0), 'operand');
  if (a.ks?.some((k) => k !== 0)) fail(imp, n, 'a batch-dependent size used as data');
  imp.setStatic(n.output[0], { dt: a.dt, dims: a.dims, vals: a.vals.map(f) });
}
const allStatic = (imp: Imp, n: NodeProto) => n.input.every((i) => i === '' || imp.isStatic(i));
/** Only tiny statics are folded in JS; big ones (weights) go through the graph. */
const smallStatic = (imp: Imp, n: NodeProto) => allStatic(imp, n) && n.input.every((i) => {
  if (i === '') return true;
  const d = imp.initDims(i);
  return d === null || numel(d) <= 4096;
});

// ---- mappings --------------------------------------------------------------------------------------
type Mapper = (imp: Imp, n: NodeProto) => void;

const UNARY: Record<string, OpName> = {
  Relu: 'relu', Sigmoid: 'sigmoid', Tanh: 'tanh', Sqrt: 'sqrt', Exp: 'exp', Log: 'log', Neg: 'neg', Abs: 'abs', Reciprocal: 'reciprocal',
};
const UNARY_FOLD: Record<string, (x: number) => number> = {
  Sqrt: Math.sqrt, Exp: Math.exp, Log: Math.log, Neg: (x) => -x, Abs: Math.abs, Reciprocal: (x) => 1 / x, Relu: (x) => Math.max(0, x),
  Sigmoid: (x) => 1 / (1 + Math.exp(-x)), Tanh: Math.tanh,
};
const BINARY: Record<string, 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum'> = {
  Add: 'add', Sub: 'sub', Mul: 'mul', Div: 'div', Pow: 'pow', Max: 'maximum', Min: 'minimum',
};

function unary(imp: Imp, n: NodeProto): void {
  if (smallStatic(imp, n) && UNARY_FOLD[n.opType]) { foldUnary(imp, n, UNARY_FOLD[n.opType]); return; }
  single(imp, n, emit(imp, n, UNARY[n.opType], [dyn(imp, input(n, 0))], {}));
}

function binary(imp: Imp, n: NodeProto): void {
  if (n.input.length !== 2) fail(imp, n, `${n.input.length} operands (2 are supported)`);
  const op = BINARY[n.opType];
  if (smallStatic(imp, n)) {
    const a = imp.staticOf(input(n, 0), 'operand');
    foldBinary(imp, n, symArith(imp, n, n.opType, a.dt));
    return;
  }
  if (n.opType === 'Div' && matchGelu(imp, n)) return;
  const [x, y] = [input(n, 0), input(n, 1)];
  const sy = scalarOf(imp, y), sx = scalarOf(imp, x);
  if (sy !== null && op !== 'maximum' && op !== 'minimum') { single(imp, n, emit(imp, n, op, [dyn(imp, x)], { scalar: sy })); return; }
  if (sx !== null && (op === 'add' || op === 'mul')) { single(imp, n, emit(imp, n, op, [dyn(imp, y)], { scalar: sx })); return; }
  if (sx !== null && op === 'sub') { single(imp, n, emit(imp, n, 'rsub', [dyn(imp, y)], { scalar: sx })); return; }
  if (sx !== null && op === 'div') {
    const r = emit(imp, n, 'reciprocal', [dyn(imp, y)], {});
    single(imp, n, sx === 1 ? r : emit(imp, n, 'mul', [r], { scalar: sx }));
    return;
  }
  single(imp, n, emit(imp, n, op, [dyn(imp, x), dyn(imp, y)], {}));
}

/** The only consumer of `name`, when there is exactly one and it is not a graph output. */
function soleConsumer(imp: Imp, name: string, opType: string): NodeProto | null {
  const c = imp.consumers.get(name) ?? [];
  if (c.length !== 1 || c[0].opType !== opType || imp.graphOutputs.has(name) || imp.done.has(c[0])) return null;
  return c[0];
}

/** PyTorch's exact GELU: Div(x, sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5 (either operand order). */
function matchGelu(imp: Imp, div: NodeProto): boolean {
  const x = input(div, 0), c = scalarOf(imp, input(div, 1));
  if (c === null || Math.abs(c - Math.SQRT2) > 1e-5 || imp.isStatic(x)) return false;
  const erf = soleConsumer(imp, div.output[0], 'Erf');
  if (!erf) return false;
  const add = soleConsumer(imp, erf.output[0], 'Add');
  if (!add) return false;
  const one = scalarOf(imp, add.input[0] === erf.output[0] ? add.input[1] : add.input[0]);
  if (one !== 1) return false;
  const mul = soleConsumer(imp, add.output[0], 'Mul');
  if (!mul || !(mul.input.includes(x) && mul.input.includes(add.output[0]))) return false;
  const half = soleConsumer(imp, mul.output[0], 'Mul');
  let out = mul.output[0];
  let hasHalf = false;
  if (half && scalarOf(imp, half.input[0] === mul.output[0] ? half.input[1] : half.input[0]) === 0.5) { out = half.output[0]; hasHalf = true; }
  if (!hasHalf) return false;
  const y = emit(imp, div, 'gelu', [dyn(imp, x)], {});
  imp.setDyn(out, y);
  for (const d of [erf, add, mul, half!]) imp.done.add(d);
  return true;
}

function gemm(imp: Imp, n: NodeProto): void {
  const [A, B] = [input(n, 0), input(n, 1)];
  const C = hasInput(n, 2) ? input(n, 2) : null;
  const alpha = aFloat(n, 'alpha', 1), beta = aFloat(n, 'beta', 1), tA = aInt(n, 'transA', 0), tB = aInt(n, 'transB', 0);
  const bd = imp.initDims(B), cd = C ? imp.initDims(C) : null;
  if (bd && bd.length === 2 && tA === 0 && alpha === 1 && beta === 1 && (C === null || (cd && numel(cd) === bd[tB ? 0 : 1]))) {
    const w = tB ? dyn(imp, B) : imp.paramFrom(B, (t) => t.transpose(0, 1));
    const b = C === null ? null : cd!.length === 1 ? dyn(imp, C) : imp.paramFrom(C, (t) => t.reshape([-1]));
    single(imp, n, emit(imp, n, 'linear', [dyn(imp, A), w, b], {}));
    return;
  }
  let a = dyn(imp, A), b = dyn(imp, B);
  if (tA) a = emit(imp, n, 'permute', [a], { dims: [1, 0] });
  if (tB) b = emit(imp, n, 'permute', [b], { dims: [1, 0] });
  let y = emit(imp, n, 'matmul', [a, b], {});
  if (alpha !== 1) y = emit(imp, n, 'mul', [y], { scalar: alpha });
  if (C !== null) {
    let c = dyn(imp, C);
    if (beta !== 1) c = emit(imp, n, 'mul', [c], { scalar: beta });
    y = emit(imp, n, 'add', [y, c], {});
  }
  single(imp, n, y);
}

function matmul(imp: Imp, n: NodeProto): void {
  const [A, B] = [input(n, 0), input(n, 1)];
  const bd = imp.initDims(B);
  if (bd && bd.length === 2 && !imp.isStatic(A)) {
    // x @ W with W [in, out]: a linear with weight W^T [out, in], so pruning sees output rows.
    // PyTorch writes a Linear on 3-d input as MatMul + Add(bias): one linear with its bias again.
    const add = soleConsumer(imp, n.output[0], 'Add');
    const other = add ? (add.input[0] === n.output[0] ? add.input[1] : add.input[0]) : '';
    const bias = add && imp.isInit(other) && imp.initDims(other)!.join() === String(bd[1]) ? other : null;
    // The exporter names the transposed weight 'onnx::MatMul_12'; its bias keeps the layer's name.
    const rename = bias !== null && B.startsWith('onnx::') && /bias$/.test(bias) ? bias.replace(/bias$/, 'weight') : undefined;
    const w = imp.paramFrom(B, (t) => t.transpose(0, 1), rename);
    const y = emit(imp, n, 'linear', [dyn(imp, A), w, bias === null ? null : dyn(imp, bias)], {});
    if (bias !== null) { imp.done.add(add!); imp.setDyn(add!.output[0], y); } else single(imp, n, y);
    return;
  }
  single(imp, n, emit(imp, n, 'matmul', [dyn(imp, A), dyn(imp, B)], {}));
}

function pads2(imp: Imp, n: NodeProto, x: Dyn, kernel: number[], strides: number[], dil: number[]): { pads: number[] | null; pre: number[] | null } {
  const autoPad = aStr(n, 'auto_pad', 'NOTSET');
  let p = aInts(n, 'pads') ?? [0, 0, 0, 0];
  if (autoPad === 'VALID') p = [0, 0, 0, 0];
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const hw = pureOf(imp, n, x.sym.slice(2), 'the spatial size');
    const tot = hw.map((s, i) => Math.max(0, (Math.ceil(s / strides[i]) - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - s));
    const lo = tot.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
    p = [lo[0], lo[1], tot[0] - lo[0], tot[1] - lo[1]];
  } else if (autoPad !== 'NOTSET') fail(imp, n, `auto_pad '${autoPad}'`);
  if (p.length !== 4) fail(imp, n, `pads [${p}] (2-d only)`);
  if (p[0] === p[2] && p[1] === p[3]) return { pads: [p[0], p[1]], pre: null };
  // Asymmetric padding: an explicit pad first (torch order: left, right, top, bottom).
  return { pads: null, pre: [p[1], p[3], p[0], p[2]] };
}

function conv(imp: Imp, n: NodeProto): void {
  let x = dyn(imp, input(n, 0));
  const w = dyn(imp, input(n, 1));
  if (x.sym.length !== 4 || w.sym.length !== 4) fail(imp, n, `a ${x.sym.length - 2}-d convolution (2-d only)`);
  const k = aInts(n, 'kernel_shape') ?? w.t[0].shape.slice(2);
  const stride = aInts(n, 'strides') ?? [1, 1], dilation = aInts(n, 'dilations') ?? [1, 1];
  const { pads, pre } = pads2(imp, n, x, k, stride, dilation);
  if (pre) x = emit(imp, n, 'pad', [x], { pads: pre, value: 0 });
  const b = hasInput(n, 2) ? dyn(imp, input(n, 2)) : null;
  single(imp, n, emit(imp, n, 'conv2d', [x, w, b], { stride, padding: pads ?? [0, 0], dilation, groups: aInt(n, 'group', 1) }));
}

/**
 * ConvTranspose as a convolution: zeros inserted between the input's pixels (stride), padded by
 * d(k-1)-p (plus output_padding at the end), and a stride-1 conv by the weight flipped and
 * transposed per group (stored so, under the file's name: an exported model writes a Conv).
 */
function convTranspose(imp: Imp, n: NodeProto): void {
  let x = dyn(imp, input(n, 0));
  const wName = input(n, 1);
  const wd = imp.initDims(wName);
  if (x.sym.length !== 4 || !wd || wd.length !== 4) fail(imp, n, 'a 2-d ConvTranspose with an initializer weight only');
  if (aStr(n, 'auto_pad', 'NOTSET') !== 'NOTSET' || attr(n, 'output_shape')) fail(imp, n, 'auto_pad / output_shape (give pads)');
  const g = aInt(n, 'group', 1);
  const k = aInts(n, 'kernel_shape') ?? wd.slice(2);
  const [sh, sw] = aInts(n, 'strides') ?? [1, 1], dil = aInts(n, 'dilations') ?? [1, 1];
  const p = aInts(n, 'pads') ?? [0, 0, 0, 0], op = aInts(n, 'output_padding') ?? [0, 0];
  const [cin, coutG] = [wd[0], wd[1]];
  const [h, w] = pureOf(imp, n, x.sym.slice(2), 'the spatial size');
  const c = pureOf(imp, n, [x.sym[1]], 'the channels')[0];
  // Zeros between pixels: [N, C, H, W] -> [N, C, (H-1)s+1, (W-1)s+1].
  if (sw > 1) {
    x = emit(imp, n, 'unsqueeze', [x], { dim: 4 });
    x = emit(imp, n, 'pad', [x], { pads: [0, sw - 1], value: 0 });
    x = emit(imp, n, 'reshape', [x], { shape: [null, c, h, w * sw] });
    x = emit(imp, n, 'slice', [x], { dim: 3, start: 0, end: (w - 1) * sw + 1, step: 1 });
  }
  if (sh > 1) {
    const w2 = (w - 1) * sw + 1;
    x = emit(imp, n, 'unsqueeze', [x], { dim: 3 });
    x = emit(imp, n, 'pad', [x], { pads: [0, 0, 0, sh - 1], value: 0 });
    x = emit(imp, n, 'reshape', [x], { shape: [null, c, h * sh, w2] });
    x = emit(imp, n, 'slice', [x], { dim: 2, start: 0, end: (h - 1) * sh + 1, step: 1 });
  }
  const lo = [dil[0] * (k[0] - 1) - p[0], dil[1] * (k[1] - 1) - p[1]];
  const hi = [dil[0] * (k[0] - 1) - p[2] + op[0], dil[1] * (k[1] - 1) - p[3] + op[1]];
  if ([...lo, ...hi].some((v) => v < 0)) fail(imp, n, `pads [${p}] larger than dilation*(kernel-1)`);
  if (lo.some((v, i) => v !== 0 || hi[i] !== 0)) x = emit(imp, n, 'pad', [x], { pads: [lo[1], hi[1], lo[0], hi[0]], value: 0 });
  const wt = imp.paramFrom(wName, (t) => t.reshape([g, cin / g, coutG, k[0], k[1]]).permute([0, 2, 1, 3, 4]).reshape([g * coutG, cin / g, k[0], k[1]]).flip([2, 3]));
  const b = hasInput(n, 2) ? dyn(imp, input(n, 2)) : null;
  single(imp, n, emit(imp, n, 'conv2d', [x, wt, b], { stride: [1, 1], padding: [0, 0], dilation: dil, groups: g }));
}

function pool(imp: Imp, n: NodeProto): void {
  let x = dyn(imp, input(n, 0));
  if (x.sym.length !== 4) fail(imp, n, `a ${x.sym.length - 2}-d pool (2-d only)`);
  if (n.output.length > 1 && n.output[1]) fail(imp, n, 'the Indices output');
  const k = aInts(n, 'kernel_shape');
  if (!k || k.length !== 2) fail(imp, n, 'kernel_shape (2-d) missing');
  const stride = aInts(n, 'strides') ?? [1, 1], dilation = aInts(n, 'dilations') ?? [1, 1];
  const { pads, pre } = pads2(imp, n, x, k, stride, dilation);
  const ceilMode = aInt(n, 'ceil_mode', 0) === 1;
  if (n.opType === 'MaxPool') {
    if (pre) x = emit(imp, n, 'pad', [x], { pads: pre, value: -Infinity });
    single(imp, n, emit(imp, n, 'maxPool2d', [x], { kernel: k, stride, padding: pads ?? [0, 0], dilation, ceilMode }));
    return;
  }
  if (dilation.some((d) => d !== 1)) fail(imp, n, 'dilated average pooling');
  const countIncludePad = aInt(n, 'count_include_pad', 0) === 1;
  if (pre) { if (!countIncludePad) fail(imp, n, 'asymmetric pads without count_include_pad'); x = emit(imp, n, 'pad', [x], { pads: pre, value: 0 }); }
  single(imp, n, emit(imp, n, 'avgPool2d', [x], { kernel: k, stride, padding: pads ?? [0, 0], ceilMode, countIncludePad }));
}

function batchNorm(imp: Imp, n: NodeProto): void {
  if (aInt(n, 'training_mode', 0) === 1) fail(imp, n, 'training_mode=1 (export the model in eval mode; topiary trains BatchNorm itself)');
  for (const i of [1, 2, 3, 4]) if (!imp.isInit(input(n, i))) fail(imp, n, `input ${i} ('${input(n, i)}') is not an initializer`);
  const x = dyn(imp, input(n, 0));
  const momentum = 1 - aFloat(n, 'momentum', 0.9);
  single(imp, n, emit(imp, n, 'batchNorm', [x, dyn(imp, input(n, 1)), dyn(imp, input(n, 2)), dyn(imp, input(n, 3), 'buffer'), dyn(imp, input(n, 4), 'buffer')],
    { eps: aFloat(n, 'epsilon', 1e-5), momentum: +momentum.toFixed(7) }));
}

function layerNorm(imp: Imp, n: NodeProto): void {
  const x = dyn(imp, input(n, 0));
  const axis = normAxis(imp, n, aInt(n, 'axis', -1), x.sym.length);
  const ns = pureOf(imp, n, x.sym.slice(axis), 'the normalized shape');
  const w = dyn(imp, input(n, 1));
  if (w.t[0].shape.join() !== ns.join()) fail(imp, n, `scale of shape [${w.t[0].shape}] for normalized shape [${ns}]`);
  const b = hasInput(n, 2) ? dyn(imp, input(n, 2)) : null;
  single(imp, n, emit(imp, n, 'layerNorm', [x, w, b], { normalizedShape: ns, eps: aFloat(n, 'epsilon', 1e-5) }));
}

function softmax(imp: Imp, n: NodeProto): void {
  const x = dyn(imp, input(n, 0));
  const r = x.sym.length;
  const axis = normAxis(imp, n, aInt(n, 'axis', imp.opset >= 13 ? -1 : 1), r);
  if (imp.opset < 13 && axis !== r - 1) fail(imp, n, 'opset < 13 Softmax over more than the last axis');
  single(imp, n, emit(imp, n, n.opType === 'Softmax' ? 'softmax' : 'logSoftmax', [x], { dim: axis }));
}

function clip(imp: Imp, n: NodeProto): void {
  const x = dyn(imp, input(n, 0));
  const lo = hasInput(n, 1) ? scalarOf(imp, input(n, 1)) : (attr(n, 'min') ? aFloat(n, 'min', 0) : null);
  const hi = hasInput(n, 2) ? scalarOf(imp, input(n, 2)) : (attr(n, 'max') ? aFloat(n, 'max', 0) : null);
  if ((hasInput(n, 1) && lo === null) || (hasInput(n, 2) && hi === null)) fail(imp, n, 'min/max computed from the input');
  single(imp, n, emit(imp, n, 'clamp', [x], { min: lo, max: hi }));
}

function flatten(imp: Imp, n: NodeProto): void {
  const x = dyn(imp, input(n, 0));
  const r = x.sym.length;
  const axis = aInt(n, 'axis', 1) < 0 ? aInt(n, 'axis', 1) + r : aInt(n, 'axis', 1);
  if (axis === 1 && r >= 2) { single(imp, n, r === 2 ? x : emit(imp, n, 'flatten', [x], { startDim: 1, endDim: r - 1 })); return; }
  if (axis === 0) { single(imp, n, emit(imp, n, 'reshape', [x], { shape: [1, -1] })); return; }
  const head = emit(imp, n, 'flatten', [x], { startDim: axis, endDim: r - 1 });
  single(imp, n, emit(imp, n, 'flatten', [head], { startDim: 0, endDim: axis - 1 }));
}

/** Reshape targets: the batch as null, one batch multiple as -1. */
function targetShape(imp: Imp, n: NodeProto, target: Sym[], inSym: Sym[], allowZero: boolean): (number | null)[] {
  let minus = 0;
  const out = target.map((t, i) => {
    if (isPure(t)) {
      if (t.a === 0 && !allowZero) { const d = inSym[i]; if (!d) fail(imp, n, 'a 0 beyond the input rank'); t = d; } else { if (t.a === -1) minus++; return t.a; }
    }
    if (t.k === 0) return t.a;
    if (t.k === 1 && t.a === 0) return null;
    minus++;
    return -1;
  });
  if (minus > 1) fail(imp, n, `target shape with more than one unknown size (${target.map((t) => (t.k ? `${t.a}+${t.k}N` : t.a)).join(', ')})`);
  return out;
}

function reshape(imp: Imp, n: NodeProto): void {
  const target = symsOf(imp.staticOf(input(n, 1), 'shape'));
  const allowZero = aInt(n, 'allowzero', 0) === 1;
  if (imp.isStatic(input(n, 0)) && smallStatic(imp, n)) {
    const s = imp.staticOf(input(n, 0), 'data');
    const dims = targetShape(imp, n, target, s.dims.map((d) => ({ a: d, k: 0 })), allowZero) as number[];
    const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    imp.setStatic(n.output[0], { ...s, dims: dims.map((d) => (d === -1 ? s.vals.length / known : d)) });
    return;
  }
  const x = dyn(imp, input(n, 0));
  const shape = targetShape(imp, n, target, x.sym, allowZero);
  if (shape.length === x.sym.length && shape.every((d, i) => (d === null ? symEq(x.sym[i], { a: 0, k: 1 }) : isPure(x.sym[i]) && x.sym[i].a === d))) { single(imp, n, x); return; }
  single(imp, n, emit(imp, n, 'reshape', [x], { shape }));
}

function transpose(imp: Imp, n: NodeProto): void {
  const x = dyn(imp, input(n, 0));
  const r = x.sym.length;
  const perm = aInts(n, 'perm') ?? [...Array(r).keys()].reverse();
  if (perm.every((p, i) => p === i)) { single(imp, n, x); return; }
  single(imp, n, emit(imp, n, 'permute', [x], { dims: perm.map((p) => normAxis(imp, n, p, r)) }));
}

function concat(imp: Imp, n: NodeProto): void {
  const ins = n.input.filter((i) => i);
  if (ins.every((i) => imp.isStatic(i)) && smallStatic(imp, n)) {
    const ss = ins.map((i) => imp.staticOf(i, 'operand'));
    if (ss.every((s) => s.dims.length === 1)) {
      const syms = ss.flatMap(symsOf);
      imp.setStatic(n.output[0], fromSyms([syms.length], syms, ss[0].dt));
      return;
    }
  }
  const ds = ins.map((i) => dyn(imp, i));
  const axis = normAxis(imp, n, aInt(n, 'axis', 0), ds[0].sym.length);
  single(imp, n, ds.length === 1 ? ds[0] : emit(imp, n, 'cat', ds, { dim: axis }));
}

/** Slice `x` along `axis` from start to end (ONNX semantics: negative from the end, clamped). */
function sliceAxis(imp: Imp, n: NodeProto, x: Dyn, axis: number, start: number, end: number, step: number): Dyn {
  const d = x.sym[axis];
  if (step <= 0) fail(imp, n, `step ${step} (positive steps only)`);
  if (!isPure(d)) {
    if (start === 0 && end >= 2 ** 31 - 1 && step === 1) return x;
    fail(imp, n, 'slicing the batch axis');
  }
  const size = d.a;
  const clamp = (v: number) => Math.max(0, Math.min(size, v < 0 ? v + size : v));
  const s = clamp(start), e = clamp(end);
  if (s === 0 && e === size && step === 1) return x;
  return emit(imp, n, 'slice', [x], { dim: axis, start: s, end: Math.max(s, e), step });
}

function slice(imp: Imp, n: NodeProto): void {
  const starts = intsFrom(imp, n, 1, 'starts'), ends = intsFrom(imp, n, 2, 'ends');
  if (!starts || !ends) fail(imp, n, 'starts/ends missing');
  const axes = intsFrom(imp, n, 3, 'axes'), steps = intsFrom(imp, n, 4, 'steps');
  const src = input(n, 0);
  if (imp.isStatic(src) && smallStatic(imp, n)) {
    const s = imp.staticOf(src, 'data');
    if (s.dims.length === 1 && (!axes || axes.every((a) => a === 0 || a === -1))) {
      const size = s.dims[0], st = steps?.[0] ?? 1;
      if (st <= 0) fail(imp, n, `step ${st} (positive steps only)`);
      const clamp = (v: number) => Math.max(0, Math.min(size, v < 0 ? v + size : v));
      const syms = symsOf(s), out: Sym[] = [];
      for (let i = clamp(starts[0]); i < clamp(ends[0]); i += st) out.push(syms[i]);
      imp.setStatic(n.output[0], fromSyms([out.length], out, s.dt));
      return;
    }
  }
  let x = dyn(imp, src);
  starts.forEach((st, i) => { x = sliceAxis(imp, n, x, normAxis(imp, n, axes?.[i] ?? i, x.sym.length), st, ends[i], steps?.[i] ?? 1); });
  single(imp, n, x);
}

function split(imp: Imp, n: NodeProto): void {
  const x = dyn(imp, input(n, 0));
  const axis = normAxis(imp, n, aInt(n, 'axis', 0), x.sym.length);
  const d = x.sym[axis];
  if (!isPure(d)) fail(imp, n, 'splitting the batch axis');
  let sizes = intsFrom(imp, n, 1, 'split');
  const outs = n.output.length;
  if (!sizes) {
    const each = Math.ceil(d.a / outs);
    sizes = Array.from({ length: outs }, (_, i) => Math.max(0, Math.min(each, d.a - i * each)));
  }
  if (sizes.length !== outs || sizes.reduce((a, b) => a + b, 0) !== d.a) fail(imp, n, `split sizes [${sizes}] for a size of ${d.a} into ${outs} outputs`);
  let at = 0;
  n.output.forEach((o, i) => {
    const part = sliceAxis(imp, n, x, axis, at, at + sizes![i], 1);
    at += sizes![i];
    if (o) imp.setDyn(o, part);
  });
}

function gather(imp: Imp, n: NodeProto): void {
  const [data, idx] = [input(n, 0), input(n, 1)];
  if (!imp.isStatic(idx)) { embeddingLookup(imp, n); return; }
  const is = imp.staticOf(idx, 'indices');
  const indices = pureOf(imp, n, symsOf(is), 'indices');
  if (imp.isStatic(data) && smallStatic(imp, n)) {
    const s = imp.staticOf(data, 'data');
    if (s.dims.length === 1) {
      const syms = symsOf(s);
      const out = indices.map((i) => syms[i < 0 ? i + s.dims[0] : i]);
      if (out.some((v) => v === undefined)) fail(imp, n, `index out of range [${indices}] for size ${s.dims[0]}`);
      imp.setStatic(n.output[0], fromSyms(is.dims, out, s.dt));
      return;
    }
  }
  const x = dyn(imp, data);
  const axis = normAxis(imp, n, aInt(n, 'axis', 0), x.sym.length);
  const size = x.sym[axis];
  if (!isPure(size)) fail(imp, n, 'gathering along the batch axis');
  const norm = indices.map((i) => { const j = i < 0 ? i + size.a : i; if (j < 0 || j >= size.a) fail(imp, n, `index ${i} out of range for size ${size.a}`); return j; });
  if (is.dims.length === 0) { single(imp, n, emit(imp, n, 'select', [x], { dim: axis, index: norm[0] })); return; }
  if (is.dims.length !== 1) fail(imp, n, `indices of rank ${is.dims.length}`);
  const parts = norm.map((j) => emit(imp, n, 'slice', [x], { dim: axis, start: j, end: j + 1, step: 1 }));
  single(imp, n, parts.length === 1 ? parts[0] : emit(imp, n, 'cat', parts, { dim: axis }));
}

/** Gather(table, ids) with ids from the input (nn.Embedding): rows of a parameter table, axis 0. */
function embeddingLookup(imp: Imp, n: NodeProto): void {
  const [data, idx] = [input(n, 0), input(n, 1)];
  if (!imp.isInit(data)) fail(imp, n, 'indices computed from the input gather from a computed tensor (only a parameter table, an embedding, is supported)');
  if (aInt(n, 'axis', 0) !== 0) fail(imp, n, 'indices computed from the input along an axis other than 0 (an embedding gathers rows)');
  const ids = dyn(imp, idx);
  if (ids.t[0].dtype !== 'int64' && ids.t[0].dtype !== 'int32') fail(imp, n, `indices of dtype ${ids.t[0].dtype}`);
  single(imp, n, emit(imp, n, 'embedding', [dyn(imp, data), ids], {}));
}

function unsqueeze(imp: Imp, n: NodeProto): void {
  const axes = intsFrom(imp, n, 1, 'axes');
  if (!axes) fail(imp, n, 'axes missing');
  const src = input(n, 0);
  if (imp.isStatic(src) && smallStatic(imp, n)) {
    const s = imp.staticOf(src, 'data');
    const r = s.dims.length + axes.length;
    const ax = axes.map((a) => normAxis(imp, n, a, r)).sort((a, b) => a - b);
    const dims = [...s.dims];
    for (const a of ax) dims.splice(a, 0, 1);
    imp.setStatic(n.output[0], { ...s, dims });
    return;
  }
  let x = dyn(imp, src);
  const r = x.sym.length + axes.length;
  for (const a of axes.map((a) => normAxis(imp, n, a, r)).sort((a, b) => a - b)) x = emit(imp, n, 'unsqueeze', [x], { dim: a });
  single(imp, n, x);
}

function squeeze(imp: Imp, n: NodeProto): void {
  const src = input(n, 0);
  let axes = intsFrom(imp, n, 1, 'axes');
  if (imp.isStatic(src) && smallStatic(imp, n)) {
    const s = imp.staticOf(src, 'data');
    const ax = axes ? axes.map((a) => normAxis(imp, n, a, s.dims.length)) : s.dims.flatMap((d, i) => (d === 1 ? [i] : []));
    imp.setStatic(n.output[0], { ...s, dims: s.dims.filter((_, i) => !ax.includes(i)) });
    return;
  }
  let x = dyn(imp, src);
  axes = axes ? axes.map((a) => normAxis(imp, n, a, x.sym.length)) : x.sym.flatMap((d, i) => (symEq(d, { a: 1, k: 0 }) ? [i] : []));
  for (const a of [...axes].sort((p, q) => q - p)) {
    if (!symEq(x.sym[a], { a: 1, k: 0 })) fail(imp, n, `axis ${a} has size ${symToDim(x.sym[a])}, not 1`);
    x = emit(imp, n, 'squeeze', [x], { dim: a });
  }
  single(imp, n, x);
}

function pad(imp: Imp, n: NodeProto): void {
  const mode = aStr(n, 'mode', 'constant');
  if (mode !== 'constant') fail(imp, n, `mode '${mode}' (constant padding only)`);
  const x = dyn(imp, input(n, 0));
  const r = x.sym.length;
  let p = intsFrom(imp, n, 1, 'pads');
  if (!p) fail(imp, n, 'pads missing');
  const axes = hasInput(n, 3) ? intsFrom(imp, n, 3, 'axes')!.map((a) => normAxis(imp, n, a, r)) : [...Array(r).keys()];
  if (p.length !== 2 * axes.length) fail(imp, n, `${p.length} pads for ${axes.length} axes`);
  const begins = new Array(r).fill(0), ends = new Array(r).fill(0);
  axes.forEach((a, i) => { begins[a] = p![i]; ends[a] = p![i + axes.length]; });
  const value = hasInput(n, 2) ? scalarOf(imp, input(n, 2)) : aFloat(n, 'value', 0);
  if (value === null) fail(imp, n, 'a pad value computed from the input');
  if ((!isPure(x.sym[0]) || x.sym[0].k) && (begins[0] || ends[0])) fail(imp, n, 'padding the batch axis');
  // torch order: last dim first (begin, end), as far back as the first padded dim.
  let first = 0;
  while (first < r && begins[first] === 0 && ends[first] === 0) first++;
  if (first === r) { single(imp, n, x); return; }
  const torchPads: number[] = [];
  for (let d = r - 1; d >= first; d--) torchPads.push(begins[d], ends[d]);
  const total = x.t[1].shape.reduce((a, b, i) => a * (b + begins[i] + ends[i]), 1);
  if (total > MAX_ELEMENTS) fail(imp, n, 'the padded output is too large');
  single(imp, n, emit(imp, n, 'pad', [x], { pads: torchPads, value }));
}

function reduce(imp: Imp, n: NodeProto): void {
  const x = dyn(imp, input(n, 0));
  const r = x.sym.length;
  const keep = aInt(n, 'keepdims', 1) === 1;
  const fromInput = (n.opType === 'ReduceSum' && imp.opset >= 13) || imp.opset >= 18;
  let axes = fromInput ? (hasInput(n, 1) ? intsFrom(imp, n, 1, '') : null) : aInts(n, 'axes');
  if (axes && axes.length === 0) axes = null;
  if (axes === null && aInt(n, 'noop_with_empty_axes', 0) === 1) { single(imp, n, x); return; }
  const dims = axes ? axes.map((a) => normAxis(imp, n, a, r)) : null;
  single(imp, n, emit(imp, n, n.opType === 'ReduceSum' ? 'sum' : 'mean', [x], { dims: dims ?? [...Array(r).keys()], keepdim: keep }));
}

function expand(imp: Imp, n: NodeProto): void {
  const target = symsOf(imp.staticOf(input(n, 1), 'shape'));
  const x = dyn(imp, input(n, 0));
  const r = Math.max(target.length, x.sym.length);
  const xs = [...new Array(r - x.sym.length).fill({ a: 1, k: 0 }), ...x.sym] as Sym[];
  const ts = [...new Array(r - target.length).fill({ a: 1, k: 0 }), ...target] as Sym[];
  const out = xs.map((d, i) => (symEq(ts[i], { a: 1, k: 0 }) ? d : ts[i]));
  if (out.length === x.sym.length && out.every((d, i) => symEq(d, x.sym[i]))) { single(imp, n, x); return; }
  const shape = out.map((d) => (d.k === 0 ? d.a : d.k === 1 && d.a === 0 ? null : fail(imp, n, 'an expanded size that is a multiple of the batch')));
  single(imp, n, emit(imp, n, 'expand', [x], { shape }));
}

function constant(imp: Imp, n: NodeProto): void {
  const a = n.attribute[0];
  if (!a) fail(imp, n, 'no value');
  const out = n.output[0];
  switch (a.name) {
    case 'value': {
      const p = protoNumbers(a.t!, imp.src, `node '${nodeName(n)}' value`);
      imp.setStatic(out, { dt: p.dt, dims: p.dims, vals: p.data });
      return;
    }
    case 'value_float': imp.setStatic(out, { dt: 'float32', dims: [], vals: [a.f] }); return;
    case 'value_floats': imp.setStatic(out, { dt: 'float32', dims: [a.floats.length], vals: [...a.floats] }); return;
    case 'value_int': imp.setStatic(out, { dt: 'int64', dims: [], vals: [Number(a.i)] }); return;
    case 'value_ints': imp.setStatic(out, { dt: 'int64', dims: [a.ints.length], vals: a.ints.map(Number) }); return;
    default: fail(imp, n, `attribute '${a.name}' (${AT[a.type]})`);
  }
}

function shape(imp: Imp, n: NodeProto): void {
  const src = input(n, 0);
  const syms: Sym[] = imp.isStatic(src) ? (imp.initDims(src) ?? imp.staticOf(src, 'data').dims).map((d) => ({ a: d, k: 0 })) : dyn(imp, src).sym;
  const r = syms.length;
  const clampR = (v: number) => Math.max(0, Math.min(r, v < 0 ? v + r : v));
  const s = clampR(aInt(n, 'start', 0)), e = clampR(attr(n, 'end') ? aInt(n, 'end', r) : r);
  const part = syms.slice(s, e);
  imp.setStatic(n.output[0], fromSyms([part.length], part));
}

function constantOfShape(imp: Imp, n: NodeProto): void {
  const dims = pureOf(imp, n, symsOf(imp.staticOf(input(n, 0), 'shape')), 'the shape');
  if (dims.some((d) => d < 0) || numel(dims) > 1 << 20) fail(imp, n, `shape [${dims}] (too large to fold)`);
  const v = attr(n, 'value');
  const p = v?.t ? protoNumbers(v.t, imp.src, 'value') : { dt: 'float32' as DType, data: [0] };
  imp.setStatic(n.output[0], { dt: p.dt, dims, vals: new Array(numel(dims)).fill(p.data[0] ?? 0) });
}

const CAST: Partial<Record<number, DType>> = { 1: 'float32', 11: 'float64', 7: 'int64', 6: 'int32', 9: 'bool' };
function cast(imp: Imp, n: NodeProto): void {
  const to = CAST[aInt(n, 'to', 0)];
  const src = input(n, 0);
  if (imp.isStatic(src) && smallStatic(imp, n)) {
    const s = imp.staticOf(src, 'data');
    if (!to) fail(imp, n, `a cast to type ${aInt(n, 'to', 0)}`);
    const f = to === 'bool' ? (v: number) => (v ? 1 : 0) : isInt(to) ? Math.trunc : (v: number) => v;
    imp.setStatic(n.output[0], { ...s, dt: to, vals: s.vals.map(f) });
    return;
  }
  const x = dyn(imp, src);
  if (to !== x.t[0].dtype) fail(imp, n, `a cast of a value computed from the input from ${x.t[0].dtype} to ${to ?? aInt(n, 'to', 0)}`);
  single(imp, n, x);
}

function where(imp: Imp, n: NodeProto): void {
  if (!allStatic(imp, n)) fail(imp, n, 'Where on values computed from the input (only Where on shapes, folded at import, is supported)');
  const [c, a, b] = [0, 1, 2].map((i) => imp.staticOf(input(n, i), 'operand'));
  if (!(c.dims.join() === a.dims.join() && a.dims.join() === b.dims.join()) && !(a.vals.length === 1 || b.vals.length === 1)) {
    if (!(c.dims.length === 1 && [a, b].every((s) => s.vals.length === 1 || s.dims.join() === c.dims.join()))) fail(imp, n, 'broadcasting Where');
  }
  const sa = symsOf(a), sb = symsOf(b);
  const out = c.vals.map((v, i) => (v ? sa[sa.length === 1 ? 0 : i] : sb[sb.length === 1 ? 0 : i]));
  imp.setStatic(n.output[0], fromSyms(c.dims, out, a.dt));
}

function range(imp: Imp, n: NodeProto): void {
  const [s, l, d] = [0, 1, 2].map((i) => scalarOf(imp, input(n, i)));
  if (s === null || l === null || d === null || d === 0) fail(imp, n, 'start/limit/delta not known at import');
  const cnt = Math.max(Math.ceil((l - s) / d), 0);
  if (cnt > 1 << 20) fail(imp, n, 'too large to fold');
  imp.setStatic(n.output[0], { dt: imp.staticOf(input(n, 0), 'start').dt, dims: [cnt], vals: Array.from({ length: cnt }, (_, i) => s + i * d) });
}

function identity(imp: Imp, n: NodeProto): void {
  const src = input(n, 0);
  if (imp.isInit(src)) imp.aliasInit(n.output[0], src); // its own parameter (exporters share equal initializers this way)
  else imp.alias(n.output[0], src);
}

function dropout(imp: Imp, n: NodeProto): void {
  if (n.output.length > 1 && n.output[1]) fail(imp, n, 'the mask output');
  const p = hasInput(n, 1) ? scalarOf(imp, input(n, 1)) : aFloat(n, 'ratio', 0.5);
  if (p === null) fail(imp, n, 'a ratio computed from the input');
  single(imp, n, emit(imp, n, 'dropout', [dyn(imp, input(n, 0))], { p }));
}

function leakyRelu(imp: Imp, n: NodeProto): void {
  single(imp, n, emit(imp, n, 'leakyRelu', [dyn(imp, input(n, 0))], { slope: aFloat(n, 'alpha', 0.01) }));
}
function gelu(imp: Imp, n: NodeProto): void {
  if (aStr(n, 'approximate', 'none') !== 'none') fail(imp, n, `approximate '${aStr(n, 'approximate', '')}'`);
  single(imp, n, emit(imp, n, 'gelu', [dyn(imp, input(n, 0))], {}));
}
function globalAvgPool(imp: Imp, n: NodeProto): void {
  const x = dyn(imp, input(n, 0));
  if (x.sym.length !== 4) fail(imp, n, `input of rank ${x.sym.length} (2-d pooling only)`);
  single(imp, n, emit(imp, n, 'adaptiveAvgPool2d', [x], { outputSize: [1, 1] }));
}
function erf(imp: Imp, n: NodeProto): void {
  fail(imp, n, "Erf outside PyTorch's GELU pattern (x * 0.5 * (1 + erf(x / sqrt 2))) is not supported");
}

const MAP: Record<string, Mapper> = {
  Gemm: gemm, MatMul: matmul, Conv: conv, ConvTranspose: convTranspose, BatchNormalization: batchNorm, LayerNormalization: layerNorm,
  MaxPool: pool, AveragePool: pool, GlobalAveragePool: globalAvgPool,
  LeakyRelu: leakyRelu, Gelu: gelu, Erf: erf, Softmax: softmax, LogSoftmax: softmax, Clip: clip, Dropout: dropout,
  Flatten: flatten, Reshape: reshape, Transpose: transpose, Concat: concat, Split: split, Slice: slice, Gather: gather,
  Unsqueeze: unsqueeze, Squeeze: squeeze, Pad: pad, ReduceMean: reduce, ReduceSum: reduce, Expand: expand,
  Identity: identity, Constant: constant, Shape: shape, ConstantOfShape: constantOfShape, Cast: cast, Where: where, Range: range,
  Equal: (imp, n) => { if (!allStatic(imp, n)) fail(imp, n, 'Equal on values computed from the input'); foldBinary(imp, n, symArith(imp, n, 'Equal', 'bool'), 'bool'); },
  ...Object.fromEntries(Object.keys(UNARY).map((k) => [k, unary])),
  ...Object.fromEntries(Object.keys(BINARY).map((k) => [k, binary])),
};

/** The ONNX operators topiary imports. */
export const SUPPORTED_OPS = Object.keys(MAP).sort();

/** Map one node (in topological order) into the import's graph. */
export function mapNode(imp: Imp, n: NodeProto): void {
  const m = MAP[n.opType];
  if (!m) {
    throw new OnnxImportError(`ONNX import: op '${n.opType}' (node '${nodeName(n)}') is not supported at opset ${imp.opset}; supported: ${SUPPORTED_OPS.join(', ')}`);
  }
  m(imp, n);
}

