/**
 * EVO-POP over channel dependency groups (src/prune/evo-pop/graph-*.ts): ResNet-20's populations
 * by layer, counted by hand from its blocks; the physically smaller model equals the population
 * model with the removed masses at zero (1e-5), for ResNet-20 (option-A shortcuts) and for
 * imported ONNX fixtures (projection shortcut, depthwise convolution, a CNN with a Linear hidden
 * layer); the 'grad' probe's per-example leaf gives exactly dL/dm; every criterion scores every
 * population; one EVO-POP training step moves the masses; nothing leaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { manualSeed } from '../../src/core/runtime.js';
import { importOnnx } from '../../src/graph/onnx-import.js';
import { createModel } from '../../src/models/registry.js';
import { SGD } from '../../src/optim/optimizer.js';
import { headImportance, maskRemoved, meanActivations, scorePopulations, selectKeep } from '../../src/prune/evo-pop/criteria.js';
import { channelPopulationsFor, channelPopulationsOf, evoModelFor, physicalPruneGraph } from '../../src/prune/evo-pop/graph-physical.js';
import { ChannelPopulationModel } from '../../src/prune/evo-pop/graph-populations.js';
import { allPopulations } from '../../src/prune/evo-pop/heads.js';
import { EvoPop } from '../../src/prune/evo-pop/selection.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { rand, randn, tensor } from '../../src/tensor/creation.js';
import { memory } from '../../src/tensor/index.js';
import { crossEntropy } from '../../src/tensor/nn-ops.js';
import { tidy } from '../../src/tensor/scope.js';
import { ConfigError } from '../../src/core/errors.js';

const fixtures = resolve(fileURLToPath(import.meta.url), '../../fixtures/onnx');
const SHAPE = [1, 12, 12];

function resnet20(): ChannelPopulationModel {
  return channelPopulationsFor(createModel('resnet20', { inputShape: SHAPE, numClasses: 10 }), SHAPE, 'resnet20');
}

/** Masses in [0, 2) with a few exact zeros, and BatchNorm statistics from some training batches. */
function randomize(m: ChannelPopulationModel, shape: number[]): void {
  tidy(() => noGrad(() => { for (const [, l] of allPopulations(m)) l.mass.copy_(rand(l.mass.shape).mul(2)); }));
  m.train();
  for (let i = 0; i < 3; i++) tidy(() => noGrad(() => { m.call(randn([6, ...shape])); }));
  m.eval();
}

/** Remove `fraction` by mass physically; return max |shrunk - masked| and the two parameter counts. */
function shrinkGap(m: ChannelPopulationModel, shape: number[], fraction: number): { gap: number; scale: number; dense: number; small: number; kept: number[] } {
  const keep = selectKeep(scorePopulations(m, 'mass'), fraction);
  const { model: small, architecture } = physicalPruneGraph(m, keep);
  try {
    maskRemoved(m, keep);
    return tidy(() => noGrad(() => {
      const x = randn([5, ...shape]);
      const a = m.eval().call(x), b = small.eval().call(x);
      return { gap: a.sub(b).abs().max().item(), scale: a.abs().max().item(), dense: m.numParameters(), small: small.numParameters(), kept: architecture.kept };
    }));
  } finally {
    small.dispose();
  }
}

test('ResNet-20: one population per channel group, twelve layers (nine conv1 layers, three residual streams)', () => {
  const m = resnet20();
  try {
    assert.deepEqual(m.populationCounts, {
      'channels.stem_0': 16, 'channels.layers_0_conv1': 16, 'channels.layers_1_conv1': 16, 'channels.layers_2_conv1': 16,
      // stage 2: its conv1s, and the 16 stream channels of its own (the other 16 continue stage 1's through the zero pad)
      'channels.layers_3_conv1': 32, 'channels.layers_3_conv2': 16, 'channels.layers_4_conv1': 32, 'channels.layers_5_conv1': 32,
      'channels.layers_6_conv1': 64, 'channels.layers_6_conv2': 32, 'channels.layers_7_conv1': 64, 'channels.layers_8_conv1': 64,
    });
    // The residual stream of stage 1 is one layer: made by the stem and all nine blocks' conv2.
    const stem = m.layers[0];
    const producers = new Set(stem.rows.flat().map((r) => r.param));
    assert.deepEqual([...producers].sort(), ['stem.0.weight', ...Array.from({ length: 9 }, (_, i) => `layers.${i}.conv2.weight`)].sort());
    // Scaled after each BatchNorm that follows a producer: 1 stem + 9 x 2 blocks.
    assert.equal(m.points.length, 19);
    assert.ok(m.points.every((p) => m.graph.nodes[p.node].op === 'batchNorm'));
  } finally {
    m.dispose();
  }
});

