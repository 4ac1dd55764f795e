import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ArgumentError } from '../../src/core/errors.js';
import { BitSet } from '../../src/evo/bitset.js';
import { bitFlipMutation, twoPointCrossover, uniformCrossover } from '../../src/evo/binary-operators.js';
import { binarySampling } from '../../src/evo/sampling.js';

const within = (x: number, mean: number, sd: number, k = 5) => Math.abs(x - mean) <= k * sd;

test('binarySampling: per-bit probabilities give the expected density; 0 and 1 are exact', () => {
  const n = 20000, rng = new Rng(20);
  const probs = new Float64Array(n);
  for (let i = 0; i < n; i++) probs[i] = i < n / 2 ? 0.1 : 0.8;
  const samples = binarySampling({ probs }).sample(10, rng);
  let lo = 0, hi = 0;
  for (const s of samples) for (let i = 0; i < n; i++) if (s.get(i)) { if (i < n / 2) lo++; else hi++; }
  const m = 10 * n / 2;
  assert.ok(within(lo, 0.1 * m, Math.sqrt(m * 0.09)), `density ${lo / m}`);
  assert.ok(within(hi, 0.8 * m, Math.sqrt(m * 0.16)), `density ${hi / m}`);
  const fixed = binarySampling({ probs: Float64Array.from([0, 1, 1, 0, 1]) }).sample(50, rng);
  for (const s of fixed) assert.deepEqual(Array.from(s.indices()), [1, 2, 4]);
  const scalar = binarySampling({ nBits: 300_000, probs: 0.3 }).sample(1, rng)[0];
  assert.ok(within(scalar.count(), 90_000, Math.sqrt(300_000 * 0.21)));
  assert.throws(() => binarySampling({ probs: Float64Array.from([0.5, 1.5]) }), ArgumentError);
  assert.throws(() => binarySampling({ probs: 0.5 }), ArgumentError);
});

test('bitFlipMutation: flips at rate p, evenly along the genome', () => {
  const n = 100_000, p = 0.01, rng = new Rng(21);
  const mut = bitFlipMutation({ probVar: p });
  let flips = 0, firstHalf = 0;
  for (let t = 0; t < 5; t++) {
    const g = mut.mutate(new BitSet(n), rng);
    for (const i of g.indices()) { flips++; if (i < n / 2) firstHalf++; }
  }
  assert.ok(within(flips, 5 * n * p, Math.sqrt(5 * n * p)), `flips ${flips}`);
  assert.ok(within(firstHalf, flips / 2, Math.sqrt(flips / 4)), `first half ${firstHalf} of ${flips}`);
});

test('bitFlipMutation: default 1/n flips ~1 bit per 300k-bit genome; p = 1 and p = 0', () => {
  const n = 300_000, rng = new Rng(22), trials = 2000;
  const mut = bitFlipMutation({ nBits: n });
  const g = new BitSet(n);
  let flips = 0;
  for (let t = 0; t < trials; t++) {
    flips += mut.mutate(g, rng).count();
    g.words.fill(0);
  }
  assert.ok(within(flips / trials, 1, Math.sqrt(1 / trials)), `flips per genome ${flips / trials}`);
  const all = bitFlipMutation({ probVar: 1 }).mutate(BitSet.fromBits([1, 0, 0, 1, 0]), rng);
  assert.deepEqual(Array.from(all.indices()), [1, 2, 4]);
  assert.equal(bitFlipMutation({ probVar: 1 }).mutate(new BitSet(37), rng).count(), 37);
  assert.equal(bitFlipMutation({ probVar: 0 }).mutate(new BitSet(37), rng).count(), 0);
  assert.throws(() => bitFlipMutation({}), ArgumentError);
});

test('uniformCrossover: every bit comes from one parent, the other child gets the other parent\'s bit, 50/50', () => {
  const n = 10_000, rng = new Rng(23);
  const [p, q] = binarySampling({ nBits: n, probs: 0.5 }).sample(2, rng);
  const cx = uniformCrossover({ prob: 1 });
  const [a, b] = cx.cross([p, q], rng);
  let fromP = 0, differ = 0;
  for (let i = 0; i < n; i++) {
    // Provenance: a takes p's bit or q's bit, and b takes the other one.
    assert.equal(Number(a.get(i)) + Number(b.get(i)), Number(p.get(i)) + Number(q.get(i)));
    if (p.get(i) !== q.get(i)) { differ++; if (a.get(i) === p.get(i)) fromP++; }
  }
  assert.ok(within(fromP, differ / 2, Math.sqrt(differ / 4)), `${fromP} of ${differ} from p`);
  const zeros = new BitSet(n), ones = new BitSet(n);
  ones.words.fill(0xffffffff); ones.clearTail();
  const [c, d] = cx.cross([zeros, ones], rng);
  assert.equal(c.count() + d.count(), n);
  assert.ok(within(c.count(), n / 2, Math.sqrt(n / 4)));
  const [e] = uniformCrossover({ prob: 0 }).cross([zeros, ones], rng);
  assert.ok(e.equals(zeros) && e !== zeros);
});

test('twoPointCrossover: children swap one inner segment and keep their own bits outside it', () => {
  const n = 1000, rng = new Rng(24);
  const zeros = new BitSet(n), ones = new BitSet(n);
  ones.words.fill(0xffffffff); ones.clearTail();
  const cx = twoPointCrossover({ prob: 1 });
  let lengths = 0;
  for (let t = 0; t < 300; t++) {
    const [a, b] = cx.cross([zeros, ones], rng);
    const idx = Array.from(a.indices());
    assert.ok(idx.length > 0 && idx.length < n - 1, 'non-empty inner segment');
    assert.ok(idx[0] >= 1 && idx[idx.length - 1] <= n - 2, 'cuts in 1..n-1');
    assert.equal(idx[idx.length - 1] - idx[0] + 1, idx.length, 'one contiguous segment');
    assert.equal(a.count() + b.count(), n);
    for (const i of idx) assert.ok(!b.get(i));
    lengths += idx.length;
  }
  // Two distinct uniform cuts: expected segment length ~ n/3.
  assert.ok(Math.abs(lengths / 300 / n - 1 / 3) < 0.05, `mean segment ${lengths / 300}`);
  // With arbitrary parents, a child equals its parent outside [c1, c2) and the other inside.
  const [p, q] = binarySampling({ nBits: n }).sample(2, rng);
  const r1 = new Rng(99), r2 = new Rng(99);
  const [a] = cx.cross([p, q], r1);
  const [seg] = cx.cross([zeros, ones], r2);
  for (let i = 0; i < n; i++) assert.equal(a.get(i), seg.get(i) ? q.get(i) : p.get(i));
  assert.throws(() => cx.cross([p, new BitSet(5)], rng), ArgumentError);
});
