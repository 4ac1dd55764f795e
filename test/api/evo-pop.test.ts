/** EVO-POP from the API against `topiary evo`'s run (the same smaller model, tensor for tensor), units, registries. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { setupData } from '../../src/experiment/data-setup.js';
import { runEvoPop } from '../../src/experiment/reproduce-evo-pop.js';
import { makeOptimizer } from '../../src/experiment/train-run.js';
import { dynamics, fitness, populationModel, registerDynamics, registerFitness, removeByMass, selection } from '../../src/api/index.js';
import { createModel } from '../../src/models/registry.js';
import { makeSchedule, type ScheduleName } from '../../src/optim/schedule.js';
import { SGD } from '../../src/optim/optimizer.js';
import { EvoConfig } from '../../src/prune/evo-pop/config.js';
import { loadPruned } from '../../src/prune/evo-pop/physical.js';
import { populationLayers } from '../../src/prune/evo-pop/population-layer.js';
import { memory, randn, tensor, tidy } from '../../src/tensor/index.js';
import { train } from '../../src/train/loop.js';
import { DATA, NO_MNIST } from '../prune/helpers.js';

const cfg = { model: 'mlp', widths: [48, 24], dataset: 'mnist' as const, epochs: 1, batchSize: 64, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, schedule: 'cosine', subset: 1000, valFraction: 0.1, threads: 1, seed: 2 };

test('populationModel + selection + removeByMass: the model topiary evo saves, tensor for tensor', { skip: NO_MNIST }, async () => {
  const tc = validate(TrainConfig, cfg);
  const e = validate(EvoConfig, { dynamics: 'replicator', fitness: 'gradient', eta: 0.05, pruneAt: [0.4], criteria: ['mass'], recordEvery: 5 });
  const out = mkdtempSync(join(tmpdir(), 'topiary-api-evo-'));
  const s = await runEvoPop(tc, e, { out, dataDir: DATA });
  const before = memory().tensors;
  manualSeed(tc.seed);
  const data = await setupData(tc, { dataDir: DATA });
  const pop = populationModel(createModel('mlp', { inputShape: data.inputShape, numClasses: data.numClasses, widths: tc.widths, init: tc.init }), { units: 'neurons' });
  const opt = makeOptimizer(pop, tc);
  const sel = selection(pop, { dynamics: 'replicator', fitness: 'gradient', eta: 0.05, recordEvery: 5 });
  train({ model: pop, optimizer: opt, epochs: tc.epochs, schedule: makeSchedule({ name: tc.schedule as ScheduleName, epochs: tc.epochs, warmupEpochs: tc.warmupEpochs }),
    trainBatches: (ep) => data.trainLoader.epoch(ep), callbacks: [sel] });
  assert.deepEqual(sel.extinct(), s.extinct);
  assert.ok(sel.trajectory.steps.length > 2);
  const r = removeByMass(pop, 0.4);
  assert.equal(r.total, 72);
  assert.equal(r.removed, Math.round(0.4 * 72));
  const ref = loadPruned(join(out, 'pruned_mass_0.4'));
  assert.deepEqual(r.architecture, ref.architecture);
  const mine = r.model.stateDict(), theirs = ref.model.stateDict();
  assert.deepEqual(Object.keys(mine), Object.keys(theirs));
  for (const n of Object.keys(mine)) assert.equal(tidy(() => (mine[n].eq(theirs[n]).all().item() ? 1 : 0)), 1, n);
  // The smaller model computes what the masked population model does (the removal test of physical.ts, from here).
  assert.ok(r.model.numParameters() < pop.numParameters());
  ref.model.dispose(); r.model.dispose(); opt.dispose(); pop.dispose(); data.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('units: neurons, filters, both; heads refused by name; bad fractions and models', () => {
  const lenet = () => createModel('lenet5', { inputShape: [1, 28, 28], numClasses: 10 });
  const kinds = (m: ReturnType<typeof populationModel>) => populationLayers(m).map(([, l]) => l.kind);
  let m = populationModel(lenet(), { units: 'filters' });
  assert.deepEqual(kinds(m), ['conv', 'conv']);
  m.dispose();
  m = populationModel(lenet(), { units: 'neurons' });
  assert.deepEqual(kinds(m), ['linear']);
  m.dispose();
  m = populationModel(lenet());
  assert.deepEqual(kinds(m), ['conv', 'conv', 'linear']);
  assert.throws(() => removeByMass(m, 1), /fraction/);
  m.dispose();
  assert.throws(() => populationModel(lenet(), { units: 'heads' }), (e: Error) => e instanceof ConfigError && /units: 'heads'/.test(e.message));
  const mlp = createModel('mlp', { inputShape: [1, 28, 28], numClasses: 10 });
  assert.throws(() => populationModel(mlp, { units: 'filters' }), (e: Error) => e instanceof ConfigError && /no population-scalable layer/.test(e.message));
  assert.throws(() => selection(mlp), /no population layer/);
  assert.throws(() => removeByMass(mlp, 0.5), /no population layer/);
  mlp.dispose();
});

test('a registered dynamic and fitness: usable by name in selection() and in topiary evo\'s options; bad values rejected by their schema', () => {
  assert.throws(() => validate(EvoConfig, { dynamics: 'api_test_greedy' }), /unknown dynamics 'api_test_greedy' \(known: replicator/);
  assert.throws(() => registerDynamics({ name: 'Bad Name', description: '', conserves: true, update: (m: Float64Array) => m } as never), (e: Error) => e instanceof ConfigError && /name/.test(e.message));
  assert.throws(() => registerDynamics({ name: 'api_test_x', description: '', conserves: true } as never), (e: Error) => e instanceof ConfigError && /update/.test(e.message));
  assert.throws(() => registerDynamics({ name: 'none', description: '', conserves: true, update: (m) => m }), /already registered/);
  // Halve every mass each step: after k steps m = 0.5^k exactly, so extinction (epsilon 0.1) comes at step 4.
  registerDynamics({ name: 'api_test_greedy', description: 'm / 2', conserves: false, update: (m) => m.map((v) => v / 2) });
  registerFitness({ name: 'api_test_ones', description: 'f = 1', probe: 'activation', measure: (l) => fitness.activation.measure(l).mul(0).add(1) });
  assert.equal(dynamics.api_test_greedy.name, 'api_test_greedy');
  assert.equal(validate(EvoConfig, { dynamics: 'api_test_greedy', fitness: 'api_test_ones' }).dynamics, 'api_test_greedy');
  const pop = populationModel(createModel('mlp', { inputShape: [1, 4, 4], numClasses: 3, widths: [6] }));
  const opt = new SGD(pop.namedParameters(), { lr: 0.01 });
  const sel = selection(pop, { dynamics: 'api_test_greedy', fitness: 'api_test_ones', epsilon: 0.1 });
  const batch = () => [{ x: randn([4, 1, 4, 4]), y: tensor([0, 1, 2, 0], { dtype: 'int64' }) }];
  train({ model: pop, optimizer: opt, epochs: 3, trainBatches: batch, callbacks: [sel] });
  assert.deepEqual(Array.from(populationLayers(pop)[0][1].mass.dataSync()), new Array(6).fill(0.125));
  train({ model: pop, optimizer: opt, epochs: 1, trainBatches: batch, callbacks: [sel] });
  assert.deepEqual(Object.values(sel.extinct()), [6]);
  const other = populationModel(createModel('mlp', { inputShape: [1, 4, 4], numClasses: 3, widths: [6] }));
  const opt2 = new SGD(other.namedParameters(), { lr: 0.01 });
  assert.throws(() => train({ model: other, optimizer: opt2, epochs: 1, trainBatches: batch, callbacks: [sel] }), /selection: model: this callback was made for another model/);
  opt2.dispose(); other.dispose();
  opt.dispose(); pop.dispose();
});

test('topiary --plugin registers a dynamic and a fitness that topiary evo then takes by name', { skip: NO_MNIST }, () => {
  const root = join(import.meta.dirname, '..', '..');
  const dir = mkdtempSync(join(tmpdir(), 'topiary-api-evo-plugin-'));
  const plugin = join(dir, 'halving.mts'); // an ES module wherever it lies (a .ts outside a "type": "module" package is CommonJS)
  writeFileSync(plugin, `import { registerDynamics, registerFitness, fitness } from ${JSON.stringify(join(root, 'src', 'index.ts'))};
registerDynamics({ name: 'halving', description: 'm / 2 each step', conserves: false, update: (m) => m.map((v) => v / 2) });
registerFitness({ name: 'plain_activation', description: 'the activation fitness', probe: 'activation', measure: (l) => fitness.activation.measure(l) });
`);
  const args = ['bin/topiary.js', '--plugin', plugin, 'evo', '--dynamics', 'halving', '--fitness', 'plain_activation', '--epsilon', '0.001', '--model', 'mlp', '--widths', '16',
    '--dataset', 'mnist', '--epochs', '1', '--subset', '300', '--batch-size', '100', '--prune-at', '0.25', '--criteria', 'mass', '--threads', '1', '--out', join(dir, 'run'), '--json'];
  const r = spawnSync(process.execPath, args, { cwd: root, env: { ...process.env, TOPIARY_DATA: DATA }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { dynamics: string; fitness: string; extinct: Record<string, number> };
  assert.equal(s.dynamics, 'halving');
  assert.equal(s.fitness, 'plain_activation');
  // 270 training examples in batches of 100: 3 steps of halving leave 0.125, above epsilon: none extinct.
  assert.deepEqual(Object.values(s.extinct), [0]);
  const bad = spawnSync(process.execPath, ['bin/topiary.js', 'evo', '--dynamics', 'halving', '--epochs', '1'], { cwd: root, env: { ...process.env, TOPIARY_DATA: DATA }, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /dynamics: unknown dynamics 'halving' \(known: replicator, exponential, growth_decay, replicator_mutator, none\)/);
});
