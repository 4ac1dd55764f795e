/**
 * Layers and losses against PyTorch 1.13 (test/fixtures/nn-layers.json, from scripts/make-nn-fixtures.py):
 * each layer is built by topiary, given PyTorch's parameters and buffers through loadStateDict, run
 * in the same mode on the same input; output, gradients of sum(out * gradWeight) for the input and
 * every parameter, and the buffers after the step (BatchNorm's running statistics) must match.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, type Module,
} from '../../src/nn/index.js';
import { F, dispose, tidy, type Tensor } from '../../src/tensor/index.js';
import { assertTensorClose, fixture, fromRec, noLeaks, type Rec } from './util.js';

interface LayerCase {
  name: string; kind: string; args: Record<string, any>; training: boolean; x: Rec; params: Record<string, Rec>;
  buffers: Record<string, Rec>; out: Rec; gradWeight: Rec; grads: Record<string, Rec>; buffersAfter: Record<string, Rec>; tol?: [number, number];
}
interface LossCase { name: string; opts: Record<string, any>; x: Rec; target: Rec; out: Rec; gradWeight: Rec; gradX: Rec }
const fx = fixture<{ layers: LayerCase[]; losses: LossCase[] }>('nn-layers.json');

function build(c: LayerCase): Module {
  const a = c.args;
  switch (c.kind) {
    case 'linear': return new Linear(a.in, a.out, a.bias);
    case 'conv2d': return new Conv2d(a.inC, a.outC, a.k, { stride: a.stride, padding: a.padding, groups: a.groups, bias: a.bias });
    case 'batchnorm1d': return new BatchNorm1d(a.n);
    case 'batchnorm2d': return new BatchNorm2d(a.n);
    case 'maxpool2d': return new MaxPool2d(a.k, a.stride, a.padding);
    case 'avgpool2d': return new AvgPool2d(a.k, a.stride, a.padding);
    case 'adaptiveavgpool2d': return new AdaptiveAvgPool2d(a.out);
    case 'dropout': return new Dropout(a.p);
    case 'flatten': return new Flatten();
    case 'relu': return new ReLU();
    default: throw new Error(`fixture kind ${c.kind} has no builder`);
  }
}

test('the fixture covers every layer kind asked for', () => {
  const kinds = new Set(fx.layers.map((c) => c.kind));
  for (const k of ['linear', 'conv2d', 'batchnorm1d', 'batchnorm2d', 'maxpool2d', 'avgpool2d', 'adaptiveavgpool2d', 'dropout']) assert.ok(kinds.has(k), k);
  assert.ok(fx.layers.some((c) => c.kind === 'batchnorm2d' && c.training) && fx.layers.some((c) => c.kind === 'batchnorm2d' && !c.training));
  assert.ok(fx.layers.some((c) => c.kind === 'conv2d' && c.args.groups > 1) && fx.layers.some((c) => c.kind === 'conv2d' && c.args.stride > 1));
});

for (const c of fx.layers) {
  test(`layer: ${c.name} (${c.training ? 'train' : 'eval'})`, async () => {
    await noLeaks(c.name, () => {
      const m = build(c);
      const sd: Record<string, Tensor> = {};
      for (const [k, r] of Object.entries({ ...c.params, ...c.buffers })) sd[k] = fromRec(r);
      m.loadStateDict(sd);
      dispose(sd);
      m.train(c.training);
      const tol = c.tol ?? [1e-5, 1e-6];
      tidy(() => {
        const x = fromRec(c.x, true);
        const y = m.call(x);
        assertTensorClose(y, c.out, `${c.name}: output`, tol);
        y.mul(fromRec(c.gradWeight)).sum().backward();
        assertTensorClose(x.grad, c.grads.x, `${c.name}: grad of the input`, tol);
        const params = Object.fromEntries(m.namedParameters());
        assert.deepEqual(Object.keys(params).sort(), Object.keys(c.params).sort(), `${c.name}: parameter names`);
        for (const k of Object.keys(c.params)) assertTensorClose(params[k].grad, c.grads[k], `${c.name}: grad of ${k}`, tol);
        const bufs = Object.fromEntries(m.namedBuffers());
        assert.deepEqual(Object.keys(bufs).sort(), Object.keys(c.buffersAfter).sort(), `${c.name}: buffer names`);
        for (const [k, r] of Object.entries(c.buffersAfter)) assertTensorClose(bufs[k], r, `${c.name}: ${k} after the step`, tol);
      });
      m.dispose();
    });
  });
}

test('BatchNorm in eval mode leaves running statistics and num_batches_tracked alone', () => {
  const bn = new BatchNorm2d(2);
  bn.eval();
  tidy(() => {
    bn.call(fromRec({ dtype: 'float32', shape: [2, 2, 1, 2], data: [1, 2, 3, 4, 5, 6, 7, 9] }));
    const b = Object.fromEntries(bn.namedBuffers());
    assert.deepEqual(b.running_mean.dataSync(), [0, 0]);
    assert.deepEqual(b.running_var.dataSync(), [1, 1]);
    assert.equal(b.num_batches_tracked.item(), 0);
  });
  bn.dispose();
});

test('layers reject bad shapes and arguments with messages naming them', () => {
  assert.throws(() => new Linear(0, 3), /inFeatures must be a positive integer, got 0/);
  assert.throws(() => new Conv2d(3, 4, 3, { groups: 2 }), /must divide by groups 2/);
  assert.throws(() => new Dropout(1), /p must be in \[0, 1\), got 1/);
  const bn = new BatchNorm2d(3);
  tidy(() => {
    assert.throws(() => bn.call(fromRec({ dtype: 'float32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] })), /BatchNorm2d: expected a 4-d input, got \[2,3\]/);
    assert.throws(() => bn.call(fromRec({ dtype: 'float32', shape: [1, 2, 1, 1], data: [1, 2] })), /expected 3 channels, input has 2/);
    const lin = new Linear(4, 2);
    assert.throws(() => lin.call(fromRec({ dtype: 'float32', shape: [1, 3], data: [1, 2, 3] })), /last dim 3 .* in-features 4/);
    lin.dispose();
  });
  bn.dispose();
});

test('Dropout in training mode zeroes about p of the inputs and scales the rest by 1/(1-p)', () => {
  const d = new Dropout(0.25);
  tidy(() => {
    const y = d.call(fromRec({ dtype: 'float32', shape: [4000], data: new Array(4000).fill(1) }));
    const v = y.dataSync();
    const zeros = v.filter((e) => e === 0).length;
    assert.ok(zeros > 850 && zeros < 1150, `zeros ${zeros} of 4000, expected about 1000`);
    assert.ok(v.every((e) => e === 0 || Math.abs(e - 4 / 3) < 1e-6));
  });
});

for (const c of fx.losses) {
  test(`loss: ${c.name}`, async () => {
    await noLeaks(c.name, () => tidy(() => {
      const x = fromRec(c.x, true), t = fromRec(c.target);
      const o = c.opts;
      const weight = o.weight ? fromRec(o.weight) : null;
      const y = o.loss === 'crossEntropy' ? F.crossEntropy(x, t, { weight, labelSmoothing: o.labelSmoothing, reduction: o.reduction })
        : o.loss === 'nllLoss' ? F.nllLoss(x, t, { weight, reduction: o.reduction })
          : F.mseLoss(x, t, o.reduction);
      assertTensorClose(y, c.out, `${c.name}: value`, [1e-5, 1e-6]);
      y.mul(fromRec(c.gradWeight)).sum().backward();
      assertTensorClose(x.grad, c.gradX, `${c.name}: gradient`, [1e-5, 1e-6]);
    }));
  });
}
