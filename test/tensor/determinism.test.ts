/**
 * Reproducibility: manualSeed fixes every random op (the values themselves are checked against
 * PyTorch in ops.test.ts), the generator state round-trips, and the thread count round-trips.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getNumThreads, getRngState, manualSeed, setNumThreads, setRngState } from '../../src/core/runtime.js';
import {
  F, Tensor, bernoulli, dispose, matmul, memory, multinomial, ones, rand, randint, randn, randperm, tensor, tidy, zeros,
} from '../../src/tensor/index.js';

const startTensors = memory().tensors;

/** Every random source once, in a fixed order; flat numbers out. */
function draws(): number[][] {
  return tidy(() => [
    rand([7]), randn([33]), rand([2, 3], { dtype: 'float64' }), randint(-3, 9, [12]), randperm(15),
    bernoulli(tensor([0.2, 0.5, 0.8, 0.5, 0.5, 0.1])), bernoulli(zeros([10]), 0.4),
    F.dropout(ones([20]), 0.3, true), multinomial(tensor([0.1, 0.6, 0.3]), 5, true),
    zeros([6]).uniform_(-1, 1), zeros([18]).normal_(2, 3), zeros([9]).bernoulli_(0.5),
  ].map((t: Tensor) => t.dataSync()));
}

test('manualSeed makes every random op reproducible', () => {
  manualSeed(1234);
  const a = draws();
  manualSeed(1234);
  const b = draws();
  assert.deepEqual(a, b);
  manualSeed(1235);
  const c = draws();
  for (const k of [0, 1, 2, 3, 4, 9, 10]) assert.notDeepEqual(a[k], c[k], `draw ${k} depends on the seed`);
  // Without reseeding the stream moves on.
  const d = draws();
  assert.notDeepEqual(c[1], d[1]);
});

test('draws have the right ranges and structure', () => {
  manualSeed(5);
  tidy(() => {
    const u = rand([2000]).dataSync();
    assert.ok(u.every((v) => v >= 0 && v < 1));
    const mean = u.reduce((s, v) => s + v, 0) / u.length;
    assert.ok(Math.abs(mean - 0.5) < 0.03, `mean of uniform draws ${mean}`);
    const n = randn([4000], { dtype: 'float64' });
    assert.ok(Math.abs(n.mean().item()) < 0.05, `normal mean ${n.mean().item()}`);
    assert.ok(Math.abs(n.std().item() - 1) < 0.05, `normal std ${n.std().item()}`);
    const ri = randint(-3, 4, [500]);
    assert.equal(ri.dtype, 'int64');
    const riv = ri.dataSync();
    assert.ok(riv.every((v) => Number.isInteger(v) && v >= -3 && v < 4));
    assert.equal(new Set(riv).size, 7, 'every value of [-3, 4) appears');
    const p = randperm(50).dataSync();
    assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 50 }, (_, k) => k));
    const bern = bernoulli(zeros([10000]), 0.3).mean().item();
    assert.ok(Math.abs(bern - 0.3) < 0.02, `bernoulli rate ${bern}`);
    const drop = F.dropout(ones([10000]), 0.25, true).dataSync();
    assert.ok(drop.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6), 'dropout keeps x / (1 - p) or zeroes');
    const kept = drop.filter((v) => v !== 0).length / drop.length;
    assert.ok(Math.abs(kept - 0.75) < 0.02, `dropout keep rate ${kept}`);
    assert.deepEqual(F.dropout(ones([5]), 0.5, false).dataSync(), [1, 1, 1, 1, 1], 'eval mode is the identity');
  });
});

test('the generator state round-trips: restoring it repeats the draws', () => {
  manualSeed(99);
  tidy(() => { rand([3]); });
  const state = getRngState();
  assert.ok(state.length > 0);
  const a = draws();
  setRngState(state);
  const b = draws();
  assert.deepEqual(a, b);
});

test('setNumThreads / getNumThreads round-trip', () => {
  const original = getNumThreads();
  assert.ok(Number.isInteger(original) && original >= 1);
  try {
    setNumThreads(2);
    assert.equal(getNumThreads(), 2);
    const x = tidy(() => { manualSeed(3); return [randn([64, 64]), randn([64, 64])]; });
    const two = tidy(() => matmul(x[0], x[1]).dataSync());
    setNumThreads(1);
    assert.equal(getNumThreads(), 1);
    const one = tidy(() => matmul(x[0], x[1]).dataSync());
    for (let k = 0; k < one.length; k++) assert.ok(Math.abs(one[k] - two[k]) <= 1e-4 * (1 + Math.abs(one[k])), `element ${k}`);
    dispose(x);
  } finally {
    setNumThreads(original);
  }
  assert.equal(getNumThreads(), original);
});

test('no test here leaked a tensor', () => {
  assert.equal(memory().tensors, startTensors);
});
