/**
 * The EVO-POP callback inside the real training loop, on a small synthetic problem: masses move
 * and are recorded, the replicator keeps each layer's total, `every` spaces the updates, the
 * optimizer never holds the masses, a run interrupted and resumed from its checkpoint ends with
 * exactly the masses of an uninterrupted one, and nothing leaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed } from '../../src/core/runtime.js';
import { Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { SGD } from '../../src/optim/optimizer.js';
import { EvoPop, EvoConfig, populationLayers, toPopulationModel } from '../../src/prune/evo-pop/index.js';
import { memory, randn, tidy, type Tensor } from '../../src/tensor/index.js';
import { train } from '../../src/train/loop.js';
import { validate } from '../../src/experiment/config.js';

function problem(): { x: Tensor; y: Tensor } {
  manualSeed(0);
  return tidy(() => {
    const x = randn([256, 20]);
    const y = x.narrow(1, 0, 3).mul(2).add(x.narrow(1, 3, 3)).argmax(1); // a learnable labelling, int64 [256]
    return { x, y };
  });
}

function setup(evoOverrides: Record<string, unknown>) {
  manualSeed(1);
  const model = toPopulationModel(new Sequential(new Linear(20, 16), new ReLU(), new Linear(16, 8), new ReLU(), new Linear(8, 3)));
  const e = validate(EvoConfig, { dynamics: 'replicator', eta: 0.05, recordEvery: 5, ...evoOverrides });
  const evo = new EvoPop(model, { ...e, dynamics: e.dynamics as string });
  const opt = new SGD(model.namedParameters(), { lr: 0.1, momentum: 0.9 });
  return { model, evo, opt };
}

function batches(d: { x: Tensor; y: Tensor }) {
  return function* (): Generator<{ x: Tensor; y: Tensor }> {
    for (let s = 0; s < 256; s += 32) yield tidy(() => ({ x: d.x.narrow(0, s, 32).clone(), y: d.y.narrow(0, s, 32).clone() }));
  };
}

const masses = (model: Sequential) => populationLayers(model).map(([, l]) => l.mass.dataSync());

test('selection during training: masses move, are recorded, replicator totals kept, the optimizer never sees them', () => {
  const before = memory().tensors;
  const d = problem();
  const { model, evo, opt } = setup({});
  assert.ok(opt.params.every(([n]) => !n.endsWith('mass')));
  const res = train({ model, optimizer: opt, epochs: 3, trainBatches: batches(d), callbacks: [evo.callback()] });
  assert.ok(res.history[2].trainAccuracy > 0.6, `it learns (${res.history[2].trainAccuracy})`);
  const [m1, m2] = masses(model);
  assert.ok(m1.some((v) => Math.abs(v - 1) > 0.02), 'masses moved');
  assert.ok(Math.abs(m1.reduce((a, b) => a + b, 0) - 16) < 1e-3 && Math.abs(m2.reduce((a, b) => a + b, 0) - 8) < 1e-3, 'replicator conserves each layer');
  assert.deepEqual(evo.trajectory.steps, [0, 5, 8, 10, 15, 16, 20, 24], 'every 5 steps and at each epoch end');
  assert.deepEqual(evo.trajectory.masses['0'][evo.trajectory.steps.length - 1], m1.map((v) => +v.toPrecision(5)));
  assert.ok(populationLayers(model).every(([, l]) => l.probe === null && l.lastLeaf === null), 'probes cleared after training');
  assert.deepEqual(Object.keys(res.history[0].extra), ['extinct', 'massRange']);
  evo.dispose(); opt.dispose(); model.dispose(); d.x.dispose(); d.y.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('every k: the masses change only after steps that are multiples of k', () => {
  const d = problem();
  const { model, evo, opt } = setup({ every: 3, recordEvery: 1 });
  train({ model, optimizer: opt, epochs: 2, trainBatches: batches(d), callbacks: [evo.callback()] });
  const snaps = evo.trajectory.masses['0'];
  const steps = evo.trajectory.steps;
  for (let k = 1; k < steps.length; k++) {
    const changed = snaps[k].some((v, i) => v !== snaps[k - 1][i]);
    assert.equal(changed, (steps[k] - 1) % 3 === 0, `snapshot after step ${steps[k] - 1}`);
  }
  evo.dispose(); opt.dispose(); model.dispose(); d.x.dispose(); d.y.dispose();
});

test('interrupted and resumed from the checkpoint: the same masses, EMA and trajectory as an uninterrupted run', () => {
  const d = problem();
  const dirA = mkdtempSync(join(tmpdir(), 'evo-sel-a-')), dirB = mkdtempSync(join(tmpdir(), 'evo-sel-b-'));
  try {
    const a = setup({ dynamics: 'replicator_mutator', fitness: 'taylor' });
    train({ model: a.model, optimizer: a.opt, epochs: 3, trainBatches: batches(d), callbacks: [a.evo.callback()], checkpointDir: dirA });
    const b1 = setup({ dynamics: 'replicator_mutator', fitness: 'taylor' });
    train({ model: b1.model, optimizer: b1.opt, epochs: 3, trainBatches: batches(d), callbacks: [b1.evo.callback()], checkpointDir: dirB, stopAfterEpochs: 1 });
    const b2 = setup({ dynamics: 'replicator_mutator', fitness: 'taylor' });
    const r = train({ model: b2.model, optimizer: b2.opt, epochs: 3, trainBatches: batches(d), callbacks: [b2.evo.callback()], checkpointDir: dirB });
    assert.equal(r.resumedFrom, 0);
    assert.deepEqual(masses(b2.model), masses(a.model));
    assert.deepEqual(b2.evo.trajectory, a.evo.trajectory);
    for (const s of [a, b1, b2]) { s.evo.dispose(); s.opt.dispose(); s.model.dispose(); }
  } finally {
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
    d.x.dispose(); d.y.dispose();
  }
});