test('ResNet-20: the physically smaller model equals the population model with the removed masses at zero (1e-5)', () => {
  manualSeed(1);
  const before = memory().tensors;
  const m = resnet20();
  try {
    randomize(m, SHAPE);
    const r = shrinkGap(m, SHAPE, 0.5);
    assert.ok(r.gap <= 1e-5, `max |shrunk - masked| = ${r.gap} (outputs up to ${r.scale})`);
    assert.ok(r.scale > 1e-3, 'the outputs are not all zero');
    assert.equal(r.kept.reduce((a, b) => a + b, 0), 400 - 200);
    assert.ok(r.small < 0.5 * r.dense, `${r.small} of ${r.dense} parameters`);
  } finally {
    m.dispose();
  }
  assert.equal(memory().tensors, before, 'no tensor leaked');
});

for (const [file, shape, counts] of [
  // the shortcut's conv comes before conv2 in the file: the block's output stream is named after it
  ['resblock', [3, 16, 16], { 'channels.conv': 8, 'channels.conv1': 16, 'channels.short_0': 16 }],
  ['depthwise', [3, 16, 16], { 'channels.stem': 8, 'channels.pw': 16 }],
  ['mnist_cnn', [1, 28, 28], { 'channels.conv1': 4, 'channels.conv2': 8, 'channels.fc1': 32 }],
] as const) {
  test(`imported ${file}.onnx: channel populations, and the shrunk model equals the masked one (1e-5)`, () => {
    manualSeed(2);
    const before = memory().tensors;
    const gm = importOnnx(join(fixtures, `${file}.onnx`));
    const m = channelPopulationsOf(gm, file);
    gm.dispose();
    try {
      assert.deepEqual(m.populationCounts, counts);
      randomize(m, [...shape]);
      const r = shrinkGap(m, [...shape], 0.4);
      assert.ok(r.gap <= 1e-5, `max |shrunk - masked| = ${r.gap} (outputs up to ${r.scale})`);
      assert.ok(r.small < r.dense);
    } finally {
      m.dispose();
    }
    assert.equal(memory().tensors, before, 'no tensor leaked');
  });
}

test("the 'grad' probe's per-example leaf sums to dL/dm, the gradient of the loss with respect to the masses", () => {
  manualSeed(3);
  const before = memory().tensors;
  const m = resnet20();
  try {
    randomize(m, SHAPE);
    m.train();
    const layers = allPopulations(m);
    const { viaLeaf, direct } = tidy(() => {
      const x = randn([4, ...SHAPE]), y = tensor([1, 2, 3, 4], { dtype: 'int64' });
      // through the probe
      for (const [, l] of layers) l.probe = 'grad';
      crossEntropy(m.call(x), y).backward();
      const viaLeaf = layers.map(([, l]) => noGrad(() => l.lastLeaf!.grad!.sum(0)).dataSync());
      for (const [, l] of layers) { l.probe = null; l.lastLeaf = null; }
      m.zeroGrad();
      // directly: the masses as leaves
      for (const [, l] of layers) l.mass.requiresGrad_(true);
      crossEntropy(m.call(x), y).backward();
      const direct = layers.map(([, l]) => l.mass.grad!.dataSync());
      for (const [, l] of layers) { l.mass.grad = null; l.mass.requiresGrad_(false); }
      return { viaLeaf, direct };
    });
    viaLeaf.forEach((g, i) => g.forEach((v, j) => assert.ok(Math.abs(v - direct[i][j]) <= 1e-5 + 1e-4 * Math.abs(direct[i][j]), `layer ${layers[i][0]} population ${j}: ${v} vs ${direct[i][j]}`)));
    assert.ok(direct.some((g) => g.some((v) => Math.abs(v) > 1e-6)), 'the gradient is not all zero');
  } finally {
    m.dispose();
  }
  assert.equal(memory().tensors, before, 'no tensor leaked');
});

