/** hierMoea and the ask/tell loop against `topiary search`'s run from the same checkpoint: the same Pareto set and masks. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ArgumentError, ConfigError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { DataLoader } from '../../src/data/loader.js';
import { TrainConfig, validate } from '../../src/experiment/config.js';
import { setupData } from '../../src/experiment/data-setup.js';
import { runHierMoea } from '../../src/experiment/reproduce-hier-moea.js';
import { runTraining } from '../../src/experiment/train-run.js';
import { hierMoea, hierMoeaLoop, toMaskSet } from '../../src/api/index.js';
import { createModel } from '../../src/models/registry.js';
import { SearchConfig } from '../../src/prune/hier-moea/config.js';
import { MaskedEvaluator } from '../../src/prune/hier-moea/evaluator.js';
import { PrunableLayout } from '../../src/prune/hier-moea/layout.js';
import { loadMaskBits } from '../../src/prune/hier-moea/mask-io.js';
import { loadSafetensors } from '../../src/tensor/safetensors.js';
import { memory, tidy } from '../../src/tensor/index.js';
import { DATA, NO_MNIST } from '../prune/helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'topiary-api-hm-'));
const dense = { model: 'mlp', widths: [32], dataset: 'mnist' as const, epochs: 1, batchSize: 64, lr: 0.05, momentum: 0.9, subset: 1000, valFraction: 0.2, threads: 1, seed: 4 };
const search = { pop: 6, phase1Gens: 3, phase2Gens: 3, valSize: 150, finetuneEpochs: 0, seed: 1 };

test('hierMoea and hierMoeaLoop: the Pareto set and masks of topiary search, for the same checkpoint and seed', { skip: NO_MNIST }, async () => {
  const denseDir = tmp();
  const d = await runTraining(validate(TrainConfig, dense), { out: denseDir, dataDir: DATA });
  d.model.dispose(); d.data.dispose();
  const from = join(denseDir, 'model.safetensors');
  const cliOut = tmp();
  const cli = await runHierMoea(validate(SearchConfig, { ...search, from }), { out: cliOut, dataDir: DATA });
  assert.equal(cli.completed, true);

  const before = memory().tensors;
  const tc = validate(TrainConfig, dense);
  manualSeed(search.seed);
  const data = await setupData(tc, { dataDir: DATA, evalBatchSize: 250 });
  const model = createModel('mlp', { inputShape: data.inputShape, numClasses: data.numClasses, widths: tc.widths });
  const { tensors } = loadSafetensors(from);
  model.loadStateDict(tensors);
  Object.values(tensors).forEach((t) => t.dispose());
  const r = await hierMoea(model, { train: data.trainLoader, val: data.valLoader!, test: data.testLoader }, { ...search, out: tmp() });
  assert.deepEqual(r.solutions.map((s) => [s.valError, s.kept, s.phase]), cli.solutions.map((s) => [s.valError, s.kept, s.phase]));
  assert.equal(r.knee, cli.knee);
  const layout = new PrunableLayout(model);
  const cliBits = loadMaskBits(join(cliOut, 'pareto-masks.safetensors'), layout);
  r.solutions.forEach((s, i) => assert.deepEqual(s.masks, layout.fromBits(cliBits[i]), `solution ${i}`));
  const ms = toMaskSet(model, r.solutions[r.knee].masks);
  assert.equal(ms.counts().kept, Math.round(r.solutions[r.knee].kept * layout.total));
  ms.dispose();

  // The same search, ask/tell, told the evaluator's error and the kept fraction.
  const valSub = new DataLoader({ dataset: data.valLoader!.dataset, indices: data.valLoader!.indices.slice(0, search.valSize) }, { batchSize: 250 });
  const ev = new MaskedEvaluator(model, layout, { val: [...valSub.epoch(0)].map((b) => ({ x: b.x, y: b.y })), calib: [] });
  const loop = hierMoeaLoop(model, { pop: search.pop, phase1Gens: search.phase1Gens, phase2Gens: search.phase2Gens, seed: search.seed });
  let asked = 0;
  for (let c = loop.ask(); c; c = loop.ask()) {
    asked += c.length;
    loop.tell(c.map((x) => [x.phase === 0 ? ev.denseError().error : ev.evaluate(x.masks).error, x.kept]));
  }
  assert.equal(asked, 1 + search.pop * (search.phase1Gens + search.phase2Gens));
  const front = loop.front();
  assert.deepEqual(front.map((p) => [p.objectives[0], p.kept, p.phase]), cli.solutions.map((s) => [s.valError, s.kept, s.phase]));
  front.forEach((p, i) => assert.deepEqual(p.masks, r.solutions[i].masks));
  // apply() writes a candidate's masks into the weights; restore() puts the dense ones back.
  const w = () => tidy(() => layout.params[0].countNonzero().item());
  ev.restore();
  const full = w();
  assert.equal(full, layout.sizes[0]);
  loop.apply(front[0].masks);
  assert.equal(w(), front[0].masks[0].reduce((a, b) => a + b, 0));
  loop.restore();
  assert.equal(w(), full);
  assert.throws(() => loop.tell([[0, 0]]), (e: Error) => e instanceof ArgumentError && /nothing was asked/.test(e.message));
  loop.dispose(); ev.dispose(); model.dispose(); data.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

test('ask/tell with custom objectives: a wrong count or a non-finite value is refused; bad options name the field', () => {
  const model = createModel('mlp', { inputShape: [1, 4, 4], numClasses: 3, widths: [8] });
  assert.throws(() => hierMoeaLoop(model, { pop: 2 }), (e: Error) => e instanceof ConfigError && /pop/.test(e.message));
  const loop = hierMoeaLoop(model, { pop: 4, phase1Gens: 2, phase2Gens: 1 });
  const dense = loop.ask()!;
  assert.equal(dense.length, 1);
  assert.equal(dense[0].phase, 0);
  assert.throws(() => loop.tell([[0.1, 1], [0.2, 1]]), /1 candidates asked, 2 told/);
  assert.throws(() => loop.tell([[0.1, Number.NaN]]), /objectives\[0\]/);
  loop.tell([[0.1, 1]]);
  // A "latency" objective: the cost of a candidate is its first layer's kept weights, squared.
  let rounds = 0;
  for (let c = loop.ask(); c; c = loop.ask()) { rounds++; loop.tell(c.map((x) => [1 - x.kept / 2, (x.masks[0].reduce((a, b) => a + b, 0) / x.masks[0].length) ** 2])); }
  assert.equal(rounds, 3);
  const f = loop.front();
  assert.ok(f.length >= 1);
  for (let i = 1; i < f.length; i++) assert.ok(f[i].objectives[1] >= f[i - 1].objectives[1] && f[i].objectives[0] < f[i - 1].objectives[0]);
  loop.dispose(); model.dispose();
});
