/**
 * The fused sparse chain (Linear + bias + ReLU layers in one native call) and the sparse Conv2d path:
 * both equal libtorch's dense result within 1e-5, at batch 1 (both the CSR and the CSC form), in
 * tiles (full and partial) and for mixes of sparse and dense layers; the automatic paths are taken
 * exactly where they should be (a sparse LeNet-300-100 in eval mode under noGrad) and never otherwise
 * (gradients on, training mode, a forward hook, a large dense layer in the chain, a dense model).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../../src/core/binding.js';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/index.js';
import { Conv2d, Flatten, Linear, ReLU, Sequential, type Module } from '../../src/nn/index.js';
import {
  SPARSE_CONV_RULE, clearSparseCache, sparseCacheInfo, sparseChain, sparseConv2d, withDenseInference, type ChainLayer,
} from '../../src/nn/sparse/index.js';
import { F, noGrad, rand, randn, tidy, zeros } from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/tensor.js';

const maxDiff = (a: Tensor, b: Tensor) => tidy(() => a.sub(b).abs().max().item());

/** Keep the largest-magnitude `density` share of a weight (as magnitude pruning does). */
function prune(w: Tensor, density: number): void {
  tidy(() => noGrad(() => {
    const k = Math.max(1, Math.round(w.numel * density));
    const thr = w.abs().flatten().topk(k).values.narrow(0, k - 1, 1).item();
    w.mul_(w.abs().ge(thr));
  }));
}

function pruneModel(m: Module, density: number): void {
  for (const [n, p] of m.namedParameters()) if (n.endsWith('weight') && p.ndim >= 2) prune(p, density);
}

/** Three Linear layers with PyTorch's default init, pruned to the given densities. */
function layers(sizes: number[], density: number[], relu: boolean[], bias = true): { ls: ChainLayer[]; mods: Linear[] } {
  const mods = sizes.slice(1).map((o, i) => new Linear(sizes[i], o, bias).eval());
  mods.forEach((m, i) => prune(m.weight, density[i]));
  return { mods, ls: mods.map((m, i) => ({ weight: m.weight, bias: m.bias, relu: relu[i] })) };
}

function dense(x: Tensor, ls: ChainLayer[]): Tensor {
  let y = x;
  for (const l of ls) { y = F.linear(y, l.weight, l.bias); if (l.relu) y = y.relu(); }
  return y;
}

test('sparseChain equals the dense layers within 1e-5: batches 1 to 130, sparse and dense layers mixed, with and without bias and ReLU', () => {
  manualSeed(1);
  for (const [relu, bias] of [[[true, true, false], true], [[false, true, true], false]] as [boolean[], boolean][]) {
    const { ls, mods } = layers([200, 120, 60, 10], [0.05, 0.2, 1], relu, bias);
    for (const sparse of [[true, true, true], [true, false, false], [false, true, false]]) {
      for (const batch of [1, 2, 15, 16, 17, 130]) {
        tidy(() => noGrad(() => {
          const x = randn([batch, 200]);
          const d = maxDiff(sparseChain(x, ls, { sparse }), dense(x, ls));
          assert.ok(d <= 1e-5, `relu ${relu} bias ${bias} sparse ${sparse} batch ${batch}: ${d}`);
        }));
      }
    }
    // Leading dims are the batch, as in Linear: [2, 3, 200] -> [2, 3, 10].
    tidy(() => noGrad(() => {
      const x = randn([2, 3, 200]);
      const y = sparseChain(x, ls);
      assert.deepEqual(y.shape, [2, 3, 10]);
      assert.ok(maxDiff(y, dense(x, ls)) <= 1e-5);
    }));
    mods.forEach((m) => m.dispose());
  }
  clearSparseCache();
});

test('batch 1: the CSR form (dense inputs) and the CSC form (mostly zero inputs) give the same numbers', () => {
  manualSeed(2);
  const { ls, mods } = layers([784, 300, 100, 10], [0.02, 0.02, 1], [true, true, false]);
  const args = (x: Tensor, mode: number) => [x.h, ls.map((l) => l.weight.h), ls.map((l) => l.bias!.h), [1, 1, 0], [1, 1, -1], Infinity, false, null, mode];
  tidy(() => noGrad(() => {
    for (const x of [rand([1, 784]), rand([1, 784]).mul(rand([1, 784]).lt(0.2)), zeros([1, 784])]) {
      const want = dense(x, ls);
      for (const mode of [0, 1, 2]) {
        const y = new Tensor(call('sparseChain', ...args(x, mode)));
        const d = maxDiff(y, want);
        assert.ok(d <= 1e-5, `mode ${mode}: ${d}`);
      }
    }
  }));
  mods.forEach((m) => m.dispose());
  clearSparseCache();
});

test('LeNet-300-100 at 98%: Sequential runs Flatten + the whole chain in one fused call, equal to the dense path within 1e-5', () => {
  manualSeed(3);
  const m = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 }).eval();
  pruneModel(m, 0.02);
  for (const batch of [1, 7, 128]) {
    tidy(() => noGrad(() => {
      const x = rand([batch, 1, 28, 28]);
      const want = withDenseInference(() => m.call(x));
      clearSparseCache();
      const got = m.call(x);
      assert.ok(sparseCacheInfo().bytes > 0, 'the sparse kernels ran');
      assert.deepEqual(got.shape, [batch, 10]);
      const d = maxDiff(got, want);
      assert.ok(d <= 1e-5, `batch ${batch}: ${d}`);
    }));
  }
  // Not taken: gradients on, training mode.
  for (const run of [() => tidy(() => { m.call(rand([2, 1, 28, 28])); }), () => { m.train(); tidy(() => noGrad(() => { m.call(rand([2, 1, 28, 28])); })); m.eval(); }]) {
    clearSparseCache();
    run();
    assert.equal(sparseCacheInfo().bytes, 0);
  }
  m.dispose();
});

