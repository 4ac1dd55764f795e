/**
 * The Tensor surface: creation, reading out, printing, conversion, in-place ops (which return the
 * same object), masked updates as pruning uses them, and autograd basics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../../src/core/binding.js';
import { EngineError } from '../../src/core/errors.js';
import {
  F, Tensor, arange, empty, emptyLike, enableGrad, eye, full, fullLike, grad, isGradEnabled, linspace, memory, noGrad, ones, onesLike,
  rand, randLike, randn, randnLike, scalar, tensor, tidy, zeros, zerosLike,
} from '../../src/tensor/index.js';

const startTensors = memory().tensors;
/** Each test body runs in a scope; the last test checks that the file leaked nothing. */
const scoped = (name: string, fn: () => void): void => { test(name, () => { tidy(fn); }); };

scoped('tensor() from nested arrays: shape, default dtypes, explicit dtypes', () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(a.shape, [2, 3]);
  assert.equal(a.dtype, 'float32');
  assert.deepEqual(a.toArray(), [[1, 2, 3], [4, 5, 6]]);
  assert.equal(tensor([[true], [false]]).dtype, 'bool');
  assert.deepEqual(tensor([[true], [false]]).toArray(), [[1], [0]]);
  assert.deepEqual(tensor([1.9, -1.9, 3], { dtype: 'int64' }).toArray(), [1, -1, 3], 'int64 truncates toward zero');
  assert.equal(tensor([1, 2], { dtype: 'int32' }).dtype, 'int32');
  assert.deepEqual(tensor([0.1], { dtype: 'float64' }).dataSync(), [0.1], 'float64 keeps every digit');
  assert.deepEqual(tensor([0.1]).dataSync(), [Math.fround(0.1)]);
  assert.deepEqual(tensor([255, 256], { dtype: 'uint8' }).toArray(), [255, 0], 'uint8 wraps like a Uint8Array');
  assert.deepEqual(tensor([1, 2, 3, 4, 5, 6], { shape: [3, 2] }).toArray(), [[1, 2], [3, 4], [5, 6]]);
  const s = tensor(7.5);
  assert.deepEqual(s.shape, []);
  assert.equal(s.item(), 7.5);
  assert.deepEqual(tensor([]).shape, [0]);
  assert.deepEqual(tensor([[], []]).shape, [2, 0]);
});

scoped('tensor() from typed arrays: own dtype, shape, views with an offset, copies', () => {
  assert.equal(tensor(new Float64Array([1, 2])).dtype, 'float64');
  assert.equal(tensor(new Int32Array([1, 2])).dtype, 'int32');
  assert.equal(tensor(new Int16Array([1, 2])).dtype, 'int16');
  assert.equal(tensor(new Int8Array([1, 2])).dtype, 'int8');
  assert.equal(tensor(new Uint8Array([1, 2])).dtype, 'uint8');
  const big = tensor(new BigInt64Array([2n ** 40n, -3n]));
  assert.equal(big.dtype, 'int64');
  assert.deepEqual(big.dataSync(), [2 ** 40, -3]);
  const src = new Float32Array([10, 11, 12, 13, 14, 15, 16]);
  const view = tensor(src.subarray(1, 7), { shape: [2, 3] });
  assert.deepEqual(view.toArray(), [[11, 12, 13], [14, 15, 16]], 'honours the byte offset of a view');
  src.fill(0);
  assert.deepEqual(view.toArray(), [[11, 12, 13], [14, 15, 16]], 'the tensor holds a copy');
  const conv = tensor(new Float32Array([1.5, 2.5]), { dtype: 'float64', requiresGrad: true });
  assert.equal(conv.dtype, 'float64');
  assert.equal(conv.requiresGrad, true);
  assert.equal(tensor(new Uint8Array([0, 2]), { dtype: 'bool' }).dtype, 'bool');
});

