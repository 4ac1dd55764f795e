/**
 * Every engine op against PyTorch 1.13: test/fixtures/ops.json (written by scripts/make-fixtures.py)
 * holds inputs, arguments, outputs and gradients of sum(output * gradWeight); each case runs here
 * through the op of the same key and must match in dtype, shape and values (floats within tolerance).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { call } from '../../src/core/binding.js';
import { type DType } from '../../src/core/dtype.js';
import { manualSeed, torchVersion } from '../../src/core/runtime.js';
import {
  F, Tensor, bernoulli, cat, matmul, memory, multinomial, outer, rand, randint, randn, randperm, stack, tidy, where, zerosLike,
} from '../../src/tensor/index.js';
import { type TensorRecord, assertMatches, defaultTol, fromRecord, num } from './util.js';

interface Case {
  name: string;
  op: string;
  inputs: Record<string, TensorRecord>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  args: Record<string, any>;
  outputs: Record<string, TensorRecord | boolean | number>;
  gradOf?: string;
  gradWeight?: TensorRecord;
  grads?: Record<string, TensorRecord>;
  tol?: [number, number];
}

type Ins = Record<string, Tensor>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Args = Record<string, any>;
type Out = Tensor | Tensor[] | Record<string, Tensor> | boolean;
type Op = (i: Ins, a: Args) => Out;

const other = (i: Ins, a: Args): Tensor | number => i.b ?? a.b;
const raw = (op: string, ...args: unknown[]): Tensor => new Tensor(call(op, ...args));
const list = (i: Ins, n: number): Tensor[] => Array.from({ length: n }, (_, k) => i[`x${k}`]);

/** In-place ops run on a clone and must return the very object they were called on. */
function inplace(fn: (x: Tensor, i: Ins, a: Args) => Tensor): Op {
  return (i, a) => {
    const x = i.x.clone();
    const r = fn(x, i, a);
    assert.equal(r, x, 'an in-place op returns the same object');
    return x;
  };
}

function sgd(i: Ins, a: Args): Record<string, Tensor> {
  const ps = [i.p0.clone(), i.p1.clone()];
  const bufs = ps.map((p) => zerosLike(p));
  for (let s = 0; s < a.steps; s++) {
    const gs = [i.g0.mul(s + 1), i.g1.mul(s + 1)];
    call('sgdStep', ps.map((p) => p.h), gs.map((g) => g.h), bufs.map((b) => b.h), a.lr, a.momentum, a.dampening, a.weightDecay, a.nesterov, s === 0);
  }
  return { p0: ps[0], p1: ps[1] };
}