test('every criterion scores every population; one EVO-POP step moves the masses', () => {
  manualSeed(4);
  const before = memory().tensors;
  const m = resnet20();
  try {
    const batches = () => [0, 1].map(() => ({ x: randn([4, ...SHAPE]), y: tensor([0, 1, 2, 3], { dtype: 'int64' }) }));
    const act = meanActivations(m, batches());
    const imp = headImportance(m, batches());
    for (const crit of ['mass', 'random', 'l2', 'activation', 'importance'] as const) {
      const s = scorePopulations(m, crit, { seed: 0, activations: act, importance: imp });
      assert.deepEqual([...s.values()].map((v) => v.length), Object.values(m.populationCounts), crit);
      if (crit !== 'random') for (const v of s.values()) assert.ok(v.every((q) => Number.isFinite(q) && q >= 0), crit);
    }
    // l2: the norm of a residual group's rows over all ten of its producers. Stage 1's channel 0 is
    // channel 8 of stage 2 (option A pads 8 zero channels in front) and channel 8 + 16 of stage 3.
    const l2 = scorePopulations(m, 'l2').get('channels.stem_0')![0];
    const sd = m.stateDict();
    const rows: [string, number][] = [['stem.0.weight', 0], ...Array.from({ length: 9 }, (_, i) => [`layers.${i}.conv2.weight`, i < 3 ? 0 : i < 6 ? 8 : 24] as [string, number])];
    const hand = Math.sqrt(rows.reduce((s, [p, r]) => s + tidy(() => sd[p].narrow(0, r, 1).square().sum().item()), 0));
    assert.ok(Math.abs(l2 - hand) <= 1e-4 * hand, `${l2} vs ${hand}`);
    // one training step under the replicator dynamics
    const evo = new EvoPop(m, { dynamics: 'replicator', fitness: 'gradient', eta: 0.5, beta: 0, every: 1, epsilon: 1e-3, mu: 0, cost: 'mean', mMax: 4, recordEvery: 10 });
    const cb = evo.callback();
    const opt = new SGD(m.namedParameters(), { lr: 0.01 });
    m.train();
    const ctx = { step: 0, epoch: 0 } as never;
    cb.beforeForward!(ctx);
    tidy(() => {
      const b = batches()[0];
      crossEntropy(m.call(b.x), b.y).backward();
      opt.step();
      cb.afterStep!(ctx);
    });
    const masses = allPopulations(m).map(([, l]) => l.mass.dataSync());
    assert.ok(masses.some((v) => v.some((q) => Math.abs(q - 1) > 1e-6)), 'the masses moved');
    // the replicator conserves each layer's total mass
    masses.forEach((v) => assert.ok(Math.abs(v.reduce((a, b) => a + b, 0) - v.length) < 1e-3));
    opt.dispose();
    evo.dispose();
    m.zeroGrad();
  } finally {
    m.dispose();
  }
  assert.equal(memory().tensors, before, 'no tensor leaked');
});

test('bad requests are refused by name', () => {
  const data = { inputShape: SHAPE, numClasses: 10 };
  assert.throws(() => evoModelFor({ model: 'resnet20' }, { populations: ['channels', 'neurons'] }, data), (e: unknown) => e instanceof ConfigError && e.issues[0].path === 'populations');
  assert.throws(() => evoModelFor({ model: 'resnet20' }, {}, data), /not a plain Sequential.*--populations channels/);
  assert.throws(() => evoModelFor({ model: 'onnx' }, {}, data), (e: unknown) => e instanceof ConfigError && e.issues[0].path === 'from');
  assert.throws(() => evoModelFor({ model: 'onnx' }, { from: join(fixtures, 'mnist_cnn.onnx'), populations: ['heads'] }, { inputShape: [1, 28, 28], numClasses: 10 }), /its populations are its channel groups/);
});

