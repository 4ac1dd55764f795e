/**
 * The prune stage on a tiny population model: with validation batches every row carries the
 * validation accuracy (and loss) of the physically pruned model, measured on those batches, beside
 * its test accuracy; after fine-tuning, the fine-tuned validation accuracy too; without them, none.
 * withValidation fills validation fields into stored rows only when a rerun reproduces every stored
 * test number, and names the row and field that differ otherwise. Nothing leaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerializationError } from '../../src/core/errors.js';
import { manualSeed } from '../../src/core/runtime.js';
import { Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import type { Module } from '../../src/nn/module.js';
import { memory, noGrad, rand, randn, tidy, type Tensor } from '../../src/tensor/index.js';
import { evaluate } from '../../src/train/evaluate.js';
import { physicalPrune, populationLayers, pruneStage, scorePopulations, selectKeep, toPopulationModel, withValidation, type StoredRow } from '../../src/prune/evo-pop/index.js';

/** 192 labelled points from a fixed linear rule with noise: rows 0..95 are "validation", 96..191 "test". */
function problem(): { x: Tensor; y: Tensor } {
  manualSeed(0);
  return tidy(() => {
    const x = randn([192, 12]);
    const y = x.narrow(1, 0, 3).mul(2).add(x.narrow(1, 3, 3)).add(randn([192, 3]).mul(0.8)).argmax(1);
    return { x, y };
  });
}

const batches = (d: { x: Tensor; y: Tensor }, start: number) => function* () {
  for (let s = start; s < start + 96; s += 32) yield tidy(() => ({ x: d.x.narrow(0, s, 32).clone(), y: d.y.narrow(0, s, 32).clone() }));
};

function tinyModel(): Module {
  manualSeed(3);
  const model = toPopulationModel(new Sequential(new Linear(12, 16), new ReLU(), new Linear(16, 8), new ReLU(), new Linear(8, 3)));
  tidy(() => noGrad(() => { for (const [, l] of populationLayers(model)) l.mass.copy_(rand([l.size]).mul(2)); }));
  return model;
}

test('pruneStage rows carry the validation accuracy of the pruned model, measured on the validation batches', () => {
  const before = memory().tensors;
  const d = problem();
  const model = tinyModel();
  const val = batches(d, 0), testB = batches(d, 96);
  const fractions = [0.25, 0.5];
  const rows = pruneStage(model, { fractions, criteria: ['mass', 'l2'], seed: 0, testBatches: testB, valBatches: val });
  assert.equal(rows.length, 4);
  let differs = 0;
  for (const r of rows) {
    assert.equal(typeof r.valAccuracy, 'number', `${r.criterion} ${r.fraction}: valAccuracy`);
    assert.equal(typeof r.valLoss, 'number');
    assert.equal(r.finetunedValAccuracy, undefined, 'no fine-tuning asked');
    // the same pruned model, evaluated independently on each split
    const keep = selectKeep(scorePopulations(model, r.criterion), r.fraction);
    const { model: plain } = physicalPrune(model, keep);
    assert.deepEqual(r.kept, [...keep.values()].map((k) => k.length));
    const v = evaluate(plain, val()), t = evaluate(plain, testB());
    assert.equal(r.valAccuracy, v.accuracy);
    assert.equal(r.valLoss, v.loss);
    assert.equal(r.accuracy, t.accuracy);
    assert.ok(r.valAccuracy! > 0 && r.valAccuracy! <= 1);
    if (r.valAccuracy !== r.accuracy || r.valLoss !== r.loss) differs++;
    plain.dispose();
  }
  assert.ok(differs > 0, 'validation and test are different data');
  // without validation batches: no validation fields
  for (const r of pruneStage(model, { fractions, criteria: ['mass'], seed: 0, testBatches: testB })) {
    assert.equal(r.valAccuracy, undefined);
    assert.equal(r.valLoss, undefined);
  }
  // fine-tuned: both fine-tuned accuracies, measured after the fine-tuning
  const ft = pruneStage(model, {
    fractions: [0.5], criteria: ['mass'], seed: 0, testBatches: testB, valBatches: val,
    finetune: (plain) => tidy(() => noGrad(() => { for (const p of plain.parameters()) p.zero_(); })), // a "fine-tuning" with a known outcome: all logits 0
  });
  assert.equal(ft[0].finetunedValAccuracy, evaluateConstant(d.y, 0, 96));
  assert.equal(ft[0].finetunedAccuracy, evaluateConstant(d.y, 96, 96));
  assert.notEqual(ft[0].valAccuracy, ft[0].finetunedValAccuracy);
  model.dispose(); d.x.dispose(); d.y.dispose();
  assert.equal(memory().tensors, before, 'no tensor leaks');
});

/** Accuracy of all-zero logits (argmax = class 0) on labels[start, start + n). */
function evaluateConstant(y: Tensor, start: number, n: number): number {
  return tidy(() => y.narrow(0, start, n).eq(0).sum().item()) / n;
}

test('withValidation adds validation fields only when the rerun reproduces every stored test number', () => {
  const stored: StoredRow[] = [
    { criterion: 'mass', fraction: 0.5, total: 24, removed: 12, kept: [8, 4], params: 183, accuracy: 0.8125, loss: 0.51 },
    { criterion: 'random', fraction: 0.5, total: 24, removed: 12, kept: [7, 5], params: 180, accuracy: 0.5, loss: 1.02 },
  ];
  const fresh: StoredRow[] = [
    { ...stored[1], valAccuracy: 0.48, valLoss: 1.1 },
    { ...stored[0], valAccuracy: 0.79, valLoss: 0.55 },
  ];
  const merged = withValidation(stored, fresh);
  assert.deepEqual(merged, [{ ...stored[0], valAccuracy: 0.79, valLoss: 0.55 }, { ...stored[1], valAccuracy: 0.48, valLoss: 1.1 }], 'stored order, validation added');
  const bad = (patch: Partial<StoredRow>, what: RegExp) => assert.throws(() => withValidation(stored, [{ ...fresh[0] }, { ...fresh[1], ...patch }], 'run/evo.json'),
    (e: unknown) => e instanceof SerializationError && /run\/evo\.json: removing mass@0\.5 again/.test(e.message) && what.test(e.message));
  bad({ accuracy: 0.8126 }, /test accuracy 0\.8126 vs 0\.8125/);
  bad({ loss: 0.5100001 }, /test loss/);
  bad({ kept: [9, 3] }, /kept \[9,3\] vs \[8,4\]/);
  bad({ finetunedAccuracy: 0.9 }, /fine-tuned test accuracy/);
  assert.throws(() => withValidation(stored, [fresh[0]]), (e: unknown) => e instanceof SerializationError && /the rerun gave rows random@0\.5/.test(e.message));
});
