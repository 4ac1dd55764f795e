/** Schedules: PMP's linear ramp, GMP's cubic, LTH's rounds, at chosen times. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gmpSchedule } from '../../src/prune/methods/gmp.js';
import { cubic, getSchedule, iterative, iterativeRemaining, linear, oneShot, roundsFor, SCHEDULE_NAMES } from '../../src/prune/schedules.js';
import { RegistryError } from '../../src/core/errors.js';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('PMP linear schedule: s(e) = s_f * min(1, (e + 1) / P)', () => {
  // LeNet-300-100 at 98%: P = 80 of 200 epochs.
  const hp = { final: 0.98, phase: 80 };
  close(linear.sparsityAt(0, hp), 0.98 / 80, 'first epoch already prunes');
  close(linear.sparsityAt(39, hp), 0.49, 'halfway through the phase');
  close(linear.sparsityAt(78, hp), 0.98 * 79 / 80, 'one before the end');
  close(linear.sparsityAt(79, hp), 0.98, 'last epoch of the phase');
  close(linear.sparsityAt(199, hp), 0.98, 'after the phase');
  // 78.9% with P = 60.
  close(linear.sparsityAt(29, { final: 0.789, phase: 60 }), 0.3945, 'LeNet 78.9% at epoch 29');
  for (let e = 1; e < 200; e++) assert.ok(linear.sparsityAt(e, hp) >= linear.sparsityAt(e - 1, hp), 'non-decreasing');
});

test('GMP cubic schedule (Zhu & Gupta) and its step plan', () => {
  const hp = { initial: 0, final: 0.9, start: 10, every: 10, updates: 10 };
  close(cubic.sparsityAt(5, hp), 0, 'before t0');
  close(cubic.sparsityAt(10, hp), 0, 'at t0: s_i');
  close(cubic.sparsityAt(60, hp), 0.9 - 0.9 * 0.5 ** 3, 'halfway');
  close(cubic.sparsityAt(110, hp), 0.9, 'end');
  close(cubic.sparsityAt(500, hp), 0.9, 'after the end');
  close(cubic.sparsityAt(35, { ...hp, initial: 0.5 }), 0.9 + (0.5 - 0.9) * 0.75 ** 3, 's_i = 0.5');
  const plan = gmpSchedule({ initial: 0, final: 0.9, startEpoch: 1, endEpoch: 4, frequency: 7 }, 30);
  assert.equal(plan.start, 30);
  assert.equal(plan.end, 119, 'ends on the last step of epoch endEpoch - 1');
  close(cubic.sparsityAt(plan.end, plan), 0.9, 'reaches s_f at the end');
});

test('LTH rounds: 20% of hidden layers, 10% of the output per round (LeNet-300-100)', () => {
  const sizes = [235200, 30000, 1000], rates = [0.2, 0.2, 0.1];
  close(iterative.sparsityAt(2, { rate: 0.2 }), 1 - 0.64, 'global iterative');
  const r7 = iterativeRemaining(sizes, rates, 7), r15 = iterativeRemaining(sizes, rates, 15);
  assert.ok(Math.abs(r7 - 0.2104) < 5e-4, `round 7 leaves ${r7} (Frankle & Carbin: 21.1%)`);
  assert.ok(Math.abs(r15 - 0.0358) < 5e-4, `round 15 leaves ${r15} (3.6%)`);
  assert.equal(roundsFor(sizes, rates, 0.789), 7);
  assert.equal(roundsFor(sizes, rates, 0.964), 15);
  assert.equal(roundsFor(sizes, rates, 0), 0);
});

test('one-shot schedule and the registry', () => {
  close(oneShot.sparsityAt(0, { final: 0.9, at: 3 }), 0, 'before');
  close(oneShot.sparsityAt(3, { final: 0.9, at: 3 }), 0.9, 'at');
  assert.deepEqual(SCHEDULE_NAMES, ['one_shot', 'linear', 'cubic', 'iterative']);
  assert.equal(getSchedule('linear'), linear);
  assert.throws(() => getSchedule('exponential'), (e: Error) => e instanceof RegistryError && /known: one_shot, linear, cubic, iterative/.test(e.message));
});
