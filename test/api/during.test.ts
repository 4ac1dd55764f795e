/**
 * pmp, gmp and lth from the API against the CLI's runs (the same masks and weights, element by
 * element, for the same seed), the hand-written loop against train(), and masks enforced after an
 * optimizer step with momentum and weight decay.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { pruneConfigFrom, pruneEnv } from '../../src/cli/prune.js';
import { ArgumentError, ConfigError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { setupData, type DataBundle } from '../../src/experiment/data-setup.js';
import { makeOptimizer } from '../../src/experiment/train-run.js';
import { gmp, lth, pmp, registerSchedule } from '../../src/api/index.js';
import { createModel } from '../../src/models/registry.js';
import type { Module } from '../../src/nn/module.js';
import { SGD } from '../../src/optim/optimizer.js';
import { makeSchedule, type ScheduleName } from '../../src/optim/schedule.js';
import { runPrune } from '../../src/prune/options.js';
import { keepCount } from '../../src/prune/select.js';
import { linear } from '../../src/prune/schedules.js';
import type { PruneTarget } from '../../src/prune/target.js';
import { crossEntropy } from '../../src/tensor/nn-ops.js';
import { loadSafetensors } from '../../src/tensor/safetensors.js';
import { memory, randn, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { train } from '../../src/train/loop.js';
import { DATA, NO_MNIST } from '../prune/helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'topiary-api-'));
const small = (over: Record<string, unknown> = {}) => ({ model: 'mlp', widths: [64, 32], dataset: 'mnist' as const, epochs: 3, batchSize: 64, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, subset: 1000, valFraction: 0.1, threads: 1, seed: 5, ...over });
const yes = (t: () => Tensor) => tidy(() => (t().all().item() ? true : false));

/** The CLI's run; its training config (defaults filled in as the CLI fills them) is what the API path replays. */
async function cli(o: Record<string, unknown>, file = 'masks.safetensors', sub = ''): Promise<{ masks: Record<string, Tensor>; model: Record<string, Tensor>; train: TrainConfig }> {
  const out = tmp();
  const { train: t, prune } = pruneConfigFrom(o);
  await runPrune({ train: t, prune, run: { out, dataDir: DATA } }, pruneEnv);
  return { masks: loadSafetensors(join(out, sub, file)).tensors, model: loadSafetensors(join(out, sub, 'model.safetensors')).tensors, train: t };
}

function same(target: PruneTarget, model: Module, ref: { masks: Record<string, Tensor>; model: Record<string, Tensor> }): void {
  for (const n of target.masks.names) assert.equal(yes(() => target.mask(n).eq(ref.masks[n].to('bool'))), true, `mask ${n}`);
  for (const [n, p] of model.namedParameters()) assert.equal(yes(() => p.eq(ref.model[n])), true, `weights ${n}`);
  for (const t of [...Object.values(ref.masks), ...Object.values(ref.model)]) t.dispose();
}

/** The CLI's run, step for step: seed, data, model, optimizer (runTraining). */
async function setup(tc: TrainConfig): Promise<{ data: DataBundle; model: Module; tc: TrainConfig }> {
  manualSeed(tc.seed);
  const data = await setupData(tc, { dataDir: DATA });
  const model = createModel(tc.model, { inputShape: data.inputShape, numClasses: data.numClasses, widths: tc.widths, init: tc.init });
  return { data, model, tc };
}

