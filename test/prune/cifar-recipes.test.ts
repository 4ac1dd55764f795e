/**
 * The CIFAR recipes (ResNet-18 72.9%, VGG-like 97%, VGG-19 98%): they validate, and one PMP step of
 * each model trains and prunes as the recipe says, on CIFAR-shaped synthetic batches (the 200-epoch
 * runs need a GPU and the CIFAR-10 files, neither of which CI has).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pruneConfigFrom } from '../../src/cli/prune.js';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/registry.js';
import { SGD } from '../../src/optim/optimizer.js';
import { pmpCallback } from '../../src/prune/methods/pmp.js';
import { linear } from '../../src/prune/schedules.js';
import { keepCount } from '../../src/prune/select.js';
import { PruneTarget } from '../../src/prune/target.js';
import { memory, randint, randn } from '../../src/tensor/index.js';
import { train } from '../../src/train/loop.js';

const RECIPES = [['pmp-cifar10-resnet18-729.yaml', 'resnet18', 0.729], ['pmp-cifar10-vgg-like-97.yaml', 'vgg_like', 0.97], ['pmp-cifar10-vgg19-98.yaml', 'vgg19', 0.98]] as const;

for (const [file, model, sparsity] of RECIPES) {
  test(`recipe ${file}: validates, and a PMP step of ${model} prunes to s(0) and trains`, () => {
    const before = memory().tensors;
    const { train: c, prune } = pruneConfigFrom({ recipe: new URL(`../../recipes/${file}`, import.meta.url).pathname });
    assert.equal(c.model, model);
    assert.equal(c.dataset, 'cifar10');
    assert.deepEqual([c.epochs, c.lr, c.labelSmoothing, c.augment.cropPadding, c.augment.flip, c.schedule], [200, 0.1, 0.1, 4, true, 'cosine']);
    assert.deepEqual([prune.method, prune.sparsity, prune.phase], ['pmp', sparsity, 80]);
    manualSeed(0);
    const m = createModel(model, { inputShape: [3, 32, 32], numClasses: 10, init: c.init });
    const target = new PruneTarget(m);
    const opt = new SGD(m.namedParameters(), { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay });
    const batches = () => [{ x: randn([2, 3, 32, 32]), y: randint(0, 10, [2]) }];
    const r = train({ model: m, optimizer: opt, epochs: 1, trainBatches: batches, labelSmoothing: c.labelSmoothing,
      callbacks: [target.callback(), pmpCallback(target, { final: prune.sparsity, phase: prune.phase as number, scope: 'global' })] });
    assert.ok(Number.isFinite(r.history[0].trainLoss));
    const counts = target.counts();
    assert.equal(counts.kept, keepCount(counts.total, linear.sparsityAt(0, { final: sparsity, phase: 80 })));
    assert.ok(counts.layers.length >= 9, `${counts.layers.length} prunable layers, first and last included`);
    opt.dispose();
    target.dispose();
    m.dispose();
    assert.equal(memory().tensors, before, 'no tensor leaks');
  });
}
