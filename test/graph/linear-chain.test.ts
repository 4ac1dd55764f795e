/**
 * An MLP-shaped graph (an MLP, or its shrunk form) runs in eval mode through the fused Linear (+ ReLU)
 * chain, as its Sequential does: the chain is recognised from the graph alone (weights by name,
 * ReLU flags, the Flatten before it), other graphs are not, and the outputs equal the interpreter's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed } from '../../src/core/runtime.js';
import { createModel } from '../../src/models/index.js';
import { noGrad, randn, tidy, type Tensor } from '../../src/tensor/index.js';
import { trace } from '../../src/graph/trace.js';
import { GraphModule, linearChainOf, runGraph } from '../../src/graph/run.js';

const MNIST = [1, 28, 28];
const maxDiff = (a: Tensor, b: Tensor) => tidy(() => a.sub(b).abs().max().item());

test('linearChainOf: lenet_300_100 is a chain of three layers after a Flatten; lenet5 and resnet20 are not chains', () => {
  manualSeed(0);
  const m = createModel('lenet_300_100', { inputShape: MNIST, numClasses: 10 });
  const g = trace(m, { inputShape: MNIST });
  const c = linearChainOf(g);
  assert.ok(c);
  assert.equal(c.flattenFrom, 1);
  assert.deepEqual(c.layers.map((l) => l.relu), [true, true, false]);
  const weights = m.namedParameters().filter(([n]) => n.endsWith('weight')).map(([n]) => n);
  assert.deepEqual(c.layers.map((l) => l.weight), weights);
  assert.deepEqual(c.layers.map((l) => l.bias), weights.map((w) => w.replace(/weight$/, 'bias')));
  g.dispose(); m.dispose();
  for (const [name, shape] of [['lenet5', MNIST], ['resnet20', [3, 32, 32]]] as [string, number[]][]) {
    const mm = createModel(name, { inputShape: shape, numClasses: 10 });
    const gg = trace(mm, { inputShape: shape });
    assert.equal(linearChainOf(gg), null, `${name} is not a linear chain`);
    gg.dispose(); mm.dispose();
  }
});

test('a GraphModule of an MLP in eval mode equals the interpreter and its Sequential, dense and 98% sparse', () => {
  manualSeed(3);
  const m = createModel('lenet_300_100', { inputShape: MNIST, numClasses: 10 });
  m.eval();
  const gm = GraphModule.fromModule(m, MNIST);
  gm.eval();
  for (const sparse of [false, true]) {
    if (sparse) {
      // 98% of every weight set to zero: the sparse kernels run inside the chain.
      noGrad(() => {
        for (const [n, p] of gm.namedParameters()) {
          if (!n.endsWith('weight')) continue;
          const keep = randn(p.shape).abs().gt(2.33); // P(|z| > 2.33) = 0.02
          p.copy_(p.mul(keep));
          keep.dispose();
        }
      });
    }
    for (const b of [1, 5, 64]) {
      tidy(() => noGrad(() => {
        const x = randn([b, ...MNIST]);
        const got = gm.call(x);
        const [want] = runGraph(gm.graph, gm.stateDict(), [x]);
        assert.deepEqual(got.shape, [b, 10]);
        assert.ok(maxDiff(got, want) <= 1e-5, `sparse ${sparse}, batch ${b}: ${maxDiff(got, want)}`);
        if (!sparse) assert.equal(maxDiff(got, m.call(x)), 0, `batch ${b}: the Sequential runs the same chain`);
      }));
    }
  }
  // In training mode the graph runs op by op, with autograd.
  gm.train();
  const x = randn([4, ...MNIST]);
  const y = gm.call(x);
  y.sum().backward();
  const w = gm.namedParameters().find(([n]) => n.endsWith('weight'))![1];
  assert.ok(w.grad, 'training mode: the first weight has a gradient');
  gm.dispose(); m.dispose();
});
