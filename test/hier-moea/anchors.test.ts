import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectAnchors } from '../../src/prune/hier-moea/anchors.js';
import { ArgumentError } from '../../src/core/errors.js';

// [error, kept]; the dense network has error 0.010.
const front = [
  [0.0100, 1.00], // dense
  [0.0102, 0.50],
  [0.0130, 0.20], // heavy with tolerance 0.005: the sparsest at error <= 0.015
  [0.0160, 0.10],
  [0.0200, 0.05], // knee: the front bends here
  [0.2000, 0.03],
  [0.9000, 0.01],
];

test('heavy anchor: the sparsest point within the tolerance of the dense error', () => {
  assert.equal(selectAnchors(front, 0.010, 0.005).heavy, 2);
  assert.equal(selectAnchors(front, 0.010, 0.0).heavy, 0, 'tolerance 0 keeps only points at the dense error');
  assert.equal(selectAnchors(front, 0.010, 0.0065).heavy, 3, '0.016 <= 0.0165');
  assert.equal(selectAnchors(front, 0.010, 0.01).heavy, 4);
});

test('light anchor: the knee of the front, sparser than the heavy anchor', () => {
  const a = selectAnchors(front, 0.010, 0.005);
  assert.equal(a.light, 4);
  assert.equal(a.lightRule, 'knee');
  assert.equal(a.reference, 0.010);
  // Order of the points does not matter.
  const perm = [6, 2, 0, 4, 1, 5, 3];
  const b = selectAnchors(perm.map((i) => front[i]), 0.010, 0.005);
  assert.equal(perm[b.heavy], 2);
  assert.equal(perm[b.light], 4);
});

test('light anchor when the knee of the whole front is not sparser than the heavy anchor', () => {
  // The bend is at kept 0.2 (error 0.012); with a large tolerance the heavy anchor is already past it.
  const f = [[0.010, 1.0], [0.012, 0.2], [0.05, 0.1], [0.08, 0.06], [0.3, 0.02]];
  const a = selectAnchors(f, 0.010, 0.05);
  assert.equal(a.heavy, 2);
  // Knee of {heavy, sparser points}: (0.05,0.1),(0.08,0.06),(0.3,0.02) normalized -> (0,1),(0.12,0.5),(1,0); the middle one.
  assert.equal(a.light, 3);
  assert.equal(a.lightRule, 'knee_below_heavy');
  // A straight sparser part: no bend, the sparser neighbour of the heavy anchor.
  const g = [[0.010, 1.0], [0.012, 0.2], [0.02, 0.15], [0.03, 0.10], [0.04, 0.05]];
  const b = selectAnchors(g, 0.010, 0.01);
  assert.equal(b.heavy, 2);
  assert.equal(b.light, 3);
  assert.equal(b.lightRule, 'neighbour');
  // Nothing sparser: both anchors are the same point.
  const c = selectAnchors([[0.01, 1], [0.011, 0.3]], 0.01, 0.01);
  assert.deepEqual([c.heavy, c.light, c.lightRule], [1, 1, 'heavy']);
});

test('a front more accurate than the dense network: the tolerance counts from its best error', () => {
  // Dense error 0.012, but phase 1 found 0.009 at 60% kept: the heavy anchor must not be worse than that.
  const f = [[0.009, 0.6], [0.011, 0.3], [0.012, 0.2], [0.02, 0.05], [0.5, 0.01]];
  const a = selectAnchors(f, 0.012, 0);
  assert.equal(a.reference, 0.009);
  assert.equal(a.heavy, 0);
  assert.equal(selectAnchors(f, 0.012, 0.002).heavy, 1);
  assert.equal(selectAnchors(f, 0.012, 0.003).heavy, 2);
});

test('bad fronts are rejected', () => {
  assert.throws(() => selectAnchors([], 0.01, 0.005), ArgumentError);
  assert.throws(() => selectAnchors([[0.1, NaN]], 0.01, 0.005), ArgumentError);
  assert.throws(() => selectAnchors([[0.1, 0.2, 0.3]], 0.01, 0.005), ArgumentError);
});
