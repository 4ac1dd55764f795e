/**
 * Each selection rule against a step computed by hand on a tiny layer of three populations
 * (m = [1, 2, 1], f = [3, 1, 0], eta = 0.1), the replicator's conservation of mass, extinction
 * (permanent under every rule), and the within-layer normalization.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RegistryError } from '../../src/core/errors.js';
import { DYNAMICS, DYNAMICS_NAMES, getDynamics, normalizeFitness, selectionStep, type DynamicsParams } from '../../src/prune/evo-pop/index.js';

const P: DynamicsParams & { epsilon: number } = { eta: 0.1, mu: 0.05, cost: 'mean', mMax: 4, epsilon: 1e-3 };
const close = (got: number[], want: number[], tol = 1e-5, what = '') =>
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= tol, `${what}[${i}]: got ${g}, want ${want[i]} (all: ${got})`));

const vec = (xs: number[]) => Float64Array.from(xs);

/** Run one selection step on fresh masses; returns the new masses and the number that died. */
function step(name: string, m: number[], f: number[], p = P): { m: number[]; died: number } {
  const mass = vec(m);
  const died = selectionStep(mass, vec(f), getDynamics(name), p);
  return { m: Array.from(mass), died: died.length };
}

test('replicator: m_i += eta m_i (f_i - fbar), fbar mass-weighted', () => {
  // fbar = (1*3 + 2*1 + 1*0) / 4 = 1.25
  const { m } = step('replicator', [1, 2, 1], [3, 1, 0]);
  close(m, [1 + 0.1 * 1 * 1.75, 2 + 0.1 * 2 * -0.25, 1 + 0.1 * 1 * -1.25], 1e-6, 'replicator');
  close(m, [1.175, 1.95, 0.875], 1e-6);
});

test('exponential: m_i = M m_i exp(eta f_i) / sum_j m_j exp(eta f_j)', () => {
  const w = [Math.exp(0.3), 2 * Math.exp(0.1), 1];
  const s = w[0] + w[1] + w[2];
  const { m } = step('exponential', [1, 2, 1], [3, 1, 0]);
  close(m, w.map((x) => (4 * x) / s), 1e-6, 'exponential');
  close(m, [1.184035, 1.938812, 0.877154], 1e-5);
});

test('growth_decay: cost = layer mean or fixed, clipped to [0, m_max]', () => {
  const c = 4 / 3; // mean fitness over the living populations
  close(step('growth_decay', [1, 2, 1], [3, 1, 0]).m, [1 + 0.1 * (3 - c), 2 + 0.2 * (1 - c), 1 + 0.1 * -c], 1e-6, 'mean cost');
  close(step('growth_decay', [1, 2, 1], [3, 1, 0], { ...P, cost: 2 }).m, [1 + 0.1 * (3 - 2), 2 + 0.2 * (1 - 2), 1 + 0.1 * -2], 1e-6, 'fixed cost');
  close(step('growth_decay', [1, 2, 1], [3, 1, 0], { ...P, mMax: 1.1 }).m, [1.1, 1.1, 1 - 0.1 * c], 1e-6, 'clipped at m_max');
  // a large negative step clips at 0 and the population goes extinct
  const r = step('growth_decay', [1, 2, 1], [3, 1, -20], { ...P, cost: 0 });
  assert.equal(r.m[2], 0);
  assert.equal(r.died, 1);
});

test('replicator_mutator: replicator + mu (mean mass - m_i)', () => {
  const mbar = 4 / 3;
  const sel = [0.175, -0.05, -0.125];
  const want = [1, 2, 1].map((m, i) => m + sel[i] + 0.05 * (mbar - m));
  close(step('replicator_mutator', [1, 2, 1], [3, 1, 0]).m, want, 1e-6, 'mutator');
  close(want, [1.1916667, 1.9166667, 0.8916667], 1e-6);
});

test('replicator conserves the total mass of the layer, over many steps and through extinction', () => {
  const n = 50;
  const mass = vec(Array.from({ length: n }, (_, i) => 0.5 + (i % 7) / 7));
  const total0 = mass.reduce((a, b) => a + b, 0);
  let dead = 0;
  for (let s = 0; s < 200; s++) {
    const f = vec(Array.from({ length: n }, (_, i) => Math.sin(i * 1.3 + s * 0.01) + (i < 10 ? -3 : 0)));
    dead += selectionStep(mass, f, DYNAMICS.replicator, { ...P, eta: 0.2, epsilon: 1e-2 }).length;
    const total = mass.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - total0) < 1e-9, `step ${s}: total ${total} vs ${total0}`);
  }
  assert.ok(dead >= 10, `the ten populations with fitness -3 went extinct (dead: ${dead})`);
  for (let i = 0; i < 10; i++) assert.equal(mass[i], 0);
});

test('extinction: a mass below epsilon becomes 0 and stays 0 under every rule, whatever its fitness', () => {
  for (const name of DYNAMICS_NAMES) {
    const mass = vec([1, 0.02, 1, 1]);
    // population 1 is driven below epsilon = 0.01 ...
    const died = selectionStep(mass, vec([1, -30, 1, 0.5]), getDynamics(name), { ...P, eta: 0.5, cost: 0, epsilon: 0.01 });
    assert.deepEqual(died, [1], `${name}: one extinction`);
    assert.equal(mass[1], 0, `${name}: mass set to 0`);
    // ... then gets the best fitness for many steps, and must not come back (mutation included).
    for (let s = 0; s < 20; s++) selectionStep(mass, vec([0, 100, 0, -1]), getDynamics(name), { ...P, eta: 0.05, mu: 0.2, cost: 0, epsilon: 0.01 });
    assert.equal(mass[1], 0, `${name}: extinction is permanent`);
    assert.ok(mass.every((v) => Number.isFinite(v) && v >= 0), `${name}: masses stay finite and non-negative`);
  }
});

test('normalization: scale by the mean |fitness| of living populations, sign and zero kept, dead at 0', () => {
  const f = normalizeFitness(vec([2, -1, 5, 3]), [1, 1, 0, 1]);
  const s = (2 + 1 + 3) / 3;
  close(Array.from(f), [2 / s, -1 / s, 0, 3 / s], 1e-12);
});

test('unknown dynamics lists the known names', () => {
  assert.throws(() => getDynamics('lamarck'), (e: unknown) => e instanceof RegistryError && /replicator, exponential, growth_decay, replicator_mutator/.test((e as Error).message));
});