const OPS: Record<string, Op> = {
  add: (i, a) => i.a.add(other(i, a), a.alpha),
  sub: (i, a) => i.a.sub(other(i, a), a.alpha),
  mul: (i, a) => i.a.mul(other(i, a)),
  div: (i, a) => i.a.div(other(i, a)),
  pow: (i, a) => i.a.pow(other(i, a)),
  remainder: (i, a) => i.a.remainder(other(i, a)),
  eq: (i, a) => i.a.eq(other(i, a)),
  ne: (i, a) => i.a.ne(other(i, a)),
  lt: (i, a) => i.a.lt(other(i, a)),
  le: (i, a) => i.a.le(other(i, a)),
  gt: (i, a) => i.a.gt(other(i, a)),
  ge: (i, a) => i.a.ge(other(i, a)),
  maximum: (i) => i.a.maximum(i.b),
  minimum: (i) => i.a.minimum(i.b),
  logicalAnd: (i) => i.a.logicalAnd(i.b),
  logicalOr: (i) => i.a.logicalOr(i.b),
  logicalXor: (i) => i.a.logicalXor(i.b),
  neg: (i) => i.x.neg(), abs: (i) => i.x.abs(), sign: (i) => i.x.sign(), exp: (i) => i.x.exp(), log: (i) => i.x.log(),
  sqrt: (i) => i.x.sqrt(), rsqrt: (i) => i.x.rsqrt(), square: (i) => i.x.square(), reciprocal: (i) => i.x.reciprocal(),
  sin: (i) => i.x.sin(), cos: (i) => i.x.cos(), floor: (i) => i.x.floor(), ceil: (i) => i.x.ceil(), round: (i) => i.x.round(),
  relu: (i) => F.relu(i.x), sigmoid: (i) => F.sigmoid(i.x), tanh: (i) => F.tanh(i.x), isnan: (i) => i.x.isnan(),
  isfinite: (i) => i.x.isfinite(), logicalNot: (i) => i.x.logicalNot(), gelu: (i) => F.gelu(i.x),
  softplus: (i) => raw('softplus', i.x.h), clone: (i) => i.x.clone(), contiguous: (i) => i.x.contiguous(),
  detach: (i) => i.x.detach(), nonzero: (i) => i.x.nonzero(), countNonzero: (i) => i.x.countNonzero(),
  all: (i) => i.x.all(), any: (i) => i.x.any(), prod: (i) => i.x.prod(), max: (i) => i.x.max(), min: (i) => i.x.min(),
  T: (i) => i.x.T, float16Roundtrip: (i) => i.x.to('float16').to('float32'),
  rsub: (i, a) => i.x.rsub(a.s),
  rdiv: (i, a) => raw('rdiv', i.x.h, a.s),
  to: (i, a) => i.x.to(a.dtype as DType),
  clamp: (i, a) => i.x.clamp(a.min, a.max),
  where: (i, a) => where(i.cond, i.a ?? a.a, i.b ?? a.b),
  equal: (i) => i.a.equal(i.b),
  allclose: (i, a) => i.a.allclose(i.b, a.rtol, a.atol),
  // reductions
  sum: (i, a) => i.x.sum(a.dim, a.keepdim),
  mean: (i, a) => i.x.mean(a.dim, a.keepdim),
  var: (i, a) => i.x.var(a.dim, a.keepdim, a.unbiased),
  std: (i, a) => i.x.std(a.dim, a.keepdim, a.unbiased),
  maxDim: (i, a) => i.x.maxDim(a.dim, a.keepdim),
  minDim: (i, a) => i.x.minDim(a.dim, a.keepdim),
  argmax: (i, a) => i.x.argmax(a.dim, a.keepdim),
  argmin: (i, a) => i.x.argmin(a.dim, a.keepdim),
  norm: (i, a) => i.x.norm(num(a.p), a.dim, a.keepdim),
  topk: (i, a) => i.x.topk(a.k, a.dim, a.largest),
  sort: (i, a) => i.x.sort(a.dim, a.descending),
  argsort: (i, a) => i.x.argsort(a.dim, a.descending),
  kthvalue: (i, a) => i.x.kthvalue(a.k, a.dim, a.keepdim),
  quantile: (i, a) => i.x.quantile(i.q ?? a.q, a.dim, a.keepdim, a.interpolation),
  cumsum: (i, a) => i.x.cumsum(a.dim),
  // shape and indexing
  reshape: (i, a) => i.x.reshape(a.shape),
  view: (i, a) => i.x.view(...(a.shape as number[])),
  flatten: (i, a) => i.x.flatten(a.start, a.end),
  permute: (i, a) => i.x.permute(a.order),
  transpose: (i, a) => i.x.transpose(a.d0, a.d1),
  squeeze: (i, a) => i.x.squeeze(a.dim),
  unsqueeze: (i, a) => i.x.unsqueeze(a.dim),
  expand: (i, a) => i.x.expand(a.shape),
  repeat: (i, a) => i.x.repeat(...(a.times as number[])),
  cat: (i, a) => cat(list(i, a.n), a.dim),
  stack: (i, a) => stack(list(i, a.n), a.dim),
  narrow: (i, a) => i.x.narrow(a.dim, a.start, a.length),
  slice: (i, a) => i.x.slice(a.dim, a.start, a.end, a.step),
  select: (i, a) => i.x.select(a.dim, a.index),
  indexSelect: (i, a) => i.x.indexSelect(a.dim, i.index),
  gather: (i, a) => i.x.gather(a.dim, i.index),
  scatter: (i, a) => i.x.scatter(a.dim, i.index, i.src ?? a.value),
  scatterAdd: (i, a) => i.x.scatterAdd(a.dim, i.index, i.src),
  maskedFill: (i, a) => i.x.maskedFill(i.mask, a.value),
  maskedSelect: (i) => i.x.maskedSelect(i.mask),
  tril: (i, a) => raw('tril', i.x.h, a.k ?? null),
  flip: (i, a) => i.x.flip(a.dims),
  roll: (i, a) => raw('roll', i.x.h, a.shifts, a.dims),
  pad: (i, a) => F.pad(i.x, a.pads, a.value),
  bincount: (i, a) => raw('bincount', i.x.h, i.weights?.h ?? null, a.minlength ?? null),
  chunk: (i, a) => i.x.chunk(a.chunks, a.dim),
  // products and neural-network ops
  matmul: (i) => matmul(i.a, i.b),
  mm: (i) => i.a.mm(i.b),
  bmm: (i) => raw('bmm', i.a.h, i.b.h),
  outer: (i) => outer(i.a, i.b),
  addmm: (i, a) => F.addmm(i.input, i.a, i.b, a.beta, a.alpha),
  linear: (i) => F.linear(i.x, i.weight, i.bias),
  conv2d: (i, a) => F.conv2d(i.x, i.weight, i.bias, { stride: a.stride, padding: a.padding, dilation: a.dilation, groups: a.groups }),
  maxPool2d: (i, a) => F.maxPool2d(i.x, a.kernel, { stride: a.stride, padding: a.padding, dilation: a.dilation, ceilMode: a.ceilMode }),
  avgPool2d: (i, a) => F.avgPool2d(i.x, a.kernel, { stride: a.stride, padding: a.padding, ceilMode: a.ceilMode, countIncludePad: a.countIncludePad }),
  adaptiveAvgPool2d: (i, a) => F.adaptiveAvgPool2d(i.x, a.size),
  batchNorm: (i, a) => {
    const runningMean = i.runningMean?.clone(), runningVar = i.runningVar?.clone();
    const out = F.batchNorm(i.x, { weight: i.weight, bias: i.bias, runningMean, runningVar, training: a.training, momentum: a.momentum, eps: a.eps });
    return runningMean && runningVar ? { out, runningMean, runningVar } : out;
  },
  layerNorm: (i, a) => F.layerNorm(i.x, a.shape, i.weight, i.bias, a.eps),
  dropout: (i, a) => F.dropout(i.x, a.p, a.training),
  softmax: (i, a) => F.softmax(i.x, a.dim),
  logSoftmax: (i, a) => F.logSoftmax(i.x, a.dim),
  leakyRelu: (i, a) => F.leakyRelu(i.x, a.slope),
  crossEntropy: (i, a) => F.crossEntropy(i.logits, i.target, { weight: i.weight, reduction: a.reduction, ignoreIndex: a.ignoreIndex, labelSmoothing: a.labelSmoothing }),
  nllLoss: (i, a) => F.nllLoss(i.logProbs, i.target, { weight: i.weight, reduction: a.reduction, ignoreIndex: a.ignoreIndex }),
  mseLoss: (i, a) => F.mseLoss(i.input, i.target, a.reduction),
  oneHot: (i, a) => F.oneHot(i.x, a.numClasses),
  affineGrid: (i, a) => F.affineGrid(i.theta, a.size, a.alignCorners),
  gridSample: (i, a) => F.gridSample(i.x, i.grid, { mode: a.mode, paddingMode: a.paddingMode, alignCorners: a.alignCorners }),
  affineSample: (i, a) => F.gridSample(i.x, F.affineGrid(i.theta, i.x.shape, a.alignCorners),
    { mode: a.mode, paddingMode: a.paddingMode, alignCorners: a.alignCorners }),
  // in place
  add_: inplace((x, i, a) => x.add_(other(i, a), a.alpha)),
  sub_: inplace((x, i, a) => x.sub_(other(i, a))),
  mul_: inplace((x, i, a) => x.mul_(other(i, a))),
  div_: inplace((x, i, a) => x.div_(other(i, a))),
  addcmul_: inplace((x, i, a) => x.addcmul_(i.t1, i.t2, a.value)),
  addcdiv_: inplace((x, i, a) => x.addcdiv_(i.t1, i.t2, a.value)),
  lerp_: inplace((x, i, a) => x.lerp_(i.end, a.weight)),
  copy_: inplace((x, i) => x.copy_(i.src)),
  zero_: inplace((x) => x.zero_()),
  fill_: inplace((x, _i, a) => x.fill_(a.value)),
  clamp_: inplace((x, _i, a) => x.clamp_(a.min, a.max)),
  sqrt_: inplace((x) => x.sqrt_()),
  maskedFill_: inplace((x, i, a) => x.maskedFill_(i.mask, a.value)),
  maskedScatter_: inplace((x, i) => x.maskedScatter_(i.mask, i.src)),
  indexPut_: inplace((x, i, a) => x.indexPut_(Array.from({ length: a.n }, (_, k) => i[`i${k}`]), i.values, a.accumulate)),
  sgdStep: sgd,
  // random draws after manualSeed: the same generator as PyTorch's, so the same numbers
  rand: (_i, a) => { manualSeed(a.seed); return rand(a.shape, { dtype: a.dtype }); },
  randn: (_i, a) => { manualSeed(a.seed); return randn(a.shape, { dtype: a.dtype }); },
  randint: (_i, a) => { manualSeed(a.seed); return randint(a.low, a.high, a.shape); },
  randperm: (_i, a) => { manualSeed(a.seed); return randperm(a.n); },
  bernoulli: (i, a) => { manualSeed(a.seed); return bernoulli(i.p, a.prob); },
  dropoutTrain: (i, a) => { manualSeed(a.seed); return F.dropout(i.x, a.p, true); },
  multinomial: (i, a) => { manualSeed(a.seed); return multinomial(i.probs, a.n, a.replacement); },
  uniform_: inplace((x, _i, a) => { manualSeed(a.seed); return x.uniform_(a.lo, a.hi); }),
  normal_: inplace((x, _i, a) => { manualSeed(a.seed); return x.normal_(a.mean, a.std); }),
  bernoulli_: inplace((x, _i, a) => { manualSeed(a.seed); return x.bernoulli_(a.p); }),
};