test('pmp and gmp callbacks in train(): the CLI masks and weights; pruned weights stay zero with momentum and weight decay', { skip: NO_MNIST }, async () => {
  const before = memory().tensors;
  const c = small();
  // The phase given: the CLI's default phase is a share of the epochs.
  const refPmp = await cli({ ...c, method: 'pmp', sparsity: 0.8, phase: 2 });
  const refGmp = await cli({ ...c, method: 'gmp', sparsity: 0.8, endEpoch: 2, frequency: 5 });
  for (const kind of ['pmp', 'gmp'] as const) {
    const { data, model, tc } = await setup((kind === 'pmp' ? refPmp : refGmp).train);
    const opt = makeOptimizer(model, tc);
    const schedule = makeSchedule({ name: tc.schedule as ScheduleName, epochs: tc.epochs, warmupEpochs: tc.warmupEpochs, milestones: tc.milestones, gamma: tc.gamma });
    const p = kind === 'pmp' ? pmp(model, { sparsity: 0.8, phase: 2 }) : gmp(model, { sparsity: 0.8, endEpoch: 2, frequency: 5, stepsPerEpoch: data.trainLoader.length });
    train({ model, optimizer: opt, epochs: tc.epochs, schedule, labelSmoothing: tc.labelSmoothing, trainBatches: (e) => data.trainLoader.epoch(e), callbacks: [p] });
    assert.equal(p.target.counts().kept, keepCount(p.target.total, 0.8), 'exact final sparsity');
    if (kind === 'pmp') assert.deepEqual(p.updates.map((u) => u.kept), [0, 1, 2].map((e) => keepCount(p.target.total, linear.sparsityAt(e, { final: 0.8, phase: 2 }))));
    else assert.ok(p.updates.length > 3 && p.updates.at(-1)!.target === 0.8, `${p.updates.length} gmp updates`);
    // Pruned weights are exactly zero after the last SGD step (momentum 0.9, weight decay 5e-4).
    for (const n of p.target.weights) assert.equal(yes(() => p.target.param(n).mul(p.target.mask(n).logicalNot()).eq(0)), true, n);
    same(p.target, model, kind === 'pmp' ? refPmp : refGmp);
    p.dispose(); opt.dispose(); model.dispose(); data.dispose();
  }
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('lth: the driver of rounds gives the CLI\'s final masks and weights', { skip: NO_MNIST }, async () => {
  const c = small({ epochs: 1 });
  const ref = await cli({ ...c, method: 'lth', sparsity: 0.5 }, 'masks.safetensors', 'round_4');
  const { data, model, tc } = await setup(ref.train);
  const schedule = makeSchedule({ name: tc.schedule as ScheduleName, epochs: tc.epochs, warmupEpochs: tc.warmupEpochs, milestones: tc.milestones, gamma: tc.gamma });
  const res = await lth(model, { sparsity: 0.5 }, (_round, callbacks) => {
    manualSeed(tc.seed);
    const opt = makeOptimizer(model, tc);
    train({ model, optimizer: opt, epochs: tc.epochs, schedule, labelSmoothing: tc.labelSmoothing, trainBatches: (e) => data.trainLoader.epoch(e), callbacks });
    opt.dispose();
  });
  assert.deepEqual(res.rounds.map((r) => r.round), [0, 1, 2, 3, 4]);
  assert.ok(res.rounds.at(-1)!.achieved >= 0.5 && res.rounds[3].achieved < 0.5, JSON.stringify(res.rounds));
  same(res.target, model, ref);
  res.target.dispose(); model.dispose(); data.dispose();
});

const tiny = () => createModel('mlp', { inputShape: [1, 4, 4], numClasses: 3, widths: [8] });
function batches(n: number, seed: number): { x: Tensor; y: Tensor }[] {
  manualSeed(seed);
  return Array.from({ length: n }, (_, i) => ({ x: randn([5, 1, 4, 4]), y: tensor([0, 1, 2, i % 3, 1], { dtype: 'int64' }) }));
}

test('a hand-written loop with step / maskGrads / maskWeights equals train() with the callback (gmp and pmp)', () => {
  const before = memory().tensors;
  const run = (hand: boolean, kind: 'gmp' | 'pmp' = 'gmp') => {
    manualSeed(1);
    const model = tiny();
    const opt = new SGD(model.namedParameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 });
    const g = kind === 'gmp' ? gmp(model, { sparsity: 0.6, endEpoch: 2, frequency: 2, stepsPerEpoch: 4 }) : pmp(model, { sparsity: 0.6, phase: 2 });
    if (!hand) train({ model, optimizer: opt, epochs: 3, trainBatches: (e) => batches(4, 10 + e), callbacks: [g] });
    else {
      let step = 0;
      model.train();
      for (let e = 0; e < 3; e++) {
        for (const b of batches(4, 10 + e)) {
          tidy(() => {
            g.step(e, step);
            const loss = crossEntropy(model.call(b.x), b.y);
            opt.zeroGrad();
            loss.backward();
            g.maskGrads();
            opt.step();
            g.maskWeights();
          });
          b.x.dispose(); b.y.dispose();
          step++;
        }
      }
    }
    const w = model.namedParameters().map(([, p]) => Array.from(p.dataSync()));
    const u = g.updates.map((x) => [(x as { step?: number }).step ?? (x as { epoch: number }).epoch, x.kept]);
    const kept = g.target.counts().kept;
    g.dispose(); opt.dispose(); model.dispose();
    return { w, u, kept };
  };
  for (const kind of ['gmp', 'pmp'] as const) {
    const a = run(false, kind), b = run(true, kind);
    assert.deepEqual(b.u, a.u, kind);
    assert.equal(b.kept, keepCount(8 * 16 + 3 * 8, 0.6));
    assert.deepEqual(b.w, a.w, kind);
    if (kind === 'pmp') assert.equal(a.u.length, 3, 'one update per epoch');
  }
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('a pmp callback checkpoints with train(): stopped after 2 epochs and resumed, it ends where an uninterrupted run does', () => {
  const run = (stop: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), 'topiary-api-ck-'));
    const once = (stopAfterEpochs?: number) => {
      manualSeed(3);
      const model = tiny();
      const opt = new SGD(model.namedParameters(), { lr: 0.1, momentum: 0.9 });
      const p = pmp(model, { sparsity: 0.7, phase: 3 });
      train({ model, optimizer: opt, epochs: 4, trainBatches: (e) => batches(3, 20 + e), callbacks: [p], checkpointDir: dir, stopAfterEpochs });
      const out = { w: model.namedParameters().map(([, t]) => Array.from(t.dataSync())), kept: p.updates.map((u) => u.kept), sparsity: p.sparsity() };
      p.dispose(); opt.dispose(); model.dispose();
      return out;
    };
    if (stop) once(2);
    return once();
  };
  const a = run(false), b = run(true);
  assert.deepEqual(b.w, a.w);
  assert.deepEqual(b.kept, a.kept, 'the updates come back from the checkpoint');
  assert.equal(b.sparsity, a.sparsity);
});

