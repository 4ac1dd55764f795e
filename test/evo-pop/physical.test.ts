/**
 * Physical removal computes what the masked model computes (to 1e-5): MLP, LeNet-5 (filters, the
 * next conv's input channels, the Linear's column blocks after Flatten) and a conv net with
 * BatchNorm; the pruned mlp is exactly createModel('mlp', {widths}); save and load round-trip;
 * the global ranking removes the stated number of populations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/core/rng.js';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/registry.js';
import { BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../../src/nn/layers.js';
import type { Module } from '../../src/nn/module.js';
import { memory, noGrad, rand, randn, tidy, type Tensor } from '../../src/tensor/index.js';
import {
  type Architecture, loadPruned, maskRemoved, physicalPrune, populationLayers, savePruned, scorePopulations, selectKeep, toPopulationModel,
} from '../../src/prune/evo-pop/index.js';

/** Random masses in [0, 2) with some exact zeros (extinct populations), as after training. */
function randomizeMasses(model: Module, seed: number): void {
  manualSeed(seed);
  tidy(() => noGrad(() => {
    for (const [, l] of populationLayers(model)) l.mass.copy_(rand([l.size]).mul(2).mul(rand([l.size]).gt(0.15)));
  }));
}

/** Keep a random subset of each layer (at least one). */
function randomKeep(model: Module, seed: number, frac: number): Map<string, number[]> {
  const rng = new Rng(seed);
  return new Map(populationLayers(model).map(([n, l]) => {
    const perm = Array.from(rng.permutation(l.size));
    return [n, perm.slice(0, Math.max(1, Math.round((1 - frac) * l.size))).sort((a, b) => a - b)];
  }));
}

function maxDiff(a: Tensor, b: Tensor): number {
  return tidy(() => a.sub(b).abs().max().item());
}

/** Outputs of the masked model (removed masses zeroed) and of the pruned plain model on x. */
function compare(model: Module, keepIdx: Map<string, number[]>, x: Tensor): { diff: number; pruned: Module; scale: number; architecture: Architecture } {
  const { model: pruned, architecture } = physicalPrune(model, keepIdx);
  maskRemoved(model, keepIdx);
  model.eval(); pruned.eval();
  const [a, b] = tidy(() => noGrad(() => [model.call(x), pruned.call(x)]));
  const r = { diff: maxDiff(a, b), pruned, architecture, scale: tidy(() => a.abs().max().item()) };
  a.dispose(); b.dispose();
  return r;
}

test('mlp: the pruned plain model equals the masked model; it is createModel(mlp, {widths}) with the stated widths', () => {
  const before = memory().tensors;
  manualSeed(1);
  const model = toPopulationModel(createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10 }), 'mlp');
  randomizeMasses(model, 2);
  const keepIdx = randomKeep(model, 3, 0.4);
  const x = randn([16, 1, 28, 28]);
  const { diff, pruned, scale, architecture } = compare(model, keepIdx, x);
  assert.ok(scale > 0.01, 'outputs are not trivially zero');
  assert.ok(diff < 1e-5, `max |masked - pruned| = ${diff}`);
  assert.equal(architecture.model, 'mlp');
  assert.deepEqual(architecture.widths, [Math.round(0.6 * 512), Math.round(0.6 * 256)]);
  assert.deepEqual(architecture.kept, architecture.widths);
  const rebuilt = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10, widths: architecture.widths });
  rebuilt.loadStateDict(pruned.stateDict());
  rebuilt.eval();
  const d2 = tidy(() => noGrad(() => maxDiff(rebuilt.call(x), pruned.call(x))));
  assert.equal(d2, 0);
  assert.equal(rebuilt.numParameters(), 784 * 307 + 307 + 307 * 154 + 154 + 154 * 10 + 10);
  // save, load: same outputs
  const dir = mkdtempSync(join(tmpdir(), 'evo-pop-'));
  try {
    savePruned(dir, pruned, architecture);
    const { model: loaded } = loadPruned(dir);
    loaded.eval();
    assert.equal(tidy(() => noGrad(() => maxDiff(loaded.call(x), pruned.call(x)))), 0);
    loaded.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const m of [model, pruned, rebuilt]) m.dispose();
  x.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('lenet5: filters leave their conv, input channels the next conv, column blocks the Linear after Flatten', () => {
  manualSeed(4);
  const model = toPopulationModel(createModel('lenet5', { inputShape: [1, 28, 28], numClasses: 10 }), 'lenet5');
  randomizeMasses(model, 5);
  const keepIdx = randomKeep(model, 6, 0.5);
  const x = randn([8, 1, 28, 28]);
  const { diff, pruned, scale } = compare(model, keepIdx, x);
  assert.ok(scale > 0.01);
  assert.ok(diff < 1e-5, `max |masked - pruned| = ${diff}`);
  const shapes = pruned.namedParameters().filter(([n]) => n.endsWith('weight')).map(([, p]) => p.shape);
  assert.deepEqual(shapes, [[10, 1, 5, 5], [25, 10, 5, 5], [250, 25 * 16], [10, 250]]);
  model.dispose(); pruned.dispose(); x.dispose();
});