/** Outputs keyed as the fixture keys them: a lone tensor is `out`, a list `out0`, `out1`, ... */
function keyed(o: Out): Record<string, Tensor | boolean> {
  if (o instanceof Tensor || typeof o === 'boolean') return { out: o };
  if (Array.isArray(o)) return Object.fromEntries(o.map((t, k) => [`out${k}`, t]));
  return o;
}

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/ops.json', import.meta.url), 'utf8')) as { torch: string; cases: Case[] };

test('the fixtures come from the PyTorch release the addon links', () => {
  assert.equal(torchVersion().split('.').slice(0, 2).join('.'), fixtures.torch.split('.').slice(0, 2).join('.'));
});

test('the fixture file covers the engine', () => {
  assert.ok(fixtures.cases.length >= 300, `only ${fixtures.cases.length} cases`);
  const ops = new Set(fixtures.cases.map((c) => c.op));
  for (const op of Object.keys(OPS)) assert.ok(ops.has(op), `no fixture case for ${op}`);
  assert.ok(fixtures.cases.filter((c) => c.grads).length >= 150, 'gradient cases');
});

const before = memory().tensors;
for (const c of fixtures.cases) {
  test(c.name, () => {
    const fn = OPS[c.op];
    assert.ok(fn, `no op ${c.op} in the test table`);
    tidy(() => {
      const ins: Ins = Object.fromEntries(Object.entries(c.inputs).map(([k, r]) => [k, fromRecord(r)]));
      for (const k of Object.keys(c.grads ?? {})) ins[k].requiresGrad = true;
      const out = keyed(fn(ins, c.args));
      assert.deepEqual(Object.keys(out).sort(), Object.keys(c.outputs).sort(), 'output names');
      for (const [k, want] of Object.entries(c.outputs)) {
        const got = out[k];
        if (typeof want === 'boolean' || typeof want === 'number') {
          assert.equal(got, want, `${k}`);
          continue;
        }
        const tol = c.tol ? { rtol: c.tol[0], atol: c.tol[1] } : defaultTol(want.dtype);
        assertMatches(got as Tensor, want, `${c.name} ${k}`, tol);
      }
      if (c.grads) {
        const y = out[c.gradOf ?? 'out'] as Tensor;
        y.mul(fromRecord(c.gradWeight!)).sum().backward();
        for (const [k, want] of Object.entries(c.grads)) {
          const g = ins[k].grad;
          assert.ok(g !== null, `${c.name}: no gradient reached ${k}`);
          const tol = c.tol ? { rtol: c.tol[0], atol: c.tol[1] } : defaultTol(want.dtype);
          assertMatches(g, want, `${c.name} d/d${k}`, tol);
        }
      }
    });
  });
}

test('replaying the fixtures leaks no tensors', () => {
  assert.equal(memory().tensors, before);
});
