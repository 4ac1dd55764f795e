import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ArgumentError } from '../../src/core/errors.js';
import { BitSet } from '../../src/evo/bitset.js';
import { AdaptiveMutation, adaptRate } from '../../src/prune/hier-moea/adaptive-mutation.js';

const rule = { beta: 1, target: 0.2, minRate: 1e-4, maxRate: 0.25 };

test('adaptRate: the 1/5 success rule, multiplicative and clipped', () => {
  assert.equal(adaptRate(0.01, 0.2, rule), 0.01);
  assert.ok(Math.abs(adaptRate(0.01, 0.7, rule) - 0.01 * Math.exp(0.5)) < 1e-15);
  assert.ok(Math.abs(adaptRate(0.01, 0, rule) - 0.01 * Math.exp(-0.2)) < 1e-15);
  assert.equal(adaptRate(0.01, null, rule), 0.01, 'no child went that way: unchanged');
  assert.equal(adaptRate(0.24, 1, rule), 0.25, 'clipped at maxRate');
  assert.equal(adaptRate(1.05e-4, 0, rule), 1e-4, 'clipped at minRate');
  assert.throws(() => adaptRate(0.01, 1.5, rule), ArgumentError);
});

const evenS = (n: number) => Float64Array.from({ length: n }, (_, i) => (i + 0.5) / n);

test('mutation switches off unimportant bits and on important ones, about mu K weights each way', () => {
  const n = 20000;
  const s = evenS(n);
  const mut = new AdaptiveMutation(s, 0.01, rule);
  const rng = new Rng(5);
  const reps = 20;
  const half = () => BitSet.fromBits(Array.from({ length: n }, (_, i) => i % 2)); // K = U = n / 2, s spread alike in both
  let offLow = 0, offHigh = 0, onLow = 0, onHigh = 0;
  for (let r = 0; r < reps; r++) {
    const g = half(), before = g.clone();
    mut.mutate(g, rng);
    for (let i = 0; i < n; i++) {
      if (g.get(i) === before.get(i)) continue;
      if (before.get(i)) { if (s[i] < 0.5) offLow++; else offHigh++; } else if (s[i] < 0.5) onLow++; else onHigh++;
    }
  }
  // At K = U: P(off) = 2 mu (1 - s), P(on) = 2 mu s: mu K switches each way, 3x as likely in the favoured half.
  const within = (got: number, want: number) => Math.abs(got - want) < 4 * Math.sqrt(want / reps) + 1;
  assert.ok(within((offLow + offHigh) / reps, 0.01 * n / 2), `off switches per genome ${(offLow + offHigh) / reps}`);
  assert.ok(within((onLow + onHigh) / reps, 0.01 * n / 2), `on switches per genome ${(onLow + onHigh) / reps}`);
  assert.ok(offLow / offHigh > 2.5 && offLow / offHigh < 3.6, `off ratio ${offLow / offHigh}`);
  assert.ok(onHigh / onLow > 2.5 && onHigh / onLow < 3.6, `on ratio ${onHigh / onLow}`);

  // A sparse genome (K = n / 10): both directions still move about mu K weights, so mutation does
  // not pull it back toward half density.
  let off = 0, on = 0;
  for (let r = 0; r < reps; r++) {
    const g = BitSet.fromBits(Array.from({ length: n }, (_, i) => (i % 10 === 3 ? 1 : 0)));
    const before = g.clone();
    mut.mutate(g, rng);
    for (let i = 0; i < n; i++) if (g.get(i) !== before.get(i)) { if (before.get(i)) off++; else on++; }
  }
  assert.ok(within(off / reps, 0.01 * n / 10) && within(on / reps, 0.01 * n / 10), `sparse genome: off ${off / reps}, on ${on / reps}`);

  // Different rates per direction: off 0.02, on 0.002 (thinning at the larger rate).
  mut.rates = { off: 0.02, on: 0.002 };
  off = 0; on = 0;
  for (let r = 0; r < reps; r++) {
    const g = half(), before = g.clone();
    mut.mutate(g, rng);
    for (let i = 0; i < n; i++) if (g.get(i) !== before.get(i)) { if (before.get(i)) off++; else on++; }
  }
  assert.ok(within(off / reps, 0.02 * n / 2), `off ${off / reps}`);
  assert.ok(within(on / reps, 0.002 * n / 2), `on ${on / reps}`);
});

test('adapt: success per direction from the survivors, then the rule', () => {
  const n = 4000;
  const s = evenS(n);
  const mut = new AdaptiveMutation(s, 0.01, rule);
  const rng = new Rng(9);
  // Five children with every bit set (they can only switch off), five half-set ones mutated while
  // the 'on' rate dominates (they switch on); then the rates go back to 0.01 before adapting.
  const children: BitSet[] = [];
  for (let k = 0; k < 10; k++) {
    const g = new BitSet(n);
    if (k < 5) { g.words.fill(0xffffffff); g.clearTail(); } else for (let i = 0; i < n; i += 2) g.set(i);
    mut.rates = k < 5 ? { off: 0.01, on: 0.01 } : { off: 1e-6, on: 0.05 };
    children.push(mut.mutate(g, rng));
  }
  mut.rates = { off: 0.01, on: 0.01 };
  // Survivors: 4 of the 5 'off' children, 0 of the 'on' ones.
  const survivors = new Set([children[0], children[1], children[2], children[4]]);
  const ad = mut.adapt(children, survivors);
  assert.equal(ad.successOff, 0.8);
  assert.equal(ad.successOn, 0);
  assert.ok(Math.abs(ad.rates.off - 0.01 * Math.exp(0.6)) < 1e-15);
  assert.ok(Math.abs(ad.rates.on - 0.01 * Math.exp(-0.2)) < 1e-15);
  assert.deepEqual(mut.rates, ad.rates);
  // The log was consumed: adapting again without mutations changes nothing.
  const again = mut.adapt(children, survivors);
  assert.equal(again.successOff, null);
  assert.deepEqual(again.rates, ad.rates);
});
