/**
 * Fitness against finite differences of the loss in float64, on a small population-scaled MLP
 * with non-trivial masses: gradient = -dL/dm, taylor = mean_b |m dl_b/dm|, activation = mean |m a|.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed } from '../../src/core/runtime.js';
import { Linear, ReLU, Sequential, Tanh } from '../../src/nn/layers.js';
import type { Module } from '../../src/nn/module.js';
import { F, memory, noGrad, randint, randn, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { ArgumentError, ConfigError } from '../../src/core/errors.js';
import { createModel } from '../../src/models/registry.js';
import { FITNESS, PopulationLayer, getFitness, populationLayers, toPopulationModel } from '../../src/prune/evo-pop/index.js';

/** Convert every parameter and buffer to float64 (finite differences need the precision). */
function toDouble(m: Module): void {
  tidy(() => noGrad(() => {
    for (const [n, p] of m.namedParameters()) m.setParameter(n, p.detach().double());
    for (const [n, b] of m.namedBuffers()) m.setBuffer(n, b.double());
  }));
}

function tinyModel(): Sequential {
  manualSeed(3);
  const model = toPopulationModel(new Sequential(new Linear(5, 6), new ReLU(), new Linear(6, 4), new Tanh(), new Linear(4, 3)));
  toDouble(model);
  tidy(() => noGrad(() => {
    const [[, l1], [, l2]] = populationLayers(model);
    l1.mass.copy_(tensor([1, 0.5, 2, 1.5, 0.8, 1.2], { dtype: 'float64' }));
    l2.mass.copy_(tensor([0.7, 1.3, 1, 2], { dtype: 'float64' }));
  }));
  return model;
}

const B = 8;
function batch(): { x: Tensor; y: Tensor } {
  manualSeed(5);
  return tidy(() => ({ x: randn([B, 5]).double(), y: randint(0, 3, [B]) }));
}

/** Per-example losses at masses m (of the layer `which`) with m_i shifted by d. */
function lossesAt(model: Module, which: PopulationLayer, i: number, d: number, x: Tensor, y: Tensor): number[] {
  return tidy(() => noGrad(() => {
    const saved = which.mass.clone();
    const shift = tensor(Array.from({ length: which.size }, (_, k) => (k === i ? d : 0)), { dtype: 'float64' });
    which.mass.add_(shift);
    const l = F.crossEntropy(model.call(x), y, { reduction: 'none' }).dataSync();
    which.mass.copy_(saved);
    return l;
  }));
}

/** Fitness by the registry after one training forward / backward with the fitness's probe. */
function measured(model: Module, name: string, x: Tensor, y: Tensor): number[][] {
  return tidy(() => {
    const fit = getFitness(name);
    const layers = populationLayers(model);
    for (const [, l] of layers) l.probe = fit.probe;
    model.train();
    F.crossEntropy(model.call(x), y).backward();
    const out = layers.map(([, l]) => fit.measure(l).dataSync());
    for (const [, l] of layers) { l.probe = null; l.lastLeaf = null; l.lastActMean = null; }
    model.zeroGrad();
    return out;
  });
}

test('gradient fitness equals -dL/dm by central differences', () => {
  const before = memory().tensors;
  const model = tinyModel();
  const { x, y } = batch();
  const got = measured(model, 'gradient', x, y);
  const h = 1e-6;
  populationLayers(model).forEach(([, l], li) => {
    for (let i = 0; i < l.size; i++) {
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      const fd = -(mean(lossesAt(model, l, i, h, x, y)) - mean(lossesAt(model, l, i, -h, x, y))) / (2 * h);
      assert.ok(Math.abs(got[li][i] - fd) < 1e-7, `layer ${li} population ${i}: ${got[li][i]} vs ${fd}`);
    }
  });
  x.dispose(); y.dispose(); model.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('taylor fitness equals mean over examples of |m_i dl_b/dm_i| by central differences', () => {
  const model = tinyModel();
  const { x, y } = batch();
  const got = measured(model, 'taylor', x, y);
  const h = 1e-6;
  populationLayers(model).forEach(([, l], li) => {
    const m = l.mass.dataSync();
    for (let i = 0; i < l.size; i++) {
      const up = lossesAt(model, l, i, h, x, y), down = lossesAt(model, l, i, -h, x, y);
      const fd = up.reduce((s, u, b) => s + Math.abs((m[i] * (u - down[b])) / (2 * h)), 0) / B;
      assert.ok(Math.abs(got[li][i] - fd) < 1e-7, `layer ${li} population ${i}: ${got[li][i]} vs ${fd}`);
      assert.ok(got[li][i] > 0);
    }
  });
  x.dispose(); y.dispose(); model.dispose();
});

test('activation fitness equals mean |m_i a_i| over the batch', () => {
  const model = tinyModel();
  const { x, y } = batch();
  const got = measured(model, 'activation', x, y);
  const [[, l1]] = populationLayers(model);
  const want = tidy(() => noGrad(() => l1.unit.call(x).relu().mul(l1.mass).abs().mean(0).dataSync()));
  got[0].forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-12, `population ${i}: ${g} vs ${want[i]}`));
  x.dispose(); y.dispose(); model.dispose();
});

test('a fitness without its probe is an error naming the fitness; unknown names list the known ones', () => {
  const model = tinyModel();
  const [[, l1]] = populationLayers(model);
  assert.throws(() => FITNESS.gradient.measure(l1), (e: unknown) => e instanceof ArgumentError && /'gradient'/.test((e as Error).message));
  assert.throws(() => FITNESS.activation.measure(l1), ArgumentError);
  assert.throws(() => getFitness('beauty'), /known: gradient, taylor, activation/);
  model.dispose();
});

test('population layers: masses start at 1, are a buffer not a parameter, and the output layer is not scaled', () => {
  const m = toPopulationModel(createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10 }), 'mlp');
  const layers = populationLayers(m);
  assert.deepEqual(layers.map(([, l]) => l.size), [512, 256]);
  assert.equal(layers.reduce((s, [, l]) => s + l.size, 0), 768);
  assert.ok(m.namedParameters().every(([n]) => !n.endsWith('mass')), 'the optimizer never sees the masses');
  assert.deepEqual(m.namedBuffers().map(([n]) => n), ['1.mass', '2.mass']);
  assert.ok(layers.every(([, l]) => l.mass.dataSync().every((v) => v === 1)));
  m.dispose();
  const lenet = toPopulationModel(createModel('lenet5', { inputShape: [1, 28, 28], numClasses: 10 }), 'lenet5');
  assert.deepEqual(populationLayers(lenet).map(([, l]) => [l.kind, l.size]), [['conv', 20], ['conv', 50], ['linear', 500]]);
  lenet.dispose();
  // no scaled layer: a ResNet (not Sequential), or an mlp without hidden layers -> errors naming the field 'model'
  for (const [name, build] of [['resnet20', () => createModel('resnet20', { inputShape: [3, 32, 32], numClasses: 10 })],
    ['mlp', () => createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10, widths: [] })]] as const) {
    const net = build();
    assert.throws(() => toPopulationModel(net, name), (e: unknown) => e instanceof ConfigError && e.issues[0]?.path === 'model' && /population-scalable/.test((e as Error).message));
    net.dispose();
  }
});