scoped('factories: zeros, ones, full, empty, scalar, arange, eye, linspace, rand, randn', () => {
  assert.deepEqual(zeros([2, 2]).toArray(), [[0, 0], [0, 0]]);
  assert.deepEqual(ones([3], { dtype: 'int32' }).toArray(), [1, 1, 1]);
  assert.equal(ones([3], { dtype: 'int32' }).dtype, 'int32');
  assert.deepEqual(full([2], 2.5).toArray(), [2.5, 2.5]);
  assert.equal(full([2], true).dtype, 'bool');
  assert.deepEqual(full([1, 2], 7, { dtype: 'int64' }).toArray(), [[7, 7]]);
  assert.deepEqual(empty([3, 0]).shape, [3, 0]);
  assert.equal(scalar(3.5).item(), 3.5);
  assert.deepEqual(scalar(3.5).shape, []);
  assert.equal(scalar(true).dtype, 'bool');
  assert.equal(scalar(2, { dtype: 'int64' }).item(), 2);
  const r = arange(5);
  assert.equal(r.dtype, 'int64');
  assert.deepEqual(r.toArray(), [0, 1, 2, 3, 4]);
  assert.deepEqual(arange(2, 11, 3).toArray(), [2, 5, 8]);
  assert.deepEqual(arange(3, 0, -1).toArray(), [3, 2, 1]);
  const fr = arange(0, 1, 0.25);
  assert.equal(fr.dtype, 'float32');
  assert.deepEqual(fr.toArray(), [0, 0.25, 0.5, 0.75]);
  assert.deepEqual(arange(4, undefined, 1, { dtype: 'float64' }).toArray(), [0, 1, 2, 3]);
  assert.deepEqual(eye(3).toArray(), [[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
  assert.deepEqual(eye(2, 3).toArray(), [[1, 0, 0], [0, 1, 0]]);
  assert.deepEqual(linspace(-1, 1, 5).toArray(), [-1, -0.5, 0, 0.5, 1]);
  assert.deepEqual(linspace(2, 3, 1).toArray(), [2]);
  const u = rand([4, 5], { dtype: 'float64' });
  assert.deepEqual(u.shape, [4, 5]);
  assert.equal(u.dtype, 'float64');
  assert.ok(u.dataSync().every((v) => v >= 0 && v < 1));
  assert.equal(randn([3]).dtype, 'float32');
  assert.equal(randn([2], { requiresGrad: true }).requiresGrad, true);
});

scoped('*Like factories keep shape and dtype unless told otherwise', () => {
  const base = tensor([[1, 2, 3]], { dtype: 'float64' });
  for (const [name, t] of [['zerosLike', zerosLike(base)], ['onesLike', onesLike(base)], ['fullLike', fullLike(base, 4)],
    ['emptyLike', emptyLike(base)], ['randLike', randLike(base)], ['randnLike', randnLike(base)]] as [string, Tensor][]) {
    assert.deepEqual(t.shape, [1, 3], name);
    assert.equal(t.dtype, 'float64', name);
  }
  assert.deepEqual(zerosLike(base).toArray(), [[0, 0, 0]]);
  assert.deepEqual(onesLike(base).toArray(), [[1, 1, 1]]);
  assert.deepEqual(fullLike(base, 4).toArray(), [[4, 4, 4]]);
  const i = zerosLike(base, { dtype: 'int64' });
  assert.equal(i.dtype, 'int64');
  assert.equal(onesLike(base, { requiresGrad: true }).requiresGrad, true);
});

scoped('reading out: toArray, toTypedArray, dataSync, item, shape metadata', () => {
  const t = tensor([[1, 2], [3, 4], [5, 6]]);
  assert.deepEqual(t.toArray(), [[1, 2], [3, 4], [5, 6]]);
  const ta = t.toTypedArray();
  assert.ok(ta instanceof Float32Array);
  assert.deepEqual(Array.from(ta as Float32Array), [1, 2, 3, 4, 5, 6]);
  assert.ok(t.long().toTypedArray() instanceof BigInt64Array);
  assert.ok(t.bool().toTypedArray() instanceof Uint8Array);
  assert.ok(t.double().toTypedArray() instanceof Float64Array);
  assert.deepEqual(t.to('float16').toTypedArray(), new Float32Array([1, 2, 3, 4, 5, 6]), 'float16 reads widen to float32');
  assert.deepEqual(t.T.toArray(), [[1, 3, 5], [2, 4, 6]], 'strided views read in logical order');
  assert.equal(tensor([2.5]).item(), 2.5);
  assert.equal(tensor([7], { dtype: 'int64' }).item(), 7);
  assert.equal(tensor([true]).item(), 1);
  assert.equal(tensor([[[-4]]]).item(), -4);
  const s = t.shape;
  s[0] = 99;
  assert.deepEqual(t.shape, [3, 2], 'shape returns a copy');
  assert.equal(t.ndim, 2);
  assert.equal(t.numel, 6);
  assert.equal(t.size(-1), 2);
  assert.deepEqual(t.size(), [3, 2]);
  assert.equal(t.device, 'cpu');
  assert.equal(t.isContiguous(), true);
  assert.equal(t.T.isContiguous(), false);
});

scoped('conversions: to, float, long, bool, double, cpu, clone and detach are copies or views as in PyTorch', () => {
  const t = tensor([-1.5, 0, 2.7]);
  assert.deepEqual(t.long().toArray(), [-1, 0, 2]);
  assert.deepEqual(t.bool().toArray(), [1, 0, 1]);
  assert.equal(t.double().dtype, 'float64');
  assert.equal(t.long().float().dtype, 'float32');
  assert.equal(t.cpu().device, 'cpu');
  assert.equal(t.to('float64', 'cpu').dtype, 'float64');
  const c = t.clone();
  c.fill_(9);
  assert.deepEqual(t.toArray(), [-1.5, 0, 2.7].map(Math.fround), 'clone copies');
  const d = t.detach();
  d.fill_(1);
  assert.deepEqual(t.toArray(), [1, 1, 1], 'detach shares storage');
});

scoped('toString shows values, shape, dtype, device and grad; long tensors are abbreviated without leaking', () => {
  assert.equal(String(tensor([[1, 2], [3, 4]])), 'Tensor([[1,2],[3,4]], shape=[2,2], dtype=float32, device=cpu)');
  assert.equal(String(tensor([0.5], { requiresGrad: true })), 'Tensor([0.5], shape=[1], dtype=float32, device=cpu, requiresGrad)');
  assert.equal(`${scalar(true)}`, 'Tensor(1, shape=[], dtype=bool, device=cpu)');
  const before = memory().tensors;
  const long = arange(30);
  assert.equal(long.toString(), 'Tensor([0, 1, 2, 3, 4, 5, ...], shape=[30], dtype=int64, device=cpu)');
  const third = tensor(Array.from({ length: 24 }, (_, k) => k / 3), { shape: [2, 3, 4] });
  assert.equal(third.toString(), 'Tensor([0, 0.3333, 0.6667, 1, 1.333, 1.667, ...], shape=[2,3,4], dtype=float32, device=cpu)');
  assert.equal(third.to('float16').toString().slice(0, 26), 'Tensor([0, 0.3333, 0.6665,');
  assert.equal(memory().tensors, before + 3, 'printing made no lasting tensors');
});

scoped('in-place ops return the same object and change it; views write through', () => {
  const x = tensor([1, 2, 3, 4]);
  assert.equal(x.add_(1), x);
  assert.deepEqual(x.toArray(), [2, 3, 4, 5]);
  assert.equal(x.mul_(2).sub_(1).div_(2), x);
  assert.deepEqual(x.toArray(), [1.5, 2.5, 3.5, 4.5]);
  assert.equal(x.add_(tensor([1, 1, 1, 1]), -0.5), x);
  assert.deepEqual(x.toArray(), [1, 2, 3, 4]);
  assert.equal(x.clamp_(1.5, 3.5), x);
  assert.deepEqual(x.toArray(), [1.5, 2, 3, 3.5]);
  assert.equal(x.copy_(tensor([4, 9, 16, 25])).sqrt_(), x);
  assert.deepEqual(x.toArray(), [2, 3, 4, 5]);
  const y = zeros([2, 3]);
  const row = y.select(0, 1);
  row.fill_(7);
  y.narrow(1, 0, 1).zero_().add_(-1);
  assert.deepEqual(y.toArray(), [[-1, 0, 0], [-1, 7, 7]]);
  const w = zeros([3]);
  w.addcmul_(tensor([1, 2, 3]), tensor([2, 2, 2]), 0.5).addcdiv_(tensor([3, 3, 3]), tensor([1, 3, 6]), 2).lerp_(tensor([10, 10, 10]), 0.5);
  assert.deepEqual(w.toArray(), [8.5, 7, 7]); // [1,2,3] + 2*[3,1,0.5] = [7,4,4], halfway to 10
  const i = tensor([1, 2], { dtype: 'int64' });
  assert.equal(i.mul_(3), i);
  assert.deepEqual(i.toArray(), [3, 6]);
  assert.equal(i.dtype, 'int64');
});

scoped('masked in-place updates, as pruning uses them', () => {
  const w = tensor([[0.5, -0.1, 0.05], [-2, 0.02, 1]]);
  const mask = w.abs().gt(0.09); // keep the large weights
  assert.deepEqual(mask.toArray(), [[1, 1, 0], [1, 0, 1]]);
  assert.equal(w.maskedFill_(mask.logicalNot(), 0), w);
  assert.deepEqual(w.toArray(), [[0.5, -0.1, 0], [-2, 0, 1]].map((r) => r.map(Math.fround)));
  // A bool mask times a float tensor keeps the float dtype: the other masking idiom.
  const v = tensor([1, 2, 3]);
  assert.equal(v.mul_(tensor([true, false, true])), v);
  assert.equal(v.dtype, 'float32');
  assert.deepEqual(v.toArray(), [1, 0, 3]);
  // Write kept values back in order, as rewinding to initial weights (lottery tickets) does.
  const z = zeros([2, 3]);
  z.maskedScatter_(mask, tensor([10, 11, 12, 13]));
  assert.deepEqual(z.toArray(), [[10, 11, 0], [12, 0, 13]]);
  const g = tensor([5, 6, 7, 8]);
  g.indexPut_([tensor([0, 3], { dtype: 'int64' })], tensor([-1, -2]));
  assert.deepEqual(g.toArray(), [-1, 6, 7, -2]);
  // The masked count is exact.
  assert.equal(mask.sum().item(), 4);
  assert.equal(w.eq(0).sum().item(), 2);
});

scoped('autograd: requiresGrad, leaves, gradFn, backward fills .grad, accumulation, reset', () => {
  const x = tensor([1, -2, 3], { requiresGrad: true });
  assert.equal(x.requiresGrad, true);
  assert.equal(x.isLeaf, true);
  assert.equal(x.gradFn, null);
  assert.equal(x.grad, null);
  const y = x.square().mul(3).sum(); // dy/dx = 6x
  assert.equal(y.isLeaf, false);
  assert.match(y.gradFn ?? '', /Sum/);
  y.backward(null, { retainGraph: true });
  assert.deepEqual(x.grad!.toArray(), [6, -12, 18]);
  y.backward();
  assert.deepEqual(x.grad!.toArray(), [12, -24, 36], 'gradients accumulate');
  assert.throws(() => y.backward(), EngineError, 'the graph was freed');
  x.grad = null;
  assert.equal(x.grad, null);
  x.grad = tensor([1, 1, 1]);
  assert.deepEqual(x.grad!.toArray(), [1, 1, 1]);
  x.grad = null;
  // An explicit gradient for a non-scalar output.
  x.mul(2).backward(tensor([1, 10, 100]));
  assert.deepEqual(x.grad!.toArray(), [2, 20, 200]);
  // requiresGrad_ returns this; the setter works too; detach cuts the graph.
  const p = tensor([2, 3]);
  assert.equal(p.requiresGrad_(), p);
  assert.equal(p.requiresGrad, true);
  p.requiresGrad = false;
  assert.equal(p.requiresGrad, false);
  assert.equal(x.detach().requiresGrad, false);
  // grad() returns gradients without touching .grad.
  const a = tensor([1, 2], { requiresGrad: true }), b = tensor([3, 4], { requiresGrad: true });
  const [ga, gb] = grad(a.mul(b), [a, b], { gradOutputs: [tensor([1, -1])] });
  assert.deepEqual(ga!.toArray(), [3, -4]);
  assert.deepEqual(gb!.toArray(), [1, -2]);
  assert.equal(a.grad, null);
  const [unused] = grad(a.sum(), [tensor([1], { requiresGrad: true })], { allowUnused: true });
  assert.equal(unused, null);
  // Gradients through a small network reach every parameter with the right shape.
  const w = randn([4, 3], { requiresGrad: true }), bias = zeros([4], { requiresGrad: true });
  F.crossEntropy(F.linear(randn([5, 3]), w, bias), tensor([0, 1, 2, 3, 0], { dtype: 'int64' })).backward();
  assert.deepEqual(w.grad!.shape, [4, 3]);
  assert.ok(Math.abs(bias.grad!.sum().item()) < 1e-6, 'softmax gradients wrt the bias sum to zero');
});

scoped('noGrad and enableGrad nest, return values, and restore the mode after a throw', () => {
  const x = tensor([1, 2], { requiresGrad: true });
  assert.equal(isGradEnabled(), true);
  const y = noGrad(() => {
    assert.equal(isGradEnabled(), false);
    const inner = enableGrad(() => x.mul(2));
    assert.equal(inner.requiresGrad, true);
    return x.mul(2);
  });
  assert.equal(y.requiresGrad, false);
  assert.deepEqual(y.toArray(), [2, 4]);
  assert.throws(() => noGrad(() => { throw new Error('inside'); }), /inside/);
  assert.equal(isGradEnabled(), true);
  // Updates under noGrad change a leaf in place without recording.
  noGrad(() => x.add_(1));
  assert.deepEqual(x.toArray(), [2, 3]);
  assert.equal(x.isLeaf, true);
});

scoped('native helpers: an alias shares storage, and disposing it leaves the original alive', () => {
  const t = tensor([[1, 2, 3], [4, 5, 6]]);
  const a = new Tensor(call('alias', t.h));
  assert.equal(call('sameStorage', t.h, a.h), true);
  assert.equal(call('sameStorage', t.h, t.narrow(1, 1, 2).h), true);
  assert.equal(call('sameStorage', t.h, t.clone().h), false);
  assert.equal(call('numel', t.h), 6);
  assert.equal(call('dim', t.h), 2);
  a.fill_(2);
  assert.deepEqual(t.toArray(), [[2, 2, 2], [2, 2, 2]]);
  const ah = a.h;
  a.dispose();
  assert.equal(call('isDisposed', ah), true);
  assert.equal(call('isDisposed', t.h), false);
  assert.equal(t.sum().item(), 12);
  call('setDeterministic', true);
  call('setDeterministic', false);
});

test('no test here leaked a tensor', () => {
  assert.equal(memory().tensors, startTensors);
});
