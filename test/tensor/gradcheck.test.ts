/**
 * Gradients of every differentiable op against central finite differences in float64
 * (eps 1e-6, rtol 1e-5), then second derivatives: a Hessian-vector product on a quadratic and
 * double backpropagation through a small MLP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../../src/core/binding.js';
import { Rng } from '../../src/core/rng.js';
import { manualSeed } from '../../src/core/runtime.js';
import {
  F, Tensor, cat, grad, matmul, memory, noGrad, outer, stack, tensor, tidy, where,
} from '../../src/tensor/index.js';
import { distinct64, gradcheck, randn64 } from './gradcheck-util.js';
import { assertArrayClose } from './util.js';

const rng = new Rng(20240611);
const r = (...shape: number[]): Tensor => randn64(rng, shape);
const pos = (...shape: number[]): Tensor => tidy(() => randn64(rng, shape).abs().add(0.3));
const d = (...shape: number[]): Tensor => distinct64(rng, shape);
const long = (data: number[], shape?: number[]): Tensor => tensor(data, { dtype: 'int64', shape });
const bool = (data: boolean[], shape?: number[]): Tensor => tensor(data, { dtype: 'bool', shape });
const raw = (op: string, ...args: unknown[]): Tensor => new Tensor(call(op, ...args));

type Fn = (...xs: Tensor[]) => Tensor;
const startTensors = memory().tensors;
let checks = 0;
function check(name: string, fn: Fn, inputs: () => Tensor[], opts: { rtol?: number; atol?: number; check?: boolean[] } = {}): void {
  test(`gradcheck ${name}`, () => {
    tidy(() => { gradcheck(name, fn, inputs(), opts); });
    checks++;
  });
}

test('gradcheck itself catches a wrong gradient and a vacuous check', () => {
  tidy(() => {
    // d/dx of detach(x) * x is x by autograd, 2x in truth.
    assert.throws(() => gradcheck('wrong', (x) => x.detach().mul(x), [r(3)]), /autograd .* finite differences/);
    // A gradient that is zero everywhere proves nothing.
    assert.throws(() => gradcheck('zero', (x) => x.mul(0), [r(3)]), /all zeros/);
  });
});

// ---- elementwise -----------------------------------------------------------------------------------
check('add broadcast alpha', (a, b) => a.add(b, 0.7), () => [r(2, 3), r(3)]);
check('sub broadcast [2,1]-[1,3]', (a, b) => a.sub(b), () => [r(2, 1), r(1, 3)]);
check('mul broadcast', (a, b) => a.mul(b), () => [r(2, 3), r(2, 1)]);
check('div', (a, b) => a.div(b), () => [r(2, 3), pos(3)]);
check('mul scalar', (a) => a.mul(-1.7), () => [r(4)]);
check('rsub', (a) => a.rsub(2.5), () => [r(4)]);
check('rdiv (scalar / x)', (a) => raw('rdiv', a.h, 1.5), () => [pos(4)]);
check('pow scalar', (a) => a.pow(2.5), () => [pos(2, 3)]);
check('pow tensor exponent', (a, b) => a.pow(b), () => [pos(2, 3), r(3)]);
check('maximum', (a, b) => a.maximum(b), () => [d(2, 3), d(3).add(0.037)]);
check('minimum', (a, b) => a.minimum(b), () => [d(2, 3), d(2, 1).add(0.037)]);
for (const [name, f] of [
  ['neg', (x: Tensor) => x.neg()], ['exp', (x: Tensor) => x.exp()], ['sin', (x: Tensor) => x.sin()], ['cos', (x: Tensor) => x.cos()],
  ['square', (x: Tensor) => x.square()], ['sigmoid', F.sigmoid], ['tanh', F.tanh], ['gelu', F.gelu],
  ['softplus', (x: Tensor) => raw('softplus', x.h)], ['abs', (x: Tensor) => x.abs()], ['relu', F.relu],
  ['leakyRelu', (x: Tensor) => F.leakyRelu(x, 0.2)], ['clamp', (x: Tensor) => x.clamp(-0.5, 0.4)],
] as [string, Fn][]) {
  check(name, f, () => [d(2, 4).mul(3)]);
}
for (const [name, f] of [
  ['log', (x: Tensor) => x.log()], ['sqrt', (x: Tensor) => x.sqrt()], ['rsqrt', (x: Tensor) => x.rsqrt()], ['reciprocal', (x: Tensor) => x.reciprocal()],
] as [string, Fn][]) {
  check(name, f, () => [pos(2, 3)]);
}
check('where tensors', (a, b) => where(bool([true, false, true, false, false, true], [2, 3]), a, b), () => [r(2, 3), r(1, 3)]);
check('where scalar branch', (a) => where(bool([true, false, true]), a, 0.5), () => [r(3)]);
check('in-place ops on non-leaves', (x, z) => { const y = x.mul(1.5); y.mul_(z).add_(x, 0.5); return y.sin(); }, () => [r(2, 3), r(3)]);

// ---- reductions ------------------------------------------------------------------------------------
check('sum all', (x) => x.sum(), () => [r(2, 3)]);
check('sum dims keepdim', (x) => x.sum([0, 2], true), () => [r(2, 3, 2)]);
check('mean dim', (x) => x.mean(1), () => [r(2, 3, 2)]);
check('var unbiased dim', (x) => x.var(1), () => [r(3, 4)]);
check('var biased keepdim', (x) => x.var(0, true, false), () => [r(3, 4)]);
check('std all', (x) => x.std(), () => [r(3, 4)]);
check('std dims', (x) => x.std([1, 2]), () => [r(2, 3, 2)]);
check('prod', (x) => x.prod(), () => [pos(5)]);
check('max', (x) => x.max(), () => [d(3, 4)]);
check('min', (x) => x.min(), () => [d(3, 4)]);
check('maxDim values', (x) => x.maxDim(1).values, () => [d(3, 4)]);
check('minDim values keepdim', (x) => x.minDim(0, true).values, () => [d(3, 4)]);
check('norm p2', (x) => x.norm(), () => [r(3, 4)]);
check('norm p1 dim', (x) => x.norm(1, 1), () => [d(3, 4)]);
check('norm p3 keepdim', (x) => x.norm(3, 0, true), () => [r(3, 4)]);
check('norm pinf', (x) => x.norm(Infinity, 1), () => [d(3, 4)]);
check('topk values', (x) => x.topk(2, 1).values, () => [d(3, 5)]);
check('sort values', (x) => x.sort(0, true).values, () => [d(3, 4)]);
check('kthvalue values', (x) => x.kthvalue(2, 1).values, () => [d(3, 4)]);
check('quantile dim', (x) => x.quantile(0.3, 1), () => [d(3, 5)]);
check('quantile q tensor', (x) => x.quantile(tensor([0.2, 0.65], { dtype: 'float64' })), () => [d(7)]);
check('cumsum', (x) => x.cumsum(1), () => [r(2, 4)]);

// ---- shape and indexing -----------------------------------------------------------------------------
check('reshape', (x) => x.reshape(3, -1).mul(x.reshape(3, 4)), () => [r(2, 6)]);
check('view', (x) => x.view(4, 3).sin(), () => [r(2, 6)]);
check('flatten', (x) => x.flatten(1).exp(), () => [r(2, 2, 2)]);
check('permute', (x) => x.permute(2, 0, 1).cumsum(0), () => [r(2, 3, 2)]);
check('transpose', (x) => x.transpose(0, 1).cumsum(0), () => [r(2, 3)]);
check('squeeze unsqueeze', (x) => x.squeeze(1).unsqueeze(0).cumsum(2), () => [r(2, 1, 3)]);
check('expand', (x) => x.expand(2, 3, 4), () => [r(3, 1)]);
check('repeat', (x) => x.repeat(2, 3), () => [r(2, 2)]);
check('cat', (a, b) => cat([a, b, a], 1), () => [r(2, 1), r(2, 3)]);
check('stack', (a, b) => stack([a, b], 1), () => [r(2, 3), r(2, 3)]);
check('narrow', (x) => x.narrow(1, 1, 2), () => [r(3, 4)]);
check('slice step', (x) => x.slice(1, 1, 7, 2), () => [r(2, 7)]);
check('select', (x) => x.select(1, -1), () => [r(2, 3)]);
check('indexSelect repeats', (x) => x.indexSelect(0, long([2, 0, 2])), () => [r(3, 2)]);
check('gather', (x) => x.gather(1, long([0, 2, 1, 1], [2, 2])), () => [r(2, 3)]);
check('scatter src', (x, s) => x.scatter(1, long([2, 0], [2, 1]), s), () => [r(2, 3), r(2, 1)]);
check('scatterAdd duplicates', (x, s) => x.scatterAdd(0, long([0, 0, 0, 1], [2, 2]), s), () => [r(2, 2), r(2, 2)]);
check('maskedFill', (x) => x.maskedFill(bool([true, false, false, true], [2, 2]), 0.5), () => [r(2, 2)]);
check('maskedSelect', (x) => x.maskedSelect(bool([true, false, true])), () => [r(2, 3)]);
check('flip', (x) => x.flip([1]).cumsum(1), () => [r(2, 3)]);
check('pad', (x) => F.pad(x, [1, 2, 0, 1], 0.5), () => [r(1, 2, 2)]);
check('chunk', (x) => { const [a, b] = x.chunk(2, 1); return a.mul(b); }, () => [r(2, 4)]);
check('tril', (x) => raw('tril', x.h, 0), () => [r(3, 3)]);
check('roll', (x) => raw('roll', x.h, [1], [0]).cumsum(0), () => [r(3, 2)]);

// ---- products and neural-network ops ----------------------------------------------------------------
check('matmul 2d', (a, b) => matmul(a, b), () => [r(2, 3), r(3, 2)]);
check('matmul batched broadcast', (a, b) => matmul(a, b), () => [r(2, 1, 2, 3), r(3, 3, 2)]);
check('matmul vector', (a, b) => matmul(a, b), () => [r(3), r(3, 2)]);
check('mm', (a, b) => a.mm(b), () => [r(2, 3), r(3, 2)]);
check('bmm', (a, b) => raw('bmm', a.h, b.h), () => [r(2, 2, 3), r(2, 3, 2)]);
check('outer', (a, b) => outer(a, b), () => [r(3), r(2)]);
check('addmm beta alpha', (c, a, b) => F.addmm(c, a, b, 0.5, 1.5), () => [r(2), r(2, 3), r(3, 2)]);
check('linear', (x, w, b) => F.linear(x, w, b), () => [r(2, 3), r(4, 3), r(4)]);
check('linear no bias 3d', (x, w) => F.linear(x, w), () => [r(2, 2, 3), r(2, 3)]);
check('conv2d stride padding', (x, w, b) => F.conv2d(x, w, b, { stride: 2, padding: 1 }), () => [r(1, 2, 5, 5), r(2, 2, 3, 3), r(2)]);
check('conv2d dilation', (x, w) => F.conv2d(x, w, null, { dilation: 2 }), () => [r(1, 1, 5, 5), r(2, 1, 2, 2)]);
check('conv2d groups asymmetric', (x, w, b) => F.conv2d(x, w, b, { stride: [1, 2], padding: [1, 0], groups: 2 }), () => [r(1, 4, 4, 5), r(2, 2, 3, 2), r(2)]);
check('maxPool2d', (x) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }), () => [d(1, 2, 5, 5)]);
check('maxPool2d dilation ceil', (x) => F.maxPool2d(x, 2, { stride: 2, dilation: 2, ceilMode: true }), () => [d(1, 1, 6, 6)]);
check('avgPool2d exclude pad', (x) => F.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false }), () => [r(1, 2, 5, 5)]);
check('avgPool2d ceil', (x) => F.avgPool2d(x, 2, { ceilMode: true }), () => [r(1, 1, 5, 5)]);
check('adaptiveAvgPool2d', (x) => F.adaptiveAvgPool2d(x, [3, 2]), () => [r(1, 2, 5, 5)]);
check('batchNorm training', (x, w, b) => F.batchNorm(x, { weight: w, bias: b, training: true }), () => [r(3, 2, 2, 2), pos(2), r(2)]);
check('batchNorm eval', (x, w, b) => F.batchNorm(x, { weight: w, bias: b, runningMean: tensor([0.1, -0.2], { dtype: 'float64' }),
  runningVar: tensor([0.5, 1.5], { dtype: 'float64' }), training: false }), () => [r(3, 2, 2), pos(2), r(2)]);
check('layerNorm', (x, w, b) => F.layerNorm(x, [3], w, b), () => [r(2, 3), pos(3), r(3)]);
check('softmax', (x) => F.softmax(x, 1), () => [r(2, 4)]);
check('logSoftmax', (x) => F.logSoftmax(x, 0), () => [r(3, 2)]);
// Reseeding inside fn draws the same mask at every evaluation, so finite differences apply.
check('dropout training (fixed mask)', (x) => { manualSeed(11); return F.dropout(x, 0.4, true); }, () => [r(3, 5)]);
check('dropout eval', (x) => F.dropout(x, 0.4, false), () => [r(3)]);
check('contiguous clone', (x) => x.T.contiguous().clone().cumsum(1), () => [r(2, 3)]);
const target = (): Tensor => long([1, 0, 3]);
check('crossEntropy', (x) => F.crossEntropy(x, target()), () => [r(3, 4)]);
check('crossEntropy weights smoothing', (x, w) => F.crossEntropy(x, target(), { weight: w, labelSmoothing: 0.15 }), () => [r(3, 4), pos(4)], { check: [true, false] });
check('crossEntropy sum ignore', (x) => F.crossEntropy(x, long([1, -100, 2]), { reduction: 'sum' }), () => [r(3, 4)]);
check('crossEntropy none spatial', (x) => F.crossEntropy(x, long([0, 2, 1, 1], [1, 2, 2]), { reduction: 'none' }), () => [r(1, 3, 2, 2)]);
check('nllLoss weights', (x, w) => F.nllLoss(x, target(), { weight: w }), () => [r(3, 4), pos(4)], { check: [true, false] });
check('mseLoss', (a, b) => F.mseLoss(a, b), () => [r(2, 3), r(2, 3)]);
check('mseLoss sum', (a, b) => F.mseLoss(a, b, 'sum'), () => [r(2, 3), r(3)]);
const theta = (): Tensor => tensor([[[0.91, -0.23, 0.137], [0.31, 1.07, -0.173]]], { dtype: 'float64' });
check('affineGrid', (t) => F.affineGrid(t, [1, 1, 3, 4]), () => [theta()]);
check('affineGrid alignCorners', (t) => F.affineGrid(t, [1, 1, 3, 4], true), () => [theta()]);
for (const paddingMode of ['zeros', 'border', 'reflection'] as const) {
  check(`gridSample bilinear ${paddingMode}`, (x, g) => F.gridSample(x, g, { paddingMode }), () => [r(1, 2, 3, 4), randn64(rng, [1, 2, 2, 2], 0.7)]);
}
check('gridSample nearest (input only)', (x, g) => F.gridSample(x, g, { mode: 'nearest' }), () => [r(1, 1, 3, 3), randn64(rng, [1, 2, 2, 2], 0.6)], { check: [true, false] });
check('affineGrid + gridSample', (x, t) => F.gridSample(x, F.affineGrid(t, [1, 2, 3, 3]), { alignCorners: false }), () => [r(1, 2, 3, 3), theta()]);

// ---- second derivatives ------------------------------------------------------------------------------
test('Hessian-vector product of 0.5 x^T A x + b^T x is A v', () => {
  tidy(() => {
    const n = 4;
    const m = randn64(rng, [n, n]);
    const A = m.add(m.T).mul(0.5); // symmetric
    const b = r(n), v = r(n);
    const x = r(n).requiresGrad_(true);
    const f = x.matmul(A.matmul(x)).mul(0.5).add(b.matmul(x));
    const [g] = grad(f, x, { createGraph: true });
    assert.ok(g!.requiresGrad, 'createGraph records the gradient computation');
    // The gradient itself is A x + b.
    assertArrayClose(g!.dataSync(), A.matmul(x).add(b).dataSync(), { rtol: 1e-12, atol: 1e-12 }, 'grad');
    const [hv] = grad(g!.mul(v).sum(), x);
    assertArrayClose(hv!.dataSync(), A.matmul(v).dataSync(), { rtol: 1e-12, atol: 1e-12 }, 'Hv');
  });
});

test('double backprop through an MLP (relu, tanh) matches finite differences of the gradient', () => {
  tidy(() => {
    const x = r(5, 3), y = long([0, 2, 1, 1, 0]);
    const W1 = r(4, 3), b1 = r(4), W2 = r(4, 4), W3 = r(3, 4);
    const loss = (w1: Tensor, input: Tensor): Tensor =>
      F.crossEntropy(F.linear(F.relu(F.linear(F.tanh(F.linear(input, w1, b1)), W2)), W3), y);
    const gradW1 = (w1: Tensor, createGraph: boolean): Tensor => {
      const leaf = createGraph ? w1 : w1.detach().requiresGrad_(true);
      return grad(loss(leaf, x), leaf, { createGraph })[0]!;
    };
    // Hessian-vector product H u = d/dW1 <dL/dW1, u> against (g(W1 + eps u) - g(W1 - eps u)) / 2 eps.
    const u = r(4, 3);
    const w1 = W1.detach().requiresGrad_(true);
    const g = gradW1(w1, true);
    const [hu] = grad(g.mul(u).sum(), w1);
    const eps = 1e-6;
    const fd = tidy(() => gradW1(W1.add(u.mul(eps)), false).sub(gradW1(W1.sub(u.mul(eps)), false)).div(2 * eps));
    assert.ok(hu!.abs().max().item() > 1e-3, 'the Hessian-vector product is not trivially zero');
    assertArrayClose(hu!.dataSync(), fd.dataSync(), { rtol: 1e-5, atol: 1e-6 }, 'H u');

    // A gradient penalty: P(W1) = |dL/dx|^2, differentiated with respect to W1, against finite differences of P.
    const penalty = (w1v: Tensor, createGraph: boolean): Tensor => {
      const xi = x.detach().requiresGrad_(true);
      const [gx] = grad(loss(w1v, xi), xi, { createGraph });
      return gx!.square().sum();
    };
    const w1b = W1.detach().requiresGrad_(true);
    const [dp] = grad(penalty(w1b, true), w1b);
    const base = W1.toTypedArray() as Float64Array;
    const numeric = new Float64Array(base.length);
    for (let k = 0; k < base.length; k++) {
      const at = (delta: number): number => tidy(() => {
        const wv = Float64Array.from(base);
        wv[k] += delta;
        return penalty(tensor(wv, { shape: [4, 3] }), false).item();
      });
      numeric[k] = (at(eps) - at(-eps)) / (2 * eps);
    }
    assertArrayClose(dp!.dataSync(), numeric, { rtol: 1e-5, atol: 1e-6 }, 'd|dL/dx|^2 / dW1');
  });
});

test('gradients do not flow under noGrad, and no check leaked tensors', () => {
  const x = tidy(() => r(3).requiresGrad_(true));
  const y = noGrad(() => x.mul(2));
  assert.equal(y.requiresGrad, false);
  x.dispose(); y.dispose();
  assert.ok(checks >= 100, `ran ${checks} gradient checks`);
  assert.equal(memory().tensors, startTensors);
});