test('bad input: sparsity, phase, the schedule fields, and a callback used with another model', () => {
  const model = tiny(), other = tiny();
  assert.throws(() => pmp(model, { sparsity: 1, phase: 2 }), (e: Error) => e instanceof ArgumentError && /sparsity/.test(e.message));
  assert.throws(() => pmp(model, { sparsity: 0.5, phase: 0 }), (e: Error) => e instanceof ArgumentError && /phase/.test(e.message));
  assert.throws(() => gmp(model, { sparsity: 0.5, endEpoch: 2, stepsPerEpoch: 0 }), (e: Error) => e instanceof ConfigError && /stepsPerEpoch/.test(e.message));
  assert.throws(() => gmp(model, { sparsity: 0.5, startEpoch: 2, endEpoch: 2, stepsPerEpoch: 3 }), (e: Error) => e instanceof ConfigError && /endEpoch/.test(e.message));
  const p = pmp(model, { sparsity: 0.5, phase: 2 });
  const opt = new SGD(other.namedParameters(), { lr: 0.1 });
  assert.throws(() => train({ model: other, optimizer: opt, epochs: 1, trainBatches: () => batches(1, 0), callbacks: [p] }), (e: Error) => e instanceof ArgumentError && /model/.test(e.message) && /another model/.test(e.message));
  p.dispose(); opt.dispose(); model.dispose(); other.dispose();
});

test('pmp with a registered schedule by name: its sparsities are followed exactly', () => {
  registerSchedule({ name: 'api_test_half_then_all', description: 's_f / 2 until the last phase epoch', hparams: z.object({ final: z.number(), phase: z.number() }),
    sparsityAt: (e, hp) => (e + 1 < hp.phase ? hp.final / 2 : hp.final) });
  assert.throws(() => registerSchedule({ name: 'api_test_half_then_all', description: '', hparams: z.object({}), sparsityAt: () => 0 }), /already registered/);
  const model = tiny();
  const opt = new SGD(model.namedParameters(), { lr: 0.1 });
  const p = pmp(model, { sparsity: 0.8, phase: 3, schedule: 'api_test_half_then_all' });
  train({ model, optimizer: opt, epochs: 4, trainBatches: (e) => batches(2, e), callbacks: [p] });
  const total = p.target.total;
  assert.deepEqual(p.updates.map((u) => u.kept), [0.4, 0.4, 0.8, 0.8].map((s) => keepCount(total, s)));
  p.dispose(); opt.dispose(); model.dispose();
});
