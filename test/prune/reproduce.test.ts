/** The plan of `topiary reproduce pmp`: every budget runs the same experiments, with the epochs scaled. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PMP_BUDGETS, pmpExperiments } from '../../src/experiment/reproduce-pmp.js';
import { getReproduction } from '../../src/experiment/reproduce.js';

test('the PMP table: the paper\'s settings under the full budget, scaled ones under the others', () => {
  assert.equal(getReproduction('pmp').name, 'pmp');
  const full = pmpExperiments(PMP_BUDGETS.full);
  const byId = new Map(full.map((e) => [e.id, e]));
  assert.equal(full.length, 25);
  assert.deepEqual([byId.get('pmp_789')!.train.epochs, byId.get('pmp_789')!.prune!.phase, byId.get('pmp_789')!.train.lr], [160, 60, 0.1]);
  assert.deepEqual([byId.get('pmp_98')!.train.epochs, byId.get('pmp_98')!.prune!.phase, byId.get('pmp_98')!.train.lr], [200, 80, 0.05]);
  assert.deepEqual(byId.get('pmp_98')!.train.augment, { rotation: 12, translation: 0.12, interpolation: 'nearest' });
  assert.equal(byId.get('pmp_789')!.train.warmupEpochs, 1);
  // SNIP's figures belong to the SNIP paper's own training (multistep at 25k and 50k iterations of batch 100).
  assert.equal(byId.get('snip_own_95')!.paper, '98.4 (error 1.6)');
  assert.equal(byId.get('snip_95')!.paper, undefined);
  assert.deepEqual([byId.get('snip_own_98')!.train.epochs, byId.get('snip_own_98')!.train.milestones, byId.get('snip_own_98')!.train.batchSize], [140, [47, 94], 100]);
  assert.equal(byId.get('grasp_own_98')!.train, byId.get('snip_own_98')!.train);
  assert.deepEqual(byId.get('lth')!.prune!.controlRounds, [7, 15]);
  assert.equal(byId.get('lth')!.train.epochs, 56);
  const reduced = new Map(pmpExperiments(PMP_BUDGETS.reduced).map((e) => [e.id, e]));
  assert.deepEqual([reduced.get('pmp_789')!.train.epochs, reduced.get('pmp_789')!.prune!.phase], [16, 6]);
  assert.deepEqual([reduced.get('pmp_98')!.train.epochs, reduced.get('pmp_98')!.prune!.phase], [20, 8]);
  assert.equal(reduced.get('pmp_98')!.train.subset, undefined, 'reduced keeps the full data');
  assert.deepEqual(reduced.get('snip_own_95')!.train.milestones, [5, 9]);
  const smoke = pmpExperiments(PMP_BUDGETS.smoke);
  assert.deepEqual(smoke.map((e) => e.id), full.map((e) => e.id), 'the same experiments');
  assert.ok(smoke.every((e) => e.train.subset === 4000 && (e.train.epochs as number) <= 3));
});