test('a conv net with BatchNorm (VGG-style): BatchNorm entries leave with their filters', () => {
  manualSeed(7);
  const net = new Sequential(
    new Conv2d(3, 8, 3, { padding: 1 }), new BatchNorm2d(8), new ReLU(), new MaxPool2d(2),
    new Conv2d(8, 6, 3, { padding: 1 }), new BatchNorm2d(6), new ReLU(), new MaxPool2d(2), new Flatten(),
    new Linear(6 * 4, 12), new BatchNorm1d(12), new ReLU(), new Dropout(0.5), new Linear(12, 3));
  // non-trivial running statistics
  net.train();
  tidy(() => noGrad(() => { for (let i = 0; i < 3; i++) net.call(randn([16, 3, 8, 8]).mul(2).add(0.5)); }));
  const model = toPopulationModel(net, 'vgg');
  assert.deepEqual(populationLayers(model).map(([, l]) => l.size), [8, 6, 12]);
  randomizeMasses(model, 8);
  const keepIdx = randomKeep(model, 9, 0.5);
  const x = randn([5, 3, 8, 8]);
  const { diff, pruned } = compare(model, keepIdx, x);
  assert.ok(diff < 1e-5, `max |masked - pruned| = ${diff}`);
  model.dispose(); pruned.dispose(); x.dispose();
});

test('global ranking by mass removes exactly round(fraction * 768), lowest masses first, one kept per layer at least', () => {
  manualSeed(10);
  const model = toPopulationModel(createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10 }), 'mlp');
  randomizeMasses(model, 11);
  const scores = scorePopulations(model, 'mass');
  for (const frac of [0.35, 0.4, 0.45, 0.5]) {
    const keepIdx = selectKeep(scores, frac);
    const kept = [...keepIdx.values()].reduce((s, k) => s + k.length, 0);
    assert.equal(768 - kept, Math.round(frac * 768), `fraction ${frac}`);
    // every kept mass >= every removed mass
    let minKept = Infinity, maxRemoved = -Infinity;
    for (const [n, s] of scores) {
      const k = new Set(keepIdx.get(n));
      s.forEach((v, i) => { if (k.has(i)) minKept = Math.min(minKept, v); else maxRemoved = Math.max(maxRemoved, v); });
    }
    assert.ok(minKept >= maxRemoved, `threshold separates kept (${minKept}) from removed (${maxRemoved})`);
  }
  // a layer never loses all its populations
  const lopsided = new Map([['a', new Float64Array([0, 0, 0])], ['b', new Float64Array([5, 6, 7])]]);
  assert.deepEqual(selectKeep(lopsided, 0.5).get('a')!.length, 1);
  assert.throws(() => selectKeep(scores, 1), /\[0, 1\)/);
  const l2 = scorePopulations(model, 'l2');
  const w = populationLayers(model)[0][1].unit.weight;
  const row0 = tidy(() => w.select(0, 0).norm().item());
  assert.ok(Math.abs(l2.get('1')![0] - row0) < 1e-5);
  const r1 = scorePopulations(model, 'random', { seed: 1 }), r2 = scorePopulations(model, 'random', { seed: 1 });
  assert.deepEqual([...r1.get('1')!], [...r2.get('1')!], 'random control is seeded');
  model.dispose();
});
