import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';

test('Rng: equal seeds give equal streams, different seeds differ', () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const xa = Array.from({ length: 8 }, () => a.nextU32());
  const xb = Array.from({ length: 8 }, () => b.nextU32());
  const xc = Array.from({ length: 8 }, () => c.nextU32());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
});

test('Rng: uniform moments and permutation validity', () => {
  const r = new Rng(1);
  let s = 0, s2 = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) { const u = r.random(); assert.ok(u >= 0 && u < 1); s += u; s2 += u * u; }
  assert.ok(Math.abs(s / n - 0.5) < 0.01);
  assert.ok(Math.abs(s2 / n - s * s / n / n - 1 / 12) < 0.005);
  const p = r.permutation(100);
  assert.deepEqual(Array.from(p).sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
});

test('Rng: state round-trips', () => {
  const r = new Rng(7);
  r.nextU32();
  const st = r.getState();
  const a = [r.random(), r.random()];
  r.setState(st);
  assert.deepEqual([r.random(), r.random()], a);
});