test('the chain is not taken for a dense model, and declines (layer by layer instead) with a large dense layer', () => {
  manualSeed(4);
  const m = createModel('lenet_300_100', { inputShape: [1, 28, 28], numClasses: 10 }).eval();
  tidy(() => noGrad(() => {
    const x = rand([4, 1, 28, 28]);
    clearSparseCache();
    m.call(x);
    assert.equal(sparseCacheInfo().bytes, 0, 'a dense model runs dense');
    // Only the first layer sparse: the [100, 300] layer (30,000 elements, dense) makes the chain decline,
    // and the layers run one by one: the first through Linear's own sparse path.
    prune(((m as Sequential).at(1) as Linear).weight, 0.02);
    clearSparseCache();
    const got = m.call(x);
    const want = withDenseInference(() => m.call(x));
    assert.ok(sparseCacheInfo().bytes > 0);
    assert.ok(maxDiff(got, want) <= 1e-5);
  }));
  m.dispose();
});

test('a Linear with a forward hook is not fused: the hook runs', () => {
  manualSeed(5);
  const seq = new Sequential(new Flatten(), new Linear(100, 80), new ReLU(), new Linear(80, 80), new ReLU(), new Linear(80, 10)).eval();
  pruneModel(seq, 0.02);
  let calls = 0;
  const remove = seq.at(3).registerForwardHook(() => { calls++; });
  tidy(() => noGrad(() => {
    const x = rand([3, 1, 10, 10]);
    const want = withDenseInference(() => seq.call(x));
    const got = seq.call(x);
    assert.equal(calls, 2);
    assert.ok(maxDiff(got, want) <= 1e-5);
    remove();
    const fused = seq.call(x);
    assert.equal(calls, 2);
    assert.ok(maxDiff(fused, want) <= 1e-5);
  }));
  seq.dispose();
  clearSparseCache();
});

test('sparseConv2d equals conv2d within 1e-5: 3x3 with padding, 5x5, 1x1 (read in place), stride 2, dilation 2, a partial last block', () => {
  manualSeed(6);
  const cases: [number, number, number, number, Partial<{ stride: [number, number]; padding: [number, number]; dilation: [number, number] }>][] = [
    [3, 16, 3, 9, { padding: [1, 1] }], [20, 50, 5, 12, {}], [16, 32, 1, 8, {}], [16, 32, 3, 11, { stride: [2, 2], padding: [1, 1] }],
    [8, 8, 3, 9, { dilation: [2, 2], padding: [2, 2] }], [4, 6, 3, 5, { stride: [2, 1] }],
  ];
  for (const [cin, cout, k, hw, o] of cases) {
    const conv = new Conv2d(cin, cout, k, { ...o, stride: o.stride, padding: o.padding, dilation: o.dilation });
    prune(conv.weight, 0.1);
    for (const batch of [1, 3]) {
      tidy(() => noGrad(() => {
        const x = randn([batch, cin, hw, hw]);
        const want = F.conv2d(x, conv.weight, conv.bias, { stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: 1 });
        const got = sparseConv2d(x, conv.weight, conv.bias, { stride: conv.stride, padding: conv.padding, dilation: conv.dilation });
        assert.deepEqual(got.shape, want.shape);
        const d = maxDiff(got, want);
        assert.ok(d <= 1e-5, `[${cout}, ${cin}, ${k}, ${k}] ${JSON.stringify(o)} batch ${batch}: ${d}`);
        // A channels-last input gives the same.
        assert.ok(maxDiff(sparseConv2d(x.contiguous('channels_last'), conv.weight, null, { stride: conv.stride, padding: conv.padding, dilation: conv.dilation }),
          F.conv2d(x, conv.weight, null, { stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: 1 })) <= 1e-5);
      }));
    }
    conv.dispose();
  }
  clearSparseCache();
});

test('LeNet-5 pruned below the conv rule: eval-mode Conv2d takes the sparse path, equal to dense within 1e-5; grouped convs are not taken', () => {
  manualSeed(7);
  const m = createModel('lenet5', { inputShape: [1, 28, 28], numClasses: 10 }).eval();
  pruneModel(m, Math.min(0.02, SPARSE_CONV_RULE.maxDensity));
  for (const batch of [1, 16]) {
    tidy(() => noGrad(() => {
      const x = rand([batch, 1, 28, 28]);
      const want = withDenseInference(() => m.call(x));
      clearSparseCache();
      const got = m.call(x);
      // conv2 [50, 20, 5, 5] and fc1 [500, 800] run sparse; conv1 (500 elements) and fc2 (5,000 elements at batch 1) as the rules say.
      assert.ok(sparseCacheInfo().bytes > 0);
      assert.ok(maxDiff(got, want) <= 1e-5, `batch ${batch}`);
    }));
  }
  m.dispose();
  const g = new Conv2d(64, 64, 3, { groups: 2 }).eval();
  prune(g.weight, 0.02);
  clearSparseCache();
  tidy(() => noGrad(() => { g.call(randn([1, 64, 6, 6])); }));
  assert.equal(sparseCacheInfo().bytes, 0);
  assert.throws(() => tidy(() => sparseConv2d(randn([1, 64, 6, 6]), g.weight, null, { groups: 2 })), /groups 1/);
  g.dispose();
});
