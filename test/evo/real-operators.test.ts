import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ArgumentError } from '../../src/core/errors.js';
import { polynomialMutation, sbx } from '../../src/evo/real-operators.js';
import { realUniformSampling } from '../../src/evo/sampling.js';

const box = (n: number, lo: number, hi: number) => ({ lower: new Float64Array(n).fill(lo), upper: new Float64Array(n).fill(hi) });

test('sbx: children keep the parents\' mean; ~prob * probVar of the variables cross', () => {
  const n = 20, rng = new Rng(10);
  const cx = sbx({ bounds: box(n, 0, 1) });
  const p = new Float64Array(n).fill(0.4), q = new Float64Array(n).fill(0.6);
  let crossed = 0, total = 0;
  for (let t = 0; t < 2000; t++) {
    const [a, b] = cx.cross([p, q], rng);
    for (let i = 0; i < n; i++) {
      // Parents symmetric about the box centre: both sides have the same beta and the same u.
      assert.ok(Math.abs(a[i] + b[i] - 1) < 1e-12);
      assert.ok(a[i] >= 0 && a[i] <= 1 && b[i] >= 0 && b[i] <= 1);
      if (Math.abs(a[i] - 0.4) > 1e-15 && Math.abs(a[i] - 0.6) > 1e-15) crossed++;
      total++;
    }
  }
  const rate = crossed / total; // 0.9 * 0.5
  assert.ok(Math.abs(rate - 0.45) < 0.02, `crossed fraction ${rate}`);
});

test('sbx: spread factor expands and contracts equally often; larger eta spreads less; sides swap half the time', () => {
  const n = 10, rng = new Rng(11);
  const wide = box(n, -1e3, 1e3); // far bounds: the unbounded distribution
  const p = new Float64Array(n).fill(0), q = new Float64Array(n).fill(1);
  const spread = (eta: number) => {
    const cx = sbx({ bounds: wide, eta, prob: 1, probVar: 1 });
    const betas: number[] = [];
    let swapped = 0;
    for (let t = 0; t < 3000; t++) {
      const [a, b] = cx.cross([p, q], rng);
      for (let i = 0; i < n; i++) { betas.push(Math.abs(a[i] - b[i])); if (a[i] > b[i]) swapped++; }
    }
    const mean = betas.reduce((s, v) => s + v, 0) / betas.length;
    const sd = Math.sqrt(betas.reduce((s, v) => s + (v - mean) ** 2, 0) / betas.length);
    return { expand: betas.filter((b) => b > 1).length / betas.length, mean, sd, swap: swapped / betas.length };
  };
  const s15 = spread(15), s2 = spread(2);
  assert.ok(Math.abs(s15.expand - 0.5) < 0.02, `expand ${s15.expand}`);
  assert.ok(Math.abs(s15.swap - 0.5) < 0.02, `swap ${s15.swap}`);
  assert.ok(Math.abs(s15.mean - 1) < 0.02, `E|c1-c2| ${s15.mean}`);
  assert.ok(s2.sd > 2 * s15.sd, `sd eta=2 ${s2.sd} vs eta=15 ${s15.sd}`);
});

test('sbx: bounds respected from any parents; prob 0 copies without aliasing', () => {
  const n = 8, rng = new Rng(12);
  const bounds = box(n, -2, 3);
  const cx = sbx({ bounds, eta: 1, prob: 1, probVar: 1 });
  const pop = realUniformSampling(bounds).sample(200, rng);
  for (let t = 0; t < 199; t++) {
    for (const c of cx.cross([pop[t], pop[t + 1]], rng)) for (const v of c) assert.ok(v >= -2 && v <= 3);
  }
  const [a, b] = sbx({ bounds, prob: 0 }).cross([pop[0], pop[1]], rng);
  assert.deepEqual(a, pop[0]);
  assert.notEqual(a, pop[0]);
  assert.deepEqual(b, pop[1]);
  assert.throws(() => sbx({ bounds, prob: 2 }), ArgumentError);
  assert.throws(() => cx.cross([pop[0]], rng), ArgumentError);
});

test('polynomialMutation: ~1 variable per genome at probVar = 1/n, zero-mean steps, bounded', () => {
  const n = 30, rng = new Rng(13), trials = 4000;
  const mut = polynomialMutation({ bounds: box(n, 0, 1) });
  let changed = 0, shift = 0;
  for (let t = 0; t < trials; t++) {
    const x = mut.mutate(new Float64Array(n).fill(0.5), rng);
    for (let i = 0; i < n; i++) {
      if (x[i] !== 0.5) { changed++; shift += x[i] - 0.5; }
      assert.ok(x[i] >= 0 && x[i] <= 1);
    }
  }
  // Binomial(30, 1/30) per genome: mean 1, sd of the mean over 4000 genomes ~ 0.016.
  assert.ok(Math.abs(changed / trials - 1) < 0.08, `changed per genome ${changed / trials}`);
  assert.ok(Math.abs(shift / changed) < 0.01, `mean step ${shift / changed}`);
});

test('polynomialMutation: larger eta gives smaller steps; a variable at a bound stays inside', () => {
  const n = 5, rng = new Rng(14);
  const meanStep = (eta: number) => {
    const mut = polynomialMutation({ bounds: box(n, 0, 1), eta, probVar: 1 });
    let s = 0;
    for (let t = 0; t < 2000; t++) {
      const x = mut.mutate(new Float64Array(n).fill(0.5), rng);
      for (const v of x) s += Math.abs(v - 0.5);
    }
    return s / (2000 * n);
  };
  assert.ok(meanStep(5) > 2 * meanStep(50));
  const atBound = polynomialMutation({ bounds: box(n, 0, 1), probVar: 1 });
  for (let t = 0; t < 500; t++) {
    const x = atBound.mutate(Float64Array.from([0, 1, 0, 1, 0]), rng);
    for (const v of x) assert.ok(v >= 0 && v <= 1);
  }
  assert.throws(() => atBound.mutate(new Float64Array(3), rng), ArgumentError);
});
