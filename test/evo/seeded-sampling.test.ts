import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { BitSet } from '../../src/evo/bitset.js';
import { binarySampling, seededSampling } from '../../src/evo/sampling.js';

const bits = (s: string) => { const b = new BitSet(s.length); for (let i = 0; i < s.length; i++) if (s[i] === '1') b.set(i, true); return b; };
const str = (b: BitSet) => Array.from({ length: b.length }, (_, i) => (b.get(i) ? '1' : '0')).join('');

test('seeded sampling: the seeds first (copies), the rest from the base sampling', () => {
  const seeds = [bits('1100'), bits('0011')];
  const s = seededSampling(seeds, binarySampling({ nBits: 4, probs: 0 }), { clone: (g) => g.clone() });
  const pop = s.sample(6, new Rng(1));
  assert.deepEqual(pop.map(str), ['1100', '0011', '0000', '0000', '0000', '0000']);
  pop[0].set(3, true);
  assert.equal(str(seeds[0]), '1100', 'the population holds copies');
});

test('seeded sampling: at most maxShare of the population, evenly spaced through the seeds', () => {
  const seeds = ['10000', '01000', '00100', '00010', '00001'].map(bits);
  const s = seededSampling(seeds, binarySampling({ nBits: 5, probs: 1 }), { clone: (g) => g.clone(), maxShare: 0.5 });
  const pop = s.sample(6, new Rng(2));
  assert.deepEqual(pop.map(str), ['10000', '00100', '00001', '11111', '11111', '11111']);
  assert.equal(seededSampling([], binarySampling({ nBits: 5, probs: 1 }), { clone: (g) => g.clone() }).sample(3, new Rng(0)).map(str).join(), '11111,11111,11111');
  assert.throws(() => seededSampling(seeds, binarySampling({ nBits: 5 }), { clone: (g) => g.clone(), maxShare: 2 }), /maxShare must be in \[0, 1\]/);
});
