import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ArgumentError } from '../../src/core/errors.js';
import { BitSet } from '../../src/evo/bitset.js';

function randomBits(n: number, rng: Rng): BitSet {
  const b = new BitSet(n);
  for (let i = 0; i < n; i++) if (rng.random() < 0.5) b.set(i);
  return b;
}

test('BitSet: get/set/flip/count/clone/indices', () => {
  const b = new BitSet(70);
  b.set(0); b.set(31); b.set(32); b.set(69); b.flip(5); b.flip(5); b.flip(6);
  assert.equal(b.count(), 5);
  assert.deepEqual(Array.from(b.indices()), [0, 6, 31, 32, 69]);
  const c = b.clone();
  c.set(0, false);
  assert.ok(b.get(0) && !c.get(0), 'clone does not alias');
  assert.ok(!b.equals(c));
  assert.throws(() => b.set(70), ArgumentError);
  assert.throws(() => b.flip(-1), ArgumentError);
});

test('BitSet: copyRangeFrom matches a bit-by-bit copy on random ranges', () => {
  const rng = new Rng(3);
  for (let t = 0; t < 200; t++) {
    const n = 1 + rng.int(150);
    const dst = randomBits(n, rng), src = randomBits(n, rng);
    let from = rng.int(n + 1), to = rng.int(n + 1);
    if (from > to) [from, to] = [to, from];
    const expect = dst.clone();
    for (let i = from; i < to; i++) expect.set(i, src.get(i));
    dst.copyRangeFrom(src, from, to);
    assert.ok(dst.equals(expect), `n=${n} [${from}, ${to})`);
  }
});

test('BitSet: bytes round-trip, fromBits, and counts on 300k bits', () => {
  const rng = new Rng(4);
  const n = 300_001;
  const b = randomBits(n, rng);
  const back = BitSet.fromBytes(n, b.toBytes());
  assert.ok(back.equals(b));
  assert.equal(back.count(), b.count());
  assert.ok(Math.abs(b.count() - n / 2) < 5 * Math.sqrt(n / 4));
  assert.deepEqual(Array.from(BitSet.fromBits([1, 0, 1, 1]).indices()), [0, 2, 3]);
  assert.throws(() => BitSet.fromBytes(n, new Uint8Array(3)), ArgumentError);
});
