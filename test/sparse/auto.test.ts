/**
 * The automatic sparse path of Linear: taken only in eval mode with gradients off, for float32 CPU
 * weights whose density is within the measured rule for the batch size, and never otherwise; its
 * outputs equal the dense path's within 1e-5. Whether the kernel ran is read from the packed-weight
 * cache: it holds bytes only once a sparse product has been computed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed } from '../../src/core/runtime.js';
import { trace } from '../../src/graph/trace.js';
import { Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import {
  SPARSE_RULE, autoSparseLinear, clearSparseCache, setSparseInference, sparseCacheInfo, sparseMaxDensity, withDenseInference,
} from '../../src/nn/sparse/index.js';
import { enableGrad, noGrad, rand, randn, randperm, tidy, zeros, type Tensor } from '../../src/tensor/index.js';

/** Keep exactly k weights (random positions): density k / numel. */
function setDensity(l: Linear, k: number): void {
  tidy(() => noGrad(() => {
    const n = l.weight.numel;
    // The k positions with the smallest rank in a random permutation.
    const rank = randperm(n).argsort();
    l.weight.mul_(rank.lt(k).reshape(l.weight.shape));
  }));
}

/** Run fn and report whether the sparse kernel computed anything (the cache gained packed bytes). */
function ranSparse(fn: () => Tensor): { sparse: boolean; y: Tensor } {
  clearSparseCache();
  const y = fn();
  return { sparse: sparseCacheInfo().bytes > 0, y };
}

test('the rule covers every batch size, in increasing regimes', () => {
  for (let i = 1; i < SPARSE_RULE.length; i++) assert.ok(SPARSE_RULE[i].maxBatch > SPARSE_RULE[i - 1].maxBatch);
  assert.equal(SPARSE_RULE[SPARSE_RULE.length - 1].maxBatch, Infinity);
  assert.equal(sparseMaxDensity(1), SPARSE_RULE[0].maxDensity);
  assert.equal(sparseMaxDensity(1e9), SPARSE_RULE[SPARSE_RULE.length - 1].maxDensity);
  for (const r of SPARSE_RULE) assert.ok(r.maxDensity > 0 && r.maxDensity < 1);
  // Small weights stay dense, whatever their density.
  assert.equal(sparseMaxDensity(128, 1000), -1);
  assert.equal(sparseMaxDensity(1, 1000), -1);
  assert.equal(sparseMaxDensity(1, 5000), SPARSE_RULE[0].maxDensity);
});

test('a small weight stays dense even when empty; a large one goes sparse', () => {
  for (const [l, want] of [[new Linear(100, 10).eval(), false], [new Linear(100, 50).eval(), true]] as const) {
    tidy(() => noGrad(() => l.weight.zero_()));
    for (const batch of [1, 8, 128]) {
      const x = rand([batch, 100]);
      const { sparse, y } = ranSparse(() => noGrad(() => l.call(x)));
      assert.equal(sparse, want, `[${l.outFeatures}, 100] batch ${batch}`);
      for (const t of [x, y]) t.dispose();
    }
    l.dispose();
  }
  clearSparseCache();
});

test('sparse exactly where the rule says so, for every batch regime, and equal to dense within 1e-5', () => {
  manualSeed(11);
  const l = new Linear(200, 50).eval();
  const n = l.weight.numel;
  const batches = [1, 2, 31, 32, 128];
  const densities = [0, 0.01, 0.02, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 1];
  for (const d of densities) {
    manualSeed(12);
    tidy(() => noGrad(() => l.weight.copy_(randn([50, 200]).mul(0.07))));
    setDensity(l, Math.round(d * n));
    for (const batch of batches) {
      tidy(() => {
        const x = rand([batch, 200]);
        const dense = noGrad(() => withDenseInference(() => l.call(x)));
        const { sparse, y } = ranSparse(() => noGrad(() => l.call(x)));
        const want = d <= sparseMaxDensity(batch, n);
        assert.equal(sparse, want, `density ${d} batch ${batch}: sparse ${sparse}, the rule says ${want ? 'sparse' : 'dense'}`);
        const diff = y.sub(dense).abs().max().item();
        assert.ok(diff <= 1e-5, `density ${d} batch ${batch}: diff ${diff}`);
      });
    }
  }
  l.dispose();
  clearSparseCache();
});

test('never sparse in train mode, with gradients on, when switched off, or for float64', () => {
  manualSeed(13);
  const net = new Sequential(new Linear(100, 60), new ReLU(), new Linear(60, 10));
  for (const m of net.modules()) if (m instanceof Linear) setDensity(m, Math.round(m.weight.numel * 0.02));
  const x = rand([4, 100]);
  const cases: [string, () => Tensor][] = [
    ['train mode', () => noGrad(() => net.train().call(x))],
    ['gradients on', () => enableGrad(() => net.eval().call(x))],
    ['withDenseInference', () => noGrad(() => withDenseInference(() => net.eval().call(x)))],
  ];
  for (const [what, fn] of cases) {
    const { sparse, y } = ranSparse(fn);
    assert.equal(sparse, false, what);
    y.dispose();
  }
  const prev = setSparseInference(false);
  const off = ranSparse(() => noGrad(() => net.eval().call(x)));
  assert.equal(off.sparse, false, 'setSparseInference(false)');
  setSparseInference(prev);
  // And on: eval mode under noGrad takes it, with the same result as dense.
  const on = ranSparse(() => noGrad(() => net.eval().call(x)));
  assert.equal(on.sparse, true);
  assert.ok(on.y.sub(off.y).abs().max().item() <= 1e-5);
  // Gradients through the eval-mode model still work (the dense path runs).
  const g = enableGrad(() => net.eval().call(x).sum());
  g.backward();
  assert.ok(net.parameters()[0].grad !== null);
  // Another dtype: the automatic path declines (null), and the dense op runs.
  tidy(() => noGrad(() => {
    const w = zeros([10, 100]).double();
    assert.equal(autoSparseLinear(x.double(), w, null), null);
    assert.equal(autoSparseLinear(x, zeros([60, 100]), null) !== null, true);
    assert.equal(autoSparseLinear(x, zeros([10, 99]), null), null, 'a mismatched shape is left to the dense op');
  }));
  for (const t of [x, off.y, on.y, g]) t.dispose();
  net.dispose();
  clearSparseCache();
});

test('a weight masked in place between evaluations is followed (no stale pack)', () => {
  manualSeed(14);
  const l = new Linear(300, 100).eval();
  setDensity(l, 600); // 2%
  const x = rand([16, 300]);
  const a = noGrad(() => l.call(x));
  tidy(() => noGrad(() => l.weight.narrow(0, 0, 50).zero_())); // prune half the rows in place
  const b = noGrad(() => l.call(x));
  const dense = noGrad(() => withDenseInference(() => l.call(x)));
  assert.ok(b.sub(dense).abs().max().item() <= 1e-5);
  assert.ok(a.sub(b).abs().max().item() > 1e-3, 'the change is visible');
  for (const t of [x, a, b, dense]) t.dispose();
  l.dispose();
  clearSparseCache();
});

test('tracing a 98% sparse model records every linear (the sparse path stays out of traces)', () => {
  manualSeed(15);
  const net = new Sequential(new Linear(100, 60), new ReLU(), new Linear(60, 70));
  for (const m of net.modules()) if (m instanceof Linear) setDensity(m, Math.round(m.weight.numel * 0.02));
  const g = trace(net, { inputShape: [100] });
  assert.equal(g.nodes.filter((n) => n.op === 'linear').length, 2, g.toString());
  g.dispose();
  net.dispose();
  clearSparseCache();
});
