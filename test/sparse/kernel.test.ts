/**
 * The sparse Linear kernel equals libtorch's dense linear within 1e-5, for every layout, over
 * shapes, densities and batch sizes, including empty matrices, all-zero rows and columns, 1-d and
 * 3-d inputs, non-contiguous inputs and weights changed in place (the packed cache follows).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed } from '../../src/core/runtime.js';
import { ShapeError, ArgumentError, DtypeError, EngineError, TopiaryError } from '../../src/core/errors.js';
import { clearSparseCache, sparseCacheInfo, sparseLinear, weightDensity, type SparseLayout } from '../../src/nn/sparse/index.js';
import { F, memory, noGrad, rand, randn, tensor, tidy, zeros, type Tensor } from '../../src/tensor/index.js';

const LAYOUTS: SparseLayout[] = ['auto', 'csr', 'csc', 'eigen-csr'];

function maxDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return a.numel === 0 ? 0 : a.sub(b).abs().max().item();
}

/** A weight at the scale of PyTorch's default init (std about 1/sqrt(in)), so outputs are O(1). */
function sparseWeight(out: number, inF: number, density: number): Tensor {
  return randn([out, inF]).mul(1 / Math.sqrt(inF)).mul(rand([out, inF]).lt(density));
}

test('equals dense within 1e-5: shapes x densities x batches x layouts', () => {
  manualSeed(3);
  const before = memory().tensors;
  tidy(() => noGrad(() => {
    for (const [out, inF] of [[1, 1], [3, 5], [10, 100], [17, 33], [300, 784], [64, 1]] as [number, number][]) {
      for (const density of [0, 0.02, 0.1, 0.5, 1]) {
        const w = sparseWeight(out, inF, density);
        const b = randn([out]);
        for (const batch of [1, 2, 15, 16, 17, 128]) {
          const x = randn([batch, inF]).relu(); // ReLU outputs: zero activations as in a real network
          const ref = F.linear(x, w, b);
          const refNoBias = F.linear(x, w, null);
          for (const layout of LAYOUTS) {
            const d = maxDiff(sparseLinear(x, w, b, layout), ref);
            assert.ok(d <= 1e-5, `[${out}, ${inF}] density ${density} batch ${batch} ${layout}: diff ${d}`);
            assert.ok(maxDiff(sparseLinear(x, w, null, layout), refNoBias) <= 1e-5);
          }
        }
      }
    }
  }));
  clearSparseCache();
  assert.ok(memory().tensors <= before); // <=: a collection may free earlier garbage meanwhile
});

test('all-zero rows and columns, empty matrices, 1-d and 3-d inputs, non-contiguous inputs', () => {
  tidy(() => noGrad(() => {
    // Rows 0 and 2 and columns 1 and 3 all zero.
    const w = tensor([[0, 0, 0, 0, 0], [1.5, 0, -2, 0, 0.25], [0, 0, 0, 0, 0], [0, 0, 3, 0, -1]]);
    const b = tensor([0.5, -1, 2, 0]);
    const x = randn([6, 5]);
    for (const layout of LAYOUTS) {
      assert.ok(maxDiff(sparseLinear(x, w, b, layout), F.linear(x, w, b)) <= 1e-6, layout);
      // Hand-computed for one row: y = W x + b.
      const x1 = tensor([1, 2, 3, 4, 5]);
      assert.deepEqual(sparseLinear(x1, w, b, layout).dataSync(), [0.5, 1.5 - 6 + 1.25 - 1, 2, 9 - 5]);
      // 3-d input [2, 3, 5] -> [2, 3, 4]; a transposed (non-contiguous) input.
      const x3 = randn([2, 3, 5]);
      assert.ok(maxDiff(sparseLinear(x3, w, b, layout), F.linear(x3, w, b)) <= 1e-6);
      const xt = randn([5, 7]).transpose(0, 1);
      assert.ok(maxDiff(sparseLinear(xt, w, b, layout), F.linear(xt, w, b)) <= 1e-6);
      // Empty: no inputs, no outputs, no in-features, no batch.
      assert.deepEqual(sparseLinear(zeros([0, 5]), w, b, layout).shape, [0, 4]);
      assert.deepEqual(sparseLinear(randn([3, 5]), zeros([0, 5]), null, layout).shape, [3, 0]);
      const noIn = sparseLinear(zeros([3, 0]), zeros([4, 0]), b, layout);
      assert.deepEqual(noIn.toArray(), [[0.5, -1, 2, 0], [0.5, -1, 2, 0], [0.5, -1, 2, 0]]);
      // An all-zero weight gives the bias.
      assert.deepEqual(sparseLinear(randn([2, 5]), zeros([4, 5]), b, layout).toArray(), [[0.5, -1, 2, 0], [0.5, -1, 2, 0]]);
    }
  }));
  clearSparseCache();
});

test('a weight changed in place is repacked (version counter), and the cache holds no tensors', () => {
  manualSeed(5);
  clearSparseCache();
  const before = memory().tensors;
  tidy(() => noGrad(() => {
    const w = sparseWeight(40, 60, 0.05);
    const x = randn([8, 60]);
    const x1 = randn([1, 60]);
    const check = () => {
      for (const xx of [x, x1]) assert.ok(maxDiff(sparseLinear(xx, w, null), F.linear(xx, w, null)) <= 1e-5);
    };
    check();
    assert.equal(sparseCacheInfo().entries, 1);
    w.mul_(2); // in place: same tensor, new contents
    check();
    w.narrow(0, 0, 10).zero_(); // through a view: shares the version counter
    check();
    w.copy_(sparseWeight(40, 60, 0.2));
    check();
    assert.ok(Math.abs(weightDensity(w) - w.ne(0).sum().item() / w.numel) < 1e-12);
  }));
  assert.ok(memory().tensors <= before, 'the packed weights are not tensors'); // <=: a collection may free earlier garbage meanwhile
  clearSparseCache();
  assert.equal(sparseCacheInfo().entries, 0);
});

test('bad arguments are refused with a typed error naming them', () => {
  tidy(() => {
    const w = randn([4, 5]);
    assert.throws(() => sparseLinear(randn([2, 6]), w), (e: unknown) => e instanceof ShapeError && /in-features 5/.test((e as Error).message));
    assert.throws(() => sparseLinear(randn([2, 5]), randn([4, 5, 1])), ShapeError);
    assert.throws(() => sparseLinear(randn([2, 5]), w, null, 'coo' as SparseLayout), ArgumentError);
    assert.throws(() => sparseLinear(randn([2, 5]).double(), w), (e: unknown) => e instanceof TopiaryError && /float32/.test((e as Error).message));
    assert.throws(() => sparseLinear(randn([2, 5]), w, randn([3])), (e: unknown) => e instanceof TopiaryError && /bias must be float32 \[4\]/.test((e as Error).message));
    void DtypeError; void EngineError;
  });
});
