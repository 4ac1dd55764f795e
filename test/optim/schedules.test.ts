/**
 * Learning-rate schedules against torch.optim.lr_scheduler (test/fixtures/nn-optim.json): the lr in
 * force during each epoch for StepLR, MultiStepLR, CosineAnnealingLR, and LinearLR warm-up chained
 * into cosine or step with SequentialLR, as makeSchedule builds them from a config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSchedule, schedules, type ScheduleConfig } from '../../src/optim/index.js';
import { assertClose, fixture } from '../nn/util.js';

interface SchedCase { name: string; config: ScheduleConfig; lr: number[] }
const fx = fixture<{ schedules: SchedCase[] }>('nn-optim.json').schedules;
const BASE = 0.1;

for (const c of fx) {
  test(`schedule: ${c.name} matches PyTorch for ${c.lr.length} epochs`, () => {
    const s = makeSchedule(c.config);
    c.lr.forEach((want, e) => assertClose(BASE * s(e), want, `${c.name}: lr in epoch ${e}`, 1e-9, 1e-12));
  });
}

test('schedules compose: warmup(cosine) rises linearly, then follows cosine shifted by the warm-up', () => {
  const s = schedules.warmup(schedules.cosine(8), 2, 0.25);
  assert.equal(s(0), 0.25);
  assert.equal(s(1), 0.625);
  assert.equal(s(2), 1);
  assertClose(s(6), 0.5, 'half-way through the cosine');
  assertClose(s(10), 0, 'end of the cosine', 0, 1e-12);
  assert.equal(schedules.warmup(schedules.constant(), 0)(0), 1, 'zero warm-up epochs is the schedule itself');
});

test('default milestones and step size follow the epochs', () => {
  const ms = makeSchedule({ name: 'multistep', epochs: 8 });
  // 8 epochs: milestones at 4 and 6 (half and three quarters).
  assert.equal(ms(3), 1);
  assert.equal(ms(4), 0.1);
  assertClose(ms(6), 0.01, 'after the second milestone (3/4 of 8)');
  const st = makeSchedule({ name: 'step', epochs: 9 });
  assert.equal(st(2), 1);
  assertClose(st(3), 0.1, 'step size 9/3');
});

test('bad schedule arguments are refused', () => {
  assert.throws(() => schedules.step(0), /stepSize must be positive, got 0/);
  assert.throws(() => schedules.cosine(0), /total epochs must be positive/);
  assert.throws(() => schedules.warmup(schedules.constant(), -1), /epochs must be non-negative/);
  assert.throws(() => makeSchedule({ name: 'bogus' as 'step', epochs: 3 }), /unknown schedule 'bogus' \(known: constant, step, multistep, cosine\)/);
});
